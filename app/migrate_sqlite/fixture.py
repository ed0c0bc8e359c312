"""A synthetic SQLite database in the app's schema, for tests, benchmarks and rehearsals.

    python -m app.migrate_sqlite.fixture PATH [--results 221000] [--seed 1]

The schema comes from the app's Alembic migrations (as a real SQLite database of the app
would); the rows are written the way the app writes them on SQLite (SQLAlchemy's text
timestamps without a zone, 0/1 booleans, JSON text), with the awkward values a real database
collects: NULLs, Unicode in names and JSON, very long messages with tabs, newlines and
backslashes, timestamps before 1970, floats that need all 17 digits. The same seed gives the
same rows; timestamps are relative to ``now`` (default: the current hour).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sqlite3
from pathlib import Path

UTC = dt.UTC
SUITES = (
    "smoke",
    "api",
    "ui",
    "billing",
    "search",
    "auth",
    "payments",
    "reports",
    "mobile-ios",
    "mobile-android",
    "intégration-ü",
    "性能-perf",
)
ENVIRONMENTS = ("production", "staging", "dev", "qa-ß")
UNICODE_BITS = ("ü", "日本語", "🚀", "שלום", "Ωμέγα", "naïve café", "\u200b", "𝔘𝔫𝔦")
RESULT_STATUSES = ("pass", "fail", "warn", "error")
RESULT_WEIGHTS = (80, 10, 7, 3)
# Floats that only survive a copy carrying all 17 significant digits, or that print oddly.
AWKWARD_FLOATS = (
    0.1,
    1 / 3,
    2 / 3,
    1e15,
    1.5e15,
    123456789012345.67,
    1e-7,
    5e-324,
    1e300,
    2.2250738585072014e-308,
    0.30000000000000004,
    1e16,
    9007199254740993.0,
)


def sqlite_timestamp(value: dt.datetime) -> str:
    """SQLAlchemy's storage format on SQLite: naive UTC, always six fraction digits."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def build_schema(path: Path) -> None:
    """An empty SQLite database at path, built by the app's Alembic migrations (upgrade head)."""
    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import db

    app = create_app(
        {
            "CONFIG_NAME": "testing",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}",
            "SQLALCHEMY_ENGINE_OPTIONS": {},
        }
    )
    with app.app_context():
        upgrade()
        db.engine.dispose()


