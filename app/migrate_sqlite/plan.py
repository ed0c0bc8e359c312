"""What is copied and how: the app's tables as the Alembic migrations created them in
PostgreSQL, and the SQL that reads, loads and checksums them on either side.

Every expression here has a fast path in plain SQL for the values the app itself writes
(naive UTC text timestamps, 0/1, JSON text) and falls back to a Python function registered on
the SQLite connection (source.py) for everything else, so the common case never leaves C.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.migrate_sqlite.convert import BOOL, FLOAT, INT, JSON, JSONB, TEXT, TIMESTAMPTZ

# PostgreSQL type (regtype, without modifiers) -> column kind.
PG_KINDS = {
    "smallint": INT,
    "integer": INT,
    "bigint": INT,
    "boolean": BOOL,
    "double precision": FLOAT,
    "text": TEXT,
    "character varying": TEXT,
    "timestamp with time zone": TIMESTAMPTZ,
    "jsonb": JSONB,
    "json": JSON,
}

# The app's own storage format on SQLite: exactly 'YYYY-MM-DD HH:MM:SS.ffffff', naive UTC.
_STANDARD_TIMESTAMP = (
    "(typeof({x}) = 'text' AND length({x}) = 26 AND {x} GLOB "
    "'[0-9][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9]"
    ".[0-9][0-9][0-9][0-9][0-9][0-9]' AND substr({x}, 12, 2) < '24')"
)
# COPY ... (FORMAT csv): text always quoted, its quotes doubled; NULL is an empty field.
_CSV_QUOTE = """'"' || replace({x}, '"', '""') || '"'"""


class PlanError(RuntimeError):
    """The schema cannot be migrated as it is; the message says why."""


def quote(name: str) -> str:
    """An SQL identifier, quoted (the same rule in SQLite and PostgreSQL)."""
    return '"' + name.replace('"', '""') + '"'


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    pg_type: str
    not_null: bool


@dataclass
class Table:
    name: str
    pk: str
    columns: list[Column]
    sequence: str | None = None
    foreign_keys: list[dict] = field(default_factory=list)
    primary_key: dict | None = None  # {"name", "definition"} of the constraint

    @property
    def column_list(self) -> str:
        return ", ".join(quote(c.name) for c in self.columns)

    # --- loading -------------------------------------------------------------------------------

    def copy_statement(self) -> str:
        return f"COPY {quote(self.name)} ({self.column_list}) FROM STDIN WITH (FORMAT csv)"

    def _source_copy_field(self, column: Column) -> str:
        x = quote(column.name)
        args = (
            f"{_sql_literal(column.kind)}, {x}, {_sql_literal(self.name)}, {quote(self.pk)}, "
            + (_sql_literal(column.name))
        )
        slow = f"lvd_copy({args})"
        if column.kind == INT:
            return f"CASE typeof({x}) WHEN 'integer' THEN {x} WHEN 'null' THEN '' ELSE {slow} END"
        if column.kind == BOOL:
            return (
                f"CASE WHEN typeof({x}) = 'integer' AND {x} IN (0, 1) THEN"
                f" CASE {x} WHEN 1 THEN 't' ELSE 'f' END"
                f" WHEN {x} IS NULL THEN '' ELSE {slow} END"
            )
        if column.kind == FLOAT:
            # SQLite's own float printing is not exact (printf('%!.17g') misses ~1 in 1000):
            # repr() is, and PostgreSQL reads it back to the same double.
            return (
                f"CASE typeof({x}) WHEN 'real' THEN lvd_real({x}) WHEN 'integer' THEN {x}"
                f" WHEN 'null' THEN '' ELSE {slow} END"
            )
        if column.kind == TIMESTAMPTZ:
            return (
                f"CASE WHEN {_STANDARD_TIMESTAMP.format(x=x)} THEN {x} || '+00'"
                f" WHEN {x} IS NULL THEN '' ELSE {slow} END"
            )
        # TEXT, JSON, JSONB: text goes as it is (PostgreSQL validates JSON and lengths).
        return (
            f"CASE typeof({x}) WHEN 'text' THEN {_CSV_QUOTE.format(x=x)}"
            f" WHEN 'null' THEN '' ELSE {slow} END"
        )

    def source_copy_query(self) -> str:
        """SQLite: one COPY (CSV) line per row for pk BETWEEN ? AND ?, in pk order."""
        return (
            f"SELECT {self._source_copy_line()} FROM {quote(self.name)}"
            f" WHERE {quote(self.pk)} BETWEEN ? AND ? ORDER BY {quote(self.pk)}"
        )

    def _source_copy_line(self) -> str:
        return "'' || " + " || ',' || ".join(self._source_copy_field(c) for c in self.columns)

    def source_load_query(self) -> str:
        """SQLite: the COPY line and, from the same read of the row, what its checksum needs
        (see source_canonical_query): (line, pk, canonical text, raw jsonb values...)."""
        return (
            f"SELECT {self._source_copy_line()}, {self._source_canonical_columns()}"
            f" FROM {quote(self.name)} WHERE {quote(self.pk)} BETWEEN ? AND ?"
            f" ORDER BY {quote(self.pk)}"
        )

    # --- verification ----------------------------------------------------------------------------
    #
    # The canonical text of a row: the canonical text of each column (convert.canonical) in
    # table order, tab-separated, except that jsonb columns come last as the md5 of the jsonb
    # text. Those are the one kind whose canonical form needs a full JSON parser; the source's
    # documents are sent to PostgreSQL as query parameters (not through COPY) and normalised
    # there, which is faster than doing it in Python and judged by jsonb itself.

    @property
    def jsonb_columns(self) -> list[Column]:
        return [c for c in self.columns if c.kind == JSONB]

    @property
    def plain_columns(self) -> list[Column]:
        return [c for c in self.columns if c.kind != JSONB]

    def _source_canonical_field(self, column: Column) -> str:
        x = quote(column.name)
        slow = f"lvd_canon({_sql_literal(column.kind)}, {x})"
        if column.kind == INT:
            return (
                f"CASE typeof({x}) WHEN 'integer' THEN {x} WHEN 'null' THEN '\\N' ELSE {slow} END"
            )
        if column.kind == BOOL:
            return (
                f"CASE WHEN typeof({x}) = 'integer' AND {x} IN (0, 1) THEN"
                f" CASE {x} WHEN 1 THEN 'true' ELSE 'false' END"
                f" WHEN {x} IS NULL THEN '\\N' ELSE {slow} END"
            )
        if column.kind == FLOAT:
            return f"CASE WHEN {x} IS NULL THEN '\\N' ELSE lvd_float_canon({x}) END"
        if column.kind == TIMESTAMPTZ:
            return (
                f"CASE WHEN {_STANDARD_TIMESTAMP.format(x=x)} THEN {x}"
                f" WHEN {x} IS NULL THEN '\\N' ELSE {slow} END"
            )
        return (
            f"CASE typeof({x}) WHEN 'text' THEN length({x}) || ':' || {x}"
            f" WHEN 'null' THEN '\\N' ELSE {slow} END"
        )

    def _source_canonical_columns(self) -> str:
        fields = " || char(9) || ".join(self._source_canonical_field(c) for c in self.plain_columns)
        raw = "".join(f", {quote(c.name)}" for c in self.jsonb_columns)
        return f"{quote(self.pk)}, '' || {fields}{raw}"

    def source_canonical_query(self) -> str:
        """SQLite: (pk, canonical text of the plain columns, raw jsonb values...) for pk
        BETWEEN ? AND ?."""
        return (
            f"SELECT {self._source_canonical_columns()} FROM {quote(self.name)}"
            f" WHERE {quote(self.pk)} BETWEEN ? AND ?"
        )

    def _target_canonical_field(self, column: Column) -> str:
        x = quote(column.name)
        if column.kind == TEXT:
            value = f"char_length({x}) || ':' || {x}"
        elif column.kind == JSON:
            value = f"char_length({x}::text) || ':' || {x}::text"
        elif column.kind == TIMESTAMPTZ:
            value = f"to_char({x} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
        elif column.kind == JSONB:
            value = f"md5({x}::text)"
        elif column.kind == FLOAT:
            value = f"encode(float8send({x}), 'hex')"
        else:  # int, bool: PostgreSQL's own output
            value = f"{x}::text"
        return f"coalesce({value}, '\\N')"

    def target_canonical_row(self) -> str:
        columns = self.plain_columns + self.jsonb_columns
        return " || E'\\t' || ".join(self._target_canonical_field(c) for c in columns)

    def target_checksum_query(self) -> str:
        """PostgreSQL: row count and the XOR of the rows' md5 (as a bit string), for pk BETWEEN
        %s AND %s. (bit_xor needs PostgreSQL 14.)"""
        return (
            f"SELECT count(*), bit_xor(('x' || md5({self.target_canonical_row()}))::bit(128))::text"
            f" FROM {quote(self.name)} WHERE {quote(self.pk)} BETWEEN %s AND %s"
        )

    def target_rows_query(self) -> str:
        """PostgreSQL: (pk, canonical row) for pk BETWEEN %s AND %s (mismatch diagnostics)."""
        return (
            f"SELECT {quote(self.pk)}, {self.target_canonical_row()} FROM {quote(self.name)}"
            f" WHERE {quote(self.pk)} BETWEEN %s AND %s"
        )


# The md5 of PostgreSQL's jsonb text of each document, in order, concatenated (32 hex digits
# each). The documents travel as one text, separated by JSON_SEPARATOR: a control character,
# which valid JSON never holds raw (in a string it must be escaped, and it is not whitespace).
# One text parameter instead of a text[] of the documents took about 40% off this query.
JSON_SEPARATOR = "\x1e"
JSONB_MD5_SQL = (
    "SELECT string_agg(md5(doc::jsonb::text), '' ORDER BY n)"
    " FROM string_to_table(%s, E'\\x1e') WITH ORDINALITY AS docs(doc, n)"
)


COLUMNS_SQL = """
SELECT a.attname, a.atttypid::regtype::text, format_type(a.atttypid, a.atttypmod),
       a.attnotnull, a.attgenerated <> ''
