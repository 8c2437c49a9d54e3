#!/usr/bin/env bash
# Runs our controller against the local cluster the way `make e2e` and `make demo` need it:
#   controller.sh up      cluster (if no KUBECONFIG), install --dev, least-privilege identity,
#                         controller in the background (.cluster/controller.pid,
#                         .cluster/logs/controller.log), waits for /readyz
#   controller.sh down    stops the controller started by `up` (by its recorded pid)
#   controller.sh prepare everything `up` does before starting the controller (install --dev,
#                         .cluster/controller.kubeconfig), for tests that run their own
#                         controllers
# Env: LWS (the binary), LWS_WEBHOOK_PORT (default 9443), LWS_HEALTH_PORT (default 8081),
# LWS_METRICS_PORT (default 8443: /metrics over HTTPS, for the ServiceAccount's token),
# LWS_INSTALL_CRD (default 1; 0 leaves the cluster's CRD as it is), LWS_SCHEDULER_PROVIDER
# (default none; `volcano` installs Volcano's PodGroup CRD, the RBAC rule on PodGroups and runs
# the controller with --scheduler-provider=volcano, as `make e2e` does).
# `up` refuses ports another process holds (a stale controller of this checkout is stopped
# first) and counts the controller ready only when its own pid holds both ports and /readyz
# answers: an old controller's /readyz once passed for a new one that could not bind.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
LWS="${LWS:-$ROOT/target/release/lws}"
STATE="$ROOT/.cluster"
PID_FILE="$STATE/controller.pid"
WEBHOOK_PORT="${LWS_WEBHOOK_PORT:-9443}"
HEALTH_PORT="${LWS_HEALTH_PORT:-8081}"
METRICS_PORT="${LWS_METRICS_PORT:-8443}"
NS=lws-system
SA=lws-controller-manager
SCHEDULER_PROVIDER="${LWS_SCHEDULER_PROVIDER:-}"
# `lws install` and `lws controller` flags for the provider, none without one.
PROVIDER_FLAGS=()
[[ -z "$SCHEDULER_PROVIDER" ]] || PROVIDER_FLAGS=(--scheduler-provider "$SCHEDULER_PROVIDER")

log() { echo "[controller] $*" >&2; }
die() { log "$*"; exit 1; }

# The pid listening on TCP port $1 (any address), if any (ss shows owners to root).
listener() {
  ss -ltnpH "sport = :$1" | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true
}

command_of() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null; }

