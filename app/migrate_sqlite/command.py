"""`flask migrate-sqlite`: copy an SQLite database of the app into the app's PostgreSQL.

Kept light: the engine is imported when the command runs, not when the app starts.
"""

import json
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext


@click.command("migrate-sqlite")
@click.argument("sqlite_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the JSON report here (default: migrate-sqlite-report.json in the instance folder).",
)
@click.option("--skip-bad-rows", is_flag=True, help="Leave out rows that cannot be converted.")
@click.option(
    "--force", is_flag=True, help="Replace whatever different data the target's app tables hold."
)
@click.option(
    "--check", is_flag=True, help="Only report what a run would do; writes nothing to PostgreSQL."
)
@click.option(
    "--jobs", type=click.IntRange(1, 32), help="Parallel workers (default: CPUs, at most 4)."
)
@click.option(
    "--segment-rows",
    type=click.IntRange(100),
    default=10_000,
    show_default=True,
    help="Rows per segment: the unit of work, commit and resume.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the JSON report (with the summary in it) instead of the summary.",
)
@click.option(
    "--max-bad-rows",
    type=click.IntRange(1),
    default=1000,
    show_default=True,
    help="Stop looking after this many bad rows.",
)
@with_appcontext
def migrate_sqlite(
    sqlite_path, report_path, skip_bad_rows, force, check, jobs, segment_rows, as_json, max_bad_rows
):
    """Migrate the app's data from SQLITE_PATH into the app's PostgreSQL (DATABASE_URL).

    The schema comes from the app's migrations (alembic upgrade head). Re-running on a migrated
    database verifies it and writes nothing; an interrupted run resumes where it stopped.
    Exit status: 0 done (or nothing to do), 1 failed, 3 refused (the target holds other data).
    """
    from app.migrate_sqlite.engine import MigrationError, Options, run

    if report_path is None:
        report_path = Path(current_app.instance_path) / "migrate-sqlite-report.json"
    options = Options(
        sqlite_path=str(sqlite_path),
        report_path=str(report_path),
        skip_bad_rows=skip_bad_rows,
        force=force,
        check=check,
        jobs=jobs,
        segment_rows=segment_rows,
        max_bad_rows=max_bad_rows,
        echo=lambda line: click.echo(line, err=True),
    )
    try:
        report, exit_code = run(current_app, options), 0
    except MigrationError as exc:
        report, exit_code = getattr(exc, "report", None), exc.exit_code
        if report is None:
            click.echo(str(exc))
            sys.exit(exit_code)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(report.summary())
        click.echo(f"report: {report_path}")
    sys.exit(exit_code)
