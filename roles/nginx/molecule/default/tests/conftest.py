"""Helpers for the nginx scenario: requests sent from inside the instance.

Every request goes to 127.0.0.1 inside the instance under test (its nginx in
front of the two test backends of prepare.yml), through curl.
"""

import os
import pathlib
import re
import shlex

import pytest
import testinfra
from lvd_playbook import ansible_playbook
from testinfra.utils.ansible_runner import AnsibleRunner

SCENARIO = pathlib.Path(__file__).resolve().parent.parent
ROLES = SCENARIO.parent.parent.parent
BASE = "https://127.0.0.1"


class Response:
    def __init__(self, raw):
        head, _, self.body = raw.partition("\r\n\r\n")
        lines = head.split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers.setdefault(name.strip().lower(), []).append(value.strip())

    def header(self, name):
        values = self.headers.get(name.lower(), [])
        return values[0] if values else None


def fetch(host, url, *curl_args):
    """One request, answered as a Response (headers and body)."""
    cmd = ["curl", "-sk", "-i", "--max-time", "20", *curl_args, url]
    out = host.check_output(shlex.join(cmd))
    # A 100-continue or 101 interim answer would precede; keep the last head.
    return Response(out)


def codes_and_backends(host, url, count, *curl_args):
    """Send `count` GETs over one client connection; (status, X-Backend) each.

    curl dumps each response's headers, then writes its status code on a line of its own
    (-w "%header{...}" would need curl 7.84; Debian 11 has 7.74)."""
    cmd = ["curl", "-sk", "--max-time", "60", "-D", "-", "-w", "%{http_code}\\n", *curl_args]
    for _ in range(count):
        cmd += ["-o", "/dev/null", url]
    out = host.check_output(shlex.join(cmd))
    answers, backend = [], "-"
    for line in out.splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() == "x-backend":
            backend = value.strip()
        elif re.fullmatch(r"\d{3}", line.strip()):
            answers.append((line.strip(), backend))
            backend = "-"
    return answers


def start_backend(host, port):
    """Start a test backend and return once it answers on its port.

    `systemctl start` returns when the process is forked, before it listens;
    a request in that gap is refused, nginx counts a failure against the
    backend and a hashed (sticky) client is moved to the other one.
    """
    host.check_output(f"systemctl start lvd-test-backend@{port}")
    host.check_output(
        "for i in $(seq 100); do"
        f" curl -sf -o /dev/null http://127.0.0.1:{port}/ && exit 0; sleep 0.1;"
        f" done; echo 'backend {port} never answered' >&2; exit 1"
    )


def bodies(host, url, count):
    """Send `count` GETs and return the backends' bodies parsed as key=value."""
    cmd = ["curl", "-sk", "--max-time", "60", *([url] * count)]
    out = host.check_output(shlex.join(cmd))
    answers = []
    for line in out.splitlines():
        if line.startswith("backend="):
            answers.append({})
        if answers and "=" in line:
            key, _, value = line.partition("=")
            answers[-1][key] = value
    return answers


@pytest.fixture(scope="session")
def fleet():
    """Every instance of the scenario, by inventory name."""
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    names = AnsibleRunner(inventory).get_hosts("all")
    return {
        name: testinfra.get_host(f"ansible://{name}", ansible_inventory=inventory) for name in names
    }


@pytest.fixture(scope="session")
def run_playbook():
    """Run a playbook of this scenario against every instance (in parallel)."""

    def run(name, *extra_args):
        return ansible_playbook(SCENARIO / name, *extra_args)

    return run
