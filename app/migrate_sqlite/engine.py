"""The migration run: inspect, schema, set up, load, finalise, verify, report.

See app/migrate_sqlite/README.md for the design; in short:

* The target is inspected read-only first. Rows already there that match the source
  (counts and checksums) mean "already migrated, verified": nothing is written. Other data is
  refused unless --force. An interrupted run of the same source is resumed.
* The schema comes from `alembic upgrade head`. For the load, the foreign keys, primary keys
  and plain secondary indexes are dropped (their definitions kept in migrate_sqlite.deferred)
  and put back afterwards, like pg_restore does: PostgreSQL then checks each foreign key once
  with a join instead of once per row, and builds each index once by sorting.
* Tables are cut into primary-key segments copied by parallel workers, each in one
  transaction that also marks the segment done: a killed run leaves whole segments or
  nothing, and the next run copies only what is missing.
* A segment PostgreSQL refuses is bisected (savepoints) down to the rows at fault; each is
  reported with table, primary key and reason, and the run fails unless --skip-bad-rows.
* Verification compares per table the row count and a checksum of every row's canonical
  text (computed in SQL on PostgreSQL, from the raw SQLite values in Python), plus the schema
  fingerprint from before the load.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import multiprocessing
import multiprocessing.util
import os
import signal
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from hashlib import md5

import psycopg2
import psycopg2.extras
from flask import Flask

from app.migrate_sqlite import convert
from app.migrate_sqlite import report as status
from app.migrate_sqlite import source as sqlite_side
from app.migrate_sqlite import target as pg
from app.migrate_sqlite.plan import (
    JSON_SEPARATOR,
    JSONB_MD5_SQL,
    PlanError,
    Table,
    load_table,
    quote,
)
from app.migrate_sqlite.report import BadRow, Report
from app.migrate_sqlite.source import CopyStream, Source, SourceError

MIN_KEY, MAX_KEY = -(2**63), 2**63 - 1
LOCK_WAIT_SECONDS = 15


class MigrationError(RuntimeError):
    """The run failed; the message says why. The target is left resumable."""

    exit_code = 1


class MigrationRefused(MigrationError):
    """Nothing was written: the target holds other data (or another run holds the lock)."""

    exit_code = 3


class TooManyBadRows(MigrationError):
    pass


@dataclass
class Options:
    sqlite_path: str
    report_path: str | None = None
    skip_bad_rows: bool = False
    force: bool = False
    check: bool = False
    jobs: int | None = None
    segment_rows: int = 10_000
    max_bad_rows: int = 1000
    echo: Callable[[str], None] = field(default=lambda line: print(line, flush=True))


@dataclass
class Digest:
    """Row count and the XOR of the rows' md5 (128 bits). Order-independent, so ranges combine
    in any order; rows always differ (at least in their primary key), so none cancel out."""

    rows: int = 0
    xor: int = 0

    def add(self, other: Digest) -> None:
        self.rows += other.rows
        self.xor ^= other.xor

    def __str__(self) -> str:
        return f"{self.rows}:{self.xor:032x}"

    @classmethod
    def parse(cls, text: str) -> Digest:
        rows, xor = text.split(":")
        return cls(int(rows), int(xor, 16))


class _Workers:
    """Thread-local PostgreSQL and SQLite connections, closed together."""

    def __init__(self, url: str, source: Source, *, readonly: bool):
        self.url, self.source, self.readonly = url, source, readonly
        self.local = threading.local()
        self.opened: list = []
        self.lock = threading.Lock()

    def pg(self):
        if getattr(self.local, "pg", None) is None:
            self.local.pg = pg.connect(self.url, readonly=self.readonly, bulk=not self.readonly)
            with self.lock:
                self.opened.append(self.local.pg)
        return self.local.pg

    def sqlite(self) -> sqlite_side.SourceConnection:
        if getattr(self.local, "sqlite", None) is None:
            self.local.sqlite = self.source.connect()
            with self.lock:
                self.opened.append(self.local.sqlite)
        return self.local.sqlite

    def close(self) -> None:
        for connection in self.opened:
            try:
                connection.close()
            except (psycopg2.Error, sqlite3.Error):
                pass


class Migration:
    def __init__(self, app: Flask, options: Options):
        self.app = app
        self.options = options
        self.url = app.config["SQLALCHEMY_DATABASE_URI"]
        self.jobs = options.jobs or min(4, os.cpu_count() or 1)
        self.report = Report(options.sqlite_path)
        self.report.options = {
            "skip_bad_rows": options.skip_bad_rows,
            "force": options.force,
            "check": options.check,
            "jobs": self.jobs,
            "segment_rows": options.segment_rows,
        }
        self.echo_lock = threading.Lock()
        self.bad_rows: list[BadRow] = []
        self.main = None
        self.rows_deleted_from: set[str] = set()  # tables finalising deleted orphans from

    # --- entry point -------------------------------------------------------------------------------

    def run(self) -> Report:
        report = self.report
        try:
            if not self.url.startswith("postgresql"):
                raise MigrationError(
                    "the app's database (DATABASE_URL) must be PostgreSQL to migrate into,"
                    f" not {self.url.split(':', 1)[0]}"
                )
            with self.app.app_context():
                self._run()
        except (MigrationError, SourceError, PlanError, psycopg2.Error) as exc:
            if report.status != status.CONFLICT:
                report.status = status.FAILED
            if isinstance(exc, psycopg2.Error):
                report.message = f"PostgreSQL: {str(exc).strip()}"
            else:
                report.message = str(exc)
            error = exc if isinstance(exc, MigrationError) else MigrationError(report.message)
            error.report = report
            if error is exc:
                raise
            raise error from exc
        finally:
            report.bad_rows = self.bad_rows
            report.finished_at = report.finished_at or dt.datetime.now(dt.UTC)
            if self.main is not None:
                self.main.close()
            if self.options.report_path:
                report.write(self.options.report_path)
        return report

    def echo(self, line: str) -> None:
        with self.echo_lock:
            self.options.echo(f"migrate-sqlite: {line}")

    def _phase(self, name: str, started: float) -> None:
        self.report.phases[name] = self.report.phases.get(name, 0.0) + time.perf_counter() - started

    # --- the run -----------------------------------------------------------------------------------

    def _run(self) -> None:
        from app.extensions import db

        report, options = self.report, self.options
        started = time.perf_counter()
        source = Source(options.sqlite_path)
        report.source.update(path=str(source.path), sha256=source.sha256, size_bytes=source.size)
        head = self._alembic_head()
        names = [table.name for table in db.metadata.sorted_tables]  # foreign-key order

        src = source.connect()
        try:
            source_revision = sqlite_side.revision(src)
            report.source["alembic_revision"] = source_revision
            self._check_source_tables(src, names, source_revision, head)
        finally:
            src.close()

        # Read-only until the inspection has decided that something must be written.
        self.main = main = pg.connect(self.url, readonly=True)
        report.target.update(pg.describe(self.url))
        with main.cursor() as cursor:
            report.target["server_version"] = pg.server_version(cursor)
        main.commit()
        # A killed run's server session can outlive it by a moment: wait a little for its lock.
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while not pg.try_lock(main):
            if time.monotonic() > deadline:
                report.status = status.CONFLICT
                raise MigrationRefused("another migration holds this database's lock; try later")
            time.sleep(0.5)

        mode, reason = self._inspect(source, names, head)
        self._phase("inspect", started)
        if mode == "done":
            report.status = status.ALREADY_MIGRATED
            report.message = "already migrated, verified: nothing written"
            return
        if options.check:
            report.status = {"fresh": status.PENDING, "resume": status.RESUMABLE}.get(
                mode, status.CONFLICT
            )
            report.message = reason
            if mode == "conflict":
                raise MigrationRefused(reason)
            return
        if mode == "conflict" and not options.force:
            report.status = status.CONFLICT
            raise MigrationRefused(reason + "; nothing written (--force replaces it)")
        with main.cursor() as cursor:
            cursor.execute("SET default_transaction_read_only = off")
        main.commit()
        report.changed = True  # from here on this run writes, whatever happens next
        if mode == "conflict":
            self.echo(f"--force: emptying the target ({reason})")
            self._reset(names)
            mode = "fresh"

        step = time.perf_counter()
        if mode == "fresh":
            self._upgrade_schema()
        plans = self._plans(source, names)
        if mode == "fresh":
            self._setup(source, plans, head)
        else:
            report.resumed = True
            self.echo("resuming an interrupted migration of the same SQLite file")
        self._phase("setup", step)

        step = time.perf_counter()
        self._load(source, plans)
        self._phase("load", step)
        if self.bad_rows:
            raise MigrationError(
                f"{len(self.bad_rows)} row(s) cannot be converted (listed with table, primary key"
                " and reason); fix them in the SQLite file, or re-run with --skip-bad-rows to"
                " leave them out. Segments without bad rows are committed and will not be"
                " copied again."
            )

        step = time.perf_counter()
        with main.cursor() as cursor:
            segments = pg.segments(cursor)
        main.commit()
        # PostgreSQL's side of the checksums starts as soon as the primary keys are back and
        # runs beside the rest of the finalising (indexes, foreign keys, ANALYZE): reads that
        # none of it blocks. A table finalising deletes rows from (--skip-bad-rows orphans) is
        # checksummed again afterwards, so the verification is always of the final rows.
        early = _EarlyChecksums(self, self._units(plans, segments))
        try:
            self._finalize(plans, on_keys_restored=early.start)
            self._phase("finalize", step)

            step = time.perf_counter()
            with main.cursor() as cursor:
                state = pg.read_state(cursor)
                fingerprint = pg.schema_fingerprint(cursor, names)
                segments = pg.segments(cursor)
                skipped = pg.skipped(cursor)
            main.commit()
            if fingerprint != state["schema_fingerprint"]:
                raise MigrationError(
                    "the app tables' constraints and indexes differ from what `alembic upgrade"
                    " head` created before the load (run again to restore the rest)"
                )
            ok, source_changed = self._verify(source, plans, segments, skipped, early=early)
        finally:
            early.close()
        self._phase("verify", step)
        if source_changed:
            raise MigrationError(
                f"{source.path} changed during the migration: stop the app that writes to it"
                " and run again with --force"
            )
        if not ok:
            raise MigrationError(
                "verification failed: PostgreSQL does not hold the same rows as the SQLite file"
                " (see the tables' mismatches in the report)"
            )
        report.status = status.MIGRATED
        report.message = "migrated, verified"
        report.finished_at = dt.datetime.now(dt.UTC)
        with main.cursor() as cursor:
            cursor.execute(
                f"UPDATE {pg.SCHEMA}.run SET phase = 'done', finished_at = now(), report = %s",
                (psycopg2.extras.Json(report.to_dict()),),
            )
        main.commit()

    # --- inspection ---------------------------------------------------------------------------------

    def _alembic_head(self) -> str:
        from alembic.script import ScriptDirectory

        config = self.app.extensions["migrate"].migrate.get_config()
        heads = ScriptDirectory.from_config(config).get_heads()
        if len(heads) != 1:
            raise MigrationError(f"the app's migrations have {len(heads)} heads: {heads}")
        return heads[0]

    def _check_source_tables(self, src, names: list[str], revision: str | None, head: str):
        if revision is not None and revision != head:
            raise MigrationError(
                f"the SQLite database is at Alembic revision {revision}, the app at {head}:"
                f" upgrade a copy of it first (DATABASE_URL=sqlite:////path/copy.db flask db"
                f" upgrade) and migrate the copy"
            )
        present = set(sqlite_side.tables(src))
        missing = [name for name in names if name not in present]
        if missing:
            raise MigrationError(f"the SQLite database has no table {', '.join(missing)}")
        ignored = sorted(present - set(names) - {"alembic_version"})
        if ignored:
            self.report.warnings.append(
                f"SQLite tables the app does not know are not copied: {', '.join(ignored)}"
            )

    def _inspect(self, source: Source, names: list[str], head: str) -> tuple[str, str]:
        """("fresh" | "resume" | "done" | "conflict", why), without writing anything."""
        main = self.main
        with main.cursor() as cursor:
            state = pg.read_state(cursor)
            revision = pg.alembic_revision(cursor)
            has_rows = pg.tables_with_rows(cursor, names)
            segments = pg.segments(cursor) if state else []
            skipped = pg.skipped(cursor)
        main.commit()
        if state and state["source_sha256"] != source.sha256:
            for segment in segments:  # taken from another file: compute them again
                segment["source_digest"] = None
        self.report.target["alembic_revision"] = revision
        if state and state["phase"] != "done":
            if state["source_sha256"] != source.sha256:
                return "conflict", (
                    f"an interrupted migration of another SQLite file ({state['source_path']},"
                    f" sha256 {state['source_sha256'][:12]}) is in this database"
                )
            if state["alembic_revision"] != head:
                return "conflict", (
                    f"an interrupted migration made by app revision {state['alembic_revision']}"
                    f" (this app: {head}) is in this database"
                )
            return "resume", "an interrupted migration of this SQLite file can be finished"
        if not any(has_rows.values()):
            return "fresh", "the target's app tables are empty"
        if revision != head:
            return "conflict", f"the target holds data at Alembic revision {revision}, not {head}"
        plans = self._plans(source, names)
        if not segments:
            segments = self._source_segments(source, plans)
        self.echo("the target holds data: verifying it against the SQLite file (read-only)")
        if self._verify(source, plans, segments, skipped)[0]:
            return "done", "verified"
        different = [t.name for t in self.report.tables.values() if not t.checksum_match]
        return "conflict", f"the target holds different data (tables: {', '.join(different)})"

    def _plans(self, source: Source, names: list[str]) -> list[Table]:
        with self.main.cursor() as cursor:
            dropped = {
                item["table"]: item for item in pg.deferred(cursor) if item["kind"] == "primary_key"
            }
            plans = [load_table(cursor, name, dropped.get(name)) for name in names]
        self.main.commit()
        src = source.connect()
        try:
            for table in plans:
                have = set(sqlite_side.columns(src, table.name))
                want = {c.name for c in table.columns}
                if have != want:
                    raise MigrationError(
                        f"{table.name}: columns differ between SQLite and PostgreSQL"
                        f" (only in SQLite: {sorted(have - want)}, only in PostgreSQL:"
                        f" {sorted(want - have)})"
                    )
                self.report.table(table.name).source_rows = sqlite_side.row_count(src, table.name)
        finally:
            src.close()
        return plans

    def _source_segments(self, source: Source, plans: list[Table]) -> list[dict]:
        src = source.connect()
        try:
            result = []
            for table in plans:
                for lo, hi, rows in sqlite_side.segments(
                    src, table.name, table.pk, self.options.segment_rows
                ):
                    result.append({"table": table.name, "lo": lo, "hi": hi, "source_rows": rows})
            return result
        finally:
            src.close()

    # --- writing: reset, schema, setup ----------------------------------------------------------------

    def _reset(self, names: list[str]) -> None:
        """--force: empty the app tables, put back anything an interrupted run dropped, and
        forget its state. One transaction."""
        main = self.main
        with main.cursor() as cursor:
            existing = [
                n for n, rows in pg.tables_with_rows(cursor, names).items() if rows is not None
            ]
            if existing:
                cursor.execute(
                    f"TRUNCATE {', '.join(quote(n) for n in existing)} RESTART IDENTITY CASCADE"
                )
            for item in pg.deferred(cursor):
                cursor.execute(pg.restore_statement(item))
            cursor.execute(f"DROP SCHEMA IF EXISTS {pg.SCHEMA} CASCADE")
        main.commit()

    def _upgrade_schema(self) -> None:
        from flask_migrate import upgrade

        from app.extensions import db

        self.echo("schema: alembic upgrade head")
        upgrade()
        db.engine.dispose()
        with self.main.cursor() as cursor:
            self.report.target["alembic_revision"] = pg.alembic_revision(cursor)
        self.main.commit()

    def _setup(self, source: Source, plans: list[Table], head: str) -> None:
        """One transaction: the state tables, the deferred DDL (dropped) and the segments."""
        main = self.main
        names = [t.name for t in plans]
        segments = self._source_segments(source, plans)
        with main.cursor() as cursor:
            fingerprint = pg.schema_fingerprint(cursor, names)
            cursor.execute(f"DROP SCHEMA IF EXISTS {pg.SCHEMA} CASCADE")
            cursor.execute(pg.STATE_DDL)
            cursor.execute(
                f"INSERT INTO {pg.SCHEMA}.run (id, phase, source_path, source_sha256,"
                " alembic_revision, schema_fingerprint) VALUES (1, 'loading', %s, %s, %s, %s)",
                (str(source.path), source.sha256, head, fingerprint),
            )
            deferred = (
                [
                    {
                        "name": fk["name"],
                        "table": t.name,
                        "kind": "foreign_key",
                        "definition": fk["definition"],
                        "columns": fk["columns"],
                        "ref_table": fk["ref_table"],
                        "ref_columns": fk["ref_columns"],
                    }
                    for t in plans
                    for fk in t.foreign_keys
                ]
                + [
                    {
                        "name": t.primary_key["name"],
                        "table": t.name,
                        "kind": "primary_key",
                        "definition": t.primary_key["definition"],
                        "columns": [t.pk],
                        "ref_table": None,
                        "ref_columns": None,
                    }
                    for t in plans
                ]
                + [
                    {
                        "name": index,
                        "table": table,
                        "kind": "index",
                        "definition": definition,
                        "columns": None,
                        "ref_table": None,
                        "ref_columns": None,
                    }
                    for table, index, definition in pg.secondary_indexes(cursor, names)
                ]
            )
            for item in deferred:
                cursor.execute(
                    f"INSERT INTO {pg.SCHEMA}.deferred (name, table_name, kind, definition,"
                    " columns, ref_table, ref_columns) VALUES (%(name)s, %(table)s, %(kind)s,"
                    " %(definition)s, %(columns)s, %(ref_table)s, %(ref_columns)s)",
                    item,
                )
                cursor.execute(pg.drop_statement(item))
            psycopg2.extras.execute_values(
                cursor,
                f"INSERT INTO {pg.SCHEMA}.segment (table_name, lo, hi, source_rows) VALUES %s",
                [(s["table"], s["lo"], s["hi"], s["source_rows"]) for s in segments],
            )
        main.commit()
        self.echo(
            f"set up {len(segments)} segments; deferred {len(deferred)} foreign keys and"
            " indexes until the data is in"
        )

    # --- loading ------------------------------------------------------------------------------------

    def _load(self, source: Source, plans: list[Table]) -> None:
        by_name = {t.name: t for t in plans}
        main = self.main
        with main.cursor() as cursor:
            segments = pg.segments(cursor)
        main.commit()
        self._skip_non_integer_keys(source, plans)
        pending = []
        for segment in segments:
            table = self.report.table(segment["table"])
            table.segments += 1
            if segment["loaded"]:
                table.resumed_segments += 1
            else:
                pending.append(segment)
        # Biggest first, so the last segments to finish are small ones.
        pending.sort(key=lambda s: -s["source_rows"])
        if not pending:
            return
        self.echo(
            f"copying {sum(s['source_rows'] for s in pending)} rows in {len(pending)}"
            f" segments with {self.jobs} workers"
        )
        # Worker processes rather than threads: producing the lines is Python and SQLite work
        # that threads serialise on the GIL (each row's float conversions call back into
        # Python). The processes are forked from here, inheriting the plans; each opens its own
        # connections, and dies with this process (a killed run leaves no process copying).
        _CHILD.update(migration=self, source=source, tables=by_name, parent=os.getpid())
        try:
            with ProcessPoolExecutor(
                self.jobs,
                mp_context=multiprocessing.get_context("fork"),
                initializer=_child_init,
            ) as pool:
                futures = [pool.submit(_child_load, s["table"], s) for s in pending]
                try:
                    for future in futures:
                        self._account(*future.result())
                except BaseException:
                    for future in futures:
                        future.cancel()
                    raise
        finally:
            _CHILD.clear()

    def _skip_non_integer_keys(self, source: Source, plans: list[Table]) -> None:
        src = source.connect()
        try:
            found = [
                BadRow(t.name, key, f"{t.pk}: primary key is not an integer")
                for t in plans
                for key in sqlite_side.non_integer_keys(
                    src, t.name, t.pk, self.options.max_bad_rows
                )
            ]
        finally:
            src.close()
        if not found:
            return
        if not self.options.skip_bad_rows:
            self.bad_rows.extend(found)
            return
        with self.main.cursor() as cursor:
            for row in found:
                self._record_skipped(cursor, row)
        self.main.commit()

    def _record_skipped(self, cursor, row: BadRow) -> None:
        cursor.execute(
            f"INSERT INTO {pg.SCHEMA}.skipped (table_name, pk, reason) VALUES (%s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            (row.table, str(row.pk), row.reason),
        )

    def _account(self, name: str, loaded: int, seconds: float, bad: list, committed: bool):
        """A segment's outcome into the report (in the process that runs the migration)."""
        if not committed:
            self.bad_rows.extend(bad)
            if len(self.bad_rows) > self.options.max_bad_rows:  # (workers count their own)
                del self.bad_rows[self.options.max_bad_rows :]
                raise TooManyBadRows(
                    f"more than {self.options.max_bad_rows} bad rows: stopped looking"
                    " (the first ones are in the report)"
                )
            return
        entry = self.report.table(name)
        entry.copied_rows += loaded
        entry.load_seconds += seconds

    def _load_segment(self, workers: _Workers, table: Table, segment: dict) -> tuple:
        """Copy one segment in one transaction; returns (table, rows copied, seconds, bad rows,
        committed)."""
        connection, src = workers.pg(), workers.sqlite()
        lo, hi = segment["lo"], segment["hi"]
        started = time.perf_counter()
        bad: list[BadRow] = []
        with connection.cursor() as cursor:
            stream = CopyStream(src, table.source_load_query(), lo, hi)
            try:
                cursor.copy_expert(table.copy_statement(), stream, size=1 << 18)
                loaded = stream.rows
                digest = self._stream_digest(connection, table, stream)
            except (*pg.DATA_ERRORS, psycopg2.errors.QueryCanceled, sqlite3.Error) as exc:
                connection.rollback()
                if isinstance(exc, psycopg2.errors.QueryCanceled) and stream.error is None:
                    raise
                loaded = self._load_carefully(cursor, src, table, lo, hi, bad)
                skip = {row.pk for row in bad}
                digest = self._source_digest(workers, table, lo, hi, skip, connection)
            if bad and not self.options.skip_bad_rows:
                connection.rollback()
                self.echo(f"{table.name}: rows {lo}..{hi} NOT committed: {len(bad)} bad row(s)")
                return table.name, 0, 0.0, bad, False
            for row in bad:
                self._record_skipped(cursor, row)
            seconds = time.perf_counter() - started
            cursor.execute(
                f"UPDATE {pg.SCHEMA}.segment SET loaded_rows = %s, seconds = %s, loaded_at = now(),"
                " source_digest = %s, skipped_rows = %s"
                " WHERE table_name = %s AND lo = %s AND loaded_at IS NULL",
                (loaded, seconds, str(digest), len(bad), table.name, lo),
            )
            if cursor.rowcount != 1:  # another run committed it meanwhile: keep theirs
                connection.rollback()
                raise MigrationError(
                    f"{table.name}: rows {lo}..{hi} were copied by another run meanwhile"
                )
        connection.commit()
        skipped = f", {len(bad)} skipped" if bad else ""
        self.echo(f"{table.name}: committed rows {lo}..{hi} ({loaded} rows{skipped})")
        return table.name, loaded, seconds, bad, True

    def _load_carefully(self, cursor, src, table: Table, lo: int, hi: int, bad: list) -> int:
        """Copy the segment in halves, then quarters... under savepoints, down to the single
        rows PostgreSQL refuses; those go to ``bad``. Returns the rows copied."""
        keys = sqlite_side.keys_between(src, table.name, table.pk, lo, hi)
        query, statement = table.source_copy_query(), table.copy_statement()

        def attempt(first: int, end: int) -> int:
            cursor.execute("SAVEPOINT lvd_rows")
            stream = CopyStream(src, query, keys[first], keys[end - 1])
            try:
                cursor.copy_expert(statement, stream, size=1 << 18)
            except (*pg.DATA_ERRORS, psycopg2.errors.QueryCanceled, sqlite3.Error) as exc:
                cursor.execute("ROLLBACK TO SAVEPOINT lvd_rows")
                cursor.execute("RELEASE SAVEPOINT lvd_rows")
                if isinstance(exc, psycopg2.errors.QueryCanceled) and stream.error is None:
                    raise
                if end - first == 1:
                    bad.append(
                        BadRow(
                            table.name,
                            str(keys[first]),
                            self._reason(src, table, keys[first], stream.error or exc),
                        )
                    )
                    with self.echo_lock:
                        too_many = len(self.bad_rows) + len(bad) > self.options.max_bad_rows
                    if too_many:
                        raise TooManyBadRows(
                            f"more than {self.options.max_bad_rows} bad rows: stopped looking"
                            " (the first ones are in the report)"
                        ) from None
                    return 0
                middle = (first + end) // 2
                return attempt(first, middle) + attempt(middle, end)
            cursor.execute("RELEASE SAVEPOINT lvd_rows")
            return stream.rows

        return attempt(0, len(keys)) if keys else 0

    @staticmethod
    def _reason(src, table: Table, key, exc) -> str:
        known = src.reasons.get((table.name, key))
        if known:
            return known
        if isinstance(exc, sqlite3.Error):
            return f"cannot be read from SQLite ({exc}; is the text valid UTF-8?)"
        diag = getattr(exc, "diag", None)
        message = (diag and diag.message_primary) or str(exc).strip()
        context = (diag and diag.context) or ""
        column = ""
        if ", column " in context:
            column = context.split(", column ", 1)[1].split(":", 1)[0].strip() + ": "
        detail = f" ({diag.message_detail})" if diag and diag.message_detail else ""
        return f"{column}{message}{detail}"

    # --- finalising -----------------------------------------------------------------------------------

    def _finalize(self, plans: list[Table], on_keys_restored: Callable | None = None) -> None:
        """Primary keys, indexes and foreign keys back (each in its own transaction with its
        marker), sequences past the largest id, statistics. ``on_keys_restored`` is called
        once the primary keys are back."""
        main = self.main
        by_name = {t.name: t for t in plans}
        order = {t.name: position for position, t in enumerate(plans)}  # foreign-key order
        with main.cursor() as cursor:
            pending = pg.deferred(cursor)
        main.commit()
        primary_keys = [item for item in pending if item["kind"] == "primary_key"]
        indexes = [item for item in pending if item["kind"] == "index"]
        foreign_keys = sorted(
            (item for item in pending if item["kind"] == "foreign_key"),
            key=lambda item: order[item["table"]],
        )
        if pending:
            self.echo(
                f"restoring {len(primary_keys)} primary keys, {len(indexes)} indexes and"
                f" {len(foreign_keys)} foreign keys"
            )
        workers = _Workers(self.url, None, readonly=False)
        try:
            try:
                _run_all(self.jobs, [(self._restore, workers, item) for item in primary_keys])
            except psycopg2.errors.UniqueViolation as exc:
                # SQLite keeps integer primary keys unique; only a damaged file gets here.
                raise MigrationError(f"duplicate primary key in the SQLite data: {exc}") from exc
            if on_keys_restored is not None:
                on_keys_restored()
            _run_all(self.jobs, [(self._restore, workers, item) for item in indexes])
            # Foreign keys one at a time (each locks both of its tables), a child table's after
            # its parents': the rows an orphan's removal leaves orphaned are then found by the
            # next constraint, never removed silently by an ON DELETE CASCADE.
            orphans = []
            for item in foreign_keys:
                orphans += self._restore_foreign_key(workers, item, by_name[item["table"]])
            if orphans:
                self.bad_rows.extend(orphans[: self.options.max_bad_rows])
                raise MigrationError(
                    f"{len(orphans)} row(s) reference rows that do not exist (listed with table,"
                    " primary key and reason); fix them in the SQLite file, or re-run with"
                    " --skip-bad-rows to leave them out"
                )
            with main.cursor() as cursor:
                for table in plans:
                    if table.sequence:
                        # The next id is max(id) + 1 (1 for an empty table).
                        cursor.execute(
                            f"SELECT setval(%s, greatest(coalesce(max({quote(table.pk)}), 0), 0)"
                            f" + 1, false) FROM {quote(table.name)}",
                            (table.sequence,),
                        )
            main.commit()
            _run_all(self.jobs, [(self._analyze, workers, table) for table in plans])
        finally:
            workers.close()

    def _restore_foreign_key(self, workers: _Workers, item: dict, table: Table) -> list[BadRow]:
        """Add the constraint back (PostgreSQL checks every row with one join). Should it fail,
        the rows at fault are bad rows: returned, or with --skip-bad-rows deleted and recorded
        before trying again."""
        connection = workers.pg()
        limit = self.options.max_bad_rows + 1
        while True:
            try:
                self._restore(workers, item)
                return []
            except psycopg2.errors.ForeignKeyViolation:
                connection.rollback()
            with connection.cursor() as cursor:
                cursor.execute(pg.orphans_query(item, table.pk, limit))
                orphans = []
                for pk, *values in cursor.fetchall():
                    pairs = ", ".join(
                        f"{c}={v}" for c, v in zip(item["columns"], values, strict=True)
                    )
                    reason = f"{pairs}: no {item['ref_table']} row with that {'/'.join(item['ref_columns'])}"
                    orphans.append(BadRow(table.name, str(pk), reason))
                if not orphans:
                    raise MigrationError(f"foreign key {item['name']} cannot be added back")
                if not self.options.skip_bad_rows:
                    connection.rollback()
                    return orphans
                self.rows_deleted_from.add(table.name)
                for row in orphans:
                    cursor.execute(
                        f"DELETE FROM {quote(table.name)} WHERE {quote(table.pk)} = %s",
                        (int(row.pk),),
                    )
                    self._record_skipped(cursor, row)
            connection.commit()

    @staticmethod
    def _restore(workers: _Workers, item: dict) -> None:
        connection = workers.pg()
        with connection.cursor() as cursor:
            cursor.execute(pg.restore_statement(item))
            cursor.execute(
                f"UPDATE {pg.SCHEMA}.deferred SET restored = true WHERE name = %s", (item["name"],)
            )
        connection.commit()

    @staticmethod
    def _analyze(workers: _Workers, table: Table) -> None:
        connection = workers.pg()
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {quote(table.name)}")
        connection.commit()

    # --- verification -------------------------------------------------------------------------------------

    @staticmethod
    def _units(plans: list[Table], segments: list[dict]) -> list[tuple]:
        """The ranges checksummed, (table, lo, hi, segment): the segments, the first and last
        widened to the whole key space, so that rows outside the planned ranges count too."""
        units = []
        for table in plans:
            mine = [s for s in segments if s["table"] == table.name]
            ranges = [[s["lo"], s["hi"], s] for s in mine] or [[MIN_KEY, MAX_KEY, None]]
            ranges[0][0], ranges[-1][1] = MIN_KEY, MAX_KEY
            units += [(table, lo, hi, segment) for lo, hi, segment in ranges]
        return units

    def _source_digests(self, source: Source, units: list, skipped: dict) -> list[Digest]:
        workers = _Workers(self.url, source, readonly=True)
        try:
            with ThreadPoolExecutor(self.jobs, thread_name_prefix="checksum-sqlite") as pool:
                futures = [
                    pool.submit(self._source_digest, workers, *unit[:3], skipped[unit[0].name])
                    for unit in units
                ]
                return [future.result() for future in futures]
        finally:
            workers.close()

    def _target_digests(self, units: list) -> list[Digest]:
        workers = _Workers(self.url, None, readonly=True)
        try:
            with ThreadPoolExecutor(self.jobs, thread_name_prefix="checksum-pg") as pool:
                futures = [pool.submit(self._target_digest, workers, *unit[:3]) for unit in units]
                return [future.result() for future in futures]
        finally:
            workers.close()

    def _verify(self, source, plans, segments, skipped, early=None) -> tuple[bool, bool]:
        """Counts and checksums of every table on both sides: (every table matches, the
        SQLite file changed since it was fingerprinted). The source side of a segment comes
        from its load (segment.source_digest) unless rows of it were skipped since; the rest
        is computed from SQLite, then the file's fingerprint taken again, while PostgreSQL
        computes its side (or finishes it: ``early``, an _EarlyChecksums started during
        finalising)."""
        units = self._units(plans, segments)
        keys = _skipped_keys(skipped)
        stored: list[Digest | None] = []
        for table, lo, hi, segment in units:
            digest = segment and segment.get("source_digest")
            in_range = sum(1 for key in keys[table.name] if _key_between(key, lo, hi))
            fresh = digest and segment["skipped_rows"] == in_range
            stored.append(Digest.parse(digest) if fresh else None)
        missing = [index for index, digest in enumerate(stored) if digest is None]
        if early is not None and early.units != units:  # segments changed: start afresh
            early = None
        with ThreadPoolExecutor(1, thread_name_prefix="checksum") as background:
            source_side = background.submit(
                self._source_side, source, [units[i] for i in missing], keys
            )
            if early is not None:
                target_side = early.results(self.rows_deleted_from)
            else:
                target_side = self._target_digests(units)
            digests, changed = source_side.result()
        for index, digest in zip(missing, digests, strict=True):
            stored[index] = digest
        return self._compare(source, plans, units, stored, target_side, skipped), changed

    def _source_side(self, source: Source, units: list, skipped: dict) -> tuple[list, bool]:
        """The source digests of ``units``, then whether the file changed (after that read)."""
        digests = self._source_digests(source, units, skipped) if units else []
        return digests, source.changed()

    def _compare(self, source, plans, units, source_side, target_side, skipped) -> bool:
        """Fill the report's tables from both sides' digests; True when every table matches.
        For a table that differs, the first rows that differ are looked up and reported."""
        keys = _skipped_keys(skipped)
        self.report.skipped_rows = [BadRow(*row) for row in skipped]
        ok = True
        for table in plans:
            mine = [
                (unit, src, tgt)
                for unit, src, tgt in zip(units, source_side, target_side, strict=True)
                if unit[0] is table
            ]
            source_digest, target_digest = Digest(), Digest()
            for _unit, src, tgt in mine:
                source_digest.add(src)
                target_digest.add(tgt)
            entry = self.report.table(table.name)
            entry.target_rows = target_digest.rows
            entry.skipped_rows = len(keys[table.name])
            entry.source_checksum = str(source_digest)
            entry.target_checksum = str(target_digest)
            entry.checksum_match = source_digest == target_digest
            if entry.checksum_match:
                continue
            ok = False
            (_, lo, hi, _), _, _ = next(item for item in mine if item[1] != item[2])
            workers = _Workers(self.url, source, readonly=True)
            try:
                entry.mismatches = self._row_differences(workers, table, lo, hi, keys[table.name])
            finally:
                workers.close()
        return ok

    @staticmethod
    def _target_digest(workers: _Workers, table: Table, lo: int, hi: int) -> Digest:
        connection = workers.pg()
        with connection.cursor() as cursor:
            cursor.execute(table.target_checksum_query(), (lo, hi))
            rows, xor = cursor.fetchone()
        connection.commit()
        return Digest(rows, int(xor or "0", 2))

    @staticmethod
    def _source_rows(workers: _Workers, table: Table, lo: int, hi: int, skip: set, connection):
        """(pk, canonical row bytes) of the SQLite rows in the range, less the skipped ones."""
        rows = [
            row
            for row in workers.sqlite().execute(table.source_canonical_query(), (lo, hi))
            if not skip or str(row[0]) not in skip
        ]
        tails = [b""] * len(rows)
        for position in range(2, 2 + len(table.jsonb_columns)):
            hashes = _jsonb_md5(connection, [row[position] for row in rows])
            tails = [tail + b"\t" + digest for tail, digest in zip(tails, hashes, strict=True)]
        for row, tail in zip(rows, tails, strict=True):
            yield row[0], row[1] + tail

    @classmethod
    def _source_digest(cls, workers, table: Table, lo: int, hi: int, skip, connection=None):
        """The source side of one range, read from SQLite (jsonb normalised by PostgreSQL on
        ``connection``, by default the worker's read-only one)."""
        own = connection is None
        connection = workers.pg() if own else connection
        rows = xor = 0
        from_bytes = int.from_bytes
        for _key, line in cls._source_rows(workers, table, lo, hi, skip, connection):
            rows += 1
            xor ^= from_bytes(md5(line).digest(), "big")
        if own:
            connection.commit()
        return Digest(rows, xor)

    @staticmethod
    def _stream_digest(connection, table: Table, stream: CopyStream) -> Digest:
        """The source side of a segment just copied, from what its CopyStream kept."""
        lines = stream.canonical
        for position in range(len(table.jsonb_columns)):
            tails = _jsonb_md5(connection, [values[position] for values in stream.jsonb])
            lines = [line + b"\t" + tail for line, tail in zip(lines, tails, strict=True)]
        xor = 0
        from_bytes = int.from_bytes
        for line in lines:
            xor ^= from_bytes(md5(line).digest(), "big")
        return Digest(len(lines), xor)

    @classmethod
    def _row_differences(cls, workers, table: Table, lo: int, hi: int, skip, limit=5) -> list:
        """The first rows that differ in one mismatching range, with both canonical texts."""
        connection = workers.pg()
        with connection.cursor() as cursor:
            cursor.execute(table.target_rows_query(), (lo, hi))
            target_rows = {str(key): text for key, text in cursor.fetchall()}
        connection.commit()
        source_rows = {
            str(key): line.decode("utf-8", "replace")
            for key, line in cls._source_rows(workers, table, lo, hi, skip, connection)
        }
        differences = []
        for key in sorted(set(source_rows) | set(target_rows), key=int):
            if source_rows.get(key) != target_rows.get(key):
                differences.append(
                    {
                        "pk": key,
                        "source": (source_rows.get(key) or "(missing)")[:300],
                        "target": (target_rows.get(key) or "(missing)")[:300],
                    }
                )
                if len(differences) >= limit:
                    break
        return differences


