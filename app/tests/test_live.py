"""Two real gunicorn servers (gthread, two workers each) sharing PostgreSQL and Redis:
Socket.IO events cross servers through the Redis queue; /metrics sums all workers."""

import os
import queue
import subprocess

import pytest
import requests
import socketio

from app.tests.conftest import BIN, PASSWORD, ROOT, Server, reset_state, run_payload


@pytest.fixture(scope="module")
def servers(migrated, base_env, redis_url, tmp_path_factory):
    reset_state(migrated["postgresql"], redis_url)
    started = []
    try:
        for name in ("a", "b"):
            metrics_dir = tmp_path_factory.mktemp(f"prometheus-{name}")
            env = {
                **base_env,
                "DATABASE_URL": migrated["postgresql"],
                "APP_RELEASE": f"test-{name}",
                "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            }
            log = tmp_path_factory.mktemp("logs") / f"gunicorn-{name}.log"
            started.append(Server(env, log))
        yield started
    finally:
        for server in started:
            server.stop()


def token_for(server: Server, email: str) -> str:
    """A JWT of an ingest account, made with the CLI as an operator does."""
    credentials = {"email": email, "password": PASSWORD}
    subprocess.run(
        [str(BIN / "flask"), "--app", "app", "users", "create", email, "--role", "ingest"],
        env={**os.environ, **server.env, "LVD_USER_PASSWORD": PASSWORD},
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    response = requests.post(server.url + "/auth/login", json=credentials, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def connect(server: Server, token: str | None) -> tuple[socketio.Client, queue.Queue]:
    client = socketio.Client(reconnection=False)
    events: queue.Queue = queue.Queue()
    client.on("run_created", events.put)
    client.connect(
        server.url,
        auth={"token": token} if token else None,
        transports=["websocket"],
        wait_timeout=10,
    )
    return client, events


def test_servers_report_their_release(servers):
    a, b = servers
    assert requests.get(a.url + "/version", timeout=10).json()["release"] == "test-a"
    assert requests.get(b.url + "/version", timeout=10).json()["release"] == "test-b"


def test_a_run_posted_to_one_server_reaches_clients_of_both(servers):
    a, b = servers
    token = token_for(a, "live@example.org")
    clients = [connect(b, token), connect(b, token), connect(a, token)]
    try:
        response = requests.post(
            a.url + "/api/runs",
            json=run_payload("live-suite", ("pass", "fail")),
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        run_id = response.json()["id"]
        for _client, events in clients:
            event = events.get(timeout=30)
            assert (event["id"], event["suite"], event["status"]) == (
                run_id,
                "live-suite",
                "failed",
            )
            assert "results" not in event
    finally:
        for client, _events in clients:
            client.disconnect()


def test_socket_connections_need_a_valid_token(servers):
    a, _b = servers
    for token in (None, "not-a-token"):
        with pytest.raises(socketio.exceptions.ConnectionError):
            connect(a, token)


def test_long_polling_is_not_served(servers):
    a, _b = servers
    response = requests.get(
        a.url + "/socket.io/", params={"EIO": "4", "transport": "polling"}, timeout=10
    )
    assert response.status_code == 400


def metric_value(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_add_up_across_workers(servers):
    _a, b = servers
    series = 'lvd_http_requests_total{endpoint="/health",method="GET",status="200"}'
    before = metric_value(requests.get(b.url + "/metrics", timeout=10).text, series)
    for _ in range(40):
        # A new connection each time, so both workers get a share.
        assert requests.get(b.url + "/health", timeout=10, headers={"Connection": "close"}).ok
    after = metric_value(requests.get(b.url + "/metrics", timeout=10).text, series)
    assert after - before == 40
