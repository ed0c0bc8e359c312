"""The stack checks: the verify step of molecule/stack, in order (pytest -x: each step
needs the last).

Before them, the scenario started the lab from nothing, converged it with site.yml (a
second converge changed nothing), deployed the second release with three hooks and
rolled back to the first, each while files/loadgen.py sent mixed GET/POST traffic through
lb1 (molecule/stack/side_effect.yml). Here: no request of either failed and the hooks ran
in order; what a user does through lb1; a Socket.IO client receives the live event through
nginx; the firewall lets each service port be reached by its clients only, sshd takes keys
only and never root, and lb1 refuses /metrics to others; Lynis rates every lab host 75 or
more, and the base role's README explains each suggestion left; a hooks map that names no hook point is refused; a release that cannot start stops
at the first host (which goes back; the other is never touched; the service keeps
answering); verify.yml passes.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
import socketio
from conftest import (
    ROOT,
    WORK,
    assert_no_failed_requests,
    make_broken_artifact,
    summarize_load,
)
from load import HTTP_URL, HTTPS_URL, LoadGenerator, admin_headers

PASSWORD = "stack-test-password-1"
# A deploy hook (deploy_hooks) that leaves a line per hook point on the host.
HOOK = Path(__file__).resolve().parent / "hooks" / "record.yml"
# The points the side effects' deploy hooks (molecule/stack/side_effect.yml), in order.
HOOK_POINTS = ("after_install", "before_rollout", "after_rollout")


# --- what the scenario's side effects left ----------------------------------------------


def test_the_deploy_under_load_failed_no_request(stack):
    result = LoadGenerator("deploy").summary()
    stack.record("load_deploy", summarize_load(result))
    assert_no_failed_requests(stack, result, "deploy")
    assert set(result["releases_seen"]) == {stack.v1, stack.v2}


def test_the_deploy_ran_the_operators_hooks_in_order_on_each_app_host(stack):
    for host in ("app1", "app2"):
        recorded = stack.host_command(host, "cat /var/tmp/lvd-deploy-hooks.log").splitlines()
        assert recorded == [f"{point} {stack.v2}" for point in HOOK_POINTS], (host, recorded)


def test_the_rollback_under_load_failed_no_request_and_left_the_first_release(stack):
    result = LoadGenerator("rollback").summary()
    stack.record("load_rollback", summarize_load(result))
    assert_no_failed_requests(stack, result, "rollback")
    assert set(result["releases_seen"]) == {stack.v1, stack.v2}
    assert stack.app_releases() == {"app1": stack.v1, "app2": stack.v1}


# --- what a user does through lb1 -----------------------------------------------------


@pytest.fixture(scope="module")
def user(lab_ca):
    """A new ingest account through lb1 (HTTPS), as the lab's registration policy (invite)
    has it: the first admin makes an invite, the newcomer registers with it and logs in."""
    email = f"stack-{uuid.uuid4().hex[:10]}@example.test"
    credentials = {"email": email, "password": PASSWORD}
    invite = requests.post(
        f"{HTTPS_URL}/api/invites",
        json={"role": "ingest"},
        headers=admin_headers(lab_ca),
        verify=lab_ca,
        timeout=15,
    )
    assert invite.status_code == 201, invite.text
    registered = requests.post(
        f"{HTTPS_URL}/auth/register",
        json={**credentials, "invite_code": invite.json()["code"]},
        verify=lab_ca,
        timeout=15,
    )
    assert registered.status_code == 202, registered.text
    login = requests.post(f"{HTTPS_URL}/auth/login", json=credentials, verify=lab_ca, timeout=15)
    assert login.status_code == 200, login.text
    return {**credentials, "token": login.json()["access_token"]}


@pytest.mark.parametrize("base", [HTTP_URL, HTTPS_URL])
def test_health_answers_through_lb1(stack, base, lab_ca):
    response = requests.get(f"{base}/health", verify=lab_ca, timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_dashboard_loads_with_its_static_files(stack, user, lab_ca):
    # verify on each call: a session's own setting loses to REQUESTS_CA_BUNDLE.
    session = requests.Session()
    first = session.get(f"{HTTPS_URL}/", allow_redirects=False, verify=lab_ca, timeout=10)
    assert first.status_code == 302 and "/login" in first.headers["Location"]
    page = session.get(f"{HTTPS_URL}/login", verify=lab_ca, timeout=10)
    assert page.status_code == 200 and 'name="csrf"' in page.text
    csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    login = session.post(
        f"{HTTPS_URL}/login",
        data={"csrf": csrf, "email": user["email"], "password": user["password"]},
        allow_redirects=False,
        verify=lab_ca,
        timeout=15,
    )
    assert login.status_code == 302, login.text
    dashboard = session.get(f"{HTTPS_URL}/", verify=lab_ca, timeout=10)
    assert dashboard.status_code == 200
    assert "dashboard.js" in dashboard.text
    for asset in ("/static/style.css", "/static/dashboard.js"):
        static = session.get(f"{HTTPS_URL}{asset}", verify=lab_ca, timeout=10)
        assert static.status_code == 200, asset
        assert "max-age=86400" in static.headers.get("Cache-Control", ""), static.headers


def test_a_user_posts_a_run_and_reads_the_summary(stack, user, lab_ca):
    headers = {"Authorization": f"Bearer {user['token']}"}
    suite = f"stack-{uuid.uuid4().hex[:8]}"
    run = {
        "suite": suite,
        "results": [{"name": "a", "status": "pass"}, {"name": "b", "status": "fail"}],
    }
    created = requests.post(
        f"{HTTPS_URL}/api/runs", json=run, headers=headers, verify=lab_ca, timeout=15
    )
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "failed"
    summary = requests.get(f"{HTTPS_URL}/api/summary", headers=headers, verify=lab_ca, timeout=15)
    assert summary.status_code == 200, summary.text
    suites = {row["suite"]: row for row in summary.json()["suites"]}
    assert suites[suite]["runs"] == 1
    assert suites[suite]["checks"] == 2 and suites[suite]["checks_passed"] == 1


def test_a_socketio_client_through_nginx_receives_the_live_event(stack, user, lab_ca):
    # engine.io reads the CA file for its WebSocket from the HTTP session it is given.
    http = requests.Session()
    http.verify = lab_ca
    client = socketio.Client(reconnection=False, http_session=http)
    events: queue.Queue = queue.Queue()
    client.on("run_created", events.put)
    client.connect(
        HTTPS_URL, auth={"token": user["token"]}, transports=["websocket"], wait_timeout=15
    )
    try:
        run = {"suite": "stack-live", "results": [{"name": "a", "status": "pass"}]}
        created = requests.post(
            f"{HTTPS_URL}/api/runs",
            json=run,
            headers={"Authorization": f"Bearer {user['token']}"},
            verify=lab_ca,
            timeout=15,
        )
        assert created.status_code == 201, created.text
        while True:
            event = events.get(timeout=30)
            if event["id"] == created.json()["id"]:
                break
        assert event["suite"] == "stack-live" and event["status"] == "passed"
    finally:
        client.disconnect()


# --- the host baseline (role base): firewall and sshd --------------------------------------

# Each service behind the load balancer: (its host, the port), and who must reach it.
SERVICES = {
    "gunicorn": ("app1", 8000),
    "postgresql": ("db1", 5432),
    "redis": ("cache1", 6379),
    # pgBackRest's TLS servers: the database host's for the repository host, and back.
    "pgbackrest on db1": ("db1", 8432),
    "pgbackrest on backup1": ("backup1", 8432),
}
# (service, client): True = the connection opens, False = the firewall drops it. The
# controller stands outside: it reaches the containers from the Docker bridge's gateway.
REACH = {
    ("gunicorn", "lb1"): True,
    ("gunicorn", "db1"): False,
    ("gunicorn", "cache1"): False,
    ("gunicorn", "controller"): False,
    ("postgresql", "app1"): True,
    ("postgresql", "lb1"): False,
    ("postgresql", "cache1"): False,
    ("postgresql", "controller"): False,
    ("redis", "app1"): True,
    ("redis", "lb1"): False,
    ("redis", "controller"): False,
    ("pgbackrest on db1", "backup1"): True,
    ("pgbackrest on db1", "app1"): False,
    ("pgbackrest on db1", "controller"): False,
    ("pgbackrest on backup1", "db1"): True,
    ("pgbackrest on backup1", "app1"): False,
    ("pgbackrest on backup1", "controller"): False,
}
# Seconds a connection attempt waits: a dropped SYN never gets an answer.
PROBE_TIMEOUT = 3
PROBE = (
    "import json, socket, sys\n"
    "out = {}\n"
    "for name, address, port in json.loads(sys.argv[1]):\n"
    "    try:\n"
    f"        socket.create_connection((address, port), {PROBE_TIMEOUT}).close()\n"
    "        out[name] = True\n"
    "    except OSError:\n"
    "        out[name] = False\n"
    "print(json.dumps(out))\n"
)


def probe(targets: list[tuple[str, str, int]]) -> dict[str, bool]:
    """Run PROBE here, on the controller."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(targets)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def lab_hosts(stack) -> dict[str, dict]:
    """{lab host: its private address and published SSH port}, from the inventory."""
    hosts = stack.adhoc(
        "all",
        "ansible.builtin.debug",
        {"msg": {"address": "{{ lvd_private_address }}", "ssh_port": "{{ ansible_port }}"}},
    )
    return {host: result["msg"] for host, result in hosts.items()}


