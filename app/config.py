"""Configuration classes, read from environment variables (and from .env when present)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from dotenv import load_dotenv

PACKAGE_DIR = Path(__file__).resolve().parent
# The repository root in development, the release directory on a host.
BASE_DIR = PACKAGE_DIR.parent

# Who may create an account through /auth/register: anyone, holders of an invite code
# (made by an admin), or nobody (accounts come from `flask users`).
REGISTRATION_POLICIES = ("open", "invite", "closed")

# Variables production refuses to start without.
REQUIRED_IN_PRODUCTION = ("SECRET_KEY", "JWT_SECRET_KEY", "DATABASE_URL", "REDIS_URL")


class ConfigError(RuntimeError):
    """The configuration cannot work; the message says what to fix."""


def load_env_file() -> None:
    """Load .env from the working directory or BASE_DIR; real environment variables win."""
    for candidate in (Path.cwd() / ".env", BASE_DIR / ".env"):
        if candidate.is_file():
            load_dotenv(candidate, override=False)
            return


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def _list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def database_url(url: str) -> str:
    """postgres:// and postgresql:// mean psycopg2 (the pinned driver); SQLAlchemy 2.1 would
    otherwise pick psycopg 3, which is not installed."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg2://" + url.removeprefix(scheme)
    return url


def release_id() -> str:
    """APP_RELEASE, else the RELEASE file the release artifact carries, else "dev"."""
    if os.environ.get("APP_RELEASE"):
        return os.environ["APP_RELEASE"]
    for candidate in (BASE_DIR / "RELEASE", PACKAGE_DIR / "RELEASE"):
        if candidate.is_file():
            return candidate.read_text().strip()
    return "dev"


class Config:
    """Settings shared by every environment; each value can be set by the variable of its name."""

    NAME = "base"

    def __init__(self) -> None:
        env = os.environ.get
        self.INSTANCE_PATH = env("INSTANCE_PATH", str(BASE_DIR / "instance"))
        self.SECRET_KEY = env("SECRET_KEY", "")
        self.JWT_SECRET_KEY = env("JWT_SECRET_KEY", "")
        self.APP_RELEASE = release_id()

        default_db = "sqlite:///" + str(Path(self.INSTANCE_PATH) / "validation_dashboard.db")
        self.SQLALCHEMY_DATABASE_URI = database_url(env("DATABASE_URL", default_db))
        # pool_pre_ping: a connection broken by a database restart is replaced, not used.
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
        if not self.SQLALCHEMY_DATABASE_URI.startswith("sqlite"):
            self.SQLALCHEMY_ENGINE_OPTIONS.update(
                pool_size=_int("DB_POOL_SIZE", 5),
                max_overflow=_int("DB_MAX_OVERFLOW", 10),
                pool_recycle=1800,
            )

        self.REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:6379/0")
        self.REDIS_SOCKET_TIMEOUT = float(env("REDIS_SOCKET_TIMEOUT", "1.0"))
        self.SUMMARY_CACHE_TTL = _int("SUMMARY_CACHE_TTL", 60)

        # Requests larger than this get 413 before any parsing.
        self.MAX_CONTENT_LENGTH = _int("MAX_CONTENT_LENGTH", 1024 * 1024)
        # Number of reverse proxies in front of the app whose X-Forwarded-* headers to trust.
        self.PROXY_FIX_X_FOR = _int("PROXY_FIX_X_FOR", 0)
        self.PROXY_FIX_X_PROTO = _int("PROXY_FIX_X_PROTO", self.PROXY_FIX_X_FOR)
        self.PROXY_FIX_X_HOST = _int("PROXY_FIX_X_HOST", 0)

        # An argon2.profiles name; the tests use CHEAPEST to stay fast.
        self.ARGON2_PROFILE = env("ARGON2_PROFILE", "RFC_9106_LOW_MEMORY")
        self.JWT_ACCESS_TOKEN_EXPIRES = timedelta(minutes=_int("JWT_ACCESS_MINUTES", 15))
        self.JWT_REFRESH_TOKEN_EXPIRES = timedelta(days=_int("JWT_REFRESH_DAYS", 30))
        self.JWT_TOKEN_LOCATION = ["headers"]
        self.REGISTRATION_POLICY = env("REGISTRATION_POLICY", "closed").strip().lower()
        self.INVITE_HOURS = _int("INVITE_HOURS", 72)
        # A retried POST with the same Idempotency-Key gets the first answer for this long.
        self.IDEMPOTENCY_KEY_HOURS = _int("IDEMPOTENCY_KEY_HOURS", 24)
        # The Retry-After (seconds) of a 503 given while the database cannot be reached.
        self.DB_RETRY_AFTER = _int("DB_RETRY_AFTER", 2)

        self.RATELIMIT_ENABLED = _bool("RATELIMIT_ENABLED", True)
        self.RATELIMIT_STORAGE_URI = env("RATELIMIT_STORAGE_URI", self.REDIS_URL)
        self.RATELIMIT_STORAGE_OPTIONS = {
            "socket_connect_timeout": self.REDIS_SOCKET_TIMEOUT,
            "socket_timeout": self.REDIS_SOCKET_TIMEOUT,
        }
        self.RATELIMIT_KEY_PREFIX = env("RATELIMIT_KEY_PREFIX", "lvd")
        self.RATELIMIT_HEADERS_ENABLED = True
        # Redis down: count in process memory rather than fail the request.
        self.RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
        self.RATELIMIT_SWALLOW_ERRORS = True
        self.RATELIMIT_AUTH = env("RATELIMIT_AUTH", "10 per minute")
        self.RATELIMIT_API = env("RATELIMIT_API", "100 per minute")
        # Client addresses or networks never rate limited (e.g. a load generator).
        self.RATELIMIT_EXEMPT = _list("RATELIMIT_EXEMPT")

        self.SESSION_TYPE = "redis"
        self.SESSION_KEY_PREFIX = env("SESSION_KEY_PREFIX", "lvd:session:")
        self.SESSION_PERMANENT = True
        self.PERMANENT_SESSION_LIFETIME = timedelta(hours=_int("SESSION_HOURS", 12))
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", False)

        self.MAIL_SERVER = env("MAIL_SERVER", "localhost")
        self.MAIL_PORT = _int("MAIL_PORT", 25)
        self.MAIL_USE_TLS = _bool("MAIL_USE_TLS", False)
        self.MAIL_USE_SSL = _bool("MAIL_USE_SSL", False)
        self.MAIL_USERNAME = env("MAIL_USERNAME") or None
        self.MAIL_PASSWORD = env("MAIL_PASSWORD") or None
        self.MAIL_DEFAULT_SENDER = env("MAIL_DEFAULT_SENDER", "lvd@localhost")
        self.MAIL_SUPPRESS_SEND = _bool("MAIL_SUPPRESS_SEND", False)
        self.DASHBOARD_URL = env("DASHBOARD_URL", "http://localhost/")

        broker = env("CELERY_BROKER_URL", self.REDIS_URL)
        self.CELERY = {
            "broker_url": broker,
            "task_ignore_result": True,
            "broker_connection_retry_on_startup": True,
            "broker_transport_options": {
                "socket_connect_timeout": self.REDIS_SOCKET_TIMEOUT,
                "socket_timeout": max(self.REDIS_SOCKET_TIMEOUT, 5.0),
            },
            # A request publishing a task must not wait long for a broker that is down.
            "task_publish_retry_policy": {"max_retries": 1, "interval_start": 0},
            "task_acks_late": True,
        }

        self.SOCKETIO_MESSAGE_QUEUE = env("SOCKETIO_MESSAGE_QUEUE", self.REDIS_URL)
        self.SOCKETIO_CHANNEL = env("SOCKETIO_CHANNEL", "lvd-socketio")
        # Extra browser origins allowed to open the WebSocket (same origin is always allowed).
        self.SOCKETIO_CORS_ORIGINS = _list("SOCKETIO_CORS_ORIGINS")

        self.API_TITLE = "Live Validation Dashboard API"
        self.API_VERSION = "1"
        self.OPENAPI_VERSION = "3.1.0"
        self.OPENAPI_URL_PREFIX = "/"
        self.OPENAPI_JSON_PATH = "openapi.json"

    def missing_secrets(self) -> list[str]:
        return []


