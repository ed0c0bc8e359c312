"""What the phases of a run share: its errors, options and state, and the worker connections.

The phases (inspection.py, load.py, finalize.py, verify.py) are plain functions that take the
run's MigrationState as their first argument; engine.Migration is that state plus the run.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg2
from flask import Flask

from app.migrate_sqlite import target
from app.migrate_sqlite.report import BadRow, Report
from app.migrate_sqlite.source import Source, SourceConnection


class MigrationError(RuntimeError):
    """The run failed; the message says why. The target is left resumable."""

    exit_code = 1


class MigrationRefused(MigrationError):
    """Nothing was written: the target holds other data (or another run holds the lock)."""

    exit_code = 3


class TooManyBadRows(MigrationError):
    pass


@dataclass
class Options:
    sqlite_path: str
    report_path: str | None = None
    skip_bad_rows: bool = False
    force: bool = False
    check: bool = False
    jobs: int | None = None
    segment_rows: int = 10_000
    max_bad_rows: int = 1000
    echo: Callable[[str], None] = field(default=lambda line: print(line, flush=True))


class MigrationState:
    """One run's state, shared by its phases: the app, options, report, bad rows so far and
    the main connection. (Not the ``migrate_sqlite`` schema, which target.py reads and
    writes.)"""

    def __init__(self, app: Flask, options: Options):
        self.app = app
        self.options = options
        self.url = app.config["SQLALCHEMY_DATABASE_URI"]
        self.jobs = options.jobs or min(4, os.cpu_count() or 1)
        self.report = Report(options.sqlite_path)
        self.report.options = {
            "skip_bad_rows": options.skip_bad_rows,
            "force": options.force,
            "check": options.check,
            "jobs": self.jobs,
            "segment_rows": options.segment_rows,
        }
        self.echo_lock = threading.Lock()
        self.bad_rows: list[BadRow] = []
        self.main = None
        self.rows_deleted_from: set[str] = set()  # tables finalising deleted orphans from

    def echo(self, line: str) -> None:
        with self.echo_lock:
            self.options.echo(f"migrate-sqlite: {line}")


class Workers:
    """Thread-local PostgreSQL and SQLite connections, closed together."""

    def __init__(self, url: str, sqlite_file: Source, *, readonly: bool):
        self.url, self.sqlite_file, self.readonly = url, sqlite_file, readonly
        self.local = threading.local()
        self.opened: list = []
        self.lock = threading.Lock()

    def pg(self):
        if getattr(self.local, "pg", None) is None:
            self.local.pg = target.connect(self.url, readonly=self.readonly, bulk=not self.readonly)
            with self.lock:
                self.opened.append(self.local.pg)
        return self.local.pg

    def sqlite(self) -> SourceConnection:
        if getattr(self.local, "sqlite", None) is None:
            self.local.sqlite = self.sqlite_file.connect()
            with self.lock:
                self.opened.append(self.local.sqlite)
        return self.local.sqlite

    def close(self) -> None:
        for connection in self.opened:
            try:
                connection.close()
            except (psycopg2.Error, sqlite3.Error):
                pass
