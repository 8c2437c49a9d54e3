#!/usr/bin/env bash
# Runs our controller against the local cluster the way `make e2e` and `make demo` need it:
#   controller.sh up      cluster (if no KUBECONFIG), install --dev, least-privilege identity,
#                         controller in the background (.cluster/controller.pid,
#                         .cluster/logs/controller.log), waits for /readyz
#   controller.sh down    stops the controller started by `up` (by its recorded pid)
#   controller.sh prepare everything `up` does before starting the controller (install --dev,
#                         .cluster/controller.kubeconfig), for tests that run their own
#                         controllers
# Env: LWS (the binary), LWS_WEBHOOK_PORT (default 9443), LWS_HEALTH_PORT (default 8081).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
LWS="${LWS:-$ROOT/target/release/lws}"
STATE="$ROOT/.cluster"
PID_FILE="$STATE/controller.pid"
WEBHOOK_PORT="${LWS_WEBHOOK_PORT:-9443}"
HEALTH_PORT="${LWS_HEALTH_PORT:-8081}"
NS=lws-system
SA=lws-controller-manager

log() { echo "[controller] $*" >&2; }

# The process recorded in the pid file, if it is still our lws binary.
running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid; pid="$(cat "$PID_FILE")"
  [[ -n "$pid" && -e "/proc/$pid/exe" ]] || return 1
  # A rebuilt binary shows as "<path> (deleted)" for the process still running the old one.
  local exe; exe="$(readlink "/proc/$pid/exe")"; exe="${exe% (deleted)}"
  [[ "$exe" == "$(readlink -f "$LWS")" ]] || return 1
  echo "$pid"
}

load_env() {
  if [[ -z "${KUBECONFIG:-}" ]]; then
    if [[ ! -f "$STATE/env" ]] || ! (set -a; . "$STATE/env"; "${KUBECTL:-kubectl}" get --raw=/readyz >/dev/null 2>&1); then
      log "no KUBECONFIG and no running local cluster: make cluster-up"
      make -C "$ROOT" --no-print-directory cluster-up
    fi
    set -a; . "$STATE/env"; set +a
  fi
  KUBECTL="${KUBECTL:-kubectl}"
  export KUBECONFIG KUBECTL
}

prepare() {
  load_env
  mkdir -p "$STATE/logs" "$STATE/certs"
  log "install --dev (CRD, webhooks by URL https://127.0.0.1:$WEBHOOK_PORT)"
  "$LWS" install --dev --port "$WEBHOOK_PORT" --cert-dir "$STATE/certs"
  log "least-privilege identity: ServiceAccount $NS/$SA bound to the ClusterRole of 'lws install'"
  "$LWS" install --rbac-only | "$KUBECTL" apply --server-side --field-manager=lws-install -f - >/dev/null
  local token server ca
  token="$("$KUBECTL" create token "$SA" -n "$NS" --duration=24h)"
  server="$("$KUBECTL" config view --raw --minify -o jsonpath='{.clusters[0].cluster.server}')"
  ca="$("$KUBECTL" config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')"
  umask 077
  cat > "$STATE/controller.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "$server", certificate-authority-data: "$ca"}
users:
- name: $SA
  user: {token: "$token"}
contexts:
- name: lws-controller
  context: {cluster: local, user: $SA}
current-context: lws-controller
KC
}

up() {
  load_env
  if pid="$(running_pid)"; then
    if [[ "$(readlink "/proc/$pid/exe")" == *" (deleted)" ]]; then
      log "pid $pid runs a binary since rebuilt: restarting it"; down
    else
      log "already running (pid $pid)"; return 0
    fi
  fi
  if [[ -f "$STATE/peer.pid" ]] && kill -0 "$(cat "$STATE/peer.pid")" 2>/dev/null; then
    log "upstream LWS (the peer) is running on this cluster: make peer-down first"; exit 1
  fi
  prepare
  log "starting $LWS controller (log $STATE/logs/controller.log)"
  KUBECONFIG="$STATE/controller.kubeconfig" RUST_LOG="${RUST_LOG:-info}" nohup "$LWS" controller \
    --webhook-addr "127.0.0.1:$WEBHOOK_PORT" --health-addr "127.0.0.1:$HEALTH_PORT" \
    --tls-cert "$STATE/certs/tls.crt" --tls-key "$STATE/certs/tls.key" \
    --pid-file "$PID_FILE" >"$STATE/logs/controller.log" 2>&1 &
  local started=$!
  for _ in $(seq 1 120); do
    if curl -fsS "http://127.0.0.1:$HEALTH_PORT/readyz" >/dev/null 2>&1; then
      log "ready (pid $started)"; return 0
    fi
    if ! kill -0 "$started" 2>/dev/null; then
      log "the controller exited; last log lines:"; tail -20 "$STATE/logs/controller.log" >&2; exit 1
    fi
    sleep 0.5
  done
  log "not ready after 60s; last log lines:"; tail -20 "$STATE/logs/controller.log" >&2; exit 1
}

down() {
  if pid="$(running_pid)"; then
    log "stopping pid $pid"
    kill -TERM "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$PID_FILE"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  prepare) prepare ;;
  *) echo "usage: $0 up|down|prepare" >&2; exit 2 ;;
esac
