"""/auth: registration, JWT login/refresh/logout (logout revokes through a Redis blocklist)."""

from app.auth.routes import blp
from app.auth.tokens import init_jwt_callbacks

__all__ = ["blp", "init_jwt_callbacks"]
