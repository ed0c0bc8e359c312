"""What the role promises on a single box: WAL archived into an encrypted repository that
holds a full backup, the timers, a point-in-time restore through the role's entry point,
and the refusals that come before anything changes."""

import datetime as dt
import json
import re
import time

from conftest import STANZA, entry, pgbackrest, said, sql


def info(host) -> dict:
    return json.loads(pgbackrest(host, "--output=json", "info").stdout)[0]


def test_the_repository_is_encrypted_and_holds_a_full_backup(host):
    stanza = info(host)
    assert stanza["status"]["message"] == "ok"
    assert stanza["cipher"] == "aes-256-cbc"
    assert [backup["type"] for backup in stanza["backup"]][:1] == ["full"]
    # On disk the repository's files are OpenSSL ciphertext, not pgBackRest's text.
    head = host.check_output(f"head -c 8 /var/lib/pgbackrest/backup/{STANZA}/backup.info")
    assert head == "Salted__"
    conf = host.file("/etc/pgbackrest.conf")
    assert (conf.user, conf.group, conf.mode) == ("root", "postgres", 0o640)
    assert "repo1-cipher-pass=" in conf.content_string


def test_postgresql_archives_into_the_repository(host):
    assert sql(host, "SHOW archive_mode") == "on"
    assert "archive-push" in sql(host, "SHOW archive_command")
    check = pgbackrest(host, "check")
    assert check.rc == 0, check.stderr
    assert int(sql(host, "SELECT archived_count FROM pg_stat_archiver")) > 0


def test_full_and_differential_backups_run_from_timers(host):
    for kind, calendar in (("full", "Sun *-*-* 02:00:00"), ("diff", "Mon..Sat *-*-* 02:00:00")):
        timer = host.service(f"pgbackrest-backup-{kind}.timer")
        assert timer.is_enabled and timer.is_running
        shown = host.check_output(f"systemctl cat pgbackrest-backup-{kind}.timer")
        assert f"OnCalendar={calendar}" in shown
        assert f"Unit=pgbackrest-backup@{kind}.service" in shown


def test_a_point_in_time_restore_brings_back_the_rows_of_that_moment(host):
    sql(host, "DROP TABLE IF EXISTS drill; CREATE TABLE drill (n int PRIMARY KEY, word text)")
    sql(host, "INSERT INTO drill SELECT n, md5(n::text) FROM generate_series(1, 100) n")
    backup = entry(host, "backup", backup_type="incr")
    assert backup.returncode == 0, backup.stdout[-3000:]
    time.sleep(1)
    target = dt.datetime.now(dt.UTC).isoformat()
    before = sql(host, "SELECT md5(string_agg(n || word, ',' ORDER BY n)) FROM drill")
    time.sleep(1)
    sql(host, "DELETE FROM drill WHERE n > 50; INSERT INTO drill VALUES (1000, 'later')")

    restore = entry(
        host,
        "restore",
        backup_restore_target_time=target,
        backup_restore_confirm=host.backend.get_hostname(),
    )
    assert restore.returncode == 0, restore.stdout[-3000:]
    assert sql(host, "SELECT md5(string_agg(n || word, ',' ORDER BY n)) FROM drill") == before
    assert sql(host, "SELECT pg_is_in_recovery()") == "f"
    assert pgbackrest(host, "check").rc == 0


def test_a_restore_over_a_running_cluster_needs_the_hosts_name(host):
    refused = entry(host, "restore")
    assert refused.returncode != 0
    assert "confirm with the host's name" in said(refused)
    assert "Nothing was restored" in said(refused)
    assert host.service("postgresql").is_running
    assert sql(host, "SELECT 1") == "1"


def test_restore_refuses_a_time_it_cannot_reach(host):
    name = host.backend.get_hostname()
    for when, reason in (
        ("2001-01-01T00:00:00+00:00", "is before the oldest backup"),
        ("2999-01-01T00:00:00+00:00", "is in the future"),
        ("2026-12-08T01:00:00", "has no zone offset"),
    ):
        refused = entry(
            host, "restore", backup_restore_target_time=when, backup_restore_confirm=name
        )
        assert refused.returncode != 0
        assert reason in said(refused), said(refused)[-2000:]


def test_a_backup_of_an_unknown_stanza_is_refused_by_name(host):
    refused = entry(host, "backup", backup_stanza="nosuch")
    assert refused.returncode != 0
    assert "Stanza nosuch is missing from the repository" in said(refused)
    assert "No backup was taken" in said(refused)


def test_a_bad_input_fails_before_the_configuration_changes(host):
    conf = host.file("/etc/pgbackrest.conf").content_string
    refused = entry(host, "main", backup_compress_type="brotli")
    assert refused.returncode != 0
    assert "value of backup_compress_type must be one of" in said(refused)
    assert host.file("/etc/pgbackrest.conf").content_string == conf


def test_a_named_backup_is_restored_as_it_was_when_it_ended(host):
    sql(host, "DROP TABLE IF EXISTS named; CREATE TABLE named (n int PRIMARY KEY)")
    sql(host, "INSERT INTO named SELECT generate_series(1, 10)")
    backup = entry(host, "backup", backup_type="diff")
    assert backup.returncode == 0, said(backup)[-3000:]
    label = re.search(r"label=(\S+?)\"?$", backup.stdout, re.MULTILINE).group(1)
    sql(host, "INSERT INTO named SELECT generate_series(11, 20)")

    unknown = entry(
        host,
        "restore",
        backup_restore_set="20000101-000000F",
        backup_restore_confirm=host.backend.get_hostname(),
    )
    assert unknown.returncode != 0
    assert "is not a backup of stanza drill" in said(unknown)

    restore = entry(
        host,
        "restore",
        backup_restore_set=label,
        backup_restore_confirm=host.backend.get_hostname(),
    )
    assert restore.returncode == 0, said(restore)[-3000:]
    assert sql(host, "SELECT count(*), max(n) FROM named") == "10|10"
