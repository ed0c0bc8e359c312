#!/usr/bin/env python3
"""`make test`: every stage of the test pyramid in order, then a table of where the time went.

The stages are the Makefile's own targets (lint, test-render, test-app, test-roles, test-stack); the
first that fails stops the run. The table is printed either way, and kept in
.cache/test-times.txt. Under each stage it breaks the time down from what the stage
leaves behind:
  test-roles   each role's scenario and the stand-in Mac's, with their Molecule actions,
               from the timestamped logs of scripts/molecule.sh (.cache/molecule/)
  test-stack   the stack scenario's Molecule actions (.cache/molecule/stack.log), then
               each playbook run of its checks (.cache/test-stack/report-<stack|single>.json)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache"
STAGES = ("lint", "test-render", "test-app", "test-roles", "test-stack")
# "12:34:56 INFO     [default > converge] Executing" (the timestamp is molecule-role.sh's)
ACTION = re.compile(r"^(\d\d:\d\d:\d\d) INFO\s+\[\w+ > (\w+)\] (Executing|Executed)")


def clock(stamp: str) -> int:
    t = datetime.strptime(stamp, "%H:%M:%S")
    return t.hour * 3600 + t.minute * 60 + t.second


def molecule_actions(log: Path) -> list[tuple[str, int]]:
    """[(action, seconds)] in the order the scenario ran them (destroy appears twice)."""
    actions, started = [], {}
    for line in log.read_text(errors="replace").splitlines():
        match = ACTION.match(line)
        if not match:
            continue
        stamp, action, event = match.groups()
        if event == "Executing":
            started.setdefault(action, clock(stamp))
        elif action in started:
            actions.append((action, (clock(stamp) - started.pop(action)) % 86400))
    return actions


def scenario_rows(logs: list[Path], since: float) -> list[str]:
    rows = []
    for log in logs:
        if not log.is_file() or log.stat().st_mtime < since:
            continue
        actions = molecule_actions(log)
        total = sum(seconds for _, seconds in actions)
        detail = ", ".join(f"{name} {seconds}" for name, seconds in actions)
        rows.append(f"  {log.name.removesuffix('.log').removesuffix('-default'):<22}{total:>6}   {detail}")
    return rows


def role_rows(since: float) -> list[str]:
    logs = sorted((CACHE / "molecule").glob("*-default.log")) + [CACHE / "molecule" / "macos.log"]
    return scenario_rows(logs, since)


def stack_rows(since: float) -> list[str]:
    rows = scenario_rows([CACHE / "molecule" / "stack.log"], since)
    for name in ("stack", "single"):
        report = CACHE / "test-stack" / f"report-{name}.json"
        if not report.is_file() or report.stat().st_mtime < since:
            continue
        steps = {
            key.removesuffix("_seconds"): value
            for key, value in json.loads(report.read_text()).items()
            if key.endswith("_seconds")
        }
        detail = ", ".join(f"{step} {round(seconds)}" for step, seconds in steps.items())
        rows.append(f"  {name + ' playbooks':<22}{round(sum(steps.values())):>6}   {detail}")
    return rows


def main() -> int:
    started = time.time()
    results: list[tuple[str, int, str]] = []
    failed = None
    for stage in STAGES:
        begin = time.monotonic()
        rc = subprocess.run(
            ["make", "--no-print-directory", stage], cwd=ROOT, check=False
        ).returncode
        results.append(
            (stage, round(time.monotonic() - begin), "ok" if rc == 0 else f"FAILED (rc {rc})")
        )
        if rc != 0:
            failed = stage
            break

    lines = ["", "make test: where the time went (seconds)", f"{'stage':<24}{'s':>6}   result"]
    for stage, seconds, result in results:
        lines.append(f"{stage:<24}{seconds:>6}   {result}")
        if stage == "test-roles":
            lines += role_rows(started)
        elif stage == "test-stack":
            lines += stack_rows(started)
    total = round(time.time() - started)
    lines.append(f"{'total':<24}{total:>6}   ({total // 60} min {total % 60} s)")
    table = "\n".join(lines) + "\n"
    print(table, flush=True)
    CACHE.mkdir(exist_ok=True)
    (CACHE / "test-times.txt").write_text(table)
    if failed:
        print(f"make test: stage {failed} failed (its output is above)", file=sys.stderr)
        return 1
    print("make test: all passed")
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
