"""Registration, JWT login/refresh/logout with Redis revocation, roles."""

import redis
from sqlalchemy import func, select

from app.auth.tokens import BLOCKLIST_PREFIX
from app.extensions import db
from app.models import User, ValidationResult
from app.tests.conftest import PASSWORD, admin_headers, auth_headers, login, register, run_payload


def test_register_login_me_refresh_logout(client, redis_url):
    user = register(client, "Alice@Example.org")
    assert user["email"] == "alice@example.org"
    assert user["role"] == "viewer"

    tokens = login(client, "ALICE@example.org")
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 15 * 60
    access = {"Authorization": "Bearer " + tokens["access_token"]}
    refresh = {"Authorization": "Bearer " + tokens["refresh_token"]}

    assert client.get("/auth/me", headers=access).get_json()["email"] == "alice@example.org"

    renewed = client.post("/auth/refresh", headers=refresh)
    assert renewed.status_code == 200
    new_access = {"Authorization": "Bearer " + renewed.get_json()["access_token"]}
    assert client.get("/auth/me", headers=new_access).status_code == 200

    # A refresh token is not an access token and vice versa.
    assert client.get("/auth/me", headers=refresh).status_code == 401
    assert client.post("/auth/refresh", headers=access).status_code == 401

    out = client.post(
        "/auth/logout", headers=access, json={"refresh_token": tokens["refresh_token"]}
    )
    assert out.status_code == 200, out.get_json()
    assert "2 token(s) revoked" in out.get_json()["message"]
    assert len(redis.Redis.from_url(redis_url).keys(BLOCKLIST_PREFIX + "*")) == 2

    revoked = client.get("/auth/me", headers=access)
    assert revoked.status_code == 401
    assert revoked.get_json() == {
        "code": 401,
        "status": "Unauthorized",
        "message": "Token has been revoked.",
    }
    assert client.post("/auth/refresh", headers=refresh).status_code == 401
    # Other tokens of the same user stay valid.
    assert client.get("/auth/me", headers=new_access).status_code == 200


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


def test_duplicate_email_is_409_whatever_the_case(client):
    register(client, "carol@example.org")
    again = client.post("/auth/register", json={"email": "CAROL@example.org", "password": PASSWORD})
    assert again.status_code == 409
    assert again.get_json()["message"] == "This email is already registered."


def test_missing_and_garbage_tokens_are_401_json(client):
    missing = client.get("/api/runs")
    assert missing.status_code == 401
    assert missing.get_json()["message"] == "Missing Authorization Header"
    garbage = client.get("/api/runs", headers={"Authorization": "Bearer not.a.jwt"})
    assert garbage.status_code == 401
    assert garbage.get_json()["message"].startswith("Invalid token")


def test_logout_rejects_a_foreign_refresh_token(client):
    mine = auth_headers(client, "mine@example.org")
    register(client, "other@example.org")
    foreign = login(client, "other@example.org")["refresh_token"]
    response = client.post("/auth/logout", headers=mine, json={"refresh_token": foreign})
    assert response.status_code == 422
    assert client.get("/auth/me", headers=mine).status_code == 200


def test_only_admins_delete_runs_and_results_go_with_the_run(app, client):
    viewer = auth_headers(client)
    admin = admin_headers(app, client)
    run_id = client.post("/api/runs", headers=viewer, json=run_payload()).get_json()["id"]

    forbidden = client.delete(f"/api/runs/{run_id}", headers=viewer)
    assert forbidden.status_code == 403
    assert forbidden.get_json()["message"] == "This action needs the admin role."

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
