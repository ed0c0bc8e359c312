import datetime as dt

from flask import current_app
from flask_smorest import Blueprint, abort
from flask_smorest.error_handler import ErrorSchema
from sqlalchemy import select

from app import idempotency
from app.admin.schemas import (
    AccountChangeSchema,
    AccountSchema,
    InviteInSchema,
    InviteSchema,
    TokenCreatedSchema,
    TokenInSchema,
    TokenSchema,
)
from app.auth.access import API_TOKEN_PREFIX, current_user, new_secret, protected
from app.extensions import db, limiter
from app.models import ApiToken, Invite, User, role_allows, utcnow
from app.ratelimit import api_limit

blp = Blueprint("admin", __name__, url_prefix="/api", description="Accounts, API tokens, invites")
limiter.limit(api_limit)(blp)


@blp.get("/users")
@blp.response(200, AccountSchema(many=True))
@protected(blp, "admin")
def list_users():
    """Every account, oldest first."""
    return db.session.scalars(select(User).order_by(User.id)).all()


@blp.patch("/users/<int:user_id>")
@blp.arguments(AccountChangeSchema, required=False)
@blp.response(200, AccountSchema)
@blp.alt_response(404, schema=ErrorSchema, description="No such account.")
@blp.alt_response(
    409, schema=ErrorSchema, description="An admin cannot demote or disable their own account."
)
@protected(blp, "admin")
def change_user(data, user_id):
    """Change an account's role, or disable (is_active false) or enable it.

    A disabled account's logins, refresh tokens and API tokens stop working at once."""
    user = db.session.get(User, user_id)
    if user is None:
        abort(404, message=f"Account {user_id} does not exist.")
    if user.id == current_user().id and (
        data.get("role", "admin") != "admin" or data.get("is_active", True) is not True
    ):
        abort(409, message="You cannot demote or disable your own account; ask another admin.")
    for name, value in data.items():
        setattr(user, name, value)
    db.session.commit()
    return user


@blp.get("/tokens")
@blp.response(200, TokenSchema(many=True))
@protected(blp, "admin")
def list_tokens():
    """Every API token (never the token itself), with its last use."""
    return db.session.scalars(select(ApiToken).order_by(ApiToken.id)).all()


@blp.post("/tokens")
@blp.arguments(TokenInSchema)
@blp.response(201, TokenCreatedSchema)
@blp.alt_response(404, schema=ErrorSchema, description="user_id names no account.")
@blp.alt_response(
    409, schema=ErrorSchema, description="role is above the current role of the token's user."
)
@blp.doc(parameters=[idempotency.PARAMETER])
@protected(blp, "admin")
def create_token(data):
    """An API token for a machine (a CI pipeline), used as `Authorization: Bearer lvd_...`.

    It may do what its role allows, and never more than its user may."""
    if (replay := idempotency.replay()) is not None:
        return replay
    user = current_user()
    if "user_id" in data:
        user = db.session.get(User, data["user_id"])
        if user is None:
            abort(404, message=f"user_id: account {data['user_id']} does not exist.")
    if not role_allows(user.role, data["role"]):
        abort(409, message=f"role: {data['role']} is above the role of its user ({user.role}).")
    secret, hashed = new_secret(API_TOKEN_PREFIX)
    expires_at = None
    if "expires_in_days" in data:
        expires_at = utcnow() + dt.timedelta(days=data["expires_in_days"])
    token = ApiToken(
        user=user,
        name=data["name"],
        role=data["role"],
        token_hash=hashed,
        prefix=secret[:12],
        expires_at=expires_at,
    )
    token.token = secret
    db.session.add(token)
    return idempotency.commit_created(token, TokenCreatedSchema(), secrets=("token",))


@blp.delete("/tokens/<int:token_id>")
@blp.response(204)
@blp.alt_response(404, schema=ErrorSchema, description="No such token.")
@protected(blp, "admin")
def revoke_token(token_id):
    """Revoke an API token: it stops working at once. Revoking it again changes nothing."""
    token = db.session.get(ApiToken, token_id)
    if token is None:
        abort(404, message=f"API token {token_id} does not exist.")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db.session.commit()


@blp.post("/invites")
@blp.arguments(InviteInSchema, required=False)
@blp.response(201, InviteSchema)
@blp.doc(parameters=[idempotency.PARAMETER])
@protected(blp, "admin")
def create_invite(data):
    """A one-use code for /auth/register (registration policy invite), giving its role."""
    if (replay := idempotency.replay()) is not None:
        return replay
    hours = data.get("expires_in_hours", current_app.config["INVITE_HOURS"])
    code, hashed = new_secret("inv_")
    invite = Invite(
        code_hash=hashed,
        role=data["role"],
        created_by_id=current_user().id,
        expires_at=utcnow() + dt.timedelta(hours=hours),
    )
    invite.code = code
    db.session.add(invite)
    return idempotency.commit_created(invite, InviteSchema(), secrets=("code",))
