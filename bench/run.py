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
  ansible  bench/converge.yml (postgresql + redis + nginx roles) on a fresh lab
           container of its own (inventories/single): first converge and re-run,
           in seconds. Targets: 35 s and 9 s; the reference is well-known public
           roles on the same kind of container (40 s and 13.5 s), which cannot be
           re-run here (no Galaxy from these machines).

proxy and traffic need the lab up and converged: `make bench` runs `make demo` first.
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
        env = dict(os.environ, LVD_BENCH_USER_RATE=str(rate_per_min / 60 / users))
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


def playbook(*args: str) -> tuple[float, dict[str, int]]:
    """ansible-playbook ARGS from the repository; (seconds, {host: changed})."""
    run = run_playbook("bench", *args)
    if run.returncode != 0:
        raise RuntimeError(f"ansible-playbook {' '.join(args)} failed:\n{run.tail()}")
    return run.seconds, {host: counts["changed"] for host, counts in run.recap().items()}


def bench_ansible(rounds: int) -> dict:
    first, second = [], []
    try:
        for _ in range(rounds):
            playbook(*SINGLE, "playbooks/lab-down.yml")
            playbook(*SINGLE, "playbooks/lab-up.yml")
            seconds, _ = playbook(*SINGLE, "bench/converge.yml")
            first.append(seconds)
            seconds, changed = playbook(*SINGLE, "bench/converge.yml")
            if any(changed.values()):
                raise RuntimeError(f"the re-run changed something: {changed}")
            second.append(seconds)
    finally:
        playbook(*SINGLE, "playbooks/lab-down.yml")
    return {
        "what": "bench/converge.yml (postgresql + redis + nginx) on one fresh Debian 12 lab "
        "container over SSH with pipelining: first converge, then a re-run (0 changed)",
        "converge_s": first,
        "rerun_s": second,
        "targets_s": {"converge": 35, "rerun": 9},
        "reference_public_roles_s": {"converge": 40, "rerun": 13.5},
        "ratio_to_reference": {
            "converge": round(min(first) / 40, 3),
            "rerun": round(min(second) / 13.5, 3),
        },
    }


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
        write("ansible", bench_ansible(rounds=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
