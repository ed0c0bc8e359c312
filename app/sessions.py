"""Server-side browser sessions in Redis that degrade instead of failing when Redis is down."""

import logging

import redis
from flask import Flask
from flask_session.redis import RedisSessionInterface

log = logging.getLogger(__name__)


class ResilientRedisSessionInterface(RedisSessionInterface):
    """Redis unreachable -> the request sees an empty session (logged out), never a 500."""

    def _retrieve_session_data(self, store_id):
        try:
            return super()._retrieve_session_data(store_id)
        except redis.RedisError as exc:
            log.warning("session store unavailable, treating session as new: %s", exc)
            return None

    def _delete_session(self, store_id):
        try:
            super()._delete_session(store_id)
        except redis.RedisError as exc:
            log.warning("session store unavailable, session not deleted: %s", exc)

    def _upsert_session(self, session_lifetime, session, store_id):
        try:
            super()._upsert_session(session_lifetime, session, store_id)
        except redis.RedisError as exc:
            log.warning("session store unavailable, session not saved: %s", exc)


def init_sessions(app: Flask) -> None:
    # A client of its own: Flask-Session stores bytes, the app's client decodes to str.
    client = redis.Redis.from_url(
        app.config["REDIS_URL"],
        socket_connect_timeout=app.config["REDIS_SOCKET_TIMEOUT"],
        socket_timeout=app.config["REDIS_SOCKET_TIMEOUT"],
    )
    app.session_interface = ResilientRedisSessionInterface(
        app,
        client=client,
        key_prefix=app.config["SESSION_KEY_PREFIX"],
        permanent=app.config["SESSION_PERMANENT"],
    )
