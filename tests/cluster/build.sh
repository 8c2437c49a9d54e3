#!/usr/bin/env bash
# Build the test cluster's binaries from the Go module proxy, once per version, into
# $LWS_CACHE/bin/<component>-<version>/. A component whose binaries exist is skipped, so a
# second run takes seconds. Usage: build.sh [all|etcd|kubernetes|kwok|real-node|kubelet|
# kube-apiserver-loopback|pause|helm|peer|e2e-suite|volcano-crd]... (all = etcd kubernetes kwok; real-node =
# kubelet kube-apiserver-loopback pause, what REAL_NODE=1 cluster-up needs; the peer is built by
# peer-up.sh on demand; `peer` prints the LWS version it built or found on stdout, `e2e-suite`
# the path of upstream's e2e test binary, LWS_CONFORMANCE_VERSION, for make conformance;
# `volcano-crd` the path of upstream's test copy of Volcano's PodGroup CRD).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

SRC="$LWS_CACHE/src"
mkdir -p "$BIN" "$SRC" "$GOMODCACHE" "$GOCACHE"
command -v go >/dev/null || die "go is not installed"

# Print a heartbeat while a long build runs, so logs show it is alive.
TICKER=""
start_ticker() {
  local what="$1" t0=$SECONDS
  ( while sleep 60; do log "... still building $what ($(((SECONDS - t0) / 60)) min)"; done ) &
  TICKER=$!
}
stop_ticker() { [ -z "$TICKER" ] || { kill "$TICKER" 2>/dev/null || true; wait "$TICKER" 2>/dev/null || true; TICKER=""; }; }
trap stop_ticker EXIT

# Move a finished build into place in one step, so a killed build never looks complete.
install_dir() {
  local tmp="$1" dest="$2"
  rm -rf "$dest"
  mv "$tmp" "$dest"
}

# A wrapper module in $1 (module example.invalid/$2) that requires module $3 at version $4 and
# imports its package $5 from a build-tagged file, so `go mod tidy` keeps the requirement: its
# build list stays apart from the rest of the cache, and the required module's replace lines do
# not apply. Resolved here (downloads on first use).
wrapper_module() {
  local w="$1" name="$2" module="$3" version="$4" package="$5"
  mkdir -p "$w"
  printf 'module example.invalid/%s\n\ngo 1.26.0\n\nrequire %s %s\n' "$name" "$module" "$version" >"$w/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$package" >"$w/tools.go"
  log "$module $version: resolving modules..."
  (cd "$w" && nice_go mod tidy)
}

build_etcd() {
  local dest="$BIN/etcd-$ETCD_VERSION"
  if [ -x "$dest/etcd" ]; then log "etcd $ETCD_VERSION: cached ($dest)"; return; fi
  # etcd's server module has replace directives, so `go install ...@v` refuses it; a wrapper
  # module ignores them (the tagged require lines already pin matching api/client/raft).
  local w="$SRC/etcd-$ETCD_VERSION"
  wrapper_module "$w" lws-test-etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION" go.etcd.io/etcd/server/v3
  log "building etcd $ETCD_VERSION (cold build ~3 min)..."
  start_ticker etcd
  rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
  (cd "$w" && nice_go build -trimpath -ldflags "-s -w" -o "$dest.tmp/etcd" go.etcd.io/etcd/server/v3)
  stop_ticker
  install_dir "$dest.tmp" "$dest"
  "$dest/etcd" --version | head -n1 >&2
}

