"""SQLite's loose values -> the model's column types, and the canonical text of each value.

SQLite stores whatever it was given: the app writes naive UTC text timestamps, 0/1 booleans and
JSON text, but older writers may have left epoch numbers, ISO strings with offsets, 'true' and
'yes'. Every function here takes one raw SQLite value (int, float, str, bytes) and either
returns the converted value or raises :class:`Unconvertible` with the reason an operator sees.

Two renderings of a converted value matter:

* the COPY field sent to PostgreSQL (``copy_field``), and
* the *canonical text* used by the checksum (``canonical``). It is, by design, exactly what
  the verification query makes PostgreSQL print for the stored value (see ``plan.py``):
  integers and booleans as PostgreSQL prints them, floats as their IEEE 754 bits
  (float8send), timestamps as UTC ``YYYY-MM-DD HH24:MI:SS.US``, text with its length in
  front, jsonb as jsonb_out normalises it. The SQLite side computes it from the *source*
  value here, independently of the COPY path, so a value that changed on the way fails
  verification.

The accepted inputs are deliberately strict and documented in app/migrate_sqlite/README.md;
anything else is a bad row, never a guess.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import struct
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

UTC = dt.UTC
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
# COPY runs in CSV format: NULL is an empty unquoted field, text is always quoted.
COPY_NULL = ""
# A COPY field PostgreSQL rejects for every column (a byte that is not UTF-8, refused before
# any type sees it). Sent for a value already known to be unconvertible, so the row fails
# inside PostgreSQL and is handled like any other bad row.
REJECT = b"\xff"
# NULL in the canonical text of the checksum.
NULL = "\\N"

# Column kinds: what the engine knows how to convert (PostgreSQL type names map onto these).
INT, BOOL, FLOAT, TEXT, TIMESTAMPTZ, JSONB, JSON = (
    "int",
    "bool",
    "float",
    "text",
    "timestamptz",
    "jsonb",
    "json",
)
KINDS = (INT, BOOL, FLOAT, TEXT, TIMESTAMPTZ, JSONB, JSON)

TRUE_WORDS = frozenset(("1", "t", "true", "y", "yes", "on"))
FALSE_WORDS = frozenset(("0", "f", "false", "n", "no", "off"))
_INT_RE = re.compile(r"\s*[+-]?\d+\s*\Z")
_FLOAT_RE = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*\Z")
_SPECIAL_FLOATS = {"nan": math.nan, "inf": math.inf, "infinity": math.inf}
_TIMESTAMP_RE = re.compile(
    r"\s*(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?\s*\Z"
)
_JSON_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}
_JSON_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')


class Unconvertible(ValueError):
    """A source value the column's type cannot hold; str() is the reason for the report."""


def _text(value) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise Unconvertible("not valid UTF-8 text") from None
    return value


def _describe(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- timestamps --------------------------------------------------------------------------------


def parse_timestamp(value) -> dt.datetime:
    """ISO 8601 text (naive = UTC, or with Z/+HH[:MM]) or Unix epoch seconds -> aware UTC."""
    if isinstance(value, bool):
        raise Unconvertible(f"not a timestamp: {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise Unconvertible(f"not a timestamp: {value!r}")
        micros = (Decimal(repr(value)) * 1_000_000).to_integral_value(ROUND_HALF_EVEN)
        try:
            return EPOCH + dt.timedelta(microseconds=int(micros))
        except OverflowError:
            raise Unconvertible(f"epoch seconds out of range: {value!r}") from None
    text = _text(value)
    if not isinstance(text, str):
        raise Unconvertible(f"not a timestamp: {_describe(value)}")
    match = _TIMESTAMP_RE.match(text)
    if match is None:
        raise Unconvertible(f"unrecognised timestamp: {_describe(text)}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micros = 0
    if fraction:
        micros = int(Decimal("0." + fraction).scaleb(6).to_integral_value(ROUND_HALF_EVEN))
    tz = UTC
    if zone and zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
        if offset >= dt.timedelta(hours=16):
            raise Unconvertible(f"time zone offset out of range: {_describe(text)}")
        tz = dt.timezone(sign * offset)
    try:
        parsed = dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            tzinfo=tz,
        )
        return (parsed + dt.timedelta(microseconds=micros)).astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise Unconvertible(f"invalid timestamp {_describe(text)}: {exc}") from None


def _utc_text(value: dt.datetime) -> str:
    # Not strftime: %Y does not zero-pad years before 1000 on every platform.
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}"
    )


# --- booleans, integers, floats ----------------------------------------------------------------


def parse_bool(value) -> bool:
    """0/1 (what SQLite stores), or the words t/f, true/false, yes/no, on/off, y/n."""
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str | bytes):
        word = _text(value).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise Unconvertible(f"not a boolean: {_describe(value)}")


def parse_int(value) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str | bytes):
        text = _text(value)
        if _INT_RE.match(text):
            return int(text)
    raise Unconvertible(f"not an integer: {_describe(value)}")


def parse_float(value) -> float:
    if isinstance(value, float):
        return value
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            raise Unconvertible(f"out of range for double precision: {value}") from None
    if isinstance(value, str | bytes):
        text = _text(value)
        special = _SPECIAL_FLOATS.get(text.strip().lstrip("+-").lower())
        if special is not None:
            return -special if text.strip().startswith("-") else special
        if _FLOAT_RE.match(text):
            result = float(text)
            if math.isinf(result):
                raise Unconvertible(f"out of range for double precision: {_describe(text)}")
            return result
    raise Unconvertible(f"not a number: {_describe(value)}")


