import logging

from alembic.migration import MigrationContext
from flask import current_app
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import text

from app.extensions import db, limiter, redis_client

log = logging.getLogger(__name__)

blp = Blueprint("health", __name__, description="Liveness, readiness and version")
limiter.exempt(blp)


class HealthSchema(Schema):
    status = fields.String()


class ReadySchema(Schema):
    status = fields.String(metadata={"description": "ok, or unavailable"})
    checks = fields.Dict(
        keys=fields.String(), values=fields.String(), metadata={"description": "per dependency"}
    )


class VersionSchema(Schema):
    release = fields.String()
    alembic_revision = fields.String(allow_none=True)


def _check(name: str, probe) -> str:
    try:
        probe()
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        log.warning("readiness: %s unavailable: %s", name, exc)
        return f"error: {type(exc).__name__}"
    return "ok"


def _alembic_revision() -> str | None:
    try:
        with db.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except Exception as exc:  # noqa: BLE001 - /version answers even without a database
        log.warning("version: database unavailable: %s", exc)
        return None


@blp.get("/health")
@blp.response(200, HealthSchema)
def health():
    """Liveness: the process answers. Touches neither the database nor Redis."""
    return {"status": "ok"}


@blp.get("/health/ready")
@blp.response(200, ReadySchema)
@blp.alt_response(503, schema=ReadySchema, description="A dependency is unavailable.")
def ready():
    """Readiness: the database and Redis answer. 503 names the one that does not."""

    def database():
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    checks = {"database": _check("database", database), "redis": _check("redis", redis_client.ping)}
    ok = all(result == "ok" for result in checks.values())
    return {"status": "ok" if ok else "unavailable", "checks": checks}, 200 if ok else 503


@blp.get("/version")
@blp.response(200, VersionSchema)
def version():
    """The release id (APP_RELEASE or the release's RELEASE file) and the schema revision."""
    return {"release": current_app.config["APP_RELEASE"], "alembic_revision": _alembic_revision()}
