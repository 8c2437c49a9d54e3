#!/usr/bin/env bash
# Run upstream LWS (the "peer") against the local cluster as a plain process: its CRDs from the
# module, a serving cert for 127.0.0.1 made here, its webhooks registered by URL.
# Writes .cluster/peer.pid, .cluster/peer.env; logs to .cluster/logs/lws-peer.log.
# Refuses while our own controller runs (.cluster/controller.pid): one LWS controller at a time.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

{ [ -f "$RUN/kubeconfig" ] && [ -s "$RUN/pids" ]; } || die "no cluster running; run make cluster-up first"
if pid_alive "$RUN/controller.pid"; then
  die "our controller runs (pid $(head -n1 "$RUN/controller.pid"), $RUN/controller.pid); stop it before peer-up"
fi
if [ -s "$RUN/peer.pid" ] && runs_exe "$(head -n1 "$RUN/peer.pid")" "$BIN/lws-*/manager"; then
  log "peer already running (pid $(head -n1 "$RUN/peer.pid"))"
  exit 0
fi

VERSION="$("$CLUSTER_DIR/build.sh" peer)"
PEER_DIR="$BIN/lws-$VERSION"
[ "$VERSION" = "$LWS_PEER_VERSION" ] || log "WARNING: running upstream LWS $VERSION instead of $LWS_PEER_VERSION"

D="$RUN/peer"
rm -rf "$D"
mkdir -p "$D/certs" "$RUN/logs"
on_exit() {
  local rc=$?
  [ "$rc" = 0 ] && return
  log "peer-up failed (log: $RUN/logs/lws-peer.log)"
  "$CLUSTER_DIR/peer-down.sh" || true
}
trap on_exit EXIT

# --- CRDs (server-side apply: the LWS CRD is too big for the last-applied annotation) -------------
# LWS_PEER_KEEP_CRD=1 keeps the cluster's LeaderWorkerSet CRD (the live swap suite runs the peer
# under ours, tests/e2e/swap.rs); the DisaggregatedSet CRD is installed either way.
if [ "${LWS_PEER_KEEP_CRD:-0}" = 1 ] && kc get crd leaderworkersets.leaderworkerset.x-k8s.io >/dev/null 2>&1; then
  log "keeping the cluster's LeaderWorkerSet CRD (LWS_PEER_KEEP_CRD=1)"
  kc apply --server-side --force-conflicts -f "$PEER_DIR/config/crd/bases/disaggregatedset.x-k8s.io_disaggregatedsets.yaml" >/dev/null
else
  log "installing LWS $VERSION CRDs"
  kc apply --server-side --force-conflicts -f "$PEER_DIR/config/crd/bases/" >/dev/null
fi
wait_crds_established leaderworkersets.leaderworkerset.x-k8s.io disaggregatedsets.disaggregatedset.x-k8s.io

# --- serving certificate for https://127.0.0.1:PORT (controller-runtime reads tls.crt/tls.key) ----
(
  cd "$D/certs"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
    -subj "/CN=lws-peer-webhook-ca" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' >server.ext
  openssl req -newkey rsa:2048 -nodes -keyout tls.key -out tls.csr -subj "/CN=127.0.0.1" 2>/dev/null
  openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
    -out tls.crt -extfile server.ext 2>/dev/null
)

WEBHOOK_PORT="$(free_port)"
METRICS_PORT="$(free_port)"
HEALTH_PORT="$(free_port)"
cat >"$D/config.yaml" <<EOF
apiVersion: config.lws.x-k8s.io/v1alpha1
kind: Configuration
leaderElection:
  leaderElect: false
internalCertManagement:
  enable: false
webhook:
  host: 127.0.0.1
  port: $WEBHOOK_PORT
  certDir: $D/certs
metrics:
  bindAddress: 127.0.0.1:$METRICS_PORT
health:
  healthProbeBindAddress: 127.0.0.1:$HEALTH_PORT
EOF

# Own session so a Ctrl-C on make leaves it alone; setsid execs in place, so $! is the manager.
KUBECONFIG="$RUN/kubeconfig" setsid "$PEER_DIR/manager" --config="$D/config.yaml" \
  >"$RUN/logs/lws-peer.log" 2>&1 </dev/null &
echo $! >"$RUN/peer.pid"
log "started upstream lws $VERSION manager (pid $!), webhook https://127.0.0.1:$WEBHOOK_PORT"

healthy() { curl -sf "http://127.0.0.1:$HEALTH_PORT/readyz"; }
webhook_serves() { curl -s -o /dev/null --cacert "$D/certs/ca.crt" "https://127.0.0.1:$WEBHOOK_PORT/"; }
wait_for 60 healthy || die "peer did not become ready"
wait_for 60 webhook_serves || die "peer webhook server does not answer on 127.0.0.1:$WEBHOOK_PORT"

# --- webhook configurations: upstream's manifests.yaml with its kustomize patches applied --------
# (names get the lws- prefix; pod webhooks only see pods with the leaderworkerset.sigs.k8s.io/name
# label) and the in-cluster service swapped for our URL plus caBundle.
CA_B64="$(base64 -w0 <"$D/certs/ca.crt")"
python3 - "$PEER_DIR/config/webhook/manifests.yaml" "https://127.0.0.1:$WEBHOOK_PORT" "$CA_B64" >"$D/webhooks.json" <<'EOF'
import json, sys, yaml
path, base, ca = sys.argv[1:]
pod_selector = {"matchExpressions": [{"key": "leaderworkerset.sigs.k8s.io/name", "operator": "Exists"}]}
items = []
for doc in yaml.safe_load_all(open(path)):
    if not doc:
        continue
    doc["metadata"] = {"name": "lws-" + doc["metadata"]["name"]}
    for wh in doc["webhooks"]:
        wh["clientConfig"] = {"url": base + wh["clientConfig"]["service"]["path"], "caBundle": ca}
        if wh["name"] in ("mpod.kb.io", "vpod.kb.io"):
            wh["objectSelector"] = pod_selector
    items.append(doc)
json.dump({"apiVersion": "v1", "kind": "List", "items": items}, sys.stdout)
EOF
kc apply -f "$D/webhooks.json" >/dev/null

# The apiserver calls the webhooks from now on; prove it with a dry-run create through them.
wait_for 30 lws_webhooks_answer || die "the apiserver cannot reach the peer's webhooks"

cat >"$RUN/peer.env" <<EOF
LWS_PEER_VERSION=$VERSION
LWS_PEER_WEBHOOK_URL=https://127.0.0.1:$WEBHOOK_PORT
LWS_PEER_METRICS=https://127.0.0.1:$METRICS_PORT/metrics
LWS_PEER_HEALTH=http://127.0.0.1:$HEALTH_PORT
EOF
trap - EXIT
log "peer up: upstream lws $VERSION; webhooks lws-mutating-webhook-configuration / lws-validating-webhook-configuration"
