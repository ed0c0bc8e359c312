#!/usr/bin/env python3
"""Build the app's release artifact: dist/lvd-<id>.tar.gz (and its .sha256).

The tarball unpacks (flat, no top directory) into a release directory:

    RELEASE              the release id (the app reports it on /version)
    app/                 the application package with migrations, templates, static and
                         requirements.txt (no tests)
    wheelhouse/          wheels of every pin in app/requirements.txt for CPython 3.11
                         (Debian 12) and CPython 3.13 (Debian 13), linux x86_64

Hosts need no package index:
    python3 -m venv venv && venv/bin/pip install --no-index --find-links wheelhouse \\
        -r app/requirements.txt

The same id and the same source give the same bytes; an existing tarball is kept unless
--force. The wheelhouse is cached in .cache/wheelhouse/<hash of requirements.txt>/.
Usage: scripts/build-release.py --version ID [--out dist/] [--ref GIT_REF] [--force]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = "app/requirements.txt"
# (python version, newest manylinux glibc the target distribution has)
TARGETS = (("3.11", (2, 36)), ("3.13", (2, 41)))
RELEASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
EXCLUDED_PARTS = {"tests", "__pycache__", "requirements-test.txt"}


def log(message: str) -> None:
    print(f"build-release: {message}", file=sys.stderr, flush=True)


def run(cmd: list[str], check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, **kwargs)


def platform_args(glibc: tuple[int, int]) -> list[str]:
    """--platform for every manylinux tag up to the target's glibc (pip does not expand them)."""
    args = ["--platform", "manylinux2014_x86_64"]
    for minor in range(glibc[1], 16, -1):
        args += ["--platform", f"manylinux_{glibc[0]}_{minor}_x86_64"]
    return args


def target_args(python: str, glibc: tuple[int, int]) -> list[str]:
    return [
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        python,
        *platform_args(glibc),
    ]


def pinned_requirements(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def download_wheels(requirements: Path, wheelhouse: Path) -> None:
    """Wheels of every pin, environment markers ignored.

    pip evaluates a marker against the Python running it, not the one named by
    --python-version: `async-timeout ; python_full_version < "3.11.3"` would be
    skipped here (3.11.7) although Debian 12's 3.11.2 needs it. So the markers
    are stripped for the download, and the host's pip evaluates them at install.
    """
    pip = [sys.executable, "-m", "pip"]
    pins = [line.split(";", 1)[0].strip() for line in pinned_requirements(requirements)]
    unmarked = wheelhouse.parent / f"{wheelhouse.name}.requirements.txt"
    unmarked.write_text("\n".join(pins) + "\n")
    try:
        _download(pip, pins, unmarked, wheelhouse)
    finally:
        unmarked.unlink()


def _download(pip: list[str], pins: list[str], unmarked: Path, wheelhouse: Path) -> None:
    for python, glibc in TARGETS:
        log(f"downloading wheels for CPython {python}")
        cmd = [*pip, "download", "--quiet", "--no-deps", "--dest", str(wheelhouse)]
        batch = run([*cmd, *target_args(python, glibc), "-r", str(unmarked)], check=False)
        if batch.returncode == 0:
            continue
        # Some pin has no wheel: find it, and build it only if it is pure Python.
        for requirement in pins:
            single = run([*cmd, *target_args(python, glibc), requirement], check=False)
            if single.returncode == 0:
                continue
            log(f"no wheel of {requirement} for CPython {python}: building it from source")
            with tempfile.TemporaryDirectory() as built:
                run([*pip, "wheel", "--quiet", "--no-deps", "--wheel-dir", built, requirement])
                for wheel in Path(built).glob("*.whl"):
                    if not wheel.name.endswith("-py3-none-any.whl"):
                        raise SystemExit(f"{requirement} builds a platform wheel: {wheel.name}")
                    shutil.copy2(wheel, wheelhouse / wheel.name)


def verify_wheelhouse(requirements: Path, wheelhouse: Path) -> None:
    """Every pin (and everything it needs) resolves from the wheelhouse alone, per target."""
    for python, glibc in TARGETS:
        with tempfile.TemporaryDirectory() as target:
            run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--dry-run",
                    "--ignore-installed",
                    "--no-index",
                    "--find-links",
                    str(wheelhouse),
                    "--target",
                    target,
                    *target_args(python, glibc),
                    "-r",
                    str(requirements),
                ]
            )
        log(f"wheelhouse resolves for CPython {python}")


