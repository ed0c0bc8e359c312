"""Live Validation Dashboard: the application factory.

Serve with:  gunicorn -k gthread --threads 50 "app:create_app()"
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path

from flask import Flask, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.middleware.proxy_fix import ProxyFix

from app.config import Config, load_config, load_env_file

log = logging.getLogger(__name__)
# How long a read waits before its one retry on a fresh database connection.
READ_RETRY_DELAY = 0.5


class DashboardApp(Flask):
    """Flask, with reads (GET, HEAD) retried once when the database connection failed."""

    def dispatch_request(self):
        try:
            return super().dispatch_request()
        except SQLAlchemyError as exc:
            from app.errors import database_unavailable
            from app.extensions import db

            if request.method not in ("GET", "HEAD") or not database_unavailable(exc):
                raise
            # The pool has dropped the broken connection (and pre-pings the others).
            log.warning("retrying %s %s once: database unavailable", request.method, request.path)
            db.session.rollback()
            time.sleep(READ_RETRY_DELAY)
            return super().dispatch_request()


def create_app(config: str | Mapping | Config | None = None) -> Flask:
    """Build the app.

    ``config`` is a configuration name ("development", "testing", "production"), a
    Config instance, or a mapping of overrides applied on top of the configuration named by
    its ``CONFIG_NAME`` key (default: APP_ENV/FLASK_ENV, else development).
    """
    load_env_file()
    overrides: Mapping = {}
    if isinstance(config, Config):
        cfg = config
    elif isinstance(config, Mapping):
        overrides = config
        cfg = load_config(config.get("CONFIG_NAME"))
    else:
        cfg = load_config(config)

    app = DashboardApp(__name__, instance_path=cfg.INSTANCE_PATH)
    app.config.from_object(cfg)
    app.config["CONFIG_NAME"] = cfg.NAME
    app.config.update(overrides)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    if app.config["PROXY_FIX_X_FOR"] or app.config["PROXY_FIX_X_PROTO"]:
        app.wsgi_app = ProxyFix(
            app.wsgi_app,
            x_for=app.config["PROXY_FIX_X_FOR"],
            x_proto=app.config["PROXY_FIX_X_PROTO"],
            x_host=app.config["PROXY_FIX_X_HOST"],
        )

    _init_extensions(app)
    _register_blueprints(app)

    from app import cli, errors, metrics

    errors.init_app(app)
    metrics.init_app(app)
    cli.init_app(app)
    return app


def _init_extensions(app: Flask) -> None:
    from app import auth, live, ratelimit, sessions
    from app.extensions import api, db, init_celery, jwt, limiter, mail, migrate, redis_client
    from app.fields import JSON_VALUE, JSON_VALUE_SCHEMA, json_object_doc
    from app.tasks import register_tasks

    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(__file__).parent / "migrations"))
    redis_client.init_app(app)
    sessions.init_sessions(app)
    jwt.init_app(app)
    auth.init_jwt_callbacks(app)
    mail.init_app(app)
    app.after_request(ratelimit.keep_retry_after_meaningful)
    limiter.init_app(app)
    ratelimit.init_app(app)
    api.init_app(app)
    api.spec.components.security_scheme(
        "bearerAuth",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "A JWT access token from /auth/login, or an API token (lvd_...)"
            " made by an admin with POST /api/tokens.",
        },
    )
    api.spec.components.schema(JSON_VALUE, JSON_VALUE_SCHEMA)
    api.ma_plugin.converter.add_attribute_function(json_object_doc)
    live.init_app(app)
    register_tasks(init_celery(app))


def _register_blueprints(app: Flask) -> None:
    from app.admin import blp as admin_blp
    from app.api import blp as api_blp
    from app.auth import blp as auth_blp
    from app.dashboard import bp as dashboard_bp
    from app.extensions import api
    from app.health import blp as health_blp

    api.register_blueprint(health_blp)
    api.register_blueprint(auth_blp)
    api.register_blueprint(api_blp)
    api.register_blueprint(admin_blp)
    app.register_blueprint(dashboard_bp)
