"""The macOS path without a Mac: every template renders with vars/Darwin.yml.

Runs once on the controller (no `host` fixture). This proves the Darwin values and the
templates fit together and the checker script is valid shell; it does not prove that
Homebrew or brew services behave as expected (see the README).
"""

import subprocess

import pytest
from conftest import ROLE_DIR, SCENARIO_DIR
from lvd_darwin import render_darwin


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    return render_darwin(SCENARIO_DIR, tmp_path_factory.mktemp("darwin"))


def test_every_template_rendered(rendered):
    templates = {p.name.removesuffix(".j2") for p in (ROLE_DIR / "templates").glob("*.j2")}
    assert set(rendered) == templates


def test_every_file_carries_the_managed_header(rendered):
    for name, text in rendered.items():
        assert "Ansible managed" in text, name


def test_redis_conf_uses_the_homebrew_layout(rendered):
    conf = rendered["redis.conf"]
    assert 'dir "/opt/homebrew/var/db/redis"' in conf
    assert 'logfile "/opt/homebrew/var/log/redis.log"' in conf
    assert 'include "/opt/homebrew/etc/redis-users.conf"' in conf
    assert "pidfile" not in conf
    assert "daemonize no" in conf
    assert "maxmemory 4096mb" in conf
    assert "bind 127.0.0.1 -::1" in conf


def test_users_file_disables_default_and_hashes_passwords(rendered):
    users = rendered["redis-users.conf"]
    assert "user default reset" in users
    assert "render-only" not in users
    assert "user admin reset on #" in users


def test_checker_is_valid_shell_and_uses_the_homebrew_server(rendered, tmp_path):
    script = tmp_path / "redis-config-check"
    script.write_text(rendered["redis-config-check.sh"])
    subprocess.run(["sh", "-n", str(script)], check=True)
    assert '"/opt/homebrew/bin/redis-server" "$@"' in rendered["redis-config-check.sh"]
