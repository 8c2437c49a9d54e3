# shellcheck shell=bash
# shellcheck source-path=SCRIPTDIR disable=SC2034  # variables are used by the scripts that source this
# Shared settings for the tests/cluster scripts. Sourced, never run.
# Versions, cache layout and the run directory live here so every script agrees.

# Versions. Newest patches the Go module proxy served when this was written.
K8S_VERSION="${K8S_VERSION:-v1.36.3}"     # kube-apiserver, -controller-manager, -scheduler, kubectl
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"   # kubeadm's table pairs k8s 1.34-1.36 with etcd 3.6
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"    # built against k8s.io/* v0.36
HELM_VERSION="${HELM_VERSION:-v3.22.0}"   # helm, for the chart (charts/helm.sh)
# kwok is built with tests/cluster/kwok-pod-delete-uid.patch; the suffix keys the cache on it.
KWOK_BUILD="$KWOK_VERSION-uid1"
LWS_PEER_VERSION="${LWS_PEER_VERSION:-v0.10.0}"  # upstream LWS run as the "peer"
# The module proxy here answers 403 for the v0.10.0 zip; the peer falls back to this one
# (set it empty to make a missing LWS_PEER_VERSION fatal instead).
LWS_PEER_FALLBACK="${LWS_PEER_FALLBACK-v0.9.0}"

CLUSTER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="${REPO:-$(cd "$CLUSTER_DIR/../.." && pwd)}"
# Everything a running cluster owns (pki, logs, data, pids); git-ignored.
RUN="${CLUSTER_RUN:-$REPO/.cluster}"

# Built binaries, sources of wrapper modules and Go's caches: outside the repo, shared by runs and CI.
LWS_CACHE="${LWS_CACHE:-$HOME/.cache/lws}"
# Canonical (symlink-free) path: pid checks compare it with /proc/PID/exe.
LWS_CACHE="$(mkdir -p "$LWS_CACHE" && cd "$LWS_CACHE" && pwd -P)"
BIN="$LWS_CACHE/bin"
export GOMODCACHE="${LWS_GOMODCACHE:-$LWS_CACHE/go/mod}"
export GOCACHE="${LWS_GOCACHE:-$LWS_CACHE/go/build}"
# Never let a go.mod line trigger a toolchain download; resolve missing requirements on the fly.
export GOTOOLCHAIN=local GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0

ETCD_BIN="$BIN/etcd-$ETCD_VERSION/etcd"
K8S_BIN_DIR="$BIN/kubernetes-$K8S_VERSION"
KUBE_APISERVER="$K8S_BIN_DIR/kube-apiserver"
KUBE_CONTROLLER_MANAGER="$K8S_BIN_DIR/kube-controller-manager"
KUBE_SCHEDULER="$K8S_BIN_DIR/kube-scheduler"
KUBECTL_BIN="$K8S_BIN_DIR/kubectl"
KWOK_BIN="$BIN/kwok-$KWOK_BUILD/kwok"

# Real nodes (REAL_NODE=1, docs/local-cluster-network.md): a kubelet and a second
# kube-apiserver from the same k8s.io/kubernetes source, each with a patch (the suffix keys the
# cache on it). kubelet-local-node.patch: a loopback --node-ip is accepted, host sysctls are left
# alone. apiserver-loopback-endpoints.patch: Endpoints/EndpointSlices accept loopback addresses,
# so the hostNetwork pods on 127.0.0.x can back a (webhook) Service. The plain cluster keeps the
# stock apiserver.
KUBELET_BUILD="$K8S_VERSION-lws1"
KUBELET_BIN="$BIN/kubelet-$KUBELET_BUILD/kubelet"
APISERVER_LOOPBACK_BUILD="$K8S_VERSION-loopback1"
KUBE_APISERVER_LOOPBACK="$BIN/kube-apiserver-$APISERVER_LOOPBACK_BUILD/kube-apiserver"
# A static pause() binary as an OCI archive: the sandbox image, imported, never pulled.
PAUSE_BUILD=1
PAUSE_IMAGE="localhost/lws-pause:$PAUSE_BUILD"
PAUSE_ARCHIVE="$BIN/pause-$PAUSE_BUILD/pause.oci.tar"
# Node i is real-node-i on 127.0.0.(i+1); state under $RUN/nodes/i.
REAL_NODE_COUNT=2
REAL_NODE_LABEL="lws.x-k8s.io/real-node"  # label and taint key, value "true", effect NoSchedule
NODES_RUN="$RUN/nodes"
real_node_name() { echo "real-node-$1"; }
real_node_ip() { echo "127.0.0.$(($1 + 1))"; }
# The cgroup (under every v1 hierarchy) holding node i's pods; node-down.sh kills what runs
# there and removes it. Keyed on $RUN too, so clusters with other CLUSTER_RUN dirs never share one.
real_node_cgroup() { echo "lws-$(printf '%s' "$RUN" | sha256sum | cut -c1-8)-$(real_node_name "$1")"; }

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] ERROR: %s\n' "$*" >&2; exit 1; }

