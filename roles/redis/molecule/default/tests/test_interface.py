"""The role's secrets: required, never logged, no default. (Defaults, argument specs and
the README's table are checked for every role by tests/roles/test_role_conventions.py.)"""

import yaml
from conftest import ROLE_DIR


def test_secrets_have_no_default_and_are_required():
    defaults = yaml.safe_load((ROLE_DIR / "defaults/main.yml").read_text())
    specs = yaml.safe_load((ROLE_DIR / "meta/argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    for name in ("redis_admin_password", "redis_app_password"):
        assert name not in defaults
        assert options[name]["required"] is True
        assert options[name]["no_log"] is True
