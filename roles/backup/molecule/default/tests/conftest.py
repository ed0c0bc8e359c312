"""Shared helpers: SQL on the instance's drill database, the role's entry points."""

from pathlib import Path

from lvd_playbook import ansible_playbook

SCENARIO_DIR = Path(__file__).resolve().parent.parent
ROLE_DIR = SCENARIO_DIR.parent.parent
STANZA = "drill"


def sql(host, query: str) -> str:
    """QUERY in database drill as postgres, unaligned, tuples only."""
    return host.check_output(f"runuser -u postgres -- psql -d drill -Atc {query!r}")


def pgbackrest(host, *args: str):
    return host.run(f"runuser -u postgres -- pgbackrest --stanza={STANZA} {' '.join(args)}")


def entry(host, name: str, **variables):
    """Run the role's NAME entry point on this instance only, with VARIABLES as extra vars."""
    extra = [arg for key, value in variables.items() for arg in ("-e", f"{key}={value}")]
    return ansible_playbook(
        SCENARIO_DIR / "entry.yml",
        "-e",
        f"lvd_entry={name}",
        *extra,
        limit=host.backend.get_hostname(),
    )


def said(run) -> str:
    """What a run printed, stdout and stderr (Ansible 2.19 writes errors there), with the
    line wrapping of the YAML callback undone."""
    return " ".join((run.stdout + run.stderr).split())
