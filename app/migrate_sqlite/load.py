"""Writing and loading: --force's reset, the schema (alembic upgrade head), the set-up (state
tables, deferred DDL dropped, segments), then the segments copied by worker processes, a
refused segment bisected down to its bad rows."""

from __future__ import annotations

import ctypes
import multiprocessing
import multiprocessing.util
import os
import signal
import sqlite3
import time
from concurrent.futures import ProcessPoolExecutor

import psycopg2
import psycopg2.extras

from app.migrate_sqlite import inspection, source, target, verify
from app.migrate_sqlite.common import MigrationError, MigrationState, TooManyBadRows, Workers
from app.migrate_sqlite.plan import Table, quote
from app.migrate_sqlite.report import BadRow
from app.migrate_sqlite.source import CopyStream, Source

# --- writing: reset, schema, setup ----------------------------------------------------------------


def reset(migration: MigrationState, names: list[str]) -> None:
    """--force: empty the app tables, put back anything an interrupted run dropped, and
    forget its state. One transaction."""
    main = migration.main
    with main.cursor() as cursor:
        existing = [
            n for n, rows in target.tables_with_rows(cursor, names).items() if rows is not None
        ]
        if existing:
            cursor.execute(
                f"TRUNCATE {', '.join(quote(n) for n in existing)} RESTART IDENTITY CASCADE"
            )
        for item in target.deferred(cursor):
            cursor.execute(target.restore_statement(item))
        cursor.execute(f"DROP SCHEMA IF EXISTS {target.SCHEMA} CASCADE")
    main.commit()


def upgrade_schema(migration: MigrationState) -> None:
    from flask_migrate import upgrade

    from app.extensions import db

    migration.echo("schema: alembic upgrade head")
    upgrade()
    db.engine.dispose()
    with migration.main.cursor() as cursor:
        migration.report.target["alembic_revision"] = target.alembic_revision(cursor)
    migration.main.commit()


def setup(migration: MigrationState, sqlite_file: Source, plans: list[Table], head: str) -> None:
    """One transaction: the state tables, the deferred DDL (dropped) and the segments."""
    main = migration.main
    names = [t.name for t in plans]
    segments = inspection.source_segments(migration, sqlite_file, plans)
    with main.cursor() as cursor:
        fingerprint = target.schema_fingerprint(cursor, names)
        cursor.execute(f"DROP SCHEMA IF EXISTS {target.SCHEMA} CASCADE")
        cursor.execute(target.STATE_DDL)
        cursor.execute(
            f"INSERT INTO {target.SCHEMA}.run (id, phase, source_path, source_sha256,"
            " alembic_revision, schema_fingerprint) VALUES (1, 'loading', %s, %s, %s, %s)",
            (str(sqlite_file.path), sqlite_file.sha256, head, fingerprint),
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
                for table, index, definition in target.secondary_indexes(cursor, names)
            ]
        )
        for item in deferred:
            cursor.execute(
                f"INSERT INTO {target.SCHEMA}.deferred (name, table_name, kind, definition,"
                " columns, ref_table, ref_columns) VALUES (%(name)s, %(table)s, %(kind)s,"
                " %(definition)s, %(columns)s, %(ref_table)s, %(ref_columns)s)",
                item,
            )
            cursor.execute(target.drop_statement(item))
        psycopg2.extras.execute_values(
            cursor,
            f"INSERT INTO {target.SCHEMA}.segment (table_name, lo, hi, source_rows) VALUES %s",
            [(s["table"], s["lo"], s["hi"], s["source_rows"]) for s in segments],
        )
    main.commit()
    migration.echo(
        f"set up {len(segments)} segments; deferred {len(deferred)} foreign keys and"
        " indexes until the data is in"
    )


# --- loading ------------------------------------------------------------------------------------


def load(migration: MigrationState, sqlite_file: Source, plans: list[Table]) -> None:
    by_name = {t.name: t for t in plans}
    main = migration.main
    with main.cursor() as cursor:
        segments = target.segments(cursor)
    main.commit()
    _skip_non_integer_keys(migration, sqlite_file, plans)
    pending = []
    for segment in segments:
        table = migration.report.table(segment["table"])
        table.segments += 1
        if segment["loaded"]:
            table.resumed_segments += 1
        else:
            pending.append(segment)
    # Biggest first, so the last segments to finish are small ones.
    pending.sort(key=lambda s: -s["source_rows"])
    if not pending:
        return
    migration.echo(
        f"copying {sum(s['source_rows'] for s in pending)} rows in {len(pending)}"
        f" segments with {migration.jobs} workers"
    )
    # Worker processes rather than threads: producing the lines is Python and SQLite work
    # that threads serialise on the GIL (each row's float conversions call back into
    # Python). The processes are forked from here, inheriting the plans; each opens its own
    # connections, and dies with this process (a killed run leaves no process copying).
    _CHILD.update(migration=migration, sqlite_file=sqlite_file, tables=by_name, parent=os.getpid())
    try:
        with ProcessPoolExecutor(
            migration.jobs,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_child_init,
        ) as pool:
            futures = [pool.submit(_child_load, s["table"], s) for s in pending]
            try:
                for future in futures:
                    _account(migration, *future.result())
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    finally:
        _CHILD.clear()


