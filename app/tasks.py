"""Celery tasks (Redis broker). Start a worker with:  celery -A app.worker worker"""

import logging

from celery import Celery
from flask import current_app
from flask_mail import Message
from sqlalchemy import select

from app.extensions import db, mail
from app.models import ALL_SUITES, Subscription, User, ValidationRun

log = logging.getLogger(__name__)


def subscribers_of(suite: str) -> list[str]:
    return list(
        db.session.scalars(
            select(User.email)
            .join(Subscription, Subscription.user_id == User.id)
            .where(
                Subscription.suite.in_([suite, ALL_SUITES]),
                Subscription.is_active,
                User.is_active,
            )
            .distinct()
            .order_by(User.email)
        )
    )


def notify_run_failed(run_id: int) -> int:
    """Email the subscribers of a failed run's suite; returns the number of recipients."""
    run = db.session.get(ValidationRun, run_id)
    if run is None:
        log.warning("run %s vanished before its notification was sent", run_id)
        return 0
    recipients = subscribers_of(run.suite)
    if not recipients:
        return 0
    failing = [result for result in run.results if result.status in ("fail", "error")]
    lines = [
        (
            f"Run {run.id} of suite {run.suite!r} failed: {run.failed} failed,"
            f" {run.errored} errors, {run.passed}/{run.total} passed."
        ),
        "",
        *(f"- {r.name} [{r.status}] {r.message or ''}".rstrip() for r in failing[:50]),
        "",
        f"Dashboard: {current_app.config['DASHBOARD_URL']}",
    ]
    message = Message(
        subject=f"[LVD] {run.suite}: run {run.id} failed",
        recipients=recipients,
        body="\n".join(lines),
    )
    mail.send(message)
    return len(recipients)


def register_tasks(celery: Celery) -> None:
    # Retried with backoff: an SMTP server that is briefly down must not lose the mail.
    celery.task(
        name="lvd.notify_run_failed",
        autoretry_for=(OSError,),
        retry_backoff=True,
        max_retries=5,
    )(notify_run_failed)
