"""Every error is JSON with one stable shape: {"code", "status", "message"[, "errors"]}.

The shape is flask-smorest's own, so validation errors raised by the schemas and errors
raised anywhere else look the same to a client.
"""

import logging
from http import HTTPStatus

from flask import Flask, jsonify
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


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
