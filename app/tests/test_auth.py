"""Registration, JWT login/refresh/logout with Redis revocation, roles."""

import redis
from sqlalchemy import func, select

from app.auth.tokens import BLOCKLIST_PREFIX
from app.extensions import db
from app.models import Invite, User, ValidationResult
from app.tests.conftest import PASSWORD, admin_headers, auth_headers, login, register, run_payload

OTHER_PASSWORD = PASSWORD[::-1]


def bearer(token: str) -> dict:
    return {"Authorization": "Bearer " + token}


def test_register_login_me_refresh_logout(client, redis_url):
    register(client, "Alice@Example.org")
    tokens = login(client, "ALICE@example.org")
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 15 * 60
    access, refresh = bearer(tokens["access_token"]), bearer(tokens["refresh_token"])
    me = client.get("/auth/me", headers=access).get_json()
    assert (me["email"], me["role"]) == ("alice@example.org", "viewer")

    renewed = client.post("/auth/refresh", headers=refresh)
    assert renewed.status_code == 200
    new_access = bearer(renewed.get_json()["access_token"])
    new_refresh = renewed.get_json()["refresh_token"]
    assert client.get("/auth/me", headers=new_access).status_code == 200

    # A refresh token is not an access token and vice versa.
    assert client.get("/auth/me", headers=bearer(new_refresh)).status_code == 401
    assert client.post("/auth/refresh", headers=access).status_code == 401

    out = client.post("/auth/logout", headers=access)
    assert out.status_code == 200, out.get_json()
    assert out.get_json()["message"] == (
        "Logged out: this access token and the refresh tokens of its login are revoked."
    )
    assert len(redis.Redis.from_url(redis_url).keys(BLOCKLIST_PREFIX + "*")) == 1

    revoked = client.get("/auth/me", headers=access)
    assert revoked.status_code == 401
    assert revoked.get_json() == {
        "code": 401,
        "status": "Unauthorized",
        "message": "Token has been revoked.",
    }
    ended = client.post("/auth/refresh", headers=bearer(new_refresh))
    assert ended.status_code == 401
    assert "This login has ended" in ended.get_json()["message"]
    # The access token made by the refresh is another token: it lives out its 15 minutes.
    assert client.get("/auth/me", headers=new_access).status_code == 200


def test_a_refresh_token_works_once_and_its_reuse_ends_the_login(client):
    register(client, "rot@example.org")
    first = login(client, "rot@example.org")
    other_login = login(client, "rot@example.org")
    second = client.post("/auth/refresh", headers=bearer(first["refresh_token"])).get_json()
    third = client.post("/auth/refresh", headers=bearer(second["refresh_token"]))
    assert third.status_code == 200

    # A stolen copy of the first token, replayed: refused, and the login is revoked...
    replayed = client.post("/auth/refresh", headers=bearer(first["refresh_token"]))
    assert replayed.status_code == 401
    assert "already used" in replayed.get_json()["message"]
    # ...so the newest token of that login no longer works either,
    latest = client.post("/auth/refresh", headers=bearer(third.get_json()["refresh_token"]))
    assert latest.status_code == 401
    # but the user's other login does.
    assert (
        client.post("/auth/refresh", headers=bearer(other_login["refresh_token"])).status_code
        == 200
    )


def test_passwords_are_argon2_hashed(app, client):
    register(client, "hash@example.org")
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "hash@example.org"))
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash


def test_wrong_password_and_unknown_user_get_the_same_401(client):
    register(client, "bob@example.org")
    wrong = client.post("/auth/login", json={"email": "bob@example.org", "password": "x" * 9})
    unknown = client.post("/auth/login", json={"email": "nobody@example.org", "password": "x" * 9})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json() == unknown.get_json()


def test_registering_a_known_address_answers_as_a_new_one_and_changes_nothing(client):
    new = client.post("/auth/register", json={"email": "carol@example.org", "password": PASSWORD})
    known = client.post(
        "/auth/register", json={"email": "CAROL@example.org", "password": OTHER_PASSWORD}
    )
    assert (known.status_code, known.get_json()) == (new.status_code, new.get_json())
    assert new.status_code == 202
    # The account keeps its first password.
    login(client, "carol@example.org", PASSWORD)
    refused = client.post(
        "/auth/login", json={"email": "carol@example.org", "password": OTHER_PASSWORD}
    )
    assert refused.status_code == 401


