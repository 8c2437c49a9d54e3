#!/usr/bin/env bash
# Stop the cluster started by up.sh: exactly the pids recorded in .cluster/pids (TERM, then KILL
# after a grace period), the peer too if it runs, then empty the work dir.
# Harmless when nothing runs. --keep-logs keeps .cluster/logs (used when cluster-up fails).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

keep_logs=0
[ "${1:-}" = "--keep-logs" ] && keep_logs=1

# TERM a pid, wait up to $2 seconds, then KILL it.
stop_pid() {
  local name="$1" pid="$2" grace="${3:-10}" i
  kill -0 "$pid" 2>/dev/null || return 0
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "$name (pid $pid) ignored TERM; killing"
  kill -KILL "$pid" 2>/dev/null || true
}

# The peer talks to this cluster; stop it first (it keeps its own pid file).
if [ -s "$RUN/peer.pid" ]; then
  stop_pid lws-peer "$(head -n1 "$RUN/peer.pid")"
  rm -f "$RUN/peer.pid"
fi

if [ -s "$RUN/pids" ]; then
  # Reverse start order: clients first, etcd last, so nothing logs a storm of reconnects.
  tac "$RUN/pids" | while read -r name pid; do
    stop_pid "$name" "$pid"
  done
else
  log "no cluster pids recorded; nothing to stop"
fi

if [ -d "$RUN" ]; then
  if [ "$keep_logs" = 1 ]; then
    find "$RUN" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf {} +
  else
    # Contents only: the directory itself may be a mount or hold a controller.pid owner's cwd.
    find "$RUN" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
  fi
fi
log "cluster down"
