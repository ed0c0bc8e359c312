"""The macOS path, as far as it can be checked without a Mac: every template
renders with vars/Darwin.yml and the rendered files are well-formed."""

import plistlib
import subprocess

import pytest
from conftest import ANSIBLE_PLAYBOOK, SCENARIO_DIR


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("darwin")
    proc = subprocess.run(
        [
            str(ANSIBLE_PLAYBOOK),
            "-i",
            "localhost,",
            str(SCENARIO_DIR / "render_darwin.yml"),
            "-e",
            f"lvd_render_dir={out}",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def test_settings_use_the_homebrew_sizing(rendered):
    conf = (rendered / "postgresql.conf").read_text()
    assert conf.startswith("#")
    assert "shared_buffers = '4096MB'" in conf  # 25% of postgresql_memory_mb 16384
    assert "effective_cache_size = '12288MB'" in conf
    assert "listen_addresses = 'localhost,10.0.0.5'" in conf
    assert "password_encryption = 'scram-sha-256'" in conf


def test_pg_hba_uses_the_homebrew_superuser_and_passes_the_checker(rendered):
    hba = (rendered / "pg_hba.conf").read_text()
    lines = [line.split() for line in hba.splitlines() if line and not line.startswith("#")]
    assert lines[0][0] == "local" and lines[0][-1] == "peer"
    assert [
        "host",
        "live_validation_dashboard",
        "dashboard_user",
        "2001:db8::7/128",
        "scram-sha-256",
    ] in lines
    assert [
        "host",
        "live_validation_dashboard",
        "dashboard_user",
        "10.0.1.0/24",
        "scram-sha-256",
    ] in lines
    check = subprocess.run(
        ["bash", str(rendered / "postgresql-checkconf"), "hba", str(rendered / "pg_hba.conf")],
        check=False,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr


def test_scripts_point_at_the_homebrew_formula(rendered):
    for script in ("postgresql-checkconf", "postgresql-backup"):
        text = (rendered / script).read_text()
        assert "BIN_DIR=/opt/homebrew/opt/postgresql@17/bin" in text
        assert subprocess.run(["bash", "-n", str(rendered / script)], check=False).returncode == 0
    backup = (rendered / "postgresql-backup").read_text()
    assert "BACKUP_DIR=/opt/homebrew/var/backups/postgresql" in backup
    assert "SOCKET_DIR=/tmp" in backup


def test_launchd_agent_is_a_valid_plist(rendered):
    with open(rendered / "postgresql-backup.plist", "rb") as plist:
        agent = plistlib.load(plist)
    assert agent["Label"] == "local.postgresql-backup"
    assert agent["ProgramArguments"] == ["/opt/homebrew/sbin/postgresql-backup"]
    assert agent["StartCalendarInterval"] == {"Hour": 3, "Minute": 15}
