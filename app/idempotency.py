"""Idempotency-Key on the POSTs that create something: a retry gets the first answer.

A client that lost the answer to a POST (its connection was closed by a reload, a deploy,
a timeout) sends it again with the same Idempotency-Key header. The first answer is kept
in PostgreSQL beside what the request created, in the same transaction, under a unique
index on (user, key): so the thing is created exactly once, even when both copies arrive
at once, and a retry gets the same status and body back (with Idempotent-Replayed: true).
The same key with another request is refused with 422. Keys are kept IDEMPOTENCY_KEY_HOURS.

    @blp.post("/runs")
    @blp.doc(parameters=[idempotency.PARAMETER])
    def create_run(data):
        if (replay := idempotency.replay()) is not None:
            return replay
        db.session.add(run)
        response = idempotency.commit_created(run, RunDetailSchema())
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import threading
import time

from flask import Response, current_app, jsonify, request
from flask_smorest import abort
from marshmallow import Schema
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from app.auth.access import current_user
from app.extensions import db
from app.models import IdempotencyKey, utcnow

HEADER = "Idempotency-Key"
_VALID = re.compile(r"[!-~]{1,255}")
PARAMETER = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
    "description": (
        "Any unique value (a UUID) chosen by the client, 1 to 255 visible ASCII characters."
        " A retry with the same key and the same body gets the first answer again"
        " (header Idempotent-Replayed: true) and creates nothing; the same key with another"
        " request answers 422. Keys are kept 24 hours."
    ),
}
PURGE_EVERY = 3600.0
_purge = {"last": 0.0, "lock": threading.Lock()}


def _key() -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not _VALID.fullmatch(key):
        abort(400, message=f"{HEADER} must be 1 to 255 visible ASCII characters.")
    return key


def _request_hash() -> str:
    body = json.dumps(request.get_json(silent=True), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _lifetime() -> dt.timedelta:
    return dt.timedelta(hours=current_app.config["IDEMPOTENCY_KEY_HOURS"])


def replay() -> Response | None:
    """The first answer to this request's key, or None when it is new (or has expired)."""
    key = _key()
    if key is None:
        return None
    row = db.session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.user_id == current_user().id, IdempotencyKey.key == key
        )
    )
    if row is None:
        return None
    if row.created_at <= utcnow() - _lifetime():
        # Expired: removed in the transaction that stores the key's new answer (flushed
        # now, so the delete comes before that insert).
        db.session.delete(row)
        db.session.flush()
        return None
    if row.request_hash != _request_hash():
        abort(
            422,
            message=f"{HEADER} {key!r} was already used with another request;"
            " use a new key for a new request.",
        )
    response = jsonify(row.response_body)
    response.status_code = row.status_code
    response.headers["Idempotent-Replayed"] = "true"
    return response


def commit_created(
    obj, schema: Schema, status: int = 201, secrets: tuple[str, ...] = ()
) -> Response:
    """Commit OBJ (already added to the session) with its key's answer; return the answer.

    When a copy of this request with the same key committed first, its answer is returned
    instead and OBJ is not created. Other integrity errors are raised as they are. The
    fields named in SECRETS (shown once) are kept as null: a replay does not show them."""
    key = _key()
    db.session.flush()
    body = schema.dump(obj)
    if key is not None:
        db.session.add(
            IdempotencyKey(
                user_id=current_user().id,
                key=key,
                request_hash=_request_hash(),
                status_code=status,
                response_body={**body, **dict.fromkeys(secrets)},
            )
        )
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        earlier = replay() if key is not None else None
        if earlier is None:
            raise
        return earlier
    _purge_expired()
    response = jsonify(body)
    response.status_code = status
    return response


def _purge_expired() -> None:
    """Delete expired keys, at most once an hour per process (an index range scan)."""
    now = time.monotonic()
    with _purge["lock"]:
        if now - _purge["last"] < PURGE_EVERY:
            return
        _purge["last"] = now
    cutoff = utcnow() - _lifetime()
    db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at <= cutoff))
    db.session.commit()
