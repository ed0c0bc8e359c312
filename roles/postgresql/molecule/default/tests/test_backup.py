"""Scheduled backups, retention, on-demand backup and restore."""

from conftest import own_address_of, psql_admin, psql_tcp, run_playbook

BACKUP_DIR = "/var/backups/postgresql"


def dumps(host, label, db="lvd"):
    out = host.run("ls -1 %s/%s", BACKUP_DIR, db).stdout.split()
    return sorted(f"{BACKUP_DIR}/{db}/{name}" for name in out if name.endswith(f"_{label}.dump"))


def test_timer_is_scheduled(host):
    timer = host.service("postgresql-backup.timer")
    assert timer.is_enabled
    assert timer.is_running
    calendar = host.check_output("systemctl show -P TimersCalendar postgresql-backup.timer")
    assert "03:15:00" in calendar


def test_backup_directory_is_private(host):
    directory = host.file(BACKUP_DIR)
    assert (directory.user, directory.mode) == ("postgres", 0o700)


def test_started_backup_service_writes_a_restorable_dump(host, scenario, own_address):
    seeded = psql_tcp(
        host,
        own_address,
        "lvd_app",
        scenario["lvd_test_app_password"],
        "lvd",
        "CREATE TABLE IF NOT EXISTS backup_probe (id int);"
        " TRUNCATE backup_probe; INSERT INTO backup_probe SELECT generate_series(1, 42)",
    )
    assert seeded.rc == 0, seeded.stderr
    host.run_expect([0], "systemctl start postgresql-backup.service")
    newest = dumps(host, "scheduled")[-1]
    dump = host.file(newest)
    assert (dump.user, dump.mode) == ("postgres", 0o600)
    listing = host.check_output("runuser -u postgres -- pg_restore --list %s", newest)
    assert "TABLE public backup_probe lvd_app" in listing
    # Roles and their SCRAM verifiers, for a restore on a new server.
    globals_dumps = host.run("ls -1 %s/globals", BACKUP_DIR).stdout.split()
    assert any(name.endswith("_scheduled.sql") for name in globals_dumps)


def test_retention_keeps_the_newest_three(host):
    for _ in range(4):
        host.run_expect([0], "systemctl start postgresql-backup.service")
    kept = dumps(host, "scheduled")
    assert len(kept) == 3  # postgresql_backup_retention_count in molecule.yml


def test_on_demand_backup_restores_into_a_scratch_database(all_hosts, scenario):
    for host in all_hosts.values():
        seeded = psql_tcp(
            host,
            own_address_of(host),
            "lvd_app",
            scenario["lvd_test_app_password"],
            "lvd",
            "CREATE TABLE IF NOT EXISTS restore_probe (id int);"
            " TRUNCATE restore_probe; INSERT INTO restore_probe SELECT generate_series(1, 42)",
        )
        assert seeded.rc == 0, seeded.stderr
    rc, output, recaps = run_playbook("restore_check.yml")
    assert rc == 0, output
    for name, host in all_hosts.items():
        assert recaps[name]["failed"] == 0, name
        # The fact tasks_from: backup returned is the dump that was restored.
        newest = dumps(host, "verify")[-1]
        assert f"restored {newest}" in output
        try:
            rows = psql_admin(
                host, "SELECT count(*), sum(id) FROM restore_probe", db="lvd_restore_check"
            )
            assert rows == "42|903"
            owner = psql_admin(
                host,
                "SELECT tableowner FROM pg_tables WHERE tablename = 'restore_probe'",
                db="lvd_restore_check",
            )
            assert owner == "lvd_app"
        finally:
            psql_admin(host, "DROP DATABASE IF EXISTS lvd_restore_check")