class DevelopmentConfig(Config):
    NAME = "development"

    def __init__(self) -> None:
        super().__init__()
        self.SECRET_KEY = self.SECRET_KEY or "dev-secret-key-not-for-production"
        self.JWT_SECRET_KEY = self.JWT_SECRET_KEY or "dev-jwt-secret-key-not-for-production"
        self.REGISTRATION_POLICY = os.environ.get("REGISTRATION_POLICY", "open").strip().lower()


class TestingConfig(DevelopmentConfig):
    NAME = "testing"

    def __init__(self) -> None:
        super().__init__()
        self.TESTING = True
        self.MAIL_SUPPRESS_SEND = _bool("MAIL_SUPPRESS_SEND", True)


class ProductionConfig(Config):
    NAME = "production"

    def __init__(self) -> None:
        super().__init__()
        self.SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", True)

    def missing_secrets(self) -> list[str]:
        return [name for name in REQUIRED_IN_PRODUCTION if not os.environ.get(name)]


CONFIGS = {cls.NAME: cls for cls in (DevelopmentConfig, TestingConfig, ProductionConfig)}


def config_name_from_env() -> str:
    """APP_ENV, else FLASK_ENV, else development."""
    return (os.environ.get("APP_ENV") or os.environ.get("FLASK_ENV") or "development").lower()


def load_config(name: str | None = None) -> Config:
    name = name or config_name_from_env()
    try:
        config = CONFIGS[name]()
    except KeyError:
        raise ConfigError(
            f"Unknown configuration {name!r} (APP_ENV/FLASK_ENV): use one of {sorted(CONFIGS)}"
        ) from None
    if config.REGISTRATION_POLICY not in REGISTRATION_POLICIES:
        raise ConfigError(
            f"REGISTRATION_POLICY is {config.REGISTRATION_POLICY!r}:"
            f" use one of {', '.join(REGISTRATION_POLICIES)}"
        )
    missing = config.missing_secrets()
    if missing:
        raise ConfigError(
            "Refusing to start in production: missing required environment variable(s): "
            + ", ".join(missing)
            + " (set them in the environment or in the .env file)"
        )
    return config
