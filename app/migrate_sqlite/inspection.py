"""Inspection, read-only: the Alembic head, the source's tables, the load plans, and what the
target holds (fresh, an interrupted run to resume, already migrated, or other data)."""

from __future__ import annotations

from app.migrate_sqlite import source, target, verify
from app.migrate_sqlite.common import MigrationError, MigrationState
from app.migrate_sqlite.plan import Table, load_table
from app.migrate_sqlite.source import Source


def alembic_head(migration: MigrationState) -> str:
    from alembic.script import ScriptDirectory

    config = migration.app.extensions["migrate"].migrate.get_config()
    heads = ScriptDirectory.from_config(config).get_heads()
    if len(heads) != 1:
        raise MigrationError(f"the app's migrations have {len(heads)} heads: {heads}")
    return heads[0]


def check_source_tables(
    migration: MigrationState, src, names: list[str], revision: str | None, head: str
):
    if revision is not None and revision != head:
        raise MigrationError(
            f"the SQLite database is at Alembic revision {revision}, the app at {head}:"
            f" upgrade a copy of it first (DATABASE_URL=sqlite:////path/copy.db flask db"
            f" upgrade) and migrate the copy"
        )
    present = set(source.tables(src))
    missing = [name for name in names if name not in present]
    if missing:
        raise MigrationError(f"the SQLite database has no table {', '.join(missing)}")
    ignored = sorted(present - set(names) - {"alembic_version"})
    if ignored:
        migration.report.warnings.append(
            f"SQLite tables the app does not know are not copied: {', '.join(ignored)}"
        )


def inspect(
    migration: MigrationState, sqlite_file: Source, names: list[str], head: str
) -> tuple[str, str]:
    """("fresh" | "resume" | "done" | "conflict", why), without writing anything."""
    main = migration.main
    with main.cursor() as cursor:
        state = target.read_state(cursor)
        revision = target.alembic_revision(cursor)
        has_rows = target.tables_with_rows(cursor, names)
        segments = target.segments(cursor) if state else []
        skipped = target.skipped(cursor)
    main.commit()
    if state and state["source_sha256"] != sqlite_file.sha256:
        for segment in segments:  # taken from another file: compute them again
            segment["source_digest"] = None
    migration.report.target["alembic_revision"] = revision
    if state and state["phase"] != "done":
        if state["source_sha256"] != sqlite_file.sha256:
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
    plans = table_plans(migration, sqlite_file, names)
    if not segments:
        segments = source_segments(migration, sqlite_file, plans)
    migration.echo("the target holds data: verifying it against the SQLite file (read-only)")
    if verify.verify(migration, sqlite_file, plans, segments, skipped)[0]:
        return "done", "verified"
    different = [t.name for t in migration.report.tables.values() if not t.checksum_match]
    return "conflict", f"the target holds different data (tables: {', '.join(different)})"


def table_plans(migration: MigrationState, sqlite_file: Source, names: list[str]) -> list[Table]:
    with migration.main.cursor() as cursor:
        dropped = {
            item["table"]: item for item in target.deferred(cursor) if item["kind"] == "primary_key"
        }
        plans = [load_table(cursor, name, dropped.get(name)) for name in names]
    migration.main.commit()
    src = sqlite_file.connect()
    try:
        for table in plans:
            have = set(source.columns(src, table.name))
            want = {c.name for c in table.columns}
            if have != want:
                raise MigrationError(
                    f"{table.name}: columns differ between SQLite and PostgreSQL"
                    f" (only in SQLite: {sorted(have - want)}, only in PostgreSQL:"
                    f" {sorted(want - have)})"
                )
            migration.report.table(table.name).source_rows = source.row_count(src, table.name)
    finally:
        src.close()
    return plans


def source_segments(
    migration: MigrationState, sqlite_file: Source, plans: list[Table]
) -> list[dict]:
    src = sqlite_file.connect()
    try:
        result = []
        for table in plans:
            for lo, hi, rows in source.segments(
                src, table.name, table.pk, migration.options.segment_rows
            ):
                result.append({"table": table.name, "lo": lo, "hi": hi, "source_rows": rows})
        return result
    finally:
        src.close()
