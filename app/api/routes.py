import datetime as dt
import logging
import math

from flask import current_app, jsonify, url_for
from flask_smorest import Blueprint, abort
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app import idempotency, live
from app.api.queries import runs_query
from app.api.schemas import (
    RunDetailSchema,
    RunInSchema,
    RunListArgsSchema,
    RunPageSchema,
    SubscriptionInSchema,
    SubscriptionSchema,
    SummaryArgsSchema,
    SummarySchema,
)
from app.api.summary import get_summary, invalidate_summary
from app.auth.access import current_user, protected
from app.extensions import db, limiter
from app.models import Subscription, ValidationResult, ValidationRun
from app.ratelimit import api_limit

log = logging.getLogger(__name__)

blp = Blueprint("api", __name__, url_prefix="/api", description="Validation runs")
limiter.limit(api_limit)(blp)


def run_status(statuses: list[str]) -> str:
    if "fail" in statuses or "error" in statuses:
        return "failed"
    return "warned" if "warn" in statuses else "passed"


def build_run(data: dict, user) -> ValidationRun:
    statuses = [result["status"] for result in data["results"]]
    return ValidationRun(
        suite=data["suite"],
        environment=data.get("environment"),
        git_ref=data.get("git_ref"),
        # In UTC, as they are stored: the answer is made before they are read back.
        started_at=(data.get("started_at") or dt.datetime.now(dt.UTC)).astimezone(dt.UTC),
        finished_at=data["finished_at"].astimezone(dt.UTC) if data.get("finished_at") else None,
        status=run_status(statuses),
        total=len(statuses),
        passed=statuses.count("pass"),
        failed=statuses.count("fail"),
        warned=statuses.count("warn"),
        errored=statuses.count("error"),
        created_by=user,
        results=[ValidationResult(**result) for result in data["results"]],
    )


def notify_failure(run: ValidationRun) -> None:
    """Queue the failure email on Celery; a broker outage loses the mail, never the request."""
    try:
        current_app.extensions["celery"].send_task("lvd.notify_run_failed", args=[run.id])
    except Exception as exc:  # noqa: BLE001 - kombu raises many unrelated types when Redis is down
        log.error("could not queue the failure notification for run %s: %s", run.id, exc)


def _located(response, run_id: int | None = None):
    """A 201 names the run it created (Location), replayed or not."""
    if response.status_code == 201:
        run_id = run_id if run_id is not None else response.get_json()["id"]
        response.headers["Location"] = url_for("api.get_run", run_id=run_id)
    return response


@blp.post("/runs")
@blp.arguments(RunInSchema)
@blp.response(
    201,
    RunDetailSchema,
    headers={"Location": {"description": "The run's URL", "schema": {"type": "string"}}},
)
@blp.doc(parameters=[idempotency.PARAMETER])
@protected(blp, "ingest")
def create_run(data):
    """Record a validation run with all its results.

    Send an Idempotency-Key to be able to retry safely: the run is created once."""
    if (replay := idempotency.replay()) is not None:
        return _located(replay)
    run = build_run(data, current_user())
    db.session.add(run)
    response = idempotency.commit_created(run, RunDetailSchema())
    if response.headers.get("Idempotent-Replayed"):
        return _located(response)
    invalidate_summary()
    live.broadcast_run(RunDetailSchema(exclude=("results",)).dump(run))
    if run.status == "failed":
        notify_failure(run)
    return _located(response, run.id)


@blp.get("/runs")
@blp.arguments(RunListArgsSchema, location="query")
@blp.response(200, RunPageSchema)
@protected(blp)
def list_runs(args):
    """Runs, newest first, filtered by suite, status and a started_at range."""
    page, per_page = args.pop("page"), args.pop("per_page")
    stmt = runs_query(**args)
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    items = db.session.scalars(stmt.limit(per_page).offset((page - 1) * per_page)).all()
    return {
        "items": items,
        "page": page,
        "per_page": per_page,
        "total": total,
        "pages": math.ceil(total / per_page),
    }


@blp.get("/runs/<int:run_id>")
@blp.response(200, RunDetailSchema)
@blp.alt_response(404, description="No such run.")
@protected(blp)
def get_run(run_id):
    """One run with its results."""
    run = db.session.scalar(
        select(ValidationRun)
        .where(ValidationRun.id == run_id)
        .options(selectinload(ValidationRun.results))
    )
    if run is None:
        abort(404, message=f"Run {run_id} does not exist.")
    return run


@blp.delete("/runs/<int:run_id>")
@blp.response(204)
@blp.alt_response(404, description="No such run.")
@protected(blp, "admin")
def delete_run(run_id):
    """Delete a run and its results (admin only)."""
    deleted = db.session.execute(delete(ValidationRun).where(ValidationRun.id == run_id))
    if not deleted.rowcount:
        abort(404, message=f"Run {run_id} does not exist.")
    db.session.commit()
    invalidate_summary()


@blp.get("/summary")
@blp.arguments(SummaryArgsSchema, location="query")
@blp.response(200, SummarySchema, headers={"X-Cache": {"description": "HIT, MISS or BYPASS"}})
@protected(blp)
def summary(args):
    """Pass rates per suite over the last window_hours (cached in Redis)."""
    data, source = get_summary(args["window_hours"])
    # Already serialized (it is what the cache holds): returned as is, not dumped again.
    response = jsonify(data)
    response.headers["X-Cache"] = {"hit": "HIT", "miss": "MISS"}.get(source, "BYPASS")
    return response


@blp.get("/subscriptions")
@blp.response(200, SubscriptionSchema(many=True))
@protected(blp)
def list_subscriptions():
    """The current user's failure-notification subscriptions."""
    return current_user().subscriptions


@blp.post("/subscriptions")
@blp.arguments(SubscriptionInSchema)
@blp.response(201, SubscriptionSchema)
@blp.alt_response(409, description="Already subscribed to this suite.")
@blp.doc(parameters=[idempotency.PARAMETER])
@protected(blp)
def subscribe(data):
    """Get an email when a run of this suite ("*": any suite) fails."""
    if (replay := idempotency.replay()) is not None:
        return replay
    subscription = Subscription(user=current_user(), suite=data["suite"])
    db.session.add(subscription)
    try:
        return idempotency.commit_created(subscription, SubscriptionSchema())
    except IntegrityError:
        db.session.rollback()
        abort(409, message=f"Already subscribed to {data['suite']!r}.")


@blp.delete("/subscriptions/<int:subscription_id>")
@blp.response(204)
@blp.alt_response(404, description="No such subscription of yours.")
@protected(blp)
def unsubscribe(subscription_id):
    """Remove one of the current user's subscriptions."""
    subscription = db.session.get(Subscription, subscription_id)
    if subscription is None or subscription.user_id != current_user().id:
        abort(404, message=f"Subscription {subscription_id} does not exist.")
    db.session.delete(subscription)
    db.session.commit()
