"""/api: validation runs, the cached summary, subscriptions."""

from app.api.routes import blp

__all__ = ["blp"]
