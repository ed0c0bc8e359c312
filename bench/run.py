#!/usr/bin/env python3
"""Benchmarks of the converged lab (`make bench`); results go to bench/results/.

Benchmarks, not tests: nothing here passes or fails on a number. Each measurement is
reported beside a reference measured in the same run, on the same machine, so the
ratio means something on a 2-core VM shared by five containers and the load generator.

  proxy    nginx -> gunicorn /health (wrk through lb1) against gunicorn served
           directly (wrk on both app hosts at once, summed). Target: ratio >= 0.75.
  traffic  the dashboard's traffic mix (bench/locustfile.py) through lb1 at 500/min
           and at 50,000/min: P50/P95/P99, failures, and the summary cache's hit
           ratio read from each app host's /metrics before and after.
  ansible  on the converged lab: site.yml with nothing to change and a rolling deploy of
           a new release to both app hosts, each with ansible.cfg's strategy (Mitogen)
           and with Ansible's stock one as the reference (targets 15 s and 35 s); then
           postgresql + redis + nginx on a fresh container of their own, first converge
           and re-run, against geerlingguy's roles (../shared/anchors) in the same run
           (targets: 0.6x and 0.5x of theirs). Also the last `make test`'s time table.

proxy, traffic and ansible need the lab up and converged: `make bench` runs `make demo` first.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "stack"))
from ansible_run import run_playbook
from load import LAB_ADMIN_PASSWORD_FILE, lab_admin

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
VENV = ROOT / ".venv" / "bin"
DOCKER = "/usr/bin/docker"
LB_URL = f"http://127.0.0.1:{os.environ.get('LAB_HTTP_PORT', '8080')}"


def run(cmd: list[str], **kwargs) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kwargs).stdout


def app_backends() -> list[str]:
    """host:port of gunicorn on each app host, from the inventory and the engine."""
    out = run(
        [
            str(VENV / "ansible"),
            "-i",
            "inventories/lab",
            "appservers",
            "-o",
            "-m",
            "ansible.builtin.debug",
            "-a",
            "var=gunicorn_app_port",
        ],
        cwd=ROOT,
    )
    backends = []
    for line in out.splitlines():
        host, _, payload = line.partition(" | SUCCESS => ")
        port = json.loads(payload)["gunicorn_app_port"]
        address = run(
            [
                DOCKER,
                "inspect",
                "-f",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                f"lvd-lab-{host.strip()}",
            ]
        ).strip()
        backends.append(f"{address}:{port}")
    return sorted(backends)


def wrk(url: str, seconds: int, connections: int, threads: int) -> float:
    out = run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", url])
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"wrk {url}: {errors.group(1)} non-2xx answers")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def bench_proxy(seconds: int, rounds: int) -> dict:
    backends = app_backends()
    proxied, direct = [], []
    wrk(f"{LB_URL}/health", 3, 32, 2)  # warm both paths' connections and caches
    for _ in range(rounds):
        with ThreadPoolExecutor(len(backends)) as pool:
            rates = pool.map(lambda b: wrk(f"http://{b}/health", seconds, 32, 1), backends)
            direct.append(round(sum(rates), 1))
        proxied.append(round(wrk(f"{LB_URL}/health", seconds, 64, 2), 1))
    best_direct, best_proxied = max(direct), max(proxied)
    return {
        "what": "GET /health, req/s: through nginx on lb1 vs gunicorn on both app hosts directly",
        "backends": backends,
        "seconds_per_run": seconds,
        "direct_req_s": direct,
        "proxied_req_s": proxied,
        "ratio_best": round(best_proxied / best_direct, 3),
        "target_ratio": 0.75,
    }


def cache_counts(backends: list[str]) -> dict[str, float]:
    counts = {"hit": 0.0, "miss": 0.0, "bypass": 0.0}
    pattern = re.compile(r"^lvd_cache_requests_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
    for backend in backends:
        text = requests.get(f"http://{backend}/metrics", timeout=10).text
        for line in text.splitlines():
            match = pattern.match(line)
            if match:
                result = re.search(r'result="(\w+)"', match["labels"]).group(1)
                counts[result] = counts.get(result, 0.0) + float(match["value"])
    return counts


def locust(rate_per_min: int, seconds: int, users: int) -> dict:
    backends = app_backends()
    before = cache_counts(backends)
    with tempfile.TemporaryDirectory() as tmp:
        prefix = Path(tmp) / "run"
        email, _password = lab_admin()
        env = dict(
            os.environ,
            LVD_BENCH_USER_RATE=str(rate_per_min / 60 / users),
            LVD_BENCH_EMAIL=email,
            LVD_BENCH_PASSWORD_FILE=str(LAB_ADMIN_PASSWORD_FILE),
        )
        proc = subprocess.run(
            [
                str(VENV / "locust"),
                "-f",
                str(ROOT / "bench" / "locustfile.py"),
                "--headless",
                "--host",
                LB_URL,
                "-u",
                str(users),
                "-r",
                str(users),
                "-t",
                f"{seconds}s",
                "--csv",
                str(prefix),
                "--only-summary",
                "--loglevel",
                "WARNING",
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            check=False,
        )
        with open(f"{prefix}_stats.csv") as stats:
            rows = list(csv.DictReader(stats))
    after = cache_counts(backends)
    total = next(row for row in rows if row["Name"] == "Aggregated")
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    lookups = delta["hit"] + delta["miss"] + delta["bypass"]

    def pct(row: dict, key: str) -> float | None:
        return None if row[key] in ("N/A", "") else float(row[key])

    return {
        "target_per_min": rate_per_min,
        "seconds": seconds,
        "users": users,
        "requests": int(total["Request Count"]),
        "failures": int(total["Failure Count"]),
        "achieved_per_min": round(float(total["Requests/s"]) * 60),
        "latency_ms": {
            "p50": pct(total, "50%"),
            "p95": pct(total, "95%"),
            "p99": pct(total, "99%"),
            "max": pct(total, "Max Response Time"),
        },
        "by_request": {
            row["Name"]: {
                "count": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "p95_ms": pct(row, "95%"),
            }
            for row in rows
            if row["Name"] != "Aggregated"
        },
        "cache_reads": {k: int(v) for k, v in delta.items()},
        "cache_hit_ratio": round(delta["hit"] / lookups, 4) if lookups else None,
        "locust_exit": proc.returncode,
    }


def bench_traffic(seconds: int) -> dict:
    return {
        "what": "bench/locustfile.py mix through lb1 (nginx) to app1+app2 (gunicorn)",
        "targets": {
            "50000_per_min": "P95 < 50 ms, no errors",
            "500_per_min": "P95 <= 20 ms",
            "cache_hit_ratio": ">= 0.95",
        },
        "runs": [locust(500, seconds, 5), locust(50_000, seconds, 200)],
    }


SINGLE = ["-i", "inventories/single", "-i", "tests/single/lab.yml"]
# The fresh container alone, for the peer roles: none of the project's group_vars
# (several of their variable names are ours too, with other meanings).
SINGLE_BARE = ["-i", "tests/single/lab.yml"]
# The well-known public roles the Ansible benchmark compares with (read-only, never a
# dependency): ../shared/anchors beside the repository, or LVD_PEER_ROLES.
PEERS = Path(os.environ.get("LVD_PEER_ROLES", ROOT.parent / "shared" / "anchors"))
# ansible.cfg's own strategy (Mitogen) or Ansible's stock one, per run.
STOCK = {"ANSIBLE_STRATEGY": "linear"}


def playbook(*args: str, env: dict | None = None) -> tuple[float, dict[str, int]]:
    """ansible-playbook ARGS from the repository; (seconds, {host: changed})."""
    run = run_playbook("bench", *args, env=env)
    if run.returncode != 0:
        raise RuntimeError(f"ansible-playbook {' '.join(args)} failed:\n{run.tail()}")
    return run.seconds, {host: counts["changed"] for host, counts in run.recap().items()}


def no_change(seconds_changed: tuple[float, dict[str, int]], what: str) -> float:
    seconds, changed = seconds_changed
    if any(changed.values()):
        raise RuntimeError(f"{what}: the re-run changed something: {changed}")
    return seconds


def fresh_converge(args: list[str], env: dict | None) -> tuple[float, float]:
    """A new lab container, then ARGS twice: (first converge s, re-run s)."""
    playbook(*SINGLE, "playbooks/lab-down.yml")
    playbook(*SINGLE, "playbooks/lab-up.yml")
    # Package lists first, untimed and alike for every variant, as a cloud image boots
    # with them (the peers' playbook installs `locales` without refreshing them).
    run(
        [str(VENV / "ansible"), *SINGLE_BARE, "all", "-m", "ansible.builtin.apt"]
        + ["-a", "update_cache=true"],
        cwd=ROOT,
    )
    first, _ = playbook(*args, env=env)
    return first, no_change(playbook(*args, env=env), " ".join(args))


def bench_roles(rounds: int) -> dict:
    """postgresql + redis + nginx on a fresh container: ours against the peer roles."""
    peer_playbook = PEERS / "peer-converge.yml"
    if not peer_playbook.is_file():
        raise SystemExit(
            f"{peer_playbook} is missing: the peer roles (geerlingguy postgresql, redis, nginx) "
            "are the reference; set LVD_PEER_ROLES to the directory that holds "
            "peer-converge.yml and roles/"
        )
    variants = {
        # as shipped: our roles with ansible.cfg (Mitogen)
        "ours": ([*SINGLE, "bench/converge.yml"], None),
        # the reference: the peer roles as their users run them (stock strategy)
        "peers": (
            [*SINGLE_BARE, str(peer_playbook)],
            # Ansible's defaults where ansible.cfg departs from them: the stock strategy,
            # and facts injected as ansible_x variables (the peer roles read ansible_fips...).
            {
                **STOCK,
                "ANSIBLE_INJECT_FACT_VARS": "True",
                "ANSIBLE_ROLES_PATH": str(PEERS / "roles"),
            },
        ),
        # what the roles alone are worth: ours with the stock strategy too
        "ours_stock_strategy": ([*SINGLE, "bench/converge.yml"], STOCK),
    }
    times: dict[str, dict[str, list[float]]] = {}
    try:
        for _ in range(rounds):
            for name, (args, env) in variants.items():
                first, rerun = fresh_converge(args, env)
                times.setdefault(name, {"converge_s": [], "rerun_s": []})
                times[name]["converge_s"].append(first)
                times[name]["rerun_s"].append(rerun)
    finally:
        playbook(*SINGLE, "playbooks/lab-down.yml")
    best = {name: {k: min(v) for k, v in t.items()} for name, t in times.items()}
    return {
        "what": "postgresql + redis + nginx on one fresh Debian 12 lab container over SSH "
        "(pipelining): first converge, then a re-run that changes nothing; best of "
        f"{rounds}. ours: bench/converge.yml with ansible.cfg (Mitogen); peers: "
        "geerlingguy.postgresql/redis/nginx (peer-converge.yml) with the stock strategy",
        "times_s": times,
        "best_s": best,
        "ratio_to_peers": {
            kind: round(best["ours"][f"{kind}_s"] / best["peers"][f"{kind}_s"], 3)
            for kind in ("converge", "rerun")
        },
        "targets_ratio": {"converge": 0.6, "rerun": 0.5},
    }


def bench_lab(rounds: int) -> dict:
    """On the converged 5-host lab: site.yml with nothing to change, and a rolling deploy
    of a new release to both app hosts; each with ansible.cfg's strategy and the stock one."""
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    result: dict = {"site_noop_s": {}, "deploy_s": {}}
    for name, env in (("mitogen", None), ("stock", STOCK)):
        result["site_noop_s"][name] = [
            no_change(playbook("site.yml", env=env), "site.yml") for _ in range(rounds)
        ]
    releases = []
    try:
        for index in range(rounds):
            for name, env in (("mitogen", None), ("stock", STOCK)):
                release = f"bench-{stamp}-{name}-{index}"
                releases.append(release)
                seconds, _ = playbook(
                    "playbooks/deploy.yml", "-e", f"app_version={release}", env=env
                )
                result["deploy_s"].setdefault(name, []).append(seconds)
    finally:
        for release in releases:
            for suffix in (".tar.gz", ".tar.gz.sha256"):
                (ROOT / "dist" / f"lvd-{release}{suffix}").unlink(missing_ok=True)
    best = {key: {name: min(v) for name, v in runs.items()} for key, runs in result.items()}
    return {
        "what": "the converged 5-host lab: site.yml that changes nothing, and playbooks/deploy.yml "
        "of a new release (artifact built from the work tree, wheelhouse cached) to the 2 app "
        f"hosts, one at a time; best of {rounds}, with ansible.cfg (Mitogen) and with the "
        "stock linear strategy as the reference",
        **result,
        "best_s": best,
        "ratio_to_stock": {key: round(b["mitogen"] / b["stock"], 3) for key, b in best.items()},
        "targets_s": {"site_noop_s": 15, "deploy_s": 35},
    }


