"""Helpers shared by the postgresql role's testinfra tests."""

import os
import re
from pathlib import Path

import pytest
import testinfra
from lvd_playbook import ansible_playbook, recaps

SCENARIO_DIR = Path(__file__).resolve().parent.parent
# Debian release -> the PostgreSQL major version the role must pick.
EXPECTED_VERSION = {"12": 15, "13": 17}


def docker_host(name):
    """A scenario container reached with `docker exec`: the default backend here
    runs Ansible once per command, which costs seconds each time."""
    # The engine's own client (an older one may come first on PATH).
    os.environ["PATH"] = "/usr/bin:" + os.environ.get("PATH", "")
    return testinfra.get_host(f"docker://{name}")


@pytest.fixture(scope="module")
def host(_testinfra_host):
    return docker_host(_testinfra_host.backend.get_hostname())


@pytest.fixture(scope="session")
def all_hosts():
    """{inventory name: host} of every scenario container, for the tests that
    run the role once against all of them."""
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    names = [
        h.backend.get_hostname()
        for h in testinfra.get_hosts(["all"], connection="ansible", ansible_inventory=inventory)
    ]
    return {name: docker_host(name) for name in names}


@pytest.fixture(scope="session")
def scenario():
    """The scenario's inventory variables (untemplated)."""
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    first = testinfra.get_hosts(["all"], connection="ansible", ansible_inventory=inventory)[0]
    return first.ansible.get_variables()


def pg_version_of(host):
    return EXPECTED_VERSION[host.system_info.release.split(".")[0]]


@pytest.fixture(scope="module")
def pg_version(host):
    return pg_version_of(host)


def own_address_of(host):
    """The container's own non-loopback IPv4 address."""
    out = host.check_output("ip -4 -o addr show scope global")
    return re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", out).group(1)


@pytest.fixture(scope="module")
def own_address(host):
    return own_address_of(host)


def psql_admin(host, sql, db="postgres"):
    """Runs SQL as the postgres superuser over the local socket; returns stdout."""
    cmd = host.run("runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -d %s -c %s", db, sql)
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


# The test CA's certificate on the container (role base's certificate entry point).
CA_FILE = "/etc/ssl/internal/ca.crt"


def psql_tcp(host, address, user, password, db, sql, sslmode="verify-full"):
    """Runs SQL as USER over TCP to ADDRESS with a password, with TLS as SSLMODE asks
    (verify-full: the server's certificate and name checked against the test CA); returns
    the result."""
    return host.run(
        "env PGPASSWORD=%s PGCONNECT_TIMEOUT=5 PGSSLMODE=%s PGSSLROOTCERT=%s"
        " psql -XAtq -v ON_ERROR_STOP=1 -h %s -U %s -d %s -c %s",
        password,
        sslmode,
        CA_FILE,
        address,
        user,
        db,
        sql,
    )


def run_playbook(playbook, *args):
    """Runs a playbook of this scenario against every scenario host at once.

    Returns (return code, combined output, {host: recap counters}).
    """
    proc = ansible_playbook(SCENARIO_DIR / playbook, *args, timeout=900)
    output = proc.stdout + proc.stderr
    return proc.returncode, output, recaps(output)
