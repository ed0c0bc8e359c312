#!/usr/bin/env bash
# The render check's second half, run by tests/render/test_render.py inside a container
# of the Debian release that stands in for an Ubuntu one (hosts.yml: render_check_image):
#   validate.sh DIR    DIR = the files render.yml wrote for one host (<role>/<file>)
# It installs the distribution's nginx, redis-server, postgresql, nftables, OpenSSH and pgbackrest, puts each rendered
# file where the role would, and asks the real tool. One line per check on stdout:
#   ok|fail <check> [what the tool said]
set -uo pipefail
dir=${1:?usage: validate.sh DIR}
export DEBIAN_FRONTEND=noninteractive SYSTEMD_COLORS=0
# Services must not start at install (no init system runs in this container).
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
{ apt-get update && apt-get install -y --no-install-recommends \
    nginx redis-server postgresql openssl logrotate nftables openssh-server pgbackrest; } > /tmp/apt.log 2>&1 ||
  { echo "fail apt-get install: $(tail -3 /tmp/apt.log | tr '\n' ' ')"; exit 1; }

check() {  # check NAME COMMAND...: run it, report ok or fail with its output
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    echo "ok $name"
  else
    echo "fail $name: $(printf '%s' "$out" | tail -5 | tr '\n' ' ')"
  fi
}

verify_unit() {  # systemd-analyze verify, where a warning (an unknown key...) also fails
  local out
  out=$(systemd-analyze verify --man=no "$1" 2>&1) && [[ -z $out ]] || { printf '%s\n' "$out" >&2; return 1; }
}

# --- nginx: the whole configuration, TLS included, as the role lays it out ---------
cp "$dir/nginx/nginx.conf" /etc/nginx/nginx.conf
cp "$dir/nginx/upstream.conf" /etc/nginx/conf.d/lvd-upstream.conf
cp "$dir/nginx/site.conf" /etc/nginx/conf.d/lvd.conf
for pair in $(awk '$1 == "ssl_certificate" {c=$2} $1 == "ssl_certificate_key" {print c "|" $2}' \
  "$dir/nginx/site.conf" | tr -d ';' | sort -u); do
  mkdir -p "$(dirname "${pair%|*}")" "$(dirname "${pair#*|}")"
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=render-check \
    -keyout "${pair#*|}" -out "${pair%|*}" > /dev/null 2>&1
done
check "nginx -t" nginx -t -c /etc/nginx/nginx.conf
check "logrotate -d nginx" logrotate -d "$dir/nginx/logrotate"

# --- redis: the role's own checker (a throw-away redis-server) on both files --------
install -m 0755 "$dir/redis/redis-config-check.sh" /usr/local/sbin/redis-config-check
include=$(awk '$1 == "include" {print $2}' "$dir/redis/redis.conf" | tr -d '"')
cp "$dir/redis/redis-users.conf" "$include"
check "redis-server redis.conf" /usr/local/sbin/redis-config-check "$dir/redis/redis.conf"
mkdir -p /etc/systemd/system/redis-server.service.d
cp "$dir/redis/systemd-override.conf" /etc/systemd/system/redis-server.service.d/ansible-paths.conf
check "systemd-analyze verify redis-server.service + drop-in" \
  verify_unit /lib/systemd/system/redis-server.service
# systemd-analyze loads every unit it finds: the later checks must not see it again.
rm -r /etc/systemd/system/redis-server.service.d

# --- postgresql: the packaged cluster started with the rendered files --------------
version=$(ls /etc/postgresql)
conf=/etc/postgresql/$version/main
mkdir -p "$conf/conf.d"
grep -q "^include_dir = 'conf.d'" "$conf/postgresql.conf" || echo "include_dir = 'conf.d'" >> "$conf/postgresql.conf"
cp "$dir/postgresql/postgresql.conf" "$conf/conf.d/90-ansible.conf"
cp "$dir/postgresql/pg_hba.conf" "$conf/pg_hba.conf"
chown -R postgres:postgres "$conf"
check "postgres starts with postgresql.conf and pg_hba.conf" pg_ctlcluster "$version" main start
none() {  # none SQL: the query runs, and returns no row (each row is a complaint)
  local rows
  rows=$(runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -c "$1") && [[ -z $rows ]] ||
    { printf '%s\n' "$rows" >&2; return 1; }
}
check "no setting of postgresql.conf in error" \
  none "select name || ': ' || error from pg_file_settings where error is not null"
check "no rule of pg_hba.conf in error" \
  none "select line_number || ': ' || error from pg_hba_file_rules where error is not null"
check "every setting of the role's drop-in applied" \
  none "select name from pg_file_settings where sourcefile like '%/90-ansible.conf' and not applied"

# --- base: the firewall ruleset, and sshd with the hardening drop-in ----------------
check "nft -c nftables.conf" nft -c -f "$dir/base/nftables.conf"
ssh-keygen -A > /dev/null && mkdir -p /run/sshd
cp "$dir/base/sshd.conf" /etc/ssh/sshd_config.d/01-hardening.conf
check "sshd -t with the hardening drop-in" /usr/sbin/sshd -t

# --- pgbackrest: the package's pgBackRest reads the single-box pgbackrest.conf ---------
# (it exits 0 on an unknown option, with a warning: a WARN or ERROR line fails, as in
# the role's validate step)
pgbackrest_reads() {
  local out
  out=$(pgbackrest --config="$1" help backup 2>&1) || { printf '%s\n' "$out" >&2; return 1; }
  ! printf '%s\n' "$out" | grep -E '^(WARN|ERROR)' >&2
}
check "pgbackrest reads pgbackrest.conf" pgbackrest_reads "$dir/backup/pgbackrest.conf"

# --- systemd units, under the names the roles give them ----------------------------
units=$(mktemp -d)
cp "$dir/postgresql/postgresql-backup.service" "$dir/postgresql/postgresql-backup.timer" "$units/"
cp "$dir/backup/pgbackrest-backup@.service" "$dir/backup/pgbackrest-backup-full.timer" \
  "$dir/backup/pgbackrest-backup-diff.timer" "$units/"
cp "$dir/gunicorn_app/web.service" "$units/lvd-web.service"
cp "$dir/gunicorn_app/web.socket" "$units/lvd-web.socket"
cp "$dir/gunicorn_app/worker.service" "$units/lvd-worker.service"
# The programs they start come with the release and the roles' scripts: stand-ins here.
for program in $(sed -n 's/^Exec[A-Za-z]*=[-@+!]*\([^ ]*\).*/\1/p' "$units"/*); do
  [[ -e $program ]] || { mkdir -p "$(dirname "$program")" && install -m 0755 /dev/null "$program"; }
done
for unit in "$units"/*; do
  check "systemd-analyze verify $(basename "$unit")" verify_unit "$unit"
done

# --- scripts and Python, with the release's shell and interpreter -------------------
for script in gunicorn_app/flask gunicorn_app/checkconf postgresql/postgresql-backup \
  postgresql/postgresql-checkconf redis/redis-config-check.sh; do
  shell=$(head -1 "$dir/$script" | sed 's|^#! *||; s|^/usr/bin/env ||; s| .*||')
  check "$(basename "$shell") -n $(basename "$script")" "$shell" -n "$dir/$script"
done
check "python3 compiles gunicorn.conf.py" python3 -c \
  'import sys; compile(open(sys.argv[1]).read(), "gunicorn.conf.py", "exec")' "$dir/gunicorn_app/gunicorn.conf.py"