# True when pid $1 is an `lws controller` built in this checkout (target/<profile>/lws, also
# when rebuilt since it started).
is_our_controller() {
  local exe
  exe="$(readlink "/proc/$1/exe" 2>/dev/null)" || return 1
  exe="${exe% (deleted)}"
  [[ "$exe" == "$ROOT"/target/*/lws ]] || return 1
  [[ "$(tr '\0' '\n' <"/proc/$1/cmdline" | sed -n 2p)" == controller ]]
}

# TERM, up to 10 s for the drain, then KILL.
stop_pid() {
  local pid="$1"
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
  kill -KILL "$pid" 2>/dev/null || true
}

# Our ports must be free before a start. A controller of this checkout holding them is stale
# (it outlived its cluster, or lost its pid file): stop it. Anything else is not ours to stop.
claim_ports() {
  local port pid
  for port in "$WEBHOOK_PORT" "$HEALTH_PORT" "$METRICS_PORT"; do
    pid="$(listener "$port")"
    if [[ -z "$pid" ]]; then
      [[ -z "$(ss -ltnH "sport = :$port")" ]] || die "port $port is taken by a process ss cannot name"
      continue
    fi
    is_our_controller "$pid" ||
      die "port $port is taken by pid $pid ($(command_of "$pid")); stop it or set LWS_WEBHOOK_PORT/LWS_HEALTH_PORT/LWS_METRICS_PORT"
    log "port $port is held by a stale lws controller, pid $pid ($(command_of "$pid")): stopping it"
    stop_pid "$pid"
    [[ -z "$(listener "$port")" ]] || die "port $port is still taken after stopping pid $pid"
  done
}

# True when pid $1 itself listens on all three ports.
owns_ports() {
  [[ "$(listener "$WEBHOOK_PORT")" == "$1" && "$(listener "$HEALTH_PORT")" == "$1" &&
     "$(listener "$METRICS_PORT")" == "$1" ]]
}

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
  if [[ "${LWS_INSTALL_CRD:-1}" == 0 ]]; then
    # The live swap suite (tests/e2e/swap.rs) runs ours under the CRD the cluster has.
    log "install --dev without the CRD (LWS_INSTALL_CRD=0), webhooks by URL https://127.0.0.1:$WEBHOOK_PORT"
    "$LWS" install --dev --port "$WEBHOOK_PORT" --cert-dir "$STATE/certs" -o json \
      | jq '.items |= map(select(.kind != "CustomResourceDefinition"))' \
      | "$KUBECTL" apply --server-side --force-conflicts --field-manager=lws-install -f - >/dev/null
  else
    log "install --dev (CRD, webhooks by URL https://127.0.0.1:$WEBHOOK_PORT)"
    "$LWS" install --dev --port "$WEBHOOK_PORT" --cert-dir "$STATE/certs"
  fi
  if [[ -n "$SCHEDULER_PROVIDER" ]]; then
    local crd
    crd="$(bash "$ROOT/tests/cluster/build.sh" volcano-crd)"
    log "gang scheduling by $SCHEDULER_PROVIDER: the PodGroup CRD ($crd)"
    "$KUBECTL" apply --server-side --force-conflicts -f "$crd" >/dev/null
    # Polled: kubectl wait fails on a new CRD whose status.conditions is still null.
    local established="" _
    for _ in $(seq 1 60); do
      established="$("$KUBECTL" get crd podgroups.scheduling.volcano.sh \
        -o jsonpath='{.status.conditions[?(@.type=="Established")].status}')"
      [[ "$established" == True ]] && break
      sleep 1
    done
    [[ "$established" == True ]] || die "the PodGroup CRD is not Established after 60 s"
  fi
  log "least-privilege identity: ServiceAccount $NS/$SA bound to the ClusterRole of 'lws install${PROVIDER_FLAGS[*]:+ ${PROVIDER_FLAGS[*]}}'"
  "$LWS" install --rbac-only "${PROVIDER_FLAGS[@]}" \
    | "$KUBECTL" apply --server-side --field-manager=lws-install -f - >/dev/null
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
    local running_provider
    running_provider="$(tr '\0' '\n' <"/proc/$pid/cmdline" | sed -n '/^--scheduler-provider$/{n;p;}')"
    if [[ "$(readlink "/proc/$pid/exe")" == *" (deleted)" ]]; then
      log "pid $pid runs a binary since rebuilt: restarting it"; down
    elif [[ "$running_provider" != "$SCHEDULER_PROVIDER" ]]; then
      log "pid $pid runs with scheduler provider '${running_provider}', '${SCHEDULER_PROVIDER}' is asked: restarting it"; down
    else
      log "already running (pid $pid)"; return 0
    fi
  fi
  if [[ -f "$STATE/peer.pid" ]] && kill -0 "$(cat "$STATE/peer.pid")" 2>/dev/null; then
    log "upstream LWS (the peer) is running on this cluster: make peer-down first"; exit 1
  fi
  claim_ports
  prepare
  log "starting $LWS controller (log $STATE/logs/controller.log)"
  KUBECONFIG="$STATE/controller.kubeconfig" RUST_LOG="${RUST_LOG:-info}" nohup "$LWS" controller \
    --webhook-addr "127.0.0.1:$WEBHOOK_PORT" --health-addr "127.0.0.1:$HEALTH_PORT" \
    --metrics-bind-address "127.0.0.1:$METRICS_PORT" \
    --tls-cert "$STATE/certs/tls.crt" --tls-key "$STATE/certs/tls.key" \
    --pid-file "$PID_FILE" "${PROVIDER_FLAGS[@]}" >"$STATE/logs/controller.log" 2>&1 &
  local started=$!
  for _ in $(seq 1 120); do
    if owns_ports "$started" && curl -fsS "http://127.0.0.1:$HEALTH_PORT/readyz" >/dev/null 2>&1; then
      log "ready (pid $started, listening on $WEBHOOK_PORT, $HEALTH_PORT and $METRICS_PORT)"; return 0
    fi
    if ! kill -0 "$started" 2>/dev/null; then
      log "the controller exited; last log lines:"; tail -20 "$STATE/logs/controller.log" >&2; exit 1
    fi
    sleep 0.5
  done
  local holder; holder="$(listener "$HEALTH_PORT")"
  if [[ -n "$holder" && "$holder" != "$started" ]]; then
    log "port $HEALTH_PORT is answered by pid $holder ($(command_of "$holder")), not by pid $started"
  fi
  log "not ready after 60s; last log lines:"; tail -20 "$STATE/logs/controller.log" >&2; stop_pid "$started"; exit 1
}

down() {
  if pid="$(running_pid)"; then
    log "stopping pid $pid"
    stop_pid "$pid"
  fi
  rm -f "$PID_FILE"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  prepare) prepare ;;
  *) echo "usage: $0 up|down|prepare" >&2; exit 2 ;;
esac
