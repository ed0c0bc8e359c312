"""The PostgreSQL side: connections, the migration's own state, deferred DDL, checksums.

The state lives in its own schema, ``migrate_sqlite`` (Alembic's autogenerate only compares
the default schema, so it never proposes to drop it):

run        one row: phase (loading | done), the source's sha256, the Alembic head, the schema
           fingerprint taken before anything was dropped, the final report
deferred   the foreign keys, primary keys and plain secondary indexes dropped for the load,
           with their exact definitions (pg_get_constraintdef / pg_get_indexdef) and whether
           they are back
segment    the primary-key ranges to copy; loaded_at is set in the transaction that copies it
skipped    rows left out with --skip-bad-rows, with the reason
"""

from __future__ import annotations

import psycopg2
import psycopg2.errors
from sqlalchemy.engine import make_url

from app.migrate_sqlite.plan import quote

SCHEMA = "migrate_sqlite"
# pg_try_advisory_lock key: one migration at a time per database ("lvd-mig" in ASCII).
LOCK_KEY = 0x6C76642D6D6967
# Errors that mean "this data does not fit", as opposed to a lost connection or a bug.
DATA_ERRORS = (psycopg2.DataError, psycopg2.IntegrityError)

STATE_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE {SCHEMA}.run (
    id integer PRIMARY KEY CHECK (id = 1),
    phase text NOT NULL CHECK (phase IN ('loading', 'done')),
    source_path text NOT NULL,
    source_sha256 text NOT NULL,
    alembic_revision text NOT NULL,
    schema_fingerprint text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    report jsonb
);
CREATE TABLE {SCHEMA}.deferred (
    name text PRIMARY KEY,
    table_name text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('primary_key', 'index', 'foreign_key')),
    definition text NOT NULL,
    columns text[],
    ref_table text,
    ref_columns text[],
    restored boolean NOT NULL DEFAULT false
);
CREATE TABLE {SCHEMA}.segment (
    table_name text NOT NULL,
    lo bigint NOT NULL,
    hi bigint NOT NULL,
    source_rows integer NOT NULL,
    loaded_rows integer,
    seconds double precision,
    loaded_at timestamptz,
    -- The source side of the checksum ("rows:xor", bad rows left out) and how many rows were
    -- skipped when it was taken.
    source_digest text,
    skipped_rows integer,
    PRIMARY KEY (table_name, lo)
);
CREATE TABLE {SCHEMA}.skipped (
    table_name text NOT NULL,
    pk text NOT NULL,
    reason text NOT NULL,
    PRIMARY KEY (table_name, pk)
);
"""

SECONDARY_INDEXES_SQL = """
SELECT t.relname, i.relname, pg_get_indexdef(i.oid)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
WHERE x.indrelid = ANY (%(tables)s::regclass[]) AND NOT x.indisprimary AND NOT x.indisunique
  AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = x.indexrelid)
ORDER BY i.relname
"""

SCHEMA_FINGERPRINT_SQL = """
SELECT md5(coalesce(string_agg(line, E'\\n' ORDER BY line), '')) FROM (
    SELECT format('column %%s.%%s %%s not_null=%%s default=%%s', c.relname, a.attname,
                  format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  pg_get_expr(d.adbin, d.adrelid)) AS line
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = ANY (%(tables)s::regclass[]) AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT format('constraint %%s.%%s %%s', c.relname, k.conname, pg_get_constraintdef(k.oid))
    FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
    WHERE k.conrelid = ANY (%(tables)s::regclass[])
    UNION ALL
    SELECT format('index %%s.%%s %%s', c.relname, i.relname, pg_get_indexdef(i.oid))
    FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid
    WHERE x.indrelid = ANY (%(tables)s::regclass[])
) AS schema_lines
"""


def connect_args(url: str) -> dict:
    """psycopg2.connect() keyword arguments for the app's SQLAlchemy database URL."""
    parsed = make_url(url)
    args = parsed.translate_connect_args(username="user", database="dbname")
    args.update({key: value for key, value in parsed.query.items() if isinstance(value, str)})
    return args


def describe(url: str) -> dict:
    parsed = make_url(url)
    return {
        "url": parsed.set(drivername="postgresql").render_as_string(hide_password=True),
        "database": parsed.database,
        "host": parsed.host,
        "port": parsed.port or 5432,
        "user": parsed.username,
    }


def connect(url: str, *, readonly: bool = False, bulk: bool = False):
    """A connection with the session settings every query of the migration relies on."""
    connection = psycopg2.connect(**connect_args(url), application_name="lvd migrate-sqlite")
    with connection.cursor() as cursor:
        # Timestamps read and printed in UTC; floats printed shortest-exact; \N is literal.
        cursor.execute(
            "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 1;"
            " SET standard_conforming_strings = on; SET statement_timeout = 0;"
            " SET lock_timeout = '60s'"
        )
        if readonly:
            cursor.execute("SET default_transaction_read_only = on")
        if bulk:
            # A segment lost in a crash is lost together with its marker (same transaction),
            # and is copied again by the resumed run: no need to wait for the WAL flush.
            cursor.execute("SET synchronous_commit = off; SET maintenance_work_mem = '256MB'")
    connection.commit()
    return connection


