"""The macOS path, resolved on the controller (nothing runs on a Mac here): the role's
variables point at gunicorn_app's macOS layout."""

import json
import os
import subprocess

from conftest import ANSIBLE_PLAYBOOK, ROLE_DIR, SCENARIO_DIR


def test_macos_variables_follow_gunicorn_apps_layout(tmp_path):
    out = tmp_path / "vars.json"
    proc = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", str(SCENARIO_DIR / "resolve_darwin.yml")],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, "RESOLVED_VARS": str(out), "ANSIBLE_ROLES_PATH": str(ROLE_DIR.parent)},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    resolved = json.loads(out.read_text())
    assert resolved["flask"] == "/usr/local/var/lvd/bin/flask"
    assert resolved["sqlite_path"] == "/usr/local/var/lvd/shared/migration/source.db"
    assert resolved["packages"] == []
