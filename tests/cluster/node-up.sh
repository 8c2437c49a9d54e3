#!/usr/bin/env bash
# Start real node I (0-based) of the running cluster: its own containerd (Debian's, own config,
# root, state and socket under .cluster/nodes/I) with the local pause image imported, and a
# kubelet registering as real-node-I on 127.0.0.(I+1), labelled and tainted
# lws.x-k8s.io/real-node=true. Records both pids in .cluster/pids (down.sh stops them).
# Called by up.sh with APISERVER_PORT set; does not wait for the node to be Ready.
# Why loopback only and these settings: docs/local-cluster-network.md.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

I="${1:?usage: node-up.sh INDEX}"
: "${APISERVER_PORT:?APISERVER_PORT is not set}"
NAME="$(real_node_name "$I")"
IP="$(real_node_ip "$I")"
D="$NODES_RUN/$I"
CGROUP="$(real_node_cgroup "$I")"
P="$RUN/pki"
mkdir -p "$D"/{containerd,cni,kubelet,pod-logs,volume-plugins,pki}

# --- containerd ----------------------------------------------------------------------------------
# Every path under $D so two nodes (and a host containerd, if any) never share state. runc's
# state root too: down.sh lists what is left there. The CRI settings are the fixes of
# ../shared/spec/real-node.md: no negative oom_score_adj without CAP_SYS_RESOURCE, cgroupfs.
cat >"$D/containerd/config.toml" <<EOF
version = 2
root = "$D/containerd/root"
state = "$D/containerd/state"
# "opt" would install into /opt/containerd; the other snapshotters are not used.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = "$D/containerd.sock"
[ttrpc]
  address = "$D/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "$D/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$D/cni"
    max_conf_num = 1
EOF
# Loopback only: the CRI reports NetworkReady once a network config loads, and with no bridge
# there is no address off 127.0.0.0/8 at all. A pod without hostNetwork gets no IP here and
# fails to start, which is what the taint is for.
cat >"$D/cni/10-lws-loopback.conflist" <<'EOF'
{"cniVersion": "1.0.0", "name": "lws-loopback", "plugins": [{"type": "loopback"}]}
EOF

# Images are imported, never pulled: a pull (an image nobody imported) goes to a proxy on
# 127.0.0.1:9 where nothing listens, so it fails at once instead of leaving the machine.
HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY='' \
  start "containerd-$NAME" /usr/bin/containerd --config "$D/containerd/config.toml"
ctr_node() { ctr --address "$D/containerd.sock" --namespace k8s.io "$@"; }
wait_for 30 ctr_node version || die "containerd of $NAME did not start (see $RUN/logs/containerd-$NAME.log)"
ctr_node images import "$PAUSE_ARCHIVE" >/dev/null
images="$(ctr_node images ls -q)"  # not piped into grep -q: an early exit would SIGPIPE ctr
grep -qx "$PAUSE_IMAGE" <<<"$images" || die "$PAUSE_IMAGE missing after import on $NAME"

# --- the node's pod cgroup ---------------------------------------------------------------------
# The kubelet wants its cgroupRoot to exist in every hierarchy; a new cpuset cgroup starts with
# no CPUs or memory nodes, so copy the parent's.
for h in /sys/fs/cgroup/*/; do
  [ -f "$h/cgroup.procs" ] || continue
  mkdir -p "$h$CGROUP"
  if [ -f "$h/cpuset.cpus" ]; then
    cat "$h/cpuset.cpus" >"$h$CGROUP/cpuset.cpus"
    cat "$h/cpuset.mems" >"$h$CGROUP/cpuset.mems"
  fi
done

# --- kubelet identity: a client certificate the Node authorizer knows ---------------------------
openssl req -newkey rsa:2048 -nodes -keyout "$D/pki/kubelet.key" -out "$D/pki/kubelet.csr" \
  -subj "/CN=system:node:$NAME/O=system:nodes" 2>/dev/null
openssl x509 -req -in "$D/pki/kubelet.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial \
  -days 3650 -out "$D/pki/kubelet.crt" -extfile "$P/client.ext" 2>/dev/null
write_kubeconfig "$D/kubelet.kubeconfig" "$NAME" "$NAME" "$D/pki/kubelet.crt" "$D/pki/kubelet.key"

# Pods get a resolver on loopback where nothing answers: a name lookup in a pod fails instead
# of reaching the host's nameserver (pods talk to the API server by IP, see the docs).
echo "nameserver 127.0.0.1" >"$D/resolv.conf"

# --- kubelet -------------------------------------------------------------------------------------
KUBELET_PORT="$(free_port)"
HEALTHZ_PORT="$(free_port)"
cat >"$D/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 hybrid host: allowed only when asked; containerd 1.6 cannot report its driver.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP
containerRuntimeEndpoint: unix://$D/containerd.sock
address: $IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: $IP
healthzPort: $HEALTHZ_PORT
podLogsDir: $D/pod-logs
volumePluginDir: $D/volume-plugins
resolvConf: $D/resolv.conf
# The API server's client certificate (system:masters) for logs/exec; anonymous requests refused.
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $P/ca.crt}
authorization:
  mode: Webhook
registerWithTaints:
- {key: $REAL_NODE_LABEL, value: "true", effect: NoSchedule}
# Host limits: nofile is capped at 20000 and oom_score_adj cannot go negative (no
# CAP_SYS_RESOURCE); no iptables chains on the host; no swap accounting.
maxOpenFiles: 20000
oomScoreAdj: 0
makeIPTablesUtilChains: false
failSwapOn: false
# No registry to pull from again: never garbage-collect imported images. Evict only when the
# machine is really short, not because other work on it uses memory or disk.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
maxPods: 16
rotateCertificates: false
serverTLSBootstrap: false
EOF
# The same dead proxy: Go never proxies loopback (the API server), anything else fails here.
HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY='' \
  start "kubelet-$NAME" "$KUBELET_BIN" --config="$D/kubelet-config.yaml" --kubeconfig="$D/kubelet.kubeconfig" \
  --root-dir="$D/kubelet" --hostname-override="$NAME" --node-ip="$IP" \
  --node-labels="$REAL_NODE_LABEL=true" --v=1
echo "$NAME $IP $KUBELET_PORT $HEALTHZ_PORT" >>"$NODES_RUN/nodes"
