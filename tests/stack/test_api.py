"""The API under attack and under faults, through lb1 on the converged lab (issue 16's
acceptance), before the other stack checks (they find the lab healthy again):

- registering a known address answers exactly as an unknown one;
- a viewer API token is refused a run (403), an ingest token posts one (201);
- PostgreSQL restarted under 60 requests/s of mixed traffic: no 500, every POST one run;
- Redis stopped for 20 s, one app host's processes killed and started again, nginx
  reloaded 5 times, under the same load: no failed request, no lost or duplicate POST;
- schemathesis (tests/stack/fuzz.py) as the first admin: at least 1,500 requests, every
  check, no server error, nothing off the OpenAPI document.

The load is files/loadgen.py through the app's client helper (app/client.py): every POST
carries an Idempotency-Key and is sent again with it when its connection failed or the
answer was 502/503/504; reads likewise. Its runs carry the step's name as environment, so
the database is counted against the acknowledged POSTs.
"""

from __future__ import annotations

import time
import uuid

import requests
from conftest import ROOT, WORK, assert_no_failed_requests, summarize_load
from fuzz import print_summary, run_fuzz
from load import HTTPS_URL, LoadGenerator, admin_headers, lab_admin

SCHEMATHESIS = ROOT / ".venv-fuzz" / "bin" / "schemathesis"
# The floor for one fuzz run.
FUZZ_REQUESTS_AT_LEAST = 1500


def post_run(token: str, ca: str) -> requests.Response:
    return requests.post(
        f"{HTTPS_URL}/api/runs",
        json={"suite": "stack-tokens", "results": [{"name": "a", "status": "pass"}]},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())},
        verify=ca,
        timeout=15,
    )


def test_registering_a_known_address_answers_exactly_as_an_unknown_one(lab_ca):
    admin = admin_headers(lab_ca)

    def register(email: str) -> requests.Response:
        invite = requests.post(
            f"{HTTPS_URL}/api/invites", headers=admin, json={}, verify=lab_ca, timeout=15
        )
        assert invite.status_code == 201, invite.text
        return requests.post(
            f"{HTTPS_URL}/auth/register",
            json={
                "email": email,
                "password": uuid.uuid4().hex,
                "invite_code": invite.json()["code"],
            },
            verify=lab_ca,
            timeout=15,
        )

    known = register(lab_admin()[0])
    unknown = register(f"nobody-{uuid.uuid4().hex[:8]}@example.test")
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    # The known account is untouched: its own password still logs in.
    assert admin_headers(lab_ca)


def test_a_viewer_token_is_refused_a_run_and_an_ingest_token_posts_one(lab_ca):
    admin = admin_headers(lab_ca)
    tokens = {}
    for role in ("viewer", "ingest"):
        made = requests.post(
            f"{HTTPS_URL}/api/tokens",
            json={"name": f"stack {role}", "role": role, "expires_in_days": 1},
            headers={**admin, "Idempotency-Key": str(uuid.uuid4())},
            verify=lab_ca,
            timeout=15,
        )
        assert made.status_code == 201, made.text
        tokens[role] = made.json()
    assert post_run(tokens["viewer"]["token"], lab_ca).status_code == 403
    assert post_run(tokens["ingest"]["token"], lab_ca).status_code == 201
    listed = requests.get(f"{HTTPS_URL}/api/tokens", headers=admin, verify=lab_ca, timeout=15)
    used = {t["id"]: t["last_used_at"] for t in listed.json()}
    assert used[tokens["ingest"]["id"]] is not None and used[tokens["viewer"]["id"]] is not None


def runs_in_database(stack, tag: str) -> dict[str, int]:
    """{git_ref: how many runs} of the runs a load run TAG posted, read on db1."""
    query = (
        "SELECT git_ref, count(*) FROM validation_runs"
        f" WHERE environment = '{tag}' GROUP BY git_ref"
    )
    out = stack.host_command(
        "db1", f"""runuser -u postgres -- psql -d '{{{{ lvd_db_name }}}}' -AtF ' ' -c "{query}" """
    )
    return {ref: int(count) for ref, count in (line.split() for line in out.splitlines())}


