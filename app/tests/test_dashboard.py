"""The browser side: login form with a server-side session in Redis, the dashboard page."""

import re

import redis

from app.tests.conftest import PASSWORD, auth_headers, run_payload


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def browser_login(client, email: str, password: str = PASSWORD):
    token = csrf_of(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"email": email, "password": password, "csrf": token})


def test_dashboard_needs_a_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/"
    assert client.get("/dashboard/data").status_code == 401


def test_login_shows_live_figures_and_logout_ends_the_session(client, redis_url):
    headers = auth_headers(client, "eve@example.org")
    client.post("/api/runs", headers=headers, json=run_payload("checkout", ("pass", "fail")))

    assert browser_login(client, "eve@example.org", "wrong password").status_code == 401
    response = browser_login(client, "eve@example.org")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert redis.Redis.from_url(redis_url).keys("lvd:session:*")

    page = client.get("/").get_data(as_text=True)
    assert "eve@example.org" in page
    assert "checkout" in page
    assert "50.0 %" in page
    assert "socket.io-4.8.4.min.js" in page
    data = client.get("/dashboard/data").get_json()
    assert data["summary"]["suites"][0]["suite"] == "checkout"
    assert data["failures"][0]["suite"] == "checkout"

    client.post("/logout", data={"csrf": csrf_of(page)})
    assert client.get("/").status_code == 302


def test_login_form_needs_its_csrf_token(client):
    auth_headers(client, "frank@example.org")
    client.get("/login")
    response = client.post("/login", data={"email": "frank@example.org", "password": PASSWORD})
    assert response.status_code == 401
    assert "form expired" in response.get_data(as_text=True)


def test_login_redirects_only_to_local_paths(client):
    auth_headers(client, "gina@example.org")
    token = csrf_of(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login?next=//evil.example/",
        data={"email": "gina@example.org", "password": PASSWORD, "csrf": token},
    )
    assert response.headers["Location"] == "/"


def test_static_files_are_served_from_the_package(client):
    response = client.get("/static/dashboard.js")
    assert response.status_code == 200
    assert 'transports: ["websocket"]' in response.get_data(as_text=True)
