"""The app's CLI, as an operator runs it: <root>/bin/flask as the app user, with the
current release or a named one, and a clear refusal for a release that is not there."""

from conftest import ROOT, current_release

FLASK = f"{ROOT}/bin/flask"


def as_app_user(host, *args):
    return host.run("runuser -u lvd -- %s " + " ".join(["%s"] * len(args)), FLASK, *args)


def test_the_apps_cli_runs_the_current_or_a_named_release(host):
    wrapper = host.file(FLASK)
    assert (wrapper.user, wrapper.mode) == ("root", 0o755)

    # The current release, from its directory: its .env gives the database to ask.
    current = as_app_user(host, "db", "current")
    assert current.rc == 0, current.stderr
    database = host.run(
        "runuser -u postgres -- psql -d lvd -tAc %s", "SELECT version_num FROM alembic_version"
    )
    if database.rc == 0 and database.stdout.strip():
        assert database.stdout.strip() in current.stdout.split()

    # A named release: one that passed its gate and is not current, when there is one.
    releases = host.file(f"{ROOT}/releases").listdir()
    others = [
        release
        for release in sorted(releases)
        if release != current_release(host)
        and host.file(f"{ROOT}/releases/{release}/.deployed-ok").exists
    ]
    named = as_app_user(host, "--release", (others or [current_release(host)])[0], "db", "heads")
    assert named.rc == 0, named.stderr
    assert "(head)" in named.stdout

    missing = as_app_user(host, "--release", "nosuch", "db", "current")
    assert missing.rc != 0
    assert "release 'nosuch' is not installed" in missing.stderr
    assert f"{ROOT}/releases/nosuch" in missing.stderr
