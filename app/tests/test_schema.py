"""The migrations match the models on both backends; PostgreSQL uses the indexes."""

import datetime as dt
import json

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import select, text

from app.api.queries import runs_query, summary_query
from app.extensions import db
from app.models import ValidationResult


def test_migrations_match_the_models(app):
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []


def test_downgrade_and_upgrade_again(app):
    with app.app_context():
        downgrade(revision="base")
        with db.engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_revision() is None
        upgrade()
        with db.engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_revision() == "0002"


@pytest.fixture
def big_pg(pg_app):
    """30 000 runs over 90 days in 100 suites (1 % failed), 3 results each; then ANALYZE."""
    with pg_app.app_context():
        db.session.execute(
            text(
                """
                INSERT INTO validation_runs (suite, status, total, passed, failed, warned,
                    errored, started_at, created_at)
                SELECT 'suite-' || (i % 100),
                       CASE WHEN i % 97 = 7 THEN 'failed' ELSE 'passed' END,
                       3, 3, 0, 0, 0,
                       now() - (i * interval '259 seconds'), now()
                FROM generate_series(1, 30000) AS i
                """
            )
        )
        db.session.execute(
            text(
                """
                INSERT INTO validation_results (run_id, name, status, duration_ms)
                SELECT r.id, 'check-' || n, 'pass', n FROM validation_runs r,
                       generate_series(1, 3) AS n
                """
            )
        )
        db.session.commit()
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        yield pg_app


def indexes_used(statement) -> set[str]:
    sql = statement.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True})
    plan = db.session.execute(text(f"EXPLAIN (FORMAT JSON) {sql}")).scalar()
    plan = plan if isinstance(plan, list) else json.loads(plan)
    found, stack = set(), [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        if "Index Name" in node:
            found.add(node["Index Name"])
        stack.extend(node.get("Plans", []))
    return found


def test_dashboard_queries_use_their_indexes(big_pg):
    now = dt.datetime.now(dt.UTC)
    with big_pg.app_context():
        cases = [
            ("ix_validation_runs_suite_started_at", runs_query(suite="suite-3").limit(20)),
            ("ix_validation_runs_status_started_at", runs_query(status="failed").limit(10)),
            ("ix_validation_runs_started_at", runs_query().limit(20)),
            ("ix_validation_runs_started_at", summary_query(now - dt.timedelta(hours=24))),
            (
                "ix_validation_results_run_id",
                select(ValidationResult).where(ValidationResult.run_id == 1234),
            ),
        ]
        for index, statement in cases:
            assert index in indexes_used(statement), (index, str(statement))
