"""Input that would lock someone out, or that nft refuses, fails before any change."""

import json

import pytest
from conftest import apply_role, http_from


@pytest.fixture()
def before(host):
    """The firewall and sshd files and the live ruleset, to compare after a refused run."""

    def state():
        return (
            host.file("/etc/nftables.conf").sha256sum,
            host.file("/etc/ssh/sshd_config.d/01-hardening.conf").sha256sum,
            host.check_output("nft list table inet base_filter"),
        )

    return state


@pytest.mark.parametrize(
    ("value", "message"),
    [
        # Over SSH from an address no admin CIDR holds: the firewall would cut the run.
        (
            {"base_controller_address": "203.0.113.9"},
            "from 203.0.113.9, which no base_admin_cidrs entry",
        ),
        # Over SSH from an admin network, as root (the container's user), in no allowed group.
        ({"base_controller_address": "172.17.0.1"}, "logs in over SSH as root, who is in none of"),
        (
            {"base_firewall_allow": [{"name": "x", "port": 70000, "sources": ["any"]}]},
            "port (1-65535)",
        ),
        ({"base_firewall_allow": [{"name": "x", "port": 80, "sources": ["web"]}]}, '["web"]'),
        ({"base_admin_cidrs": []}, "base_admin_cidrs must list"),
        ({"base_ssh_allow_groups": ["Bad Group"]}, "base_ssh_allow_groups must name"),
    ],
)
def test_refused_before_any_change_with_a_sentence_naming_it(host, before, value, message):
    start = before()
    rc, output, recap = apply_role(host, json.dumps(value))
    assert rc != 0
    assert message in output
    assert recap["changed"] == 0
    assert before() == start


def test_a_ruleset_nft_refuses_changes_nothing(host, other, before):
    start = before()
    value = {"base_firewall_allow": [{"name": "x", "port": 80, "sources": ["10.0.0.0/33"]}]}
    rc, output, _ = apply_role(host, json.dumps(value))
    assert rc != 0
    assert "failed to validate" in output
    assert before() == start
    assert http_from(other, host.check_output("hostname -I").split()[0], 8080) == "200"
