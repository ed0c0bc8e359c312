"""Backups you can restore (issue 17's acceptance), on the converged lab: pgBackRest on db1
archives WAL into the encrypted repository on backup1.

- playbooks/backup.yml takes a full backup; its time and the repository's size are recorded;
- restore.yml refuses, before anything changes: over the running cluster without
  restore_confirm, and a target time before the oldest backup;
- the point-in-time drill: runs posted through lb1, the time T and the runs' checksums
  taken, more runs posted and rows deleted directly in PostgreSQL, then
  restore.yml -e restore_target_time=T: the table matches T row for row, the app serves
  through lb1 with no failed request, and verify.yml passes;
- the replaced-host drill: db1's data directory wiped, restore.yml (the latest backup and
  all archived WAL): every run is back, and the app serves through lb1 again.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid

import requests
from conftest import assert_no_failed_requests, summarize_load
from load import HTTPS_URL, LoadGenerator, admin_headers

STANZA = "lvd"
DATA_DIR = "/var/lib/postgresql/15/main"
PSQL = "runuser -u postgres -- psql -d '{{ lvd_db_name }}' -AtF ' '"


def psql(stack, query: str) -> str:
    return stack.host_command("db1", f'{PSQL} -c "{query}"')


def checksums(stack) -> dict[str, str]:
    """{run id: md5 of the whole row and of its results}, for every run, read on db1."""
    out = psql(
        stack,
        "SELECT r.id, md5(r::text || coalesce((SELECT string_agg(v::text, ',' ORDER BY v.id)"
        " FROM validation_results v WHERE v.run_id = r.id), ''))"
        " FROM validation_runs r ORDER BY r.id",
    )
    return dict(line.split() for line in out.splitlines())


def post_runs(headers: dict, ca: str, count: int, suite: str) -> list[int]:
    ids = []
    for n in range(count):
        answer = requests.post(
            f"{HTTPS_URL}/api/runs",
            json={
                "suite": suite,
                "results": [{"name": f"check {n}", "status": "pass" if n % 3 else "fail"}],
            },
            headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
            verify=ca,
            timeout=15,
        )
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])
    return ids


def said(run) -> str:
    """A playbook run's output with the YAML callback's line wrapping undone."""
    return " ".join(run.output.split())


def serves_without_failure(stack, ca: str, step: str, seconds: int = 10) -> None:
    load = LoadGenerator(step).start(ca_file=ca)
    time.sleep(seconds)
    result = load.stop()
    stack.record(f"load_{step}", summarize_load(result))
    assert_no_failed_requests(stack, result, step)


def test_a_backup_on_demand_lands_in_the_encrypted_repository(stack):
    run = stack.playbook("backup-full", "playbooks/backup.yml", "-e", "backup_type=full")
    assert "of stanza lvd is in the repository on backup1" in said(run)
    info = stack.host_command(
        "backup1", f"runuser -u postgres -- pgbackrest --stanza={STANZA} info"
    )
    assert "cipher: aes-256-cbc" in info
    assert "full backup" in info
    # What an attacker with the disk reads: OpenSSL's salted ciphertext, not a manifest.
    head = stack.host_command(
        "backup1", f"head -c 8 /var/lib/pgbackrest/backup/{STANZA}/backup.info"
    )
    assert head == "Salted__"
    size = stack.host_command("backup1", "du -sb /var/lib/pgbackrest | cut -f1")
    stack.record("backup_repository_bytes", int(size))


def test_restore_refuses_before_anything_changes(stack, lab_ca):
    before = checksums(stack)
    unconfirmed = stack.playbook("restore-unconfirmed", "playbooks/restore.yml", check=False)
    assert unconfirmed.returncode != 0
    assert "confirm with the host's name: -e restore_confirm=db1" in said(unconfirmed)
    too_early = stack.playbook(
        "restore-too-early",
        "playbooks/restore.yml",
        "-e",
        "restore_target_time=2001-01-01T00:00:00+00:00",
        "-e",
        "restore_confirm=db1",
        check=False,
    )
    assert too_early.returncode != 0
    assert "is before the oldest backup" in said(too_early)
    for run in (unconfirmed, too_early):
        assert "Nothing was restored" in said(run)
        assert "Drain every app host" not in run.output
    assert checksums(stack) == before
    assert requests.get(f"{HTTPS_URL}/health/ready", verify=lab_ca, timeout=10).status_code == 200


def test_a_point_in_time_restore_brings_the_runs_back_as_they_were(stack, lab_ca):
    headers = admin_headers(lab_ca)
    post_runs(headers, lab_ca, 20, "backup-drill-before")
    time.sleep(1)
    target = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    at_target = checksums(stack)
    time.sleep(1)
    later = post_runs(headers, lab_ca, 10, "backup-drill-after")
    deleted = psql(
        stack,
        "WITH gone AS (DELETE FROM validation_runs WHERE id IN"
        " (SELECT id FROM validation_runs ORDER BY id LIMIT 15) RETURNING id)"
        " SELECT count(*) FROM gone",
    )
    assert deleted == "15"
    assert checksums(stack) != at_target

    stack.playbook(
        "restore-pitr",
        "playbooks/restore.yml",
        "-e",
        f"restore_target_time={target}",
        "-e",
        "restore_confirm=db1",
    )

    restored = checksums(stack)
    assert restored.keys() == at_target.keys(), (
        f"missing: {sorted(at_target.keys() - restored.keys())[:10]},"
        f" extra: {sorted(restored.keys() - at_target.keys())[:10]}"
    )
    changed = [run for run, digest in at_target.items() if restored[run] != digest]
    assert not changed, f"runs that differ from time T: {changed[:10]}"
    assert not set(map(str, later)) & restored.keys()
    serves_without_failure(stack, lab_ca, "after-pitr-restore")
    stack.playbook("verify-after-restore", "playbooks/verify.yml")


def test_a_wiped_data_directory_comes_back_from_the_latest_backup_and_wal(stack, lab_ca):
    post_runs(admin_headers(lab_ca), lab_ca, 5, "backup-drill-replaced")
    before = checksums(stack)
    # Everything written so far is in a WAL segment the repository holds (what was not yet
    # archived when a real host dies is lost: up to archive_timeout, 60 s).
    stack.host_command("db1", f"runuser -u postgres -- pgbackrest --stanza={STANZA} check")
    stack.host_command(
        "db1", f"systemctl stop postgresql && rm -rf {DATA_DIR} && test ! -e {DATA_DIR}"
    )

    # No cluster in the way: no confirmation needed.
    stack.playbook("restore-latest", "playbooks/restore.yml")

    assert checksums(stack) == before
    serves_without_failure(stack, lab_ca, "after-latest-restore")