def last_make_test() -> dict:
    """The stage table of the last `make test` on this machine (scripts/test.py)."""
    times = ROOT / ".cache" / "test-times.txt"
    if not times.is_file():
        return {"make_test": "no make test has run in this checkout yet"}
    return {"make_test_table": times.read_text().splitlines(), "target_min": 30}


def write(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": name,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores",
        **result,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "which",
        nargs="*",
        help="benchmarks to run: proxy, traffic, ansible (default: all three)",
    )
    parser.add_argument("--rounds", type=int, default=2, help="of each Ansible timing (2)")
    parser.add_argument("--seconds", type=int, default=20, help="per measurement (20)")
    args = parser.parse_args()
    args.which = args.which or ["proxy", "traffic", "ansible"]
    unknown = sorted(set(args.which) - {"proxy", "traffic", "ansible"})
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}: choose proxy, traffic, ansible")
    if "proxy" in args.which:
        if not shutil.which("wrk"):
            sys.exit("wrk is missing: apt-get install wrk (make bench installs it)")
        write("proxy", bench_proxy(args.seconds, rounds=2))
        time.sleep(2)
    if "traffic" in args.which:
        write("traffic", bench_traffic(max(args.seconds, 60)))
    if "ansible" in args.which:
        write("ansible", {**bench_lab(args.rounds), **last_make_test()})
        write("ansible-roles", bench_roles(args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
