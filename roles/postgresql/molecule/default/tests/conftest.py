"""Helpers shared by the postgresql role's testinfra tests."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCENARIO_DIR = Path(__file__).resolve().parent.parent
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")
# Debian release -> the PostgreSQL major version the role must pick.
EXPECTED_VERSION = {"12": 15, "13": 17}


@pytest.fixture(scope="module")
def scenario(host):
    """The scenario's inventory variables (untemplated)."""
    return host.ansible.get_variables()


@pytest.fixture(scope="module")
def pg_version(host):
    return EXPECTED_VERSION[host.system_info.release.split(".")[0]]


@pytest.fixture(scope="module")
def own_address(host):
    """The container's own non-loopback IPv4 address."""
    out = host.check_output("ip -4 -o addr show scope global")
    return re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", out).group(1)


def psql_admin(host, sql, db="postgres"):
    """Runs SQL as the postgres superuser over the local socket; returns stdout."""
    cmd = host.run("runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -d %s -c %s", db, sql)
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


def psql_tcp(host, address, user, password, db, sql):
    """Runs SQL as USER over TCP to ADDRESS with a password; returns the result."""
    return host.run(
        "env PGPASSWORD=%s PGCONNECT_TIMEOUT=5 psql -XAtq -v ON_ERROR_STOP=1"
        " -h %s -U %s -d %s -c %s",
        password,
        address,
        user,
        db,
        sql,
    )


def run_playbook(host, playbook, *args):
    """Runs a playbook of this scenario against this host only.

    Returns (return code, combined output, the host's recap counters).
    """
    name = host.backend.get_hostname()
    cmd = [
        str(ANSIBLE_PLAYBOOK),
        "-i",
        os.environ["MOLECULE_INVENTORY_FILE"],
        "--limit",
        name,
        str(SCENARIO_DIR / playbook),
        *args,
    ]
    proc = subprocess.run(
        cmd, check=False, capture_output=True, text=True, timeout=900, env=dict(os.environ)
    )
    output = proc.stdout + proc.stderr
    recap = re.search(
        rf"^{re.escape(name)}\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)",
        output,
        re.MULTILINE,
    )
    counters = (
        dict(zip(("ok", "changed", "unreachable", "failed"), map(int, recap.groups())))
        if recap
        else {}
    )
    return proc.returncode, output, counters
