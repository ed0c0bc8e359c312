"""/health (liveness), /health/ready (database and Redis), /version (release, schema)."""

from app.health.routes import blp

__all__ = ["blp"]
