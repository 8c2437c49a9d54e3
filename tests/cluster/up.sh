#!/usr/bin/env bash
# Start a real control plane on 127.0.0.1 (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler) with the kwok controller playing the kubelet for 16 fake nodes
# (4 racks x 4 nodes). Work dir: $REPO/.cluster (pki, data, logs, pids, kubeconfig, env).
# REAL_NODE=1 also starts two real nodes (node-up.sh: containerd + kubelet on 127.0.0.1 and
# 127.0.0.2, tainted for the controller only; docs/local-cluster-network.md).
# Starting a cluster that is already running is a no-op.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

RACKS="${CLUSTER_RACKS:-4}"
NODES_PER_RACK="${CLUSTER_NODES_PER_RACK:-4}"
# Extra --feature-gates for kube-apiserver, -controller-manager and -scheduler, e.g.
# CLUSTER_FEATURE_GATES=MaxUnavailableStatefulSet=true. Empty keeps 1.36's defaults (where
# MaxUnavailableStatefulSet is beta but OFF by default: k8s.io/kubernetes pkg/features).
FEATURE_GATES="${CLUSTER_FEATURE_GATES:-}"
REAL_NODE="${REAL_NODE:-0}"
case "$REAL_NODE" in 0 | 1) ;; *) die "REAL_NODE must be 0 or 1, not $REAL_NODE" ;; esac

# --- already running? -------------------------------------------------------------------------
if [ -s "$RUN/pids" ]; then
  all_alive=1
  while read -r name pid exe; do
    runs_exe "$pid" "$exe" || { all_alive=0; log "$name (pid $pid) is gone"; }
  done <"$RUN/pids"
  if [ "$all_alive" = 1 ]; then
    if [ "$REAL_NODE" = 1 ] && [ ! -s "$NODES_RUN/nodes" ]; then
      die "the cluster runs without real nodes; make cluster-down first, then REAL_NODE=1 make cluster-up"
    fi
    log "cluster already running; KUBECONFIG=$RUN/kubeconfig"
    exit 0
  fi
  log "a previous cluster is half dead; cleaning it up first"
  "$CLUSTER_DIR/down.sh"
fi

# Builds are skipped in seconds when the cache already holds these versions.
"$CLUSTER_DIR/build.sh" all
APISERVER_BIN="$KUBE_APISERVER"
if [ "$REAL_NODE" = 1 ]; then
  bash "$REPO/tests/support/need-debs.sh" containerd runc containernetworking-plugins
  "$CLUSTER_DIR/build.sh" real-node
  APISERVER_BIN="$KUBE_APISERVER_LOOPBACK"
fi

for b in openssl python3 curl; do command -v "$b" >/dev/null || die "$b is required"; done

# Real nodes of an earlier run may have left mounts: node-down.sh clears them or refuses.
"$CLUSTER_DIR/node-down.sh"
rm -rf --one-file-system "$RUN"
mkdir -p "$RUN"/{pki,logs,etcd}
: >"$RUN/pids"
# If anything below fails, leave no half-started processes behind.
on_exit() {
  local rc=$?
  [ "$rc" = 0 ] && return
  log "cluster-up failed (logs in $RUN/logs); stopping"
  "$CLUSTER_DIR/down.sh" --keep-logs || true
}
trap on_exit EXIT

ETCD_PORT="$(free_port)"
ETCD_PEER_PORT="$(free_port)"
APISERVER_PORT="$(free_port)"
KCM_PORT="$(free_port)"
SCHEDULER_PORT="$(free_port)"
KWOK_PORT="$(free_port)"

