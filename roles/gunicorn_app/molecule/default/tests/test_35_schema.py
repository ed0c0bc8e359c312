"""tasks_from schema: the newest revision a release knows, an upgrade to it that changes
nothing the second time, and a downgrade (a rollback with its database), each run as the
app user with the release's own migrations; the first admin made after the upgrade."""

import json

import pytest
from conftest import current_release, run_playbook


def schema(host, *targets, check=True, **extra):
    rc, output = run_playbook(
        "schema.yml",
        "-e",
        json.dumps(
            {"lvd_test_targets": list(targets), "lvd_test_release": current_release(host), **extra}
        ),
        limit=host.backend.get_hostname(),
    )
    if check:
        assert rc == 0, output
    return output


def database_revision(host):
    out = host.run(
        "runuser -u postgres -- psql -d lvd -tAc %s",
        "SELECT version_num FROM alembic_version",
    )
    return out.stdout.strip() if out.rc == 0 else None


@pytest.fixture(scope="module")
def upgraded(host, step_prune):
    return schema(host, "", "head")


def test_reads_the_newest_revision_the_release_knows(host, upgraded):
    assert "head=0002 " in upgraded


def test_upgrade_brings_the_database_to_head(host, upgraded):
    assert database_revision(host) == "0002"


def test_upgrade_again_changes_nothing(host, upgraded):
    output = schema(host, "head")
    assert "changed=0" in output
    assert "revision=0002" in output


def test_downgrade_goes_down_and_upgrade_comes_back(host, upgraded):
    output = schema(host, "base")
    assert "revision=0002" in output
    assert database_revision(host) in (None, "")
    schema(host, "head")
    assert database_revision(host) == "0002"


ADMIN = {"gunicorn_app_admin_email": "first@example.test", "gunicorn_app_admin_password": "x" * 20}


def admin_row(host) -> str:
    out = host.run(
        "runuser -u postgres -- psql -d lvd -tAc %s",
        "SELECT role, is_active FROM users WHERE email = 'first@example.test'",
    )
    return out.stdout.strip()


def test_the_first_admin_is_made_once_and_put_back(host, upgraded):
    assert "changed=1" in schema(host, "head", **ADMIN)
    assert admin_row(host) == "admin|t"
    assert "changed=0" in schema(host, "head", **ADMIN)
    host.run("runuser -u postgres -- psql -d lvd -c %s", "UPDATE users SET role = 'viewer'")
    assert "changed=1" in schema(host, "head", **ADMIN)
    assert admin_row(host) == "admin|t"
    # The password never shows, even when the command fails.
    short = schema(host, "head", check=False, **{**ADMIN, "gunicorn_app_admin_password": "y" * 5})
    assert "at least 8 characters" in short
    assert "y" * 5 not in short and "x" * 20 not in short
