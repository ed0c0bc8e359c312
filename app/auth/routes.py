import secrets

from flask import current_app
from flask_jwt_extended import (
    create_access_token,
    create_refresh_token,
    decode_token,
    get_current_user,
    get_jwt,
    jwt_required,
)
from flask_jwt_extended.exceptions import JWTExtendedException
from flask_smorest import Blueprint, abort
from jwt import PyJWTError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.auth.schemas import (
    AccessTokenSchema,
    CredentialsSchema,
    LoginSchema,
    LogoutSchema,
    MessageSchema,
    TokensSchema,
    UserSchema,
)
from app.auth.tokens import BlocklistUnavailable, revoke
from app.extensions import db, limiter
from app.models import User, password_hasher
from app.ratelimit import auth_limit

blp = Blueprint("auth", __name__, url_prefix="/auth", description="Accounts and JWT tokens")
limiter.limit(auth_limit)(blp)


def find_user(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == email.strip().lower()))


def authenticate(email: str, password: str) -> User | None:
    """The active user with this email and password, else None (after the same hashing work,
    so response times do not reveal which emails exist)."""
    user = find_user(email)
    if user is None:
        User(password_hash=_dummy_hash()).check_password(password)
        return None
    if not user.check_password(password) or not user.is_active:
        return None
    db.session.commit()  # check_password may have upgraded the hash
    return user


def _dummy_hash() -> str:
    if "lvd_dummy_hash" not in current_app.extensions:
        current_app.extensions["lvd_dummy_hash"] = password_hasher().hash(secrets.token_hex(16))
    return current_app.extensions["lvd_dummy_hash"]


def _access_token(user: User) -> dict:
    lifetime = current_app.config["JWT_ACCESS_TOKEN_EXPIRES"]
    return {
        "access_token": create_access_token(
            identity=str(user.id), additional_claims={"role": user.role}
        ),
        "token_type": "Bearer",
        "expires_in": int(lifetime.total_seconds()),
    }


@blp.post("/register")
@blp.arguments(CredentialsSchema)
@blp.response(201, UserSchema)
@blp.alt_response(409, description="The email is already registered.")
def register(data):
    """Create a viewer account."""
    user = User(email=data["email"].strip().lower(), role="viewer")
    user.set_password(data["password"])
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        abort(409, message="This email is already registered.")
    return user


@blp.post("/login")
@blp.arguments(LoginSchema)
@blp.response(200, TokensSchema)
@blp.alt_response(401, description="Wrong email or password.")
def login(data):
    """Exchange email and password for an access and a refresh token."""
    user = authenticate(data["email"], data["password"])
    if user is None:
        abort(401, message="Wrong email or password.")
    tokens = _access_token(user)
    tokens["refresh_token"] = create_refresh_token(identity=str(user.id))
    return tokens


@blp.post("/refresh")
@blp.response(200, AccessTokenSchema)
@blp.doc(security=[{"bearerAuth": []}])
@jwt_required(refresh=True)
def refresh():
    """A new access token for the refresh token in the Authorization header."""
    return _access_token(get_current_user())


@blp.post("/logout")
@blp.arguments(LogoutSchema)
@blp.response(200, MessageSchema)
@blp.doc(security=[{"bearerAuth": []}])
@jwt_required()
def logout(data):
    """Revoke the access token in the header (and the refresh token in the body, if given)."""
    payloads = [get_jwt()]
    if data.get("refresh_token"):
        try:
            refresh_payload = decode_token(data["refresh_token"])
        except (PyJWTError, JWTExtendedException) as exc:
            abort(422, message=f"Invalid refresh token: {exc}")
        if refresh_payload.get("type") != "refresh" or refresh_payload["sub"] != payloads[0]["sub"]:
            abort(422, message="refresh_token is not a refresh token of this user.")
        payloads.append(refresh_payload)
    try:
        for payload in payloads:
            revoke(payload)
    except BlocklistUnavailable:
        abort(503, message="Logout is unavailable right now (token store down); try again.")
    return {"message": f"Logged out; {len(payloads)} token(s) revoked."}


@blp.get("/me")
@blp.response(200, UserSchema)
@blp.doc(security=[{"bearerAuth": []}])
@jwt_required()
def me():
    """The account the access token belongs to."""
    return get_current_user()
