#!/usr/bin/env python3
"""Build the app's release artifact: dist/lvd-<id>.tar.gz (and its .sha256).

The tarball unpacks (flat, no top directory) into a release directory:

    RELEASE              the release id (the app reports it on /version)
    TARGETS              the targets the wheelhouse has wheels for, one per line
    app/                 the application package with migrations, templates, static and
                         requirements.txt (no tests)
    wheelhouse/          wheels of every pin in app/requirements.txt for each target
                         (--target, repeated: the playbooks pass their app hosts')

A target names a CPython, an OS and a machine as Ansible's facts do: cp311-linux-x86_64,
cp312-linux-aarch64, cp313-macos-arm64. Without --target: every target in DEFAULT_TARGETS
(CPython 3.11 to 3.13 on Linux x86_64/aarch64 and macOS arm64/x86_64). Hosts need no
package index:
    python3 -m venv venv && venv/bin/pip install --no-index --find-links wheelhouse \\
        -r app/requirements.txt

The same id, source and targets give the same bytes; an existing tarball is kept unless
--force. Each target's wheels are cached in .cache/wheelhouse/<hash of
requirements.txt>/<target>/, checked first: pip resolves every pin from them alone.
Usage: scripts/build-release.py --version ID [--target T]... [--out dist/] [--ref GIT_REF] [--force]
       scripts/build-release.py --list-targets             (the targets it knows, as JSON)
       scripts/build-release.py --check-targets [--target T]...   (resolve each, build nothing)
       scripts/build-release.py --targets-of ARTIFACT       (the targets it carries, as JSON)
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
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
# The CPythons the app's pins support (SQLAlchemy 2.1, marshmallow 4 and others need 3.11;
# 3.10 reached its end of life in October 2026), each with the newest glibc a Linux wheel
# may need: the oldest of the distributions this project runs it on (a wheel built for a
# newer glibc would not load there).
LINUX_GLIBC = {
    "3.11": (2, 35),  # Debian 12 (2.36), Ubuntu 22.04's python3.11 package (2.35)
    "3.12": (2, 39),  # Ubuntu 24.04
    "3.13": (2, 41),  # Debian 13
}
LINUX_MACHINES = ("x86_64", "aarch64")
# The oldest macOS Homebrew supports; wheels for a newer one would not load there.
MACOS_VERSION = 14
MACOS_MACHINES = ("arm64", "x86_64")
TARGET = re.compile(r"^cp3(1[0-9])-(linux|macos)-(x86_64|aarch64|arm64)$")
DEFAULT_TARGETS = tuple(
    [f"cp{p.replace('.', '')}-linux-{m}" for p in LINUX_GLIBC for m in LINUX_MACHINES]
    + [f"cp{p.replace('.', '')}-macos-{m}" for p in LINUX_GLIBC for m in MACOS_MACHINES]
)
RELEASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
EXCLUDED_PARTS = {"tests", "__pycache__", "requirements-test.txt"}


def log(message: str) -> None:
    print(f"build-release: {message}", file=sys.stderr, flush=True)


def run(cmd: list[str], check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, **kwargs)


def python_of(target: str) -> str:
    return f"3.{TARGET.match(target).group(1)}"


def platform_tags(target: str) -> list[str]:
    """Every platform tag a wheel for TARGET may carry (pip does not expand them)."""
    _, system, machine = target.split("-")
    if system == "linux":
        glibc = LINUX_GLIBC[python_of(target)]
        return [f"manylinux2014_{machine}"] + [
            f"manylinux_{glibc[0]}_{minor}_{machine}" for minor in range(glibc[1], 16, -1)
        ]
    versions = ["11_0", *(f"{major}_0" for major in range(12, MACOS_VERSION + 1))]
    if machine == "x86_64":
        versions = [f"10_{minor}" for minor in range(9, 16)] + versions
        return [
            f"macosx_{v}_{kind}" for v in versions for kind in ("x86_64", "intel", "universal2")
        ]
    return [f"macosx_{v}_{kind}" for v in versions for kind in ("arm64", "universal2")] + [
        f"macosx_10_{minor}_universal2" for minor in range(9, 16)
    ]


def target_args(target: str) -> list[str]:
    return [
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        python_of(target),
        *(arg for tag in platform_tags(target) for arg in ("--platform", tag)),
    ]


def check_target_names(targets: list[str]) -> None:
    """Refuse a target this script cannot build, in one sentence naming it."""
    for target in targets:
        match = TARGET.match(target)
        system = match and match.group(2)
        known = (
            match
            and python_of(target) in LINUX_GLIBC
            and (match.group(3) in (LINUX_MACHINES if system == "linux" else MACOS_MACHINES))
        )
        if not known:
            raise SystemExit(
                f"build-release: no wheels can be built for target {target!r}: the app's pins "
                f"need CPython 3.11 to 3.13, on Linux x86_64/aarch64 or macOS arm64/x86_64 "
                f"(targets are written like cp311-linux-x86_64 or cp313-macos-arm64)"
            )


def pinned_requirements(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def download_wheels(requirements: Path, target: str, wheelhouse: Path) -> None:
    """Wheels of every pin for TARGET, environment markers ignored.

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
        log(f"downloading wheels for {target}")
        cmd = [*pip, "download", "--quiet", "--no-deps", "--dest", str(wheelhouse)]
        batch = run([*cmd, *target_args(target), "-r", str(unmarked)], check=False)
        if batch.returncode != 0:
            _download_one_by_one(pip, cmd, pins, target, wheelhouse)
    finally:
        unmarked.unlink()


