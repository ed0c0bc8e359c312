"""Changes an operator makes: drain for a deploy, a bad value, wrong input, macOS.

These run ansible-playbook like an operator or the deploy playbook would.
Each story runs once against every instance (module-scoped fixtures, the
instances in parallel); the tests then check what each instance showed.
"""

import re

import pytest
from conftest import BASE, codes_and_backends, fetch

UPSTREAM = "/etc/nginx/conf.d/lvd-upstream.conf"
SITE = "/etc/nginx/conf.d/lvd.conf"
FILES = ("/etc/nginx/nginx.conf", SITE, UPSTREAM)


def said(result):
    """What ansible-playbook printed (errors go to stderr), whitespace folded."""
    return " ".join((result.stdout + result.stderr).split())


def drain(run_playbook, backend, state):
    return run_playbook("drain_backend.yml", "-e", f"backend={backend}", "-e", f"state={state}")


def master_pid(host):
    return host.file("/run/nginx.pid").content_string.strip()


@pytest.fixture(scope="module")
def drain_story(fleet, run_playbook):
    """Drain 9002, try to drain 9001 too, converge, undrain; note what each host showed."""
    seen = {name: {"pid_before": master_pid(host)} for name, host in fleet.items()}
    drained = drain(run_playbook, "127.0.0.1:9002", "drained")
    try:
        for name, host in fleet.items():
            seen[name]["dump"] = host.check_output("nginx -T 2>&1")
            seen[name]["while_drained"] = codes_and_backends(host, BASE + "/", 30)
        last = drain(run_playbook, "127.0.0.1:9001", "drained")
        converge = run_playbook("converge.yml")
        for name, host in fleet.items():
            seen[name]["after_converge"] = host.file(UPSTREAM).content_string
    finally:
        undrained = drain(run_playbook, "127.0.0.1:9002", "active")
    for name, host in fleet.items():
        seen[name]["after_undrain"] = host.file(UPSTREAM).content_string
        seen[name]["undrained"] = codes_and_backends(host, BASE + "/", 20)
        seen[name]["pid_after"] = master_pid(host)
    return {
        "drained": drained,
        "last": last,
        "converge": converge,
        "undrained": undrained,
        "seen": seen,
    }


def test_drained_backend_gets_no_new_requests(host, drain_story):
    assert drain_story["drained"].returncode == 0, said(drain_story["drained"])
    seen = drain_story["seen"][host.backend.get_hostname()]
    assert "server 127.0.0.1:9002 weight=1 max_fails=3 fail_timeout=10s down;" in seen["dump"]
    assert [code for code, _ in seen["while_drained"]] == ["200"] * 30
    assert {backend for _, backend in seen["while_drained"]} == {"9001"}


def test_draining_the_last_active_backend_is_refused(host, drain_story):
    assert drain_story["last"].returncode != 0
    name = host.backend.get_hostname()
    assert f"{name}: cannot set nginx_drain_backend 127.0.0.1:9001 drained" in said(
        drain_story["last"]
    )
    assert "at least one of them active" in said(drain_story["last"])


def test_a_full_converge_keeps_the_drained_backend_down(host, drain_story):
    converge = drain_story["converge"]
    assert converge.returncode == 0, said(converge)
    assert re.search(rf"{host.backend.get_hostname()} : ok=[0-9]+ changed=0 ", said(converge))
    upstream = drain_story["seen"][host.backend.get_hostname()]["after_converge"]
    assert "server 127.0.0.1:9002 weight=1 max_fails=3 fail_timeout=10s down;" in upstream


def test_undrain_brings_the_backend_back_without_a_restart(host, drain_story):
    assert drain_story["undrained"].returncode == 0, said(drain_story["undrained"])
    seen = drain_story["seen"][host.backend.get_hostname()]
    assert " down;" not in seen["after_undrain"]
    assert {backend for _, backend in seen["undrained"]} == {"9001", "9002"}
    # Reloaded each time, never restarted: the same master process.
    assert seen["pid_after"] == seen["pid_before"]


@pytest.fixture(scope="module")
def unknown_backend(fleet, run_playbook):
    before = {name: host.file(UPSTREAM).md5sum for name, host in fleet.items()}
    return drain(run_playbook, "10.9.9.9:8000", "drained"), before


def test_drain_of_an_unknown_backend_is_refused(host, unknown_backend):
    result, before = unknown_backend
    name = host.backend.get_hostname()
    assert result.returncode != 0
    assert f"{name}: cannot set nginx_drain_backend 10.9.9.9:8000 drained" in said(result)
    assert host.file(UPSTREAM).md5sum == before[name]


@pytest.fixture(scope="module")
def broken_value(fleet, run_playbook):
    """Converge (config tag) with a value nginx -t rejects."""
    before = {
        name: {
            "pid": master_pid(host),
            "md5": {path: host.file(path).md5sum for path in FILES},
        }
        for name, host in fleet.items()
    }
    result = run_playbook(
        "converge.yml", "--tags", "config", "-e", "nginx_client_max_body_size=ten-megabytes"
    )
    return result, before


def test_a_value_nginx_rejects_is_rolled_back_and_nginx_keeps_serving(host, broken_value):
    result, before = broken_value
    before = before[host.backend.get_hostname()]
    assert result.returncode != 0
    assert "nginx rejected the new configuration" in said(result)
    assert "client_max_body_size" in said(result)
    assert "directive invalid value" in said(result)
    assert {path: host.file(path).md5sum for path in FILES} == before["md5"]
    assert host.run("ls /etc/nginx /etc/nginx/conf.d | grep '~$'").stdout == ""
    assert master_pid(host) == before["pid"]
    assert fetch(host, BASE + "/").status == 200


@pytest.fixture(scope="module")
def wrong_input(fleet, run_playbook):
    before = {name: host.file(SITE).md5sum for name, host in fleet.items()}
    return run_playbook("converge.yml", "-e", "nginx_socketio_affinity=sticky"), before


def test_wrong_input_is_rejected_before_any_change(host, wrong_input):
    result, before = wrong_input
    assert result.returncode != 0
    assert "nginx_socketio_affinity" in said(result)
    assert "hash, ip_hash" in said(result)
    assert host.file(SITE).md5sum == before[host.backend.get_hostname()]


@pytest.fixture(scope="module")
def darwin_render(run_playbook):
    return run_playbook("render_darwin.yml")


def test_templates_render_with_the_macos_variables_and_pass_nginx_t(host, darwin_render):
    assert darwin_render.returncode == 0, said(darwin_render)
    name = host.backend.get_hostname()
    assert re.search(
        rf"{name} : ok=[0-9]+ changed=[0-9]+ unreachable=0 failed=0 ", said(darwin_render)
    )
    out = darwin_render.stdout
    for line in (
        "pid /usr/local/var/run/nginx.pid;",
        "include /usr/local/etc/nginx/mime.types;",
        "include /usr/local/etc/nginx/conf.d/*.conf;",
        "ssl_certificate /usr/local/etc/nginx/tls/lvd.crt;",
        "listen [::]:80;",
        "server 10.0.0.6:8000 weight=1 max_fails=3 fail_timeout=10s down;",
        "192.0.2.0/24 1;",
    ):
        assert line in out, line
    assert "listen [::]:443 ssl http2;" in out or "http2 on;" in out
    assert not [line for line in out.splitlines() if line.strip().startswith("user ")]
