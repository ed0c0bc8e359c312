"""The role's interface is written down once: defaults, argument specs and README agree."""

import re

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


def test_every_default_is_described_in_the_argument_specs():
    defaults = yaml.safe_load((ROLE_DIR / "defaults/main.yml").read_text())
    assert set(defaults) <= set(_specs()["main"]["options"])
    assert all(name.startswith("gunicorn_app_") for name in defaults)


def test_every_input_is_in_the_readme_table():
    readme = (ROLE_DIR / "README.md").read_text()
    in_table = set(re.findall(r"^\| `(gunicorn_app_\w+)` \|", readme, re.MULTILINE))
    assert in_table == set(_specs()["main"]["options"])


def test_entry_points_have_task_files_and_specs():
    for entry_point in ("main", "release", "switch", "prune", "history"):
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
