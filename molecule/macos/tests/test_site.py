"""README "On a Mac", after the first site.yml: migrate the seed's SQLite database with
site.yml -e migration_sqlite_src=<file>, run it again (nothing to do), then check the
whole Mac with playbooks/verify.yml, as a person following the README would."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from lvd_playbook import ansible_playbook, recaps

REPO = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
APP = "/opt/homebrew/var/lvd"
PSQL = "/opt/homebrew/bin/psql -XAtq -h /tmp -d live_validation_dashboard -c"
REPORT = f"{APP}/shared/migration/migrate-sqlite-report.json"
# What the role's read-only check (`flask migrate-sqlite --check`) found on the last run.
CHECK = f"{APP}/shared/migration/check.json"
TABLES = ("users", "subscriptions", "validation_runs", "validation_results")


def run(playbook, *args):
    proc = ansible_playbook(REPO / playbook, *args, timeout=900)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{playbook} failed:\n{output[-6000:]}"
    return output, recaps(output)["mac"]


@pytest.fixture(scope="module")
def seed(host, tmp_path_factory):
    """A SQLite database of the app, made on the Mac by the release's own generator (NULLs,
    Unicode, old timestamps), copied to the controller as a user would have it there."""
    made = host.run(
        f"cd {APP}/current && venv/bin/python -m app.migrate_sqlite.fixture"
        " /tmp/seed.db --results 400"
    )
    assert made.rc == 0, made.stderr
    path = tmp_path_factory.mktemp("seed") / "dashboard.db"
    path.write_bytes(host.file("/tmp/seed.db").content)
    return path


@pytest.fixture(scope="module")
def migrated(seed):
    return run("site.yml", "-e", f"migration_sqlite_src={seed}")


def sqlite_count(host, table):
    script = f"import sqlite3; print(sqlite3.connect('/tmp/seed.db').execute('SELECT count(*) FROM {table}').fetchone()[0])"
    return int(host.check_output("python3 -c %s", script))


def test_site_with_a_sqlite_file_migrates_every_row(host, migrated):
    _, recap = migrated
    assert recap["failed"] == 0 and recap["changed"] > 0
    report = json.loads(host.file(REPORT).content_string)
    assert report["status"] == "migrated"
    assert all(table["checksum_match"] for table in report["tables"])
    for table in TABLES:
        assert (
            int(host.check_output(f"{PSQL} 'SELECT count(*) FROM {table}'"))
            == (sqlite_count(host, table))
            > 0
        ), table
    assert host.file(REPORT).user == "dev"


def test_a_dump_was_taken_before_the_migration(host, migrated):
    dumps = host.check_output(
        "ls /opt/homebrew/var/backups/postgresql/live_validation_dashboard/"
    ).split()
    before = [name for name in dumps if name.endswith("_pre-migration.dump")]
    assert len(before) == 1, dumps


def test_site_again_finds_the_data_migrated_and_changes_nothing(host, migrated, seed):
    output, recap = run("site.yml", "-e", f"migration_sqlite_src={seed}")
    assert recap["changed"] == 0, output[-6000:]
    check = json.loads(host.file(CHECK).content_string)
    assert check["status"] == "already_migrated"
    assert host.file(CHECK).mtime > host.file(REPORT).mtime


def test_verify_passes_every_check_with_the_smoke_test(migrated):
    output, recap = run("playbooks/verify.yml", "-e", "verify_smoke=true")
    assert recap["failed"] == 0
    assert "Every check passed" in output
    # The table has rows for each role of the Mac's four groups and the front door.
    table = [line for line in output.splitlines() if line.lstrip().startswith(("PASS ", "FAIL "))]
    assert len(table) > 10, output[-6000:]
    assert not [line for line in table if line.lstrip().startswith("FAIL ")]


def test_the_backup_role_says_the_mac_is_not_supported_and_changes_nothing():
    output, recap = run("molecule/macos/backup_role.yml")
    assert "The backup role (pgBackRest) does not support macOS" in " ".join(output.split())
    assert recap["changed"] == 0 and recap["failed"] == 0
