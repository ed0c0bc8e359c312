"""Shared fixtures: what the role published and how to reach the instance under test."""

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from lvd_playbook import ansible_playbook

SCENARIO_DIR = Path(__file__).resolve().parent.parent
ROLE_DIR = SCENARIO_DIR.parent.parent
CONF = "/etc/redis/redis.conf"
USERS_CONF = "/etc/redis/redis-users.conf"
# The test CA (converge.yml: role base's certificate entry point) on the controller, which
# the clients here trust, and on the container, for redis-cli there.
CA_FILE = str(Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "ca" / "ca.crt")
HOST_CA_FILE = "/etc/ssl/internal/ca.crt"


@pytest.fixture(scope="module")
def role_vars(host):
    """The role's inputs as the scenario's inventory sets them."""
    return host.ansible.get_variables()


@pytest.fixture(scope="module")
def app_urls(host):
    """redis_app_urls, the fact the role published (saved by converge.yml)."""
    return json.loads(host.file("/root/redis-app-urls.json").content_string)


@pytest.fixture(scope="module")
def address(app_urls):
    """The container's own address, as it appears in the published URLs."""
    return urlsplit(app_urls["app"]).hostname


@pytest.fixture()
def app_client(app_urls):
    """redis-py on the controller, connected with the URL the role rendered."""
    client = redis.Redis.from_url(app_urls["app"], socket_timeout=5, ssl_ca_certs=CA_FILE)
    yield client
    client.close()


def admin(address, role_vars, **tls):
    """redis-py on the controller as the admin user, with TLS as TLS asks (ssl=..., ...)."""
    return redis.Redis(
        host=address,
        port=6379,
        username="admin",
        password=role_vars["redis_admin_password"],
        socket_timeout=5,
        **tls,
    )


@pytest.fixture()
def admin_client(address, role_vars):
    client = admin(address, role_vars, ssl=True, ssl_ca_certs=CA_FILE)
    yield client
    client.close()


def version(client):
    """The server's (major, minor) version, e.g. (6, 0) on Debian 11 and Ubuntu 22.04."""
    return tuple(int(part) for part in client.info("server")["redis_version"].split(".")[:2])


def run_role(host, *extra_args):
    """Apply the role to this instance once more (bad_input.yml), with extra ansible-playbook
    arguments; returns (exit code, combined output). Molecule's environment gives the
    inventory, roles path and ansible.cfg."""
    result = ansible_playbook(
        SCENARIO_DIR / "bad_input.yml", *extra_args, limit=host.backend.get_hostname(), timeout=600
    )
    return result.returncode, result.stdout + result.stderr
