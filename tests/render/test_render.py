"""The render check (`make test-render`): every role's templates, rendered with the
variables of hosts this machine cannot run, checked by the real tools.

render.yml resolves each role's variables as on Ubuntu 22.04, Ubuntu 24.04 and macOS
(facts from hosts.yml) and renders every template that platform uses. For each Ubuntu
release, validate.sh then runs in a container of the Debian release with the nearest
packages (hosts.yml says which), puts each file where the role would and asks the tool:
nginx -t, redis-server, PostgreSQL started on the files, systemd-analyze verify, the
shells and Python. The macOS plists are parsed with plistlib. A check that did not run
fails as surely as one that failed.
"""

from __future__ import annotations

import json
import os
import plistlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"
HOSTS = yaml.safe_load((HERE / "hosts.yml").read_text())["all"]["hosts"]
UBUNTU = [name for name, host in HOSTS.items() if "render_check_image" in host]
# What validate.sh must report for every Ubuntu release.
CHECKS = [
    "nginx -t",
    "logrotate -d nginx",
    "redis-server redis.conf",
    "systemd-analyze verify redis-server.service + drop-in",
    "postgres starts with postgresql.conf and pg_hba.conf",
    "no setting of postgresql.conf in error",
    "no rule of pg_hba.conf in error",
    "every setting of the role's drop-in applied",
    "systemd-analyze verify lvd-web.service",
    "systemd-analyze verify lvd-web.socket",
    "systemd-analyze verify lvd-worker.service",
    "systemd-analyze verify postgresql-backup.service",
    "systemd-analyze verify postgresql-backup.timer",
    "pgbackrest reads pgbackrest.conf",
    "systemd-analyze verify pgbackrest-backup@.service",
    "systemd-analyze verify pgbackrest-backup-full.timer",
    "systemd-analyze verify pgbackrest-backup-diff.timer",
    "sh -n flask",
    "sh -n checkconf",
    "bash -n postgresql-backup",
    "bash -n postgresql-checkconf",
    "sh -n redis-config-check.sh",
    "python3 compiles gunicorn.conf.py",
    "nft -c nftables.conf",
]
# Checks only some stand-ins can make. sshd -t: the Debian 11 image standing in for
# Ubuntu 22.04 has OpenSSH 8.4, which lacks sntrup761x25519-sha512@openssh.com (8.5 and
# newer; Ubuntu 22.04 has 8.9), so it would refuse what Ubuntu 22.04 takes.
CHECKS_BY_RELEASE = {"ubuntu-24.04": ["sshd -t with the hardening drop-in"]}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="session")
def rendered(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("render")
    env = dict(os.environ, RENDER_DIR=str(out), ANSIBLE_ROLES_PATH=str(ROOT / "roles"))
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            str(HERE / "hosts.yml"),
            str(HERE / "render.yml"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return out


@pytest.fixture(scope="session")
def checked(rendered) -> dict[str, dict[str, str]]:
    """{release: {check: "" if ok else what failed}}, both stand-ins run at once."""
    runs = {}
    for name in UBUNTU:
        runs[name] = subprocess.Popen(
            [DOCKER, "run", "--rm", "--name", f"lvd-render-{name}",
             # nft -c asks the kernel to check the ruleset: it needs NET_ADMIN.
             "--cap-add", "NET_ADMIN",
             "-v", f"{rendered}:/render:ro", "-v", f"{HERE / 'validate.sh'}:/validate.sh:ro",
             HOSTS[name]["render_check_image"], "bash", "/validate.sh", f"/render/{name}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    results = {}
    for name, run in runs.items():
        output, _ = run.communicate(timeout=900)
        results[name] = {}
        for line in ANSI.sub("", output).splitlines():
            status, _, rest = line.partition(" ")
            if status in ("ok", "fail"):
                check, _, said = rest.partition(": ")
                results[name][check] = "" if status == "ok" else said or "failed"
        results[name]["(output)"] = output
    return results


@pytest.mark.parametrize(
    ("release", "check"),
    [(release, check) for release in UBUNTU for check in CHECKS + CHECKS_BY_RELEASE.get(release, [])],
)
def test_rendered_file_passes_the_real_tool(checked, release, check):
    results = checked[release]
    assert check in results, f"{check!r} did not run on {release}:\n{results['(output)'][-3000:]}"
    assert results[check] == "", f"{release}: {check}: {results[check]}"


def text(rendered: Path, host: str, path: str) -> str:
    return (rendered / host / path).read_text()


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("ubuntu-22.04", {"postgresql_service": "postgresql@14-main", "postgresql_bin_dir": "/usr/lib/postgresql/14/bin",
                          "gunicorn_app_python": "/usr/bin/python3.11", "redis_service": "redis-server"}),
        ("ubuntu-24.04", {"postgresql_service": "postgresql@16-main", "postgresql_bin_dir": "/usr/lib/postgresql/16/bin",
                          "gunicorn_app_python": "/usr/bin/python3", "redis_service": "redis-server"}),
    ],
)  # fmt: skip
def test_each_ubuntu_release_resolves_its_packages_units_and_paths(rendered, host, expected):
    resolved = json.loads(text(rendered, host, "resolved.json"))
    assert {key: resolved[key] for key in expected} == expected
    version = expected["postgresql_bin_dir"].split("/")[4]
    assert f"postgresql-{version}" in resolved["postgresql_packages"]
    python = Path(expected["gunicorn_app_python"]).name
    assert {python, f"{python}-venv"} <= set(resolved["gunicorn_app_packages"])


def test_each_ubuntu_release_gets_its_own_versions(rendered):
    # PostgreSQL 14 / 16: the cluster's unit and binaries.
    assert "After=postgresql@14-main.service" in text(
        rendered, "ubuntu-22.04", "postgresql/postgresql-backup.service"
    )
    assert "After=postgresql@16-main.service" in text(
        rendered, "ubuntu-24.04", "postgresql/postgresql-backup.service"
    )
    assert "BIN_DIR=/usr/lib/postgresql/14/bin" in text(
        rendered, "ubuntu-22.04", "postgresql/postgresql-checkconf"
    )
    # Redis 6.0: what 6.0 parses; 7.0: the enable-* switches and one save line.
    jammy, noble = (text(rendered, h, "redis/redis.conf") for h in ("ubuntu-22.04", "ubuntu-24.04"))
    assert 'rename-command DEBUG ""' in jammy and "enable-debug-command" not in jammy
    assert re.findall(r"^save .*$", jammy, re.MULTILINE) == [
        "save 3600 1",
        "save 300 100",
        "save 60 10000",
    ]
    assert "enable-debug-command no" in noble and "rename-command" not in noble
    assert re.findall(r"^save .*$", noble, re.MULTILINE) == ["save 3600 1 300 100 60 10000"]
    assert "&*" not in text(rendered, "ubuntu-22.04", "redis/redis-users.conf")
    assert "&*" in text(rendered, "ubuntu-24.04", "redis/redis-users.conf")
    # nginx 1.18 and 1.24 both take http2 on the listen line ("http2 on;" is 1.25.1+).
    for host in ("ubuntu-22.04", "ubuntu-24.04"):
        site = text(rendered, host, "nginx/site.conf")
        assert re.search(r"^\s*listen \S+:443 ssl http2;$", site, re.MULTILINE), host
        assert "http2 on;" not in site


@pytest.mark.parametrize(
    "plist",
    ["gunicorn_app/web.plist", "gunicorn_app/worker.plist", "postgresql/postgresql-backup.plist"],
)
def test_macos_plists_parse_and_name_an_existing_layout(rendered, plist):
    data = plistlib.loads(text(rendered, "macos-14", plist).encode())
    assert data["Label"].startswith("local.")
    program = data["ProgramArguments"][0]
    assert program.startswith(("/opt/homebrew/", "/usr/local/")), program


@pytest.mark.parametrize(
    "script",
    [
        "gunicorn_app/flask",
        "gunicorn_app/checkconf",
        "postgresql/postgresql-backup",
        "redis/redis-config-check.sh",
    ],
)
def test_macos_scripts_are_valid_shell(rendered, script):
    path = rendered / "macos-14" / script
    shell = path.read_text().splitlines()[0].removeprefix("#!").split()[-1]
    subprocess.run([shutil.which(Path(shell).name) or shell, "-n", str(path)], check=True)


def test_macos_gunicorn_conf_compiles(rendered):
    compile(text(rendered, "macos-14", "gunicorn_app/gunicorn.conf.py"), "gunicorn.conf.py", "exec")
