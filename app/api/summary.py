"""The pass-rate summary, served from Redis and invalidated by every write to runs.

Invalidation bumps a generation counter that is part of every cache key, so one INCR
invalidates all windows at once and a reader racing a writer can only fill a dead key.
Redis down: the summary is computed from the database every time (counted as "error").
"""

import datetime as dt
import json
import logging

import redis
from flask import current_app

from app.api.queries import summary_query
from app.api.schemas import SummarySchema
from app.extensions import db, redis_client
from app.metrics import CACHE

log = logging.getLogger(__name__)

GENERATION_KEY = "lvd:summary:generation"
_schema = SummarySchema()


def compute_summary(window_hours: int) -> dict:
    now = dt.datetime.now(dt.UTC)
    since = now - dt.timedelta(hours=window_hours)
    suites = [
        {
            "suite": row.suite,
            "runs": row.runs,
            "runs_failed": int(row.runs_failed or 0),
            "checks": int(row.checks or 0),
            "checks_passed": int(row.checks_passed or 0),
            "pass_rate": round(row.checks_passed / row.checks, 4) if row.checks else None,
        }
        for row in db.session.execute(summary_query(since))
    ]
    return _schema.dump(
        {"window_hours": window_hours, "since": since, "generated_at": now, "suites": suites}
    )


def get_summary(window_hours: int) -> tuple[dict, str]:
    """The summary and where it came from: "hit", "miss" or "error" (Redis unavailable)."""
    try:
        generation = redis_client.get(GENERATION_KEY) or "0"
        key = f"lvd:summary:{generation}:{window_hours}"
        cached = redis_client.get(key)
    except redis.RedisError as exc:
        log.warning("summary cache unavailable, reading the database: %s", exc)
        CACHE.labels("summary", "error").inc()
        return compute_summary(window_hours), "error"
    if cached is not None:
        CACHE.labels("summary", "hit").inc()
        return json.loads(cached), "hit"
    CACHE.labels("summary", "miss").inc()
    summary = compute_summary(window_hours)
    try:
        redis_client.set(key, json.dumps(summary), ex=current_app.config["SUMMARY_CACHE_TTL"])
    except redis.RedisError as exc:
        log.warning("summary cache unavailable, not stored: %s", exc)
    return summary, "miss"


def invalidate_summary() -> None:
    try:
        redis_client.incr(GENERATION_KEY)
    except redis.RedisError as exc:
        # Entries expire after SUMMARY_CACHE_TTL at the latest.
        log.warning("summary cache unavailable, not invalidated: %s", exc)
