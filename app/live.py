"""Live updates over Socket.IO (Flask-SocketIO, threading mode, WebSocket transport only).

Every emit goes through the Redis message queue, so a run posted to any worker on any host
reaches the browsers connected to every other one. Only the WebSocket transport is served:
long-polling needs sticky sessions that gunicorn's several workers cannot give.
"""

import logging

from flask import Flask, current_app, session
from flask_jwt_extended import decode_token
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import PyJWTError
from socketio import RedisManager

from app.auth.tokens import is_revoked
from app.extensions import db, socketio
from app.models import User

log = logging.getLogger(__name__)

RUN_CREATED = "run_created"


def init_app(app: Flask) -> None:
    queue = RedisManager(
        app.config["SOCKETIO_MESSAGE_QUEUE"],
        channel=app.config["SOCKETIO_CHANNEL"],
        # Connect timeout only: the subscriber blocks on reads by design.
        redis_options={"socket_connect_timeout": app.config["REDIS_SOCKET_TIMEOUT"]},
    )
    socketio.init_app(
        app,
        async_mode="threading",
        client_manager=queue,
        manage_session=False,
        transports=["websocket"],
        cors_allowed_origins=app.config["SOCKETIO_CORS_ORIGINS"] or None,
        logger=False,
        engineio_logger=False,
    )


def _user_from_token(auth) -> User | None:
    token = auth.get("token") if isinstance(auth, dict) else None
    if not token:
        return None
    try:
        payload = decode_token(token)
    except (PyJWTError, JWTExtendedException):
        return None
    if payload.get("type") != "access" or is_revoked(payload):
        return None
    return db.session.get(User, int(payload["sub"]))


@socketio.on("connect")
def on_connect(auth=None):
    """Browsers authenticate with their login session, other clients with {"token": <JWT>}."""
    user_id = session.get("user_id")
    user = db.session.get(User, user_id) if user_id else _user_from_token(auth)
    if user is None or not user.is_active:
        raise ConnectionRefusedError("authentication required")
    log.debug("socket.io client connected: user %s", user.id)


def broadcast_run(run: dict) -> None:
    """Tell every connected client, on every worker and host, about a new run."""
    try:
        socketio.emit(RUN_CREATED, run)
    except Exception as exc:  # noqa: BLE001 - a live update must never fail the request
        current_app.logger.error("live update not sent: %s", exc)