def test_each_service_port_answers_its_clients_only(stack, lab_hosts):
    wanted: dict[str, list] = {}
    for service, client in REACH:
        host, port = SERVICES[service]
        wanted.setdefault(client, []).append((service, lab_hosts[host]["address"], port))
    reached = {"controller": probe(wanted.pop("controller"))}
    clients = sorted(wanted)
    results = stack.adhoc(
        ":".join(clients),
        "ansible.builtin.command",
        {
            "argv": [
                "/usr/bin/python3",
                "-c",
                PROBE,
                "{{ lvd_probe_targets[inventory_hostname] | to_json }}",
            ]
        },
        extra_vars={"lvd_probe_targets": wanted},
    )
    reached.update({host: json.loads(results[host]["stdout"]) for host in clients})
    wrong = {
        f"{service} from {client}": "opens" if reached[client][service] else "is dropped"
        for (service, client), expected in REACH.items()
        if reached[client][service] != expected
    }
    assert not wrong, f"against the firewall's rules, the connection: {wrong}"


# On an app host, with the release's own Python and its .env: connect to PostgreSQL and to
# Redis as the app does (TLS, the server checked against the internal CA), then with a CA
# that did not sign the server's certificate (the system's bundle), then without TLS.
# Prints {service: {"query": the URL's parameters, attempt: result or the error}}.
TLS_PROBE = (
    "import json, psycopg2, redis\n"
    "from dotenv import dotenv_values\n"
    "from sqlalchemy.engine import make_url\n"
    "env = dotenv_values('/srv/lvd/shared/.env')\n"
    "OTHER_CA = '/etc/ssl/certs/ca-certificates.crt'\n"
    "def postgresql(extra):\n"
    "    args = url.translate_connect_args(username='user', database='dbname')\n"
    "    connection = psycopg2.connect(**args, **extra, connect_timeout=5)\n"
    "    with connection.cursor() as cursor:\n"
    "        cursor.execute('SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()')\n"
    "        row = list(cursor.fetchone())\n"
    "    connection.close()\n"
    "    return row\n"
    "def cache(extra):\n"
    "    base = env['REDIS_URL'].split('?')[0]\n"
    "    if extra.get('tls') is False:\n"
    "        base = base.replace('rediss://', 'redis://', 1)\n"
    "        extra = {}\n"
    "    client = redis.Redis.from_url(base, socket_timeout=5, socket_connect_timeout=5, **extra)\n"
    "    return client.ping()\n"
    "out = {}\n"
    "url = make_url(env['DATABASE_URL'])\n"
    "query = dict(url.query)\n"
    "rurl = make_url(env['REDIS_URL'])\n"
    "rquery = dict(rurl.query)\n"
    "for service, connect, as_app, other_ca, plain, params in [\n"
    "    ('postgresql', postgresql, query, dict(query, sslrootcert=OTHER_CA), {'sslmode': 'disable'}, query),\n"
    "    ('redis', cache, rquery, dict(rquery, ssl_ca_certs=OTHER_CA), {'tls': False}, dict(rquery, scheme=rurl.drivername)),\n"
    "]:\n"
    "    out[service] = {'query': params}\n"
    "    for name, extra in [('as the app', as_app), ('another CA', other_ca), ('without TLS', plain)]:\n"
    "        try:\n"
    "            out[service][name] = connect(extra)\n"
    "        except Exception as error:\n"
    "            out[service][name] = type(error).__name__ + ': ' + str(error).strip()\n"
    "print(json.dumps(out))\n"
)


