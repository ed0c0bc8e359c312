"""The release artifact: one reproducible tarball whose wheelhouse installs the app with no
package index on CPython 3.11 (Debian 12) and 3.13 (Debian 13); gunicorn then serves it."""

import hashlib
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import requests

from app.tests.conftest import ROOT, free_port, wait_until

RELEASE = "2026.11.29-test"
# The hosts of the lab: Debian 12 (CPython 3.11) and Debian 13 (3.13), on this machine's CPU.
TARGETS = [f"cp311-linux-{platform.machine()}", f"cp313-linux-{platform.machine()}"]


def build_release_module():
    """scripts/build-release.py as a module (its target names and platform tags)."""
    spec = importlib.util.spec_from_file_location(
        "build_release", ROOT / "scripts" / "build-release.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(out, *extra) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "build-release.py"),
            "--version",
            RELEASE,
            "--out",
            str(out),
            *extra,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=1200,
    )


def offline_env() -> dict:
    """No pip configuration at all: the wheelhouse must be enough."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    build(out, *(f"--target={target}" for target in TARGETS))
    tarball = out / f"lvd-{RELEASE}.tar.gz"
    target = tmp_path_factory.mktemp("release")
    with tarfile.open(tarball) as tar:
        tar.extractall(target, filter="data")
    return tarball, target


def find_python(version: str) -> str | None:
    """A working pythonX.Y: on PATH, else a pyenv-installed one (pyenv shims only run the
    versions selected in pyenv)."""
    candidates = [shutil.which(f"python{version}"), f"/usr/bin/python{version}"]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(map(str, pyenv_root.glob(f"versions/{version}.*/bin/python{version}")))
    for candidate in filter(None, candidates):
        if not Path(candidate).is_file():
            continue
        check = subprocess.run([candidate, "-c", "import venv"], capture_output=True, check=False)
        if check.returncode == 0:
            return candidate
    return None


def install(python: str, release_dir, venv_dir) -> None:
    env = offline_env()
    subprocess.run([python, "-m", "venv", str(venv_dir)], check=True, env=env)
    subprocess.run(
        [
            str(venv_dir / "bin" / "pip"),
            "install",
            "--quiet",
            "--no-index",
            "--find-links",
            str(release_dir / "wheelhouse"),
            "-r",
            str(release_dir / "app" / "requirements.txt"),
        ],
        check=True,
        env=env,
        cwd=release_dir,
        timeout=600,
    )


def test_tarball_layout(release):
    tarball, target = release
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    assert (target / "RELEASE").read_text().strip() == RELEASE
    assert (target / "TARGETS").read_text().split() == sorted(TARGETS)
    assert names[:2] == ["RELEASE", "TARGETS"]
    assert "app/__init__.py" in names
    assert "app/migrations/versions/0001_initial_schema.py" in names
    assert "app/static/dashboard.js" in names
    assert "app/templates/dashboard.html" in names
    assert "app/requirements.txt" in names
    assert not [n for n in names if "/tests/" in n or n.endswith(".pyc")]
    wheels = [n for n in names if n.startswith("wheelhouse/") and n.endswith(".whl")]
    assert any("cp311" in n and "psycopg2_binary" in n for n in wheels)
    assert any("cp313" in n and "psycopg2_binary" in n for n in wheels)
    assert (tarball.parent / f"{tarball.name}.sha256").read_text().split()[0] == sha256(tarball)


def test_same_id_gives_the_same_bytes_and_is_not_rebuilt(release, tmp_path):
    tarball, _target = release
    build(tmp_path, "--force", *(f"--target={target}" for target in reversed(TARGETS)))
    assert sha256(tmp_path / tarball.name) == sha256(tarball)
    before = tarball.stat().st_mtime_ns
    kept = build(tarball.parent, *(f"--target={target}" for target in TARGETS))
    assert "exists, kept" in kept.stderr
    assert tarball.stat().st_mtime_ns == before


def test_python311_venv_from_the_wheelhouse_serves_the_release(release, tmp_path, redis_url):
    _tarball, target = release
    python311 = find_python("3.11")
    assert python311, "python3.11 is needed (Debian 12's python3)"
    venv = tmp_path / "venv"
    install(python311, target, venv)

    env = {
        **offline_env(),
        "APP_ENV": "production",
        "SECRET_KEY": "s" * 40,
        "JWT_SECRET_KEY": "j" * 40,
        "DATABASE_URL": f"sqlite:///{tmp_path}/release.db",
        "REDIS_URL": redis_url,
    }
    subprocess.run(
        [str(venv / "bin" / "flask"), "--app", "app", "db", "upgrade"],
        check=True,
        cwd=target,
        env=env,
        capture_output=True,
    )
    port = free_port()
    server = subprocess.Popen(
        [
            str(venv / "bin" / "gunicorn"),
            "-k",
            "gthread",
            "--threads",
            "4",
            "-b",
            f"127.0.0.1:{port}",
            "app:create_app()",
        ],
        cwd=target,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy():
        assert server.poll() is None, server.stderr.read().decode()[-3000:]
        try:
            return requests.get(url + "/health", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_until(healthy, "gunicorn from the release venv")
        version = requests.get(url + "/version", timeout=5).json()
        assert version == {"release": RELEASE, "alembic_revision": "0002"}
        assert requests.get(url + "/health/ready", timeout=5).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_artifact_wheelhouse_resolves_for_each_of_its_targets(release):
    _tarball, target = release
    module = build_release_module()
    for name in TARGETS:
        resolution = module.resolves(
            target / "app" / "requirements.txt", name, target / "wheelhouse"
        )
        assert resolution.returncode == 0, (name, resolution.stderr[-1000:])


@pytest.mark.skipif(not find_python("3.13"), reason="no python3.13 interpreter here")
def test_python313_venv_from_the_wheelhouse_runs_the_app(release, tmp_path):
    _tarball, target = release
    venv = tmp_path / "venv313"
    install(find_python("3.13"), target, venv)
    probe = (
        "from app import create_app; c = create_app('testing').test_client(); "
        "r = c.get('/health'); print(r.status_code, c.get('/version').json['release'])"
    )
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe],
        check=True,
        cwd=target,
        env=offline_env(),
        capture_output=True,
        text=True,
    )
    assert result.stdout.split() == ["200", RELEASE]


def test_the_artifact_names_its_targets_and_old_ones_say_nothing(release, tmp_path):
    tarball, _target = release
    module = build_release_module()
    assert module.targets_of(tarball) == sorted(TARGETS)
    old = tmp_path / "old.tar.gz"
    with tarfile.open(old, "w:gz") as tar:
        tar.add(_target / "RELEASE", arcname="RELEASE")
        tar.add(_target / "app" / "requirements.txt", arcname="app/requirements.txt")
    assert module.targets_of(old) is None


def test_a_target_no_wheels_exist_for_is_refused_in_one_sentence(tmp_path):
    refused = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "build-release.py"),
            "--version",
            "x",
            "--out",
            str(tmp_path),
            "--target",
            "cp310-linux-x86_64",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode != 0
    assert "cp310-linux-x86_64" in refused.stderr and "3.11 to 3.13" in refused.stderr
    assert not list(tmp_path.iterdir())


def test_every_target_resolves_every_pin_from_its_wheels_alone():
    """The wheels of each default target (12: CPython 3.11 to 3.13, Linux x86_64/aarch64,
    macOS arm64/x86_64), as build-release.py downloads them: pip resolves every pin of
    app/requirements.txt from them with no index, binary only, as that target."""
    module = build_release_module()
    targets = json.loads(
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "build-release.py"), "--list-targets"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert len(targets) >= 12 and {"cp312-linux-aarch64", "cp313-macos-arm64"} <= set(targets)
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build-release.py"), "--check-targets"],
        check=True,
        timeout=1800,
    )
    requirements = ROOT / "app" / "requirements.txt"
    failed = {}
    for target in targets:
        wheels = module.cached_wheelhouse(requirements, target)
        resolution = module.resolves(requirements, target, wheels)
        if resolution.returncode != 0:
            failed[target] = resolution.stderr[-500:]
    print(f"{len(targets)} targets resolve from their wheels alone: {', '.join(targets)}")
    assert failed == {}
