"""The firewall as a client on the network meets it: what answers, what is dropped."""

from conftest import http_from


def test_inbound_is_dropped_unless_allowed(host):
    chain = host.check_output("nft list chain inet base_filter input")
    assert "policy drop;" in chain
    assert "ct state established,related accept" in chain


def test_a_port_open_to_any_answers_from_the_other_host(host, other, address):
    assert http_from(other, address, 8080) == "200"


def test_a_port_open_to_another_network_is_dropped(host, other, address):
    assert http_from(other, address, 8081) == "timeout"


def test_a_port_no_rule_opens_is_dropped(host, other, address):
    assert http_from(other, address, 8082) == "timeout"


def test_loopback_reaches_every_port(host):
    for port in (8080, 8081, 8082):
        assert http_from(host, "127.0.0.1", port) == "200", port


def test_the_ruleset_comes_back_after_a_restart(host, other, address):
    # nftables.service flushes on stop and loads /etc/nftables.conf on start, as at boot.
    assert host.service("nftables").is_enabled
    host.check_output("systemctl restart nftables")
    assert http_from(other, address, 8082) == "timeout"
    assert http_from(other, address, 8080) == "200"


def test_other_tools_tables_are_left_alone(host):
    host.check_output("nft add table inet someone_else")
    try:
        host.check_output("systemctl reload nftables")
        assert "table inet someone_else" in host.check_output("nft list tables")
        assert "table inet base_filter" in host.check_output("nft list tables")
    finally:
        host.run("nft delete table inet someone_else")


def test_the_ruleset_file_is_roots_only(host):
    ruleset = host.file("/etc/nftables.conf")
    assert (ruleset.user, ruleset.mode) == ("root", 0o700)
