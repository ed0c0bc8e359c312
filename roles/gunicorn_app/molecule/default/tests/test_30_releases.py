"""Releases the way the deploy and rollback playbooks drive the role (deploy.yml: tasks_from
release, switch, prune, history), one step after another on every instance at once."""

from conftest import ROOT, http_get


def test_second_release_switches_current_and_keeps_the_first(host, step_r2):
    assert step_r2.rc == 0, step_r2.output
    state = step_r2.of(host)
    assert state["current"] == "r2"
    assert state["version"] == "r2"
    assert state["ready"] == 200
    assert state["releases"] == ["r1", "r2"]
    assert state["markers"]["r2"] == [".deployed-ok", ".installed"]
    assert state["history"][-2:] == ["r1", "r2"]
    assert state["env_owner_mode"] == ["lvd", 0o600]
    # The same pinned requirements: r2 links the virtualenv r1 was installed with.
    assert state["venvs"]["r2"] == state["venvs"]["r1"]
    assert state["venv_dirs"] == [state["venvs"]["r1"]]


def test_switch_under_load_drops_no_request(host, step_r2):
    load = step_r2.load[host.backend.get_hostname()]
    assert load["errors"] == []
    assert set(load["statuses"]) == {"200"}
    assert load["releases"] == ["r1", "r2"]


def test_third_release_with_keep_two_prunes_the_oldest(host, step_r3):
    assert step_r3.rc == 0, step_r3.output
    state = step_r3.of(host)
    assert state["current"] == "r3"
    assert state["version"] == "r3"
    assert state["releases"] == ["r2", "r3"]


def test_rollback_reads_the_previous_release_from_the_history(host, step_rollback):
    assert step_rollback.rc == 0, step_rollback.output
    state = step_rollback.of(host)
    assert state["current"] == "r2"
    assert state["version"] == "r2"
    assert state["history"][-3:] == ["r2", "r3", "r2"]
    # r3 is now the previous release: kept by prune although keep is 2.
    assert state["releases"] == ["r2", "r3"]


def test_release_that_does_not_load_is_refused_before_the_switch(host, step_broken_checked):
    assert step_broken_checked.rc != 0
    assert "RuntimeError: deliberately broken release" in step_broken_checked.output
    assert "Nothing was switched" in step_broken_checked.output
    state = step_broken_checked.of(host)
    assert state["current"] == "r2"
    assert state["version"] == "r2"
    assert state["markers"]["broken"] == [".installed"]
    # Its requirements file differs: a virtualenv of its own, beside r2's and r3's.
    assert state["venvs"]["broken"] != state["venvs"]["r2"]
    assert state["venv_dirs"] == sorted({state["venvs"]["broken"], state["venvs"]["r2"]})


def test_release_that_fails_to_start_is_switched_back(host, step_broken_started):
    output = step_broken_started.output
    assert step_broken_started.rc != 0
    # The app's own error, from the unit's journal, and where current stands.
    assert "RuntimeError: deliberately broken release" in output
    assert "current is back on release r2, which answers its health gate" in output
    assert "journalctl --unit=lvd-web.service --lines=30" in output
    state = step_broken_started.of(host)
    assert state["current"] == "r2"
    assert state["version"] == "r2"
    assert state["ready"] == 200
    assert ".failed" in state["markers"]["broken"]
    assert state["history"][-1] == "r2"


def test_failed_release_is_pruned_and_never_counted(host, step_prune):
    assert step_prune.rc == 0, step_prune.output
    state = step_prune.of(host)
    assert state["releases"] == ["r2", "r3"]
    assert state["current"] == "r2"
    # The failed release's virtualenv went with it; the one r2 and r3 share stays.
    assert state["venv_dirs"] == [state["venvs"]["r2"]] == [state["venvs"]["r3"]]


def test_service_still_answers_after_all_steps(host, step_prune):
    status, _ = http_get(host, "/health/ready")
    assert status == 200
    assert host.file(f"{ROOT}/current").linked_to == f"{ROOT}/releases/r2"


def test_switch_waits_for_the_database_and_names_it(host, step_database_down):
    assert step_database_down.rc != 0
    assert (
        "PostgreSQL at 127.0.0.1:1 did not accept connections within 2 s"
        in step_database_down.output
    )
    assert "release r3 was not switched to" in step_database_down.output
    state = step_database_down.of(host)
    # Nothing moved, and the release that could not start is not blamed for it.
    assert state["current"] == "r2"
    assert state["version"] == "r2"
    assert state["ready"] == 200
    assert state["markers"]["r3"] == [".deployed-ok", ".installed"]
    assert state["history"][-1] == "r2"
