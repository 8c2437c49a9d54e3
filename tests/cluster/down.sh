#!/usr/bin/env bash
# Stop the cluster started by up.sh: exactly the pids recorded in .cluster/pids (TERM, then KILL
# after a grace period), the peer too if it runs, then empty the work dir.
# Harmless when nothing runs. --keep-logs keeps .cluster/logs (used when cluster-up fails).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

keep_logs=0
[ "${1:-}" = "--keep-logs" ] && keep_logs=1

# The peer talks to this cluster; stop it first (it keeps its own pid file).
if [ -s "$RUN/peer.pid" ]; then
  stop_pid lws-peer "$(head -n1 "$RUN/peer.pid")" "$BIN/lws-*/manager"
  rm -f "$RUN/peer.pid"
fi

if [ -s "$RUN/pids" ]; then
  # Reverse start order: clients first, etcd last, so nothing logs a storm of reconnects.
  tac "$RUN/pids" | while read -r name pid exe; do
    stop_pid "$name" "$pid" "$exe"
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
