"""Shared helpers: the role's layout on the instance, HTTP from inside the instance, and
ansible-playbook runs against the scenario's inventory (Molecule's environment gives the
inventory, the roles path and ansible.cfg)."""

import json
import os
from pathlib import Path

import pytest
from lvd_playbook import ansible_playbook

SCENARIO_DIR = Path(__file__).resolve().parent.parent
ROLE_DIR = SCENARIO_DIR.parent.parent
ROOT = "/srv/lvd"
CURRENT = f"{ROOT}/current"
WEB = "lvd-web.service"
SOCKET = "lvd-web.socket"
WORKER = "lvd-worker.service"
BASE_URL = "http://127.0.0.1:8000"


def run_playbook(playbook, *extra_args, limit=None):
    """ansible-playbook on every instance (or one); returns (exit code, combined output)."""
    result = ansible_playbook(SCENARIO_DIR / playbook, *extra_args, limit=limit)
    return result.returncode, result.stdout + result.stderr


def deploy(*extra_vars):
    """deploy.yml on every instance at once, with -e for each NAME=VALUE or JSON string."""
    args = []
    for value in extra_vars:
        args += ["-e", value]
    return run_playbook("deploy.yml", *args)


def http_get(host, path):
    """GET from inside the instance (its own loopback); returns (status, body)."""
    script = (
        "import sys, urllib.request, urllib.error\n"
        "try:\n"
        "    r = urllib.request.urlopen(sys.argv[1], timeout=120)\n"
        "    print(r.status); print(r.read().decode())\n"
        "except urllib.error.HTTPError as e:\n"
        "    print(e.code); print(e.read().decode())\n"
    )
    out = host.check_output("python3 -c %s %s", script, BASE_URL + path)
    status, _, body = out.partition("\n")
    return int(status), body


def version(host):
    status, body = http_get(host, "/version")
    assert status == 200, body
    return json.loads(body)["release"]


def current_release(host):
    return host.file(CURRENT).linked_to.rsplit("/", 1)[-1]


def main_pid(host, unit=WEB):
    return int(host.check_output("systemctl show --property MainPID --value %s", unit))


def worker_pids(host):
    out = host.check_output("ps -o pid= --ppid %s", str(main_pid(host)))
    return sorted(int(pid) for pid in out.split())


@pytest.fixture(scope="module")
def role_vars(host):
    return host.ansible.get_variables()


def instances():
    """Every instance of the scenario, as testinfra hosts, by inventory name."""
    import testinfra

    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    hosts = testinfra.get_hosts(["all"], connection="ansible", ansible_inventory=inventory)
    return {h.backend.get_hostname(): h for h in hosts}


def snapshot(host):
    """What a user would look at after a deploy step."""
    releases = sorted(host.file(f"{ROOT}/releases").listdir())
    log = host.file(f"{ROOT}/releases.log")
    history = log.content_string.splitlines() if log.exists else []
    env = host.file(f"{ROOT}/shared/.env")
    ready, _ = http_get(host, "/health/ready")
    return {
        "current": current_release(host),
        "version": version(host),
        "ready": ready,
        "releases": releases,
        "history": [line.split()[-1] for line in history],
        "env_owner_mode": [env.user, env.mode],
        # Which virtualenv each release links, and the virtualenvs there are.
        "venvs": {
            release: host.file(f"{ROOT}/releases/{release}/venv").linked_to.rsplit("/", 1)[-1]
            for release in releases
        },
        "venv_dirs": sorted(host.file(f"{ROOT}/venvs").listdir()),
        "markers": {
            release: sorted(
                name
                for name in (".installed", ".deployed-ok", ".failed")
                if host.file(f"{ROOT}/releases/{release}/{name}").exists
            )
            for release in releases
        },
    }


LOAD_RESULT = "/run/lvd-test-load.json"


def start_load(host):
    """Steady GET /version traffic from inside the instance, as a transient unit."""
    host.run("rm -f %s %s.stop", LOAD_RESULT, LOAD_RESULT)
    host.check_output(
        "systemd-run --unit lvd-test-load --collect /usr/local/bin/lvd-test-load %s %s",
        BASE_URL + "/version",
        LOAD_RESULT,
    )


def stop_load(host):
    """Stop the traffic and return what it saw (requests, statuses, errors, releases)."""
    host.check_output("touch %s.stop", LOAD_RESULT)
    host.check_output(
        "for i in $(seq 120); do [ -s %s ] && exit 0; sleep 1; done; exit 1", LOAD_RESULT
    )
    return json.loads(host.file(LOAD_RESULT).content_string)


class Step:
    """One deploy.yml run on every instance, and what each instance looked like after it;
    with load=True, what steady traffic during the run saw on each instance."""

    def __init__(self, *extra_vars, load=False):
        hosts = instances()
        if load:
            for h in hosts.values():
                start_load(h)
        self.rc, self.output = deploy(*extra_vars)
        self.load = {name: stop_load(h) for name, h in hosts.items()} if load else {}
        self.state = {name: snapshot(h) for name, h in hosts.items()}

    def of(self, host):
        return self.state[host.backend.get_hostname()]


# The release steps, in order: each fixture runs after the one it names.
@pytest.fixture(scope="session")
def step_r2():
    return Step("gunicorn_app_release=r2", load=True)


@pytest.fixture(scope="session")
def step_r3(step_r2):
    return Step("gunicorn_app_release=r3", "gunicorn_app_keep_releases=2")


@pytest.fixture(scope="session")
def step_rollback(step_r3):
    return Step("lvd_test_action=rollback", "gunicorn_app_keep_releases=2")


@pytest.fixture(scope="session")
def step_broken_checked(step_rollback):
    return Step("gunicorn_app_release=broken", "gunicorn_app_keep_releases=2")


@pytest.fixture(scope="session")
def step_broken_started(step_broken_checked):
    return Step(
        "gunicorn_app_release=broken",
        "gunicorn_app_keep_releases=2",
        '{"gunicorn_app_release_check": false}',
        # The gate gives up sooner than by default: the outcome is the same, and each
        # try waits for a start that fails (socket activation holds the request).
        "gunicorn_app_health_retries=5",
    )


@pytest.fixture(scope="session")
def step_prune(step_broken_started):
    return Step("lvd_test_action=prune", "gunicorn_app_keep_releases=2")


@pytest.fixture(scope="session")
def step_database_down(step_prune):
    # A rollback (to r3) while nothing answers on the database's port: the switch waits
    # 2 s for it instead of 300, then gives up before touching anything.
    return Step(
        "lvd_test_action=rollback",
        "gunicorn_app_keep_releases=2",
        "gunicorn_app_db_port=1",
        "gunicorn_app_dependency_timeout=2",
    )
