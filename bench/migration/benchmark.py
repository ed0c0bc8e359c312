#!/usr/bin/env python3
"""Benchmark (not a test): `flask migrate-sqlite` against pgloader on the same SQLite fixture.

    scripts/host-services.sh                      # the host's PostgreSQL (and Redis)
    apt-get install pgloader                      # Debian's package
    .venv-app/bin/python bench/migration/benchmark.py [--results 221000] [--repeat 3]

Each round migrates the fixture into a fresh database twice, once with pgloader and once with
the app's command (in alternating order, so neither always runs on a warmer cache), and times
both from the outside (process wall clock) and from the inside (pgloader's "Total import
time", our report's phases). Afterwards it describes what each left in PostgreSQL: column
types, NOT NULL columns, sequences, foreign keys, indexes. Writes
bench/results/migration-<UTC time>.json and .md.

The machine is shared (other jobs run on its two cores), so every number carries the load
average it was taken at; compare rounds taken together, not runs from different days.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg2
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
APP_TABLES = ("users", "subscriptions", "validation_runs", "validation_results")
FLASK = Path(sys.executable).with_name("flask")


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def base_url() -> str:
    env_file = ROOT / ".cache" / "host-services.env"
    if "TEST_DATABASE_URL" not in os.environ and env_file.is_file():
        for line in env_file.read_text().splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            os.environ.setdefault(name.strip(), value.strip())
    if "TEST_DATABASE_URL" not in os.environ:
        raise SystemExit("TEST_DATABASE_URL is not set: run scripts/host-services.sh first")
    return os.environ["TEST_DATABASE_URL"]


class Databases:
    def __init__(self, url: str):
        self.base = make_url(url)
        self.admin = psycopg2.connect(url)
        self.admin.autocommit = True

    def fresh(self, prefix: str) -> str:
        name = f"bench_{prefix}_{uuid.uuid4().hex[:8]}"
        with self.admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        return self.base.set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        from app.tests.conftest import drop_database

        drop_database(self.admin, make_url(url).database)


class CpuMeter:
    """CPU seconds of the tool (our child processes) and of PostgreSQL: the postmaster's own
    time plus its reaped children's, i.e. every backend that served the run. A server shared
    with other clients adds their exited backends too: compare rounds, not single runs."""

    def __init__(self, connection):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend = cursor.fetchone()[0]
        try:
            self.postmaster = int(
                Path(f"/proc/{backend}/stat").read_text().split(")")[1].split()[1]
            )
        except OSError:  # PostgreSQL on another machine
            self.postmaster = None

    def _postgres(self) -> float | None:
        if self.postmaster is None:
            return None
        fields = Path(f"/proc/{self.postmaster}/stat").read_text().split(")")[1].split()
        return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")

    def start(self) -> None:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.tool, self.postgres = usage.ru_utime + usage.ru_stime, self._postgres()

    def stop(self) -> dict:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        time.sleep(0.5)  # let the postmaster reap the run's backends
        postgres = self._postgres()
        return {
            "tool_cpu_seconds": round(usage.ru_utime + usage.ru_stime - self.tool, 3),
            "postgres_cpu_seconds": None
            if postgres is None
            else round(postgres - self.postgres, 3),
        }


def fixture(results: int, seed: int) -> Path:
    path = ROOT / ".cache" / "bench" / f"migration-fixture-{results}-{seed}.db"
    if not path.is_file():
        from app.migrate_sqlite.fixture import generate

        path.parent.mkdir(parents=True, exist_ok=True)
        log(f"generating the fixture ({results} results) at {path}")
        generate(path.with_suffix(".partial"), results=results, seed=seed)
        path.with_suffix(".partial").rename(path)
    return path


def run_pgloader(sqlite: Path, url: str, meter: CpuMeter) -> dict:
    meter.start()
    started = time.perf_counter()
    proc = subprocess.run(
        ["pgloader", str(sqlite), url], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    cpu = meter.stop()
    if proc.returncode != 0:
        raise SystemExit(f"pgloader failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    total = re.search(
        r"Total import time\s+\S+\s+(\d+)\s+.*?([\d.]+)s\s*$", proc.stdout, re.MULTILINE
    )
    return {
        **cpu,
        "wall_seconds": wall,
        "import_seconds": float(total.group(2)) if total else None,
        "rows_reported": int(total.group(1)) if total else None,
    }


def run_ours(sqlite: Path, url: str, report: Path, jobs: int | None, meter: CpuMeter) -> dict:
    env = {**os.environ, "DATABASE_URL": url, "APP_ENV": "development"}
    cmd = [str(FLASK), "--app", "app", "migrate-sqlite", str(sqlite), "--report", str(report)]
    if jobs:
        cmd += ["--jobs", str(jobs)]
    meter.start()
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    cpu = meter.stop()
    if proc.returncode != 0:
        raise SystemExit(f"migrate-sqlite failed:\n{proc.stdout}\n{proc.stderr[-3000:]}")
    document = json.loads(report.read_text())
    phases = document["phases_seconds"]
    return {
        **cpu,
        "wall_seconds": wall,
        "engine_seconds": document["duration_seconds"],
        "without_verify_seconds": round(document["duration_seconds"] - phases.get("verify", 0), 3),
        "phases_seconds": phases,
        "rows": document["rows_copied"],
        "checksums_match": all(t["checksum_match"] for t in document["tables"]),
    }


def describe(url: str) -> dict:
    """What a migration left in PostgreSQL for the app tables."""
    connection = psycopg2.connect(url)
    cursor = connection.cursor()
    cursor.execute(
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name = ANY (%s)",
        (list(APP_TABLES),),
    )
    columns = {
        f"{t}.{c}": {"type": kind, "not_null": nullable == "NO"}
        for t, c, kind, nullable in cursor.fetchall()
    }
    cursor.execute(
        "SELECT count(*) FILTER (WHERE contype = 'f'), count(*) FILTER (WHERE contype = 'c'),"
        " count(*) FILTER (WHERE contype = 'p')"
        " FROM pg_constraint WHERE conrelid::regclass::text = ANY (%s)",
        (list(APP_TABLES),),
    )
    foreign_keys, checks, primary_keys = cursor.fetchone()
    cursor.execute(
        "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' AND tablename = ANY (%s)",
        (list(APP_TABLES),),
    )
    indexes = cursor.fetchone()[0]
    cursor.execute(
        "SELECT count(*) FROM (SELECT pg_get_serial_sequence(quote_ident(t), 'id') AS s"
        " FROM unnest(%s::text[]) AS t) AS q WHERE s IS NOT NULL",
        (list(APP_TABLES),),
    )
    sequences = cursor.fetchone()[0]
    rows = {}
    for table in APP_TABLES:
        cursor.execute(f'SELECT count(*) FROM "{table}"')
        rows[table] = cursor.fetchone()[0]
    connection.close()
    return {
        "columns": columns,
        "foreign_keys": foreign_keys,
        "check_constraints": checks,
        "primary_keys": primary_keys,
        "indexes": indexes,
        "id_sequences": sequences,
        "rows": rows,
    }


COMPARED_COLUMNS = (
    ("users", "is_active"),
    ("users", "created_at"),
    ("validation_runs", "started_at"),
    ("validation_runs", "finished_at"),
    ("validation_results", "duration_ms"),
    ("validation_results", "message"),
    ("validation_results", "details"),
)


def differing_values(ours_url: str, their_url: str) -> dict:
    """Per column: rows whose value, as text, differs between the two databases (ours is
    verified equal to the SQLite file). JSON is compared as jsonb on both sides."""
    result = {}
    connections = [psycopg2.connect(ours_url), psycopg2.connect(their_url)]
    for connection in connections:
        with connection.cursor() as cursor:
            cursor.execute("SET TimeZone = 'UTC'; SET extra_float_digits = 1")
    for table, column in COMPARED_COLUMNS:
        expression = f"{column}::jsonb::text" if column == "details" else f"{column}::text"
        values = []
        for connection in connections:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT id, {expression} FROM {table}")
                values.append(dict(cursor.fetchall()))
        ours, theirs = values
        differ = [key for key in ours if ours[key] != theirs.get(key)]
        example = differ[0] if differ else None
        result[f"{table}.{column}"] = {
            "rows": len(ours),
            "differ": len(differ),
            "example": None
            if example is None
            else {"id": example, "ours": ours[example], "pgloader": theirs.get(example)},
        }
    for connection in connections:
        connection.close()
    return result


# Values SQLite holds that the app itself does not write, but older writers did: what each tool
# makes of them. (run id, started_at as stored in SQLite, started_at the model means, UTC)
LOOSE_RUNS = (
    (9001, 0, "1970-01-01 00:00:00+00"),
    (9002, 1700000000.5, "2023-11-14 22:13:20.5+00"),
    (9003, "2024-01-01T12:00:00+02:00", "2024-01-01 10:00:00+00"),
    (9004, "2024-01-01T12:00:00Z", "2024-01-01 12:00:00+00"),
    (9005, "1999-12-31", "1999-12-31 00:00:00+00"),
)
LOOSE_FLAGS = ((1, "true", "true"), (4, "no", "false"))


def loose_comparison(databases: Databases, work: Path, meter: CpuMeter) -> dict:
    """A small fixture with epoch numbers, ISO strings with offsets and 'true'/'no' flags."""
    import sqlite3

    from app.migrate_sqlite.fixture import generate

    path = work / "loose.db"
    generate(path, results=500, seed=5)
    connection = sqlite3.connect(path)
    with connection:
        for run_id, started, _ in LOOSE_RUNS:
            connection.execute(
                "INSERT INTO validation_runs (id, suite, status, total, passed, failed, warned,"
                " errored, started_at, created_at) VALUES (?, 'loose', 'passed', 1, 1, 0, 0, 0, ?,"
                " '2024-01-01 00:00:00')",
                (run_id, started),
            )
        for user_id, flag, _ in LOOSE_FLAGS:
            connection.execute("UPDATE users SET is_active = ? WHERE id = ?", (flag, user_id))
    (runs,) = connection.execute("SELECT count(*) FROM validation_runs").fetchone()
    connection.close()
    result = {"sqlite_runs": runs}
    for tool in ("ours", "pgloader"):
        url = databases.fresh(f"loose_{tool}")
        try:
            if tool == "ours":
                run_ours(path, url, work / "loose-report.json", None, meter)
            else:
                run_pgloader(path, url, meter)
            target = psycopg2.connect(url)
            with target.cursor() as cursor:
                cursor.execute("SET TimeZone = 'UTC'")
                cursor.execute("SELECT count(*) FROM validation_runs")
                (count,) = cursor.fetchone()
                cursor.execute(
                    "SELECT id, started_at::text FROM validation_runs WHERE id = ANY (%s)",
                    ([r[0] for r in LOOSE_RUNS],),
                )
                started = dict(cursor.fetchall())
                cursor.execute(
                    "SELECT id, is_active::text FROM users WHERE id = ANY (%s)",
                    ([f[0] for f in LOOSE_FLAGS],),
                )
                flags = dict(cursor.fetchall())
            target.close()
        finally:
            databases.drop(url)
        result[tool] = {
            "runs": count,
            "started_at": {
                str(run_id): started.get(run_id, "(row missing)") or "NULL"
                for run_id, _, _ in LOOSE_RUNS
            },
            "is_active": {str(user_id): flags.get(user_id) for user_id, _, _ in LOOSE_FLAGS},
        }
    return result


INTERESTING_COLUMNS = (
    "users.is_active",
    "subscriptions.is_active",
    "users.created_at",
    "validation_runs.started_at",
    "validation_runs.finished_at",
    "validation_results.details",
    "validation_results.id",
    "validation_results.duration_ms",
    "validation_runs.status",
)


def markdown(result: dict) -> str:
    s = result["summary"]
    lines = [
        f"# SQLite -> PostgreSQL migration: ours vs pgloader ({result['taken_at']})",
        "",
        (
            f"Fixture: {result['fixture']['rows']} rows ({result['fixture']['results']} validation"
            f" results), {result['fixture']['size_mb']} MB, app schema (`python -m"
            " app.migrate_sqlite.fixture`). PostgreSQL"
            f" {result['environment']['postgresql']} on this host, {result['environment']['cpus']}"
            f" CPUs, shared with other jobs (load average {result['environment']['load_before']}"
            f" before, {result['environment']['load_after']} after). {result['rounds']} rounds,"
            " alternating which tool goes first; medians."
        ),
        "",
        "| measure | ours | pgloader | ours / pgloader |",
        "|---|---:|---:|---:|",
    ]
    for key, label in (
        (
            "inside",
            "rows/s, tool's own clock (ours: whole run incl. verification; pgloader: Total import time)",
        ),
        (
            "inside_without_verify",
            "rows/s, ours without its final verification phase (source checksums are taken during the load)",
        ),
        ("wall", "rows/s, process wall clock (ours includes Python + app start-up)"),
    ):
        ours, theirs = s[f"ours_{key}_rows_per_s"], s[f"pgloader_{key}_rows_per_s"]
        lines.append(f"| {label} | {ours:,.0f} | {theirs:,.0f} | {ours / theirs:.2f} |")
    if "ours_postgres_cpu_seconds" in s and "pgloader_postgres_cpu_seconds" in s:
        ours_cpu = s["ours_tool_cpu_seconds"] + s["ours_postgres_cpu_seconds"]
        their_cpu = s["pgloader_tool_cpu_seconds"] + s["pgloader_postgres_cpu_seconds"]
        lines.append(
            f"| CPU seconds, tool + PostgreSQL (contention-proof; lower is better)"
            f" | {s['ours_tool_cpu_seconds']:.2f} + {s['ours_postgres_cpu_seconds']:.2f}"
            f" | {s['pgloader_tool_cpu_seconds']:.2f} + {s['pgloader_postgres_cpu_seconds']:.2f}"
            f" | {ours_cpu / their_cpu:.2f} |"
        )
    lines += [
        "",
        f"Our phases (median seconds): {result['summary']['ours_phases_median']}.",
        f"Our checksums matched in every round: {s['ours_checksums_match']}.",
        "",
        "## What each leaves in PostgreSQL",
        "",
        "| | ours | pgloader |",
        "|---|---|---|",
    ]
    ours, theirs = result["schema"]["ours"], result["schema"]["pgloader"]
    for column in INTERESTING_COLUMNS:
        a, b = ours["columns"].get(column, {}), theirs["columns"].get(column, {})
        lines.append(
            f"| `{column}` | {a.get('type')}{' NOT NULL' if a.get('not_null') else ''}"
            f" | {b.get('type')}{' NOT NULL' if b.get('not_null') else ''} |"
        )
    for key in ("foreign_keys", "check_constraints", "indexes", "id_sequences"):
        lines.append(f"| {key.replace('_', ' ')} | {ours[key]} | {theirs[key]} |")
    not_null = sum(c["not_null"] for c in ours["columns"].values())
    lines.append(
        f"| NOT NULL columns | {not_null} | {sum(c['not_null'] for c in theirs['columns'].values())} |"
    )
    lines.append(f"| rows | {sum(ours['rows'].values())} | {sum(theirs['rows'].values())} |")
    lines += ["", "## Values pgloader stored differently (ours: verified equal to SQLite)", ""]
    lines += ["| column | rows | differ | example (id: ours / pgloader) |", "|---|---:|---:|---|"]
    for column, found in result["pgloader_values_differing_from_ours"].items():
        example = found["example"]
        shown = (
            ""
            if example is None
            else (
                f"{example['id']}: `{str(example['ours'])[:40]}` / `{str(example['pgloader'])[:40]}`"
            )
        )
        lines.append(f"| `{column}` | {found['rows']} | {found['differ']} | {shown} |")
    loose = result.get("loose_values")
    if loose:
        lines += [
            "",
            (
                "## Loose SQLite values (a 500-result fixture plus what older writers left: epoch"
                f" numbers, ISO strings with offsets, 'true'/'no' flags; {loose['sqlite_runs']} runs)"
            ),
            "",
            "| value in SQLite | the model means | ours | pgloader |",
            "|---|---|---|---|",
        ]
        for run_id, raw, meant in LOOSE_RUNS:
            lines.append(
                f"| runs.started_at `{raw!r}` | {meant} | {loose['ours']['started_at'][str(run_id)]}"
                f" | {loose['pgloader']['started_at'][str(run_id)]} |"
            )
        for user_id, raw, meant in LOOSE_FLAGS:
            lines.append(
                f"| users.is_active `{raw!r}` | {meant} | {loose['ours']['is_active'][str(user_id)]}"
                f" | {loose['pgloader']['is_active'][str(user_id)]} |"
            )
        lines.append(
            f"| validation_runs rows | {loose['sqlite_runs']} | {loose['ours']['runs']}"
            f" | {loose['pgloader']['runs']} |"
        )
    lines += [
        "",
        (
            "Ours takes the schema from `alembic upgrade head` and converts each value to it, then"
            " verifies counts and checksums; pgloader derives a schema from SQLite's declared types."
        ),
        "Raw numbers per round: the .json file of the same name.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=221_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=None, help="migrate-sqlite --jobs")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    if shutil.which("pgloader") is None:
        raise SystemExit("pgloader is not installed: apt-get install pgloader")

    databases = Databases(base_url())
    sqlite = fixture(args.results, args.seed)
    import sqlite3

    source = sqlite3.connect(sqlite)
    rows = sum(source.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in APP_TABLES)
    source.close()
    load_before = os.getloadavg()[0]
    meter = CpuMeter(databases.admin)
    rounds, schema = [], {}
    work = ROOT / ".cache" / "bench"
    for number in range(args.repeat):
        order = ("ours", "pgloader") if number % 2 == 0 else ("pgloader", "ours")
        entry = {"load_average": os.getloadavg()[0]}
        urls = {}
        for tool in order:
            urls[tool] = url = databases.fresh(tool)
            log(f"round {number + 1}/{args.repeat}: {tool}")
            if tool == "ours":
                entry[tool] = run_ours(sqlite, url, work / "report.json", args.jobs, meter)
            else:
                entry[tool] = run_pgloader(sqlite, url, meter)
        if number == args.repeat - 1:
            schema = {tool: describe(url) for tool, url in urls.items()}
            values = differing_values(urls["ours"], urls["pgloader"])
        for url in urls.values():
            databases.drop(url)
        rounds.append(entry)
        log(f"round {number + 1}: {json.dumps(entry)}")

    def median(tool: str, key: str) -> float:
        return statistics.median(r[tool][key] for r in rounds)

    ours_phases = {
        phase: round(
            statistics.median(r["ours"]["phases_seconds"].get(phase, 0) for r in rounds), 3
        )
        for phase in rounds[0]["ours"]["phases_seconds"]
    }
    summary = {
        "ours_inside_rows_per_s": rows / median("ours", "engine_seconds"),
        "pgloader_inside_rows_per_s": rows / median("pgloader", "import_seconds"),
        "ours_inside_without_verify_rows_per_s": rows / median("ours", "without_verify_seconds"),
        "pgloader_inside_without_verify_rows_per_s": rows / median("pgloader", "import_seconds"),
        "ours_wall_rows_per_s": rows / median("ours", "wall_seconds"),
        "pgloader_wall_rows_per_s": rows / median("pgloader", "wall_seconds"),
        "ours_phases_median": ours_phases,
        "ours_checksums_match": all(r["ours"]["checksums_match"] for r in rounds),
    }
    for tool in ("ours", "pgloader"):
        summary[f"{tool}_tool_cpu_seconds"] = median(tool, "tool_cpu_seconds")
        if all(r[tool]["postgres_cpu_seconds"] is not None for r in rounds):
            summary[f"{tool}_postgres_cpu_seconds"] = median(tool, "postgres_cpu_seconds")
    summary["ratio_inside"] = (
        summary["ours_inside_rows_per_s"] / summary["pgloader_inside_rows_per_s"]
    )
    summary["ratio_without_verify"] = (
        summary["ours_inside_without_verify_rows_per_s"]
        / summary["pgloader_inside_without_verify_rows_per_s"]
    )
    summary["ratio_wall"] = summary["ours_wall_rows_per_s"] / summary["pgloader_wall_rows_per_s"]
    with databases.admin.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server = cursor.fetchone()[0]
    log("loose values: both tools on a small fixture with what older writers left")
    loose = loose_comparison(databases, work, meter)
    taken = dt.datetime.now(dt.UTC)
    result = {
        "taken_at": taken.isoformat(timespec="seconds"),
        "fixture": {
            "results": args.results,
            "seed": args.seed,
            "rows": rows,
            "size_mb": round(sqlite.stat().st_size / 1e6, 1),
        },
        "environment": {
            "cpus": os.cpu_count(),
            "postgresql": server,
            "pgloader": subprocess.run(
                ["pgloader", "--version"], capture_output=True, text=True, check=False
            ).stdout.splitlines()[0],
            "python": platform.python_version(),
            "load_before": round(load_before, 2),
            "load_after": round(os.getloadavg()[0], 2),
            "jobs": args.jobs,
        },
        "rounds": len(rounds),
        "per_round": rounds,
        "summary": {k: round(v, 3) if isinstance(v, float) else v for k, v in summary.items()},
        "schema": schema,
        "pgloader_values_differing_from_ours": values,
        "loose_values": loose,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"migration-{taken.strftime('%Y%m%dT%H%M%SZ')}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    log(f"wrote {stem}.json and {stem}.md")


if __name__ == "__main__":
    main()