# Go builds share 2 cores with cargo; stay polite.
nice_go() { nice -n 10 go "$@"; }

# A free TCP port on 127.0.0.1 that is not in $USED_PORTS (ports picked in the same run).
USED_PORTS=""
free_port() {
  local p
  while :; do
    p="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
    case " $USED_PORTS " in *" $p "*) continue ;; esac
    USED_PORTS="$USED_PORTS $p"
    echo "$p"
    return
  done
}

# True when pid $1 is a live process (a zombie does not count).
pid_running() {
  local state
  state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# True when the pid in file $1 (first line) names a live process.
pid_alive() {
  local f="$1" pid
  [ -s "$f" ] || return 1
  pid="$(head -n1 "$f")"
  [ -n "$pid" ] && pid_running "$pid"
}

# True when pid $1 is live and runs the executable $2 (a glob pattern is allowed). Guards
# against a recycled pid (e.g. after a reboot) so we never signal somebody else's process.
runs_exe() {
  local real
  pid_running "$1" || return 1
  real="$(readlink "/proc/$1/exe" 2>/dev/null)" || return 1
  real="${real% (deleted)}"  # the binary was rebuilt while it ran
  # shellcheck disable=SC2053  # $2 is a pattern on purpose
  [[ "$real" == $2 ]]
}

# Stop pid $2 (named $1) if it still runs executable $3: TERM, wait up to 10 s, then KILL.
stop_pid() {
  local name="$1" pid="$2" exe="$3" i
  runs_exe "$pid" "$exe" || return 0
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    pid_running "$pid" || return 0
    sleep 0.1
  done
  log "$name (pid $pid) ignored TERM; killing"
  kill -KILL "$pid" 2>/dev/null || true
}

# Start one component detached from this shell (its own session, so a Ctrl-C on `make` does
# not take it down) and record its pid and executable (down.sh checks both). setsid execs in
# place here, so $! is the component. Environment for it goes before the call: VAR=x start ...
start() {
  local name="$1"; shift
  setsid "$@" >"$RUN/logs/$name.log" 2>&1 </dev/null &
  echo "$name $! $1" >>"$RUN/pids"
  log "started $name (pid $!)"
}

# start, under tests/cluster/supervise.sh: the component is started again whenever it exits, as
# the kubelet does for static pods. The pid recorded is the supervisor's (a bash process).
start_supervised() {
  local name="$1"; shift
  setsid "$CLUSTER_DIR/supervise.sh" "$@" >"$RUN/logs/$name.log" 2>&1 </dev/null &
  echo "$name $! $(readlink -f "$(command -v bash)")" >>"$RUN/pids"
  log "started $name under supervise.sh (pid $!)"
}

# Writes kubeconfig FILE (mode 600) for the local API server on $APISERVER_PORT: context and user
# CONTEXT, client certificate CERT and key KEY, the cluster CA $RUN/pki/ca.crt, all embedded so
# kubectl, kube-rs and the kubelet read it alike; NAMESPACE is the context's default, if given.
# Usage: write_kubeconfig FILE CONTEXT USER CERT KEY [NAMESPACE]
write_kubeconfig() {
  local file="$1" context="$2" user="$3" cert="$4" key="$5" namespace="${6:-}"
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: lws-test
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 <"$RUN/pki/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 <"$cert")
    client-key-data: $(base64 -w0 <"$key")
contexts:
- name: $context
  context: {cluster: lws-test, user: $user${namespace:+, namespace: $namespace}}
current-context: $context
EOF
  chmod 600 "$file"
}

# kubectl against the local cluster.
kc() { "$KUBECTL_BIN" --kubeconfig "$RUN/kubeconfig" "$@"; }

# A server dry run of a LeaderWorkerSet through the LWS webhooks (whichever controller serves
# them): succeeds once the mutating one answered, which the defaulted subdomainPolicy proves.
lws_webhooks_answer() {
  kc create --dry-run=server -o json -f - <<'YAML' | jq -e '.spec.networkConfig.subdomainPolicy == "Shared"'
apiVersion: leaderworkerset.x-k8s.io/v1
kind: LeaderWorkerSet
metadata: {name: webhook-probe, namespace: default}
spec:
  leaderWorkerTemplate:
    size: 1
    workerTemplate:
      spec:
        containers: [{name: c, image: x}]
YAML
}

# Wait up to $1 seconds for command "$@" (after the first arg) to succeed.
wait_for() {
  local secs="$1"; shift
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 1
  done
}

# Polled, not `kubectl wait`: a CRD created a moment ago has `status.conditions: null`, which
# kubectl wait reports as an error instead of waiting.
crd_established() {
  [ "$(kc get crd "$1" -o jsonpath='{.status.conditions[?(@.type=="Established")].status}')" = True ]
}
wait_crds_established() {
  local crd
  for crd in "$@"; do
    wait_for 60 crd_established "$crd" || die "CRD $crd is not Established within 60 s"
  done
}
