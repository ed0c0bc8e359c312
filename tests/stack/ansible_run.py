"""One `ansible-playbook` run from the repository, as an operator types it, timed.

Shared by the stack test (tests/stack/conftest.py) and the benchmarks (bench/run.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
RECAP = re.compile(
    r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE
)


@dataclass
class PlaybookRun:
    name: str
    returncode: int
    output: str
    seconds: float

    def recap(self) -> dict[str, dict[str, int]]:
        """{host: {changed, unreachable, failed}} from the PLAY RECAP."""
        return {
            host: {"changed": int(changed), "unreachable": int(unreachable), "failed": int(failed)}
            for host, changed, unreachable, failed in RECAP.findall(self.output)
        }

    def warnings(self) -> list[str]:
        """Ansible's [WARNING] lines, but for the hint that deprecations can be silenced (the
        one deprecation, Mitogen's strategy being third-party, is known and stays visible)."""
        return [
            line
            for line in self.output.splitlines()
            if line.startswith("[WARNING]") and "Deprecation warnings can be disabled" not in line
        ]

    def tail(self, lines: int = 60) -> str:
        """The failures (fatal and unreachable lines, with the task each is under), then
        the last LINES lines: what a failed run's assertion message shows."""
        all_lines = self.output.splitlines()
        failures = []
        task = ""
        for line in all_lines:
            if line.startswith("TASK ["):
                task = line.rstrip("* ")
            elif line.startswith(("fatal:", "failed:")) or "UNREACHABLE!" in line:
                failures += [task, line[:2000]]
        head = ["failures:", *failures, "", "last lines:"] if failures else []
        return "\n".join(head + all_lines[-lines:])


def run_playbook(name: str, *args: str, env: dict[str, str] | None = None) -> PlaybookRun:
    """ansible-playbook ARGS in the repository with its ansible.cfg, without colour; ENV
    adds to the environment (ANSIBLE_STRATEGY=linear: Ansible's stock strategy)."""
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
        "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
        **(env or {}),
    }
    started = time.monotonic()
    result = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), *args],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = round(time.monotonic() - started, 1)
    return PlaybookRun(name, result.returncode, result.stdout + result.stderr, seconds)