def assert_each_post_made_one_run(stack, load: dict) -> None:
    posts = load["posts"]
    in_database = runs_in_database(stack, posts["tag"])
    acknowledged = posts["acknowledged"]
    assert posts["sent"] > 0, "the load posted nothing"
    assert len(acknowledged) == posts["sent"], f"{posts['sent'] - len(acknowledged)} POSTs lost"
    duplicates = {ref: n for ref, n in in_database.items() if n > 1}
    assert not duplicates, f"runs created more than once: {duplicates}"
    missing = sorted(set(acknowledged) - set(in_database))
    assert not missing, f"acknowledged POSTs without their run: {missing[:10]}"
    unacknowledged = sorted(set(in_database) - set(acknowledged))
    assert not unacknowledged, f"runs no POST was told about: {unacknowledged[:10]}"


def wait_until_ready(stack) -> None:
    """Both app hosts answer /health/ready on their own address (database and Redis up)."""
    last = None
    for _ in range(30):
        try:
            stack.adhoc(
                "appservers",
                "ansible.builtin.uri",
                {"url": "http://{{ lvd_private_address }}:{{ lvd_app_port }}/health/ready"},
            )
            return
        except AssertionError as exc:  # refused, or 503: not yet
            last = exc
        time.sleep(2)
    raise AssertionError(f"the app hosts are not ready again: {last}")


def test_a_postgresql_restart_under_load_gives_no_500_and_each_post_one_run(stack, lab_ca):
    load = LoadGenerator("pg-restart").start(ca_file=lab_ca)
    stack.host_command("db1", "systemctl restart postgresql")
    time.sleep(10)
    result = load.stop()
    stack.record("load_pg_restart", summarize_load(result))
    assert "500" not in result["by_status"], result["failure_samples"]
    assert_no_failed_requests(stack, result, "PostgreSQL restart")
    assert_each_post_made_one_run(stack, result)


def test_redis_down_an_app_host_killed_and_nginx_reloads_fail_no_request(stack, lab_ca):
    load = LoadGenerator("faults").start(ca_file=lab_ca)
    stack.host_command(
        "cache1", "systemctl stop redis-server && sleep 20 && systemctl start redis-server"
    )
    # The host's app dies at once (SIGKILL, requests in flight lost) and its port closes,
    # then it starts again. (The container itself is not killed: Docker would give it
    # another address on start, which the lab's inventory does not follow.)
    stack.host_command(
        "app1",
        "systemctl kill --signal=SIGKILL lvd-web.service lvd-worker.service;"
        " systemctl stop lvd-web.socket lvd-web.service lvd-worker.service;"
        " sleep 10; systemctl start lvd-web.socket lvd-web.service lvd-worker.service",
    )
    stack.host_command("lb1", "for i in 1 2 3 4 5; do systemctl reload nginx; sleep 2; done")
    time.sleep(5)
    result = load.stop()
    stack.record("load_faults", summarize_load(result))
    assert_no_failed_requests(stack, result, "Redis down, app host killed, nginx reloads")
    assert_each_post_made_one_run(stack, result)
    wait_until_ready(stack)


def test_the_fuzzer_finds_no_server_error_and_nothing_off_the_document(stack, lab_ca, capsys):
    email, password = lab_admin()
    summary = run_fuzz(
        HTTPS_URL, lab_ca, email, password, WORK / "fuzz", schemathesis=str(SCHEMATHESIS)
    )
    stack.record("fuzz", {k: v for k, v in summary.items() if k != "failures_by_check"})
    with capsys.disabled():
        print()
        print_summary(summary)
    assert summary["requests"] >= FUZZ_REQUESTS_AT_LEAST, summary["requests_by_phase"]
    assert summary["responses_by_status_class"].get("5xx", 0) == 0
    assert not summary["failures_by_check"], (
        f"schemathesis found failures (reproducers in {WORK / 'fuzz' / 'summary.json'}):"
        f" {sorted(summary['failures_by_check'])}"
    )
    assert not summary["errors"], summary["errors"]
    wait_until_ready(stack)
