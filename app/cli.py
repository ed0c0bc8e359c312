"""Operator commands:  flask --app app users create EMAIL --role admin"""

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import select

from app.api.summary import GENERATION_KEY
from app.extensions import db, redis_client
from app.migrate_sqlite.command import migrate_sqlite
from app.models import ROLES, User

users = AppGroup("users", help="Manage dashboard accounts.")


@users.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True)
@click.password_option(envvar="LVD_USER_PASSWORD")
def create_user(email, role, password):
    """Create an account (the password is prompted for, or read from LVD_USER_PASSWORD)."""
    email = email.strip().lower()
    if db.session.scalar(select(User).where(User.email == email)):
        raise click.ClickException(f"{email} already exists")
    user = User(email=email, role=role)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    click.echo(f"created {role} {email}")


@users.command("set-role")
@click.argument("email")
@click.argument("role", type=click.Choice(ROLES))
def set_role(email, role):
    """Change an account's role."""
    user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise click.ClickException(f"no account {email}")
    user.role = role
    db.session.commit()
    click.echo(f"{user.email} is now {role}")


@users.command("ensure-admin")
@click.argument("email")
@click.option(
    "--password",
    envvar="LVD_USER_PASSWORD",
    required=True,
    hide_input=True,
    prompt=True,
    help="Read from LVD_USER_PASSWORD when set.",
)
def ensure_admin(email, password):
    """Make EMAIL an active admin whose password is PASSWORD (creating the account if need
    be): the first admin, from the vault. Prints created, updated or unchanged."""
    email = email.strip().lower()
    if len(password) < 8:
        raise click.ClickException("the admin's password must have at least 8 characters")
    user = db.session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(email=email, role="admin")
        user.set_password(password)
        db.session.add(user)
        db.session.commit()
        click.echo(f"created admin {email}")
        return
    changed = [
        name
        for name, value in (("role", "admin"), ("is_active", True))
        if getattr(user, name) != value
    ]
    user.role, user.is_active = "admin", True
    if not user.check_password(password):
        user.set_password(password)
        changed.append("password")
    if changed or db.session.dirty:
        db.session.commit()
    if changed:
        click.echo(f"updated admin {email}: {', '.join(changed)}")
    else:
        click.echo(f"unchanged admin {email}")


cache = AppGroup("cache", help="The Redis cache of what the database holds.")


@cache.command("clear")
def clear_cache():
    """Forget every cached summary (after the database was restored or edited by hand):
    the next request reads the database. Fails when Redis cannot be reached."""
    generation = redis_client.incr(GENERATION_KEY)
    click.echo(f"summary cache cleared (generation {generation})")


def init_app(app: Flask) -> None:
    app.cli.add_command(cache)
    app.cli.add_command(users)
    app.cli.add_command(migrate_sqlite)
