#!/usr/bin/env bash
# Stop the upstream LWS peer started by peer-up.sh (by its pid) and remove its webhook
# configurations, so the apiserver stops calling a dead URL. CRDs stay (LWS objects keep
# existing for the next controller) unless --delete-crds is given. Harmless when no peer runs.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

delete_crds=0 keep_webhooks=0
for arg in "$@"; do
  case "$arg" in
    --delete-crds) delete_crds=1 ;;
    # The live swap suite (tests/e2e/swap.rs): the webhook configurations stay, so the API server
    # refuses LWS and pod admissions (failurePolicy Fail) until the next controller registers its
    # own, rather than letting pods through that no LWS webhook mutated.
    --keep-webhooks) keep_webhooks=1 ;;
    *) die "unknown argument $arg (--delete-crds, --keep-webhooks)" ;;
  esac
done

if [ -s "$RUN/peer.pid" ]; then
  stop_pid "lws peer" "$(head -n1 "$RUN/peer.pid")" "$BIN/lws-*/manager"
  rm -f "$RUN/peer.pid"
else
  log "no peer pid recorded"
fi

# Only talk to the apiserver when the cluster is there.
if [ "$keep_webhooks" = 0 ] && [ -f "$RUN/kubeconfig" ] && kc get --raw /readyz >/dev/null 2>&1; then
  kc delete mutatingwebhookconfiguration lws-mutating-webhook-configuration --ignore-not-found >/dev/null
  kc delete validatingwebhookconfiguration lws-validating-webhook-configuration --ignore-not-found >/dev/null
  log "removed the peer's webhook configurations"
  if [ "$delete_crds" = 1 ]; then
    kc delete crd leaderworkersets.leaderworkerset.x-k8s.io disaggregatedsets.disaggregatedset.x-k8s.io \
      --ignore-not-found >/dev/null
    log "removed the LWS CRDs"
  fi
fi
rm -rf "$RUN/peer" "$RUN/peer.env"
log "peer down"