# In a load worker process: the migration it serves, its plans and connections.
_CHILD: dict = {}
PR_SET_PDEATHSIG = 1


def _child_init() -> None:
    try:  # Linux: killed with the run's process, never left copying on its own
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != _CHILD["parent"]:  # it died before that took effect
        os._exit(1)
    workers = _Workers(_CHILD["migration"].url, _CHILD["source"], readonly=False)
    _CHILD["workers"] = workers
    multiprocessing.util.Finalize(None, workers.close, exitpriority=10)


def _child_load(table_name: str, segment: dict) -> tuple:
    migration = _CHILD["migration"]
    return migration._load_segment(_CHILD["workers"], _CHILD["tables"][table_name], segment)


class _EarlyChecksums:
    """PostgreSQL's side of the checksums, computed on one connection while finalising goes
    on (started once the primary keys are back, so each range is an index scan). results()
    cancels what has not started and computes it, with the ranges of tables rows were deleted
    from since, on ``jobs`` connections."""

    def __init__(self, migration: Migration, units: list):
        self.migration, self.units = migration, units
        self.pool: ThreadPoolExecutor | None = None
        self.workers: _Workers | None = None
        self.futures: list = []

    def start(self) -> None:
        self.workers = _Workers(self.migration.url, None, readonly=True)
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="checksum-early")
        self.futures = [
            self.pool.submit(Migration._target_digest, self.workers, *unit[:3])
            for unit in self.units
        ]

    def results(self, tables_changed: set[str]) -> list[Digest]:
        if self.pool is None:
            return self.migration._target_digests(self.units)
        again = [
            index
            for index, (future, unit) in enumerate(zip(self.futures, self.units, strict=True))
            if future.cancel() or unit[0].name in tables_changed
        ]
        computed = self.migration._target_digests([self.units[i] for i in again])
        digests = dict(zip(again, computed, strict=True))
        return [
            digests[index] if index in digests else future.result()
            for index, future in enumerate(self.futures)
        ]

    def close(self) -> None:
        if self.pool is not None:
            for future in self.futures:
                future.cancel()
            self.pool.shutdown(wait=True)
        if self.workers is not None:
            self.workers.close()
        self.pool = self.workers = None


