"""How the role scenarios' tests run a playbook of their own against the scenario's
instances (on PYTHONPATH through the verifier's env in .config/molecule/config.yml):
ansible-playbook from this venv, with Molecule's inventory (its directory, as Molecule passes
it: the generated hosts file, and what a scenario writes or links beside it) and environment
(roles path, ansible.cfg), output captured."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

# "host : ok=12 changed=0 unreachable=0 failed=0 ..." in the play recap
RECAP = re.compile(
    r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE
)


def ansible_playbook(
    playbook: Path, *args: str, limit: str | None = None, timeout: int = 1200
) -> subprocess.CompletedProcess:
    """Run `playbook` on every instance (or on `limit`); never raises on failure."""
    command = [str(Path(sys.executable).with_name("ansible-playbook"))]
    command += ["-i", str(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent)]
    if limit:
        command += ["--limit", limit]
    command += [str(playbook), *args]
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0")
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=False, env=env
    )


def recaps(output: str) -> dict[str, dict[str, int]]:
    """{host: {ok, changed, unreachable, failed}} from a run's play recap."""
    keys = ("ok", "changed", "unreachable", "failed")
    return {name: dict(zip(keys, map(int, counters))) for name, *counters in RECAP.findall(output)}
