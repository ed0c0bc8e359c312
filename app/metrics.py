"""Prometheus metrics: requests and latency by endpoint, cache hits and misses.

Under gunicorn each worker is a process: with PROMETHEUS_MULTIPROC_DIR set (before the app
is imported) every worker writes its samples there and /metrics sums them. The directory must
be emptied when the service starts, and gunicorn's child_exit hook should call
gunicorn_child_exit() below.
"""

import os
import time

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter(
    "lvd_http_requests_total", "HTTP requests served", ["method", "endpoint", "status"]
)
LATENCY = Histogram(
    "lvd_http_request_duration_seconds", "HTTP request latency", ["method", "endpoint"]
)
CACHE = Counter("lvd_cache_requests_total", "Cache lookups", ["cache", "result"])

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics():
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def _endpoint_label() -> str:
    # The URL rule, not the path: /api/runs/<int:run_id> is one series, not one per run.
    return request.url_rule.rule if request.url_rule else "<unmatched>"


def _start_timer():
    g.request_started = time.perf_counter()


def _record(response):
    started = g.pop("request_started", None)
    if started is not None:
        endpoint = _endpoint_label()
        LATENCY.labels(request.method, endpoint).observe(time.perf_counter() - started)
        REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
    return response


def gunicorn_child_exit(server, worker) -> None:
    """Use as gunicorn's child_exit hook in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)


def init_app(app: Flask) -> None:
    app.before_request(_start_timer)
    app.after_request(_record)
    app.register_blueprint(bp)
