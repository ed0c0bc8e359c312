"""/api/users, /api/tokens, /api/invites: what admins manage."""

from app.admin.routes import blp

__all__ = ["blp"]
