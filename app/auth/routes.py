import secrets

from flask import current_app
from flask_jwt_extended import (
    create_access_token,
    create_refresh_token,
    get_current_user,
    get_jti,
    get_jwt,
    jwt_required,
)
from flask_smorest import Blueprint, abort
from flask_smorest.error_handler import ErrorSchema
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app.auth.access import SECURITY, current_jwt, current_user, digest, protected
from app.auth.schemas import (
    LoginSchema,
    MessageSchema,
    RegistrationSchema,
    TokensSchema,
    UserSchema,
)
from app.auth.tokens import BlocklistUnavailable, revoke
from app.extensions import db, limiter
from app.models import Invite, RefreshFamily, User, password_hasher, utcnow
from app.ratelimit import auth_limit

blp = Blueprint("auth", __name__, url_prefix="/auth", description="Accounts and JWT tokens")
# The one answer /auth/register gives, whether or not the address already has an account.
REGISTERED = (
    "If this address can be registered, its account is ready: log in with it."
    " (The same answer is given for an address that already has an account.)"
)
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


def _tokens(user: User, family: RefreshFamily) -> dict:
    """An access token and the family's next refresh token (which becomes its only valid one)."""
    lifetime = current_app.config["JWT_ACCESS_TOKEN_EXPIRES"]
    refresh_token = create_refresh_token(
        identity=str(user.id), additional_claims={"fam": family.id}
    )
    family.current_jti = get_jti(refresh_token)
    return {
        "access_token": create_access_token(
            identity=str(user.id), additional_claims={"role": user.role, "fam": family.id}
        ),
        "refresh_token": refresh_token,
        "token_type": "Bearer",
        "expires_in": int(lifetime.total_seconds()),
    }


def _valid_invite(code: str | None) -> Invite | None:
    if not code:
        return None
    invite = db.session.scalar(
        select(Invite).where(Invite.code_hash == digest(code)).with_for_update()
    )
    if invite is None or invite.used_at is not None or invite.expires_at <= utcnow():
        return None
    return invite


@blp.post("/register")
@blp.arguments(RegistrationSchema)
@blp.response(202, MessageSchema)
@blp.alt_response(
    403,
    schema=ErrorSchema,
    description="Registration is closed, or (policy invite) the invite code is missing, unknown,"
    " used or expired.",
)
def register(data):
    """Create an account, as the registration policy allows.

    Policy `open`: anyone gets a viewer account. Policy `invite`: an invite code made by an
    admin (POST /api/invites) is needed, and gives its role. Policy `closed`: refused.
    The answer is the same whether or not the address already has an account, so it tells
    no one who is registered; that account is left untouched."""
    policy = current_app.config["REGISTRATION_POLICY"]
    if policy == "closed":
        abort(403, message="Registration is closed: ask an administrator for an account.")
    invite = None
    if policy == "invite":
        invite = _valid_invite(data.get("invite_code"))
        if invite is None:
            abort(403, message="invite_code is missing, unknown, used or expired.")
    email = data["email"].strip().lower()
    # Hashed before looking: a known address costs the same time as a new one.
    user = User(email=email, role=invite.role if invite else "viewer")
    user.set_password(data["password"])
    if find_user(email) is not None:
        db.session.rollback()
        return {"message": REGISTERED}
    db.session.add(user)
    if invite is not None:
        db.session.flush()
        invite.used_at, invite.used_by_id = utcnow(), user.id
    try:
        db.session.commit()
    except IntegrityError:  # registered by a concurrent request meanwhile
        db.session.rollback()
    return {"message": REGISTERED}


@blp.post("/login")
@blp.arguments(LoginSchema)
@blp.response(200, TokensSchema)
@blp.alt_response(401, schema=ErrorSchema, description="Wrong email or password.")
def login(data):
    """Exchange email and password for an access and a refresh token."""
    user = authenticate(data["email"], data["password"])
    if user is None:
        abort(401, message="Wrong email or password.")
    family = RefreshFamily(
        user_id=user.id,
        current_jti="",
        expires_at=utcnow() + current_app.config["JWT_REFRESH_TOKEN_EXPIRES"],
    )
    db.session.add(family)
    db.session.flush()
    tokens = _tokens(user, family)
    db.session.commit()
    return tokens


def _revoke_family(family_id) -> None:
    db.session.execute(
        update(RefreshFamily)
        .where(RefreshFamily.id == family_id, RefreshFamily.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    db.session.commit()


@blp.post("/refresh")
@blp.response(200, TokensSchema)
@blp.alt_response(
    401,
    schema=ErrorSchema,
    description="Not a refresh token, or one already used (which revokes its whole login),"
    " revoked or expired.",
)
@blp.doc(security=SECURITY)
@jwt_required(refresh=True)
def refresh():
    """New tokens for the refresh token in the Authorization header, which is used up.

    Refresh tokens rotate: each use returns a new one and only the newest of a login works.
    Presenting an older one again (a stolen copy) revokes every token of that login."""
    payload = get_jwt()
    family = db.session.get(RefreshFamily, payload.get("fam") or 0, with_for_update=True)
    user = get_current_user()
    if family is None or family.user_id != user.id:
        abort(401, message="This refresh token belongs to no login: log in again.")
    if family.revoked_at is not None or family.expires_at <= utcnow():
        abort(401, message="This login has ended (logged out, revoked or expired): log in again.")
    if family.current_jti != payload["jti"]:
        _revoke_family(family.id)
        abort(
            401,
            message="This refresh token was already used: every token of its login is now"
            " revoked. Log in again.",
        )
    tokens = _tokens(user, family)
    db.session.commit()
    return tokens


@blp.post("/logout")
@blp.response(200, MessageSchema)
@blp.alt_response(503, schema=ErrorSchema, description="The token store is down; try again.")
@protected(blp)
def logout():
    """End the login of the access token in the header: that token and every refresh token
    of the login stop working. Other logins of the account are not touched."""
    access = current_jwt()
    if access is None:
        return {
            "message": "An API token is not logged in: an admin revokes it (DELETE /api/tokens/{id})."
        }
    # The login first (PostgreSQL): with Redis down, its refresh tokens are still revoked.
    if access.get("fam"):
        _revoke_family(access["fam"])
    try:
        revoke(access)
    except BlocklistUnavailable:
        abort(503, message="Logout is unavailable right now (token store down); try again.")
    return {
        "message": "Logged out: this access token and the refresh tokens of its login are revoked."
    }


@blp.get("/me")
@blp.response(200, UserSchema)
@protected(blp)
def me():
    """The account of the credential (a JWT access token or an API token)."""
    return current_user()
