#!/usr/bin/env bash
# Idempotent set-up every make target runs first:
#   1. .venv with the pinned controller/test tooling (requirements.txt), and .venv-fuzz
#      with schemathesis (tests/stack/requirements-fuzz.txt; its pins are its own),
#   2. a Docker engine that answers (installed and started when missing),
#   3. the local systemd base images (rebuilt only when their recipe changes).
# Safe to re-run; each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

venv() {  # venv DIR REQUIREMENTS
  local dir=$1 requirements=$2 stamp=$1/.requirements.sha256 want
  want=$(sha256sum "$requirements" | cut -d' ' -f1)
  if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then return; fi
  say "installing $dir from $requirements"
  python3 -m venv "$dir"
  # pip's notes about this machine's optional local indexes are noise here.
  if ! "$dir/bin/pip" install -q -r "$requirements" 2>&1 | { grep -v "^WARNING: Location" || true; }; then
    die "pip could not install $requirements (output above): fix the cause and re-run"
  fi
  echo "$want" > "$stamp"
}

engine() {
  if "$DOCKER" info >/dev/null 2>&1; then return; fi
  if [[ ! -x /usr/sbin/dockerd ]] || ! command -v debootstrap >/dev/null; then
    command -v apt-get >/dev/null ||
      die "no Docker engine answers and this is not a Debian/Ubuntu machine: install and start Docker, then re-run"
    say "installing docker.io and debootstrap with apt"
    apt_install docker.io debootstrap openssh-client ||
      die "could not install docker.io with apt: check the apt sources and re-run"
  fi
  if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
    systemctl start docker
  else
    # No systemd on these VMs: run the daemon detached, logging to a file.
    say "starting dockerd (log: /var/log/dockerd.log)"
    setsid /usr/sbin/dockerd >/var/log/dockerd.log 2>&1 < /dev/null &
  fi
  for _ in $(seq 60); do
    "$DOCKER" info >/dev/null 2>&1 && return
    sleep 1
  done
  die "the Docker engine did not start within 60 s: read /var/log/dockerd.log, fix the cause, then re-run"
}

venv .venv requirements.txt
venv .venv-fuzz tests/stack/requirements-fuzz.txt
engine
for release in bullseye bookworm trixie; do scripts/build-image.sh "$release"; done
