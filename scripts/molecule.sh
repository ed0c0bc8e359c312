#!/usr/bin/env bash
# Run one Molecule scenario end to end:
#   scripts/molecule.sh ROLE     the role's scenario (roles/ROLE/molecule/default; the sequence
#                                lives in .config/molecule/config.yml: destroy, syntax, create,
#                                prepare, converge, idempotence, check, verify, destroy)
#   scripts/molecule.sh stack    the full stack on the 5-host lab (molecule/stack), which it
#                                leaves up to look at (LVD_STACK_DESTROY=always removes it)
#   scripts/molecule.sh macos    the roles' Darwin task files on a stand-in Mac (molecule/macos)
# It also fails when the check-mode run after a converge reported a change (Molecule's own
# `check` action only fails on task errors), and when the stack's playbooks warn.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

target=${1:?usage: molecule.sh ROLE|stack|macos}
config=()
export PATH=$PWD/.venv/bin:$PATH
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0 NO_COLOR=1
if [[ $target == stack ]]; then
  dir=. scenario=stack name=stack
  args=(--destroy "${LVD_STACK_DESTROY:-never}")
  # The releases the scenario builds, and the stack checks read, are named after the run.
  export LVD_STACK_RUN=${LVD_STACK_RUN:-$(date +%Y%m%d%H%M%S)}
elif [[ $target == macos ]]; then
  dir=. scenario=macos name=macos args=()
else
  [[ -d roles/$target/molecule/default ]] ||
    die "no Molecule scenario roles/$target/molecule/default: ROLE must be one of: $(ls roles | tr '\n' ' ') (or stack, macos)"
  dir=roles/$target scenario=default name=$target-default args=()
  # Instance names carry the role, so two roles' scenarios never collide.
  export LVD_MOLECULE_PREFIX=${LVD_MOLECULE_PREFIX:-${target//_/-}}
  # redis and nginx also run on Debian 11, which ships the major versions Ubuntu 22.04
  # does (Redis 6.0, nginx 1.18): a third platform, the base config's first one with
  # Debian 11's image, in a second base config Molecule merges over the first.
  if [[ $target == redis || $target == nginx ]]; then
    mkdir -p .cache/molecule
    base=$PWD/.config/molecule/config.yml extra=$PWD/.cache/molecule/platforms-$target.yml
    .venv/bin/python - "$base" "$extra" <<'PY'
import copy, sys, yaml
platforms = yaml.safe_load(open(sys.argv[1]))["platforms"]
older = copy.deepcopy(platforms[0])
older["name"] = older["name"].replace("debian12", "debian11")
older["image"] = "lvd/debian11-systemd:latest"
yaml.safe_dump({"platforms": [older] + platforms}, open(sys.argv[2], "w"), sort_keys=False)
PY
    config=(-c "$base" -c "$extra")
  fi
fi
mkdir -p .cache/molecule
log=$PWD/.cache/molecule/$name.log

# The stack keeps its lab up (--destroy never skips every destroy, the first one too), so
# Molecule's state from an earlier run would say "created" and skip create: forget it,
# and create (lab-down, then lab-up) starts from nothing.
if [[ $target == stack ]]; then
  (cd "$dir" && molecule reset -s "$scenario") > /dev/null 2>&1 || true
fi
say "molecule test: $dir, scenario $scenario (log: $log)"
start=$SECONDS
# Each log line starts with the time it was written: scripts/test.py reads the
# Molecule actions' durations from them.
stamp() { while IFS= read -r line; do printf '%(%H:%M:%S)T %s\n' -1 "$line"; done; }
set +e
if [[ ${LVD_QUIET:-0} == 1 ]]; then
  # Several scenarios at once (make test-roles): the log only, its tail on failure.
  (cd "$dir" && molecule "${config[@]}" test -s "$scenario" "${args[@]}") 2>&1 | stamp > "$log"
  rc=${PIPESTATUS[0]}
  [[ $rc -eq 0 ]] || tail -n 60 "$log"
else
  (cd "$dir" && molecule "${config[@]}" test -s "$scenario" "${args[@]}") 2>&1 | stamp | tee "$log"
  rc=${PIPESTATUS[0]}
fi
set -e
[[ $rc -eq 0 ]] || die "molecule test failed for $target (rc $rc): see $log"

# The lines of one Molecule action's output.
action_lines() {
  sed 's/\x1b\[[0-9;]*m//g' "$log" |
    awk -v a="$1" '$0 ~ "(> " a "\\]|➜ " a ":) Executing" {on=1} $0 ~ "(> " a "\\]|➜ " a ":) Executed" {on=0} on'
}
# The recap lines of the check action: every host must show changed=0.
changes=$(action_lines check | grep -E 'changed=[1-9]' || true)
[[ -z $changes ]] || die "check mode after converge reported changes for $target:
$changes"
# Ansible's warnings in the stack's playbooks (but for the hint that deprecations can be
# silenced: the one deprecation, Mitogen's strategy being third-party, stays visible).
if [[ $target == stack ]]; then
  warnings=$(for action in converge idempotence side_effect; do action_lines "$action"; done |
    grep -F '[WARNING]' | grep -vF 'Deprecation warnings can be disabled' || true)
  [[ -z $warnings ]] || die "the stack's playbooks warned:
$warnings"
fi
say "$target: passed in $((SECONDS - start)) s"
