"""`flask migrate-sqlite` against the real PostgreSQL: a 200 000-result fixture migrated and
verified, the API answering the same on both databases, a second run that writes nothing, a run
killed half-way and resumed, bad rows reported (and skipped on request), loose SQLite values
converted, and a target holding other data refused.

The big fixture is generated once per module; every test migrates into a database of its own.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import uuid
from pathlib import Path

import psycopg2
import pytest
import redis
from flask_jwt_extended import create_access_token
from sqlalchemy.engine import make_url

from app import create_app
from app.extensions import db
from app.migrate_sqlite import engine, fixture
from app.migrate_sqlite.report import ALREADY_MIGRATED, CONFLICT, MIGRATED, PENDING
from app.tests.conftest import BIN, ROOT, drop_database, make_app

BIG_RESULTS = 200_000
APP_TABLES = ("users", "subscriptions", "validation_runs", "validation_results")


# --- fixtures and helpers ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_sqlite(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("migrate-sqlite") / "big.db"
    counts = fixture.generate(path, results=BIG_RESULTS, seed=11)
    assert counts["validation_results"] >= 200_000
    return path


@pytest.fixture(scope="module")
def small_sqlite(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("migrate-sqlite-small") / "small.db"
    fixture.generate(path, results=3_000, seed=5)
    return path


@pytest.fixture(scope="module")
def scratch_databases():
    """Creates PostgreSQL databases on demand (new_database()), drops them all at the end."""
    base = make_url(os.environ["TEST_DATABASE_URL"])
    admin = psycopg2.connect(base.render_as_string(hide_password=False))
    admin.autocommit = True
    names = []

    def new_database() -> str:
        name = f"lvd_mig_{uuid.uuid4().hex[:10]}"
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        names.append(name)
        return base.set(database=name).render_as_string(hide_password=False)

    yield new_database
    for name in names:
        drop_database(admin, name)
    admin.close()


def migrate(base_env, url: str, sqlite_path: Path, tmp_path: Path, **options) -> engine.Report:
    """Run the engine in-process against url; returns the report (raises MigrationError)."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {**base_env, "DATABASE_URL": url}.items():
            mp.setenv(name, value)
        app = create_app()
    report_path = tmp_path / f"report-{uuid.uuid4().hex[:6]}.json"
    options = engine.Options(
        sqlite_path=str(sqlite_path), report_path=str(report_path), echo=lambda _: None, **options
    )
    return engine.run(app, options)


def cli(base_env, url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "flask"), "--app", "app", "migrate-sqlite", *args],
        cwd=ROOT,
        env={**os.environ, **base_env, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def query(url: str, sql: str, params=()) -> list[tuple]:
    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params or None)
            rows = cursor.fetchall() if cursor.description else []
        connection.commit()
        return rows
    finally:
        connection.close()


def schema_of(url: str) -> set[tuple]:
    """Every column, constraint and index of the app tables, as PostgreSQL describes them."""
    return set(
        query(
            url,
            """
            SELECT 'column', c.relname, a.attname,
                   format_type(a.atttypid, a.atttypmod) || ' not_null=' || a.attnotnull
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            WHERE c.relname = ANY (%(t)s) AND c.relkind = 'r' AND a.attnum > 0
              AND NOT a.attisdropped
            UNION ALL
            SELECT 'constraint', c.relname, k.conname, pg_get_constraintdef(k.oid)
            FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid WHERE c.relname = ANY (%(t)s)
            UNION ALL
            SELECT 'index', c.relname, i.relname, pg_get_indexdef(i.oid)
            FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_class c ON c.oid = x.indrelid WHERE c.relname = ANY (%(t)s)
            """,
            {"t": list(APP_TABLES)},
        )
    )


def write_counters(url: str) -> int:
    """Rows inserted, updated or deleted in the app's tables so far (catalog upkeep aside)."""
    rows = query(
        url, "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables"
    )
    return int(rows[0][0])


@pytest.fixture(scope="module")
def migrated_big(big_sqlite, scratch_databases, base_env, tmp_path_factory):
    """The big fixture migrated once; several tests read it (none writes to it)."""
    url = scratch_databases()
    report = migrate(base_env, url, big_sqlite, tmp_path_factory.mktemp("reports"))
    return url, report