def test_closed_registration_refuses_everyone(app, client):
    app.config["REGISTRATION_POLICY"] = "closed"
    response = client.post("/auth/register", json={"email": "d@example.org", "password": PASSWORD})
    assert response.status_code == 403
    assert "Registration is closed" in response.get_json()["message"]
    assert (
        client.post(
            "/auth/login", json={"email": "d@example.org", "password": PASSWORD}
        ).status_code
        == 401
    )


def test_invite_registration_needs_a_valid_code_which_gives_its_role_once(app, client):
    app.config["REGISTRATION_POLICY"] = "invite"
    admin = admin_headers(app, client)
    invite = client.post("/api/invites", headers=admin, json={"role": "ingest"})
    assert invite.status_code == 201, invite.get_json()
    code = invite.get_json()["code"]
    assert code.startswith("inv_")
    with app.app_context():
        assert code not in str(db.session.scalars(select(Invite.code_hash)).all())

    for body in ({}, {"invite_code": "inv_wrong"}):
        refused = client.post(
            "/auth/register", json={"email": "e@example.org", "password": PASSWORD, **body}
        )
        assert refused.status_code == 403
        assert refused.get_json()["message"] == "invite_code is missing, unknown, used or expired."
    register(client, "e@example.org", invite_code=code)
    token = login(client, "e@example.org")["access_token"]
    assert client.get("/auth/me", headers=bearer(token)).get_json()["role"] == "ingest"
    used = client.post(
        "/auth/register", json={"email": "f@example.org", "password": PASSWORD, "invite_code": code}
    )
    assert used.status_code == 403


def test_missing_and_garbage_tokens_are_401_json(client):
    missing = client.get("/api/runs")
    assert missing.status_code == 401
    assert missing.get_json()["message"] == "Missing Authorization Header"
    garbage = client.get("/api/runs", headers={"Authorization": "Bearer not.a.jwt"})
    assert garbage.status_code == 401
    assert garbage.get_json()["message"].startswith("Invalid token")


def test_logout_ends_its_own_login_only(client):
    register(client, "two@example.org")
    first, second = login(client, "two@example.org"), login(client, "two@example.org")
    assert client.post("/auth/logout", headers=bearer(first["access_token"])).status_code == 200
    assert client.post("/auth/refresh", headers=bearer(first["refresh_token"])).status_code == 401
    assert client.post("/auth/refresh", headers=bearer(second["refresh_token"])).status_code == 200
    assert client.get("/auth/me", headers=bearer(second["access_token"])).status_code == 200


def test_viewers_read_ingest_posts_admins_delete(app, client):
    viewer = auth_headers(client, "viewer@example.org", "viewer")
    ingest = auth_headers(client)
    admin = admin_headers(app, client)
    refused = client.post("/api/runs", headers=viewer, json=run_payload())
    assert refused.status_code == 403
    assert refused.get_json()["message"] == (
        "This action needs the ingest role; this credential has viewer."
    )
    run_id = client.post("/api/runs", headers=ingest, json=run_payload()).get_json()["id"]
    assert client.get(f"/api/runs/{run_id}", headers=viewer).status_code == 200

    forbidden = client.delete(f"/api/runs/{run_id}", headers=ingest)
    assert forbidden.status_code == 403
    assert forbidden.get_json()["message"] == (
        "This action needs the admin role; this credential has ingest."
    )

    assert client.delete(f"/api/runs/{run_id}", headers=admin).status_code == 204
    assert client.get(f"/api/runs/{run_id}", headers=viewer).status_code == 404
    assert client.delete(f"/api/runs/{run_id}", headers=admin).status_code == 404
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ValidationResult)) == 0


def test_cli_creates_users_and_changes_roles(app, client):
    runner = app.test_cli_runner()
    env = {"LVD_USER_PASSWORD": PASSWORD}
    created = runner.invoke(args=["users", "create", "Ops@Example.org"], env=env)
    assert created.exit_code == 0, created.output
    duplicate = runner.invoke(args=["users", "create", "ops@example.org"], env=env)
    assert duplicate.exit_code != 0
    assert "already exists" in duplicate.output
    promoted = runner.invoke(args=["users", "set-role", "ops@example.org", "admin"])
    assert promoted.exit_code == 0
    headers = {"Authorization": "Bearer " + login(client, "ops@example.org")["access_token"]}
    assert client.get("/auth/me", headers=headers).get_json()["role"] == "admin"
