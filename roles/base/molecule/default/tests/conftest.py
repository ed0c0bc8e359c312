"""Shared fixtures: each instance is checked from the other one, its outside client on the
same Docker network (and from itself, for loopback)."""

import os
import shlex
from pathlib import Path

import pytest
import testinfra
from lvd_playbook import ansible_playbook, recaps
from testinfra.utils.ansible_runner import AnsibleRunner

SCENARIO_DIR = Path(__file__).resolve().parent.parent
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]


def address_of(host):
    return host.check_output("hostname -I").split()[0]


@pytest.fixture(scope="module")
def address(host):
    return address_of(host)


@pytest.fixture(scope="module")
def other(host):
    """The other instance: the client that is not on this host."""
    names = AnsibleRunner(INVENTORY).get_hosts("all")
    me = host.backend.get_hostname()
    (name,) = [n for n in names if n != me]
    return testinfra.get_host(f"ansible://{name}", ansible_inventory=INVENTORY)


def http_from(client, address, port):
    """HTTP status from `client` to address:port, or "timeout" when nothing answered."""
    cmd = client.run(
        f"curl -s -o /dev/null -w '%{{http_code}}' --connect-timeout 2 http://{address}:{port}/"
    )
    return cmd.stdout if cmd.rc == 0 else "timeout" if cmd.rc == 28 else f"curl rc {cmd.rc}"


def ssh_from(client, user, address, *options, command="true"):
    """ssh from `client` as `user` with the test key, running `command`; the finished command."""
    argv = [
        "ssh", "-i", "/root/id_test", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
        *options, f"{user}@{address}", command,
    ]  # fmt: skip
    return client.run(shlex.join(argv))


def apply_role(host, extra_vars):
    """The role again on this instance with `extra_vars` (JSON); rc, output, recap."""
    name = host.backend.get_hostname()
    proc = ansible_playbook(SCENARIO_DIR / "bad_input.yml", "-e", extra_vars, limit=name)
    output = proc.stdout + proc.stderr
    return proc.returncode, output, recaps(output).get(name, {})
