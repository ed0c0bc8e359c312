"""JWT plumbing: user lookup, the Redis revocation blocklist of access tokens, JSON errors."""

import logging
import time

import redis
from flask import Flask

from app.errors import error_response
from app.extensions import db, jwt, redis_client
from app.models import User

log = logging.getLogger(__name__)

BLOCKLIST_PREFIX = "lvd:jwt:revoked:"


class BlocklistUnavailable(RuntimeError):
    pass


def revoke(payload: dict) -> None:
    """Block a token (its decoded payload) until it would have expired anyway."""
    ttl = max(int(payload["exp"] - time.time()), 1)
    try:
        redis_client.set(BLOCKLIST_PREFIX + payload["jti"], "1", ex=ttl)
    except redis.RedisError as exc:
        raise BlocklistUnavailable(str(exc)) from exc


def is_revoked(payload: dict) -> bool:
    """Access tokens: on the Redis blocklist. Refresh tokens are checked by /auth/refresh
    against their family in PostgreSQL instead (rotation), so they never depend on Redis."""
    if payload.get("type") == "refresh":
        return False
    try:
        return bool(redis_client.exists(BLOCKLIST_PREFIX + payload["jti"]))
    except redis.RedisError as exc:
        # Redis down: short-lived access tokens keep working (the API stays up).
        log.warning("token blocklist unavailable: %s", exc)
        return False


def init_jwt_callbacks(app: Flask) -> None:
    """Register the loaders once per JWTManager; they read everything from the current app."""
    if getattr(jwt, "_lvd_callbacks", False):
        return
    jwt._lvd_callbacks = True

    @jwt.user_lookup_loader
    def _load_user(_header, payload):
        user = db.session.get(User, int(payload["sub"]))
        return user if user is not None and user.is_active else None

    @jwt.token_in_blocklist_loader
    def _check_blocklist(_header, payload):
        return is_revoked(payload)

    @jwt.unauthorized_loader
    def _missing(reason):
        return error_response(401, reason)

    @jwt.invalid_token_loader
    def _invalid(reason):
        return error_response(401, f"Invalid token: {reason}")

    @jwt.expired_token_loader
    def _expired(_header, _payload):
        return error_response(401, "Token has expired.")

    @jwt.revoked_token_loader
    def _revoked(_header, _payload):
        return error_response(401, "Token has been revoked.")

    @jwt.user_lookup_error_loader
    def _unknown_user(_header, _payload):
        return error_response(401, "Unknown or disabled user.")
