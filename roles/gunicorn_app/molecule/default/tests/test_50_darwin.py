"""The macOS path without a Mac: the templates it uses render with vars/Darwin.yml.

Runs once on the controller (no `host` fixture). It proves the Darwin values and the
templates fit together (plists parse, the Python and shell files compile); it does not
prove that Homebrew, launchd or the user module behave as expected on a Mac.
"""

import plistlib
import subprocess

import pytest
from conftest import ROLE_DIR, SCENARIO_DIR
from lvd_darwin import render_darwin

# The systemd units are the Linux path's; everything else is rendered on macOS too.
LINUX_ONLY = {"web.service", "web.socket", "worker.service"}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    return render_darwin(SCENARIO_DIR, tmp_path_factory.mktemp("darwin"))


def test_every_macos_template_rendered(rendered):
    templates = {p.name.removesuffix(".j2") for p in (ROLE_DIR / "templates").glob("*.j2")}
    assert set(rendered) == templates - LINUX_ONLY


def test_every_file_carries_the_managed_header(rendered):
    for name, text in rendered.items():
        assert "Ansible managed" in text, name


def test_plists_parse_and_run_the_release_as_the_app_user(rendered):
    web = plistlib.loads(rendered["web.plist"].encode())
    assert web["Label"] == "local.lvd.web"
    assert web["ProgramArguments"][0] == "/usr/local/var/lvd/current/venv/bin/gunicorn"
    assert web["UserName"] == "lvd"
    assert web["StandardErrorPath"] == "/usr/local/var/lvd/shared/log/web.log"
    worker = plistlib.loads(rendered["worker.plist"].encode())
    assert worker["ProgramArguments"][:4] == [
        "/usr/local/var/lvd/current/venv/bin/celery",
        "--app",
        "app.worker",
        "worker",
    ]


def test_gunicorn_conf_compiles_with_the_macos_values(rendered):
    conf = rendered["gunicorn.conf.py"]
    compile(conf, "gunicorn.conf.py", "exec")
    assert "workers = 17" in conf
    assert "worker_tmp_dir" not in conf
    assert '"/usr/local/var/lvd/shared/run/prometheus"' in conf


def test_checkconf_is_valid_shell(rendered, tmp_path):
    script = tmp_path / "checkconf"
    script.write_text(rendered["checkconf"])
    subprocess.run(["sh", "-n", str(script)], check=True)


def test_flask_is_valid_shell_for_the_macos_layout(rendered, tmp_path):
    script = tmp_path / "flask"
    script.write_text(rendered["flask"])
    subprocess.run(["sh", "-n", str(script)], check=True)
    assert "root=/usr/local/var/lvd\n" in rendered["flask"]