def try_lock(connection) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
        locked = cursor.fetchone()[0]
    connection.commit()
    return locked


def server_version(cursor) -> str:
    cursor.execute("SHOW server_version")
    return cursor.fetchone()[0]


def alembic_revision(cursor) -> str | None:
    cursor.execute("SELECT to_regclass('alembic_version') IS NOT NULL")
    if not cursor.fetchone()[0]:
        return None
    cursor.execute("SELECT version_num FROM alembic_version")
    return ",".join(sorted(v for (v,) in cursor.fetchall())) or None


def tables_with_rows(cursor, names: list[str]) -> dict[str, bool | None]:
    """Per app table: None (missing), False (empty) or True (holds rows)."""
    result = {}
    for name in names:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (quote(name),))
        if not cursor.fetchone()[0]:
            result[name] = None
            continue
        cursor.execute(f"SELECT EXISTS (SELECT FROM {quote(name)})")
        result[name] = cursor.fetchone()[0]
    return result


def read_state(cursor) -> dict | None:
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{SCHEMA}.run",))
    if not cursor.fetchone()[0]:
        return None
    cursor.execute(
        f"SELECT phase, source_path, source_sha256, alembic_revision, schema_fingerprint"
        f" FROM {SCHEMA}.run"
    )
    row = cursor.fetchone()
    if row is None:
        return None
    keys = ("phase", "source_path", "source_sha256", "alembic_revision", "schema_fingerprint")
    return dict(zip(keys, row, strict=True))


def schema_fingerprint(cursor, names: list[str]) -> str:
    cursor.execute(SCHEMA_FINGERPRINT_SQL, {"tables": [quote(n) for n in names]})
    return cursor.fetchone()[0]


def secondary_indexes(cursor, names: list[str]) -> list[tuple[str, str, str]]:
    """(table, index, definition) of the plain (non-unique, non-constraint) indexes."""
    cursor.execute(SECONDARY_INDEXES_SQL, {"tables": [quote(n) for n in names]})
    return cursor.fetchall()


def segments(cursor) -> list[dict]:
    cursor.execute(
        f"SELECT table_name, lo, hi, source_rows, loaded_at IS NOT NULL, loaded_rows,"
        f" source_digest, skipped_rows FROM {SCHEMA}.segment ORDER BY table_name, lo"
    )
    keys = (
        "table",
        "lo",
        "hi",
        "source_rows",
        "loaded",
        "loaded_rows",
        "source_digest",
        "skipped_rows",
    )
    return [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]


def skipped(cursor) -> list[tuple[str, str, str]]:
    cursor.execute(f"SELECT to_regclass('{SCHEMA}.skipped') IS NOT NULL")
    if not cursor.fetchone()[0]:
        return []
    cursor.execute(f"SELECT table_name, pk, reason FROM {SCHEMA}.skipped ORDER BY table_name, pk")
    return cursor.fetchall()


def deferred(cursor, *, pending_only: bool = True) -> list[dict]:
    cursor.execute(f"SELECT to_regclass('{SCHEMA}.deferred') IS NOT NULL")
    if not cursor.fetchone()[0]:
        return []
    cursor.execute(
        f"SELECT name, table_name, kind, definition, columns, ref_table, ref_columns"
        f" FROM {SCHEMA}.deferred {'WHERE NOT restored' if pending_only else ''}"
        # Put back in this order: a foreign key needs its referenced primary key.
        f" ORDER BY CASE kind WHEN 'primary_key' THEN 0 WHEN 'index' THEN 1 ELSE 2 END, name"
    )
    keys = ("name", "table", "kind", "definition", "columns", "ref_table", "ref_columns")
    return [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]


def restore_statement(item: dict) -> str:
    if item["kind"] == "index":
        return item["definition"]
    return (
        f"ALTER TABLE {quote(item['table'])} ADD CONSTRAINT {quote(item['name'])}"
        f" {item['definition']}"
    )


def drop_statement(item: dict) -> str:
    if item["kind"] == "index":
        return f"DROP INDEX {quote(item['name'])}"
    return f"ALTER TABLE {quote(item['table'])} DROP CONSTRAINT {quote(item['name'])}"


def orphans_query(item: dict, pk: str, limit: int) -> str:
    """Rows whose foreign key points at no row (MATCH SIMPLE: a NULL column means no check)."""
    child, parent = quote(item["table"]), quote(item["ref_table"])
    columns = [quote(c) for c in item["columns"]]
    ref_columns = [quote(c) for c in item["ref_columns"]]
    present = " AND ".join(f"c.{col} IS NOT NULL" for col in columns)
    join = " AND ".join(f"p.{r} = c.{c}" for c, r in zip(columns, ref_columns, strict=True))
    values = ", ".join(f"c.{col}" for col in columns)
    return (
        f"SELECT c.{quote(pk)}, {values} FROM {child} c WHERE {present}"
        f" AND NOT EXISTS (SELECT FROM {parent} p WHERE {join})"
        f" ORDER BY c.{quote(pk)} LIMIT {int(limit)}"
    )
