"""initial schema: users, validation runs and results, subscriptions

Revision ID: 0001
Revises:
Create Date: 2026-11-29

Index rationale is documented next to each index in app/models.py.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), server_default="viewer", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.CheckConstraint("role IN ('admin', 'viewer')", name=op.f("ck_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("suite", sa.String(length=100), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_subscriptions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
        sa.UniqueConstraint("user_id", "suite", name="uq_subscriptions_user_id_suite"),
    )
    op.create_index("ix_subscriptions_suite", "subscriptions", ["suite"])

    op.create_table(
        "validation_runs",
        sa.Column("id", BigId, nullable=False),
        sa.Column("suite", sa.String(length=100), nullable=False),
        sa.Column("environment", sa.String(length=100), nullable=True),
        sa.Column("git_ref", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("warned", sa.Integer(), nullable=False),
        sa.Column("errored", sa.Integer(), nullable=False),
        sa.Column("started_at", Timestamp, nullable=False),
        sa.Column("finished_at", Timestamp, nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.CheckConstraint(
            "status IN ('passed', 'warned', 'failed')", name=op.f("ck_validation_runs_status")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_validation_runs_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_validation_runs")),
    )
    op.create_index("ix_validation_runs_started_at", "validation_runs", ["started_at"])
    op.create_index(
        "ix_validation_runs_status_started_at", "validation_runs", ["status", "started_at"]
    )
    op.create_index(
        "ix_validation_runs_suite_started_at", "validation_runs", ["suite", "started_at"]
    )

    op.create_table(
        "validation_results",
        sa.Column("id", BigId, nullable=False),
        sa.Column("run_id", BigId, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=True,
        ),
        sa.CheckConstraint(
            "status IN ('pass', 'fail', 'warn', 'error')",
            name=op.f("ck_validation_results_status"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["validation_runs.id"],
            name=op.f("fk_validation_results_run_id_validation_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_validation_results")),
    )
    op.create_index("ix_validation_results_run_id", "validation_results", ["run_id"])


def downgrade():
    op.drop_table("validation_results")
    op.drop_table("validation_runs")
    op.drop_table("subscriptions")
    op.drop_table("users")