def _skip_non_integer_keys(
    migration: MigrationState, sqlite_file: Source, plans: list[Table]
) -> None:
    src = sqlite_file.connect()
    try:
        found = [
            BadRow(t.name, key, f"{t.pk}: primary key is not an integer")
            for t in plans
            for key in source.non_integer_keys(src, t.name, t.pk, migration.options.max_bad_rows)
        ]
    finally:
        src.close()
    if not found:
        return
    if not migration.options.skip_bad_rows:
        migration.bad_rows.extend(found)
        return
    with migration.main.cursor() as cursor:
        for row in found:
            record_skipped(cursor, row)
    migration.main.commit()


def record_skipped(cursor, row: BadRow) -> None:
    cursor.execute(
        f"INSERT INTO {target.SCHEMA}.skipped (table_name, pk, reason) VALUES (%s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (row.table, str(row.pk), row.reason),
    )


def _account(
    migration: MigrationState, name: str, loaded: int, seconds: float, bad: list, committed: bool
):
    """A segment's outcome into the report (in the process that runs the migration)."""
    if not committed:
        migration.bad_rows.extend(bad)
        if len(migration.bad_rows) > migration.options.max_bad_rows:  # (workers count their own)
            del migration.bad_rows[migration.options.max_bad_rows :]
            raise TooManyBadRows(
                f"more than {migration.options.max_bad_rows} bad rows: stopped looking"
                " (the first ones are in the report)"
            )
        return
    entry = migration.report.table(name)
    entry.copied_rows += loaded
    entry.load_seconds += seconds


def _load_segment(
    migration: MigrationState, workers: Workers, table: Table, segment: dict
) -> tuple:
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
            digest = verify.stream_digest(connection, table, stream)
        except (*target.DATA_ERRORS, psycopg2.errors.QueryCanceled, sqlite3.Error) as exc:
            connection.rollback()
            if isinstance(exc, psycopg2.errors.QueryCanceled) and stream.error is None:
                raise
            loaded = _load_carefully(migration, cursor, src, table, lo, hi, bad)
            skip = {row.pk for row in bad}
            digest = verify.source_digest(workers, table, lo, hi, skip, connection)
        if bad and not migration.options.skip_bad_rows:
            connection.rollback()
            migration.echo(f"{table.name}: rows {lo}..{hi} NOT committed: {len(bad)} bad row(s)")
            return table.name, 0, 0.0, bad, False
        for row in bad:
            record_skipped(cursor, row)
        seconds = time.perf_counter() - started
        cursor.execute(
            f"UPDATE {target.SCHEMA}.segment SET loaded_rows = %s, seconds = %s, loaded_at = now(),"
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
    migration.echo(f"{table.name}: committed rows {lo}..{hi} ({loaded} rows{skipped})")
    return table.name, loaded, seconds, bad, True


def _load_carefully(
    migration: MigrationState, cursor, src, table: Table, lo: int, hi: int, bad: list
) -> int:
    """Copy the segment in halves, then quarters... under savepoints, down to the single
    rows PostgreSQL refuses; those go to ``bad``. Returns the rows copied."""
    keys = source.keys_between(src, table.name, table.pk, lo, hi)
    query, statement = table.source_copy_query(), table.copy_statement()

    def attempt(first: int, end: int) -> int:
        cursor.execute("SAVEPOINT lvd_rows")
        stream = CopyStream(src, query, keys[first], keys[end - 1])
        try:
            cursor.copy_expert(statement, stream, size=1 << 18)
        except (*target.DATA_ERRORS, psycopg2.errors.QueryCanceled, sqlite3.Error) as exc:
            cursor.execute("ROLLBACK TO SAVEPOINT lvd_rows")
            cursor.execute("RELEASE SAVEPOINT lvd_rows")
            if isinstance(exc, psycopg2.errors.QueryCanceled) and stream.error is None:
                raise
            if end - first == 1:
                bad.append(
                    BadRow(
                        table.name,
                        str(keys[first]),
                        _reason(src, table, keys[first], stream.error or exc),
                    )
                )
                with migration.echo_lock:
                    too_many = len(migration.bad_rows) + len(bad) > migration.options.max_bad_rows
                if too_many:
                    raise TooManyBadRows(
                        f"more than {migration.options.max_bad_rows} bad rows: stopped looking"
                        " (the first ones are in the report)"
                    ) from None
                return 0
            middle = (first + end) // 2
            return attempt(first, middle) + attempt(middle, end)
        cursor.execute("RELEASE SAVEPOINT lvd_rows")
        return stream.rows

    return attempt(0, len(keys)) if keys else 0


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


# --- the load's worker processes ----------------------------------------------------------------

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
    workers = Workers(_CHILD["migration"].url, _CHILD["sqlite_file"], readonly=False)
    _CHILD["workers"] = workers
    multiprocessing.util.Finalize(None, workers.close, exitpriority=10)


def _child_load(table_name: str, segment: dict) -> tuple:
    migration = _CHILD["migration"]
    return _load_segment(migration, _CHILD["workers"], _CHILD["tables"][table_name], segment)