def _download_one_by_one(
    pip: list[str], cmd: list[str], pins: list[str], target: str, wheelhouse: Path
) -> None:
    """Some pin has no wheel for TARGET: find it, and build it only if it is pure Python."""
    for requirement in pins:
        if run([*cmd, *target_args(target), requirement], check=False).returncode == 0:
            continue
        log(f"no wheel of {requirement} for {target}: building it from source")
        with tempfile.TemporaryDirectory() as built:
            run([*pip, "wheel", "--quiet", "--no-deps", "--wheel-dir", built, requirement])
            for wheel in Path(built).glob("*.whl"):
                if not wheel.name.endswith("-py3-none-any.whl"):
                    raise SystemExit(
                        f"build-release: {requirement} has no wheel for {target} and builds "
                        f"a platform wheel here ({wheel.name}): pin a version with wheels for it"
                    )
                shutil.copy2(wheel, wheelhouse / wheel.name)


def resolves(requirements: Path, target: str, wheelhouse: Path) -> subprocess.CompletedProcess:
    """pip's resolution of every pin (and everything it needs) for TARGET from WHEELHOUSE
    alone: no index, binary wheels only (a dry run: nothing is installed)."""
    with tempfile.TemporaryDirectory() as into:
        return run(
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
                into,
                *target_args(target),
                "-r",
                str(requirements),
            ],
            check=False,
            capture_output=True,
            text=True,
        )


def cached_wheelhouse(requirements: Path, target: str) -> Path:
    """TARGET's wheels, downloaded once per requirements.txt and checked to resolve."""
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    cache = ROOT / ".cache" / "wheelhouse" / digest / target
    if not (cache / ".complete").is_file():
        partial = cache.with_name(cache.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        download_wheels(requirements, target, partial)
        check = resolves(requirements, target, partial)
        if check.returncode != 0:
            raise SystemExit(
                f"build-release: the wheels for {target} do not resolve every pin:\n{check.stderr}"
            )
        log(f"wheelhouse resolves for {target}")
        (partial / ".complete").touch()
        shutil.rmtree(cache, ignore_errors=True)
        partial.rename(cache)
    return cache


def write_wheelhouse(requirements: Path, targets: list[str], wheelhouse: Path) -> None:
    """The union of the targets' wheels."""
    wheelhouse.mkdir()
    for target in targets:
        for wheel in cached_wheelhouse(requirements, target).glob("*.whl"):
            if not (wheelhouse / wheel.name).exists():
                shutil.copy2(wheel, wheelhouse / wheel.name)


def targets_of(artifact: Path) -> list[str] | None:
    """The targets an artifact carries wheels for (its TARGETS, the second member: the
    archive is read only that far), or None for an artifact built before TARGETS existed."""
    with tarfile.open(artifact) as tar:
        for member in tar:
            if member.name == "TARGETS":
                return tar.extractfile(member).read().decode().split()
            if member.name.startswith(("app/", "wheelhouse/")):
                return None
    return None


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
    parser.add_argument("--version", help="the release id, e.g. 2026.11.29-1")
    parser.add_argument(
        "--target",
        action="append",
        help="a host's CPython, OS and machine, e.g. cp311-linux-x86_64 (repeat; default: all)",
    )
    parser.add_argument("--out", default=str(ROOT / "dist"), help="output directory")
    parser.add_argument("--ref", help="build app/ from this git ref instead of the work tree")
    parser.add_argument("--force", action="store_true", help="rebuild an existing tarball")
    parser.add_argument("--list-targets", action="store_true", help="print the known targets")
    parser.add_argument(
        "--check-targets", action="store_true", help="resolve every target's wheels, build nothing"
    )
    parser.add_argument("--targets-of", type=Path, help="print the targets ARTIFACT carries")
    args = parser.parse_args()
    if args.targets_of:
        print(json.dumps(targets_of(args.targets_of)))
        return 0
    targets = sorted(set(args.target or DEFAULT_TARGETS))
    check_target_names(targets)

    if args.list_targets:
        print(json.dumps(list(DEFAULT_TARGETS)))
        return 0
    if args.check_targets:
        for target in targets:
            cached_wheelhouse(ROOT / REQUIREMENTS, target)
        return 0
    if not args.version or not RELEASE_ID.match(args.version):
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
        (staging / "TARGETS").write_text("".join(f"{target}\n" for target in targets))
        write_wheelhouse(requirements, targets, staging / "wheelhouse")
        write_tarball(staging, out, mtime)

    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    out.with_name(out.name + ".sha256").write_text(f"{digest}  {out.name}\n")
    log(
        f"built {out} for {', '.join(targets)} ({out.stat().st_size // 1024} KiB, sha256 {digest[:12]})"
    )
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