# Write the wrapper module for k8s.io/kubernetes@$K8S_VERSION into dir $1 (module name $2) with
# a tools.go importing the commands $4..., and tidy it. $3, when not empty, is a local copy of
# k8s.io/kubernetes to build from instead of the module cache.
# k8s.io/kubernetes requires its staging modules at the fake version v0.0.0 and maps them to
# ./staging with replace lines that do not apply to a dependency. The wrapper replaces each
# staging module with its published twin v0.<minor>.<patch>; the list comes from the
# published go.mod so new staging modules (1.36: cri-streaming, streaming) are not missed.
kubernetes_wrapper() {
  local w="$1" module="$2" local_copy="$3" gomod mods m staging godebug c
  shift 3
  mkdir -p "$w"
  log "kubernetes $K8S_VERSION: reading the published go.mod..."
  gomod="$(cd "$SRC" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | jq -r .GoMod)"
  [ -f "$gomod" ] || die "could not download k8s.io/kubernetes@$K8S_VERSION"
  mods="$( { go mod edit -json "$gomod" | jq -r '.Replace[]? | select(.New.Path|startswith("./staging/")) | .Old.Path'
             go mod edit -json "$gomod" | jq -r '.Require[]? | select(.Version=="v0.0.0") | .Path'; } | sort -u)"
  staging="v0.${K8S_VERSION#v1.}"
  # Keep upstream's runtime defaults (GODEBUG) rather than our toolchain's.
  godebug="$(sed -n 's/^godebug default=\(.*\)$/\1/p' "$gomod" | head -n1)"
  {
    echo "module $module"
    echo
    echo "go 1.26.0"
    [ -z "$godebug" ] || printf '\ngodebug default=%s\n' "$godebug"
    printf '\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$K8S_VERSION"
    for m in $mods; do printf '\t%s => %s %s\n' "$m" "$m" "$staging"; done
    [ -z "$local_copy" ] || printf '\tk8s.io/kubernetes => %s\n' "$local_copy"
    echo ")"
  } >"$w/go.mod"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for c in "$@"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done
    echo ")"
  } >"$w/tools.go"
  log "kubernetes $K8S_VERSION: resolving modules (downloads a few hundred MB once)..."
  (cd "$w" && nice_go mod tidy)
}

# A writable copy of the k8s.io/kubernetes module, made once: `go build -overlay` may not replace
# files in the module cache, so the patched builds compile this copy (patched by overlays).
kubernetes_copy() {
  local dest="$SRC/kubernetes-src-$K8S_VERSION" moddir
  if [ ! -f "$dest/go.mod" ]; then
    moddir="$(cd "$SRC" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | jq -r .Dir)"
    [ -d "$moddir" ] || die "could not download k8s.io/kubernetes@$K8S_VERSION"
    log "kubernetes $K8S_VERSION: copying the module source to $dest"
    rm -rf "$dest.tmp" "$dest"
    cp -r "$moddir" "$dest.tmp" && chmod -R u+w "$dest.tmp"
    mv "$dest.tmp" "$dest"
  fi
  echo "$dest"
}

# Stamp the version like upstream's hack/lib/version.sh so /version and kubectl report it.
kubernetes_ldflags() {
  local minor ldflags p now
  minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  ldflags="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X '$p.gitVersion=$K8S_VERSION' -X '$p.gitMajor=1' -X '$p.gitMinor=$minor'"
    ldflags+=" -X '$p.gitTreeState=clean' -X '$p.buildDate=$now'"
  done
  echo "$ldflags"
}

