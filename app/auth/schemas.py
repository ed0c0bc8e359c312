from marshmallow import Schema, fields, validate


class RegistrationSchema(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, validate=validate.Length(min=8, max=128))
    invite_code = fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={"description": "Needed when the registration policy is invite."},
    )


class LoginSchema(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, validate=validate.Length(max=128))


class UserSchema(Schema):
    id = fields.Integer()
    email = fields.String()
    role = fields.String()
    created_at = fields.AwareDateTime()


class TokensSchema(Schema):
    access_token = fields.String()
    refresh_token = fields.String(
        metadata={"description": "Valid for one use of /auth/refresh, which returns the next."}
    )
    token_type = fields.String()
    expires_in = fields.Integer(metadata={"description": "Access token lifetime in seconds."})


class MessageSchema(Schema):
    message = fields.String()
