"""The server runs, as its own user, with the configuration the role templated."""

from conftest import psql_admin


def test_cluster_runs_and_starts_at_boot(host, pg_version):
    assert host.service(f"postgresql@{pg_version}-main").is_running
    assert host.service("postgresql").is_enabled


def test_server_processes_run_as_postgres(host):
    postmasters = host.process.filter(comm="postgres")
    assert postmasters
    assert {p.user for p in postmasters} == {"postgres"}


def test_version_follows_the_release(host, pg_version):
    version = psql_admin(host, "SHOW server_version_num")
    assert int(version) // 10000 == pg_version


def test_settings_in_effect_are_the_templated_ones(host, own_address):
    # postgresql_memory_mb: 1024, 40 app connections + 20 headroom (molecule.yml).
    expected = {
        "shared_buffers": "256MB",
        "effective_cache_size": "768MB",
        "maintenance_work_mem": "64MB",
        "work_mem": "4MB",
        "max_connections": "60",
        "listen_addresses": f"localhost,{own_address}",
        "password_encryption": "scram-sha-256",
        "shared_preload_libraries": "pg_stat_statements",
        "log_min_duration_statement": "250ms",
        "log_lock_waits": "on",
    }
    names = ",".join(f"'{name}'" for name in expected)
    rows = psql_admin(
        host, f"SELECT name || '=' || current_setting(name) FROM unnest(ARRAY[{names}]) AS name"
    )
    actual = dict(row.split("=", 1) for row in rows.splitlines())
    assert actual == expected


def test_every_templated_setting_is_applied(host, pg_version):
    dropin = f"/etc/postgresql/{pg_version}/main/conf.d/90-ansible.conf"
    rows = psql_admin(
        host,
        "SELECT name || ':' || applied || ':' || coalesce(error, '')"
        f" FROM pg_file_settings WHERE sourcefile = '{dropin}'",
    ).splitlines()
    assert len(rows) >= 10
    assert all(row.endswith(":true:") for row in rows), rows
    # The restart handler ran: nothing waits for one.
    assert psql_admin(host, "SELECT count(*) FROM pg_settings WHERE pending_restart") == "0"


def test_pg_stat_statements_collects_in_the_app_database(host):
    assert psql_admin(host, "SELECT count(*) >= 0 FROM pg_stat_statements", db="lvd") == "t"


def test_config_files_belong_to_postgres(host, pg_version):
    hba = host.file(f"/etc/postgresql/{pg_version}/main/pg_hba.conf")
    assert (hba.user, hba.group, hba.mode) == ("postgres", "postgres", 0o640)
    data = host.file(f"/var/lib/postgresql/{pg_version}/main")
    assert (data.user, data.mode) == ("postgres", 0o700)
    # acl lets Ansible become the unprivileged postgres user.
    assert host.package("acl").is_installed
