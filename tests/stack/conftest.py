"""Helpers of the stack checks (the verify step of molecule/stack): run playbooks on the
lab, ask hosts, read what the scenario's side effects left.

Everything goes through what an operator uses: `ansible-playbook -i inventories/lab ...`
with the repository's ansible.cfg, and HTTP through the load balancer's ports on 127.0.0.1.
Each playbook's output is kept in .cache/test-stack/<stack|single>-<step>.log, and the
durations and load figures of the run in .cache/test-stack/report-<stack|single>.json.
The releases are named after LVD_STACK_RUN, as in the scenario's converge and side effects.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from ansible_run import ROOT, VENV_BIN, PlaybookRun, run_playbook
from load import WORK


@dataclass
class Stack:
    """State shared by the ordered tests of one run, and the report they fill."""

    run_id: str
    # The inventory sources every command gets: the five-host lab by default.
    inventory: tuple[str, ...] = ("inventories/lab",)
    # Added to every ansible-playbook's environment: the single box runs with Ansible's
    # stock strategy (ANSIBLE_STRATEGY=linear), the lab with ansible.cfg's (Mitogen), so
    # both ways stay proven.
    env: dict[str, str] = field(default_factory=dict)
    report: dict = field(default_factory=dict)

    @property
    def v1(self) -> str:
        return f"stack-{self.run_id}-v1"

    @property
    def v2(self) -> str:
        return f"stack-{self.run_id}-v2"

    @property
    def broken(self) -> str:
        return f"stack-{self.run_id}-broken"

    @property
    def refused(self) -> str:
        return f"stack-{self.run_id}-refused"

    @property
    def inventory_args(self) -> list[str]:
        return [arg for source in self.inventory for arg in ("-i", source)]

    @property
    def name(self) -> str:
        return "single" if "inventories/single" in self.inventory else "stack"

    def record(self, key: str, value) -> None:
        self.report[key] = value
        WORK.mkdir(parents=True, exist_ok=True)
        (WORK / f"report-{self.name}.json").write_text(json.dumps(self.report, indent=2) + "\n")

    def playbook(self, name: str, *args: str, check: bool = True) -> PlaybookRun:
        """Run ansible-playbook -i inventories/lab ARGS; its output goes to <name>.log."""
        WORK.mkdir(parents=True, exist_ok=True)
        run = run_playbook(name, *self.inventory_args, *args, env=self.env)
        (WORK / f"{self.name}-{name}.log").write_text(run.output)
        self.record(f"{name}_seconds", run.seconds)
        if check:
            assert run.returncode == 0, f"{name} failed (rc {run.returncode}):\n{run.tail()}"
        return run

    def adhoc(
        self, pattern: str, module: str, args: dict, extra_vars: dict | None = None
    ) -> dict[str, dict]:
        """Run one module on the hosts of PATTERN, after their network facts (the
        inventory's addresses come from them), with EXTRA_VARS as the play's vars;
        {host: its result}."""
        WORK.mkdir(parents=True, exist_ok=True)
        play = WORK / "adhoc.yml"
        play.write_text(
            json.dumps(
                [
                    {
                        "name": "ad hoc",
                        "hosts": pattern,
                        "gather_facts": True,
                        "gather_subset": ["!all", "network"],
                        "vars": extra_vars or {},
                        "tasks": [{"name": "the module", module: args}],
                    }
                ]
            )
        )
        result = subprocess.run(
            [str(VENV_BIN / "ansible-playbook"), *self.inventory_args, str(play)],
            check=False,
            cwd=ROOT,
            env={
                **os.environ,
                "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
                "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
                "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.json",
                **self.env,
            },
            capture_output=True,
            text=True,
        )
        assert result.stdout.strip(), f"ansible-playbook printed nothing: {result.stderr}"
        # Under Mitogen the json callback opens one task entry per host: merge them.
        hosts = {
            host: outcome
            for task in json.loads(result.stdout)["plays"][0]["tasks"]
            if task["task"]["name"] == "the module"
            for host, outcome in task["hosts"].items()
        }
        failed = {host: res.get("msg") for host, res in hosts.items() if res.get("failed")}
        assert not failed, f"{module} failed on {sorted(failed)}: {failed}"
        return hosts

    def app_releases(self) -> dict[str, str]:
        """{app host: release its gunicorn reports on /version}, asked on each host itself."""
        hosts = self.adhoc(
            "appservers",
            "ansible.builtin.uri",
            {"url": "http://{{ lvd_private_address }}:{{ lvd_app_port }}/version"},
        )
        return {host: result["json"]["release"] for host, result in sorted(hosts.items())}

    def host_command(self, host: str, command: str) -> str:
        """Run a shell command on one lab host as root; return its stdout."""
        return self.adhoc(host, "ansible.builtin.shell", {"cmd": command})[host]["stdout"].strip()

    def trusted_certificate(self, host: str) -> str:
        """The certificate nginx serves on HOST (self-signed, for 127.0.0.1), written to a
        file of its own: the only one the HTTPS checks trust, so a request that reaches
        another server, or a certificate nginx does not serve, fails them."""
        path = WORK / f"{self.name}-{host}-ca.pem"
        path.write_text(self.host_command(host, "cat /etc/nginx/tls/lvd.crt") + "\n")
        return str(path)


@pytest.fixture(scope="session")
def stack() -> Stack:
    """The five-host lab (inventories/lab), as the scenario's converge and side effects
    left it: running the first release again, after a deploy and a rollback."""
    return Stack(run_id=os.environ.get("LVD_STACK_RUN", "local"))


@pytest.fixture(scope="session")
def lab_ca(stack) -> str:
    """lb1's certificate, read once lb1 is converged (first asked after site.yml)."""
    return stack.trusted_certificate("lb1")


@pytest.fixture(scope="session")
def single():
    """inventories/single on one lab container of its own (tests/single/lab.yml), started
    from nothing and removed at the end, with its release tarballs."""
    box = Stack(
        run_id=time.strftime("%Y%m%d%H%M%S"),
        inventory=("inventories/single", "tests/single/lab.yml"),
        env={"ANSIBLE_STRATEGY": "linear"},
    )
    box.playbook("lab-down-before", "playbooks/lab-down.yml")
    box.playbook("lab-up", "playbooks/lab-up.yml")
    yield box
    box.playbook("lab-down", "playbooks/lab-down.yml")
    for release in (box.v1, box.v2):
        for suffix in (".tar.gz", ".tar.gz.sha256"):
            (ROOT / "dist" / f"lvd-{release}{suffix}").unlink(missing_ok=True)


@pytest.fixture(scope="session")
def artifacts(stack):
    """The run's release tarballs in dist/ (the scenario's and the tests'), removed at the end."""
    yield
    for release in (stack.v1, stack.v2, stack.broken, stack.refused):
        for suffix in (".tar.gz", ".tar.gz.sha256"):
            (ROOT / "dist" / f"lvd-{release}{suffix}").unlink(missing_ok=True)


def make_broken_artifact(source: Path, release: str, dest: Path) -> Path:
    """A copy of a good release that installs, loads (the release step's check passes) and
    migrates, but never becomes ready: its /health/ready raises, so the switch's health
    gate fails on the first host it reaches."""
    target = dest / f"lvd-{release}.tar.gz"
    marker = (
        '    """Readiness: the database and Redis answer. 503 names the one that does not."""\n'
    )
    with tarfile.open(source) as src, tarfile.open(target, "w:gz") as out:
        for member in src.getmembers():
            data = src.extractfile(member) if member.isfile() else None
            if member.name == "RELEASE":
                payload = (release + "\n").encode()
            elif member.name == "app/health/routes.py":
                text = data.read().decode()
                assert marker in text, "app/health/routes.py changed: update the breakage"
                payload = text.replace(
                    marker, marker + '    raise RuntimeError("this release cannot start")\n'
                ).encode()
            else:
                out.addfile(member, data)
                continue
            member.size = len(payload)
            out.addfile(member, io.BytesIO(payload))
    return target


def assert_no_failed_requests(stack, load: dict, step: str) -> None:
    assert load["completed"] > 0, f"{step}: the load generator sent nothing"
    if load["failed"]:
        # What nginx saw of the backends: the first thing to read when this fails.
        upstream_errors = stack.host_command(
            "lb1", "grep -E 'upstream|no live' /var/log/nginx/error.log | tail -n 20 || true"
        )
        pytest.fail(
            f"{step}: {load['failed']} of {load['completed']} requests failed: "
            f"{load['failure_samples']}\nlb1 error.log, upstream lines:\n{upstream_errors}"
        )
    assert load["rate_limited"] == 0, f"{step}: {load['rate_limited']} requests got 429"
    assert load["rate_achieved"] >= 50, f"{step}: only {load['rate_achieved']} requests/s"


def summarize_load(load: dict) -> dict:
    return {
        key: load[key]
        for key in (
            "duration_s",
            "completed",
            "ok",
            "failed",
            "rate_limited",
            "retried",
            "not_sent",
            "rate_achieved",
            "latency_ms",
            "lag_ms",
            "releases_seen",
        )
    }
