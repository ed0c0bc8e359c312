"""The role's documented interface matches its code (runs on the controller)."""

import pathlib

import yaml

ROLE = pathlib.Path(__file__).resolve().parents[3]


def load(path):
    return yaml.safe_load((ROLE / path).read_text())


def test_every_default_is_specified_and_every_input_has_a_default_or_is_required():
    defaults = load("defaults/main.yml")
    options = load("meta/argument_specs.yml")["argument_specs"]["main"]["options"]
    assert set(defaults) - set(options) == set()
    optional = {name for name, spec in options.items() if not spec.get("required")}
    assert optional - set(defaults) == set()
    assert all(name.startswith("nginx_") for name in options)


def test_readme_documents_every_input():
    readme = (ROLE / "README.md").read_text()
    for entry in load("meta/argument_specs.yml")["argument_specs"].values():
        for name in entry["options"]:
            assert f"`{name}`" in readme, name


def test_every_template_starts_with_the_managed_header():
    for template in (ROLE / "templates").glob("*.j2"):
        assert template.read_text().startswith("{{ ansible_managed | comment }}"), template.name
