"""Runs API: create/list/detail, validation errors, the cached summary and its invalidation."""

import datetime as dt

from sqlalchemy import text

from app.extensions import db
from app.metrics import CACHE
from app.tests.conftest import admin_headers, auth_headers, run_payload

ERROR_KEYS = {"code", "status", "message"}


def ago(**delta) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(**delta)).isoformat()


def test_create_run_derives_status_and_counts(client):
    headers = auth_headers(client)
    body = run_payload(
        statuses=("pass", "warn", "fail", "error"),
        environment="staging",
        git_ref="abc123",
        started_at="2026-01-02T03:04:05+02:00",
        finished_at="2026-01-02T03:14:05+02:00",
    )
    body["results"][0]["details"] = {"retries": 2, "tags": ["ü", "slow"]}
    response = client.post("/api/runs", headers=headers, json=body)
    assert response.status_code == 201, response.get_json()
    run = response.get_json()
    assert (run["status"], run["total"], run["passed"]) == ("failed", 4, 1)
    assert (run["warned"], run["failed"], run["errored"]) == (1, 1, 1)
    assert run["pass_rate"] == 0.25
    assert run["started_at"] == "2026-01-02T01:04:05+00:00"  # stored and shown in UTC
    detail = client.get(f"/api/runs/{run['id']}", headers=headers).get_json()
    assert [r["name"] for r in detail["results"]] == ["check-0", "check-1", "check-2", "check-3"]
    assert detail["results"][0]["details"] == {"retries": 2, "tags": ["ü", "slow"]}


def test_run_status_is_warned_or_passed(client):
    headers = auth_headers(client)
    warned = client.post("/api/runs", headers=headers, json=run_payload(statuses=("pass", "warn")))
    passed = client.post("/api/runs", headers=headers, json=run_payload(statuses=("pass",)))
    assert warned.get_json()["status"] == "warned"
    assert passed.get_json()["status"] == "passed"


def test_list_filters_and_paginates(client):
    headers = auth_headers(client)
    for i in range(5):
        client.post(
            "/api/runs",
            headers=headers,
            json=run_payload("api", ("pass",), started_at=ago(hours=i)),
        )
    client.post("/api/runs", headers=headers, json=run_payload("ui", ("fail",)))
    client.post(
        "/api/runs", headers=headers, json=run_payload("ui", ("pass",), started_at=ago(days=3))
    )

    page = client.get("/api/runs?suite=api&per_page=2&page=2", headers=headers).get_json()
    assert (page["total"], page["pages"], page["page"], len(page["items"])) == (5, 3, 2, 2)
    started = [item["started_at"] for item in page["items"]]
    assert started == sorted(started, reverse=True)

    failed = client.get("/api/runs?status=failed", headers=headers).get_json()
    assert [item["suite"] for item in failed["items"]] == ["ui"]

    since = client.get("/api/runs", headers=headers, query_string={"since": ago(days=1)}).get_json()
    assert since["total"] == 6
    until = client.get("/api/runs", headers=headers, query_string={"until": ago(days=2)}).get_json()
    assert until["total"] == 1


def test_summary_is_cached_and_invalidated_by_writes(app, client):
    headers = auth_headers(client)
    admin = admin_headers(app, client)
    hits = CACHE.labels("summary", "hit")._value.get()
    misses = CACHE.labels("summary", "miss")._value.get()

    client.post("/api/runs", headers=headers, json=run_payload("api", ("pass", "fail")))
    first = client.get("/api/summary", headers=headers)
    assert first.headers["X-Cache"] == "MISS"
    assert first.get_json()["suites"] == [
        {
            "suite": "api",
            "runs": 1,
            "runs_failed": 1,
            "checks": 2,
            "checks_passed": 1,
            "pass_rate": 0.5,
        }
    ]
    second = client.get("/api/summary", headers=headers)
    assert second.headers["X-Cache"] == "HIT"
    assert second.get_json() == first.get_json()

    created = client.post("/api/runs", headers=headers, json=run_payload("api", ("pass", "pass")))
    third = client.get("/api/summary", headers=headers)
    assert third.headers["X-Cache"] == "MISS"
    assert third.get_json()["suites"][0]["runs"] == 2
    assert third.get_json()["suites"][0]["pass_rate"] == 0.75

    client.delete(f"/api/runs/{created.get_json()['id']}", headers=admin)
    fourth = client.get("/api/summary", headers=headers)
    assert fourth.headers["X-Cache"] == "MISS"
    assert fourth.get_json()["suites"][0]["runs"] == 1

    assert CACHE.labels("summary", "hit")._value.get() - hits == 1
    assert CACHE.labels("summary", "miss")._value.get() - misses == 3
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'lvd_cache_requests_total{cache="summary",result="hit"}' in metrics


def test_summary_window(client):
    headers = auth_headers(client)
    client.post("/api/runs", headers=headers, json=run_payload("old", started_at=ago(hours=48)))
    client.post("/api/runs", headers=headers, json=run_payload("new"))
    day = client.get("/api/summary", headers=headers).get_json()
    assert [s["suite"] for s in day["suites"]] == ["new"]
    assert day["window_hours"] == 24
    three_days = client.get("/api/summary?window_hours=72", headers=headers).get_json()
    assert [s["suite"] for s in three_days["suites"]] == ["new", "old"]