FROM pg_attribute a
WHERE a.attrelid = to_regclass(%(table)s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

PRIMARY_KEY_SQL = """
SELECT array_agg(a.attname ORDER BY a.attnum)
FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
WHERE i.indrelid = to_regclass(%(table)s) AND i.indisprimary
"""

FOREIGN_KEYS_SQL = """
SELECT c.conname, pg_get_constraintdef(c.oid), ref.relname,
       array(SELECT attname FROM unnest(c.conkey) WITH ORDINALITY AS k(num, pos)
             JOIN pg_attribute ON attrelid = c.conrelid AND attnum = k.num ORDER BY k.pos),
       array(SELECT attname FROM unnest(c.confkey) WITH ORDINALITY AS k(num, pos)
             JOIN pg_attribute ON attrelid = c.confrelid AND attnum = k.num ORDER BY k.pos)
FROM pg_constraint c JOIN pg_class ref ON ref.oid = c.confrelid
WHERE c.conrelid = to_regclass(%(table)s) AND c.contype = 'f'
ORDER BY c.conname
"""


def load_table(cursor, name: str, dropped_primary_key: dict | None = None) -> Table:
    """The plan of one table, read from PostgreSQL's catalog (after `alembic upgrade head`).
    While a migration is under way its primary key is not in the catalog: the caller passes
    the one it dropped (target.deferred)."""
    qualified = quote(name)
    cursor.execute(COLUMNS_SQL, {"table": qualified})
    rows = cursor.fetchall()
    if not rows:
        raise PlanError(f"table {name} does not exist in PostgreSQL after `alembic upgrade head`")
    columns = []
    for column, regtype, full_type, not_null, generated in rows:
        if generated:
            raise PlanError(f"{name}.{column} is a generated column: not supported")
        kind = PG_KINDS.get(regtype)
        if kind is None:
            raise PlanError(
                f"{name}.{column} has type {full_type}, which the migration cannot convert yet "
                f"(supported: {', '.join(sorted(PG_KINDS))})"
            )
        columns.append(Column(column, kind, full_type, not_null))
    if dropped_primary_key:
        pk = dropped_primary_key["columns"]
    else:
        cursor.execute(PRIMARY_KEY_SQL, {"table": qualified})
        pk = cursor.fetchone()[0] or []
    if len(pk) != 1 or next(c for c in columns if c.name == pk[0]).kind != INT:
        raise PlanError(f"table {name} needs a single integer primary key column (has {pk})")
    cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", (qualified, pk[0]))
    sequence = cursor.fetchone()[0]
    if dropped_primary_key:
        pk_name, pk_definition = dropped_primary_key["name"], dropped_primary_key["definition"]
    else:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = to_regclass(%s) AND contype = 'p'",
            (qualified,),
        )
        pk_name, pk_definition = cursor.fetchone()
    cursor.execute(FOREIGN_KEYS_SQL, {"table": qualified})
    foreign_keys = [
        {"name": n, "definition": d, "ref_table": r, "columns": cols, "ref_columns": ref_cols}
        for n, d, r, cols, ref_cols in cursor.fetchall()
    ]
    return Table(
        name, pk[0], columns, sequence, foreign_keys, {"name": pk_name, "definition": pk_definition}
    )
