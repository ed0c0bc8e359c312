"""A failed run reaches its subscribers by email: API -> Redis broker -> a real Celery worker
-> SMTP (an aiosmtpd sink on 127.0.0.1)."""

import os
import queue
import subprocess

import pytest
from aiosmtpd.controller import Controller

from app.tests.conftest import BIN, ROOT, auth_headers, free_port, run_payload


class Sink:
    def __init__(self):
        self.messages: queue.Queue = queue.Queue()

    async def handle_DATA(self, server, session, envelope):
        self.messages.put(envelope)
        return "250 Message accepted"


@pytest.fixture
def smtp_sink():
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller.port, sink.messages
    controller.stop()


@pytest.fixture
def celery_worker(smtp_sink, migrated, base_env, tmp_path):
    port, _messages = smtp_sink
    env = {
        **os.environ,
        **base_env,
        "DATABASE_URL": migrated["postgresql"],
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(port),
        "MAIL_SUPPRESS_SEND": "0",
        "MAIL_DEFAULT_SENDER": "lvd@example.org",
    }
    log_path = tmp_path / "celery.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [
                str(BIN / "celery"),
                "-A",
                "app.worker",
                "worker",
                "--pool",
                "solo",
                "--without-mingle",
                "--without-gossip",
                "--loglevel",
                "INFO",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        yield log_path
        worker.terminate()
        worker.wait(timeout=30)


def test_failed_run_mails_the_subscribers(pg_app, smtp_sink, celery_worker):
    _port, messages = smtp_sink
    client = pg_app.test_client()
    suite_fan = auth_headers(client, "suite-fan@example.org")
    everything_fan = auth_headers(client, "all@example.org")
    bystander = auth_headers(client, "bystander@example.org")
    client.post("/api/subscriptions", headers=suite_fan, json={"suite": "payments"})
    client.post("/api/subscriptions", headers=everything_fan, json={"suite": "*"})
    client.post("/api/subscriptions", headers=bystander, json={"suite": "search"})

    passed = client.post("/api/runs", headers=suite_fan, json=run_payload("payments", ("pass",)))
    assert passed.status_code == 201
    failed = client.post(
        "/api/runs", headers=suite_fan, json=run_payload("payments", ("pass", "fail", "error"))
    )
    assert failed.status_code == 201
    run_id = failed.get_json()["id"]

    try:
        envelope = messages.get(timeout=60)
    except queue.Empty:
        pytest.fail("no mail arrived; worker log:\n" + celery_worker.read_text()[-3000:])
    assert sorted(envelope.rcpt_tos) == ["all@example.org", "suite-fan@example.org"]
    assert envelope.mail_from == "lvd@example.org"
    body = envelope.content.decode()
    assert f"[LVD] payments: run {run_id} failed" in body
    assert "check-1 [fail]" in body
    assert "check-2 [error]" in body
    assert "check-0" not in body
    # The passing run queued nothing: the failed run's mail was the first and only one.
    assert messages.empty()