def cached_wheelhouse(requirements: Path) -> Path:
    digest = hashlib.sha256(requirements.read_bytes())
    digest.update(repr(TARGETS).encode())
    cache = ROOT / ".cache" / "wheelhouse" / digest.hexdigest()[:16]
    if not (cache / ".complete").is_file():
        partial = cache.with_name(cache.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        download_wheels(requirements, partial)
        verify_wheelhouse(requirements, partial)
        (partial / ".complete").touch()
        shutil.rmtree(cache, ignore_errors=True)
        partial.rename(cache)
    return cache


def export_source(ref: str | None, staging: Path) -> int:
    """Copy app/ into staging (from the work tree, or from a git ref); return its timestamp."""
    if ref:
        archive = run(["git", "-C", str(ROOT), "archive", ref, "app"], capture_output=True)
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(staging, filter="data")
        return last_change_of_app(ref)
    files = run(
        ["git", "-C", str(ROOT), "ls-files", "--cached", "--others", "--exclude-standard", "app"],
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    for name in files:
        source = ROOT / name
        if source.is_file():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, staging / name)
    return int(os.environ.get("SOURCE_DATE_EPOCH", "0")) or last_change_of_app("HEAD")


def last_change_of_app(ref: str) -> int:
    """The time of the last commit that touched app/: the timestamp of every archive member,
    so unrelated commits elsewhere in the repository do not change the tarball's bytes."""
    result = run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%ct", ref, "--", "app"],
        capture_output=True,
    )
    return int(result.stdout.strip() or 0)


def release_members(staging: Path) -> list[Path]:
    members = []
    for path in sorted(staging.rglob("*")):
        relative = path.relative_to(staging)
        if EXCLUDED_PARTS.intersection(relative.parts) or path.suffix == ".pyc":
            continue
        members.append(relative)
    return members


def write_tarball(staging: Path, out: Path, mtime: int) -> None:
    """A byte-for-byte reproducible tar.gz: sorted names, fixed owner, modes and times."""
    tmp = out.with_name(out.name + ".tmp")
    with (
        open(tmp, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for relative in release_members(staging):
            path = staging / relative
            info = tar.gettarinfo(str(path), arcname=relative.as_posix())
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = mtime
            info.mode = 0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644
            if info.isfile():
                with open(path, "rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    tmp.rename(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", required=True, help="the release id, e.g. 2026.11.29-1")
    parser.add_argument("--out", default=str(ROOT / "dist"), help="output directory")
    parser.add_argument("--ref", help="build app/ from this git ref instead of the work tree")
    parser.add_argument("--force", action="store_true", help="rebuild an existing tarball")
    args = parser.parse_args()

    if not RELEASE_ID.match(args.version):
        parser.error(f"--version {args.version!r}: use letters, digits, '.', '_', '-' (max 64)")
    out_dir = Path(args.out).resolve()
    out = out_dir / f"lvd-{args.version}.tar.gz"
    if out.exists() and not args.force:
        log(f"{out} exists, kept (use --force to rebuild)")
        print(out)
        return 0
    out_dir.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="lvd-release-") as tmp:
        staging = Path(tmp)
        mtime = export_source(args.ref, staging)
        requirements = staging / REQUIREMENTS
        if not requirements.is_file():
            raise SystemExit(f"{REQUIREMENTS} is missing from the source")
        (staging / "RELEASE").write_text(args.version + "\n")
        shutil.copytree(cached_wheelhouse(requirements), staging / "wheelhouse")
        (staging / "wheelhouse" / ".complete").unlink()
        write_tarball(staging, out, mtime)

    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    out.with_name(out.name + ".sha256").write_text(f"{digest}  {out.name}\n")
    log(f"built {out} ({out.stat().st_size // 1024} KiB, sha256 {digest[:12]})")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
