"""The dashboard's traffic mix for Locust (used by bench/run.py, `make bench`).

Each simulated user is a browser or CI client that logs in once, then mostly reads
(the dashboard page, the summary, the run list, static files, health probes) and now
and then posts a validation run. Writes invalidate the summary cache, so the share of
writes decides the cache hit ratio: WRITE_SHARE (environment LVD_BENCH_WRITE_SHARE,
default 0.005, i.e. one run posted per 200 requests) is the dashboard's real shape,
where a handful of CI pipelines post while many people watch.

Any answer outside 2xx/3xx counts as a failure, 429 included: the bench client must be
on the rate-limit allowlists, or the limits would hide what the stack can serve.

Rate control: every user sends at LVD_BENCH_USER_RATE requests per second
(constant_throughput), so the total rate is users x that rate whatever the latency.

The account: LVD_BENCH_EMAIL with the password in the file LVD_BENCH_PASSWORD_FILE (bench/run.py
passes the lab's first admin: the lab registers only with an invite).
"""

from __future__ import annotations

import os
import random
import uuid
from pathlib import Path

import requests
from locust import FastHttpUser, constant_throughput, events, task

USER_RATE = float(os.environ.get("LVD_BENCH_USER_RATE", "2"))
WRITE_SHARE = float(os.environ.get("LVD_BENCH_WRITE_SHARE", "0.005"))
TOKEN: dict[str, str] = {}
STATUSES = ("pass", "pass", "pass", "warn", "fail")

# Read mix: relative weights of what a watching user asks for.
READS = (
    ("GET /api/summary", "/api/summary", 4, True),
    ("GET /api/runs", "/api/runs?per_page=20", 2, True),
    ("GET /login", "/login", 1, False),
    ("GET /health", "/health", 1, False),
    ("GET /version", "/version", 1, False),
    ("GET /static", "/static/style.css", 1, False),
)
READ_WEIGHTS = [weight for _, _, weight, _ in READS]


@events.test_start.add_listener
def _log_in(environment, **_kwargs) -> None:
    """One account for all users (a CI service token): setup work stays out of the stats."""
    host = environment.host.rstrip("/")
    credentials = {
        "email": os.environ["LVD_BENCH_EMAIL"],
        "password": Path(os.environ["LVD_BENCH_PASSWORD_FILE"]).read_text().strip(),
    }
    login = requests.post(f"{host}/auth/login", json=credentials, timeout=30)
    login.raise_for_status()
    TOKEN["Authorization"] = f"Bearer {login.json()['access_token']}"


class DashboardUser(FastHttpUser):
    wait_time = constant_throughput(USER_RATE)

    @property
    def headers(self) -> dict[str, str]:
        return TOKEN

    @task
    def one_request(self) -> None:
        if random.random() < WRITE_SHARE:
            self.post_run()
            return
        name, path, _, needs_token = random.choices(READS, weights=READ_WEIGHTS)[0]
        self.client.get(path, name=name, headers=self.headers if needs_token else None)

    def post_run(self) -> None:
        results = [
            {
                "name": f"check_{i}",
                "status": random.choice(STATUSES),
                "duration_ms": round(random.uniform(1, 500), 1),
            }
            for i in range(random.randint(1, 8))
        ]
        body = {
            "suite": f"bench-{random.randint(1, 5)}",
            "environment": "bench",
            "git_ref": uuid.uuid4().hex[:8],
            "results": results,
        }
        headers = {**self.headers, "Idempotency-Key": str(uuid.uuid4())}
        self.client.post("/api/runs", json=body, name="POST /api/runs", headers=headers)
