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
# Each role may do what the roles before it may: viewers read, ingest also posts runs,
# admins also manage accounts, invitations and API tokens.
ROLES = ("viewer", "ingest", "admin")
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}
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


def role_allows(role: str, needed: str) -> bool:
    return ROLE_RANK[role] >= ROLE_RANK[needed]


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


class ApiToken(db.Model):
    """A long-lived bearer token for a machine (a CI pipeline). Only its SHA-256 is kept:
    the token itself is shown once, when it is created."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    # What the token may do; never more than its user may (checked on every use).
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The token's first characters, to tell tokens apart in lists and logs.
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()

    __table_args__ = (
        CheckConstraint(f"role IN {ROLES}", name="role"),
        Index("ix_api_tokens_user_id", "user_id"),
    )


class Invite(db.Model):
    """A one-use registration code (registration policy "invite"); only its SHA-256 is kept."""

    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    used_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    __table_args__ = (CheckConstraint(f"role IN {ROLES}", name="role"),)


class RefreshFamily(db.Model):
    """The refresh tokens of one login. Only the newest may be used; using an older one
    (a stolen copy, replayed) revokes the whole family."""

    __tablename__ = "refresh_families"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    current_jti: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_refresh_families_user_id", "user_id"),)


class IdempotencyKey(db.Model):
    """The first answer to a POST sent with an Idempotency-Key, replayed to its retries.

    The unique index on (user, key) is what makes a create happen once: the row is written
    in the same transaction as what the request creates."""

    __tablename__ = "idempotency_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    # SHA-256 of the method, the path and the body: the same key with another request is refused.
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[dict] = mapped_column(JsonDoc)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("user_id", "key", name="uq_idempotency_keys_user_id_key"),
        # The hourly purge of keys older than their 24 h.
        Index("ix_idempotency_keys_created_at", "created_at"),
    )