# --- PKI ------------------------------------------------------------------------------------------
# One CA signs the apiserver serving cert and an admin client cert in system:masters (RSA-2048:
# both Go and rustls/kube-rs accept it). sa.key signs service-account tokens.
P="$RUN/pki"
log "generating PKI in $P"
(
  cd "$P"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
    -subj "/CN=lws-test-ca" 2>/dev/null
  cat >server.ext <<'EOF'
subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature,keyEncipherment
EOF
  printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' >client.ext
  openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr \
    -subj "/CN=kube-apiserver" 2>/dev/null
  openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
    -out apiserver.crt -extfile server.ext 2>/dev/null
  # The apiserver's identity towards kubelets (logs, exec): system:masters passes their webhook
  # authorization.
  openssl req -newkey rsa:2048 -nodes -keyout apiserver-kubelet-client.key -out apiserver-kubelet-client.csr \
    -subj "/CN=kube-apiserver-kubelet-client/O=system:masters" 2>/dev/null
  openssl x509 -req -in apiserver-kubelet-client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
    -out apiserver-kubelet-client.crt -extfile client.ext 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr \
    -subj "/CN=lws-test-admin/O=system:masters" 2>/dev/null
  openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
    -out admin.crt -extfile client.ext 2>/dev/null
  openssl genrsa -out sa.key 2048 2>/dev/null
  # Front-proxy (request-header) CA: without it KCM and the scheduler keep logging a missing
  # requestheader CA bundle, and aggregated APIs could not authenticate the apiserver.
  openssl req -x509 -newkey rsa:2048 -nodes -keyout front-proxy-ca.key -out front-proxy-ca.crt \
    -days 3650 -subj "/CN=lws-test-front-proxy-ca" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout front-proxy-client.key -out front-proxy-client.csr \
    -subj "/CN=front-proxy-client" 2>/dev/null
  openssl x509 -req -in front-proxy-client.csr -CA front-proxy-ca.crt -CAkey front-proxy-ca.key \
    -CAcreateserial -days 3650 -out front-proxy-client.crt -extfile client.ext 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
)

# --- kubeconfig: embedded data so kubectl and kube-rs both read it ----------------------------------
write_kubeconfig "$RUN/kubeconfig" lws-test lws-test-admin "$P/admin.crt" "$P/admin.key" default

# The control plane talks to nothing but loopback. A proxy on a closed loopback port makes any
# other call fail here instead of leaving through a proxy the environment may name. Exempt:
# loopback (Go never proxies it; curl needs NO_PROXY) and Service names, which the API server's
# aggregator routing dials at their loopback endpoints (a proxied Service name would fail).
# Set after the builds above, which need the real network.
export HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9
export NO_PROXY=127.0.0.1,localhost,::1,.svc,.svc.cluster.local
export http_proxy="$HTTP_PROXY" https_proxy="$HTTPS_PROXY" no_proxy="$NO_PROXY"

# --- etcd -----------------------------------------------------------------------------------------
start etcd "$ETCD_BIN" --name=lws-test --data-dir="$RUN/etcd" \
  --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster="lws-test=http://127.0.0.1:$ETCD_PEER_PORT" \
  --unsafe-no-fsync=true --log-level=warn
wait_for 60 curl -sf "http://127.0.0.1:$ETCD_PORT/health" || die "etcd did not become healthy"

# --- kube-apiserver -------------------------------------------------------------------------------
# Loopback is not a valid address for the `kubernetes` Endpoints, hence endpoint-reconciler none.
# The webhook admission plugins are on by default; listing them makes that explicit.
# Aggregator routing: a webhook registered by Service is called at one of its endpoints (the
# 127.0.0.x of a hostNetwork pod), never at its ClusterIP, which nothing serves (no kube-proxy)
# and which is no loopback address. Kubelets are reached at their InternalIP (127.0.0.x): a
# Hostname address would mean a DNS query.
start kube-apiserver "$APISERVER_BIN" \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address=127.0.0.1 --secure-port="$APISERVER_PORT" \
  --advertise-address=127.0.0.1 --endpoint-reconciler-type=none \
  --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" \
  --client-ca-file="$P/ca.crt" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
  --service-cluster-ip-range=10.96.0.0/16 \
  --enable-aggregator-routing=true \
  --kubelet-client-certificate="$P/apiserver-kubelet-client.crt" --kubelet-client-key="$P/apiserver-kubelet-client.key" \
  --kubelet-preferred-address-types=InternalIP \
  --requestheader-client-ca-file="$P/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file="$P/front-proxy-client.crt" --proxy-client-key-file="$P/front-proxy-client.key" \
  --authorization-mode=Node,RBAC \
  --enable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook \
  --allow-privileged=true \
  --profiling=false \
  ${FEATURE_GATES:+--feature-gates="$FEATURE_GATES"}
