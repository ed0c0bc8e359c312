"""Every role keeps the conventions of CONTRIBUTING.md: its interface is written down once
(defaults and argument specs agree, and the README's variables table is the one
scripts/role_docs.py generates from them), internal names carry the role's prefix, handler
topics name the role, templates say they are managed. Runs on the controller, in
`make lint`; a failure names the role and what disagrees."""

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES_DIR = ROOT / "roles"
ROLES = sorted(p.name for p in ROLES_DIR.iterdir() if (p / "meta" / "argument_specs.yml").is_file())
GALAXY_PLATFORMS = {"Debian", "Ubuntu", "MacOSX"}

_ROLE_DOCS = importlib.util.spec_from_file_location("role_docs", ROOT / "scripts" / "role_docs.py")
role_docs = importlib.util.module_from_spec(_ROLE_DOCS)
_ROLE_DOCS.loader.exec_module(role_docs)


def load(role: str, relative: str):
    return yaml.safe_load((ROLES_DIR / role / relative).read_text()) or {}


def options(role: str) -> dict:
    """Every input of every entry point (main, and tasks_from ones such as drain, backup)."""
    merged: dict = {}
    for entry in load(role, "meta/argument_specs.yml")["argument_specs"].values():
        merged.update(entry.get("options", {}))
    return merged


def test_roles_are_found():
    assert {"postgresql", "redis", "nginx", "gunicorn_app", "migration"} <= set(ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_inputs_carry_the_role_name(role):
    assert [name for name in options(role) if not name.startswith(f"{role}_")] == []


@pytest.mark.parametrize("role", ROLES)
def test_every_default_is_an_input_and_every_optional_input_has_a_default(role):
    defaults, specs = load(role, "defaults/main.yml"), options(role)
    assert sorted(set(defaults) - set(specs)) == [], "defaults without an argument spec"
    optional = {name for name, spec in specs.items() if not spec.get("required")}
    assert sorted(optional - set(defaults)) == [], "optional inputs without a default"


@pytest.mark.parametrize("role", ROLES)
def test_secrets_have_no_value_by_default(role):
    defaults = load(role, "defaults/main.yml")
    secrets = [name for name, spec in options(role).items() if spec.get("no_log")]
    assert {name: defaults[name] for name in secrets if defaults.get(name)} == {}


@pytest.mark.parametrize("role", ROLES)
def test_the_readme_variables_table_is_generated_from_the_specs(role):
    fix = f"run: .venv/bin/python scripts/role_docs.py {role}"
    readme = (ROLES_DIR / role / "README.md").read_text()
    assert role_docs.section_bounds(readme), f"README has no '{role_docs.SECTION}' section"
    block = role_docs.generated_block(readme)
    assert block is not None, f"README's '{role_docs.SECTION}' has no generated table; {fix}"
    assert block == role_docs.render(ROLES_DIR / role), f"README's table is out of date; {fix}"


@pytest.mark.parametrize("role", ROLES)
def test_internal_names_carry_the_internal_prefix(role):
    wrong = {
        f"vars/{path.name}": name
        for path in sorted((ROLES_DIR / role / "vars").glob("*.yml"))
        for name in yaml.safe_load(path.read_text()) or {}
        if not name.startswith(f"__{role}_")
    }
    assert wrong == {}
    # Registered results and set_fact names in task files too.
    tasks = "\n".join(p.read_text() for p in (ROLES_DIR / role / "tasks").glob("*.yml"))
    registered = set(re.findall(r"^\s+register: (\w+)", tasks, re.MULTILINE))
    assert sorted(n for n in registered if not n.startswith(f"__{role}_")) == []


@pytest.mark.parametrize("role", ROLES)
def test_handler_topics_start_with_the_role_name(role):
    path = ROLES_DIR / role / "handlers" / "main.yml"
    handlers = yaml.safe_load(path.read_text()) if path.exists() else []
    topics = {h["listen"] for h in handlers or [] if "listen" in h}
    assert sorted(t for t in topics if not t.startswith(f"{role} ")) == []


@pytest.mark.parametrize("role", ROLES)
def test_templates_say_they_are_managed(role):
    unmanaged = [
        t.name
        for t in sorted((ROLES_DIR / role / "templates").glob("*.j2"))
        if "ansible_managed" not in "".join(t.read_text().splitlines(keepends=True)[:4])
    ]
    assert unmanaged == []


@pytest.mark.parametrize("role", ROLES)
def test_facts_are_read_one_way(role):
    pattern = re.compile(r"ansible_facts\.\w")
    dotted = [
        f"{p.relative_to(ROLES_DIR)}:{n}"
        for p in sorted((ROLES_DIR / role).rglob("*"))
        if p.suffix in {".yml", ".j2", ".md"} and p.is_file()
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert dotted == [], "write ansible_facts['name'], not ansible_facts.name"


@pytest.mark.parametrize("role", ROLES)
def test_meta_names_the_platforms_the_galaxy_way(role):
    platforms = {p["name"] for p in load(role, "meta/main.yml")["galaxy_info"]["platforms"]}
    assert platforms <= GALAXY_PLATFORMS
