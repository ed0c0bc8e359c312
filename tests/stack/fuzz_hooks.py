"""Schemathesis hooks of tests/stack/fuzz.py (loaded by the schemathesis CLI, not by pytest).

Every generated request carries `Authorization: Bearer <access token>` of FUZZ_EMAIL, taken
from POST /auth/login. The fuzzer may call POST /auth/logout with that very token, which
revokes it; from then on the app answers 401. `retry_on=[401]` makes schemathesis drop the
cached token on a 401, call `get` again (a new login, a new jti) and replay the request once.
A 401 that survives the replay marks that operation as not token-related (no more retries).
POST /auth/refresh gets the refresh token of the same login instead of the access token.

Two rules of the API that JSON Schema cannot state, and that its document states in words,
are taught to the generator here (the app's own tests cover what breaking them answers):
a new Idempotency-Key for each new request, and a run that ends no earlier than it starts.
"""

import datetime as dt
import os
import re
import uuid

import requests
import schemathesis


def _verify() -> str | bool:
    value = os.environ.get("FUZZ_TLS_VERIFY", "true")
    return {"true": True, "false": False}.get(value.lower(), value)


def _login() -> dict:
    response = requests.post(
        os.environ["FUZZ_BASE_URL"] + "/auth/login",
        json={"email": os.environ["FUZZ_EMAIL"], "password": os.environ["FUZZ_PASSWORD"]},
        verify=_verify(),
        timeout=10,
    )
    response.raise_for_status()
    return response.json()


def _set_bearer(case, token: str) -> None:
    case.headers = case.headers or {}
    case.headers["Authorization"] = f"Bearer {token}"


@schemathesis.auth(refresh_interval=600, retry_on=[401]).skip_for(path="/auth/refresh")
class AccessToken:
    def get(self, case, context):
        return _login()["access_token"]

    def set(self, case, data, context):
        _set_bearer(case, data)


# POST /auth/refresh takes a refresh token in the Authorization header, nothing else does.
@schemathesis.auth(refresh_interval=600, retry_on=[401]).apply_to(path="/auth/refresh")
class RefreshToken:
    def get(self, case, context):
        return _login()["refresh_token"]

    def set(self, case, data, context):
        _set_bearer(case, data)


@schemathesis.hook
def before_call(context, case, **kwargs):
    """Give each request with a valid Idempotency-Key a key of its own, as a real client does
    (the generator repeats "0"): a repeated key would get the first request's answer, or a
    422 for another body, both as the document says, and tested in app/tests and the stack
    test. Invalid keys are sent as generated."""
    headers = case.headers or {}
    key = headers.get("Idempotency-Key")
    if key is not None and re.fullmatch(r"[!-~]{1,255}", key):
        headers["Idempotency-Key"] = f"{key[:200]}-{uuid.uuid4().hex}"


def _moment(value) -> dt.datetime | None:
    """A date-time as the app reads it (no zone: UTC), or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@schemathesis.hook.apply_to(path="/api/runs", method="POST")
def map_body(context, body):
    """A run's finished_at is not before its started_at (default: now): when both are valid
    date-times in the wrong order, start the run when it finished."""
    if not isinstance(body, dict) or "finished_at" not in body:
        return body
    finished = _moment(body["finished_at"])
    started = _moment(body["started_at"]) if "started_at" in body else dt.datetime.now(dt.UTC)
    if finished is not None and started is not None and finished < started:
        return {**body, "started_at": body["finished_at"]}
    return body
