"""Helpers shared by the migration role's testinfra tests."""

import json
import sys
from pathlib import Path

import pytest
from lvd_playbook import ansible_playbook, recaps

SCENARIO_DIR = Path(__file__).resolve().parent.parent
ROLE_DIR = SCENARIO_DIR.parent.parent
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")
WORK_DIR = "/srv/lvd/shared/migration"
REPORT = f"{WORK_DIR}/migrate-sqlite-report.json"
# gunicorn_app's CLI: `flask --app app` with the current release, in its directory.
FLASK = "/srv/lvd/bin/flask"
APP_TABLES = ("users", "subscriptions", "validation_runs", "validation_results")


def psql(host, sql, db="lvd"):
    """Runs SQL as the postgres superuser over the local socket; returns stdout."""
    cmd = host.run("runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -d %s -c %s", db, sql)
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


def sqlite_count(host, table):
    """Rows of a table in the SQLite file the role migrated (read with the host's python3)."""
    script = f"import sqlite3; print(sqlite3.connect('{WORK_DIR}/source.db').execute('SELECT count(*) FROM {table}').fetchone()[0])"
    return int(host.check_output("python3 -c %s", script))


def migrate_check(host):
    """The app's own read-only check, as the app user: the JSON report."""
    cmd = host.run(
        "runuser -u lvd -- %s migrate-sqlite %s --check --json --report %s",
        FLASK,
        f"{WORK_DIR}/source.db",
        f"{WORK_DIR}/test-check.json",
    )
    assert cmd.rc in (0, 3), cmd.stderr
    return json.loads(cmd.stdout)


@pytest.fixture(scope="module")
def report(host):
    return json.loads(host.file(REPORT).content_string)


def run_playbook(host, playbook, *args):
    """Runs a playbook of this scenario against this host only.

    Returns (return code, combined output, the host's recap counters).
    """
    name = host.backend.get_hostname()
    proc = ansible_playbook(SCENARIO_DIR / playbook, *args, limit=name, timeout=900)
    output = proc.stdout + proc.stderr
    return proc.returncode, output, recaps(output).get(name, {})
