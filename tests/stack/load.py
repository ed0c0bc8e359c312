"""The stack test's traffic: files/loadgen.py through lb1, started before a step and
stopped after it. The tests use LoadGenerator; the scenario's side effects
(molecule/stack/side_effect.yml) use the same from a playbook, across processes:

    .venv/bin/python tests/stack/load.py start NAME CA_FILE   returns once traffic flows
    .venv/bin/python tests/stack/load.py stop NAME            waits for the summary, prints it

Files: .cache/test-stack/load-NAME.{log,json} (the generator's output and summary).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / ".cache" / "test-stack"
HTTP_URL = f"http://127.0.0.1:{os.environ.get('LAB_HTTP_PORT', '8080')}"
HTTPS_URL = f"https://127.0.0.1:{os.environ.get('LAB_HTTPS_PORT', '8443')}"
# The floor is 50 requests/s through lb1 for the whole deploy.
LOAD_RATE = float(os.environ.get("LVD_STACK_LOAD_RATE", "60"))
# The load generator's limit per request (seconds), above nginx's proxy_read_timeout.
REQUEST_TIMEOUT = 65
# Longest a run may go on unattended (a playbook that died before its stop step).
LONGEST_RUN = 1800
# The lab's first admin (site.yml makes it): its address from the inventory, its password
# from the lab's generated secrets.
LAB_ADMIN_PASSWORD_FILE = ROOT / ".lab" / "secrets" / "admin_password"


def lab_admin() -> tuple[str, str]:
    """(email, password) of the lab's first admin."""
    inventory = yaml.safe_load((ROOT / "inventories/lab/group_vars/all/main.yml").read_text())
    return inventory["lvd_admin_email"], LAB_ADMIN_PASSWORD_FILE.read_text().strip()


def admin_headers(ca_file: str) -> dict[str, str]:
    """The Authorization header of the lab's first admin, logged in through lb1."""
    email, password = lab_admin()
    login = requests.post(
        f"{HTTPS_URL}/auth/login",
        json={"email": email, "password": password},
        verify=ca_file,
        timeout=15,
    )
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


class LoadGenerator:
    """files/loadgen.py in the background, through lb1, from start() until stop()."""

    def __init__(self, name: str, url: str = HTTPS_URL, rate: float = LOAD_RATE) -> None:
        self.name = name
        self.url = url
        self.rate = rate
        self.out = WORK / f"load-{name}.json"
        self.ready = WORK / f"load-{name}.ready"
        self.stop_file = WORK / f"load-{name}.stop"
        self.log = WORK / f"load-{name}.log"

    def start(self, ca_file: str) -> LoadGenerator:
        """Start sending; return once the first requests have gone out."""
        WORK.mkdir(parents=True, exist_ok=True)
        for path in (self.out, self.ready, self.stop_file):
            path.unlink(missing_ok=True)
        with self.log.open("w") as log:
            # A session of its own: it outlives the process that started it (a playbook
            # task), until the stop file appears.
            process = subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "files" / "loadgen.py"),
                    "--url",
                    self.url,
                    "--rate",
                    str(self.rate),
                    "--duration",
                    str(LONGEST_RUN),
                    "--ca-file",
                    ca_file,
                    "--out",
                    str(self.out),
                    "--ready-file",
                    str(self.ready),
                    "--stop-file",
                    str(self.stop_file),
                    "--progress",
                    "10",
                    # Above nginx's proxy_read_timeout (60 s): slowness is nginx's to judge (504).
                    "--timeout",
                    str(REQUEST_TIMEOUT),
                    "--workers",
                    "256",
                    # The lab's admin (registration there needs an invite); the runs it
                    # posts carry the run's name (made unique) as their environment.
                    "--email",
                    lab_admin()[0],
                    "--password-file",
                    str(LAB_ADMIN_PASSWORD_FILE),
                    "--tag",
                    f"{self.name}-{uuid.uuid4().hex[:8]}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while not self.ready.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the load generator did not start: {self.log.read_text()}")
            time.sleep(0.2)
        # Traffic flows before the step starts.
        time.sleep(3)
        return self

    def stop(self) -> dict:
        """Stop sending (in-flight requests finish) and return the JSON summary."""
        time.sleep(3)  # and still flows after it ended
        self.stop_file.touch()
        # Requests in flight finish first: wait longer than one may take, so a slow one is
        # counted in the summary (as its latency, or as a failure) instead of lost.
        deadline = time.monotonic() + REQUEST_TIMEOUT + 30
        while not self.out.exists():
            if time.monotonic() > deadline:
                raise AssertionError(f"the load generator wrote no summary: {self.log.read_text()}")
            time.sleep(0.5)
        return json.loads(self.out.read_text())

    def summary(self) -> dict:
        """The summary a stopped run left (load.py stop, in another process)."""
        assert self.out.exists(), f"no load summary for {self.name}: was it started and stopped?"
        return json.loads(self.out.read_text())


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "start":
        LoadGenerator(argv[1]).start(ca_file=argv[2])
        return 0
    if len(argv) == 2 and argv[0] == "stop":
        print(json.dumps(LoadGenerator(argv[1]).stop()))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
