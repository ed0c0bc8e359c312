"""The migration report: a JSON document (for the role and for the record) and its summary."""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

# Statuses, and whether each leaves the target as the source (success) or not.
MIGRATED = "migrated"  # rows were written and verified
ALREADY_MIGRATED = "already_migrated"  # verified equal to the source, nothing written
PENDING = "pending"  # --check: a migration would copy everything
RESUMABLE = "resumable"  # --check: an interrupted migration would be finished
CONFLICT = "conflict"  # the target holds other data: refused without --force
FAILED = "failed"
SUCCESS = (MIGRATED, ALREADY_MIGRATED, PENDING, RESUMABLE)


@dataclass
class BadRow:
    table: str
    pk: str
    reason: str


@dataclass
class TableReport:
    name: str
    source_rows: int = 0
    copied_rows: int = 0  # rows written by this run
    target_rows: int | None = None  # rows in PostgreSQL at verification
    skipped_rows: int = 0  # left out with --skip-bad-rows (this run and earlier ones)
    segments: int = 0
    resumed_segments: int = 0  # committed by an earlier, interrupted run
    load_seconds: float = 0.0  # summed over segments (they run in parallel)
    source_checksum: str | None = None
    target_checksum: str | None = None
    checksum_match: bool | None = None
    mismatches: list = field(default_factory=list)

    @property
    def rows_per_second(self) -> float | None:
        return round(self.copied_rows / self.load_seconds) if self.load_seconds else None


class Report:
    def __init__(self, sqlite_path: str):
        self.status = FAILED
        self.message = ""
        self.changed = False
        self.resumed = False
        self.started_at = dt.datetime.now(dt.UTC)
        self.finished_at: dt.datetime | None = None
        self.source: dict = {"path": str(sqlite_path)}
        self.target: dict = {}
        self.options: dict = {}
        self.phases: dict[str, float] = {}
        self.tables: dict[str, TableReport] = {}
        self.skipped_rows: list[BadRow] = []
        self.bad_rows: list[BadRow] = []
        self.warnings: list[str] = []

    def table(self, name: str) -> TableReport:
        return self.tables.setdefault(name, TableReport(name))

    @property
    def duration(self) -> float:
        end = self.finished_at or dt.datetime.now(dt.UTC)
        return (end - self.started_at).total_seconds()

    @property
    def copied_rows(self) -> int:
        return sum(t.copied_rows for t in self.tables.values())

    def to_dict(self) -> dict:
        copied = self.copied_rows
        return {
            "status": self.status,
            "message": self.message,
            "changed": self.changed,
            "resumed": self.resumed,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at and self.finished_at.isoformat(),
            "duration_seconds": round(self.duration, 3),
            "rows_copied": copied,
            "rows_per_second": round(copied / self.duration) if copied and self.duration else None,
            "source": self.source,
            "target": self.target,
            "options": self.options,
            "phases_seconds": {name: round(value, 3) for name, value in self.phases.items()},
            "tables": [
                {
                    **asdict(t),
                    "load_seconds": round(t.load_seconds, 3),
                    "rows_per_second": t.rows_per_second,
                }
                for t in self.tables.values()
            ],
            "skipped_rows": [asdict(row) for row in self.skipped_rows],
            "bad_rows": [asdict(row) for row in self.bad_rows],
            "warnings": self.warnings,
            "summary": self.summary(),
        }

    def write(self, path: str | Path) -> None:
        """Write the JSON report atomically (a reader never sees half a file), mode 0640."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640), "w") as handle:
            json.dump(self.to_dict(), handle, indent=2, ensure_ascii=False)
            handle.write("\n")
        os.replace(tmp, path)

    def summary(self) -> str:
        """The human-readable summary the command prints and the role shows."""
        headline = {
            MIGRATED: "migrated, verified",
            ALREADY_MIGRATED: "already migrated, verified",
            PENDING: "not migrated yet (check only: nothing written)",
            RESUMABLE: "an interrupted migration can be resumed (check only: nothing written)",
            CONFLICT: "refused",
            FAILED: "FAILED",
        }[self.status]
        lines = [f"SQLite -> PostgreSQL: {headline}"]
        if self.message:
            lines.append(f"  {self.message}")
        source = self.source
        if "sha256" in source:
            lines.append(
                f"  source {source['path']} ({source.get('size_bytes', 0) / 1e6:.1f} MB,"
                f" sha256 {source['sha256'][:12]}, revision {source.get('alembic_revision')})"
            )
        if self.target:
            lines.append(
                f"  target {self.target.get('url')} (PostgreSQL {self.target.get('server_version')},"
                f" revision {self.target.get('alembic_revision')})"
            )
        if self.tables:
            lines.append(
                f"  {'table':<22}{'source':>10}{'copied':>10}{'in pg':>10}{'skipped':>9}"
                f"{'rows/s':>10}  checksum"
            )
            for t in self.tables.values():
                check = {True: "match", False: "MISMATCH", None: "-"}[t.checksum_match]
                digest = (t.target_checksum or "").split(":")[-1][:12]
                lines.append(
                    f"  {t.name:<22}{t.source_rows:>10}{t.copied_rows:>10}"
                    f"{'-' if t.target_rows is None else t.target_rows:>10}{t.skipped_rows:>9}"
                    f"{t.rows_per_second or '-':>10}  {check} {digest}"
                )
        phases = ", ".join(f"{k} {v:.2f}s" for k, v in self.phases.items())
        copied = self.copied_rows
        rate = (
            f" ({copied / self.duration:,.0f} rows/s overall)" if copied and self.duration else ""
        )
        lines.append(f"  {copied} rows copied in {self.duration:.2f}s{rate}; {phases}")
        for row in self.bad_rows[:20]:
            lines.append(f"  bad row: {row.table} pk={row.pk}: {row.reason}")
        if len(self.bad_rows) > 20:
            lines.append(f"  ... and {len(self.bad_rows) - 20} more bad rows (see the JSON report)")
        for row in self.skipped_rows[:20]:
            lines.append(f"  skipped: {row.table} pk={row.pk}: {row.reason}")
        if len(self.skipped_rows) > 20:
            lines.append(
                f"  ... and {len(self.skipped_rows) - 20} more skipped (see the JSON report)"
            )
        lines.extend(f"  warning: {warning}" for warning in self.warnings)
        return "\n".join(lines)
