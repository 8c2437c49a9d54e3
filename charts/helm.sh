#!/usr/bin/env bash
# Build helm from its Go module, once per version, into $LWS_CACHE/bin/helm-<version>/helm, the
# way tests/cluster/build.sh builds the cluster's binaries (no release download: only the Go
# module proxy is reachable). A helm that exists is reused, so a second run takes a moment.
# Prints the binary's path on stdout; progress goes to stderr. Usage: charts/helm.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../tests/cluster/lib.sh
. "$(dirname "$0")/../tests/cluster/lib.sh"

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
dest="$BIN/helm-$HELM_VERSION"
log() { printf '[helm] %s\n' "$*" >&2; }

if [ -x "$dest/helm" ]; then
  log "helm $HELM_VERSION: cached ($dest)"
  echo "$dest/helm"
  exit 0
fi
command -v go >/dev/null || die "go is not installed"
SRC="$LWS_CACHE/src"
mkdir -p "$BIN" "$SRC" "$GOMODCACHE" "$GOCACHE"

# helm's go.mod has no replace lines today, but a wrapper module keeps its build list apart from
# anything else in the cache and builds with `go build -o`, so the install below stays atomic.
w="$SRC/helm-$HELM_VERSION"
mkdir -p "$w"
cat >"$w/go.mod" <<EOF
module example.invalid/lws-helm

go 1.26.0

require helm.sh/helm/v3 $HELM_VERSION
EOF
cat >"$w/tools.go" <<'EOF'
//go:build tools

package tools

import _ "helm.sh/helm/v3/cmd/helm"
EOF
log "helm $HELM_VERSION: resolving modules (downloads ~150 MB once)..."
(cd "$w" && nice_go mod tidy)

t0=$SECONDS
( while sleep 60; do log "... still building helm ($(((SECONDS - t0) / 60)) min)"; done ) &
ticker=$!
trap 'kill "$ticker" 2>/dev/null || true' EXIT
log "building helm $HELM_VERSION (cold build ~5-10 min on 2 cores)..."
rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
# Stamp what helm's Makefile stamps: its version, and the Kubernetes version `helm template` and
# `helm lint` assume without a cluster (from the client-go it is built with; unstamped it would
# be v1.20).
k8s="$(cd "$w" && go list -m -f '{{.Version}}' k8s.io/client-go)"  # v0.<minor>.<patch>
k8s_minor="${k8s#v0.}"; k8s_minor="${k8s_minor%%.*}"
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  ldflags+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$k8s_minor"
done
(cd "$w" && nice_go build -trimpath -ldflags "$ldflags" -o "$dest.tmp/helm" helm.sh/helm/v3/cmd/helm)
kill "$ticker" 2>/dev/null || true
# Move the finished build into place in one step, so a killed build never looks complete.
rm -rf "$dest"
mv "$dest.tmp" "$dest"
log "helm $HELM_VERSION built in $((SECONDS - t0)) s: $("$dest/helm" version --short)"
echo "$dest/helm"
