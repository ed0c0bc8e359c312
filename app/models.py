"""Database models. The schema itself is owned by the Alembic migrations in app/migrations."""

from __future__ import annotations

import datetime as dt

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db

UTC = dt.UTC
ROLES = ("admin", "viewer")
RESULT_STATUSES = ("pass", "fail", "warn", "error")
RUN_STATUSES = ("passed", "warned", "failed")
# Subscribes to every suite.
ALL_SUITES = "*"

# BIGINT on PostgreSQL (results grow without bound); SQLite only auto-increments INTEGER keys.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# jsonb on PostgreSQL (indexable, validated), JSON text elsewhere.
JsonDoc = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator):
    """timestamptz on PostgreSQL; always hands back aware UTC datetimes (SQLite stores naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            value = value.astimezone(UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def password_hasher() -> PasswordHasher:
    """Argon2id with the parameters of the ARGON2_PROFILE named in the config."""
    profile = getattr(profiles, current_app.config["ARGON2_PROFILE"])
    return PasswordHasher.from_parameters(profile)


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Stored lower-cased; the unique constraint's index serves the login lookup.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="viewer", server_default="viewer")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    subscriptions: Mapped[list[Subscription]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    __table_args__ = (CheckConstraint(f"role IN {ROLES}", name="role"),)

    def set_password(self, password: str) -> None:
        self.password_hash = password_hasher().hash(password)

    def check_password(self, password: str) -> bool:
        """Verify, and re-hash with the current parameters when they have changed."""
        hasher = password_hasher()
        try:
            hasher.verify(self.password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        if hasher.check_needs_rehash(self.password_hash):
            self.password_hash = hasher.hash(password)
        return True

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class ValidationRun(db.Model):
    __tablename__ = "validation_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    suite: Mapped[str] = mapped_column(String(100))
    environment: Mapped[str | None] = mapped_column(String(100))
    git_ref: Mapped[str | None] = mapped_column(String(100))
    # Derived from the results when the run is created; runs are immutable afterwards.
    status: Mapped[str] = mapped_column(String(8))
    total: Mapped[int] = mapped_column(Integer)
    passed: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    warned: Mapped[int] = mapped_column(Integer)
    errored: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    created_by: Mapped[User | None] = relationship()
    results: Mapped[list[ValidationResult]] = relationship(
        back_populates="run",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="ValidationResult.id",
    )

    __table_args__ = (
        CheckConstraint(f"status IN {RUN_STATUSES}", name="status"),
        # The run list filtered by suite, newest first (the most common dashboard query),
        # and the summary's per-suite window scan.
        Index("ix_validation_runs_suite_started_at", "suite", "started_at"),
        # The unfiltered run list and date-range filters, newest first; the summary window.
        Index("ix_validation_runs_started_at", "started_at"),
        # "Latest failures" on the dashboard: status = 'failed' ordered by recency.
        Index("ix_validation_runs_status_started_at", "status", "started_at"),
    )

    @property
    def pass_rate(self) -> float | None:
        return round(self.passed / self.total, 4) if self.total else None


class ValidationResult(db.Model):
    __tablename__ = "validation_results"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(BigId, ForeignKey("validation_runs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(8))
    duration_ms: Mapped[float | None] = mapped_column(Float)
    message: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict | None] = mapped_column(JsonDoc)

    run: Mapped[ValidationRun] = relationship(back_populates="results")

    __table_args__ = (
        CheckConstraint(f"status IN {RESULT_STATUSES}", name="status"),
        # A run's detail page loads its results; PostgreSQL does not index foreign keys
        # itself, and the ON DELETE CASCADE from validation_runs needs it too.
        Index("ix_validation_results_run_id", "run_id"),
    )


class Subscription(db.Model):
    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # A suite name, or "*" for every suite.
    suite: Mapped[str] = mapped_column(String(100))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="subscriptions")

    __table_args__ = (
        # One subscription per user and suite; its index also serves "my subscriptions".
        UniqueConstraint("user_id", "suite", name="uq_subscriptions_user_id_suite"),
        # Notification fan-out: who subscribed to this suite (or to "*")?
        Index("ix_subscriptions_suite", "suite"),
    )
