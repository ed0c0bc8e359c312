"""A role's `verify` entry point (the rows playbooks/verify.yml prints), run by the
role's Molecule tests against the scenario's instances: what passes in production's
verify must pass right after the scenario's converge."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from lvd_playbook import ansible_playbook
from testinfra.utils.ansible_runner import AnsibleRunner

PLAYBOOK = Path(__file__).with_name("role_verify.yml")


def role_verify_rows(role: str) -> dict[str, list[dict]]:
    """{host: rows} from `include_role: {name: role, tasks_from: verify}` on every instance."""
    with tempfile.TemporaryDirectory() as out:
        run = ansible_playbook(
            PLAYBOOK,
            "-e",
            json.dumps({"lvd_verify_role": role, "lvd_verify_out": out}),
            timeout=600,
        )
        assert run.returncode == 0, (
            f"{role}'s verify entry point failed:\n{run.stdout[-4000:]}{run.stderr[-2000:]}"
        )
        return {path.stem: json.loads(path.read_text()) for path in Path(out).glob("*.json")}


def assert_role_verify_passes(role: str) -> None:
    """Every instance published rows, and every row passed (the failures are named)."""
    rows = role_verify_rows(role)
    instances = AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")
    assert sorted(rows) == sorted(instances), (
        f"instances without rows: {set(instances) - set(rows)}"
    )
    assert all(rows.values()), f"an instance published no checks: {rows}"
    failed = [
        f"{host}: {row['check']} ({row['detail']})"
        for host, host_rows in sorted(rows.items())
        for row in host_rows
        if not row["ok"]
    ]
    assert failed == [], f"{role}'s verify rows that failed: {failed}"
