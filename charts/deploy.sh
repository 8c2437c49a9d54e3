#!/usr/bin/env bash
# `make deploy` / `make undeploy`: the chart on the current cluster (KUBECONFIG, else the local
# one from .cluster/env), release `lws` in namespace lws-system, default values.
#   deploy.sh deploy    the image (made when missing or stale) into the local cluster's real
#                       nodes (when they are up), then
#                       helm upgrade --install --wait (with tests/cluster/real-node-values.yaml on
#                       real nodes)
#   deploy.sh undeploy  helm uninstall --wait, the controller's Lease, then a check that nothing
#                       of ours is left but the CRD (which Helm never deletes) and the namespace
# Env: LWS_IMAGE_TAR (default target/image/lws.oci.tar), HELM_TIMEOUT (default 5m).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
RELEASE=lws
NS=lws-system
IMAGE_TAR="${LWS_IMAGE_TAR:-target/image/lws.oci.tar}"
LEASE=b8b2488c.x-k8s.io  # host/src/controller/leader.rs DEFAULT_LEASE_NAME (upstream's election id)
REAL_NODE_SELECTOR=lws.x-k8s.io/real-node=true  # tests/cluster/node-up.sh labels (and taints) them so

log() { printf '[deploy] %s\n' "$*" >&2; }
die() { printf '[deploy] ERROR: %s\n' "$*" >&2; exit 1; }

HELM="$(bash charts/helm.sh)"

# The cluster: KUBECONFIG as given, else the local one. "local" also when KUBECONFIG is the
# local cluster's own file, so its real nodes get the image either way.
LOCAL=0
if [ -z "${KUBECONFIG:-}" ]; then
  [ -f .cluster/env ] || die "no KUBECONFIG and no local cluster (.cluster/env): make cluster-up (REAL_NODE=1 for nodes that run the image)"
  # shellcheck source=/dev/null
  set -a; . .cluster/env; set +a
  LOCAL=1
elif [ -f .cluster/kubeconfig ] && [ "$(readlink -f "$KUBECONFIG")" = "$(readlink -f .cluster/kubeconfig)" ]; then
  # shellcheck source=/dev/null
  set -a; . .cluster/env; set +a
  LOCAL=1
fi
export KUBECONFIG
if [ -z "${KUBECTL:-}" ]; then
  if command -v kubectl >/dev/null; then KUBECTL=kubectl; else
    # shellcheck source-path=SCRIPTDIR source=../tests/cluster/lib.sh
    KUBECTL="$(. tests/cluster/lib.sh && echo "$KUBECTL_BIN")"
  fi
fi
"$KUBECTL" get --raw=/readyz >/dev/null 2>&1 || die "the cluster at $KUBECONFIG does not answer"

deploy() {
  local values=() real_nodes=""
  if [ "$LOCAL" = 1 ]; then
    real_nodes="$("$KUBECTL" get nodes -l "$REAL_NODE_SELECTOR" -o name 2>/dev/null || true)"
  fi
  if [ -n "$real_nodes" ]; then
    # Built when missing or older than the sources it is built from (make image repacks).
    if [ ! -f "$IMAGE_TAR" ]; then
      log "no $IMAGE_TAR: make image"; make --no-print-directory image
    elif [ -n "$(find core/src wasm/src host/src Cargo.lock image -newer "$IMAGE_TAR" -type f -print -quit 2>/dev/null)" ]; then
      log "$IMAGE_TAR is older than its sources: make image"; make --no-print-directory image
    fi
    log "importing $IMAGE_TAR into the real nodes ($(echo "$real_nodes" | wc -l))"
    bash tests/cluster/node-image.sh import "$IMAGE_TAR"
    # The API server's port is only known at cluster-up (env[1] of the values file).
    values=(-f tests/cluster/real-node-values.yaml --set-string "env[1].value=$LWS_APISERVER_PORT")
  elif [ "$LOCAL" = 1 ]; then
    log "the local cluster has no real nodes (REAL_NODE=1 make cluster-up): pods go to KWOK's nodes, which run no image; not importing it"
  else
    log "KUBECONFIG is not the local cluster: not importing the image; load it into your nodes or push it (README.md, Install)"
  fi
  log "helm upgrade --install $RELEASE charts/lws -n $NS ${values[*]}"
  "$HELM" upgrade --install "$RELEASE" charts/lws -n "$NS" --create-namespace --wait \
    --timeout "${HELM_TIMEOUT:-5m}" "${values[@]}"
  "$KUBECTL" -n "$NS" get deployment,pods -l app.kubernetes.io/name=lws -o wide
}

undeploy() {
  if "$HELM" status "$RELEASE" -n "$NS" >/dev/null 2>&1; then
    # Foreground: the Deployment is gone only once its pods are, so no controller renews the
    # Lease or writes a webhook configuration after this returns.
    log "helm uninstall $RELEASE -n $NS"
    "$HELM" uninstall "$RELEASE" -n "$NS" --wait --cascade foreground --timeout "${HELM_TIMEOUT:-5m}"
  else
    log "no release $RELEASE in $NS; checking what is left anyway"
  fi
  # The controller creates its Lease at run time, so it is no object of the release.
  "$KUBECTL" -n "$NS" delete lease "$LEASE" --ignore-not-found >/dev/null
  local left="" object
  for object in mutatingwebhookconfiguration/lws-mutating-webhook-configuration \
    validatingwebhookconfiguration/lws-validating-webhook-configuration \
    clusterrole/lws-manager-role clusterrole/lws-webhook-cert-role \
    clusterrolebinding/lws-manager-rolebinding clusterrolebinding/lws-webhook-cert-rolebinding; do
    left+="$("$KUBECTL" get "$object" --ignore-not-found -o name)"$'\n'
  done
  for object in secret/lws-webhook-server-cert lease/$LEASE serviceaccount/lws-controller-manager \
    role/lws-leader-election-role role/lws-webhook-cert-role \
    rolebinding/lws-leader-election-rolebinding rolebinding/lws-webhook-cert-rolebinding \
    service/lws-webhook-service service/lws-controller-manager-metrics-service \
    deployment/lws-controller-manager; do
    left+="$("$KUBECTL" -n "$NS" get "$object" --ignore-not-found -o name)"$'\n'
  done
  left="$(printf '%s' "$left" | sed '/^$/d')"
  [ -z "$left" ] || die "left behind after uninstall:"$'\n'"$left"
  log "nothing of lws is left but the CRD leaderworkersets.leaderworkerset.x-k8s.io (Helm keeps CRDs;"
  log "  kubectl delete crd leaderworkersets.leaderworkerset.x-k8s.io deletes every LeaderWorkerSet) and the namespace $NS"
}

case "${1:-}" in
  deploy) deploy ;;
  undeploy) undeploy ;;
  *) echo "usage: $0 deploy|undeploy" >&2; exit 2 ;;
esac