# --- the big migration ------------------------------------------------------------------------------


def test_big_fixture_is_copied_completely_and_verified(migrated_big, big_sqlite):
    url, report = migrated_big
    assert report.status == MIGRATED and report.changed
    source = sqlite3.connect(big_sqlite)
    for name in APP_TABLES:
        table = report.tables[name]
        expected = source.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
        assert table.source_rows == table.copied_rows == table.target_rows == expected
        assert table.checksum_match and table.source_checksum == table.target_checksum
        assert query(url, f"SELECT count(*) FROM {name}")[0][0] == expected
    assert report.tables["validation_results"].target_rows >= 200_000
    document = report.to_dict()
    assert document["rows_copied"] == sum(t.copied_rows for t in report.tables.values())
    assert document["rows_per_second"] > 0 and document["skipped_rows"] == []


def test_schema_is_exactly_what_the_migrations_create(migrated_big, scratch_databases, base_env):
    url, _ = migrated_big
    reference = scratch_databases()
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {**base_env, "DATABASE_URL": reference}.items():
            mp.setenv(name, value)
        app = create_app()
        from flask_migrate import upgrade

        with app.app_context():
            upgrade()
            db.engine.dispose()
    assert schema_of(url) == schema_of(reference)
    # What pgloader loses, kept: booleans, timestamptz, jsonb, NOT NULL.
    types = {(table, name): text for kind, table, name, text in schema_of(url) if kind == "column"}
    assert types[("users", "is_active")] == "boolean not_null=true"
    assert types[("validation_runs", "started_at")] == "timestamp with time zone not_null=true"
    assert types[("validation_results", "details")] == "jsonb not_null=false"


def test_sequences_continue_after_the_largest_id(migrated_big):
    url, _ = migrated_big
    for table in APP_TABLES:
        (sequence,) = query(url, "SELECT pg_get_serial_sequence(%s, 'id')", (table,))[0]
        (last_value, is_called) = query(url, f"SELECT last_value, is_called FROM {sequence}")[0]
        (largest,) = query(url, f"SELECT max(id) FROM {table}")[0]
        # The next nextval() returns largest + 1.
        assert (last_value, is_called) == (largest + 1, False)
    assert query(url, "SELECT count(*) FROM pg_stats WHERE tablename = 'validation_results'")[0][0]


def test_values_survive_exactly(migrated_big, big_sqlite):
    url, _ = migrated_big
    source = sqlite3.connect(big_sqlite)
    long_id, long_message = source.execute(
        "SELECT id, message FROM validation_results WHERE length(message) > 20000 LIMIT 1"
    ).fetchone()
    assert query(url, "SELECT message FROM validation_results WHERE id = %s", (long_id,))[0][0] == (
        long_message
    )
    for column in ("message", "details", "duration_ms"):
        expected = source.execute(
            f"SELECT count(*) FROM validation_results WHERE {column} IS NULL"
        ).fetchone()[0]
        got = query(url, f"SELECT count(*) FROM validation_results WHERE {column} IS NULL")[0][0]
        assert got == expected > 0
    old_id, old_started = source.execute(
        "SELECT id, started_at FROM validation_runs WHERE started_at < '1970-01-01' LIMIT 1"
    ).fetchone()
    (started,) = query(url, "SELECT started_at FROM validation_runs WHERE id = %s", (old_id,))[0]
    assert started == dt.datetime.fromisoformat(old_started).replace(tzinfo=dt.UTC)
    unicode_names = source.execute(
        "SELECT count(*) FROM validation_results WHERE name LIKE '%🚀%' OR name LIKE '%日本語%'"
    ).fetchone()[0]
    assert unicode_names > 0
    assert (
        query(
            url,
            "SELECT count(*) FROM validation_results WHERE name LIKE '%🚀%' OR name LIKE '%日本語%'",
        )[0][0]
        == unicode_names
    )
    flags = source.execute("SELECT sum(is_active), count(*) FROM users").fetchone()
    assert query(url, "SELECT count(*) FILTER (WHERE is_active), count(*) FROM users")[0] == flags


