"""Finalising: primary keys, indexes and foreign keys put back (orphans found by the foreign
keys are bad rows), sequences past the largest id, ANALYZE."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import psycopg2

from app.migrate_sqlite import load, target
from app.migrate_sqlite.common import MigrationError, MigrationState, Workers
from app.migrate_sqlite.plan import Table, quote
from app.migrate_sqlite.report import BadRow


def finalize(
    migration: MigrationState, plans: list[Table], on_keys_restored: Callable | None = None
) -> None:
    """Primary keys, indexes and foreign keys back (each in its own transaction with its
    marker), sequences past the largest id, statistics. ``on_keys_restored`` is called
    once the primary keys are back."""
    main = migration.main
    by_name = {t.name: t for t in plans}
    order = {t.name: position for position, t in enumerate(plans)}  # foreign-key order
    with main.cursor() as cursor:
        pending = target.deferred(cursor)
    main.commit()
    primary_keys = [item for item in pending if item["kind"] == "primary_key"]
    indexes = [item for item in pending if item["kind"] == "index"]
    foreign_keys = sorted(
        (item for item in pending if item["kind"] == "foreign_key"),
        key=lambda item: order[item["table"]],
    )
    if pending:
        migration.echo(
            f"restoring {len(primary_keys)} primary keys, {len(indexes)} indexes and"
            f" {len(foreign_keys)} foreign keys"
        )
    workers = Workers(migration.url, None, readonly=False)
    try:
        try:
            _run_all(migration.jobs, [(_restore, workers, item) for item in primary_keys])
        except psycopg2.errors.UniqueViolation as exc:
            # SQLite keeps integer primary keys unique; only a damaged file gets here.
            raise MigrationError(f"duplicate primary key in the SQLite data: {exc}") from exc
        if on_keys_restored is not None:
            on_keys_restored()
        _run_all(migration.jobs, [(_restore, workers, item) for item in indexes])
        # Foreign keys one at a time (each locks both of its tables), a child table's after
        # its parents': the rows an orphan's removal leaves orphaned are then found by the
        # next constraint, never removed silently by an ON DELETE CASCADE.
        orphans = []
        for item in foreign_keys:
            orphans += _restore_foreign_key(migration, workers, item, by_name[item["table"]])
        if orphans:
            migration.bad_rows.extend(orphans[: migration.options.max_bad_rows])
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
        _run_all(migration.jobs, [(_analyze, workers, table) for table in plans])
    finally:
        workers.close()


def _restore_foreign_key(
    migration: MigrationState, workers: Workers, item: dict, table: Table
) -> list[BadRow]:
    """Add the constraint back (PostgreSQL checks every row with one join). Should it fail,
    the rows at fault are bad rows: returned, or with --skip-bad-rows deleted and recorded
    before trying again."""
    connection = workers.pg()
    limit = migration.options.max_bad_rows + 1
    while True:
        try:
            _restore(workers, item)
            return []
        except psycopg2.errors.ForeignKeyViolation:
            connection.rollback()
        with connection.cursor() as cursor:
            cursor.execute(target.orphans_query(item, table.pk, limit))
            orphans = []
            for pk, *values in cursor.fetchall():
                pairs = ", ".join(f"{c}={v}" for c, v in zip(item["columns"], values, strict=True))
                reason = (
                    f"{pairs}: no {item['ref_table']} row with that {'/'.join(item['ref_columns'])}"
                )
                orphans.append(BadRow(table.name, str(pk), reason))
            if not orphans:
                raise MigrationError(f"foreign key {item['name']} cannot be added back")
            if not migration.options.skip_bad_rows:
                connection.rollback()
                return orphans
            migration.rows_deleted_from.add(table.name)
            for row in orphans:
                cursor.execute(
                    f"DELETE FROM {quote(table.name)} WHERE {quote(table.pk)} = %s",
                    (int(row.pk),),
                )
                load.record_skipped(cursor, row)
        connection.commit()


def _restore(workers: Workers, item: dict) -> None:
    connection = workers.pg()
    with connection.cursor() as cursor:
        cursor.execute(target.restore_statement(item))
        cursor.execute(
            f"UPDATE {target.SCHEMA}.deferred SET restored = true WHERE name = %s", (item["name"],)
        )
    connection.commit()


def _analyze(workers: Workers, table: Table) -> None:
    connection = workers.pg()
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {quote(table.name)}")
    connection.commit()


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
