"""The first release (r1) as converge left it: what an operator checks on an app host."""

import json
import re

from conftest import CURRENT, ROOT, SOCKET, WEB, WORKER, http_get, main_pid, version, worker_pids


def test_current_points_at_the_release(host):
    assert host.file(CURRENT).is_symlink
    assert host.file(CURRENT).linked_to == f"{ROOT}/releases/r1"
    assert host.file(f"{ROOT}/releases/r1/.deployed-ok").exists


def test_ready_answers_200_on_the_app_port(host):
    status, body = http_get(host, "/health/ready")
    assert status == 200, body
    assert json.loads(body)["checks"] == {"database": "ok", "redis": "ok"}


def test_version_is_the_installed_release(host):
    assert version(host) == "r1"


def test_listens_on_loopback_only(host):
    assert host.socket("tcp://127.0.0.1:8000").is_listening
    assert not host.socket("tcp://0.0.0.0:8000").is_listening
    assert host.service(SOCKET).is_running


def test_web_runs_as_the_app_user_with_the_expected_workers(host, role_vars):
    pid = main_pid(host)
    assert host.check_output("ps -o user= -p %s", str(pid)) == "lvd"
    expected = role_vars.get("gunicorn_app_workers")
    if not expected:
        vcpus = host.ansible("setup", "filter=ansible_processor_vcpus")["ansible_facts"]
        expected = vcpus["ansible_processor_vcpus"] * 2 + 1
    workers = worker_pids(host)
    assert len(workers) == expected
    users = host.check_output("ps -o user= --ppid %s", str(pid)).split()
    assert set(users) == {"lvd"}


def test_startup_information_is_logged(host, role_vars):
    log = host.check_output("journalctl --unit %s --output cat --no-pager", WEB)
    assert "lvd-web: release r1 from /srv/lvd/releases/r1" in log
    assert f"x {role_vars['gunicorn_app_threads']} threads (gthread)" in log
    assert "listening on 127.0.0.1:8000" in log


def test_access_log_has_the_request_time(host):
    http_get(host, "/health")
    log = host.check_output("journalctl --unit %s --output cat --no-pager --lines 50", WEB)
    # ... "GET /health HTTP/1.1" 200 <bytes> <duration>ms "<agent>"
    assert re.search(r'"GET /health HTTP/1.1" 200 \d+ \d+ms "Python-urllib', log), log


def test_env_file_is_private_and_complete(host):
    env = host.file(f"{ROOT}/shared/.env")
    assert env.mode == 0o600
    assert env.user == "lvd"
    content = env.content_string
    for name in ("SECRET_KEY", "JWT_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
        assert f"\n{name}='" in content
    # The release id comes from the release's own RELEASE file, never from .env.
    assert not re.search(r"^APP_RELEASE=", content, re.MULTILINE)
    assert host.file(f"{ROOT}/releases/r1/.env").linked_to == f"{ROOT}/shared/.env"


def test_code_belongs_to_root(host):
    release = host.file(f"{ROOT}/releases/r1/app/__init__.py")
    assert release.user == "root"
    assert not host.run("sudo -u lvd touch %s/releases/r1/app/x", ROOT).succeeded


def test_hardening_is_in_effect(host):
    for unit in (WEB, WORKER):
        shown = host.check_output(
            "systemctl show %s --property NoNewPrivileges,ProtectSystem,ProtectHome,PrivateTmp,"
            "PrivateDevices,User,ReadWritePaths",
            unit,
        )
        settings = dict(line.split("=", 1) for line in shown.splitlines())
        assert settings["NoNewPrivileges"] == "yes", unit
        assert settings["ProtectSystem"] == "strict", unit
        assert settings["ProtectHome"] == "yes", unit
        assert settings["PrivateTmp"] == "yes", unit
        assert settings["PrivateDevices"] == "yes", unit
        assert settings["User"] == "lvd", unit
        assert set(settings["ReadWritePaths"].split()) == {
            f"{ROOT}/shared/instance",
            f"{ROOT}/shared/log",
        }
    pid = str(main_pid(host))
    assert "NoNewPrivs:\t1" in host.file(f"/proc/{pid}/status").content_string
    # Inside the service's mount namespace the code and /etc are read-only.
    for path in (f"{ROOT}/current/app/probe", "/etc/probe"):
        probe = host.run("nsenter --target %s --mount -- touch %s", pid, path)
        assert "Read-only file system" in probe.stderr, probe.stderr


def test_worker_runs_as_the_app_user_and_stays_up(host):
    assert host.service(WORKER).is_running
    assert host.service(WORKER).is_enabled
    pid = str(main_pid(host, WORKER))
    assert host.check_output("ps -o user= -p %s", pid) == "lvd"
    assert "celery" in host.check_output("ps -o args= -p %s", pid)
    # Connected to its broker and never restarted by Restart=on-failure.
    log = host.check_output("journalctl --unit %s --output cat --no-pager", WORKER)
    assert "lvd@" in log and "ready." in log, log[-2000:]
    assert host.check_output("systemctl show --property NRestarts --value %s", WORKER) == "0"


def test_control_socket_reports_the_templated_config(host, role_vars):
    ask = f"{CURRENT}/venv/bin/gunicornc -s /run/lvd-web/gunicorn.ctl -c 'show config' -j"
    # The master closes its control socket around every worker it forks: ask again.
    shown = host.check_output(f"for i in $(seq 60); do {ask} && exit 0; sleep 1; done; exit 1")
    config = json.loads(shown)
    assert config["worker_class"] == "<class 'gunicorn.workers.gthread.ThreadWorker'>"
    assert config["threads"] == role_vars["gunicorn_app_threads"]
    assert config["timeout"] == 60
    assert config["graceful_timeout"] == 30
    assert config["keepalive"] == 75
    assert config["worker_connections"] == 1000
    assert config["bind"] == ["127.0.0.1:8000"]


def test_metrics_are_summed_over_workers(host):
    for _ in range(3):
        http_get(host, "/health")
    status, body = http_get(host, "/metrics")
    assert status == 200
    assert "lvd_http_requests_total" in body
    files = host.check_output("ls /run/lvd-web/prometheus").split()
    assert any(name.endswith(".db") for name in files)


def test_services_are_enabled_at_boot(host):
    assert host.service(SOCKET).is_enabled
    assert host.service(WEB).is_enabled
