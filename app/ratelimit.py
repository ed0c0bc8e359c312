"""Rate limits (Flask-Limiter, Redis storage): configurable values and an exemption list."""

from ipaddress import ip_address, ip_network

from flask import Flask, current_app, request

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