class _Rows:
    def __init__(self, seed: int, now: dt.datetime):
        self.rng = random.Random(seed)
        self.now = now
        letters = "abcdefghijklmnopqrstuvwxyz"
        self.vocabulary = [
            "".join(self.rng.choices(letters, k=self.rng.randint(2, 9))) for _ in range(2000)
        ] + list(UNICODE_BITS) * 20

    def text(self, low: int, high: int) -> str:
        """Words from a fixed vocabulary (some of them Unicode), about low..high characters."""
        count = max(1, self.rng.randint(low, high) // 7)
        return " ".join(self.rng.choices(self.vocabulary, k=count))

    def long_text(self) -> str:
        """A stack-trace-like message of 20-120 KB with tabs, newlines, CR, backslashes and quotes."""
        rng = self.rng
        lines = [
            f'\tat C:\\builds\\{rng.choice(self.vocabulary)}\\mod.py:{rng.randint(1, 999)} "{self.text(10, 60)}"'
            for _ in range(rng.randint(20_000, 120_000) // 60)
        ]
        return "Traceback:\r\n" + "\n".join(lines) + "\n\\N is not NULL\x7f end"

    def started_at(self) -> dt.datetime:
        rng = self.rng
        if rng.random() < 0.02:  # before 1970: negative epoch seconds
            return dt.datetime(1901, 1, 1, tzinfo=UTC) + dt.timedelta(
                seconds=rng.randint(0, 69 * 365 * 86400), microseconds=rng.randint(0, 999_999)
            )
        return self.now - dt.timedelta(
            seconds=rng.randint(60, 90 * 86400), microseconds=rng.randint(0, 999_999)
        )

    def duration(self) -> float | None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.05:
            return None
        if roll < 0.06:
            return rng.choice(AWKWARD_FLOATS)
        if roll < 0.2:
            return float(rng.randint(0, 5000))
        return rng.lognormvariate(4, 1.5)

    def message(self, status: str) -> str | None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.001:
            return self.long_text()
        if status == "pass" and roll < 0.6:
            return None
        if roll < 0.02:
            return rng.choice(("tab\there", "line1\nline2", "cr\rlf\r\n", "back\\slash", "\\N", ""))
        return self.text(10, 160)

    def details(self, status: str) -> str | None:
        rng = self.rng
        if status == "pass" and rng.random() < 0.85:
            return None
        doc = {
            "retries": rng.randint(0, 3),
            "expected": self.text(3, 30),
            "actual": self.text(3, 30),
            "tags": rng.sample(("slow", "flaky", "db", "net", "ü", "🚀"), k=rng.randint(0, 3)),
            "ratio": rng.random(),
        }
        if rng.random() < 0.2:
            doc["nested"] = {"z": None, "a": [1, 2.5, True, False], "escapes": 'q"uote\\\n\t/'}
        if rng.random() < 0.1:
            doc["big"] = 10**20 + rng.randint(0, 99)
        # The app's SQLAlchemy JSON escapes non-ASCII; other writers do not.
        return json.dumps(doc, ensure_ascii=rng.random() < 0.5)


def generate(
    path: Path, results: int = 221_000, seed: int = 1, now: dt.datetime | None = None
) -> dict:
    """Write the fixture to path (replaced if present); return the row count of each table."""
    path = Path(path)
    path.unlink(missing_ok=True)
    build_schema(path)
    now = now or dt.datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    gen = _Rows(seed, now)
    rng = gen.rng

    users = []
    for i in range(1, 41):
        name = f"user{i}" if i % 7 else f"jürgen.{i}"
        created = gen.started_at()
        users.append(
            (
                i,
                f"{name}@example.org",
                "$argon2id$v=19$m=65536,t=3,p=4$" + "x" * 60,
                "admin" if i <= 3 else "viewer",
                0 if i % 11 == 0 else 1,
                sqlite_timestamp(created),
            )
        )
    subscriptions = []
    for user_id, *_ in users:
        for suite in rng.sample((*SUITES, "*"), k=rng.randint(0, 4)):
            subscriptions.append(
                (
                    len(subscriptions) + 1,
                    user_id,
                    suite,
                    rng.choice((0, 1, 1)),
                    sqlite_timestamp(gen.started_at()),
                )
            )

    runs, result_rows = [], []
    run_id = 0
    while len(result_rows) < results:
        run_id += 1
        count = min(rng.randint(1, 19), results - len(result_rows))
        statuses = rng.choices(RESULT_STATUSES, weights=RESULT_WEIGHTS, k=count)
        for status in statuses:
            result_rows.append(
                (
                    len(result_rows) + 1,
                    run_id,
                    f"check_{rng.randint(0, 9999):04d}"
                    + (f" {rng.choice(UNICODE_BITS)}" if rng.random() < 0.05 else ""),
                    status,
                    gen.duration(),
                    gen.message(status),
                    gen.details(status),
                )
            )
        if "fail" in statuses or "error" in statuses:
            run_status = "failed"
        else:
            run_status = "warned" if "warn" in statuses else "passed"
        started = gen.started_at()
        finished = (
            None if rng.random() < 0.1 else started + dt.timedelta(seconds=rng.randint(1, 3600))
        )
        runs.append(
            (
                run_id,
                rng.choice(SUITES),
                rng.choice(ENVIRONMENTS) if rng.random() < 0.8 else None,
                f"{rng.getrandbits(160):040x}" if rng.random() < 0.7 else None,
                run_status,
                count,
                statuses.count("pass"),
                statuses.count("fail"),
                statuses.count("warn"),
                statuses.count("error"),
                sqlite_timestamp(started),
                finished and sqlite_timestamp(finished),
                rng.randint(1, len(users)) if rng.random() < 0.7 else None,
                sqlite_timestamp(started + dt.timedelta(milliseconds=rng.randint(0, 5000))),
            )
        )

    connection = sqlite3.connect(path)
    with connection:
        connection.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?)", users)
        connection.executemany("INSERT INTO subscriptions VALUES (?, ?, ?, ?, ?)", subscriptions)
        connection.executemany(
            "INSERT INTO validation_runs (id, suite, environment, git_ref, status, total, passed,"
            " failed, warned, errored, started_at, finished_at, created_by_id, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            runs,
        )
        connection.executemany(
            "INSERT INTO validation_results (id, run_id, name, status, duration_ms, message, details)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            result_rows,
        )
    connection.close()
    return {
        "users": len(users),
        "subscriptions": len(subscriptions),
        "validation_runs": len(runs),
        "validation_results": len(result_rows),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--results", type=int, default=221_000, help="validation_results rows")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    counts = generate(args.path, results=args.results, seed=args.seed)
    size = args.path.stat().st_size / 1e6
    print(f"{args.path}: {sum(counts.values())} rows ({counts}), {size:.1f} MB")


if __name__ == "__main__":
    main()
