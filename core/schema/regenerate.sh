#!/usr/bin/env bash
# Regenerates core/schema/kubernetes-<version>.json: the Kubernetes types the LeaderWorkerSet CRD
# embeds, as the API server of that version publishes them, for core/src/crd/kubernetes.rs.
#
# Sources, all from the Go module proxy into $GOMODCACHE (default ~/.cache/lws/go/mod):
#   - k8s.io/kubernetes@<version>: api/openapi-spec/v3/{api__v1,apis__apps__v1}_openapi.json, the
#     OpenAPI v3 documents the API server serves at /openapi/v3 (their components.schemas, pruned
#     to what the roots below reach);
#   - k8s.io/api and k8s.io/apimachinery @v0.<minor>.<patch> (the same release): the Go source,
#     read by core/schema/gomarkers for the few facts controller-gen takes from it that the
#     OpenAPI documents lack (explicit defaults, kubebuilder validations, inline embedding).
#
# Usage: core/schema/regenerate.sh [<kubernetes version>]. The version is pinned to the one of
# the k8s-openapi feature (v1_36) and of tests/cluster/lib.sh's K8S_VERSION; a test holds the three
# equal (core/src/crd/kubernetes.rs). After a change, run the CRD tests and regenerate the chart's
# copy (make chart-crd).
set -euo pipefail

VERSION="${1:-v1.36.3}"
ROOTS=(
  io.k8s.api.core.v1.PodTemplateSpec
  io.k8s.api.core.v1.PersistentVolumeClaim
  io.k8s.api.apps.v1.StatefulSetPersistentVolumeClaimRetentionPolicy
  io.k8s.apimachinery.pkg.apis.meta.v1.Condition
  io.k8s.apimachinery.pkg.util.intstr.IntOrString
)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/kubernetes-$VERSION.json"
export GOMODCACHE="${GOMODCACHE:-$HOME/.cache/lws/go/mod}"
export GOFLAGS=-mod=mod

[[ "$VERSION" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || { echo "regenerate.sh: $VERSION is not v1.<minor>.<patch>" >&2; exit 2; }
staging="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"

# `go mod download` needs no module of its own; run it where no go.mod is found.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
module_dir() { (cd "$scratch" && go mod download -json "$1" | jq -er .Dir); }
kubernetes="$(module_dir "k8s.io/kubernetes@$VERSION")"
api="$(module_dir "k8s.io/api@$staging")"
apimachinery="$(module_dir "k8s.io/apimachinery@$staging")"

roots_json="$(printf '%s\n' "${ROOTS[@]}" | jq -R . | jq -s .)"
docs=("$kubernetes/api/openapi-spec/v3/api__v1_openapi.json" "$kubernetes/api/openapi-spec/v3/apis__apps__v1_openapi.json")

# Every definition the roots reach; a name two documents define differently is an error.
jq -n --argjson roots "$roots_json" '
  [inputs.components.schemas] as $docs
  | (reduce ($docs[] | to_entries[]) as $e ({}; .[$e.key] += [$e.value])) as $all
  | def refs: [.. | objects | select(has("$ref")) | .["$ref"] | ltrimstr("#/components/schemas/")];
    {seen: [], todo: $roots}
  | until(.todo == []; .todo[0] as $name | .todo |= .[1:]
      | if any(.seen[]; . == $name) then .
        elif $all[$name] == null then error("no definition \($name)")
        elif ($all[$name] | unique | length) != 1 then error("documents disagree on \($name)")
        else .seen += [$name] | .todo += ($all[$name][0] | refs) end)
  | .seen | map({key: ., value: $all[.][0]}) | from_entries
' "${docs[@]}" > "$scratch/schemas.json"

(cd "$scratch" && go run "$here/gomarkers/main.go" \
  "$api/core/v1=io.k8s.api.core.v1" \
  "$api/apps/v1=io.k8s.api.apps.v1" \
  "$apimachinery/pkg/apis/meta/v1=io.k8s.apimachinery.pkg.apis.meta.v1") > "$scratch/go.json"

jq -S -n \
  --arg version "$VERSION" --arg staging "$staging" --argjson roots "$roots_json" \
  --slurpfile schemas "$scratch/schemas.json" --slurpfile go "$scratch/go.json" '
  {
    kubernetes: $version,
    sources: {
      openapi: "k8s.io/kubernetes@\($version) api/openapi-spec/v3/{api__v1,apis__apps__v1}_openapi.json",
      go: "k8s.io/api@\($staging) {core,apps}/v1, k8s.io/apimachinery@\($staging) pkg/apis/meta/v1"
    },
    regenerate: "core/schema/regenerate.sh \($version)",
    roots: $roots,
    schemas: $schemas[0],
    go: ($go[0] as $all
      # The facts of every definition, and of the structs they embed inline (transitively).
      | {seen: [], todo: ($schemas[0] | keys)}
      | until(.todo == []; .todo[0] as $name | .todo |= .[1:]
          | if any(.seen[]; . == $name) or $all[$name] == null then .
            else .seen += [$name] | .todo += ($all[$name].embeds // []) end)
      | .seen | map({key: ., value: $all[.]}) | from_entries)
  }' > "$out.tmp"
mv "$out.tmp" "$out"
echo "regenerate.sh: $out: $(jq '.schemas | length' "$out") definitions, $(wc -c < "$out") bytes"
