"""SQLite value conversion and the canonical texts of the checksum, checked against what the
real PostgreSQL stores and prints (the canonical text must equal PostgreSQL's output exactly)."""

from __future__ import annotations

import datetime as dt
import math
import random
import struct

import psycopg2
import pytest

from app.migrate_sqlite import convert
from app.migrate_sqlite.convert import Unconvertible

UTC = dt.UTC


@pytest.fixture(scope="module")
def pg_cursor(pg_url):
    connection = psycopg2.connect(pg_url)
    cursor = connection.cursor()
    cursor.execute("SET TimeZone = 'UTC'; SET extra_float_digits = 1")
    yield cursor
    connection.close()


def random_doubles(count: int, seed: int = 3) -> list[float]:
    rng = random.Random(seed)
    values = [
        0.1,
        1 / 3,
        1e15,
        1e-4,
        1e-5,
        123.0,
        5e-324,
        1.7976931348623157e308,
        -2.5,
        1e16,
        123456789012345.67,
        2.0**53,
        2.0**53 + 2,
        2.8099935506134648e16,
        -0.0,
    ]
    for exponent in range(50, 1024, 7):
        values += [2.0**exponent, math.nextafter(2.0**exponent, math.inf)]
    while len(values) < count:
        bits = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
        if math.isfinite(bits):
            values.append(bits)
        values.append(rng.lognormvariate(0, 12))
        values.append(float(rng.getrandbits(rng.randint(53, 70))))
    return values


def test_floats_reach_postgresql_bit_for_bit(pg_cursor):
    values = random_doubles(60_000) + [math.inf, -math.inf, math.nan]
    fields = [convert.copy_field(convert.FLOAT, v) for v in values]
    pg_cursor.execute(
        "SELECT encode(float8send(v::float8), 'hex') FROM unnest(%s::text[]) AS v", (fields,)
    )
    stored = [bits for (bits,) in pg_cursor.fetchall()]
    assert stored == [convert.canonical(convert.FLOAT, v) for v in values]


JSON_DOCUMENTS = [
    '{"b": 1, "a": 2, "aa": 3, "é": 4, "z": 5, "ab": 6}',
    '{"a": 1, "a": 2}',
    "[1.50, 1e3, -0.0, -0, 0.0, 1E-7, 12345678901234567890.12345, 1e400, 0.1, 2.5e-3]",
    '"\\u00e9\\n\\t\\u0001\\"\\\\/"',
    '{"nested": {"z": [], "y": {}, "x": [{"b": null, "a": true}]}}',
    '  {"x" : false }  ',
    "123",
    '"\\ud83d\\ude80"',
    '{"\\u00e9": 1, "e": 2, "ee": 3, "ß": 4, "ss": 5, "Ā": 6}',
    "[1.0, 100.0, 1e16, 123456789.0, 0.5, -1.25, 0.00001, 0.0001]",
    '{"k": "\\u2028\\u007f", "emoji🚀": [true, false, null]}',
    "[0.1, 0.12345678901234, 123456789012345.5, 1234567890123456, 99.99]",
]


@pytest.mark.parametrize("document", JSON_DOCUMENTS)
def test_jsonb_text_matches_postgresql(pg_cursor, document):
    pg_cursor.execute("SELECT %s::jsonb::text", (document,))
    assert convert.jsonb_canonical(document) == pg_cursor.fetchone()[0]


@pytest.mark.parametrize("document", ['{"a": NaN}', '{"a": 1', "", "[1,]"])
def test_invalid_json_is_unconvertible(document):
    with pytest.raises(Unconvertible, match="invalid JSON"):
        convert.jsonb_canonical(document)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-05-06 07:08:09.123456", dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)),
        ("2024-05-06T07:08:09Z", dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)),
        ("2024-05-06T09:08:09+02:00", dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)),
        ("2024-05-06 02:08-0500", dt.datetime(2024, 5, 6, 7, 8, tzinfo=UTC)),
        ("2024-05-06", dt.datetime(2024, 5, 6, tzinfo=UTC)),
        ("1850-06-01 12:00:00.5", dt.datetime(1850, 6, 1, 12, 0, 0, 500000, tzinfo=UTC)),
        ("2024-05-06 07:08:09.1234565", dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)),
        (b"2024-05-06 07:08:09", dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)),
        (0, dt.datetime(1970, 1, 1, tzinfo=UTC)),
        (-86400, dt.datetime(1969, 12, 31, tzinfo=UTC)),
        (1700000000.25, dt.datetime(2023, 11, 14, 22, 13, 20, 250000, tzinfo=UTC)),
    ],
)
def test_timestamps_are_read_as_utc_unless_they_say_otherwise(raw, expected):
    assert convert.parse_timestamp(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("yesterday", "unrecognised timestamp"),
        ("now", "unrecognised timestamp"),
        ("2024-02-30 10:00:00", "invalid timestamp"),
        ("2024-01-01 24:00:00", "invalid timestamp"),
        (float("inf"), "not a timestamp"),
        (1e20, "out of range"),
        (b"\xff\xfe", "not valid UTF-8"),
    ],
)
def test_unconvertible_timestamps_say_why(raw, reason):
    with pytest.raises(Unconvertible, match=reason):
        convert.parse_timestamp(raw)


def test_canonical_timestamp_is_postgresql_to_char_in_utc(pg_cursor):
    raws = ["2024-05-06T09:08:09.5+02:00", "0099-01-01 00:00:00", 1700000000.000001, "1901-12-13"]
    for raw in raws:
        pg_cursor.execute(
            "SELECT to_char(%s::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')",
            (convert.copy_field(convert.TIMESTAMPTZ, raw),),
        )
        assert convert.canonical(convert.TIMESTAMPTZ, raw) == pg_cursor.fetchone()[0]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1, True),
        (0, False),
        ("true", True),
        (" No ", False),
        ("t", True),
        (b"off", False),
        (1.0, True),
    ],
)
def test_booleans(raw, expected):
    assert convert.parse_bool(raw) is expected


@pytest.mark.parametrize("raw", [2, -1, "maybe", 0.5, b"\xff"])
def test_not_booleans(raw):
    with pytest.raises(Unconvertible):
        convert.parse_bool(raw)


def test_integers_and_floats():
    assert convert.parse_int(" 42 ") == 42
    assert convert.parse_int(7.0) == 7
    assert convert.parse_float("1.5") == 1.5
    assert math.isnan(convert.parse_float("NaN"))
    assert convert.parse_float("-Infinity") == -math.inf
    for bad in ("12abc", 3.5, ""):
        with pytest.raises(Unconvertible, match="not an integer"):
            convert.parse_int(bad)
    for bad in ("1_000", "0x10", "1e999"):
        with pytest.raises(Unconvertible):
            convert.parse_float(bad)


def test_copy_fields_are_csv():
    assert convert.copy_field(convert.TEXT, 'a\tb\nc\\d"e') == '"a\tb\nc\\d""e"'
    assert convert.copy_field(convert.TEXT, "") == '""'  # an empty string, not NULL
    assert convert.copy_field(convert.TEXT, None) == ""
    assert convert.copy_field(convert.TEXT, 12) == '"12"'
    assert convert.copy_field(convert.JSONB, 42) == '"42"'
    assert convert.canonical(convert.TEXT, "héllo") == "5:héllo"
    assert convert.canonical(convert.TEXT, None) == "\\N"
