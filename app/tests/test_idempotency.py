"""Idempotency-Key: a retried POST creates nothing twice and gets the first answer."""

import datetime as dt
import threading

from sqlalchemy import func, select, update

from app.extensions import db
from app.models import IdempotencyKey, ValidationRun
from app.tests.conftest import auth_headers, run_payload


def count_runs(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(ValidationRun))


def test_a_retry_gets_the_first_answer_and_creates_nothing(app, client):
    headers = {**auth_headers(client), "Idempotency-Key": "run-1"}
    first = client.post("/api/runs", headers=headers, json=run_payload())
    again = client.post("/api/runs", headers=headers, json=run_payload())
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert first.headers["Location"] == again.headers["Location"]
    assert first.headers["Location"].endswith(f"/api/runs/{first.get_json()['id']}")
    assert count_runs(app) == 1
    # Another key is another run.
    other = client.post(
        "/api/runs", headers={**headers, "Idempotency-Key": "run-2"}, json=run_payload()
    )
    assert other.get_json()["id"] != first.get_json()["id"]
    assert count_runs(app) == 2


def test_the_same_key_with_another_body_is_refused(app, client):
    headers = {**auth_headers(client), "Idempotency-Key": "k"}
    assert client.post("/api/runs", headers=headers, json=run_payload()).status_code == 201
    changed = client.post("/api/runs", headers=headers, json=run_payload(suite="other"))
    assert changed.status_code == 422
    assert (
        "Idempotency-Key 'k' was already used with another request" in changed.get_json()["message"]
    )
    assert count_runs(app) == 1


def test_keys_belong_to_their_user_and_expire(app, client):
    alice = {**auth_headers(client, "alice@example.org"), "Idempotency-Key": "k"}
    bob = {**auth_headers(client, "bob@example.org"), "Idempotency-Key": "k"}
    a = client.post("/api/runs", headers=alice, json=run_payload())
    b = client.post("/api/runs", headers=bob, json=run_payload())
    assert a.get_json()["id"] != b.get_json()["id"]
    with app.app_context():
        old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=25)
        db.session.execute(update(IdempotencyKey).values(created_at=old))
        db.session.commit()
    after = client.post("/api/runs", headers=alice, json=run_payload())
    assert after.status_code == 201 and "Idempotent-Replayed" not in after.headers
    assert count_runs(app) == 3


def test_a_malformed_key_is_refused_naming_the_header(client):
    headers = {**auth_headers(client), "Idempotency-Key": "with space"}
    response = client.post("/api/runs", headers=headers, json=run_payload())
    assert response.status_code == 400
    assert response.get_json()["message"].startswith("Idempotency-Key must be")


def test_subscriptions_replay_too(client):
    headers = {**auth_headers(client), "Idempotency-Key": "sub-1"}
    first = client.post("/api/subscriptions", headers=headers, json={"suite": "smoke"})
    again = client.post("/api/subscriptions", headers=headers, json={"suite": "smoke"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.get_json() == first.get_json()
    # Without a key, the duplicate is the conflict it always was.
    plain = {k: v for k, v in headers.items() if k != "Idempotency-Key"}
    assert (
        client.post("/api/subscriptions", headers=plain, json={"suite": "smoke"}).status_code == 409
    )


def test_concurrent_copies_of_one_post_create_one_run(pg_app):
    """Two copies at the same moment: the unique index makes the second wait for the first,
    then answer with its result."""
    client = pg_app.test_client()
    headers = {**auth_headers(client), "Idempotency-Key": "race"}
    barrier = threading.Barrier(8)
    answers = []

    def post():
        local = pg_app.test_client()
        barrier.wait()
        answers.append(local.post("/api/runs", headers=headers, json=run_payload()))

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {a.status_code for a in answers} == {201}
    assert len({a.get_json()["id"] for a in answers}) == 1
    assert count_runs(pg_app) == 1


def test_a_replayed_token_answer_never_shows_the_secret(app, client):
    from app.tests.conftest import admin_headers

    admin = {**admin_headers(app, client), "Idempotency-Key": "tok"}
    first = client.post("/api/tokens", headers=admin, json={"name": "ci", "role": "ingest"})
    again = client.post("/api/tokens", headers=admin, json={"name": "ci", "role": "ingest"})
    assert first.get_json()["token"].startswith("lvd_")
    assert again.get_json()["token"] is None
    assert again.get_json()["id"] == first.get_json()["id"]
    assert len(client.get("/api/tokens", headers=admin).get_json()) == 1
