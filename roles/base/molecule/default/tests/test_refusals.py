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


def test_a_controller_outside_the_admin_cidrs_is_refused(host, before):
    start = before()
    rc, output, recap = apply_role(host, json.dumps({"base_controller_address": "203.0.113.9"}))
    assert rc != 0
    assert "from 203.0.113.9, which no base_admin_cidrs entry" in output
    assert recap["changed"] == 0
    assert before() == start


def test_a_login_user_outside_the_allowed_groups_is_refused(host, before):
    # Over SSH from an admin network, as root (the container's user), who is in no group.
    start = before()
    rc, output, recap = apply_role(host, json.dumps({"base_controller_address": "172.17.0.1"}))
    assert rc != 0
    assert "logs in over SSH as root, who is in none of" in output
    assert recap["changed"] == 0
    assert before() == start


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            {"base_firewall_allow": [{"name": "x", "port": 70000, "sources": ["any"]}]},
            "port (1-65535)",
        ),
        ({"base_firewall_allow": [{"name": "x", "port": 80, "sources": ["web"]}]}, '["web"]'),
        ({"base_admin_cidrs": []}, "base_admin_cidrs must list"),
        ({"base_ssh_allow_groups": ["Bad Group"]}, "base_ssh_allow_groups must name"),
    ],
)
def test_wrong_input_is_named_before_any_change(host, before, value, message):
    start = before()
    rc, output, _ = apply_role(host, json.dumps(value))
    assert rc != 0
    assert message in output
    assert before() == start


def test_a_ruleset_nft_refuses_changes_nothing(host, other, before):
    start = before()
    value = {"base_firewall_allow": [{"name": "x", "port": 80, "sources": ["10.0.0.0/33"]}]}
    rc, output, _ = apply_role(host, json.dumps(value))
    assert rc != 0
    assert "failed to validate" in output
    assert before() == start
    assert http_from(other, host.check_output("hostname -I").split()[0], 8080) == "200"
