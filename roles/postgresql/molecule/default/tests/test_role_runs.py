"""Re-runs of the role against the converged host: bad input is stopped
before it changes anything, and a rotated password is applied."""

from conftest import psql_admin, psql_tcp, run_playbook


def dropin_checksum(host, pg_version):
    return host.file(f"/etc/postgresql/{pg_version}/main/conf.d/90-ansible.conf").sha256sum


def hba_checksum(host, pg_version):
    return host.file(f"/etc/postgresql/{pg_version}/main/pg_hba.conf").sha256sum


def assert_still_serving(host, own_address, scenario):
    assert psql_admin(host, "SHOW max_connections") == "60"
    login = psql_tcp(
        host, own_address, "lvd_app", scenario["lvd_test_app_password"], "lvd", "SELECT 1"
    )
    assert login.rc == 0, login.stderr


def test_bad_max_connections_fails_in_argument_specs(host, pg_version, own_address, scenario):
    before = dropin_checksum(host, pg_version)
    rc, output, recap = run_playbook(host, "converge.yml", "-e", "postgresql_max_connections=many")
    assert rc != 0
    assert "Validation of arguments failed" in output
    assert "postgresql_max_connections" in output
    assert recap["changed"] == 0
    assert dropin_checksum(host, pg_version) == before
    assert_still_serving(host, own_address, scenario)


def test_invalid_setting_is_caught_by_postgres_before_install(
    host, pg_version, own_address, scenario
):
    before = dropin_checksum(host, pg_version)
    rc, output, recap = run_playbook(
        host,
        "converge.yml",
        "--tags",
        "config",
        "-e",
        '{"postgresql_settings_extra": {"shared_buffers": "lots"}}',
    )
    assert rc != 0
    assert 'invalid value for parameter "shared_buffers"' in output
    assert recap["changed"] == 0
    assert dropin_checksum(host, pg_version) == before
    assert_still_serving(host, own_address, scenario)


def test_malformed_client_address_is_caught_before_install(host, pg_version, own_address, scenario):
    before = hba_checksum(host, pg_version)
    rc, output, recap = run_playbook(
        host,
        "converge.yml",
        "--tags",
        "config",
        "-e",
        '{"postgresql_hba_app_clients": ["10.0.0.300"]}',
    )
    assert rc != 0
    assert "bad address '10.0.0.300/32'" in output
    assert recap["changed"] == 0
    assert hba_checksum(host, pg_version) == before
    assert_still_serving(host, own_address, scenario)


def test_rotated_password_is_applied_and_reported(host, own_address, scenario):
    old = scenario["lvd_test_app_password"]
    new = "rotated-password-for-tests-only"
    try:
        rc, output, recap = run_playbook(
            host, "converge.yml", "--tags", "databases", "-e", f"lvd_test_app_password={new}"
        )
        assert rc == 0, output
        assert recap["changed"] == 1, output
        assert psql_tcp(host, own_address, "lvd_app", new, "lvd", "SELECT 1").rc == 0
        refused = psql_tcp(host, own_address, "lvd_app", old, "lvd", "SELECT 1")
        assert "password authentication failed" in refused.stderr
    finally:
        rc, output, recap = run_playbook(host, "converge.yml", "--tags", "databases")
    assert rc == 0, output
    assert recap["changed"] == 1, output
    assert psql_tcp(host, own_address, "lvd_app", old, "lvd", "SELECT 1").rc == 0