def _key_between(key: str, lo: int, hi: int) -> bool:
    try:
        return lo <= int(key) <= hi
    except ValueError:  # a primary key that is not an integer is in no range
        return False


def _skipped_keys(skipped: list[tuple]) -> dict[str, set[str]]:
    keys: dict[str, set[str]] = defaultdict(set)
    for table_name, key, _reason in skipped:
        keys[table_name].add(key)
    return keys


def _jsonb_md5(connection, values: list) -> list[bytes]:
    """The md5 (hex, as bytes) of PostgreSQL's jsonb text of each source value; b"\\N" for NULL.

    The documents travel as one array parameter, not through COPY. Should PostgreSQL refuse one
    (only possible when the source changed since the load), the batch is done in Python with
    convert.jsonb_canonical, and a document neither can read gets a hash nothing matches.
    Runs under a savepoint: the caller's transaction (a segment's load) is left as it was."""
    documents = []
    for value in values:
        try:
            documents.append(None if value is None else convert.json_text(value))
        except convert.Unconvertible:
            documents.append("\x00")
    present = [doc for doc in documents if doc is not None]
    if not present:
        return [b"\\N"] * len(documents)
    joined = JSON_SEPARATOR.join(present)
    hashes = None
    # A document holding the separator is not JSON: PostgreSQL would refuse it anyway.
    if joined.count(JSON_SEPARATOR) == len(present) - 1:
        with connection.cursor() as cursor:
            cursor.execute("SAVEPOINT lvd_jsonb")
            try:
                cursor.execute(JSONB_MD5_SQL, (joined,))
                text = (cursor.fetchone()[0] or "").encode()
                cursor.execute("RELEASE SAVEPOINT lvd_jsonb")
                # (One empty document is an empty text, which string_to_table takes for none.)
                if len(text) == 32 * len(present):
                    hashes = iter([text[i : i + 32] for i in range(0, len(text), 32)])
            except (psycopg2.DataError, ValueError):
                cursor.execute("ROLLBACK TO SAVEPOINT lvd_jsonb")
    if hashes is None:
        hashes = iter([_python_jsonb_md5(doc) for doc in present])
    return [b"\\N" if doc is None else next(hashes) for doc in documents]


def _python_jsonb_md5(document: str) -> bytes:
    try:
        text = convert.jsonb_canonical(document)
    except convert.Unconvertible as exc:
        text = f"!{exc}"
    return md5(text.encode("utf-8", "surrogatepass")).hexdigest().encode()


def _run_all(jobs: int, calls: list[tuple]) -> None:
    """Run calls (function, *args) on ``jobs`` threads; the first error cancels the calls not
    started yet and is raised once the running ones are done."""
    with ThreadPoolExecutor(jobs, thread_name_prefix="migrate-sqlite") as pool:
        futures = [pool.submit(*call) for call in calls]
        try:
            for future in futures:
                future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def run(app: Flask, options: Options) -> Report:
    """Run one migration; raises MigrationError (report filled in and written) on failure."""
    return Migration(app, options).run()