build_kubernetes() {
  local dest="$K8S_BIN_DIR" b ok=1
  for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    [ -x "$dest/$b" ] || ok=0
  done
  if [ "$ok" = 1 ]; then log "kubernetes $K8S_VERSION: cached ($dest)"; return; fi
  local w="$SRC/kubernetes-$K8S_VERSION"
  kubernetes_wrapper "$w" example.invalid/lws-test-kubernetes "" \
    kube-apiserver kube-controller-manager kube-scheduler kubectl
  log "building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl $K8S_VERSION (cold build ~15-30 min on 2 cores)..."
  start_ticker kubernetes
  rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
  (cd "$w" && nice_go build -trimpath -tags selinux,notest,grpcnotrace -ldflags "$(kubernetes_ldflags)" -o "$dest.tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubectl)
  stop_ticker
  install_dir "$dest.tmp" "$dest"
  "$dest/kube-apiserver" --version >&2
}

# Patch the source without touching it: the files patch $1 touches are copied from source dir
# $2 into dir $3 and patched there, and $3/overlay.json (for `go build -overlay`) maps the
# originals to them. The patch is a unified diff against the module root. One source copy then
# serves several builds, each with its own patch.
write_overlay() {
  local patch="$1" moddir="$2" out="$3" files f sep=""
  files="$(sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' "$patch")"
  rm -rf "$out" && mkdir -p "$out"
  for f in $files; do
    mkdir -p "$out/$(dirname "$f")"
    cp "$moddir/$f" "$out/$f" && chmod u+w "$out/$f"
  done
  patch -s -d "$out" -p1 <"$patch"
  {
    printf '{"Replace": {'
    for f in $files; do printf '%s\n  "%s": "%s"' "$sep" "$moddir/$f" "$out/$f"; sep=","; done
    printf '\n}}\n'
  } >"$out/overlay.json"
}

# Build k8s.io/kubernetes/cmd/$1 with patch $3 as build $2 (cache key) into directory $4:
# the real nodes' binaries.
build_patched_kubernetes_cmd() {
  local cmd="$1" build="$2" patch="$3" dest="$4" w moddir
  if [ -x "$dest/$cmd" ]; then log "$cmd $build: cached ($dest)"; return; fi
  # Its own wrapper (the kubelet needs modules the control plane does not); every version still
  # comes from k8s.io/kubernetes' go.mod, so GOCACHE entries are shared with the other build.
  w="$SRC/$cmd-$build"
  moddir="$(kubernetes_copy)"
  kubernetes_wrapper "$w" "example.invalid/lws-test-$cmd" "$moddir" "$cmd"
  write_overlay "$patch" "$moddir" "$w/overlay"
  log "building $cmd $build (cold build ~5-10 min once kubernetes is built)..."
  start_ticker "$cmd"
  rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
  (cd "$w" && nice_go build -trimpath -tags selinux,notest,grpcnotrace -overlay "$w/overlay/overlay.json" \
    -ldflags "$(kubernetes_ldflags)" -o "$dest.tmp/$cmd" "k8s.io/kubernetes/cmd/$cmd")
  stop_ticker
  install_dir "$dest.tmp" "$dest"
  "$dest/$cmd" --version >&2
}

build_kubelet() {
  build_patched_kubernetes_cmd kubelet "$KUBELET_BUILD" "$CLUSTER_DIR/kubelet-local-node.patch" \
    "$(dirname "$KUBELET_BIN")"
}

build_apiserver_loopback() {
  build_patched_kubernetes_cmd kube-apiserver "$APISERVER_LOOPBACK_BUILD" \
    "$CLUSTER_DIR/apiserver-loopback-endpoints.patch" "$(dirname "$KUBE_APISERVER_LOOPBACK")"
}

# The sandbox ("pause") image: a static binary that sleeps in pause(), exits on TERM/INT and
# reaps children (PID 1's duties), packaged with umoci as an OCI archive named $PAUSE_IMAGE.
build_pause() {
  local dest w
  dest="$(dirname "$PAUSE_ARCHIVE")"
  if [ -s "$PAUSE_ARCHIVE" ]; then log "pause $PAUSE_BUILD: cached ($PAUSE_ARCHIVE)"; return; fi
  bash "$REPO/tests/support/need-debs.sh" musl-tools umoci
  w="$SRC/pause-$PAUSE_BUILD"
  rm -rf "$w" "$dest.tmp" && mkdir -p "$w" "$dest.tmp"
  cat >"$w/pause.c" <<'EOF'
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
/* PID 1 gets no default signal actions: TERM and INT need handlers to stop it. */
static void stop(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, 0, WNOHANG) > 0) {} }
int main(void) {
  signal(SIGINT, stop);
  signal(SIGTERM, stop);
  signal(SIGCHLD, reap);
  for (;;) pause();
}
EOF
  musl-gcc -static -Os -s -o "$w/pause" "$w/pause.c"
  (
    cd "$w"
    umoci init --layout layout
    umoci new --image layout:build
    umoci unpack --image layout:build bundle >/dev/null
    install -m 0755 pause bundle/rootfs/pause
    umoci repack --image layout:build bundle
    umoci config --image layout:build --config.entrypoint /pause --config.user 65535:65535 \
      --os linux --architecture amd64
    # The full name as the ref, so `ctr images import` keeps it (a bare tag gets a date prefix).
    umoci tag --image layout:build "$PAUSE_IMAGE"
    umoci rm --image layout:build
    umoci gc --layout layout
    tar -C layout -cf "$dest.tmp/pause.oci.tar" oci-layout index.json blobs
  )
  install_dir "$dest.tmp" "$dest"
  log "pause $PAUSE_BUILD: $PAUSE_IMAGE, $PAUSE_ARCHIVE ($(stat -c %s "$PAUSE_ARCHIVE") bytes)"
}

