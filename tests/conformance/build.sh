#!/usr/bin/env bash
# Build upstream LWS's e2e suite (package sigs.k8s.io/lws/test/e2e, Ginkgo) as a test binary,
# once per version, into $LWS_CACHE/bin/lws-e2e-<version>/e2e.test, and print its path.
# Like the peer (tests/cluster/build.sh build_peer): a wrapper module requires the published
# module, so its build list stays apart from ours; `go test -c` builds a dependency's package
# with its test files. The module proxy serves v0.9.0 whole (v0.10+ answers 403, see
# tests/cluster/README.md), so that is the default.
# Env: LWS_CONFORMANCE_VERSION (default v0.9.0).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../cluster/lib.sh
. "$(dirname "$0")/../cluster/lib.sh"

VERSION="${LWS_CONFORMANCE_VERSION:-v0.9.0}"
DEST="$BIN/lws-e2e-$VERSION"
OUT="$DEST/e2e.test"
if [ -x "$OUT" ]; then
  log "lws e2e suite $VERSION: cached ($OUT)"
  echo "$OUT"
  exit 0
fi
command -v go >/dev/null || die "go is not installed"
W="$LWS_CACHE/src/lws-e2e-$VERSION"
mkdir -p "$W" "$GOMODCACHE" "$GOCACHE"
cat >"$W/go.mod" <<MOD
module example.invalid/lws-test-conformance

go 1.26.0

require sigs.k8s.io/lws $VERSION
MOD
# A package of the main module keeps the requirement through `go mod tidy`.
cat >"$W/tools.go" <<'GO'
//go:build tools

package tools

import _ "sigs.k8s.io/lws/test/testutils"
GO
log "lws e2e suite $VERSION: resolving modules..."
(cd "$W" && nice_go mod tidy)
log "building upstream lws $VERSION e2e suite (go test -c; ~3-6 min cold, less once the peer is built)..."
rm -rf "$DEST.tmp" && mkdir -p "$DEST.tmp"
(cd "$W" && nice_go test -c -trimpath -ldflags "-s -w" -o "$DEST.tmp/e2e.test" sigs.k8s.io/lws/test/e2e)
# The suite's own files (specs, kustomize overlay) next to the binary, for reference.
cp -r "$GOMODCACHE/sigs.k8s.io/lws@$VERSION/test/e2e" "$DEST.tmp/src"
chmod -R u+w "$DEST.tmp/src"
rm -rf "$DEST"
mv "$DEST.tmp" "$DEST"
log "lws e2e suite $VERSION: $OUT"
echo "$OUT"