readyz() { curl -sf --cacert "$P/ca.crt" --cert "$P/admin.crt" --key "$P/admin.key" \
  "https://127.0.0.1:$APISERVER_PORT/readyz"; }
log "waiting for kube-apiserver on 127.0.0.1:$APISERVER_PORT"
wait_for 120 readyz || die "kube-apiserver did not become ready (see $RUN/logs/kube-apiserver.log)"

# --- kube-controller-manager and kube-scheduler -----------------------------------------------------
# KCM runs every default controller (statefulset, garbagecollector, serviceaccount, ...) with the
# admin identity; its key must be the apiserver's signing key for service-account tokens. Both run
# under supervise.sh: kube-scheduler exits when it finds its cache corrupted, by design.
KC="$RUN/kubeconfig"
start_supervised kube-controller-manager "$KUBE_CONTROLLER_MANAGER" --kubeconfig="$KC" \
  --authentication-kubeconfig="$KC" --authorization-kubeconfig="$KC" \
  --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --leader-elect=false \
  --root-ca-file="$P/ca.crt" --service-account-private-key-file="$P/sa.key" \
  --cluster-signing-cert-file="$P/ca.crt" --cluster-signing-key-file="$P/ca.key" \
  --kube-api-qps=100 --kube-api-burst=200 \
  ${FEATURE_GATES:+--feature-gates="$FEATURE_GATES"}
start_supervised kube-scheduler "$KUBE_SCHEDULER" --kubeconfig="$KC" \
  --authentication-kubeconfig="$KC" --authorization-kubeconfig="$KC" \
  --bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT" --leader-elect=false \
  ${FEATURE_GATES:+--feature-gates="$FEATURE_GATES"}

# --- kwok -----------------------------------------------------------------------------------------
# v0.8 has no built-in stages: use the shipped "fast" set (nodes Ready at once with lease
# heartbeats; pods Running+Ready once bound; pod-delete plays the kubelet's final delete) plus the
# label-triggered chaos stages. Node and pod IPs are fake status fields that nothing connects to.
# A pod may ask to become Ready later with the annotation pod-ready.stage.kwok.x-k8s.io/delay
# (a Go duration, e.g. "1s"), as a real container takes time to start, and to take a while to
# terminate once deleted with pod-delete.stage.kwok.x-k8s.io/delay, as a kubelet stops its
# containers within the grace period (kwok's "general" stages read the same annotation);
# absent, each is at once.
S="$(dirname "$KWOK_BIN")/stage"
for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
  pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml \
  pod/chaos/pod-container-running-failed.yaml node/chaos/node-not-ready.yaml; do
  case "$f" in
    pod/fast/pod-ready.yaml | pod/fast/pod-delete.yaml)
      stage="$(basename "$f" .yaml)"
      grep -q '^  delay:' "$S/$f" && die "$f has a delay of its own: revisit the delay insert"
      awk -v stage="$stage" '/^  next:/ && !done {
        print "  delay:"; print "    durationMilliseconds: 0"; print "    durationFrom:"
        print "      expressionFrom: '"'"'.metadata.annotations[\"" stage ".stage.kwok.x-k8s.io/delay\"]'"'"'"
        done = 1 } { print }' "$S/$f" ;;
    *) cat "$S/$f" ;;
  esac
  echo "---"
done >"$RUN/kwok-stages.yaml"
start kwok "$KWOK_BIN" --kubeconfig="$KC" --config="$RUN/kwok-stages.yaml" \
  --manage-all-nodes=false --manage-nodes-with-label-selector=type=kwok \
  --server-address="127.0.0.1:$KWOK_PORT" \
  --node-ip=127.0.0.1 --cidr=10.244.0.0/16 --node-lease-duration-seconds=40

