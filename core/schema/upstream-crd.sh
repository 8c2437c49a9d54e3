#!/usr/bin/env bash
# Prints the path of upstream's LeaderWorkerSet CRD file, config/crd/bases/ in the
# sigs.k8s.io/lws Go module (downloaded through the module proxy into the cluster's module cache
# when it is not there yet). The Makefile's unit target hands it to host/tests/upstream_crd.rs
# as LWS_UPSTREAM_CRD. Usage: core/schema/upstream-crd.sh [<upstream version>]
set -euo pipefail

VERSION="${1:-v0.9.0}"  # the newest sigs.k8s.io/lws the proxy serves here (tests/cluster/lib.sh)
FILE=config/crd/bases/leaderworkerset.x-k8s.io_leaderworkersets.yaml

# shellcheck source=SCRIPTDIR/../../tests/cluster/lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../../tests/cluster/lib.sh"

# `go mod download` needs no module of its own; run it where no go.mod is found.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
dir="$(cd "$scratch" && go mod download -json "sigs.k8s.io/lws@$VERSION" | jq -er .Dir)"
[ -f "$dir/$FILE" ] || { echo "upstream-crd.sh: no $FILE in sigs.k8s.io/lws@$VERSION" >&2; exit 1; }
echo "$dir/$FILE"
