"""Fixtures: the app against a real PostgreSQL and a real Redis (scripts/host-services.sh),
plus the SQLite default. Each test session works in scratch databases of its own."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg2
import pytest
import redis
import requests
from flask_migrate import upgrade
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app import config, create_app
from app.extensions import db

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TABLES = (
    "idempotency_keys",
    "refresh_families",
    "invites",
    "api_tokens",
    "validation_results",
    "validation_runs",
    "subscriptions",
    "users",
)
PASSWORD = "correct horse battery"


def _load_host_services_env() -> None:
    env_file = ROOT / ".cache" / "host-services.env"
    if not env_file.is_file():
        return
    for line in env_file.read_text().splitlines():
        name, sep, value = line.removeprefix("export ").partition("=")
        if sep:
            os.environ.setdefault(name.strip(), value.strip())


_load_host_services_env()


def pytest_configure(config):
    missing = [name for name in ("TEST_DATABASE_URL", "TEST_REDIS_URL") if not os.environ.get(name)]
    if missing:
        raise pytest.UsageError(
            f"{', '.join(missing)} not set: run scripts/host-services.sh first "
            "(it starts PostgreSQL and Redis and writes .cache/host-services.env)"
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, what: str, attempts: int = 150, interval: float = 0.2):
    """Poll until predicate() is truthy; fail naming what never happened."""
    for _ in range(attempts):
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"gave up waiting for {what}")


def drop_database(admin, name: str) -> None:
    """Drop a scratch database on the server `admin` (an autocommit connection) is on.

    WITH (FORCE) ends the sessions a test left behind (a killed migration's, say) but, run by a
    role that is not a superuser, fails while an autovacuum worker is in the database: those run
    as no role it may signal, and a migration of 200 000 rows wakes autovacuum. A plain DROP
    ends autovacuum workers itself (and waits up to 5 s for other sessions), so it is the
    fallback.
    """
    with admin.cursor() as cursor:
        try:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except psycopg2.errors.InsufficientPrivilege:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture(scope="session")
def session_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def pg_url(session_id):
    """A scratch PostgreSQL database for this test session, dropped at the end."""
    base = make_url(os.environ["TEST_DATABASE_URL"])
    name = f"lvd_test_{session_id}"
    admin = psycopg2.connect(base.render_as_string(hide_password=False))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    yield base.set(database=name).render_as_string(hide_password=False)
    drop_database(admin, name)
    admin.close()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory):
    return "sqlite:///" + str(tmp_path_factory.mktemp("sqlite") / "validation_dashboard.db")


@pytest.fixture(scope="session")
def redis_url():
    return os.environ["TEST_REDIS_URL"]


@pytest.fixture(scope="session")
def base_env(session_id, redis_url, tmp_path_factory) -> dict:
    """Environment shared by in-process apps and the servers tests start."""
    return {
        "APP_ENV": "testing",
        "ARGON2_PROFILE": "CHEAPEST",
        "REDIS_URL": redis_url,
        "SOCKETIO_CHANNEL": f"lvd-test-{session_id}",
        "INSTANCE_PATH": str(tmp_path_factory.mktemp("instance")),
        # High by default; the rate-limit tests set their own.
        "RATELIMIT_AUTH": "1000 per minute",
        "RATELIMIT_API": "1000 per minute",
    }


def _migrate() -> None:
    app = create_app()
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def migrated(pg_url, sqlite_url, base_env):
    """Both databases built by the Alembic migrations (never by create_all)."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in base_env.items():
            mp.setenv(name, value)
        for url in (sqlite_url, pg_url):
            mp.setenv("DATABASE_URL", url)
            _migrate()
    return {"sqlite": sqlite_url, "postgresql": pg_url}


def make_app(monkeypatch, base_env: dict, database_url: str, **env):
    for name, value in {**base_env, "DATABASE_URL": database_url, **env}.items():
        monkeypatch.setenv(name, str(value))
    return create_app()


def reset_state(database_url: str, redis_url: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(config.database_url(database_url))
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        else:
            for table in TABLES:
                connection.execute(text(f"DELETE FROM {table}"))
    engine.dispose()
    redis.Redis.from_url(redis_url).flushdb()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def app(backend, migrated, base_env, redis_url, monkeypatch):
    reset_state(migrated[backend], redis_url)
    flask_app = make_app(monkeypatch, base_env, migrated[backend])
    yield flask_app
    with flask_app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def pg_app(migrated, base_env, redis_url, monkeypatch):
    reset_state(migrated["postgresql"], redis_url)
    flask_app = make_app(monkeypatch, base_env, migrated["postgresql"])
    yield flask_app
    with flask_app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


def register(client, email: str, password: str = PASSWORD, **extra):
    """Register through the API (the test config's policy is open): 202, whatever happened."""
    response = client.post("/auth/register", json={"email": email, "password": password, **extra})
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def create_user(client, email: str, role: str) -> None:
    """An account with ROLE, made as an operator does: flask users create."""
    result = client.application.test_cli_runner().invoke(
        args=["users", "create", email, "--role", role], env={"LVD_USER_PASSWORD": PASSWORD}
    )
    assert result.exit_code == 0, result.output


def login(client, email: str, password: str = PASSWORD) -> dict:
    response = client.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def auth_headers(client, email: str = "ingest@example.org", role: str = "ingest") -> dict:
    """A JWT of a new account with ROLE (default ingest: it reads and posts runs)."""
    create_user(client, email, role)
    return {"Authorization": "Bearer " + login(client, email)["access_token"]}


def admin_headers(app, client, email: str = "admin@example.org") -> dict:
    return auth_headers(client, email, "admin")


def run_payload(suite: str = "smoke", statuses=("pass", "pass", "fail"), **extra) -> dict:
    results = [
        {"name": f"check-{i}", "status": status, "duration_ms": 1.5 * i, "message": status}
        for i, status in enumerate(statuses)
    ]
    return {"suite": suite, "results": results, **extra}


class Server:
    """A real server process of the app (gunicorn), stopped by stop()."""

    def __init__(self, env: dict, log_path: Path, workers: int = 2):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "--worker-class",
                "gthread",
                "--threads",
                "8",
                "--workers",
                str(workers),
                "--bind",
                f"127.0.0.1:{self.port}",
                "app:create_app()",
            ],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(self._healthy, f"gunicorn on {self.url} (log: {log_path})")
        except BaseException:
            self.stop()
            raise

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"gunicorn exited: {self.log_path.read_text()[-3000:]}")
        try:
            return requests.get(self.url + "/health", timeout=5).status_code == 200
        except requests.RequestException:  # not listening yet, or workers still booting
            return False

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
