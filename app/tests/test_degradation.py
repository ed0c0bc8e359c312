"""Degrades, never crashes: Redis unreachable or restarted, database connections killed."""

import shutil
import subprocess

import psycopg2
import pytest
import redis
from sqlalchemy.engine import make_url

from app.tests.conftest import (
    auth_headers,
    free_port,
    make_app,
    register,
    reset_state,
    run_payload,
    wait_until,
)


@pytest.fixture
def redis_down_app(migrated, base_env, redis_url, monkeypatch):
    reset_state(migrated["postgresql"], redis_url)
    # Nothing listens there: connection refused, as when Redis is stopped.
    return make_app(
        monkeypatch,
        base_env,
        migrated["postgresql"],
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
    )


def test_without_redis_the_api_keeps_working(redis_down_app):
    client = redis_down_app.test_client()
    assert client.get("/health").status_code == 200

    ready = client.get("/health/ready")
    assert ready.status_code == 503
    body = ready.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("error")

    headers = auth_headers(client)  # register + login: rate limits fall back to memory
    failed = client.post("/api/runs", headers=headers, json=run_payload("api", ("fail",)))
    assert failed.status_code == 201  # no live update, no mail queued, but the run is stored

    summary = client.get("/api/summary", headers=headers)
    assert summary.status_code == 200
    assert summary.headers["X-Cache"] == "BYPASS"
    assert summary.get_json()["suites"][0]["runs_failed"] == 1

    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'lvd_cache_requests_total{cache="summary",result="error"}' in metrics


def test_without_redis_logout_says_it_cannot_revoke(redis_down_app):
    client = redis_down_app.test_client()
    headers = auth_headers(client)
    response = client.post("/auth/logout", headers=headers)
    assert response.status_code == 503
    assert "try again" in response.get_json()["message"]


def test_without_redis_logins_and_refresh_tokens_keep_working(redis_down_app):
    # Refresh tokens are checked against their login in PostgreSQL, not in Redis.
    client = redis_down_app.test_client()
    register(client, "r@example.org")
    tokens = client.post(
        "/auth/login", json={"email": "r@example.org", "password": "correct horse battery"}
    ).get_json()
    access = {"Authorization": "Bearer " + tokens["access_token"]}
    refresh = {"Authorization": "Bearer " + tokens["refresh_token"]}
    assert client.get("/auth/me", headers=access).status_code == 200
    assert client.post("/auth/refresh", headers=refresh).status_code == 200


def test_without_redis_the_browser_login_page_still_renders(redis_down_app):
    client = redis_down_app.test_client()
    assert client.get("/login").status_code == 200
    assert client.get("/").status_code == 302


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test's own, which the test stops and starts again."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is missing: run scripts/host-services.sh"
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"

    def start():
        process = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--dir",
                str(tmp_path),
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_until(lambda: _pings(url), "redis-server to answer")
        return process

    state = {"process": start()}

    def stop():
        state["process"].terminate()
        state["process"].wait(timeout=30)

    def restart():
        state["process"] = start()

    yield url, stop, restart
    if state["process"].poll() is None:
        stop()


def _pings(url: str) -> bool:
    try:
        return redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.ConnectionError:
        return False


def test_redis_outage_and_recovery(own_redis, migrated, base_env, redis_url, monkeypatch):
    url, stop, restart = own_redis
    reset_state(migrated["postgresql"], redis_url)
    app = make_app(monkeypatch, base_env, migrated["postgresql"], REDIS_URL=url)
    client = app.test_client()
    headers = auth_headers(client)
    client.post("/api/runs", headers=headers, json=run_payload())
    assert client.get("/api/summary", headers=headers).headers["X-Cache"] == "MISS"
    assert client.get("/api/summary", headers=headers).headers["X-Cache"] == "HIT"

    stop()
    assert client.get("/health/ready").status_code == 503
    during = client.get("/api/summary", headers=headers)
    assert (during.status_code, during.headers["X-Cache"]) == (200, "BYPASS")
    assert client.post("/api/runs", headers=headers, json=run_payload()).status_code == 201

    restart()
    assert client.get("/health/ready").status_code == 200
    after = client.get("/api/summary", headers=headers)
    assert after.headers["X-Cache"] == "MISS"
    assert after.get_json()["suites"][0]["runs"] == 2


def test_database_connections_recover_after_being_killed(pg_app):
    client = pg_app.test_client()
    headers = auth_headers(client)
    assert client.get("/api/runs", headers=headers).status_code == 200  # pool holds a connection

    url = make_url(pg_app.config["SQLALCHEMY_DATABASE_URI"]).set(drivername="postgresql")
    killer = psycopg2.connect(url.render_as_string(hide_password=False))
    with killer, killer.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] >= 1
    killer.close()

    # pool_pre_ping replaces the dead connection instead of failing the request.
    assert client.get("/api/runs", headers=headers).status_code == 200
    assert client.get("/health/ready").status_code == 200


@pytest.fixture
def database_down_app(migrated, base_env, redis_url, monkeypatch):
    """An app whose PostgreSQL does not answer (nothing listens on its port)."""
    reset_state(migrated["postgresql"], redis_url)
    url = make_url(migrated["postgresql"]).set(port=free_port())
    return make_app(
        monkeypatch, base_env, url.render_as_string(hide_password=False), DB_RETRY_AFTER="3"
    )


def test_without_the_database_requests_get_503_with_retry_after(database_down_app, caplog):
    client = database_down_app.test_client()
    assert client.get("/health").status_code == 200
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["database"].startswith("error: OperationalError")

    api_token = {"Authorization": "Bearer lvd_" + "x" * 43}  # looked up in the database
    for method, path, body in (
        ("GET", "/api/runs", None),
        ("POST", "/auth/login", {"email": "a@example.org", "password": "x" * 9}),
        ("POST", "/auth/register", {"email": "a@example.org", "password": "x" * 9}),
    ):
        response = client.open(path, method=method, json=body, headers=api_token)
        assert response.status_code == 503, (path, response.get_json())
        assert response.headers["Retry-After"] == "3"
        assert response.get_json()["message"] == (
            "The database is unavailable right now; retry in 3 s."
        ), path
    # A read was tried twice (the second time on a fresh connection), a write once.
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert retries == ["retrying GET /api/runs once: database unavailable"]
