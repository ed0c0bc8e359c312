#!/usr/bin/env bash
# Run one role's Molecule scenario end to end (the sequence lives in
# .config/molecule/config.yml: destroy, syntax, create, prepare, converge,
# idempotence, check, verify, destroy) and also fail when the check-mode
# run after converge reported a change: Molecule's own `check` action only
# fails on task errors.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

role=${1:?usage: molecule-role.sh ROLE [SCENARIO]}
scenario=${2:-default}
[[ -d roles/$role/molecule/$scenario ]] ||
  die "no Molecule scenario roles/$role/molecule/$scenario: ROLE must be one of: $(ls roles | tr '\n' ' ')"

export PATH=$PWD/.venv/bin:$PATH
# Instance names carry the role, so two roles' scenarios never collide.
export LVD_MOLECULE_PREFIX=${LVD_MOLECULE_PREFIX:-${role//_/-}}
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0 NO_COLOR=1
mkdir -p .cache/molecule
log=$PWD/.cache/molecule/$role-$scenario.log

say "molecule test: role $role, scenario $scenario (log: $log)"
start=$SECONDS
# Each log line starts with the time it was written: scripts/test.py reads the
# Molecule actions' durations from them.
stamp() { while IFS= read -r line; do printf '%(%H:%M:%S)T %s\n' -1 "$line"; done; }
set +e
if [[ ${LVD_QUIET:-0} == 1 ]]; then
  # Several scenarios at once (make test-roles): the log only, its tail on failure.
  (cd "roles/$role" && molecule test -s "$scenario") 2>&1 | stamp > "$log"
  rc=${PIPESTATUS[0]}
  [[ $rc -eq 0 ]] || tail -n 60 "$log"
else
  (cd "roles/$role" && molecule test -s "$scenario") 2>&1 | stamp | tee "$log"
  rc=${PIPESTATUS[0]}
fi
set -e
[[ $rc -eq 0 ]] || die "molecule test failed for role $role (rc $rc): see $log"

# The recap lines of the check action: every host must show changed=0.
changes=$(sed 's/\x1b\[[0-9;]*m//g' "$log" |
  awk '/(> check\]|➜ check:) Executing/ {on=1} /(> check\]|➜ check:) Executed/ {on=0} on && /changed=[1-9]/')
[[ -z $changes ]] || die "check mode after converge reported changes for role $role:
$changes"
say "role $role: passed in $((SECONDS - start)) s (converge, idempotence, check mode, verify)"
