"""Who may connect, from where, and how: pg_hba.conf and the roles in action."""

from conftest import psql_admin, psql_tcp


def app_password(scenario):
    return scenario["lvd_test_app_password"]


def test_app_user_logs_in_over_tcp_and_creates_a_table(host, scenario, own_address):
    result = psql_tcp(
        host,
        own_address,
        "lvd_app",
        app_password(scenario),
        "lvd",
        "CREATE TABLE IF NOT EXISTS access_probe (id int);"
        " INSERT INTO access_probe VALUES (1); SELECT current_user",
    )
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "lvd_app"


def test_app_user_owns_its_database_and_is_no_superuser(host):
    owner = psql_admin(
        host, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'lvd'"
    )
    assert owner == "lvd_app"
    flags = psql_admin(
        host,
        "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = 'lvd_app'",
    )
    assert flags == "f|f|f"


def test_a_client_address_not_in_the_list_is_refused(host, scenario, own_address):
    # The server listens on 127.0.0.1 too, but loopback is no application server.
    # TLS without the name check: the certificate names the container's address only.
    refused = psql_tcp(
        host, "127.0.0.1", "lvd_app", app_password(scenario), "lvd", "SELECT 1", sslmode="require"
    )
    assert refused.rc != 0
    assert 'no pg_hba.conf entry for host "127.0.0.1"' in refused.stderr
    # ... while the same login from the listed address works.
    allowed = psql_tcp(host, own_address, "lvd_app", app_password(scenario), "lvd", "SELECT 1")
    assert allowed.rc == 0, allowed.stderr


def test_the_app_user_connects_over_verified_tls_and_never_without_it(
    host, scenario, own_address
):
    over_tls = psql_tcp(
        host,
        own_address,
        "lvd_app",
        app_password(scenario),
        "lvd",
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    assert over_tls.rc == 0, over_tls.stderr
    assert over_tls.stdout.strip() == "t"
    plain = psql_tcp(
        host, own_address, "lvd_app", app_password(scenario), "lvd", "SELECT 1", sslmode="disable"
    )
    assert plain.rc != 0
    assert "no pg_hba.conf entry" in plain.stderr and "no encryption" in plain.stderr, plain.stderr


def test_allowed_address_reaches_only_the_managed_database(host, scenario, own_address):
    result = psql_tcp(host, own_address, "lvd_app", app_password(scenario), "postgres", "SELECT 1")
    assert result.rc != 0
    assert "no pg_hba.conf entry" in result.stderr


def test_wrong_password_is_refused(host, own_address):
    result = psql_tcp(host, own_address, "lvd_app", "not-the-password", "lvd", "SELECT 1")
    assert result.rc != 0
    assert "password authentication failed" in result.stderr


def test_rule_set_is_peer_for_postgres_and_scram_for_the_app(host, own_address):
    rules = psql_admin(
        host,
        "SELECT type || ' ' || array_to_string(database, ',') || ' '"
        " || array_to_string(user_name, ',') || ' ' || coalesce(address, '-') || ' ' || auth_method"
        " FROM pg_hba_file_rules ORDER BY line_number",
    ).splitlines()
    assert rules == [
        "local all postgres - peer",
        f"hostssl lvd lvd_app,lvd_reader {own_address} scram-sha-256",
        "hostssl lvd lvd_app,lvd_reader 192.0.2.10 scram-sha-256",
    ]


def test_md5_password_login_is_refused(host, scenario, own_address):
    """A role whose password is stored as md5 cannot log in: only SCRAM is offered."""
    password = app_password(scenario)
    verifier = psql_admin(host, "SELECT rolpassword FROM pg_authid WHERE rolname = 'lvd_app'")
    assert verifier.startswith("SCRAM-SHA-256$")
    try:
        psql_admin(
            host,
            f"SET password_encryption = 'md5'; ALTER ROLE lvd_app PASSWORD '{password}'",
        )
        assert (
            psql_admin(
                host, "SELECT rolpassword LIKE 'md5%' FROM pg_authid WHERE rolname = 'lvd_app'"
            )
            == "t"
        )
        refused = psql_tcp(host, own_address, "lvd_app", password, "lvd", "SELECT 1")
        assert refused.rc != 0
        assert "password authentication failed" in refused.stderr
    finally:
        psql_admin(host, f"ALTER ROLE lvd_app PASSWORD '{password}'")
    assert psql_tcp(host, own_address, "lvd_app", password, "lvd", "SELECT 1").rc == 0


def test_public_cannot_connect_to_the_app_database(host):
    assert psql_admin(host, "SELECT has_database_privilege('public', 'lvd', 'CONNECT')") == "f"
    assert psql_admin(host, "SELECT has_database_privilege('lvd_reader', 'lvd', 'CONNECT')") == "t"


def test_reader_sees_new_tables_of_the_app_user(host, scenario, own_address):
    created = psql_tcp(
        host,
        own_address,
        "lvd_app",
        app_password(scenario),
        "lvd",
        "CREATE TABLE IF NOT EXISTS reader_probe (id int); INSERT INTO reader_probe VALUES (7)",
    )
    assert created.rc == 0, created.stderr
    read = psql_tcp(
        host,
        own_address,
        "lvd_reader",
        scenario["lvd_test_reader_password"],
        "lvd",
        "SELECT max(id) FROM reader_probe",
    )
    assert read.rc == 0, read.stderr
    assert read.stdout.strip() == "7"
    write = psql_tcp(
        host,
        own_address,
        "lvd_reader",
        scenario["lvd_test_reader_password"],
        "lvd",
        "INSERT INTO reader_probe VALUES (8)",
    )
    assert write.rc != 0
    assert "permission denied" in write.stderr
