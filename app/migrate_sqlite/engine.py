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

This module is the run itself (Migration.run) and the names callers import; the phases are
plain functions taking the run's state (common.MigrationState) as their first argument:

* common.py: the errors, Options, MigrationState, and Workers (thread-local connections).
* inspection.py: read-only inspection, the table plans and the source's segments.
* load.py: --force's reset, the schema, the set-up, and the load with its worker processes.
* finalize.py: constraints and indexes put back, sequences, ANALYZE.
* verify.py: Digest, the checksums of both sides and their comparison.
"""

from __future__ import annotations

import datetime as dt
import time

import psycopg2
import psycopg2.extras
from flask import Flask

from app.migrate_sqlite import finalize, inspection, load, source, target, verify
from app.migrate_sqlite.common import (
    MigrationError,
    MigrationRefused,
    MigrationState,
    Options,
    TooManyBadRows,
)
from app.migrate_sqlite.plan import PlanError
from app.migrate_sqlite.report import (
    ALREADY_MIGRATED,
    CONFLICT,
    FAILED,
    MIGRATED,
    PENDING,
    RESUMABLE,
    Report,
)
from app.migrate_sqlite.source import Source, SourceError
from app.migrate_sqlite.verify import Digest

__all__ = [
    "Digest",
    "Migration",
    "MigrationError",
    "MigrationRefused",
    "Options",
    "Report",
    "TooManyBadRows",
    "run",
]

LOCK_WAIT_SECONDS = 15


class Migration(MigrationState):
    """One run: its state (common.MigrationState) and the phases in their order."""

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
            if report.status != CONFLICT:
                report.status = FAILED
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

    def _phase(self, name: str, started: float) -> None:
        self.report.phases[name] = self.report.phases.get(name, 0.0) + time.perf_counter() - started

    # --- the run -----------------------------------------------------------------------------------

    def _run(self) -> None:
        from app.extensions import db

        report, options = self.report, self.options
        started = time.perf_counter()
        sqlite_file = Source(options.sqlite_path)
        report.source.update(
            path=str(sqlite_file.path), sha256=sqlite_file.sha256, size_bytes=sqlite_file.size
        )
        head = inspection.alembic_head(self)
        names = [table.name for table in db.metadata.sorted_tables]  # foreign-key order

        src = sqlite_file.connect()
        try:
            source_revision = source.revision(src)
            report.source["alembic_revision"] = source_revision
            inspection.check_source_tables(self, src, names, source_revision, head)
        finally:
            src.close()

        # Read-only until the inspection has decided that something must be written.
        self.main = main = target.connect(self.url, readonly=True)
        report.target.update(target.describe(self.url))
        with main.cursor() as cursor:
            report.target["server_version"] = target.server_version(cursor)
        main.commit()
        # A killed run's server session can outlive it by a moment: wait a little for its lock.
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while not target.try_lock(main):
            if time.monotonic() > deadline:
                report.status = CONFLICT
                raise MigrationRefused("another migration holds this database's lock; try later")
            time.sleep(0.5)

        mode, reason = inspection.inspect(self, sqlite_file, names, head)
        self._phase("inspect", started)
        if mode == "done":
            report.status = ALREADY_MIGRATED
            report.message = "already migrated, verified: nothing written"
            return
        if options.check:
            report.status = {"fresh": PENDING, "resume": RESUMABLE}.get(mode, CONFLICT)
            report.message = reason
            if mode == "conflict":
                raise MigrationRefused(reason)
            return
        if mode == "conflict" and not options.force:
            report.status = CONFLICT
            raise MigrationRefused(reason + "; nothing written (--force replaces it)")
        with main.cursor() as cursor:
            cursor.execute("SET default_transaction_read_only = off")
        main.commit()
        report.changed = True  # from here on this run writes, whatever happens next
        if mode == "conflict":
            self.echo(f"--force: emptying the target ({reason})")
            load.reset(self, names)
            mode = "fresh"

        step = time.perf_counter()
        if mode == "fresh":
            load.upgrade_schema(self)
        plans = inspection.table_plans(self, sqlite_file, names)
        if mode == "fresh":
            load.setup(self, sqlite_file, plans, head)
        else:
            report.resumed = True
            self.echo("resuming an interrupted migration of the same SQLite file")
        self._phase("setup", step)

        step = time.perf_counter()
        load.load(self, sqlite_file, plans)
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
            segments = target.segments(cursor)
        main.commit()
        # PostgreSQL's side of the checksums starts as soon as the primary keys are back and
        # runs beside the rest of the finalising (indexes, foreign keys, ANALYZE): reads that
        # none of it blocks. A table finalising deletes rows from (--skip-bad-rows orphans) is
        # checksummed again afterwards, so the verification is always of the final rows.
        early = verify.EarlyChecksums(self, verify.checksum_units(plans, segments))
        try:
            finalize.finalize(self, plans, on_keys_restored=early.start)
            self._phase("finalize", step)

            step = time.perf_counter()
            with main.cursor() as cursor:
                state = target.read_state(cursor)
                fingerprint = target.schema_fingerprint(cursor, names)
                segments = target.segments(cursor)
                skipped = target.skipped(cursor)
            main.commit()
            if fingerprint != state["schema_fingerprint"]:
                raise MigrationError(
                    "the app tables' constraints and indexes differ from what `alembic upgrade"
                    " head` created before the load (run again to restore the rest)"
                )
            ok, source_changed = verify.verify(
                self, sqlite_file, plans, segments, skipped, early=early
            )
        finally:
            early.close()
        self._phase("verify", step)
        if source_changed:
            raise MigrationError(
                f"{sqlite_file.path} changed during the migration: stop the app that writes to it"
                " and run again with --force"
            )
        if not ok:
            raise MigrationError(
                "verification failed: PostgreSQL does not hold the same rows as the SQLite file"
                " (see the tables' mismatches in the report)"
            )
        report.status = MIGRATED
        report.message = "migrated, verified"
        report.finished_at = dt.datetime.now(dt.UTC)
        with main.cursor() as cursor:
            cursor.execute(
                f"UPDATE {target.SCHEMA}.run SET phase = 'done', finished_at = now(), report = %s",
                (psycopg2.extras.Json(report.to_dict()),),
            )
        main.commit()


def run(app: Flask, options: Options) -> Report:
    """Run one migration; raises MigrationError (report filled in and written) on failure."""
    return Migration(app, options).run()
