"""Every error is JSON with one stable shape: {"code", "status", "message"[, "errors"]}.

The shape is flask-smorest's own, so validation errors raised by the schemas and errors
raised anywhere else look the same to a client.
"""

import logging
from http import HTTPStatus

from flask import Flask, current_app, g, jsonify
from sqlalchemy.exc import (
    DBAPIError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)


def error_response(code: int, message: str | None = None, errors=None, headers=None):
    status = HTTPStatus(code)
    body = {"code": code, "status": status.phrase, "message": message or status.description}
    if errors:
        body["errors"] = errors
    return jsonify(body), code, headers or {}


def handle_http_exception(exc: HTTPException):
    data = getattr(exc, "data", None) or {}
    # webargs/smorest put schema errors under "messages"; smorest.abort() uses "errors".
    errors = data.get("errors") or data.get("messages")
    message = data.get("message") or exc.description
    headers = dict(data.get("headers") or {})
    if exc.code == 405 and exc.valid_methods:
        headers["Allow"] = ", ".join(exc.valid_methods)
    return error_response(exc.code or 500, message, errors, headers)


def handle_unexpected(exc: Exception):
    log.exception("unhandled error")
    return error_response(500, InternalServerError.description)


def database_unavailable(exc: BaseException) -> bool:
    """The database could not be reached or went away (restart, failover, network), as
    opposed to a query it refused: worth a retry."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def handle_database_error(exc: SQLAlchemyError):
    """503 with Retry-After while the database is unreachable; 500 for anything else."""
    if not database_unavailable(exc):
        return handle_unexpected(exc)
    # The first line of the driver's message only: never the statement or its parameters.
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:200]
    log.warning("database unavailable (%s): %s", type(exc).__name__, reason)
    g.retry_after = retry_after = current_app.config["DB_RETRY_AFTER"]
    return error_response(
        503,
        f"The database is unavailable right now; retry in {retry_after} s.",
        headers={"Retry-After": str(retry_after)},
    )


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(SQLAlchemyError, handle_database_error)
    app.register_error_handler(Exception, handle_unexpected)
