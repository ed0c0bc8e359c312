"""The role's entry points, secrets and safe defaults. (Defaults, argument specs and the
README's table are checked for every role by tests/roles/test_role_conventions.py.)"""

import yaml
from conftest import ROLE_DIR

SECRETS = (
    "gunicorn_app_secret_key",
    "gunicorn_app_jwt_secret_key",
    "gunicorn_app_db_password",
    "gunicorn_app_redis_password",
)


def _specs():
    return yaml.safe_load((ROLE_DIR / "meta/argument_specs.yml").read_text())["argument_specs"]


def test_entry_points_have_task_files_and_specs():
    for entry_point in ("main", "release", "switch", "prune", "history", "schema"):
        assert entry_point in _specs()
        assert (ROLE_DIR / "tasks" / f"{entry_point}.yml").is_file()


def test_secrets_have_no_default_and_are_required():
    defaults = yaml.safe_load((ROLE_DIR / "defaults/main.yml").read_text())
    options = _specs()["main"]["options"]
    for name in SECRETS:
        assert name not in defaults
        assert options[name]["required"] is True
        assert options[name]["no_log"] is True


def test_defaults_listen_on_loopback_only():
    defaults = yaml.safe_load((ROLE_DIR / "defaults/main.yml").read_text())
    assert defaults["gunicorn_app_bind_address"] == "127.0.0.1"
