"""API tokens for machines, accounts managed by admins, the first admin from the vault."""

import datetime as dt

from sqlalchemy import select, update

from app.extensions import db
from app.models import ApiToken
from app.tests.conftest import PASSWORD, admin_headers, auth_headers, login, run_payload


def bearer(token: str) -> dict:
    return {"Authorization": "Bearer " + token}


def make_token(client, admin: dict, **body) -> dict:
    response = client.post("/api/tokens", headers=admin, json={"name": "ci", **body})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_an_ingest_token_posts_runs_a_viewer_token_only_reads(app, client):
    admin = admin_headers(app, client)
    ingest = make_token(client, admin, role="ingest")
    viewer = make_token(client, admin, role="viewer", name="dashboard screen")
    assert ingest["token"].startswith("lvd_") and ingest["prefix"] == ingest["token"][:12]

    created = client.post("/api/runs", headers=bearer(ingest["token"]), json=run_payload())
    assert created.status_code == 201
    refused = client.post("/api/runs", headers=bearer(viewer["token"]), json=run_payload())
    assert refused.status_code == 403
    assert client.get("/api/runs", headers=bearer(viewer["token"])).status_code == 200
    # A token acts for its user, with no more than the token's role.
    me = client.get("/auth/me", headers=bearer(viewer["token"])).get_json()
    assert me["email"] == "admin@example.org"
    assert client.get("/api/users", headers=bearer(viewer["token"])).status_code == 403


def test_tokens_are_hashed_at_rest_listed_with_their_last_use_and_revocable(app, client):
    admin = admin_headers(app, client)
    token = make_token(client, admin, role="ingest")
    with app.app_context():
        stored = db.session.scalars(select(ApiToken)).one()
        assert token["token"] not in (stored.token_hash, stored.prefix)
    listed = client.get("/api/tokens", headers=admin).get_json()
    assert [(t["id"], t["last_used_at"]) for t in listed] == [(token["id"], None)]
    assert "token" not in listed[0]

    client.get("/api/summary", headers=bearer(token["token"]))
    used = client.get("/api/tokens", headers=admin).get_json()[0]["last_used_at"]
    assert used is not None

    assert client.delete(f"/api/tokens/{token['id']}", headers=admin).status_code == 204
    revoked = client.get("/api/runs", headers=bearer(token["token"]))
    assert revoked.status_code == 401
    assert revoked.get_json()["message"] == "This API token has been revoked."
    assert client.delete(f"/api/tokens/{token['id']}", headers=admin).status_code == 204
    assert client.delete("/api/tokens/999", headers=admin).status_code == 404


def test_an_expired_token_and_an_unknown_one_are_refused(app, client):
    admin = admin_headers(app, client)
    token = make_token(client, admin, role="viewer", expires_in_days=1)
    assert client.get("/api/runs", headers=bearer(token["token"])).status_code == 200
    with app.app_context():
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        db.session.execute(update(ApiToken).values(expires_at=past))
        db.session.commit()
    expired = client.get("/api/runs", headers=bearer(token["token"]))
    assert (expired.status_code, expired.get_json()["message"]) == (
        401,
        "This API token has expired.",
    )
    unknown = client.get("/api/runs", headers=bearer("lvd_" + "x" * 43))
    assert (unknown.status_code, unknown.get_json()["message"]) == (401, "Invalid API token.")


def test_a_token_never_gets_more_than_its_user(app, client):
    admin = admin_headers(app, client)
    auth_headers(client, "viewer@example.org", "viewer")
    users = {u["email"]: u["id"] for u in client.get("/api/users", headers=admin).get_json()}
    too_high = client.post(
        "/api/tokens",
        headers=admin,
        json={"name": "x", "role": "ingest", "user_id": users["viewer@example.org"]},
    )
    assert too_high.status_code == 409
    assert too_high.get_json()["message"] == (
        "role: ingest is above the role of its user (viewer)."
    )
    nobody = client.post(
        "/api/tokens", headers=admin, json={"name": "x", "role": "viewer", "user_id": 999}
    )
    assert nobody.status_code == 404
    assert nobody.get_json()["message"] == "user_id: account 999 does not exist."

    # A token made for an admin who is later demoted can do only what the user now may.
    other_admin = admin_headers(app, client, "second@example.org")
    token = make_token(client, other_admin, role="admin")
    second_id = users.get("second@example.org") or max(
        u["id"] for u in client.get("/api/users", headers=admin).get_json()
    )
    demoted = client.patch(f"/api/users/{second_id}", headers=admin, json={"role": "viewer"})
    assert demoted.status_code == 200
    assert client.get("/api/users", headers=bearer(token["token"])).status_code == 403
    disabled = client.patch(f"/api/users/{second_id}", headers=admin, json={"is_active": False})
    assert disabled.get_json()["is_active"] is False
    assert client.get("/api/runs", headers=bearer(token["token"])).status_code == 401


def test_an_admin_cannot_demote_or_disable_themselves(app, client):
    admin = admin_headers(app, client)
    me = client.get("/auth/me", headers=admin).get_json()
    for change in ({"role": "viewer"}, {"is_active": False}):
        response = client.patch(f"/api/users/{me['id']}", headers=admin, json=change)
        assert response.status_code == 409
    assert client.patch("/api/users/999", headers=admin, json={"role": "viewer"}).status_code == 404


def test_ensure_admin_creates_then_repairs_then_changes_nothing(app, client):
    runner = app.test_cli_runner()

    def ensure(password: str = PASSWORD) -> str:
        result = runner.invoke(
            args=["users", "ensure-admin", "Root@Example.org"], env={"LVD_USER_PASSWORD": password}
        )
        assert result.exit_code == 0, result.output
        return result.output.strip()

    assert ensure() == "created admin root@example.org"
    assert ensure() == "unchanged admin root@example.org"
    admin = {"Authorization": "Bearer " + login(client, "root@example.org")["access_token"]}
    other = admin_headers(app, client, "other-admin@example.org")
    me = client.get("/auth/me", headers=admin).get_json()
    client.patch(f"/api/users/{me['id']}", headers=other, json={"role": "viewer"})
    assert ensure("a new password") == "updated admin root@example.org: role, password"
    login(client, "root@example.org", "a new password")
    short = runner.invoke(
        args=["users", "ensure-admin", "root@example.org"], env={"LVD_USER_PASSWORD": PASSWORD[:5]}
    )
    assert short.exit_code != 0 and "at least 8 characters" in short.output
