#!/usr/bin/env python3
"""Open-loop HTTP load generator for the Live Validation Dashboard.

Requests leave at a fixed rate whatever the server does (an open loop): a slow or
restarting backend shows up as latency and failed requests, never as a politely lower
request count. Each request is drawn from a weighted mix of GET and POST calls a real
user makes (pages, the JSON API, posting runs). At the end a JSON summary is written:
counts, failures (with samples), latency percentiles overall and per request kind, the
releases /version reported, and a per-second timeline.

A request has failed when it ends in a connection error or timeout, or with a status
outside 2xx/3xx other than 429. 429s (rate limiting) are counted apart, so a run whose
client is on the rate-limit allowlists must show none. Requests go through the app's client
helper (app/client.py), as a well-behaved client's do: every POST carries an Idempotency-Key,
and what is safe to send again (reads, keyed POSTs) is, when its connection failed or the
answer was 502/503/504, after Retry-After; the summary counts requests that took more than
one try (retried), and lists the runs each acknowledged POST created (posts), so a test can
check the database holds each exactly once.

Run it with the tooling venv (it needs `requests`):

    .venv/bin/python files/loadgen.py --url http://127.0.0.1:8080 \\
        --rate 60 --duration 120 --out bench/results/load.json

--duration 0 runs until SIGINT/SIGTERM (or until --stop-file appears), then drains the
requests in flight and writes the summary. The exit status is 0 when no request failed,
1 when some did, 2 when the setup (account, login) failed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import random
import signal
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin

import requests
import urllib3

# app/client.py, loaded by path: the app package's own dependencies need not be installed.
_spec = importlib.util.spec_from_file_location(
    "lvd_client", Path(__file__).resolve().parents[1] / "app" / "client.py"
)
client = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(client)

DEFAULT_MIX = "health=1,version=1,page=1,dashboard=1,static=1,summary=2,runs=2,post_run=2"
RESULT_STATUSES = ("pass", "pass", "pass", "warn", "fail")
FAILURE_SAMPLES = 20


class SetupError(RuntimeError):
    """The generator could not get an account or a login: nothing was measured."""


@dataclass(frozen=True)
class Kind:
    """One kind of request in the mix."""

    method: str
    path: str
    auth: str = ""  # "", "token" (JWT bearer) or "session" (dashboard login cookie)


KINDS = {
    "health": Kind("GET", "/health"),
    "ready": Kind("GET", "/health/ready"),
    "version": Kind("GET", "/version"),
    "page": Kind("GET", "/login"),
    "static": Kind("GET", "/static/style.css"),
    "dashboard": Kind("GET", "/", auth="session"),
    "summary": Kind("GET", "/api/summary", auth="token"),
    "runs": Kind("GET", "/api/runs?per_page=20", auth="token"),
    "post_run": Kind("POST", "/api/runs", auth="token"),
}


@dataclass
class Result:
    at: float  # seconds since the first request was due, when this one left
    kind: str
    status: int | None
    latency_ms: float  # from leaving to the last byte of the answer
    lag_ms: float = 0.0  # how late it left: every worker was still busy when it was due
    tries: int = 1  # more than one: sent again (connection failed, 502/503/504)
    error: str = ""
    release: str = ""
    posted: tuple[str, int] | None = None  # (git_ref, run id) of an acknowledged POST


@dataclass
class Identity:
    """The account the generator acts as: a JWT for the API, a cookie for the pages."""

    token: str = ""
    token_expires: float = 0.0
    cookies: dict = field(default_factory=dict)


def parse_mix(text: str) -> dict[str, int]:
    mix = {}
    for item in text.split(","):
        name, _, weight = item.strip().partition("=")
        if name not in KINDS:
            raise argparse.ArgumentTypeError(f"unknown request kind {name!r}: use {sorted(KINDS)}")
        try:
            mix[name] = int(weight or 1)
        except ValueError:
            raise argparse.ArgumentTypeError(f"weight of {name!r} must be an integer") from None
        if mix[name] < 0:
            raise argparse.ArgumentTypeError(f"weight of {name!r} must not be negative")
    if not any(mix.values()):
        raise argparse.ArgumentTypeError("the mix needs at least one positive weight")
    return mix


def percentile(sorted_values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return round(sorted_values[rank - 1], 1)


def latency_stats(values: list[float]) -> dict:
    values = sorted(values)
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "min": round(values[0], 1),
        "mean": round(sum(values) / len(values), 1),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": round(values[-1], 1),
    }


def outcome(result: Result) -> str:
    if result.status is None:
        return "failed"
    if result.status == 429:
        return "rate_limited"
    return "ok" if 200 <= result.status < 400 else "failed"


class LoadGenerator:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.base = args.url.rstrip("/") + "/"
        self.verify: bool | str = args.ca_file or not args.insecure
        self.identity = Identity()
        self.identity_lock = threading.Lock()
        self.results: list[Result] = []
        self.results_lock = threading.Lock()
        self.local = threading.local()
        self.stop = threading.Event()
        self.email = args.email or f"loadgen-{uuid.uuid4().hex[:12]}@example.test"
        self.password = args.password or os.environ.get("LVD_PASSWORD") or uuid.uuid4().hex
        if args.password_file:
            self.password = Path(args.password_file).read_text().strip()
        self.t0 = 0.0

    # --- sessions and identity ---------------------------------------------------

    def session(self) -> requests.Session:
        """One keep-alive session per worker thread, like one browser per user."""
        if not hasattr(self.local, "session"):
            session = requests.Session()
            session.verify = self.verify
            session.headers["User-Agent"] = "lvd-loadgen/1"
            self.local.session = session
        return self.local.session

    def setup(self) -> None:
        """Create the account (unless given) and log in to the API and the dashboard."""
        http = requests.Session()
        http.verify = self.verify
        if not self.args.email:
            reply = http.post(
                urljoin(self.base, "auth/register"),
                json={"email": self.email, "password": self.password},
                timeout=self.args.timeout,
                verify=self.verify,
            )
            if reply.status_code != 202:
                raise SetupError(f"register answered {reply.status_code}: {reply.text[:200]}")
        self.refresh_token(http)
        if any(KINDS[name].auth == "session" for name, weight in self.args.mix.items() if weight):
            self.identity.cookies = self.form_login(http)

    def refresh_token(self, http: requests.Session | None = None) -> None:
        http = http or self.session()
        reply = http.post(
            urljoin(self.base, "auth/login"),
            json={"email": self.email, "password": self.password},
            timeout=self.args.timeout,
            verify=self.verify,
        )
        if reply.status_code != 200:
            raise SetupError(f"login answered {reply.status_code}: {reply.text[:200]}")
        body = reply.json()
        self.identity.token = body["access_token"]
        # Renew a minute before expiry; the renewal is setup work, not measured traffic.
        self.identity.token_expires = time.monotonic() + max(body.get("expires_in", 900) - 60, 30)

    def form_login(self, http: requests.Session) -> dict:
        page = http.get(urljoin(self.base, "login"), timeout=self.args.timeout, verify=self.verify)
        marker = 'name="csrf" value="'
        start = page.text.find(marker)
        if page.status_code != 200 or start < 0:
            raise SetupError(f"GET /login answered {page.status_code} without a form")
        csrf = page.text[start + len(marker) : page.text.index('"', start + len(marker))]
        reply = http.post(
            urljoin(self.base, "login"),
            data={"csrf": csrf, "email": self.email, "password": self.password},
            allow_redirects=False,
            timeout=self.args.timeout,
            verify=self.verify,
        )
        if reply.status_code != 302:
            raise SetupError(f"dashboard login answered {reply.status_code}")
        return http.cookies.get_dict()

    def token(self) -> str:
        with self.identity_lock:
            if time.monotonic() > self.identity.token_expires:
                self.refresh_token()
            return self.identity.token

    # --- one request --------------------------------------------------------------

    def run_payload(self, sequence: int) -> dict:
        rng = random.Random(sequence)
        results = [
            {
                "name": f"check_{index}",
                "status": rng.choice(RESULT_STATUSES),
                "duration_ms": round(rng.uniform(1, 500), 1),
            }
            for index in range(rng.randint(1, 8))
        ]
        return {
            "suite": f"loadgen-{rng.randint(1, 5)}",
            "environment": self.args.tag,
            "git_ref": f"seq-{sequence}",
            "results": results,
        }

    def send(self, sequence: int, name: str, due: float) -> None:
        kind = KINDS[name]
        session = self.session()
        headers, cookies, body = {}, None, None
        started = time.monotonic()
        result = Result(
            at=started - self.t0,
            kind=name,
            status=None,
            latency_ms=0.0,
            lag_ms=max(started - due, 0.0) * 1000,
        )
        try:
            if kind.auth == "token":
                headers["Authorization"] = f"Bearer {self.token()}"
            elif kind.auth == "session":
                cookies = self.identity.cookies
            if kind.method == "POST":
                body = self.run_payload(sequence)
            sent = client.send(
                session,
                kind.method,
                urljoin(self.base, kind.path.lstrip("/")),
                headers=headers,
                cookies=cookies,
                json=body,
                allow_redirects=False,
                timeout=self.args.timeout,
                verify=self.verify,
            )
            reply, result.tries = sent.response, sent.tries
            result.status = reply.status_code
            if name == "version" and reply.status_code == 200:
                result.release = str(reply.json().get("release", ""))
            elif kind.method == "POST" and reply.status_code == 201:
                result.posted = (body["git_ref"], reply.json()["id"])
            elif outcome(result) == "failed":
                result.error = reply.text[:200]
        except requests.RequestException as exc:
            result.error = f"{type(exc).__name__}: {exc}"[:300]
        except (ValueError, SetupError) as exc:  # a /version that is not JSON, a failed re-login
            result.error = f"{type(exc).__name__}: {exc}"[:300]
            result.status = None
        result.latency_ms = (time.monotonic() - started) * 1000
        with self.results_lock:
            self.results.append(result)

    # --- the open loop --------------------------------------------------------------

    def should_stop(self, now: float) -> bool:
        if self.stop.is_set():
            return True
        if self.args.duration and now - self.t0 >= self.args.duration:
            return True
        return bool(self.args.stop_file and Path(self.args.stop_file).exists())

    def run(self) -> dict:
        names = [name for name, weight in self.args.mix.items() for _ in range(weight)]
        rng = random.Random(self.args.seed)
        interval = 1.0 / self.args.rate
        pool = ThreadPoolExecutor(max_workers=self.args.workers)
        self.t0 = time.monotonic()
        if self.args.ready_file:
            Path(self.args.ready_file).write_text(str(time.time()))
        sequence = 0
        last_progress = self.t0
        while True:
            due = self.t0 + sequence * interval
            now = time.monotonic()
            if self.should_stop(now):
                break
            if due > now:
                self.stop.wait(due - now)
                continue
            pool.submit(self.send, sequence, rng.choice(names), due)
            sequence += 1
            if self.args.progress and now - last_progress >= self.args.progress:
                last_progress = now
                self.print_progress(now)
        ended = time.monotonic()
        # Requests in flight finish; those still waiting for a worker are not sent.
        pool.shutdown(wait=True, cancel_futures=True)
        return self.summary(sequence, ended - self.t0)

    def print_progress(self, now: float) -> None:
        with self.results_lock:
            counts = Counter(outcome(result) for result in self.results)
        print(
            f"loadgen: {now - self.t0:6.1f}s done={sum(counts.values())} ok={counts['ok']}"
            f" failed={counts['failed']} 429={counts['rate_limited']}",
            file=sys.stderr,
            flush=True,
        )

    # --- the report -----------------------------------------------------------------

    def summary(self, due: int, elapsed: float) -> dict:
        results = sorted(self.results, key=lambda result: result.at)
        outcomes = Counter(outcome(result) for result in results)
        by_kind = defaultdict(list)
        for result in results:
            by_kind[result.kind].append(result)
        timeline = defaultdict(Counter)
        for result in results:
            timeline[int(result.at)][outcome(result)] += 1
        failures = [result for result in results if outcome(result) == "failed"]
        releases = Counter(result.release for result in results if result.release)
        return {
            "target": self.args.url,
            "started_at": self.started_at,
            "rate_requested": self.args.rate,
            "duration_s": round(elapsed, 2),
            # Requests that left per second, while the generator ran.
            "rate_achieved": round(len(results) / elapsed, 1) if elapsed else 0.0,
            "mix": self.args.mix,
            "due": due,
            "completed": len(results),
            "not_sent": due - len(results),
            "ok": outcomes["ok"],
            "failed": outcomes["failed"],
            "rate_limited": outcomes["rate_limited"],
            "retried": sum(result.tries > 1 for result in results),
            # Acknowledged POSTs: {git_ref: run id}; environment = tag.
            "posts": {
                "tag": self.args.tag,
                "sent": sum(KINDS[result.kind].method == "POST" for result in results),
                "acknowledged": dict(result.posted for result in results if result.posted),
            },
            "by_status": {
                str(status): count
                for status, count in sorted(
                    Counter(result.status or "error" for result in results).items(), key=str
                )
            },
            "latency_ms": latency_stats([result.latency_ms for result in results]),
            "lag_ms": latency_stats([result.lag_ms for result in results]),
            "by_kind": {
                name: {
                    "method": KINDS[name].method,
                    "path": KINDS[name].path,
                    "ok": sum(outcome(result) == "ok" for result in items),
                    "failed": sum(outcome(result) == "failed" for result in items),
                    "rate_limited": sum(outcome(result) == "rate_limited" for result in items),
                    "latency_ms": latency_stats([result.latency_ms for result in items]),
                }
                for name, items in sorted(by_kind.items())
            },
            "releases_seen": dict(releases),
            "failure_samples": [
                {
                    "at_s": round(result.at, 2),
                    "kind": result.kind,
                    "status": result.status,
                    "error": result.error,
                }
                for result in failures[:FAILURE_SAMPLES]
            ],
            "timeline": [
                {"second": second, **dict(counts)} for second, counts in sorted(timeline.items())
            ],
        }

    def start(self) -> dict:
        self.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.setup()
        return self.run()


def print_table(summary: dict) -> None:
    lat = summary["latency_ms"]
    print(
        f"loadgen: {summary['completed']} requests in {summary['duration_s']} s"
        f" ({summary['rate_achieved']}/s of {summary['rate_requested']}/s):"
        f" ok {summary['ok']}, failed {summary['failed']}, 429 {summary['rate_limited']};"
        f" p50 {lat.get('p50')} ms, p95 {lat.get('p95')} ms, p99 {lat.get('p99')} ms;"
        f" left late by up to {summary['lag_ms'].get('max')} ms, {summary['not_sent']} not sent,"
        f" {summary['retried']} sent again",
        file=sys.stderr,
    )
    for name, kind in summary["by_kind"].items():
        print(
            f"  {name:<10} {kind['method']:<4} {kind['path']:<24} ok {kind['ok']:>6}"
            f"  failed {kind['failed']:>4}  429 {kind['rate_limited']:>4}"
            f"  p95 {kind['latency_ms'].get('p95')} ms",
            file=sys.stderr,
        )
    if summary["releases_seen"]:
        print(f"  releases seen on /version: {summary['releases_seen']}", file=sys.stderr)
    for sample in summary["failure_samples"][:5]:
        print(f"  failed: {sample}", file=sys.stderr)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"Request kinds: {', '.join(f'{n} ({k.method} {k.path})' for n, k in KINDS.items())}",
    )
    parser.add_argument("--url", required=True, help="base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second (50)")
    parser.add_argument(
        "--duration", type=float, default=60.0, help="seconds; 0 = until SIGINT/SIGTERM (60)"
    )
    parser.add_argument(
        "--mix",
        type=parse_mix,
        default=parse_mix(DEFAULT_MIX),
        help=f"kind=weight,... (default {DEFAULT_MIX})",
    )
    parser.add_argument("--out", help="write the JSON summary here (default: stdout)")
    parser.add_argument(
        "--workers", type=int, default=128, help="concurrent requests at most (128)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="per request, seconds (60: nginx's proxy_read_timeout, so nginx's 504 decides)",
    )
    parser.add_argument("--insecure", action="store_true", help="accept any TLS certificate")
    parser.add_argument("--ca-file", help="CA bundle to verify the server's certificate with")
    parser.add_argument("--email", help="existing account to use (default: register a new one)")
    parser.add_argument("--password", help="its password (default: $LVD_PASSWORD)")
    parser.add_argument("--password-file", help="read its password from this file")
    parser.add_argument(
        "--tag", default="load", help="the environment field of the runs it posts (load)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the request mix (1)")
    parser.add_argument("--stop-file", help="stop once this file exists")
    parser.add_argument("--ready-file", help="write this file when the first request is due")
    parser.add_argument("--progress", type=float, default=0, help="print counts every N seconds")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.duration < 0 or args.workers < 1:
        parser.error("--rate must be > 0, --duration >= 0, --workers >= 1")
    if args.email and not (args.password or args.password_file or os.environ.get("LVD_PASSWORD")):
        parser.error("--email needs --password, --password-file or $LVD_PASSWORD")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.insecure:
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    generator = LoadGenerator(args)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: generator.stop.set())
    try:
        summary = generator.start()
    except SetupError as exc:
        print(f"loadgen: setup: {exc}", file=sys.stderr)
        return 2
    except requests.RequestException as exc:
        print(f"loadgen: setup: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(summary, indent=2) + "\n"
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        # Whole or not at all: a reader waiting for the file never sees half of it.
        partial = out.with_name(out.name + ".partial")
        partial.write_text(text)
        partial.replace(out)
    else:
        sys.stdout.write(text)
    print_table(summary)
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
