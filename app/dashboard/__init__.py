"""/ (the dashboard page), /login, /logout: the browser side, with a server-side session."""

from app.dashboard.routes import bp

__all__ = ["bp"]
