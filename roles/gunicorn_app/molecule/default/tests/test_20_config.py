"""Configuration changes: a valid one is applied with a graceful HUP (same master, new
workers); an invalid one is rejected by the validate step with the app's own message and
the running service keeps serving with the old file."""

import pytest
from conftest import ROOT, main_pid, run_playbook, version, worker_pids


@pytest.fixture(scope="module")
def before(host):
    return {
        "master": main_pid(host),
        "workers": worker_pids(host),
        "env": host.file(f"{ROOT}/shared/.env").sha256sum,
    }


@pytest.fixture(scope="module")
def bad_env_run(host, before):
    return run_playbook(
        "converge.yml",
        "-e",
        '{"gunicorn_app_environment": {"ARGON2_PROFILE": "CHEAPEST", "APP_ENV": "nonsense"}}',
        limit=host.backend.get_hostname(),
    )


def test_invalid_env_is_rejected_with_the_apps_message(host, bad_env_run):
    rc, output = bad_env_run
    assert rc != 0
    assert "Unknown configuration 'nonsense'" in output
    assert "was not installed: the app does not load with it" in output


def test_invalid_env_leaves_the_service_as_it_was(host, before, bad_env_run):
    assert host.file(f"{ROOT}/shared/.env").sha256sum == before["env"]
    assert main_pid(host) == before["master"]
    assert worker_pids(host) == before["workers"]
    assert version(host) == "r1"


@pytest.fixture(scope="module")
def changed_config_run(host, bad_env_run):
    master = main_pid(host)
    workers = worker_pids(host)
    rc, output = run_playbook(
        "converge.yml", "-e", "gunicorn_app_max_requests=900", limit=host.backend.get_hostname()
    )
    return rc, output, master, workers


def test_config_change_reloads_gracefully(host, changed_config_run):
    rc, output, master, workers = changed_config_run
    assert rc == 0, output
    assert "max_requests = 900" in host.file(f"{ROOT}/shared/gunicorn.conf.py").content_string
    # HUP: the same master, all workers replaced, still release r1.
    assert main_pid(host) == master
    assert not set(worker_pids(host)) & set(workers)
    assert len(worker_pids(host)) == len(workers)
    assert version(host) == "r1"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("gunicorn_app_log_level=loud", "gunicorn_app_log_level"),
        ("gunicorn_app_secret_key=short", "gunicorn_app_secret_key must be at least 16 characters"),
        ("gunicorn_app_release=../etc", 'gunicorn_app_release "../etc" is not a release id'),
    ],
)
def test_wrong_input_fails_before_any_change(host, changed_config_run, extra, message):
    master = main_pid(host)
    rc, output = run_playbook("converge.yml", "-e", extra, limit=host.backend.get_hostname())
    assert rc != 0
    assert message in output
    assert "changed=0" in output
    assert main_pid(host) == master