def tls_probe(stack) -> dict:
    """TLS_PROBE's findings, run on app1."""
    result = stack.adhoc(
        "app1",
        "ansible.builtin.command",
        {"argv": ["/srv/lvd/current/venv/bin/python", "-c", TLS_PROBE]},
    )["app1"]
    return json.loads(result["stdout"])


def test_postgresql_and_redis_take_the_app_over_verified_tls_only(stack):
    out = tls_probe(stack)
    db, cache = out["postgresql"], out["redis"]
    # The app checks each server's certificate and name against the internal CA.
    assert db["query"] == {"sslmode": "verify-full", "sslrootcert": "/etc/ssl/lvd/ca.crt"}, db
    assert cache["query"] == {
        "ssl_cert_reqs": "required",
        "ssl_ca_certs": "/etc/ssl/lvd/ca.crt",
        "scheme": "rediss",
    }, cache
    ssl, version = db["as the app"]
    assert ssl is True and version.startswith("TLSv1."), db
    assert cache["as the app"] is True, cache
    # A server certificate the trusted CA did not sign is refused by the client...
    assert "certificate verify failed" in db["another CA"], db
    assert "certificate verify failed" in cache["another CA"], cache
    # ...and a client without TLS, with the right user and password, by the server.
    assert "no pg_hba.conf entry" in db["without TLS"] and "no encryption" in db["without TLS"], db
    assert cache["without TLS"].startswith("ConnectionError"), cache


