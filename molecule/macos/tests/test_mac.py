"""What site.yml did on the stand-in Mac (molecule/macos), after converge and idempotence:
the commands the roles sent to Homebrew and macOS (as the stand-ins recorded them), the
files they wrote, and the services they left running, as a person would check on a Mac."""

from __future__ import annotations

import json
import os
import plistlib
from pathlib import Path

import pytest

PREFIX = "/opt/homebrew"
CALLS = f"{PREFIX}/var/standin/calls.jsonl"
# inventories/macos's values.
DB, DB_USER = "live_validation_dashboard", "dashboard_user"


def secret(name):
    """A secret inventories/macos generated on the controller (.macos/secrets/ beside the
    ansible.cfg in use: Molecule's, in its ephemeral directory)."""
    path = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / ".macos" / "secrets" / name
    return path.read_text().split()[0]


@pytest.fixture(scope="module")
def calls(host):
    """[argv] of every stand-in call of both runs, in order; the uid of each checked apart."""
    lines = [json.loads(line) for line in host.file(CALLS).content_string.splitlines()]
    return lines


def argvs(calls):
    return [" ".join(call["argv"]) for call in calls]


def runs(calls):
    """The calls of the converge and of the idempotence run (each starts with the facts
    module asking sw_vers for the macOS version)."""
    starts = [i for i, call in enumerate(calls) if call["argv"][0] == "sw_vers"]
    assert len(starts) >= 2, f"expected two runs, found {len(starts)}: {argvs(calls)}"
    return argvs(calls[starts[0] : starts[1]]), argvs(calls[starts[1] :])


def installs(run):
    """The formulae of each `brew install` of a run, as sets (the module orders them freely)."""
    return [frozenset(argv.split()[2:]) for argv in run if argv.startswith("brew install ")]


def first_install(run, *formulae):
    """Index in the run of the `brew install` of exactly these formulae."""
    wanted = frozenset(formulae)
    return next(
        i
        for i, argv in enumerate(run)
        if argv.startswith("brew install ") and frozenset(argv.split()[2:]) == wanted
    )


def test_nothing_ran_as_root(calls):
    assert calls, "the stand-ins recorded no call"
    assert {call["uid"] for call in calls} == {1000}, (
        "a command ran as another user than the Mac's login user"
    )


def test_first_run_installs_each_formula_once_then_starts_its_service(calls):
    first, _ = runs(calls)
    assert sorted(installs(first), key=sorted) == sorted(
        [
            frozenset({"postgresql@17"}),
            frozenset({"redis"}),
            frozenset({"python@3.13", "gnu-tar"}),
            frozenset({"nginx", "logrotate"}),
        ],
        key=sorted,
    )
    # Each installed before anything starts it.
    assert first_install(first, "postgresql@17") < first.index("brew services start postgresql@17")
    assert first_install(first, "redis") < first.index("brew services restart redis")
    assert first_install(first, "nginx", "logrotate") < first.index("brew services start nginx")
    assert "brew services start logrotate" in first


def test_backup_agent_is_loaded_once_into_the_users_launchd_domain(calls):
    first, second = runs(calls)
    plist = "/home/dev/Library/LaunchAgents/local.postgresql-backup.plist"
    assert first.count(f"launchctl bootstrap gui/1000 {plist}") == 1
    linted = next(i for i, argv in enumerate(first) if argv.startswith("plutil -lint"))
    assert linted < first.index(f"launchctl bootstrap gui/1000 {plist}")
    # Later runs only ask whether it is loaded.
    assert [argv for argv in second if argv.startswith("launchctl")] == [
        "launchctl print gui/1000/local.postgresql-backup"
    ] * len([argv for argv in second if argv.startswith("launchctl")])


def test_backup_agent_plist_runs_the_script_daily(host):
    agent = plistlib.loads(
        host.file("/home/dev/Library/LaunchAgents/local.postgresql-backup.plist").content
    )
    assert agent["Label"] == "local.postgresql-backup"
    assert agent["ProgramArguments"] == [f"{PREFIX}/sbin/postgresql-backup"]
    assert set(agent["StartCalendarInterval"]) == {"Hour", "Minute"}
    assert host.file(f"{PREFIX}/sbin/postgresql-backup").mode & 0o100
    loaded = host.run("launchctl print gui/1000/local.postgresql-backup")
    assert loaded.rc == 0, loaded.stderr


def test_postgresql_is_the_login_users_cluster_with_the_roles_database(host):
    psql = f"{PREFIX}/bin/psql -XAtq -h /tmp -d postgres -c"
    assert host.check_output(f"{psql} 'select current_user'") == "dev"
    owner = host.check_output(
        f"{psql} \"select pg_get_userbyid(datdba) from pg_database where datname = '{DB}'\""
    )
    assert owner == DB_USER
    assert host.check_output(f"{psql} 'show password_encryption'") == "scram-sha-256"
    login = host.run(
        f"PGPASSWORD={secret('db_password')} {PREFIX}/bin/psql -XAtq -h 127.0.0.1"
        f" -U {DB_USER} -d {DB} -c 'select 1'"
    )
    assert login.stdout.strip() == "1", login.stderr
    service = json.loads(host.check_output(f"{PREFIX}/bin/brew services info postgresql@17 --json"))
    assert service[0]["status"] == "started"


