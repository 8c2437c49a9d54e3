#!/usr/bin/env bash
# Stop the cluster started by up.sh and everything that runs against it, then empty the work
# dir: first our controllers (the one in .cluster/controller.pid and any other `lws controller`
# using this cluster's kubeconfigs or files, e.g. the fail-over suite's candidates), then the
# peer, the real nodes (node-down.sh), and exactly the pids recorded in .cluster/pids (TERM,
# then KILL after a grace period). Harmless when nothing runs, and when run twice.
# --keep-logs keeps .cluster/logs (used when cluster-up fails).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

keep_logs=0
[ "${1:-}" = "--keep-logs" ] && keep_logs=1

# True when pid $1 is an `lws controller` that uses this cluster: KUBECONFIG in its environment
# or an argument names a file in $RUN (its kubeconfig, certs, pid file). A controller of another
# checkout or cluster is left alone, and so is anything that is not our binary.
uses_this_cluster() {
  local pid="$1" exe cwd arg
  exe="$(readlink "/proc/$pid/exe" 2>/dev/null)" || return 1
  exe="${exe% (deleted)}"
  [ "${exe##*/}" = lws ] || return 1
  [ "$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | sed -n 2p)" = controller ] || return 1
  cwd="$(readlink "/proc/$pid/cwd" 2>/dev/null || true)"
  while IFS= read -r arg; do
    arg="${arg#KUBECONFIG=}"
    arg="${arg#--*=}"
    [[ "$arg" == /* ]] || arg="$cwd/$arg"  # a relative path, seen from the process
    [[ "$arg" == "$RUN"/* ]] && return 0
  done < <(tr '\0' '\n' <"/proc/$pid/cmdline"; tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep '^KUBECONFIG=')
  return 1
}

# Our controllers first: they would otherwise outlive the cluster and, on the next cluster-up,
# hold the webhook and health ports (the next `make demo` then saw the old /readyz).
controllers=""
if [ -s "$RUN/controller.pid" ] && pid_running "$(head -n1 "$RUN/controller.pid")"; then
  controllers="$(head -n1 "$RUN/controller.pid")"
fi
# Candidates: processes with an argument "controller" (one grep over all command lines).
for f in $(grep -lzxF controller /proc/[0-9]*/cmdline 2>/dev/null || true); do
  pid="${f#/proc/}"; pid="${pid%/cmdline}"
  case " $controllers " in *" $pid "*) continue ;; esac
  if uses_this_cluster "$pid"; then controllers+="${controllers:+ }$pid"; fi
done
for pid in $controllers; do
  # The pid file's process is checked like the others: never signal a recycled pid.
  uses_this_cluster "$pid" || { log "pid $pid in controller.pid is not our controller; leaving it"; continue; }
  stop_pid "lws controller" "$pid" "*/lws"
done
rm -f "$RUN/controller.pid"

# The peer talks to this cluster; stop it first (it keeps its own pid file).
if [ -s "$RUN/peer.pid" ]; then
  stop_pid lws-peer "$(head -n1 "$RUN/peer.pid")" "$BIN/lws-*/manager"
  rm -f "$RUN/peer.pid"
fi

# Real nodes before the control plane (their kubelets would retry against it); their files
# stay if something under them could not be unmounted.
nodes_ok=1
"$CLUSTER_DIR/node-down.sh" || nodes_ok=0

if [ -s "$RUN/pids" ]; then
  # Reverse start order: clients first, etcd last, so nothing logs a storm of reconnects.
  tac "$RUN/pids" | while read -r name pid exe; do
    stop_pid "$name" "$pid" "$exe"
  done
else
  log "no cluster pids recorded; nothing to stop"
fi

if [ -d "$RUN" ]; then
  # Contents only: the directory itself may be a mount or hold a controller.pid owner's cwd.
  # --one-file-system: never descend into something still mounted below.
  keep=()
  [ "$keep_logs" = 1 ] && keep+=(! -name logs)
  [ "$nodes_ok" = 1 ] || keep+=(! -name nodes)
  find "$RUN" -mindepth 1 -maxdepth 1 "${keep[@]}" -exec rm -rf --one-file-system {} +
fi
[ "$nodes_ok" = 1 ] || die "real nodes left mounts under $NODES_RUN (see above); their files were kept"
log "cluster down"
