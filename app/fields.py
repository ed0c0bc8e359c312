"""Schema fields whose rules the OpenAPI document states: PostgreSQL stores no NUL character
(U+0000) in text or jsonb, so none is accepted, anywhere, with a 422 that names the field."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate

NUL_FREE = validate.Regexp(r"^[^\x00]*$", error="Must not contain NUL characters (U+0000).")
# Any JSON value without a NUL in its strings (keys are checked too; the OpenAPI version the
# document uses cannot state a rule on keys, so the description does).
JSON_VALUE = "NulFreeJsonValue"
JSON_VALUE_SCHEMA = {
    "description": "Any JSON value; no string or key in it contains a NUL character.",
    "nullable": True,
    "oneOf": [
        {"type": "string", "pattern": r"^[^\x00]*$"},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "array", "items": {"$ref": f"#/components/schemas/{JSON_VALUE}"}},
        {"type": "object", "additionalProperties": {"$ref": f"#/components/schemas/{JSON_VALUE}"}},
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


def json_object(**kwargs) -> fields.Dict:
    """A free-form JSON object field, NUL-free throughout."""
    metadata = {
        "additionalProperties": {"$ref": f"#/components/schemas/{JSON_VALUE}"},
        **kwargs.pop("metadata", {}),
    }
    return fields.Dict(validate=_nul_free_document, metadata=metadata, **kwargs)
