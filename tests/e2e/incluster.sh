#!/usr/bin/env bash
# `make incluster`: the chart's controller pods on the local cluster's real nodes
# (tests/e2e/incluster.rs). The development installation that `make e2e` leaves (webhook
# configurations by URL, the RBAC of `lws install --rbac-only`) has the chart's object names, so
# it is removed first; then `make deploy`, the suite, and `make undeploy`, which checks that
# nothing of ours is left.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
LWS="${LWS:-$ROOT/target/release/lws}"
log() { printf '[incluster] %s\n' "$*" >&2; }

[ -f .cluster/env ] || { log "no local cluster: REAL_NODE=1 make cluster-up"; exit 1; }
set -a; . .cluster/env; set +a
KUBECTL="${KUBECTL:-kubectl}"
[ -n "${LWS_REAL_NODES:-}" ] || {
  log "the local cluster has no real nodes: make cluster-down; REAL_NODE=1 make cluster-up"; exit 1; }

bash tests/e2e/controller.sh down
log "removing the development installation (the CRD stays)"
"$LWS" install --rbac-only -o json \
  | jq '.items |= map(select(.kind != "Namespace"))' \
  | "$KUBECTL" delete --ignore-not-found -f - >/dev/null
"$KUBECTL" delete --ignore-not-found \
  mutatingwebhookconfiguration/lws-mutating-webhook-configuration \
  validatingwebhookconfiguration/lws-validating-webhook-configuration >/dev/null

bash charts/deploy.sh deploy
rc=0
HELM="$(bash charts/helm.sh)" "${CARGO:-cargo}" test --profile "${PROFILE:-release}" --test e2e -- \
  --ignored --test-threads=1 --nocapture incluster:: || rc=$?
if [ "$rc" -ne 0 ]; then
  log "FAILED; controller pods and their logs:"
  "$KUBECTL" -n lws-system get pods -o wide || true
  for pod in $("$KUBECTL" -n lws-system get pods -o name 2>/dev/null); do
    "$KUBECTL" -n lws-system logs "$pod" --tail=40 2>&1 | sed "s|^|$pod: |" || true
  done
fi
bash charts/deploy.sh undeploy || rc=$?
exit "$rc"
