"""The converged host: every row of the SQLite fixture is in PostgreSQL with the model's
types, verified, after a dump of the database taken before the first write."""

import pytest
from conftest import APP_TABLES, REPORT, WORK_DIR, migrate_check, psql, sqlite_count


def test_report_says_migrated_and_verified(host, report):
    assert report["status"] == "migrated"
    assert report["changed"] is True
    assert all(table["checksum_match"] for table in report["tables"])
    assert report["rows_copied"] == sum(t["source_rows"] for t in report["tables"])
    assert report["target"]["database"] == "lvd"
    assert "password" not in report["target"]["url"] and "***" in report["target"]["url"]
    report_file = host.file(REPORT)
    assert (report_file.user, report_file.group, report_file.mode) == ("lvd", "lvd", 0o640)


@pytest.mark.parametrize("table", APP_TABLES)
def test_every_row_is_in_postgresql(host, table):
    assert int(psql(host, f"SELECT count(*) FROM {table}")) == sqlite_count(host, table) > 0


def test_columns_have_the_models_types(host):
    types = dict(
        line.split("|")
        for line in psql(
            host,
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'public'",
        ).splitlines()
    )
    assert types["users.is_active"] == "boolean"
    assert types["validation_runs.started_at"] == "timestamp with time zone"
    assert types["validation_results.details"] == "jsonb"
    # Every foreign key the models declare is back after the load: subscriptions.user_id,
    # validation_runs.created_by_id, validation_results.run_id, api_tokens.user_id,
    # invites.created_by_id and .used_by_id, refresh_families.user_id, idempotency_keys.user_id.
    assert int(psql(host, "SELECT count(*) FROM pg_constraint WHERE contype = 'f'")) == 8


def test_ids_continue_after_the_largest(host):
    last_value, is_called = psql(
        host, "SELECT last_value, is_called FROM validation_results_id_seq"
    ).split("|")
    largest = int(psql(host, "SELECT max(id) FROM validation_results"))
    assert (int(last_value), is_called) == (largest + 1, "f")


def test_a_dump_was_taken_before_the_first_row_was_written(host):
    dumps = host.check_output("ls /var/backups/postgresql/lvd/").split()
    before = [name for name in dumps if name.endswith("_pre-migration.dump")]
    assert len(before) == 1
    listing = host.check_output(
        "runuser -u postgres -- pg_restore --list /var/backups/postgresql/lvd/%s", before[0]
    )
    assert "TABLE DATA public validation_results" not in listing  # taken before the schema


def test_the_app_now_finds_the_database_migrated(host):
    state = migrate_check(host)
    assert state["status"] == "already_migrated"
    assert state["changed"] is False


def test_the_sqlite_copy_is_private_to_the_app(host):
    copy = host.file(f"{WORK_DIR}/source.db")
    assert (copy.user, copy.group, copy.mode) == ("lvd", "lvd", 0o640)
    assert host.file(WORK_DIR).mode == 0o750
