#!/usr/bin/env bash
# Stops the control plane that hack/kube/up.sh started in DIR: each process
# (its whole process group, started with setsid) from its pid file in DIR/pids;
# SIGTERM, then SIGKILL after MLSHIP_KUBE_STOP_GRACE seconds (default 1).
# Leaves DIR (logs, etcd data) in place. Safe to run twice, or on a DIR where
# up.sh failed half-way.
#
# Usage: hack/kube/down.sh DIR
set -uo pipefail
export LC_ALL=C

[ $# = 1 ] || { echo "usage: hack/kube/down.sh DIR" >&2; exit 2; }
DIR=$1
[ -d "$DIR/pids" ] || exit 0

# Only signal a pid that is still the process we started (pids get reused):
# its executable must be one of ours.
ours() { # NAME PID
  local exe
  exe=$(readlink "/proc/$2/exe" 2>/dev/null) || return 1
  case "$exe" in */"$1" | */"$1 (deleted)") return 0 ;; esac
  return 1
}

# Running, and not a zombie waiting for a parent to reap it.
alive() { # PID
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

NAMES=(kwok kube-scheduler kube-controller-manager kube-apiserver etcd)
GRACE_TENTHS=$(( ${MLSHIP_KUBE_STOP_GRACE:-1} * 10 ))

# SIGTERM to all of them at once, SIGKILL to what is left after the grace
# period (MLSHIP_KUBE_STOP_GRACE seconds, default 1: the state is thrown away,
# and a graceful stop of them all takes 2-3 s).
pids=()
for name in "${NAMES[@]}"; do
  [ -f "$DIR/pids/$name.pid" ] || continue
  pid=$(cat "$DIR/pids/$name.pid" 2>/dev/null)
  if [[ "$pid" =~ ^[0-9]+$ ]] && ours "$name" "$pid"; then
    # setsid made the process a session and group leader: signal its group.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    pids+=("$pid")
  fi
done
left=("${pids[@]}")
for ((i = 0; i < GRACE_TENTHS && ${#left[@]} > 0; i++)); do
  sleep 0.1
  still=()
  for pid in "${left[@]}"; do alive "$pid" && still+=("$pid"); done
  left=("${still[@]}")
done
for pid in "${left[@]}"; do
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
done
# Wait (up to 5 s) until they are gone, so DIR can be removed.
for pid in "${left[@]}"; do
  for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
done
for name in "${NAMES[@]}"; do rm -f "$DIR/pids/$name.pid"; done
exit 0