def served_serials(stack, lab_hosts) -> dict[str, str]:
    """The serial of the certificate PostgreSQL and Redis each serve, as app1 reads it."""
    db, cache = lab_hosts["db1"]["address"], lab_hosts["cache1"]["address"]
    read = "openssl s_client -CAfile /etc/ssl/lvd/ca.crt -verify_return_error {} </dev/null 2>/dev/null | openssl x509 -noout -serial"
    return {
        "postgresql": stack.host_command(
            "app1", read.format(f"-connect {db}:5432 -starttls postgres")
        ),
        "redis": stack.host_command("app1", read.format(f"-connect {cache}:6379")),
    }


def test_a_certificate_near_its_end_is_replaced_and_served_and_the_app_follows(stack, lab_hosts):
    before = served_serials(stack, lab_hosts)
    assert all(serial.startswith("serial=") for serial in before.values()), before
    # Issued for base_tls_valid_days (365): with a renewal window longer than that, every
    # certificate is "within N days of its end", as one is when the time comes.
    stack.playbook(
        "renew", "site.yml", "--limit", "dbservers:cacheservers", "-e", "base_tls_renew_days=400"
    )
    after = served_serials(stack, lab_hosts)
    assert all(serial.startswith("serial=") for serial in after.values()), after
    renewed = {service for service in before if before[service] != after[service]}
    assert renewed == {"postgresql", "redis"}, f"served before {before}, after {after}"
    # The app reaches both with the new certificates.
    out = tls_probe(stack)
    assert out["postgresql"]["as the app"][0] is True and out["redis"]["as the app"] is True, out


