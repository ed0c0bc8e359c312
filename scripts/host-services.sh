#!/usr/bin/env bash
# Start the real PostgreSQL and Redis the app's tests use, on this host (Debian, no systemd).
#
# Idempotent: installs postgresql and redis-server with apt when missing, creates a dedicated
# PostgreSQL cluster and a password-protected redis-server on their own 127.0.0.1 ports
# (nothing else on the machine is touched), creates the test role and database, and writes
#   .cache/host-services.env   (export TEST_DATABASE_URL=... TEST_REDIS_URL=...)
# which app/tests/conftest.py reads. Passwords are generated once, kept in .cache/ (git-ignored).
#
# Usage: scripts/host-services.sh [start|stop|env]
#   Environment: LVD_TEST_PG_PORT (55432), LVD_TEST_REDIS_PORT (56379)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.cache/host-services"
ENV_FILE="$ROOT/.cache/host-services.env"
PG_PORT="${LVD_TEST_PG_PORT:-55432}"
REDIS_PORT="${LVD_TEST_REDIS_PORT:-56379}"
PG_CLUSTER="lvdtest"
PG_ROLE="lvd_test"
PG_DB="lvd_test"

log() { printf 'host-services: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (apt-get and the postgres user are needed)"

apt_install_missing() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

secret() {  # secret NAME: a random password generated once and kept in $STATE
  local file="$STATE/$1.secret"
  if [ ! -s "$file" ]; then
    (umask 077; od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$file")
  fi
  cat "$file"
}

pg_version() {
  local version
  version="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -n | tail -1)"
  [ -n "$version" ] || die "no PostgreSQL server under /usr/lib/postgresql"
  echo "$version"
}

start_postgresql() {
  local version password
  version="$(pg_version)"
  password="$(secret postgresql)"
  if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$version $PG_CLUSTER"; then
    log "creating PostgreSQL $version cluster $PG_CLUSTER on 127.0.0.1:$PG_PORT"
    pg_createcluster "$version" "$PG_CLUSTER" --port "$PG_PORT" --start-conf manual -- \
      --auth-local peer --auth-host scram-sha-256 >/dev/null
  fi
  # Debian's postgresql.conf includes conf.d/; fsync off: test data only, speed over durability.
  printf '%s\n' "listen_addresses = '127.0.0.1'" "fsync = off" \
    >"/etc/postgresql/$version/$PG_CLUSTER/conf.d/lvd-test.conf"
  if ! pg_lsclusters -h | awk -v v="$version" -v c="$PG_CLUSTER" '$1==v && $2==c {print $4}' \
    | grep -qx online; then
    pg_ctlcluster "$version" "$PG_CLUSTER" start
  fi
  for _ in $(seq 1 60); do
    pg_isready -q -h 127.0.0.1 -p "$PG_PORT" && break
    sleep 0.5
  done
  pg_isready -q -h 127.0.0.1 -p "$PG_PORT" || die "PostgreSQL did not come up on port $PG_PORT"

  local psql=(runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres)
  # CREATEDB: tests create scratch databases of their own.
  "${psql[@]}" -v role="$PG_ROLE" -v pw="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN CREATEDB', :'role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN CREATEDB PASSWORD :'pw';
SQL
  "${psql[@]}" -v role="$PG_ROLE" -v db="$PG_DB" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
}

redis_ping() {
  REDISCLI_AUTH="$(secret redis)" redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null \
    | grep -qx PONG
}

start_redis() {
  redis_ping && return 0
  if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    die "port $REDIS_PORT answers, but not to this checkout's password (another checkout's test Redis?): stop it, or set LVD_TEST_REDIS_PORT"
  fi
  log "starting redis-server on 127.0.0.1:$REDIS_PORT"
  mkdir -p "$STATE/redis"
  # A config file keeps the password off the process list.
  (umask 077; cat >"$STATE/redis.conf" <<EOF
bind 127.0.0.1
port $REDIS_PORT
requirepass $(secret redis)
daemonize yes
pidfile $STATE/redis.pid
logfile $STATE/redis.log
dir $STATE/redis
save ""
appendonly no
EOF
  )
  redis-server "$STATE/redis.conf"
  for _ in $(seq 1 40); do
    redis_ping && return 0
    sleep 0.25
  done
  die "redis-server did not answer on port $REDIS_PORT (see $STATE/redis.log)"
}

write_env() {
  local tmp
  tmp="$(mktemp "$ENV_FILE.XXXXXX")"
  cat >"$tmp" <<EOF
export TEST_DATABASE_URL=postgresql://$PG_ROLE:$(secret postgresql)@127.0.0.1:$PG_PORT/$PG_DB
export TEST_REDIS_URL=redis://:$(secret redis)@127.0.0.1:$REDIS_PORT/0
EOF
  chmod 600 "$tmp"
  mv "$tmp" "$ENV_FILE"
}

stop_services() {
  if redis_ping; then
    REDISCLI_AUTH="$(secret redis)" redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave || true
  fi
  if command -v pg_lsclusters >/dev/null && pg_lsclusters -h | awk '{print $2}' | grep -qx "$PG_CLUSTER"; then
    pg_ctlcluster "$(pg_version)" "$PG_CLUSTER" stop || true
  fi
}

mkdir -p "$STATE"
chmod 700 "$STATE"
case "${1:-start}" in
  start)
    apt_install_missing postgresql redis-server
    start_postgresql
    start_redis
    write_env
    log "PostgreSQL on 127.0.0.1:$PG_PORT and Redis on 127.0.0.1:$REDIS_PORT are up"
    log "wrote $ENV_FILE (app/tests/conftest.py loads it)"
    ;;
  stop) stop_services ;;
  env) ;;
  *) die "usage: $0 [start|stop|env]" ;;
esac
cat "$ENV_FILE"
