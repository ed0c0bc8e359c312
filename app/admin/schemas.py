from marshmallow import Schema, fields, validate

from app.auth.schemas import UserSchema
from app.fields import text
from app.models import ROLES


class AccountSchema(UserSchema):
    is_active = fields.Boolean()


class AccountChangeSchema(Schema):
    role = fields.String(validate=validate.OneOf(ROLES))
    is_active = fields.Boolean()


class TokenInSchema(Schema):
    name = text(
        1,
        100,
        required=True,
        metadata={"description": "What the token is for (a pipeline's name)."},
    )
    role = fields.String(
        required=True,
        validate=validate.OneOf(ROLES),
        metadata={"description": "At most the role of the token's user."},
    )
    user_id = fields.Integer(
        validate=validate.Range(min=1),
        metadata={"description": "The token's user (default: the caller)."},
    )
    expires_in_days = fields.Integer(
        validate=validate.Range(min=1, max=3650),
        metadata={"description": "Days until it stops working (default: never)."},
    )


class TokenSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    role = fields.String()
    user_id = fields.Integer()
    prefix = fields.String(metadata={"description": "The token's first characters."})
    created_at = fields.AwareDateTime()
    expires_at = fields.AwareDateTime(allow_none=True)
    revoked_at = fields.AwareDateTime(allow_none=True)
    last_used_at = fields.AwareDateTime(
        allow_none=True, metadata={"description": "To the minute; null if never used."}
    )


class TokenCreatedSchema(TokenSchema):
    token = fields.String(
        allow_none=True,
        metadata={
            "description": "The token, shown in this answer only (only its SHA-256 is kept);"
            " null in an answer replayed for an Idempotency-Key."
        },
    )


class InviteInSchema(Schema):
    role = fields.String(
        load_default="viewer",
        validate=validate.OneOf(ROLES),
        metadata={"description": "The role of the account made with it."},
    )
    expires_in_hours = fields.Integer(
        validate=validate.Range(min=1, max=24 * 30),
        metadata={"description": "Default: INVITE_HOURS (72)."},
    )


class InviteSchema(Schema):
    id = fields.Integer()
    role = fields.String()
    expires_at = fields.AwareDateTime()
    code = fields.String(
        allow_none=True,
        metadata={
            "description": "The code for /auth/register, shown in this answer only;"
            " null in an answer replayed for an Idempotency-Key."
        },
    )
