#!/usr/bin/env bash
# Prints the path of helm ($HELM_VERSION, tests/cluster/lib.sh), building it first from its Go
# module when it is not cached (`tests/cluster/build.sh helm`; progress goes to stderr).
# Usage: charts/helm.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../tests/cluster/lib.sh
. "$(dirname "$0")/../tests/cluster/lib.sh"
bash "$CLUSTER_DIR/build.sh" helm >&2
echo "$BIN/helm-$HELM_VERSION/helm"
