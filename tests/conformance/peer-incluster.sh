#!/usr/bin/env bash
# Upstream LWS (the peer) inside the local cluster, as upstream's own e2e run deploys it
# (hack/e2e-test.sh: `kustomize build test/e2e/config | kubectl apply --server-side -f -`), for
# the metrics spec, which talks to the controller through its in-cluster Service:
#   peer-incluster.sh up     the manager image (images.sh peer) into the real nodes; upstream's
#                            config/default with test/e2e/config's patch, rendered by
#                            `kubectl kustomize`, plus what the real nodes need (below); applied;
#                            waits until its webhooks answer
#   peer-incluster.sh down   deletes what `up` applied (not the Namespace, not the CRDs) and the
#                            Lease; fails if a pod is left
# Changes to upstream's manifests, all forced by this cluster (tests/cluster/README.md, "Real
# nodes"): the real nodes' selector and toleration; the node's network (no pod network reaches
# the API server on 127.0.0.1, reached through KUBERNETES_SERVICE_HOST/PORT); one replica on
# real-node-1 (127.0.0.2), binding webhook, metrics and health to that address, since both real
# nodes share one network namespace and upstream binds every address; a CPU request of 100m
# (upstream asks for a whole core; the machine has two). The CRD is upstream's base, without the
# conversion webhook patch (one version: nothing to convert), applied as peer-up.sh does.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../cluster/lib.sh
. "$(dirname "$0")/../cluster/lib.sh"

W="$RUN/peer-incluster"
NODE_INDEX=1
NS=lws-system
LEASE=b8b2488c.x-k8s.io

[ -f "$RUN/env" ] || die "no local cluster: REAL_NODE=1 make cluster-up"
set -a
# shellcheck source=/dev/null  # written by cluster-up
. "$RUN/env"
set +a
[ -n "${LWS_REAL_NODES:-}" ] || die "the local cluster has no real nodes: make cluster-down; REAL_NODE=1 make cluster-up"

up() {
  local version archive name ip
  version="$("$CLUSTER_DIR/build.sh" peer)"
  read -r archive name < <("$REPO/tests/conformance/images.sh" peer)
  bash "$CLUSTER_DIR/node-image.sh" import "$archive" >/dev/null
  ip="$(real_node_ip "$NODE_INDEX")"
  rm -rf "$W" && mkdir -p "$W/overlay"
  cp -r "$BIN/lws-$version/config" "$W/config"
  chmod -R u+w "$W/config"
  # What hack/e2e-test.sh writes there (leader election on), plus the addresses.
  cat >"$W/config/manager/controller_manager_config.yaml" <<YAML
apiVersion: config.lws.x-k8s.io/v1alpha1
kind: Configuration
leaderElection:
  leaderElect: true
internalCertManagement:
  enable: true
webhook:
  host: $ip
metrics:
  bindAddress: $ip:8443
health:
  healthProbeBindAddress: $ip:8081
YAML
  # What hack/e2e-test.sh does with `kustomize edit set image controller=$IMAGE_TAG`.
  python3 - "$W/config/manager/kustomization.yaml" "${name%:*}" "${name##*:}" <<'PY'
import sys, yaml
path, new_name, new_tag = sys.argv[1:]
k = yaml.safe_load(open(path))
images = [i for i in k.get("images", []) if i.get("name") != "controller"]
k["images"] = images + [{"name": "controller", "newName": new_name, "newTag": new_tag}]
yaml.safe_dump(k, open(path, "w"))
PY
  cp "$BIN/lws-e2e-$version/src/config/image_pull_policy.yaml" "$W/overlay/" 2>/dev/null ||
    cp "$GOMODCACHE/sigs.k8s.io/lws@$version/test/e2e/config/image_pull_policy.yaml" "$W/overlay/"
  cat >"$W/overlay/real-nodes.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata:
  name: controller-manager
  namespace: system
spec:
  replicas: 1
  template:
    spec:
      hostNetwork: true
      dnsPolicy: ClusterFirstWithHostNet
      nodeSelector:
        $REAL_NODE_LABEL: "true"
        kubernetes.io/hostname: $(real_node_name "$NODE_INDEX")
      tolerations:
        - {key: $REAL_NODE_LABEL, operator: Equal, value: "true", effect: NoSchedule}
      containers:
        - name: manager
          env:
            - {name: KUBERNETES_SERVICE_HOST, value: 127.0.0.1}
            - {name: KUBERNETES_SERVICE_PORT, value: "$LWS_APISERVER_PORT"}
          resources:
            requests: {cpu: 100m, memory: 128Mi}
YAML
  cat >"$W/overlay/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../config/default
patches:
  - path: image_pull_policy.yaml
  - path: real-nodes.yaml
YAML
  kc kustomize "$W/overlay" >"$W/rendered.yaml"
  # CRDs apart (applied from the bases below); the Namespace is shared with ours, never deleted.
  python3 - "$W/rendered.yaml" "$W/objects.json" <<'PY'
import json, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
keep = [d for d in docs if d["kind"] not in ("CustomResourceDefinition", "Namespace")]
json.dump({"apiVersion": "v1", "kind": "List", "items": keep}, open(sys.argv[2], "w"))
PY
  log "peer in-cluster: upstream lws $version ($name) on $(real_node_name "$NODE_INDEX") ($ip)"
  kc apply --server-side --force-conflicts -f "$BIN/lws-$version/config/crd/bases/" >/dev/null
  wait_crds_established leaderworkersets.leaderworkerset.x-k8s.io disaggregatedsets.disaggregatedset.x-k8s.io
  kc create namespace "$NS" --dry-run=client -o yaml | kc apply -f - >/dev/null
  # Webhook configurations by URL (ours, or peer-up's) would keep their url beside the service.
  kc delete --ignore-not-found mutatingwebhookconfiguration/lws-mutating-webhook-configuration \
    validatingwebhookconfiguration/lws-validating-webhook-configuration >/dev/null
  kc apply --server-side --force-conflicts -f "$W/objects.json" >/dev/null
  # The rotator writes the Secret; the kubelet then syncs it into the pod (up to a minute or so).
  kc -n "$NS" rollout status deployment/lws-controller-manager --timeout=5m >&2 ||
    { kc -n "$NS" get pods -o wide >&2; kc -n "$NS" logs deployment/lws-controller-manager --tail=30 >&2 || true; die "the in-cluster peer did not become ready"; }
  wait_for 120 lws_webhooks_answer || die "the API server cannot reach the in-cluster peer's webhooks"
  log "peer in-cluster up"
}

down() {
  if [ -s "$W/objects.json" ]; then
    kc delete --ignore-not-found --wait=true --timeout=2m -f "$W/objects.json" >/dev/null
  fi
  kc -n "$NS" delete lease "$LEASE" --ignore-not-found >/dev/null
  wait_for 60 no_pods || die "peer pods left in $NS: $(kc -n "$NS" get pods -l control-plane=controller-manager -o name)"
  rm -rf "$W"
  log "peer in-cluster down"
}

no_pods() { [ -z "$(kc -n "$NS" get pods -l control-plane=controller-manager -o name)" ]; }

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
