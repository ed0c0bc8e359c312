"""Re-runs of the role against the converged host: bad input stops it before anything
changes, and a database holding other data is refused, untouched, without a new dump."""

from conftest import migrate_check, psql, run_playbook


def dumps(host):
    return host.check_output("ls /var/backups/postgresql/lvd/").split()


def test_bad_input_fails_in_argument_specs(host):
    rc, output, recap = run_playbook(host, "converge.yml", "-e", "migration_jobs=many")
    assert rc != 0
    assert "Validation of arguments failed" in output and "migration_jobs" in output
    assert recap["changed"] == 0


def test_out_of_range_input_fails_before_anything_changes(host):
    rc, output, recap = run_playbook(host, "converge.yml", "-e", "migration_segment_rows=10")
    assert rc != 0
    assert "migration_segment_rows (10) must be 100 or more" in output
    assert recap["changed"] == 0


def test_a_database_with_other_data_is_refused_and_left_alone(host):
    before = dumps(host)
    psql(host, "UPDATE validation_runs SET suite = 'edited by hand' WHERE id = 1")
    try:
        rc, output, recap = run_playbook(host, "converge.yml")
        assert rc != 0
        assert "holds different data (tables: validation_runs)" in output
        assert "migration_force: true" in output
        assert recap["changed"] == 0
        assert psql(host, "SELECT suite FROM validation_runs WHERE id = 1") == "edited by hand"
        assert dumps(host) == before
    finally:
        # The fixture's own value back (the SQLite copy still has it).
        original = host.check_output(
            "python3 -c %s",
            "import sqlite3; print(sqlite3.connect('/srv/lvd/shared/migration/source.db')"
            ".execute('SELECT suite FROM validation_runs WHERE id = 1').fetchone()[0])",
        )
        psql(host, f"UPDATE validation_runs SET suite = '{original}' WHERE id = 1")
    assert migrate_check(host)["status"] == "already_migrated"
