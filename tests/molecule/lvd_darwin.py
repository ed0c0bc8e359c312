"""Shared by the role scenarios' macOS tests (on PYTHONPATH through the verifier's env in
.config/molecule/config.yml): render a scenario's render_darwin.yml on the controller."""

import os
import subprocess
import sys
from pathlib import Path


def render_darwin(scenario_dir: Path, out: Path) -> dict[str, str]:
    """Run <scenario>/render_darwin.yml, which renders the role's macOS templates into
    RENDER_DIR (out); return {file name: text}. Fails with the playbook's output."""
    env = dict(os.environ, RENDER_DIR=str(out), ANSIBLE_ROLES_PATH=str(scenario_dir.parents[2]))
    playbook = Path(sys.executable).parent / "ansible-playbook"
    result = subprocess.run(
        [str(playbook), "-i", "localhost,", str(scenario_dir / "render_darwin.yml")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return {p.name: p.read_text() for p in out.iterdir()}
