from marshmallow import Schema, fields, validate


class CredentialsSchema(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, validate=validate.Length(min=8, max=128))


class LoginSchema(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, validate=validate.Length(max=128))


class LogoutSchema(Schema):
    refresh_token = fields.String(metadata={"description": "Also revoke this refresh token."})


class UserSchema(Schema):
    id = fields.Integer()
    email = fields.String()
    role = fields.String()
    created_at = fields.AwareDateTime()


class TokensSchema(Schema):
    access_token = fields.String()
    refresh_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer(metadata={"description": "Access token lifetime in seconds."})


class AccessTokenSchema(Schema):
    access_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()


class MessageSchema(Schema):
    message = fields.String()