# --- fake nodes -----------------------------------------------------------------------------------
# Racks are the unit of anti-affinity tests; each rack is also its own GKE node pool (the
# exclusive-topology key of upstream's samples); racks 0-1 are zone-a, 2-3 zone-b. No taint,
# so ordinary pods schedule without a toleration. TPU labels/capacity let TPU samples schedule.
log "creating $((RACKS * NODES_PER_RACK)) fake nodes"
nodes_yaml() {
  local r n name zone zones=(a b c d e f g h)
  for ((r = 0; r < RACKS; r++)); do
    zone="zone-${zones[r / 2]}"
    for ((n = 0; n < NODES_PER_RACK; n++)); do
      name="kwok-rack-$r-node-$n"
      cat <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $name
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    type: kwok
    rack: rack-$r
    kubernetes.io/hostname: $name
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    topology.kubernetes.io/region: region-1
    topology.kubernetes.io/zone: $zone
    cloud.google.com/gke-nodepool: pool-$r
    cloud.google.com/gke-tpu-accelerator: tpu-v5-lite-podslice
    cloud.google.com/gke-tpu-topology: 4x4
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110", google.com/tpu: "8"}
  capacity: {cpu: "32", memory: 256Gi, pods: "110", google.com/tpu: "8"}
---
EOF
    done
  done
}
nodes_yaml | kc apply -f - >/dev/null

log "waiting for nodes to be Ready and untainted"
nodes_ready() {
  local out
  out="$(kc get nodes -l type=kwok -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{" "}{.spec.taints}{"\n"}{end}')"
  [ "$(grep -c '^True $' <<<"$out")" -eq $((RACKS * NODES_PER_RACK)) ]
}
wait_for 120 nodes_ready || die "nodes did not become Ready (see $RUN/logs/kwok.log)"
# Pods need the default ServiceAccount, made by KCM's serviceaccount controller.
wait_for 60 kc get serviceaccount default -n default || die "no default ServiceAccount (see $RUN/logs/kube-controller-manager.log)"

# --- real nodes (REAL_NODE=1) --------------------------------------------------------------------
REAL_NODES=""
if [ "$REAL_NODE" = 1 ]; then
  for ((i = 0; i < REAL_NODE_COUNT; i++)); do
    APISERVER_PORT="$APISERVER_PORT" "$CLUSTER_DIR/node-up.sh" "$i"
    REAL_NODES+="${REAL_NODES:+,}$(real_node_name "$i")"
  done
  # shellcheck disable=SC2086  # one node per word
  "$CLUSTER_DIR/node-wait.sh" ${REAL_NODES//,/ }
fi

cat >"$RUN/env" <<EOF
KUBECONFIG=$RUN/kubeconfig
LWS_APISERVER_URL=https://127.0.0.1:$APISERVER_PORT
LWS_APISERVER_HOST=127.0.0.1
LWS_APISERVER_PORT=$APISERVER_PORT
LWS_REAL_NODES=$REAL_NODES
LWS_REAL_NODE_LABEL=$REAL_NODE_LABEL
LWS_PAUSE_IMAGE=$PAUSE_IMAGE
LWS_ETCD_PORT=$ETCD_PORT
LWS_CLUSTER_CA=$P/ca.crt
LWS_CLUSTER_CA_KEY=$P/ca.key
KUBECTL=$KUBECTL_BIN
K8S_VERSION=$K8S_VERSION
CLUSTER_FEATURE_GATES=$FEATURE_GATES
EOF
trap - EXIT
log "cluster up: $(kc version -o json | jq -r .serverVersion.gitVersion), $((RACKS * NODES_PER_RACK)) nodes${REAL_NODES:+ + real nodes $REAL_NODES}, apiserver https://127.0.0.1:$APISERVER_PORT"
log "use: export KUBECONFIG=$RUN/kubeconfig   (or: set -a; . $RUN/env; set +a)"