build_kwok() {
  local dest="$BIN/kwok-$KWOK_BUILD"
  if [ -x "$dest/kwok" ] && [ -d "$dest/stage" ]; then log "kwok $KWOK_BUILD: cached ($dest)"; return; fi
  # kwok's go.mod has no replace lines, so its own module builds as is; it must stay out of the
  # kubernetes wrapper, which would pin it to other k8s.io/* versions. One patch: its pod-delete
  # stage deletes by name, and when a stage is played twice the second delete kills the pod a
  # StatefulSet has just recreated; the patch adds a UID precondition, as the kubelet uses.
  log "building kwok $KWOK_BUILD (cold build ~5 min)..."
  start_ticker kwok
  (cd "$SRC" && nice_go mod download "sigs.k8s.io/kwok@$KWOK_VERSION")
  local w="$SRC/kwok-$KWOK_BUILD"
  rm -rf "$w" "$dest.tmp" && mkdir -p "$dest.tmp"
  cp -r "$GOMODCACHE/sigs.k8s.io/kwok@$KWOK_VERSION" "$w"
  chmod -R u+w "$w"
  patch -s -d "$w" -p1 <"$CLUSTER_DIR/kwok-pod-delete-uid.patch"
  (cd "$w" && nice_go build -trimpath -o "$dest.tmp/kwok" \
    -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" ./cmd/kwok)
  stop_ticker
  # v0.8 has no built-in stages: keep the shipped stage YAMLs next to the binary.
  cp -r "$w/kustomize/stage" "$dest.tmp/stage"
  install_dir "$dest.tmp" "$dest"
  "$dest/kwok" --version >&2 || true
}

# Upstream LWS (the peer). Its own go.mod has no replace lines; a wrapper module keeps its build
# list separate from ours. Resolves LWS_PEER_VERSION, or LWS_PEER_FALLBACK when the proxy does not
# serve the first one; prints the version it built on stdout.
build_peer() {
  local v
  for v in "$LWS_PEER_VERSION" "$LWS_PEER_FALLBACK"; do
    [ -n "$v" ] || continue
    if [ -x "$BIN/lws-$v/manager" ] && [ -d "$BIN/lws-$v/config" ]; then
      log "lws $v: cached ($BIN/lws-$v)"; echo "$v"; return
    fi
    if (cd "$SRC" && go mod download "sigs.k8s.io/lws@$v") >/dev/null 2>&1; then
      build_peer_version "$v"; echo "$v"; return
    fi
    log "WARNING: the Go module proxy does not serve sigs.k8s.io/lws@$v"
  done
  die "no buildable sigs.k8s.io/lws version (tried $LWS_PEER_VERSION ${LWS_PEER_FALLBACK:-})"
}

build_peer_version() {
  local v="$1" dest="$BIN/lws-$1" w="$SRC/lws-$1"
  wrapper_module "$w" lws-test-peer sigs.k8s.io/lws "$v" sigs.k8s.io/lws/cmd
  log "building upstream lws $v manager (cold build ~5-10 min)..."
  start_ticker "lws $v"
  rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
  (cd "$w" && nice_go build -trimpath -ldflags "-s -w -X sigs.k8s.io/lws/pkg/version.GitVersion=$v" \
    -o "$dest.tmp/manager" sigs.k8s.io/lws/cmd)
  stop_ticker
  # CRDs and webhook manifests ship in the module zip; keep a copy with the binary.
  cp -r "$GOMODCACHE/sigs.k8s.io/lws@$v/config" "$dest.tmp/config"
  chmod -R u+w "$dest.tmp/config"
  install_dir "$dest.tmp" "$dest"
}

# Upstream LWS's own e2e suite (package sigs.k8s.io/lws/test/e2e, Ginkgo) as a test binary, for
# tests/conformance/run.sh: `go test -c` builds a dependency's package with its test files. The
# version is the peer's fallback, the newest the proxy serves whole. Prints the binary's path.
build_e2e_suite() {
  local v="${LWS_CONFORMANCE_VERSION:-v0.9.0}"
  local dest="$BIN/lws-e2e-$v"
  if [ -x "$dest/e2e.test" ]; then
    log "lws e2e suite $v: cached ($dest/e2e.test)"
  else
    wrapper_module "$SRC/lws-e2e-$v" lws-test-conformance sigs.k8s.io/lws "$v" sigs.k8s.io/lws/test/testutils
    log "building upstream lws $v e2e suite (go test -c; ~3-6 min cold, less once the peer is built)..."
    start_ticker "lws e2e suite $v"
    rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
    (cd "$SRC/lws-e2e-$v" && nice_go test -c -trimpath -ldflags "-s -w" -o "$dest.tmp/e2e.test" sigs.k8s.io/lws/test/e2e)
    stop_ticker
    # The suite's own files (specs, kustomize overlay) next to the binary, for reference.
    cp -r "$GOMODCACHE/sigs.k8s.io/lws@$v/test/e2e" "$dest.tmp/src"
    chmod -R u+w "$dest.tmp/src"
    install_dir "$dest.tmp" "$dest"
  fi
  echo "$dest/e2e.test"
}

# Volcano's PodGroup CRD as upstream's integration tests install it (test/integration/crd in the
# sigs.k8s.io/lws module, the peer's version or its fallback): downloaded, nothing built. Prints
# the file's path, for tests/e2e/controller.sh (LWS_SCHEDULER_PROVIDER=volcano).
volcano_crd() {
  local v file
  for v in "$LWS_PEER_VERSION" "$LWS_PEER_FALLBACK"; do
    [ -n "$v" ] || continue
    file="$GOMODCACHE/sigs.k8s.io/lws@$v/test/integration/crd/volcano-podgroup.yaml"
    [ -f "$file" ] || (cd "$SRC" && go mod download "sigs.k8s.io/lws@$v") >/dev/null 2>&1 || continue
    if [ -f "$file" ]; then log "Volcano PodGroup CRD of lws $v"; echo "$file"; return; fi
  done
  die "no sigs.k8s.io/lws module with test/integration/crd/volcano-podgroup.yaml (tried $LWS_PEER_VERSION ${LWS_PEER_FALLBACK:-})"
}

# helm, for the chart (charts/lws; charts/helm.sh prints its path). Its go.mod has no replace
# lines today, but a wrapper module keeps its build list apart from the rest of the cache.
build_helm() {
  local dest="$BIN/helm-$HELM_VERSION" w="$SRC/helm-$HELM_VERSION"
  if [ -x "$dest/helm" ]; then log "helm $HELM_VERSION: cached ($dest)"; return; fi
  log "helm $HELM_VERSION: downloads ~150 MB once"
  wrapper_module "$w" lws-helm helm.sh/helm/v3 "$HELM_VERSION" helm.sh/helm/v3/cmd/helm
  # Stamp what helm's Makefile stamps: its version, and the Kubernetes version `helm template`
  # and `helm lint` assume without a cluster (its client-go's; unstamped it would be v1.20).
  local k8s k8s_minor ldflags p
  k8s="$(cd "$w" && go list -m -f '{{.Version}}' k8s.io/client-go)"  # v0.<minor>.<patch>
  k8s_minor="${k8s#v0.}"; k8s_minor="${k8s_minor%%.*}"
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ldflags+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$k8s_minor"
  done
  log "building helm $HELM_VERSION (cold build ~4 min on 2 cores)..."
  start_ticker helm
  rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
  (cd "$w" && nice_go build -trimpath -ldflags "$ldflags" -o "$dest.tmp/helm" helm.sh/helm/v3/cmd/helm)
  stop_ticker
  install_dir "$dest.tmp" "$dest"
  "$dest/helm" version --short >&2
}

[ "$#" -gt 0 ] || set -- all
for what in "$@"; do
  case "$what" in
    all) build_etcd; build_kwok; build_kubernetes ;;
    etcd) build_etcd ;;
    kubernetes | k8s) build_kubernetes ;;
    kwok) build_kwok ;;
    real-node) build_kubelet; build_apiserver_loopback; build_pause ;;
    kubelet) build_kubelet ;;
    kube-apiserver-loopback) build_apiserver_loopback ;;
    pause) build_pause ;;
    helm) build_helm ;;
    peer | lws) build_peer ;; # prints the version it built or found
    e2e-suite) build_e2e_suite ;; # prints the test binary's path
    volcano-crd) volcano_crd ;; # prints the CRD file's path
    *) die "unknown component: $what (all|etcd|kubernetes|kwok|real-node|kubelet|kube-apiserver-loopback|pause|helm|peer|e2e-suite|volcano-crd)" ;;
  esac
done
