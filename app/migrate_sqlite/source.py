"""The SQLite side: opened read-only, fingerprinted, read in primary-key ranges."""

from __future__ import annotations

import hashlib
import sqlite3
import urllib.parse
from pathlib import Path

from app.migrate_sqlite import convert
from app.migrate_sqlite.plan import quote


class SourceError(RuntimeError):
    """The SQLite file cannot be used; the message says why."""


def file_fingerprint(path: Path) -> tuple[str, int]:
    """sha256 and size of the database file plus its write-ahead log, if there is one."""
    digest = hashlib.sha256()
    size = 0
    for part in (path, path.with_name(path.name + "-wal")):
        if part.is_file():
            with open(part, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
    return digest.hexdigest(), size


class SourceConnection:
    """One read-only connection with the conversion functions registered.

    Values a fast SQL path cannot take go through Python (convert.py); a value that cannot be
    converted becomes convert.REJECT in the COPY stream and its reason is kept in
    ``reasons[(table, pk)]``, so the bad-row report names the column and the cause rather than
    PostgreSQL's view of the placeholder.
    """

    def __init__(self, path: Path):
        uri = "file:" + urllib.parse.quote(str(path)) + "?mode=ro"
        try:
            self.connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
            self.connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            raise SourceError(f"cannot open {path} as an SQLite database: {exc}") from None
        # Rows arrive as the bytes SQLite holds: no decoding on the hot path, and text that is
        # not UTF-8 reaches PostgreSQL (which rejects it as a bad row) instead of crashing here.
        self.connection.text_factory = bytes
        self.reasons: dict[tuple[str, int], str] = {}
        create = self.connection.create_function
        create("lvd_copy", 5, self._copy, deterministic=True)
        create("lvd_real", 1, convert.float_copy_text, deterministic=True)
        create("lvd_canon", 2, self._canon, deterministic=True)
        create("lvd_float_canon", 1, self._float_canon, deterministic=True)

    def _copy(self, kind, value, table, pk, column):
        try:
            return convert.copy_field(kind, value)
        except convert.Unconvertible as exc:
            self.reasons[(table, pk)] = f"{column}: {exc}"
            return convert.REJECT

    @staticmethod
    def _canon(kind, value):
        try:
            return convert.canonical(kind, value)
        except convert.Unconvertible as exc:
            return f"!{exc}"  # never equal to what PostgreSQL prints

    @staticmethod
    def _float_canon(value):
        try:
            return convert.float_bits(convert.parse_float(value))
        except convert.Unconvertible as exc:
            return f"!{exc}"

    def execute(self, sql: str, params=()):
        return self.connection.execute(sql, params)

    def close(self) -> None:
        self.connection.close()


class Source:
    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser().resolve()
        if not self.path.is_file():
            raise SourceError(f"SQLite database {self.path} does not exist (or is not a file)")
        with open(self.path, "rb") as handle:
            if handle.read(16) != b"SQLite format 3\x00":
                raise SourceError(f"{self.path} is not an SQLite 3 database")
        self.sha256, self.size = file_fingerprint(self.path)

    def connect(self) -> SourceConnection:
        return SourceConnection(self.path)

    def changed(self) -> bool:
        """Has the file changed since it was fingerprinted (was the app still writing to it)?"""
        return file_fingerprint(self.path)[0] != self.sha256


def tables(connection: SourceConnection) -> list[str]:
    rows = connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    return sorted(name.decode() for (name,) in rows)


def revision(connection: SourceConnection) -> str | None:
    """The Alembic revision the SQLite database is at (None: no alembic_version table)."""
    if "alembic_version" not in tables(connection):
        return None
    rows = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    return ",".join(sorted(v.decode() for (v,) in rows)) or None


def columns(connection: SourceConnection, table: str) -> list[str]:
    return [row[1].decode() for row in connection.execute(f"PRAGMA table_info({quote(table)})")]


def segments(connection: SourceConnection, table: str, pk: str, rows: int) -> list[tuple]:
    """Split the table into primary-key ranges of ``rows`` rows (the last may be shorter):
    [(lo, hi, count)], covering every integer key. (The keys stream by in key order and are
    cut here, keeping only the cuts: several times cheaper than a row_number() window in
    SQLite, and no list of every key in memory.)"""
    key = quote(pk)
    keys = connection.execute(
        f"SELECT {key} FROM {quote(table)} WHERE typeof({key}) = 'integer' ORDER BY {key}"
    )
    result = []
    lo = last = None
    count = 0
    for (value,) in keys:
        if count == rows:
            result.append((lo, value - 1, count))
            count = 0
        if count == 0:
            lo = value
        count += 1
        last = value
    if count:
        result.append((lo, last, count))
    return result


def non_integer_keys(connection: SourceConnection, table: str, pk: str, limit: int) -> list:
    """Rows whose primary key is not an integer (none in a rowid table): they fit no range."""
    key = quote(pk)
    return [
        value.decode("utf-8", "replace") if isinstance(value, bytes) else repr(value)
        for (value,) in connection.execute(
            f"SELECT {key} FROM {quote(table)} WHERE typeof({key}) <> 'integer' LIMIT ?",
            (limit,),
        )
    ]


def row_count(connection: SourceConnection, table: str) -> int:
    return connection.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()[0]


def keys_between(connection: SourceConnection, table: str, pk: str, lo: int, hi: int) -> list:
    key = quote(pk)
    return [
        value
        for (value,) in connection.execute(
            f"SELECT {key} FROM {quote(table)} WHERE {key} BETWEEN ? AND ? ORDER BY {key}",
            (lo, hi),
        )
    ]


class CopyStream:
    """File-like reader for psycopg2's copy_expert: COPY lines of one primary-key range.

    Rows come from SQLite in batches; SQLite builds each line in C (plan.py), Python only
    joins them. With plan.source_load_query, each row also brings its canonical text: the
    stream keeps it (and the raw jsonb values, which PostgreSQL normalises later),
    so the source side of the checksum costs no second pass. An SQLite error while reading is
    kept in ``error`` (psycopg2 reports it only as a cancelled COPY).
    """

    def __init__(self, connection: SourceConnection, query: str, lo: int, hi: int):
        self.cursor = connection.execute(query, (lo, hi))
        self.rows = 0
        self.error: Exception | None = None
        self.canonical: list[bytes] = []  # the canonical texts (plain columns), in pk order
        self.jsonb: list[tuple] = []  # the raw jsonb values of each row

    def read(self, _size: int = -1) -> bytes:
        try:
            batch = self.cursor.fetchmany(2000)
        except sqlite3.Error as exc:
            self.error = exc
            raise
        if not batch:
            return b""
        self.rows += len(batch)
        if len(batch[0]) > 1:
            self.canonical += [row[2] for row in batch]
            if len(batch[0]) > 3:
                self.jsonb += [row[3:] for row in batch]
        return b"\n".join([row[0] for row in batch]) + b"\n"
