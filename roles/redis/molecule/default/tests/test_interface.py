"""The role's interface is written down once: defaults, argument specs and README agree."""

import re

import yaml
from conftest import ROLE_DIR


def _spec_options():
    specs = yaml.safe_load((ROLE_DIR / "meta/argument_specs.yml").read_text())
    return specs["argument_specs"]["main"]["options"]


def test_every_default_is_described_in_the_argument_specs():
    defaults = yaml.safe_load((ROLE_DIR / "defaults/main.yml").read_text())
    assert set(defaults) <= set(_spec_options())


def test_every_input_is_in_the_readme_table():
    readme = (ROLE_DIR / "README.md").read_text()
    section = readme.split("## Role variables", 1)[1].split("\n## ", 1)[0]
    in_table = set(re.findall(r"^\| `(redis_\w+)` \|", section, re.MULTILINE))
    assert in_table == set(_spec_options())


def test_secrets_have_no_default_and_are_required():
    defaults = yaml.safe_load((ROLE_DIR / "defaults/main.yml").read_text())
    options = _spec_options()
    for name in ("redis_admin_password", "redis_app_password"):
        assert name not in defaults
        assert options[name]["required"] is True
        assert options[name]["no_log"] is True
