"""Rate limits (Flask-Limiter, Redis storage): configurable values and an exemption list."""

from ipaddress import ip_address, ip_network

from flask import Flask, Response, current_app, g, request

from app.extensions import limiter


def auth_limit() -> str:
    return current_app.config["RATELIMIT_AUTH"]


def api_limit() -> str:
    return current_app.config["RATELIMIT_API"]


@limiter.request_filter
def _exempt_client() -> bool:
    """Clients on RATELIMIT_EXEMPT (addresses or networks) are never limited."""
    networks = current_app.extensions.get("ratelimit_exempt") or ()
    if not networks or not request.remote_addr:
        return False
    try:
        address = ip_address(request.remote_addr)
    except ValueError:
        return False
    return any(address in network for network in networks)


def init_app(app: Flask) -> None:
    app.extensions["ratelimit_exempt"] = [
        ip_network(item, strict=False) for item in app.config["RATELIMIT_EXEMPT"]
    ]


def keep_retry_after_meaningful(response: Response) -> Response:
    """Retry-After only where it means "come back then": a 429 (Flask-Limiter's value) and
    a 503 (the app's own, g.retry_after). Flask-Limiter writes its window's reset on every
    response of a limited route, and would stretch a 503's few seconds to a minute.

    Registered before Flask-Limiter, so that it runs after it (after_request runs last-in,
    first-out)."""
    if response.status_code == 503 and "retry_after" in g:
        response.headers["Retry-After"] = str(g.retry_after)
    elif response.status_code not in (429, 503):
        response.headers.pop("Retry-After", None)
    return response
