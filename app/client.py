"""The client's half of the API's retry rules, for anything that talks to it with requests
(files/loadgen.py, the stack tests; a CI pipeline can copy it). It needs only requests, and
is loaded by path where the app's own dependencies are not installed.

    reply = client.send(session, "POST", url + "/api/runs", json=run, headers=auth)

- A POST is sent with an Idempotency-Key (a new UUID unless one is given), so sending it
  again is safe: the app creates the run once and replays its first answer.
- What is safe is sent again, up to ATTEMPTS times: a request whose connection failed (reset,
  closed, timed out) and a 502, 503 or 504 answer; a GET or HEAD, or a POST with its key.
  Between tries it waits what Retry-After says (capped at MAX_WAIT), else a short backoff.
- Anything else (a 4xx, a 500) is returned at once: sending it again would not help.
"""

from __future__ import annotations

import time
import uuid

import requests

ATTEMPTS = 5
MAX_WAIT = 5.0
RETRY_STATUSES = frozenset({502, 503, 504})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Reply:
    """The final response, and how many tries it took."""

    def __init__(self, response: requests.Response, tries: int, key: str | None) -> None:
        self.response = response
        self.tries = tries
        self.key = key


def _wait(response: requests.Response | None, attempt: int) -> float:
    header = response.headers.get("Retry-After", "") if response is not None else ""
    if header.isdigit():
        return min(float(header), MAX_WAIT)
    return min(0.2 * 2**attempt, MAX_WAIT)


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    idempotency_key: str | None = None,
    attempts: int = ATTEMPTS,
    **kwargs,
) -> Reply:
    """Send, and send again what is safe to; raise the last connection error if every try
    failed to get an answer."""
    method = method.upper()
    headers = dict(kwargs.pop("headers", None) or {})
    key = None
    if method == "POST":
        key = idempotency_key or str(uuid.uuid4())
        headers["Idempotency-Key"] = key
    retryable = method in SAFE_METHODS or key is not None
    for attempt in range(1, attempts + 1):
        try:
            response = session.request(method, url, headers=headers, **kwargs)
        except (requests.ConnectionError, requests.Timeout):
            if not retryable or attempt == attempts:
                raise
            time.sleep(_wait(None, attempt))
            continue
        if response.status_code not in RETRY_STATUSES or not retryable or attempt == attempts:
            return Reply(response, attempt, key)
        time.sleep(_wait(response, attempt))
    raise AssertionError("unreachable")
