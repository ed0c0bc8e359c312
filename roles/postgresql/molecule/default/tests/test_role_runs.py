"""Re-runs of the role against the converged hosts (once for all of them):
bad input is stopped before it changes anything, and a rotated password is
applied."""

from conftest import own_address_of, pg_version_of, psql_admin, psql_tcp, run_playbook


def config_file(host, name):
    return host.file(f"/etc/postgresql/{pg_version_of(host)}/main/{name}").content_string


def assert_still_serving(host, scenario):
    assert psql_admin(host, "SHOW max_connections") == "60"
    login = psql_tcp(
        host, own_address_of(host), "lvd_app", scenario["lvd_test_app_password"], "lvd", "SELECT 1"
    )
    assert login.rc == 0, login.stderr


def test_bad_max_connections_fails_in_argument_specs(all_hosts, scenario):
    rc, output, recaps = run_playbook("converge.yml", "-e", "postgresql_max_connections=many")
    assert rc != 0
    assert "Validation of arguments failed" in output
    assert "postgresql_max_connections" in output
    for name, host in all_hosts.items():
        assert recaps[name]["failed"] == 1 and recaps[name]["changed"] == 0, name
        assert "max_connections = '60'" in config_file(host, "conf.d/90-ansible.conf")
        assert_still_serving(host, scenario)


def test_invalid_setting_is_caught_by_postgres_before_install(all_hosts, scenario):
    rc, output, recaps = run_playbook(
        "converge.yml",
        "--tags",
        "config",
        "-e",
        '{"postgresql_settings_extra": {"shared_buffers": "lots"}}',
    )
    assert rc != 0
    assert 'invalid value for parameter "shared_buffers"' in output
    for name, host in all_hosts.items():
        assert recaps[name]["failed"] == 1 and recaps[name]["changed"] == 0, name
        assert "shared_buffers = '256MB'" in config_file(host, "conf.d/90-ansible.conf")
        assert_still_serving(host, scenario)


def test_malformed_client_address_is_caught_before_install(all_hosts, scenario):
    rc, output, recaps = run_playbook(
        "converge.yml",
        "--tags",
        "config",
        "-e",
        '{"postgresql_hba_app_clients": ["10.0.0.300"]}',
    )
    assert rc != 0
    assert "bad address '10.0.0.300/32'" in output
    for name, host in all_hosts.items():
        assert recaps[name]["failed"] == 1 and recaps[name]["changed"] == 0, name
        hba = config_file(host, "pg_hba.conf")
        assert "10.0.0.300" not in hba
        assert own_address_of(host) in hba
        assert_still_serving(host, scenario)


def test_reloadable_change_is_applied_without_a_restart(all_hosts):
    started = {
        name: psql_admin(host, "SELECT pg_postmaster_start_time()")
        for name, host in all_hosts.items()
    }
    try:
        rc, output, recaps = run_playbook(
            "converge.yml", "--tags", "config", "-e", "postgresql_log_min_duration_statement=2s"
        )
        assert rc == 0, output
        for name, host in all_hosts.items():
            assert recaps[name]["changed"] >= 1, output
            assert psql_admin(host, "SHOW log_min_duration_statement") == "2s"
            assert psql_admin(host, "SELECT pg_postmaster_start_time()") == started[name]
    finally:
        rc, output, recaps = run_playbook("converge.yml", "--tags", "config")
    assert rc == 0, output
    for host in all_hosts.values():
        assert psql_admin(host, "SHOW log_min_duration_statement") == "250ms"


def test_rotated_password_is_applied_and_reported(all_hosts, scenario):
    old = scenario["lvd_test_app_password"]
    new = "rotated-password-for-tests-only"
    try:
        rc, output, recaps = run_playbook(
            "converge.yml", "--tags", "databases", "-e", f"lvd_test_app_password={new}"
        )
        assert rc == 0, output
        for name, host in all_hosts.items():
            # The password task of the role, and nothing else, changed.
            assert recaps[name]["changed"] == 1, output
            address = own_address_of(host)
            assert psql_tcp(host, address, "lvd_app", new, "lvd", "SELECT 1").rc == 0
            refused = psql_tcp(host, address, "lvd_app", old, "lvd", "SELECT 1")
            assert "password authentication failed" in refused.stderr
    finally:
        rc, output, recaps = run_playbook("converge.yml", "--tags", "databases")
    assert rc == 0, output
    for name, host in all_hosts.items():
        assert recaps[name]["changed"] == 1, output
        assert psql_tcp(host, own_address_of(host), "lvd_app", old, "lvd", "SELECT 1").rc == 0
