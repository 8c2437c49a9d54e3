#!/usr/bin/env bash
# Wait until the named real nodes are Ready (up to $NODE_READY_TIMEOUT s, default 180), printing
# each node's state every 5 s. On timeout, show the end of their kubelet logs and fail.
# Usage: node-wait.sh NODE...
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

[ "$#" -gt 0 ] || die "usage: node-wait.sh NODE..."
timeout="${NODE_READY_TIMEOUT:-180}"
t0=$SECONDS
last=-5
while :; do
  states="" ready=0
  for n in "$@"; do
    s="$(kc get node "$n" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)"
    case "$s" in True) s=Ready; ready=$((ready + 1)) ;; "") s="not registered" ;; *) s=NotReady ;; esac
    states+="${states:+, }$n $s"
  done
  if [ "$ready" -eq "$#" ]; then
    log "real nodes Ready after $((SECONDS - t0)) s: $states"
    exit 0
  fi
  if [ $((SECONDS - t0)) -ge "$timeout" ]; then
    log "real nodes not Ready after $timeout s: $states"
    for n in "$@"; do
      log "--- last lines of $RUN/logs/kubelet-$n.log"
      tail -n 15 "$RUN/logs/kubelet-$n.log" >&2 || true
    done
    exit 1
  fi
  if [ $((SECONDS - last)) -ge 5 ]; then
    log "waiting for real nodes ($((SECONDS - t0)) s): $states"
    last=$SECONDS
  fi
  sleep 1
done
