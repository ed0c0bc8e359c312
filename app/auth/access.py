"""Who is calling, and may they: a JWT access token (people, from /auth/login) or an API
token (machines, made by an admin), checked against the role a view needs.

    @blp.get("/runs")
    @protected(blp, "viewer")
    def list_runs(): ...
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets

from flask import g, request
from flask_jwt_extended import get_current_user, get_jwt, verify_jwt_in_request
from flask_smorest import Blueprint
from flask_smorest.error_handler import ErrorSchema
from sqlalchemy import select, update

from app.errors import error_response
from app.extensions import db
from app.models import ROLE_RANK, ApiToken, User, role_allows, utcnow

SECURITY = [{"bearerAuth": []}]
API_TOKEN_PREFIX = "lvd_"
# last_used_at is written at most this often per token (not on every request).
LAST_USE_GRANULARITY = dt.timedelta(minutes=1)


def new_secret(prefix: str) -> tuple[str, str]:
    """(the secret to hand out once, the SHA-256 to keep). 256 random bits: a plain hash
    is enough, nothing can be guessed offline from it."""
    secret = prefix + secrets.token_urlsafe(32)
    return secret, digest(secret)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def current_user() -> User:
    """The caller of a protected view."""
    return g.lvd_user


def current_jwt() -> dict | None:
    """The decoded JWT of the caller, None for an API token."""
    return g.get("lvd_jwt")


def _api_token_caller(raw: str):
    """(user, role), or an error response for a token that cannot be used."""
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(raw)))
    now = utcnow()
    if token is None:
        return error_response(401, "Invalid API token.")
    if token.revoked_at is not None:
        return error_response(401, "This API token has been revoked.")
    if token.expires_at is not None and token.expires_at <= now:
        return error_response(401, "This API token has expired.")
    user = token.user
    if not user.is_active:
        return error_response(401, "Unknown or disabled user.")
    if token.last_used_at is None or now - token.last_used_at >= LAST_USE_GRANULARITY:
        db.session.execute(update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now))
        db.session.commit()
    role = min(token.role, user.role, key=ROLE_RANK.__getitem__)
    return user, role


def identify():
    """(user, role) of the request, or an error response (401)."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.startswith(API_TOKEN_PREFIX):
        return _api_token_caller(credentials.strip())
    # Raises what flask-jwt-extended's loaders turn into 401s.
    verify_jwt_in_request()
    g.lvd_jwt = get_jwt()
    user = get_current_user()
    return user, user.role


def require(role: str):
    """Let the view run for callers whose role is at least ROLE; 401 or 403 otherwise."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            caller = identify()
            if len(caller) != 2:  # an error response
                return caller
            g.lvd_user, g.lvd_role = caller
            if not role_allows(g.lvd_role, role):
                return error_response(
                    403, f"This action needs the {role} role; this credential has {g.lvd_role}."
                )
            return view(*args, **kwargs)

        return wrapper

    return decorator


def protected(blp: Blueprint, role: str = "viewer"):
    """require(role), documented in the OpenAPI document: the bearer scheme, its 401, and
    the 403 of a role too low."""

    def decorator(view):
        wrapped = require(role)(view)
        wrapped = blp.alt_response(401, "UNAUTHORIZED")(wrapped)
        if role != "viewer":
            wrapped = blp.alt_response(
                403, schema=ErrorSchema, description=f"The caller's role is below {role}."
            )(wrapped)
        return blp.doc(security=SECURITY)(wrapped)

    return decorator
