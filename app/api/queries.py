"""The dashboard's queries, in one place so the EXPLAIN test checks exactly what is served."""

import datetime as dt

from sqlalchemy import Select, case, func, select

from app.models import ValidationRun

Run = ValidationRun


def runs_query(suite=None, status=None, since=None, until=None) -> Select:
    """Runs newest first, optionally filtered (see the indexes on validation_runs)."""
    stmt = select(Run)
    if suite:
        stmt = stmt.where(Run.suite == suite)
    if status:
        stmt = stmt.where(Run.status == status)
    if since:
        stmt = stmt.where(Run.started_at >= since)
    if until:
        stmt = stmt.where(Run.started_at < until)
    return stmt.order_by(Run.started_at.desc(), Run.id.desc())


def summary_query(since: dt.datetime) -> Select:
    """Per-suite run and check counts for runs started at or after ``since``."""
    return (
        select(
            Run.suite,
            func.count().label("runs"),
            func.sum(case((Run.status == "failed", 1), else_=0)).label("runs_failed"),
            func.sum(Run.total).label("checks"),
            func.sum(Run.passed).label("checks_passed"),
        )
        .where(Run.started_at >= since)
        .group_by(Run.suite)
        .order_by(Run.suite)
    )
