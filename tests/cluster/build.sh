#!/usr/bin/env bash
# Build the test cluster's binaries from the Go module proxy, once per version, into
# $LWS_CACHE/bin/<component>-<version>/. A component whose binaries exist is skipped, so a
# second run takes seconds. Usage: build.sh [all|etcd|kubernetes|kwok|peer]...
# (all = etcd kubernetes kwok; the peer is built by peer-up.sh on demand; `peer` prints the
# LWS version it built or found on stdout).
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

build_etcd() {
  local dest="$BIN/etcd-$ETCD_VERSION"
  if [ -x "$dest/etcd" ]; then log "etcd $ETCD_VERSION: cached ($dest)"; return; fi
  # etcd's server module has replace directives, so `go install ...@v` refuses it; a wrapper
  # module ignores them (the tagged require lines already pin matching api/client/raft).
  local w="$SRC/etcd-$ETCD_VERSION"
  mkdir -p "$w"
  cat >"$w/go.mod" <<EOF
module example.invalid/lws-test-etcd

go 1.26.0

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
EOF
  cat >"$w/tools.go" <<'EOF'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
EOF
  log "etcd $ETCD_VERSION: resolving modules..."
  (cd "$w" && nice_go mod tidy)
  log "building etcd $ETCD_VERSION (cold build ~3 min)..."
  start_ticker etcd
  rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
  (cd "$w" && nice_go build -trimpath -ldflags "-s -w" -o "$dest.tmp/etcd" go.etcd.io/etcd/server/v3)
  stop_ticker
  install_dir "$dest.tmp" "$dest"
  "$dest/etcd" --version | head -n1 >&2
}

build_kubernetes() {
  local dest="$K8S_BIN_DIR" b ok=1
  for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    [ -x "$dest/$b" ] || ok=0
  done
  if [ "$ok" = 1 ]; then log "kubernetes $K8S_VERSION: cached ($dest)"; return; fi
  # k8s.io/kubernetes requires its staging modules at the fake version v0.0.0 and maps them to
  # ./staging with replace lines that do not apply to a dependency. The wrapper replaces each
  # staging module with its published twin v0.<minor>.<patch>; the list comes from the
  # published go.mod so new staging modules (1.36: cri-streaming, streaming) are not missed.
  local w="$SRC/kubernetes-$K8S_VERSION" gomod mods m staging godebug
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
    echo "module example.invalid/lws-test-kubernetes"
    echo
    echo "go 1.26.0"
    [ -z "$godebug" ] || printf '\ngodebug default=%s\n' "$godebug"
    printf '\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$K8S_VERSION"
    for m in $mods; do printf '\t%s => %s %s\n' "$m" "$m" "$staging"; done
    echo ")"
  } >"$w/go.mod"
  cat >"$w/tools.go" <<'EOF'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
EOF
  log "kubernetes $K8S_VERSION: resolving modules (downloads a few hundred MB once)..."
  (cd "$w" && nice_go mod tidy)
  # Stamp the version like upstream's hack/lib/version.sh so /version and kubectl report it.
  local minor ldflags p now
  minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  ldflags="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X '$p.gitVersion=$K8S_VERSION' -X '$p.gitMajor=1' -X '$p.gitMinor=$minor'"
    ldflags+=" -X '$p.gitTreeState=clean' -X '$p.buildDate=$now'"
  done
  log "building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl $K8S_VERSION (cold build ~15-30 min on 2 cores)..."
  start_ticker kubernetes
  rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
  (cd "$w" && nice_go build -trimpath -tags selinux,notest,grpcnotrace -ldflags "$ldflags" -o "$dest.tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubectl)
  stop_ticker
  install_dir "$dest.tmp" "$dest"
  "$dest/kube-apiserver" --version >&2
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
  mkdir -p "$w"
  cat >"$w/go.mod" <<EOF
module example.invalid/lws-test-peer

go 1.26.0

require sigs.k8s.io/lws $v
EOF
  cat >"$w/tools.go" <<'EOF'
//go:build tools

package tools

import _ "sigs.k8s.io/lws/cmd"
EOF
  log "lws $v: resolving modules..."
  (cd "$w" && nice_go mod tidy)
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

[ "$#" -gt 0 ] || set -- all
for what in "$@"; do
  case "$what" in
    all) build_etcd; build_kwok; build_kubernetes ;;
    etcd) build_etcd ;;
    kubernetes | k8s) build_kubernetes ;;
    kwok) build_kwok ;;
    peer | lws) build_peer ;; # prints the version it built or found
    *) die "unknown component: $what (all|etcd|kubernetes|kwok|peer)" ;;
  esac
done