def test_bad_json_is_400(client):
    headers = auth_headers(client)
    response = client.post(
        "/api/runs", headers=headers, data='{"suite": ', content_type="application/json"
    )
    assert response.status_code == 400
    assert set(response.get_json()) >= ERROR_KEYS


def test_oversized_body_is_413(client):
    headers = auth_headers(client)
    big = run_payload(statuses=("pass",))
    big["results"][0]["message"] = "x" * (2 * 1024 * 1024)
    response = client.post("/api/runs", headers=headers, json=big)
    assert response.status_code == 413
    assert response.get_json()["code"] == 413


def test_schema_violations_are_422_with_field_errors(client):
    headers = auth_headers(client)
    cases = {
        "unknown field": ({**run_payload(), "colour": "red"}, ["json", "colour"]),
        "wrong type": ({**run_payload(), "suite": 42}, ["json", "suite"]),
        "missing results": ({"suite": "x"}, ["json", "results"]),
        "empty results": ({"suite": "x", "results": []}, ["json", "results"]),
        "bad status": (
            {"suite": "x", "results": [{"name": "a", "status": "maybe"}]},
            ["json", "results", "0", "status"],
        ),
        "negative duration": (
            {"suite": "x", "results": [{"name": "a", "status": "pass", "duration_ms": -1}]},
            ["json", "results", "0", "duration_ms"],
        ),
        "finished before started": (
            run_payload(started_at=ago(hours=1), finished_at=ago(hours=2)),
            ["json", "finished_at"],
        ),
        "not an object": ([1, 2, 3], ["json"]),
    }
    for name, (payload, path) in cases.items():
        response = client.post("/api/runs", headers=headers, json=payload)
        assert response.status_code == 422, name
        body = response.get_json()
        assert set(body) == ERROR_KEYS | {"errors"}, name
        node = body["errors"]
        for key in path:
            node = node[int(key)] if isinstance(node, list) else node[key]
        assert node, name


def test_query_string_validation(client):
    headers = auth_headers(client)
    for query in ("per_page=0", "per_page=101", "status=bogus", "since=yesterday"):
        response = client.get(f"/api/runs?{query}", headers=headers)
        assert response.status_code == 422, query
        assert "query" in response.get_json()["errors"], query
    # Unknown query parameters (cache busters and the like) are ignored, unlike unknown fields.
    assert client.get("/api/runs?_=123", headers=headers).status_code == 200
    assert client.get("/api/summary?window_hours=0", headers=headers).status_code == 422


def test_subscriptions(client):
    headers = auth_headers(client)
    created = client.post("/api/subscriptions", headers=headers, json={"suite": "api"})
    assert created.status_code == 201
    assert (
        client.post("/api/subscriptions", headers=headers, json={"suite": "api"}).status_code == 409
    )
    assert (
        client.post("/api/subscriptions", headers=headers, json={"suite": "*"}).status_code == 201
    )
    listed = client.get("/api/subscriptions", headers=headers).get_json()
    assert sorted(s["suite"] for s in listed) == ["*", "api"]

    other = auth_headers(client, "other@example.org")
    sub_id = created.get_json()["id"]
    assert client.delete(f"/api/subscriptions/{sub_id}", headers=other).status_code == 404
    assert client.delete(f"/api/subscriptions/{sub_id}", headers=headers).status_code == 204
    assert len(client.get("/api/subscriptions", headers=headers).get_json()) == 1


def test_moments_beyond_the_years_utc_can_hold_are_clamped_in_filters_refused_in_runs(client):
    headers = auth_headers(client)
    assert client.post("/api/runs", headers=headers, json=run_payload()).status_code == 201
    since = "0001-01-01T00:00:00+02:03"  # before 0001-01-01 in UTC
    until = "9999-12-31T23:59:59-02:00"  # after 9999-12-31 in UTC
    listed = client.get("/api/runs", headers=headers, query_string={"since": since, "until": until})
    assert listed.status_code == 200, listed.get_json()
    assert listed.get_json()["total"] == 1
    refused = client.post("/api/runs", headers=headers, json=run_payload(started_at=since))
    assert refused.status_code == 422
    assert refused.get_json()["errors"]["json"]["started_at"] == [
        "Must fall within the years 1 to 9999 in UTC."
    ]


def test_cache_clear_forgets_summaries_written_behind_the_apps_back(app, client):
    """After a restore (or a hand edit) the database changed without the app: `flask cache
    clear` makes the next summary come from the database."""
    headers = auth_headers(client)
    client.post("/api/runs", headers=headers, json=run_payload("restored", ("pass",)))
    assert client.get("/api/summary", headers=headers).headers["X-Cache"] == "MISS"
    with app.app_context():
        db.session.execute(text("DELETE FROM validation_runs"))
        db.session.commit()
    stale = client.get("/api/summary", headers=headers)
    assert stale.headers["X-Cache"] == "HIT"
    assert stale.get_json()["suites"][0]["suite"] == "restored"

    result = app.test_cli_runner().invoke(args=["cache", "clear"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("summary cache cleared")
    fresh = client.get("/api/summary", headers=headers)
    assert fresh.headers["X-Cache"] == "MISS"
    assert fresh.get_json()["suites"] == []
