"""Verification: per table the row count and a checksum of every row's canonical text, from
PostgreSQL's stored values (in SQL) and from SQLite's raw values (in Python); for a table that
differs, the first rows that differ. Also the source side of a segment just loaded
(stream_digest, from what its COPY read) and PostgreSQL's side computed while finalising goes
on (EarlyChecksums)."""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from hashlib import md5

import psycopg2

from app.migrate_sqlite import convert
from app.migrate_sqlite.common import MigrationState, Workers
from app.migrate_sqlite.plan import JSON_SEPARATOR, JSONB_MD5_SQL, Table
from app.migrate_sqlite.report import BadRow
from app.migrate_sqlite.source import CopyStream, Source

MIN_KEY, MAX_KEY = -(2**63), 2**63 - 1


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


def checksum_units(plans: list[Table], segments: list[dict]) -> list[tuple]:
    """The ranges checksummed, (table, lo, hi, segment): the segments, the first and last
    widened to the whole key space, so that rows outside the planned ranges count too."""
    units = []
    for table in plans:
        mine = [s for s in segments if s["table"] == table.name]
        ranges = [[s["lo"], s["hi"], s] for s in mine] or [[MIN_KEY, MAX_KEY, None]]
        ranges[0][0], ranges[-1][1] = MIN_KEY, MAX_KEY
        units += [(table, lo, hi, segment) for lo, hi, segment in ranges]
    return units


def _source_digests(
    migration: MigrationState, sqlite_file: Source, units: list, skipped: dict
) -> list[Digest]:
    workers = Workers(migration.url, sqlite_file, readonly=True)
    try:
        with ThreadPoolExecutor(migration.jobs, thread_name_prefix="checksum-sqlite") as pool:
            futures = [
                pool.submit(source_digest, workers, *unit[:3], skipped[unit[0].name])
                for unit in units
            ]
            return [future.result() for future in futures]
    finally:
        workers.close()


def _target_digests(migration: MigrationState, units: list) -> list[Digest]:
    workers = Workers(migration.url, None, readonly=True)
    try:
        with ThreadPoolExecutor(migration.jobs, thread_name_prefix="checksum-pg") as pool:
            futures = [pool.submit(_target_digest, workers, *unit[:3]) for unit in units]
            return [future.result() for future in futures]
    finally:
        workers.close()


def verify(
    migration: MigrationState, sqlite_file, plans, segments, skipped, early=None
) -> tuple[bool, bool]:
    """Counts and checksums of every table on both sides: (every table matches, the
    SQLite file changed since it was fingerprinted). The source side of a segment comes
    from its load (segment.source_digest) unless rows of it were skipped since; the rest
    is computed from SQLite, then the file's fingerprint taken again, while PostgreSQL
    computes its side (or finishes it: ``early``, an EarlyChecksums started during
    finalising)."""
    units = checksum_units(plans, segments)
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
            _source_side, migration, sqlite_file, [units[i] for i in missing], keys
        )
        if early is not None:
            target_side = early.results(migration.rows_deleted_from)
        else:
            target_side = _target_digests(migration, units)
        digests, changed = source_side.result()
    for index, digest in zip(missing, digests, strict=True):
        stored[index] = digest
    return _compare(migration, sqlite_file, plans, units, stored, target_side, skipped), changed


def _source_side(
    migration: MigrationState, sqlite_file: Source, units: list, skipped: dict
) -> tuple[list, bool]:
    """The source digests of ``units``, then whether the file changed (after that read)."""
    digests = _source_digests(migration, sqlite_file, units, skipped) if units else []
    return digests, sqlite_file.changed()


def _compare(
    migration: MigrationState, sqlite_file, plans, units, source_side, target_side, skipped
) -> bool:
    """Fill the report's tables from both sides' digests; True when every table matches.
    For a table that differs, the first rows that differ are looked up and reported."""
    keys = _skipped_keys(skipped)
    migration.report.skipped_rows = [BadRow(*row) for row in skipped]
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
        entry = migration.report.table(table.name)
        entry.target_rows = target_digest.rows
        entry.skipped_rows = len(keys[table.name])
        entry.source_checksum = str(source_digest)
        entry.target_checksum = str(target_digest)
        entry.checksum_match = source_digest == target_digest
        if entry.checksum_match:
            continue
        ok = False
        (_, lo, hi, _), _, _ = next(item for item in mine if item[1] != item[2])
        workers = Workers(migration.url, sqlite_file, readonly=True)
        try:
            entry.mismatches = _row_differences(workers, table, lo, hi, keys[table.name])
        finally:
            workers.close()
    return ok


def _target_digest(workers: Workers, table: Table, lo: int, hi: int) -> Digest:
    connection = workers.pg()
    with connection.cursor() as cursor:
        cursor.execute(table.target_checksum_query(), (lo, hi))
        rows, xor = cursor.fetchone()
    connection.commit()
    return Digest(rows, int(xor or "0", 2))


def _source_rows(workers: Workers, table: Table, lo: int, hi: int, skip: set, connection):
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


def source_digest(workers, table: Table, lo: int, hi: int, skip, connection=None):
    """The source side of one range, read from SQLite (jsonb normalised by PostgreSQL on
    ``connection``, by default the worker's read-only one)."""
    own = connection is None
    connection = workers.pg() if own else connection
    rows = xor = 0
    from_bytes = int.from_bytes
    for _key, line in _source_rows(workers, table, lo, hi, skip, connection):
        rows += 1
        xor ^= from_bytes(md5(line).digest(), "big")
    if own:
        connection.commit()
    return Digest(rows, xor)


def stream_digest(connection, table: Table, stream: CopyStream) -> Digest:
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


def _row_differences(workers, table: Table, lo: int, hi: int, skip, limit=5) -> list:
    """The first rows that differ in one mismatching range, with both canonical texts."""
    connection = workers.pg()
    with connection.cursor() as cursor:
        cursor.execute(table.target_rows_query(), (lo, hi))
        target_rows = {str(key): text for key, text in cursor.fetchall()}
    connection.commit()
    source_rows = {
        str(key): line.decode("utf-8", "replace")
        for key, line in _source_rows(workers, table, lo, hi, skip, connection)
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


class EarlyChecksums:
    """PostgreSQL's side of the checksums, computed on one connection while finalising goes
    on (started once the primary keys are back, so each range is an index scan). results()
    cancels what has not started and computes it, with the ranges of tables rows were deleted
    from since, on ``jobs`` connections."""

    def __init__(self, migration: MigrationState, units: list):
        self.migration, self.units = migration, units
        self.pool: ThreadPoolExecutor | None = None
        self.workers: Workers | None = None
        self.futures: list = []

    def start(self) -> None:
        self.workers = Workers(self.migration.url, None, readonly=True)
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="checksum-early")
        self.futures = [
            self.pool.submit(_target_digest, self.workers, *unit[:3]) for unit in self.units
        ]

    def results(self, tables_changed: set[str]) -> list[Digest]:
        if self.pool is None:
            return _target_digests(self.migration, self.units)
        again = [
            index
            for index, (future, unit) in enumerate(zip(self.futures, self.units, strict=True))
            if future.cancel() or unit[0].name in tables_changed
        ]
        computed = _target_digests(self.migration, [self.units[i] for i in again])
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
