"""Liveness, readiness, version, metrics and the OpenAPI document."""

import pytest

from app import create_app
from app.config import ConfigError


def test_health_touches_nothing(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_ready_when_database_and_redis_answer(client):
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


def test_version_reports_release_and_schema_revision(migrated, base_env, monkeypatch):
    from app.tests.conftest import make_app

    app = make_app(monkeypatch, base_env, migrated["sqlite"], APP_RELEASE="2026.11.29-7")
    body = app.test_client().get("/version").get_json()
    assert body == {"release": "2026.11.29-7", "alembic_revision": "0002"}


def test_metrics_count_requests_by_url_rule(client):
    client.get("/health")
    client.get("/api/runs/12345")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'lvd_http_requests_total{endpoint="/health",method="GET",status="200"}' in text
    # One series per rule, not per URL.
    assert 'endpoint="/api/runs/<int:run_id>"' in text
    assert "/api/runs/12345" not in text
    assert "lvd_http_request_duration_seconds_bucket" in text


def test_openapi_document_comes_from_the_schemas(client):
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert {"/api/runs", "/api/summary", "/auth/login", "/health/ready"} <= set(spec["paths"])
    run_in = spec["components"]["schemas"]["RunIn"]
    assert run_in["required"] == ["results", "suite"]
    assert run_in["properties"]["results"]["maxItems"] == 5000
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert spec["paths"]["/api/runs"]["post"]["security"] == [{"bearerAuth": []}]


def test_unknown_route_and_method_are_json(client):
    missing = client.get("/nope")
    assert missing.status_code == 404
    assert set(missing.get_json()) == {"code", "status", "message"}
    wrong_method = client.delete("/health")
    assert wrong_method.status_code == 405
    assert wrong_method.get_json()["code"] == 405
    assert "GET" in wrong_method.headers["Allow"]


REQUIRED = ("SECRET_KEY", "JWT_SECRET_KEY", "DATABASE_URL", "REDIS_URL")


def test_production_refuses_to_start_without_secrets(monkeypatch):
    for name in REQUIRED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    with pytest.raises(ConfigError) as error:
        create_app("production")
    message = str(error.value)
    assert "SECRET_KEY, JWT_SECRET_KEY, DATABASE_URL" in message
    assert "REDIS_URL" not in message


def test_production_mode_is_chosen_by_app_env(monkeypatch, tmp_path):
    for name in REQUIRED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("APP_ENV", "production")
    with pytest.raises(ConfigError, match="SECRET_KEY, JWT_SECRET_KEY, DATABASE_URL, REDIS_URL"):
        create_app()
    monkeypatch.setenv("SECRET_KEY", "s" * 32)
    monkeypatch.setenv("JWT_SECRET_KEY", "j" * 32)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/prod.db")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    app = create_app()
    assert app.config["CONFIG_NAME"] == "production"
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_default_database_is_sqlite_in_the_instance_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app("development")
    expected = f"sqlite:///{tmp_path}/instance/validation_dashboard.db"
    assert app.config["SQLALCHEMY_DATABASE_URI"] == expected
    assert (tmp_path / "instance").is_dir()
