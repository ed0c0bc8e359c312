#!/usr/bin/env python3
"""Steady GET traffic against the app while something else happens (a switch, a restart).

    load.py URL OUTPUT.json [THREADS]

Every thread opens a new connection per request (no keep-alive, so a request is never
sent on a connection the server is closing) and waits up to 300 s for the answer: a
request that waits in the listen backlog during a restart is slow, not failed. It stops
when OUTPUT.json.stop exists and writes: requests, statuses, connection errors, the
slowest answer in seconds, and the "release" values of JSON answers in the order they
were first seen.
"""

import http.client
import json
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit


def main() -> int:
    url, output = urlsplit(sys.argv[1]), Path(sys.argv[2])
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    stop = output.with_name(output.name + ".stop")
    lock = threading.Lock()
    result = {"requests": 0, "statuses": {}, "errors": [], "releases": [], "slowest": 0.0}

    def run():
        while not stop.exists():
            connection = http.client.HTTPConnection(url.hostname, url.port, timeout=300)
            started = time.monotonic()
            try:
                connection.request("GET", url.path)
                response = connection.getresponse()
                body = response.read()
                status, error = str(response.status), None
            except (OSError, http.client.HTTPException) as exc:
                status, error, body = None, f"{time.time():.3f} {type(exc).__name__}: {exc}", b""
            finally:
                connection.close()
            try:
                release = json.loads(body).get("release")
            except ValueError:
                release = None
            elapsed = time.monotonic() - started
            with lock:
                result["requests"] += 1
                result["slowest"] = max(result["slowest"], round(elapsed, 3))
                if status:
                    result["statuses"][status] = result["statuses"].get(status, 0) + 1
                if error:
                    result["errors"].append(error)
                if release and release not in result["releases"]:
                    result["releases"].append(release)
            time.sleep(0.02)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    output.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
