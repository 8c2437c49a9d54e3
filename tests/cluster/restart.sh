#!/usr/bin/env bash
# Restart one control-plane component of the running local cluster, as an operator or a crash
# would: restart.sh COMPONENT [DOWN_SECONDS]
#   COMPONENT     a name in .cluster/pids that runs without supervise.sh (etcd, kube-apiserver,
#                 kwok); the supervised ones come back by themselves
#   DOWN_SECONDS  how long it stays down (default 0)
# The component is killed (SIGKILL: no graceful shutdown, as a crash) and started again with the
# command line and environment it ran with, read from /proc before the kill; .cluster/pids is
# updated. Waits until the API server answers /readyz again (for etcd and the API server).
# Used by the fault suite (tests/e2e/chaos.rs).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

component="${1:?usage: restart.sh COMPONENT [DOWN_SECONDS]}"
down="${2:-0}"
[ -s "$RUN/pids" ] || die "no cluster runs here ($RUN/pids is empty)"
read -r _ pid exe < <(awk -v c="$component" '$1 == c' "$RUN/pids") || die "no $component in $RUN/pids"
runs_exe "$pid" "$exe" || die "$component (pid $pid) is not running"
[[ "$exe" != */bash ]] || die "$component runs under supervise.sh; kill its child instead, the supervisor starts it again"

mapfile -d '' argv <"/proc/$pid/cmdline"
mapfile -d '' environ <"/proc/$pid/environ"
kill -KILL "$pid"
while pid_running "$pid"; do sleep 0.05; done
log "killed $component (pid $pid); down for ${down}s"
sleep "$down"

# The same session detachment and log as up.sh's start(), appending to the log.
env -i "${environ[@]}" setsid "${argv[@]}" >>"$RUN/logs/$component.log" 2>&1 </dev/null &
new=$!
awk -v c="$component" -v p="$new" -v e="$exe" '$1 == c { $2 = p; $3 = e } { print }' "$RUN/pids" >"$RUN/pids.new"
mv "$RUN/pids.new" "$RUN/pids"
log "started $component again (pid $new)"

case "$component" in
  etcd | kube-apiserver)
    server="$(awk '/server:/ { print $2; exit }' "$RUN/kubeconfig")"
    P="$RUN/pki"
    ready() { curl -sf --cacert "$P/ca.crt" --cert "$P/admin.crt" --key "$P/admin.key" "$server/readyz" >/dev/null; }
    wait_for 120 ready || die "the API server is not ready after restarting $component (see $RUN/logs)"
    ;;
esac
