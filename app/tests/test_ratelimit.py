"""Flask-Limiter with Redis storage, behind a trusted proxy, with an exemption list."""

import pytest
import redis

from app.tests.conftest import make_app

BAD_LOGIN = {"email": "nobody@example.org", "password": "wrong-password"}


@pytest.fixture
def limited_app(migrated, base_env, redis_url, monkeypatch):
    redis.Redis.from_url(redis_url).flushdb()
    return make_app(
        monkeypatch,
        base_env,
        migrated["postgresql"],
        RATELIMIT_AUTH="3 per minute",
        PROXY_FIX_X_FOR="1",
        RATELIMIT_EXEMPT="10.9.0.0/16, 192.0.2.7",
    )


def logins(client, address: str, count: int) -> list[int]:
    headers = {"X-Forwarded-For": address}
    return [
        client.post("/auth/login", json=BAD_LOGIN, headers=headers).status_code
        for _ in range(count)
    ]


def test_auth_limit_answers_429_json_with_retry_after(limited_app, redis_url):
    client = limited_app.test_client()
    assert logins(client, "198.51.100.1", 3) == [401, 401, 401]
    response = client.post(
        "/auth/login", json=BAD_LOGIN, headers={"X-Forwarded-For": "198.51.100.1"}
    )
    assert response.status_code == 429
    body = response.get_json()
    assert body["code"] == 429
    assert body["status"] == "Too Many Requests"
    assert "3 per 1 minute" in body["message"]
    assert int(response.headers["Retry-After"]) > 0
    # The counters live in Redis, shared by every worker and host.
    assert redis.Redis.from_url(redis_url).keys("LIMITS:*/lvd/198.51.100.1/auth.login/*")


def test_client_address_comes_from_the_trusted_proxy(limited_app):
    client = limited_app.test_client()
    assert logins(client, "198.51.100.1", 4)[-1] == 429
    # Another client behind the same proxy has its own budget.
    assert logins(client, "198.51.100.2", 1) == [401]


def test_exempt_addresses_are_never_limited(limited_app):
    client = limited_app.test_client()
    assert set(logins(client, "10.9.3.4", 6)) == {401}
    assert set(logins(client, "192.0.2.7", 6)) == {401}


def test_health_is_not_limited(limited_app):
    client = limited_app.test_client()
    statuses = {client.get("/health").status_code for _ in range(20)}
    assert statuses == {200}
