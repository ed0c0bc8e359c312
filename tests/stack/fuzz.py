"""Fuzz the app's HTTP API with schemathesis, as a logged-in user, and summarize what it found.

Runs the schemathesis CLI (pinned in requirements-fuzz.txt, installed in a venv of its own:
it is not in the app's or the tooling's requirements) against {base_url}/openapi.json with
  - fuzz.toml: every check (max_response_time included), every phase (examples, coverage,
    fuzzing, stateful), generation mode "all" (valid and invalid inputs);
  - fuzz_hooks.py: a bearer token from POST /auth/login, fetched again whenever a request
    gets 401 (the fuzzer's own POST /auth/logout revokes the token it sent).
The CLI, not the Python API (a pytest integration): only the CLI's engine runs the phases,
the workers and Location-header link inference, and writes the NDJSON events read here.

    python tests/stack/fuzz.py --base-url https://lb1.example --ca-file ca.pem \
        --email fuzz@example.com --report-dir .cache/fuzz     # password: $FUZZ_PASSWORD
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shlex
import subprocess
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCHEMATHESIS = os.environ.get("LVD_SCHEMATHESIS", "schemathesis")  # else the one on PATH


def run_fuzz(
    base_url: str,
    ca_file: str | bool,
    email: str,
    password: str,
    report_dir: Path,
    max_examples: int = 150,
    seed: int | None = None,
    workers: int = 2,
    sanitize: bool = True,
    schemathesis: str = SCHEMATHESIS,
) -> dict:
    """Fuzz every operation; return the summary also written to report_dir/summary.json.

    ca_file: the CA bundle that verifies the server, True: the system's CAs, False: none.
    sanitize=False keeps tokens in the reports and reproducers (else "[Filtered]").
    """
    base_url = base_url.rstrip("/")
    report_dir = Path(report_dir).resolve()  # also the CLI's cwd: its caches go there
    report_dir.mkdir(parents=True, exist_ok=True)
    events, run_json = report_dir / "events.ndjson", report_dir / "run.json"
    tls = str(ca_file).lower() if isinstance(ca_file, bool) else str(Path(ca_file).resolve())
    command = [
        schemathesis, "--config-file", str(HERE / "fuzz.toml"), "run", f"{base_url}/openapi.json",
        "--url", base_url, "--tls-verify", tls, "--max-examples", str(max_examples),
        "--workers", str(workers), "--report", "ndjson,json", "--report-dir", str(report_dir),
        "--report-ndjson-path", str(events), "--report-json-path", str(run_json),
        "--output-sanitize", str(sanitize).lower(), "--no-color",
    ]  # fmt: skip
    command += ["--seed", str(seed)] if seed is not None else []
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(HERE / "fuzz_hooks.py"), "FUZZ_TLS_VERIFY": tls}
    env.update(FUZZ_BASE_URL=base_url, FUZZ_EMAIL=email, FUZZ_PASSWORD=password)
    with open(report_dir / "schemathesis.log", "w") as log:
        proc = subprocess.run(
            command, env=env, cwd=report_dir, stdout=log, stderr=subprocess.STDOUT, check=False
        )
    run = json.loads(run_json.read_text()) if run_json.exists() else {}
    if not events.exists() or run.get("running_time") is None:  # e.g. the schema did not load
        tail = Path(log.name).read_text()[-3000:]
        raise RuntimeError(f"schemathesis did not run (rc {proc.returncode}):\n{tail}")
    summary = summarize(events, run, proc.returncode)
    (report_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _text(payload: dict | None, limit: int = 2000) -> str | None:
    if not payload:
        return None
    raw = base64.b64decode(payload.get("$base64", b""))
    text = raw.decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + "...[truncated]"


def reproducer(interaction: dict, failure: dict) -> dict:
    """The request and response of one failing case, with a curl command line."""
    request, response = interaction["request"], interaction.get("response") or {}
    headers = {name: ", ".join(values) for name, values in request["headers"].items()}
    body = _text(request.get("body"), limit=100_000)
    curl = ["curl", "-sS", "-X", request["method"]]
    curl += [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
    curl += ["--data-binary", body] if body is not None else []
    return {
        "message": failure.get("message"),
        "code": failure.get("code"),
        "method": request["method"],
        "url": request["uri"],
        "headers": headers,
        "body": body,
        "status": response.get("status_code"),
        "response_headers": {k: ", ".join(v) for k, v in response.get("headers", {}).items()},
        "response_body": _text(response.get("content")),
        "curl": shlex.join([*curl, request["uri"]]),
    }


def _size(sample: dict) -> int:
    return len(sample["url"]) + len(sample["body"] or "")


def summarize(events: Path, run: dict, returncode: int) -> dict:
    """Requests, statuses and per-check results read from the NDJSON event stream."""
    requests_by_phase: Counter = Counter()
    statuses: Counter = Counter()
    checks: dict[str, dict] = {}
    for line in events.read_text().splitlines():
        finished = json.loads(line).get("ScenarioFinished")
        if not finished or "interactions" not in finished["recorder"]:
            continue
        recorder = finished["recorder"]
        for interaction in recorder["interactions"].values():
            requests_by_phase[finished["phase"]] += 1
            status = (interaction.get("response") or {}).get("status_code")
            statuses[f"{status // 100}xx" if status else "no response"] += 1
        for case_id, results in recorder.get("checks", {}).items():
            for result in results:
                entry = checks.setdefault(result["name"], {"passed": 0, "failed": 0, "samples": {}})
                if result["status"] == "success":
                    entry["passed"] += 1
                    continue
                entry["failed"] += 1
                failure = result["failure_info"]["failure"]
                interaction = recorder["interactions"].get(case_id)
                operation = failure.get("operation") or recorder["label"]
                if interaction is None:
                    continue
                # Keep the smallest failing request of each operation: the shrunk one.
                sample, kept = reproducer(interaction, failure), entry["samples"].get(operation)
                if kept is None or _size(sample) < _size(kept):
                    entry["samples"][operation] = sample
    return {
        "schemathesis": run["schemathesis_version"],
        "exit_code": returncode,
        "seconds": round(run["running_time"], 1),
        "seed": run["seed"],
        "operations": run["operations"],
        "phases": {name: phase["status"] for name, phase in run["phases"].items()},
        "requests": sum(requests_by_phase.values()),
        "requests_by_phase": dict(requests_by_phase),
        "responses_by_status_class": dict(sorted(statuses.items())),
        "reauthentications": run.get("auth", {}).get("reauth_count"),
        "failures_by_check": {name: e for name, e in sorted(checks.items()) if e["failed"]},
        "checks_passed": {name: entry["passed"] for name, entry in sorted(checks.items())},
        "unique_failures": run["failures"],
        "errors": run["errors"],
        "warnings": {name: value for name, value in run["warnings"].items() if value},
    }


def print_summary(summary: dict) -> None:
    print(
        f"schemathesis {summary['schemathesis']}: {summary['requests']} requests in "
        f"{summary['seconds']} s {summary['requests_by_phase']}, responses "
        f"{summary['responses_by_status_class']}, {summary['reauthentications']} re-logins"
    )
    for name, entry in summary["failures_by_check"].items():
        print(f"  {name}: {entry['failed']} failed, {entry['passed']} passed")
        for operation, sample in entry["samples"].items():
            print(f"    {operation}: [{sample['status']}] {sample['curl']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--ca-file", default="true", help="CA bundle path, true or false")
    parser.add_argument("--email", required=True)
    parser.add_argument("--report-dir", type=Path, default=Path(".cache/fuzz"))
    parser.add_argument("--max-examples", type=int, default=150)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-sanitize", action="store_true", help="keep tokens in reports")
    args = parser.parse_args()
    ca_file = {"true": True, "false": False}.get(args.ca_file.lower(), args.ca_file)
    summary = run_fuzz(
        args.base_url, ca_file, args.email, os.environ["FUZZ_PASSWORD"], args.report_dir,
        max_examples=args.max_examples, seed=args.seed, workers=args.workers,
        sanitize=not args.no_sanitize,
    )  # fmt: skip
    print_summary(summary)
    print(f"summary: {args.report_dir / 'summary.json'}")
    return 1 if summary["failures_by_check"] or summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
