"""Changes an operator makes: drain for a deploy, a bad value, wrong input, macOS.

These run ansible-playbook against the instance under test, like an
operator or the deploy playbook would.
"""

from conftest import BASE, codes_and_backends, fetch

UPSTREAM = "/etc/nginx/conf.d/lvd-upstream.conf"
SITE = "/etc/nginx/conf.d/lvd.conf"


def said(result):
    """What ansible-playbook printed (errors go to stderr), whitespace folded."""
    return " ".join((result.stdout + result.stderr).split())


def drain(playbook, backend, state):
    return playbook("drain_backend.yml", "-e", f"backend={backend}", "-e", f"state={state}")


def test_drain_sends_no_new_requests_and_survives_a_converge(host, playbook, master_pid):
    pid = master_pid()
    result = drain(playbook, "127.0.0.1:9002", "drained")
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        assert "server 127.0.0.1:9002 weight=1 max_fails=3 fail_timeout=10s down;" in (
            host.check_output("nginx -T 2>&1")
        )
        answers = codes_and_backends(host, BASE + "/", 30)
        assert [code for code, _ in answers] == ["200"] * 30
        assert {backend for _, backend in answers} == {"9001"}
        # Draining the other one as well would leave no backend: refused.
        last = drain(playbook, "127.0.0.1:9001", "drained")
        assert last.returncode != 0
        assert "at least one of them active" in said(last)
        # A full converge keeps the drained backend down.
        converge = playbook("converge.yml")
        assert converge.returncode == 0, converge.stdout + converge.stderr
        assert "changed=0" in converge.stdout
        assert host.file(UPSTREAM).contains("127.0.0.1:9002 .* down;")
    finally:
        undrain = drain(playbook, "127.0.0.1:9002", "active")
    assert undrain.returncode == 0, undrain.stdout + undrain.stderr
    assert not host.file(UPSTREAM).contains(" down;")
    answers = codes_and_backends(host, BASE + "/", 20)
    assert {backend for _, backend in answers} == {"9001", "9002"}
    # Reloaded, never restarted: the master process is the same.
    assert master_pid() == pid


def test_drain_of_an_unknown_backend_is_refused(host, playbook):
    before = host.file(UPSTREAM).md5sum
    result = drain(playbook, "10.9.9.9:8000", "drained")
    assert result.returncode != 0
    assert "cannot set nginx_drain_backend 10.9.9.9:8000 drained" in said(result)
    assert host.file(UPSTREAM).md5sum == before


def test_a_value_nginx_rejects_is_rolled_back_and_nginx_keeps_serving(host, playbook, master_pid):
    pid = master_pid()
    before = {path: host.file(path).md5sum for path in ("/etc/nginx/nginx.conf", SITE, UPSTREAM)}
    result = playbook("converge.yml", "-e", "nginx_client_max_body_size=ten-megabytes")
    assert result.returncode != 0
    out = said(result)
    assert "nginx rejected the new configuration" in out
    assert "client_max_body_size" in out
    after = {path: host.file(path).md5sum for path in before}
    assert after == before
    assert host.run("ls /etc/nginx /etc/nginx/conf.d | grep '~$'").stdout == ""
    assert master_pid() == pid
    assert fetch(host, BASE + "/").status == 200


def test_wrong_input_is_rejected_before_any_change(host, playbook):
    before = host.file(SITE).md5sum
    result = playbook("converge.yml", "-e", "nginx_socketio_affinity=sticky")
    assert result.returncode != 0
    assert "nginx_socketio_affinity" in said(result)
    assert "hash, ip_hash" in said(result)
    assert host.file(SITE).md5sum == before


def test_templates_render_with_the_macos_variables_and_pass_nginx_t(playbook):
    result = playbook("render_darwin.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
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