def float_copy_text(value: float) -> str:
    """repr: the shortest text that reads back as the same double, in PostgreSQL too."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def float_bits(value: float) -> str:
    """The double's IEEE 754 bits in hex: what encode(float8send(x), 'hex') gives."""
    return struct.pack(">d", value).hex()


# --- JSON ---------------------------------------------------------------------------------------


def json_text(value) -> str:
    """The JSON document a source value stands for: text as is, numbers as JSON numbers."""
    if isinstance(value, str | bytes):
        return _text(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    raise Unconvertible(f"not JSON: {_describe(value)}")


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _last_key_wins(pairs):
    return dict(pairs)


def _json_string(text: str) -> str:
    if _JSON_NEEDS_ESCAPE.search(text) is None:
        return f'"{text}"'
    return (
        '"'
        + _JSON_NEEDS_ESCAPE.sub(
            lambda m: _JSON_ESCAPES.get(m.group(), f"\\u{ord(m.group()):04x}"), text
        )
        + '"'
    )


def _numeric_text(number: Decimal) -> str:
    """numeric_out of the value numeric_in makes of the JSON number (scale kept, no exponent)."""
    text = format(number, "f")
    return text[1:] if number.is_zero() and text.startswith("-") else text


def _key_order(key: str):
    encoded = key.encode("utf-8", "surrogatepass")
    return len(encoded), encoded


def _jsonb_text(node) -> str:
    if isinstance(node, dict):
        items = sorted(node.items(), key=lambda item: _key_order(item[0]))
        return "{" + ", ".join(f"{_json_string(k)}: {_jsonb_text(v)}" for k, v in items) + "}"
    if isinstance(node, list):
        return "[" + ", ".join(_jsonb_text(v) for v in node) + "]"
    if isinstance(node, str):
        return _json_string(node)
    if node is True:
        return "true"
    if node is False:
        return "false"
    if node is None:
        return "null"
    return _numeric_text(node)


class _NeedsDecimal(Exception):
    """A number literal numeric prints differently from Python's repr of it."""


def _repr_float(literal: str) -> float:
    number = float(literal)
    # numeric_out prints the literal as written when it has no exponent; the encoder prints
    # repr, which agrees exactly when the literal is repr's own form (not 1.50, 1e3, 1e-05, -0.0).
    if "e" in literal or "E" in literal or number == 0 or repr(number) != literal:
        raise _NeedsDecimal
    return number


_CONTAINERS = (dict, list)


def _jsonb_order(node):
    """The document with every object's keys in jsonb's order (length, then bytes)."""
    if isinstance(node, dict):
        keys = sorted(node)
        if all(map(str.isascii, keys)):
            keys.sort(key=len)  # stable: equal lengths stay in byte order
        else:
            keys.sort(key=_key_order)
        return {
            key: _jsonb_order(node[key]) if isinstance(node[key], _CONTAINERS) else node[key]
            for key in keys
        }
    return [_jsonb_order(item) if isinstance(item, _CONTAINERS) else item for item in node]


def jsonb_canonical(value) -> str:
    """The text jsonb_out prints for the document: keys sorted by length then bytes, the last
    of duplicate keys kept, ", " and ": " separators, numbers as numeric prints them.

    Fast path: the json module's C parser and encoder, Python only reordering keys. Documents
    with a number literal numeric prints differently from repr (1.50, 1e3, 1e-05) take the
    exact Decimal path."""
    text = json_text(value)
    try:
        try:
            document = json.loads(text, parse_float=_repr_float, parse_constant=_reject_constant)
            if isinstance(document, _CONTAINERS):
                document = _jsonb_order(document)
            return json.dumps(document, ensure_ascii=False, separators=(", ", ": "))
        except _NeedsDecimal:
            pass
        document = json.loads(
            text,
            parse_float=Decimal,
            parse_int=Decimal,
            parse_constant=_reject_constant,
            object_pairs_hook=_last_key_wins,
        )
        return _jsonb_text(document)
    except (ValueError, RecursionError, InvalidOperation) as exc:
        raise Unconvertible(f"invalid JSON: {exc}") from None


# --- the two renderings ---------------------------------------------------------------------------


def csv_quote(text: str) -> str:
    """A text value as a quoted CSV field (a quoted "" is an empty string, not NULL)."""
    return '"' + text.replace('"', '""') + '"'


def _text_value(value) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return _text(value)


def copy_field(kind: str, value) -> str:
    """The COPY (CSV) field for a raw source value (raises Unconvertible)."""
    if value is None:
        return COPY_NULL
    if kind == TIMESTAMPTZ:
        return _utc_text(parse_timestamp(value)) + "+00"
    if kind == BOOL:
        return "t" if parse_bool(value) else "f"
    if kind == INT:
        return str(parse_int(value))
    if kind == FLOAT:
        return float_copy_text(parse_float(value))
    if kind in (JSONB, JSON):
        return csv_quote(json_text(value))
    return csv_quote(_text_value(value))


def canonical(kind: str, value) -> str:
    """The canonical text of a raw source value (see the module docstring)."""
    if value is None:
        return NULL
    if kind == TIMESTAMPTZ:
        return _utc_text(parse_timestamp(value))
    if kind == BOOL:
        return "true" if parse_bool(value) else "false"
    if kind == INT:
        return str(parse_int(value))
    if kind == FLOAT:
        return float_bits(parse_float(value))
    if kind == JSONB:
        return jsonb_canonical(value)
    text = json_text(value) if kind == JSON else _text_value(value)
    return f"{len(text)}:{text}"