def test_second_run_only_asks(calls):
    _, second = runs(calls)
    changing = [argv for argv in second if argv.split()[1:2] in (["install"], ["upgrade"])]
    changing += [argv for argv in second if argv.startswith("brew services") and "info" not in argv]
    assert changing == [], f"the idempotence run changed something: {changing}"
    assert "brew info --json=v2 redis" in second


def test_homebrew_prefix_belongs_to_the_login_user(host):
    for path in (
        f"{PREFIX}/etc/redis.conf",
        f"{PREFIX}/etc/nginx/nginx.conf",
        f"{PREFIX}/var/db/redis",
    ):
        assert host.file(path).user == "dev", path


def test_redis_conf_is_the_roles_with_homebrew_paths(host):
    conf = host.file(f"{PREFIX}/etc/redis.conf").content_string
    assert "Ansible managed" in conf
    assert f'dir "{PREFIX}/var/db/redis"' in conf
    assert f'include "{PREFIX}/etc/redis-users.conf"' in conf
    assert host.file(f"{PREFIX}/etc/redis.conf").mode == 0o600


def test_redis_answers_the_admin_and_refuses_anonymous_clients(host):
    anonymous = host.run(f"{PREFIX}/bin/redis-cli -h 127.0.0.1 ping")
    assert "NOAUTH" in anonymous.stdout + anonymous.stderr
    admin = host.run(
        f"REDISCLI_AUTH={secret('redis_admin_password')} {PREFIX}/bin/redis-cli --no-auth-warning --user admin -h 127.0.0.1 ping"
    )
    assert admin.stdout.strip() == "PONG", admin.stderr


def test_redis_runs_as_the_brew_service_with_the_roles_config(host):
    servers = host.process.filter(comm="redis-server")
    assert [p.user for p in servers] == ["dev"]
    service = json.loads(host.check_output(f"{PREFIX}/bin/brew services info redis --json"))[0]
    assert service["status"] == "started"
    assert service["pid"] == servers[0].pid


APP = f"{PREFIX}/var/lvd"
AGENTS = "/home/dev/Library/LaunchAgents"


def test_app_agents_are_loaded_once_into_the_users_launchd_domain(calls):
    first, second = runs(calls)
    for label in ("local.lvd.web", "local.lvd.worker"):
        assert first.count(f"launchctl bootstrap gui/1000 {AGENTS}/{label}.plist") == 1, label
    assert not [argv for argv in second if argv.startswith("launchctl bootstrap")]


@pytest.mark.parametrize("label", ["local.lvd.web", "local.lvd.worker"])
def test_app_agent_plists_run_the_current_release_as_the_login_user(host, label):
    plist = host.file(f"{AGENTS}/{label}.plist")
    assert plist.user == "dev"
    agent = plistlib.loads(plist.content)
    assert agent["Label"] == label
    assert agent["ProgramArguments"][0].startswith(f"{APP}/current/venv/bin/")
    assert agent["WorkingDirectory"] == f"{APP}/current"
    # An agent runs as the user who loaded it: no UserName (that key is for daemons).
    assert "UserName" not in agent and "GroupName" not in agent


def test_app_lives_under_homebrews_var_owned_by_the_login_user(host):
    assert host.file(APP).user == "dev"
    assert host.file(f"{APP}/current").linked_to.startswith(f"{APP}/releases/")
    assert host.file(f"{APP}/shared/.env").mode == 0o600
    assert host.file(f"{APP}/shared/.env").user == "dev"


def test_gunicorn_and_celery_run_as_the_login_user_and_answer(host):
    for program in ("gunicorn", "celery"):
        running = [p for p in host.process.filter(user="dev") if f"venv/bin/{program}" in p.args]
        assert running, f"no {program} running as dev"
    ready = host.check_output(
        "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/health/ready"
    )
    assert ready == "200"


def test_nginx_serves_the_roles_site_as_the_login_user(host):
    masters = [p for p in host.process.filter(comm="nginx") if "master" in p.args]
    assert [p.user for p in masters] == ["dev"]
    conf = host.file(f"{PREFIX}/etc/nginx/nginx.conf").content_string
    assert "Ansible managed" in conf
    assert f"pid {PREFIX}/var/run/nginx.pid;" in conf
    # https://localhost (the self-signed certificate), through nginx to the app on
    # 127.0.0.1:8000; plain HTTP is sent there.
    health = host.check_output("curl -sk https://localhost/health")
    assert json.loads(health) == {"status": "ok"}
    redirect = host.check_output("curl -s -o /dev/null -w '%{redirect_url}' http://localhost/health")
    assert redirect == "https://localhost/health"