def ssh(lab_hosts, user: str, *options: str) -> subprocess.CompletedProcess:
    """`ssh USER@127.0.0.1 true` to lb1's published port, with the lab's known_hosts."""
    return subprocess.run(
        [
            "ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
            "-o", f"UserKnownHostsFile={ROOT / '.lab' / 'known_hosts'}",
            "-o", "StrictHostKeyChecking=yes", "-p", str(lab_hosts["lb1"]["ssh_port"]),
            *options, f"{user}@127.0.0.1", "true",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )  # fmt: skip


def test_sshd_offers_keys_only_and_refuses_root_even_with_a_good_key(stack, lab_hosts):
    key = str(ROOT / ".lab" / "id_ed25519")
    # Without a key, sshd names what it would take: public keys, never a password.
    no_key = ssh(lab_hosts, "deploy", "-o", "PubkeyAuthentication=no")
    assert no_key.returncode == 255
    assert "Permission denied (publickey)." in no_key.stderr, no_key.stderr
    assert ssh(lab_hosts, "deploy", "-i", key).returncode == 0
    # root holds the very key deploy logs in with, and is still refused.
    stack.host_command(
        "lb1", "test ! -e /root/.ssh/authorized_keys && cp ~deploy/.ssh/authorized_keys /root/.ssh/"
    )
    try:
        as_root = ssh(lab_hosts, "root", "-i", key)
    finally:
        stack.host_command("lb1", "rm /root/.ssh/authorized_keys")
    assert as_root.returncode == 255
    assert "Permission denied" in as_root.stderr, as_root.stderr


def test_metrics_through_lb1_are_refused_to_an_address_not_allowed(stack, lab_ca):
    response = requests.get(f"{HTTPS_URL}/metrics", verify=lab_ca, timeout=10)
    assert response.status_code == 403
    assert "lvd_" not in response.text and "http_request" not in response.text


AUDIT_DIR = ROOT / ".cache" / "audit"


def explained_lynis_tests() -> set[str]:
    """The Lynis test IDs roles/base/README.md explains in "What Lynis still suggests"."""
    readme = (ROOT / "roles" / "base" / "README.md").read_text()
    section = readme.split("## What Lynis still suggests", 1)[1].split("\n## ", 1)[0]
    return {
        line.split("|")[1].strip()
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| Lynis test")
    }


def test_lynis_rates_every_lab_host_75_or_more_and_the_readme_explains_what_is_left(
    stack, lab_hosts
):
    for host in lab_hosts:
        (AUDIT_DIR / f"{host}.json").unlink(missing_ok=True)
    run = stack.playbook("audit", "playbooks/audit.yml", check=False)
    reports = {host: json.loads((AUDIT_DIR / f"{host}.json").read_text()) for host in lab_hosts}
    scores = {host: report["hardening_index"] for host, report in reports.items()}
    stack.record("lynis_hardening_index", scores)
    assert run.returncode == 0, f"audit.yml failed: {scores}\n{run.tail()}"
    assert min(scores.values()) >= 75, scores
    unexplained = {
        f"{host}: {suggestion}"
        for host, report in reports.items()
        for suggestion in report["suggestions"]
        if suggestion.split("|", 1)[0] not in explained_lynis_tests()
    }
    assert not unexplained, (
        f"Lynis suggestions roles/base/README.md does not explain: {unexplained}"
    )


# --- deploys that must not go through ----------------------------------------------------


def test_a_deploy_hook_that_is_not_a_hook_point_stops_before_anything_changes(stack):
    hooks = {"after_everything": str(HOOK), "before_rollout": "hooks/relative.yml"}
    run = stack.playbook(
        "deploy-bad-hooks",
        "playbooks/deploy.yml",
        "-e",
        f"app_version={stack.refused}",
        "-e",
        json.dumps({"deploy_hooks": hooks}),
        check=False,
    )
    assert run.returncode != 0, run.tail()
    assert "deploy_hooks.after_everything" in run.output, run.tail()
    assert "deploy_hooks.before_rollout" in run.output, run.tail()
    assert stack.app_releases() == {"app1": stack.v1, "app2": stack.v1}
    assert not (ROOT / "dist" / f"lvd-{stack.refused}.tar.gz").exists()


def test_a_release_that_cannot_start_stops_at_the_first_host(stack, artifacts, lab_ca):
    broken = make_broken_artifact(ROOT / "dist" / f"lvd-{stack.v1}.tar.gz", stack.broken, WORK)
    history_before = stack.host_command("app2", "cat /srv/lvd/releases.log")
    load = LoadGenerator("broken").start(ca_file=lab_ca)
    try:
        run = stack.playbook(
            "deploy-broken",
            "playbooks/deploy.yml",
            "-e",
            f"app_version={stack.broken}",
            "-e",
            f"app_artifact={broken}",
            # The gate gives up sooner than in production: the outcome is the same.
            "-e",
            "gunicorn_app_health_retries=5",
            check=False,
        )
    finally:
        result = load.stop()
    stack.record("load_broken_deploy", summarize_load(result))
    assert run.returncode != 0, "the deploy of a release that cannot start succeeded"
    assert "The rollout stopped" in run.output, run.tail()
    recap = run.recap()
    assert recap["app1"]["failed"] == 1 and recap["app2"]["failed"] == 0, recap
    # app1 went back, app2 never switched: both still run v1 and answered throughout.
    assert stack.app_releases() == {"app1": stack.v1, "app2": stack.v1}
    assert_no_failed_requests(stack, result, "broken deploy")
    assert stack.host_command("app2", "cat /srv/lvd/releases.log") == history_before
    assert (
        stack.host_command(
            "app1", f"test -f /srv/lvd/releases/{stack.broken}/.failed && echo failed"
        )
        == "failed"
    )
    # Both hosts are back in the load balancer.
    upstream = stack.host_command("lb1", "cat /etc/nginx/conf.d/lvd-upstream.conf")
    assert " down;" not in upstream, upstream


# --- the seed's checklists --------------------------------------------------------------


def test_verify_passes(stack):
    stack.playbook("verify", "playbooks/verify.yml", "-e", "verify_smoke=true")
