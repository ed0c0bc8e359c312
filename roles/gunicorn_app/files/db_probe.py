"""Read-only probe of the app's database, reached the way the app reaches it.

Fed on stdin by tasks/verify.yml to a release's own interpreter, in that release's directory
(so `app` imports and `.env` is the app's). Prints one JSON object: the number of users
(the seed's Quick Validation 1) and the indexes the app's models declare that the
database lacks. Exit status 1 with the error on stderr when the database cannot be read.
"""

import json
import sys

import psycopg2
from dotenv import dotenv_values

from app.models import db


def main() -> int:
    wanted = sorted(index.name for table in db.metadata.tables.values() for index in table.indexes)
    try:
        url = dotenv_values(".env")["DATABASE_URL"]
        with psycopg2.connect(url, connect_timeout=5) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM users")
            users = cursor.fetchone()[0]
            cursor.execute("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
            present = {row[0] for row in cursor.fetchall()}
    except psycopg2.Error as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"database: {first_line}", file=sys.stderr)
        return 1
    missing = [name for name in wanted if name not in present]
    print(json.dumps({"users": users, "indexes": len(wanted), "missing_indexes": missing}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