# --- the app answers the same on both databases ----------------------------------------------------


def _summary_window(sqlite_path: Path) -> int:
    """A window_hours whose edge (now - window) is minutes away from every run, so the two apps,
    asked moments apart, count the same runs."""
    source = sqlite3.connect(sqlite_path)
    now = dt.datetime.now(dt.UTC)
    for hours in (24, 168, *range(1, 24 * 90)):
        edge = now - dt.timedelta(hours=hours)
        low = (edge - dt.timedelta(minutes=10)).strftime("%Y-%m-%d %H:%M:%S")
        high = (edge + dt.timedelta(minutes=10)).strftime("%Y-%m-%d %H:%M:%S")
        (near,) = source.execute(
            "SELECT count(*) FROM validation_runs WHERE started_at BETWEEN ? AND ?", (low, high)
        ).fetchone()
        if near == 0:
            return hours
    raise AssertionError("every summary window has a run near its edge")


def _api_answers(app, requests: list[str], user_id: int, redis_url: str) -> list:
    redis.Redis.from_url(redis_url).flushdb()  # no summary served from the other app's cache
    client = app.test_client()
    with app.app_context():
        token = create_access_token(identity=str(user_id))
    headers = {"Authorization": f"Bearer {token}"}
    answers = []
    for path in requests:
        response = client.get(path, headers=headers)
        body = response.get_json()
        if path.startswith("/api/summary"):
            del body["generated_at"], body["since"]  # the moment of the request
        if path == "/api/subscriptions":
            body.sort(key=lambda item: item["id"])  # the endpoint promises no order
        answers.append((path, response.status_code, body))
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    return answers


def test_api_answers_the_same_from_both_databases(
    migrated_big, big_sqlite, base_env, redis_url, monkeypatch
):
    url, _ = migrated_big
    source = sqlite3.connect(big_sqlite)
    (user_id,) = source.execute(
        "SELECT user_id FROM subscriptions JOIN users u ON u.id = user_id WHERE u.is_active"
        " GROUP BY user_id ORDER BY count(*) DESC LIMIT 1"
    ).fetchone()
    interesting = [
        "SELECT run_id FROM validation_results WHERE length(message) > 20000 LIMIT 2",
        "SELECT run_id FROM validation_results WHERE name LIKE '%🚀%' LIMIT 2",
        "SELECT id FROM validation_runs WHERE started_at < '1970-01-01' LIMIT 2",
        "SELECT id FROM validation_runs WHERE finished_at IS NULL LIMIT 2",
        "SELECT id FROM validation_runs ORDER BY random() LIMIT 10",
    ]
    run_ids = sorted({row[0] for sql in interesting for row in source.execute(sql)})
    (suite,) = source.execute("SELECT suite FROM validation_runs LIMIT 1").fetchone()
    requests = [
        "/api/runs?per_page=100",
        "/api/runs?per_page=100&page=37",
        f"/api/runs?suite={suite}&status=failed&per_page=50&page=2",
        "/api/runs?since=1900-01-01T00:00:00Z&until=1970-01-01T00:00:00Z&per_page=100",
        "/api/runs?status=warned&since=2000-01-01T00:00:00%2B02:00&per_page=25&page=3",
        f"/api/summary?window_hours={_summary_window(big_sqlite)}",
        "/api/subscriptions",
        "/api/runs/999999999",
        *[f"/api/runs/{run_id}" for run_id in run_ids],
    ]
    sqlite_app = make_app(monkeypatch, base_env, f"sqlite:///{big_sqlite}")
    from_sqlite = _api_answers(sqlite_app, requests, user_id, redis_url)
    pg_app = make_app(monkeypatch, base_env, url)
    from_postgresql = _api_answers(pg_app, requests, user_id, redis_url)
    assert [status for _, status, _ in from_sqlite] == [200] * 7 + [404] + [200] * len(run_ids)
    for sqlite_answer, pg_answer in zip(from_sqlite, from_postgresql, strict=True):
        assert sqlite_answer == pg_answer
    assert from_sqlite[0][2]["total"] > 20_000
    assert from_sqlite[6][2], "the user has subscriptions"


