"""Schema fields whose rules the OpenAPI document states: PostgreSQL stores no NUL character
(U+0000) in text or jsonb, so none is accepted, anywhere, with a 422 that names the field."""

from __future__ import annotations

import datetime as dt

from marshmallow import ValidationError, fields, validate

NUL_FREE_PATTERN = r"^[^\x00]*$"
NUL_FREE = validate.Regexp(NUL_FREE_PATTERN, error="Must not contain NUL characters (U+0000).")
# Any JSON value without a NUL in its strings or keys (OpenAPI 3.1: JSON Schema's
# propertyNames states the rule on keys).
JSON_VALUE = "NulFreeJsonValue"
_JSON_VALUE_REF = {"$ref": f"#/components/schemas/{JSON_VALUE}"}
_NUL_FREE_OBJECT = {
    "propertyNames": {"pattern": NUL_FREE_PATTERN},
    "additionalProperties": _JSON_VALUE_REF,
}
JSON_VALUE_SCHEMA = {
    "description": "Any JSON value; no string or key in it contains a NUL character.",
    "oneOf": [
        {"type": "null"},
        {"type": "string", "pattern": NUL_FREE_PATTERN},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "array", "items": _JSON_VALUE_REF},
        {"type": "object", **_NUL_FREE_OBJECT},
    ],
}


def text(minimum: int | None = None, maximum: int | None = None, **kwargs) -> fields.String:
    """A string field of MINIMUM to MAXIMUM characters, none of them NUL."""
    rules = [NUL_FREE]
    if minimum is not None or maximum is not None:
        rules.insert(0, validate.Length(min=minimum, max=maximum))
    return fields.String(validate=rules, **kwargs)


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _nul_free_document(value) -> None:
    if _has_nul(value):
        raise ValidationError("Must not contain NUL characters (U+0000) in any key or string.")


class JsonObject(fields.Dict):
    """A free-form JSON object field, NUL-free throughout (documented by json_object_doc)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(validate=_nul_free_document, **kwargs)


def json_object_doc(converter, field, **kwargs) -> dict:
    """apispec attribute function: a JsonObject's keys and values in the document."""
    return dict(_NUL_FREE_OBJECT) if isinstance(field, JsonObject) else {}


class Moment(fields.AwareDateTime):
    """A date-time with a zone (none: UTC), handed over in UTC. One that falls outside the
    years 1 to 9999 once in UTC (0001-01-01T00:00:00+02:00) cannot be held: a filter
    (CLAMP) takes the nearest one that can, which selects the same rows; a value to store
    is refused with 422."""

    def __init__(self, clamp: bool = False, **kwargs) -> None:
        super().__init__(default_timezone=dt.UTC, **kwargs)
        self.clamp = clamp

    def _deserialize(self, value, attr, data, **kwargs):
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(dt.UTC)
        except OverflowError:
            if not self.clamp:
                raise ValidationError("Must fall within the years 1 to 9999 in UTC.") from None
            edge = dt.datetime.min if moment.year == dt.MINYEAR else dt.datetime.max
            return edge.replace(tzinfo=dt.UTC)
