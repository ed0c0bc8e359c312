import functools
import hmac
import secrets

from flask import Blueprint, jsonify, redirect, render_template, request, session, url_for

from app.api.queries import runs_query
from app.api.schemas import RunSchema
from app.api.summary import get_summary
from app.auth.routes import authenticate
from app.errors import error_response
from app.extensions import db, limiter
from app.models import User
from app.ratelimit import auth_limit

bp = Blueprint("dashboard", __name__)
SUMMARY_WINDOW_HOURS = 24
_runs = RunSchema(many=True)


def current_user() -> User | None:
    user_id = session.get("user_id")
    user = db.session.get(User, user_id) if user_id else None
    return user if user is not None and user.is_active else None


def login_required(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if current_user() is None:
            return redirect(url_for("dashboard.login", next=request.path))
        return view(*args, **kwargs)

    return wrapper


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def csrf_ok() -> bool:
    sent = request.form.get("csrf", "")
    return bool(session.get("csrf")) and hmac.compare_digest(sent, session["csrf"])


def dashboard_data() -> dict:
    summary, _source = get_summary(SUMMARY_WINDOW_HOURS)
    latest = db.session.scalars(runs_query().limit(20)).all()
    failures = db.session.scalars(runs_query(status="failed").limit(10)).all()
    return {"summary": summary, "latest": _runs.dump(latest), "failures": _runs.dump(failures)}


@bp.get("/")
@login_required
def index():
    return render_template(
        "dashboard.html", user=current_user(), data=dashboard_data(), csrf=csrf_token()
    )


@bp.get("/dashboard/data")
def data():
    """The page's figures as JSON, re-read by the page when a live event arrives."""
    if current_user() is None:
        return error_response(401, "Log in first.")
    return jsonify(dashboard_data())


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(auth_limit, methods=["POST"])
def login():
    error = None
    if request.method == "POST":
        if not csrf_ok():
            error = "Your form expired; please try again."
        elif (
            user := authenticate(request.form.get("email", ""), request.form.get("password", ""))
        ) is None:
            error = "Wrong email or password."
        else:
            session.clear()
            session["user_id"] = user.id
            target = request.args.get("next", "")
            # Only local paths: never redirect to another site.
            if not target.startswith("/") or target.startswith("//"):
                target = url_for("dashboard.index")
            return redirect(target)
    status = 401 if error else 200
    return render_template("login.html", error=error, csrf=csrf_token()), status


@bp.post("/logout")
def logout():
    if csrf_ok():
        session.clear()
    return redirect(url_for("dashboard.login"))