# --- idempotence and resumption -------------------------------------------------------------------------


def test_second_run_reports_already_migrated_and_writes_nothing(
    migrated_big, big_sqlite, base_env, tmp_path
):
    url, _ = migrated_big
    before = write_counters(url)
    result = cli(base_env, url, str(big_sqlite), "--report", str(tmp_path / "again.json"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "already migrated, verified" in result.stdout
    report = json.loads((tmp_path / "again.json").read_text())
    assert report["status"] == ALREADY_MIGRATED and report["changed"] is False
    assert report["rows_copied"] == 0
    assert all(table["checksum_match"] for table in report["tables"])
    assert write_counters(url) == before


def test_killed_run_resumes_and_finishes(big_sqlite, scratch_databases, base_env, tmp_path):
    url = scratch_databases()
    process = subprocess.Popen(
        [
            str(BIN / "flask"),
            "--app",
            "app",
            "migrate-sqlite",
            str(big_sqlite),
            "--segment-rows",
            "20000",
            "--jobs",
            "2",
            "--report",
            str(tmp_path / "killed.json"),
        ],
        cwd=ROOT,
        env={**os.environ, **base_env, "DATABASE_URL": url, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = []
    for line in process.stdout:
        seen.append(line)
        if "validation_results: committed rows" in line:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "".join(seen)

    loaded, total = query(
        url,
        "SELECT count(*) FILTER (WHERE loaded_at IS NOT NULL), count(*) FROM migrate_sqlite.segment",
    )[0]
    assert 1 <= loaded < total
    assert query(url, "SELECT phase FROM migrate_sqlite.run")[0][0] == "loading"
    # Whole segments or nothing: the rows in PostgreSQL are exactly the committed segments'.
    committed = query(
        url,
        "SELECT coalesce(sum(loaded_rows), 0) FROM migrate_sqlite.segment WHERE loaded_at IS NOT NULL",
    )[0][0]
    in_tables = sum(query(url, f"SELECT count(*) FROM {t}")[0][0] for t in APP_TABLES)
    assert in_tables == committed

    report = migrate(base_env, url, big_sqlite, tmp_path)
    assert report.status == MIGRATED and report.resumed
    resumed = sum(t.resumed_segments for t in report.tables.values())
    assert resumed == loaded
    assert report.copied_rows == sum(t.source_rows for t in report.tables.values()) - committed
    assert all(t.checksum_match for t in report.tables.values())
    assert query(url, "SELECT phase FROM migrate_sqlite.run")[0][0] == "done"
    assert query(url, "SELECT count(*) FROM migrate_sqlite.deferred WHERE NOT restored")[0][0] == 0


# --- bad rows, loose values, refusal ----------------------------------------------------------------------


def _copy(path: Path, tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    target.write_bytes(path.read_bytes())
    return target


def test_bad_rows_are_reported_and_fail_the_run_unless_skipped(
    small_sqlite, scratch_databases, base_env, tmp_path
):
    dirty = _copy(small_sqlite, tmp_path, "dirty.db")
    connection = sqlite3.connect(dirty)
    connection.execute("PRAGMA ignore_check_constraints = ON")
    with connection:
        connection.execute("UPDATE validation_results SET status = 'bogus' WHERE id = 10")
        connection.execute("UPDATE validation_runs SET started_at = 'not a date' WHERE id = 5")
        connection.execute("UPDATE validation_results SET run_id = 999999 WHERE id = 20")
        connection.execute("UPDATE users SET is_active = 7 WHERE id = 2")
        connection.execute("UPDATE validation_results SET details = '{broken' WHERE id = 30")
        connection.execute("UPDATE validation_results SET name = ? WHERE id = 40", ("x" * 201,))
    run5_results = [
        r for (r,) in connection.execute("SELECT id FROM validation_results WHERE run_id = 5")
    ]
    connection.close()
    url = scratch_databases()

    with pytest.raises(engine.MigrationError, match="cannot be converted") as failure:
        migrate(base_env, url, dirty, tmp_path)
    bad = {(row.table, row.pk): row.reason for row in failure.value.report.bad_rows}
    assert set(bad) == {
        ("validation_results", "10"),
        ("validation_runs", "5"),
        ("users", "2"),
        ("validation_results", "30"),
        ("validation_results", "40"),
    }
    assert "ck_validation_results_status" in bad[("validation_results", "10")]
    assert bad[("validation_runs", "5")] == "started_at: unrecognised timestamp: 'not a date'"
    assert bad[("users", "2")] == "is_active: not a boolean: 7"
    assert bad[("validation_results", "30")].startswith(
        "details: invalid input syntax for type json"
    )
    assert "character varying(200)" in bad[("validation_results", "40")]
    assert failure.value.report.status == "failed"
    assert query(url, "SELECT phase FROM migrate_sqlite.run")[0][0] == "loading"

    report = migrate(base_env, url, dirty, tmp_path, skip_bad_rows=True)
    assert report.status == MIGRATED and report.resumed
    skipped = {(row.table, row.pk): row.reason for row in report.skipped_rows}
    assert set(bad) <= set(skipped)
    assert skipped[("validation_results", "20")] == (
        "run_id=999999: no validation_runs row with that id"
    )
    for result_id in set(run5_results) - {10, 20, 30, 40}:  # orphaned by skipping run 5
        assert skipped[("validation_results", str(result_id))].startswith("run_id=5: ")
    results = report.tables["validation_results"]
    assert results.target_rows == results.source_rows - results.skipped_rows
    assert all(t.checksum_match for t in report.tables.values())


def test_rows_pointing_nowhere_fail_the_run_until_skipped(
    small_sqlite, scratch_databases, base_env, tmp_path
):
    orphaned = _copy(small_sqlite, tmp_path, "orphaned.db")
    with sqlite3.connect(orphaned) as connection:
        connection.execute("UPDATE validation_results SET run_id = 999999 WHERE id = 20")
    url = scratch_databases()

    with pytest.raises(engine.MigrationError, match="reference rows that do not exist") as failure:
        migrate(base_env, url, orphaned, tmp_path)
    assert [(r.table, r.pk, r.reason) for r in failure.value.report.bad_rows] == [
        ("validation_results", "20", "run_id=999999: no validation_runs row with that id")
    ]
    # The rows are in, the constraint is not back yet; the others are.
    constraints = {
        name for (name,) in query(url, "SELECT conname FROM pg_constraint WHERE contype = 'f'")
    }
    assert "fk_validation_results_run_id_validation_runs" not in constraints
    assert "fk_validation_runs_created_by_id_users" in constraints

    report = migrate(base_env, url, orphaned, tmp_path, skip_bad_rows=True)
    assert report.status == MIGRATED and report.copied_rows == 0  # nothing left to copy
    assert [(r.table, r.pk) for r in report.skipped_rows] == [("validation_results", "20")]
    assert all(t.checksum_match for t in report.tables.values())
    assert "fk_validation_results_run_id_validation_runs" in {
        name for (name,) in query(url, "SELECT conname FROM pg_constraint WHERE contype = 'f'")
    }


def test_loose_sqlite_values_are_converted_by_the_models_types(
    small_sqlite, scratch_databases, base_env, tmp_path
):
    loose = _copy(small_sqlite, tmp_path, "loose.db")
    connection = sqlite3.connect(loose)
    timestamps = {
        9001: (0, dt.datetime(1970, 1, 1, tzinfo=dt.UTC)),
        9002: (1700000000.5, dt.datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=dt.UTC)),
        9003: ("2024-01-01T12:00:00+02:00", dt.datetime(2024, 1, 1, 10, tzinfo=dt.UTC)),
        9004: ("2024-01-01T12:00:00Z", dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC)),
        9005: ("1999-12-31", dt.datetime(1999, 12, 31, tzinfo=dt.UTC)),
        9006: ("1850-06-01 12:00:00.5", dt.datetime(1850, 6, 1, 12, 0, 0, 500000, tzinfo=dt.UTC)),
    }
    with connection:
        for run_id, (started, _) in timestamps.items():
            connection.execute(
                "INSERT INTO validation_runs (id, suite, status, total, passed, failed, warned,"
                " errored, started_at, created_at) VALUES (?, 'loose', 'passed', 1, 1, 0, 0, 0,"
                " ?, '2024-01-01 00:00:00')",
                (run_id, started),
            )
        connection.execute("UPDATE users SET is_active = 'true' WHERE id = 1")
        connection.execute("UPDATE users SET is_active = 'no' WHERE id = 4")
        connection.execute(
            "INSERT INTO validation_results (id, run_id, name, status, duration_ms, details)"
            " VALUES (90001, 9001, 'nan', 'pass', 'NaN', '42'),"
            " (90002, 9002, 'inf', 'pass', '-Infinity', '[1.50, 1e3]')"
        )
    connection.close()
    url = scratch_databases()

    report = migrate(base_env, url, loose, tmp_path)
    assert report.status == MIGRATED
    assert all(t.checksum_match for t in report.tables.values())
    for run_id, (_, expected) in timestamps.items():
        assert query(url, "SELECT started_at FROM validation_runs WHERE id = %s", (run_id,))[0][
            0
        ] == (expected)
    assert query(url, "SELECT is_active FROM users WHERE id IN (1, 4) ORDER BY id") == [
        (True,),
        (False,),
    ]
    rows = query(
        url,
        "SELECT duration_ms::text, details::text FROM validation_results"
        " WHERE id IN (90001, 90002) ORDER BY id",
    )
    assert rows == [("NaN", "42"), ("-Infinity", "[1.50, 1000]")]


def test_refuses_a_target_with_other_data_unless_forced(
    small_sqlite, scratch_databases, base_env, tmp_path
):
    url = scratch_databases()
    check = cli(base_env, url, str(small_sqlite), "--check", "--report", str(tmp_path / "c.json"))
    assert check.returncode == 0, check.stdout + check.stderr
    assert json.loads((tmp_path / "c.json").read_text())["status"] == PENDING
    assert query(url, "SELECT to_regclass('alembic_version')")[0][0] is None  # nothing written

    assert migrate(base_env, url, small_sqlite, tmp_path).status == MIGRATED
    query(url, "UPDATE validation_runs SET suite = 'edited' WHERE id = 3")

    refused = cli(base_env, url, str(small_sqlite), "--report", str(tmp_path / "r.json"))
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "holds different data (tables: validation_runs)" in refused.stdout
    document = json.loads((tmp_path / "r.json").read_text())
    assert document["status"] == CONFLICT and document["changed"] is False
    mismatch = next(t for t in document["tables"] if t["name"] == "validation_runs")["mismatches"]
    assert mismatch[0]["pk"] == "3" and "edited" in mismatch[0]["target"]
    assert query(url, "SELECT suite FROM validation_runs WHERE id = 3")[0][0] == "edited"

    forced = cli(base_env, url, str(small_sqlite), "--force", "--report", str(tmp_path / "f.json"))
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert json.loads((tmp_path / "f.json").read_text())["status"] == MIGRATED
    assert query(url, "SELECT suite FROM validation_runs WHERE id = 3")[0][0] != "edited"


def test_a_file_the_app_writes_to_during_the_copy_fails_the_run(
    small_sqlite, scratch_databases, base_env, tmp_path
):
    # The app still running on SQLite edits a run while the rows are being copied.
    source = tmp_path / "live.db"
    source.write_bytes(small_sqlite.read_bytes())

    def app_still_writing(line: str) -> None:
        if line.startswith("migrate-sqlite: copying"):
            with sqlite3.connect(source) as live:
                live.execute("UPDATE validation_runs SET suite = 'written meanwhile' WHERE id = 3")

    url = scratch_databases()
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {**base_env, "DATABASE_URL": url}.items():
            mp.setenv(name, value)
        app = create_app()
    options = engine.Options(
        sqlite_path=str(source), report_path=str(tmp_path / "r.json"), echo=app_still_writing
    )
    with pytest.raises(engine.MigrationError, match="live.db changed during the migration"):
        engine.run(app, options)
