#!/usr/bin/env bash
# Put images on the real nodes: there is no registry, so pods on them run only what was imported
# (imagePullPolicy IfNotPresent or Never). Usage:
#   node-image.sh import ARCHIVE [REF...]   OCI archive (podman save --format oci-archive, umoci +
#                                           tar, skopeo) into every real node's containerd
#   node-image.sh list                      the images on each real node
# Each image also gets the name a kubelet asks for: it normalizes a pod's `lws:0.1.0` to
# docker.io/library/lws:0.1.0, while podman names it localhost/lws:0.1.0, so a localhost/ or
# short name is tagged with its docker.io form too. REF names the image explicitly (needed when
# the archive's ref is a bare tag, as umoci writes by default, or a short name). Prints
# "NODE NAME" lines.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

# The reference a kubelet and the CRI use for $1: domain (docker.io unless the first part looks
# like a host), library/ for a docker.io name with one part, :latest when there is no tag.
normalize() {
  local r="$1" first="${1%%/*}"
  if [[ "$r" != */* ]] || [[ "$first" != *.* && "$first" != *:* && "$first" != localhost ]]; then
    r="docker.io/$r"
  fi
  if [[ "$r" == docker.io/* && "${r#docker.io/}" != */* ]]; then r="docker.io/library/${r#docker.io/}"; fi
  [[ "${r##*/}" == *[:@]* ]] || r="$r:latest"
  echo "$r"
}

# The docker.io twin of a podman-local name: localhost/lws:0.1.0 -> docker.io/library/lws:0.1.0.
docker_io_twin() {
  case "$1" in localhost/*) normalize "${1#localhost/}" ;; *) normalize "$1" ;; esac
}

nodes() {
  [ -s "$NODES_RUN/nodes" ] || die "no real nodes: REAL_NODE=1 make cluster-up"
  awk '{ sub(/^real-node-/, "", $1); print $1 }' "$NODES_RUN/nodes"
}
ctr_node() { ctr --address "$NODES_RUN/$1/containerd.sock" --namespace k8s.io "${@:2}"; }

# Tag image $2 as $3 on node $1 unless that is its name already; print "NODE NAME".
tag() {
  [ "$2" = "$3" ] || ctr_node "$1" images tag --force "$2" "$3" >/dev/null
  echo "$(real_node_name "$1") $3"
}

# The names archive $1 gives its images, as ctr names them: per OCI manifest its
# io.containerd.image.name annotation, else its ref.name; or a docker archive's RepoTags
# (`podman save` without --format).
archive_refs() {
  local f
  for f in index.json ./index.json; do
    if tar -xOf "$1" "$f" >/dev/null 2>&1; then
      tar -xOf "$1" "$f" | jq -r '.manifests[].annotations // {}
        | .["io.containerd.image.name"] // .["org.opencontainers.image.ref.name"] // empty'
      return
    fi
  done
  for f in manifest.json ./manifest.json; do
    if tar -xOf "$1" "$f" >/dev/null 2>&1; then
      tar -xOf "$1" "$f" | jq -r '.[].RepoTags[]?'
      return
    fi
  done
  return 1
}

# Every name an import creates must already be in normalized form: containerd 1.6's CRI files
# each name under its normalized twin and then cannot find a name like "lws:0.1.0" or ctr's
# "import-DATE:TAG" (and removing that name does not clear it). So without REF the archive's
# own names must be normalized (podman's localhost/..., umoci with a full name); with REF the
# archive is imported as that one name (its index; --base-name drops the archive's own names).
import() {
  local archive="$1" i refs ref first
  shift
  [ -f "$archive" ] || die "no such archive: $archive"
  refs="$(archive_refs "$archive")" || die "$archive is neither an OCI nor a docker archive"
  if [ "$#" -eq 0 ]; then
    [ -n "$refs" ] || die "$archive names no image; name it: node-image.sh import $archive REF"
    for ref in $refs; do
      [ "$(normalize "$ref")" = "$ref" ] ||
        die "$archive names its image \"$ref\", which the CRI would not find; name it: node-image.sh import $archive REF"
    done
  fi
  first="$([ "$#" -eq 0 ] || normalize "$1")"
  for i in $(nodes); do
    if [ -z "$first" ]; then
      ctr_node "$i" images import "$archive" >/dev/null || die "import into $(real_node_name "$i") failed"
      for ref in $refs; do
        tag "$i" "$ref" "$ref"
        tag "$i" "$ref" "$(docker_io_twin "$ref")"
      done
    else
      ctr_node "$i" images import --base-name "${first%:*}" --index-name "$first" "$archive" >/dev/null ||
        die "import into $(real_node_name "$i") failed"
      for ref in "$@"; do
        tag "$i" "$first" "$(normalize "$ref")"
        tag "$i" "$first" "$(docker_io_twin "$ref")"
      done
    fi
  done
}

list() {
  local i
  for i in $(nodes); do
    ctr_node "$i" images ls -q | grep -v '^sha256:' | sed "s/^/$(real_node_name "$i") /"
  done
}

case "${1:-}" in
  import) [ "$#" -ge 2 ] || die "usage: node-image.sh import ARCHIVE [REF...]"; shift; import "$@" | awk '!seen[$0]++' ;;
  list) list ;;
  *) die "usage: node-image.sh import ARCHIVE [REF...] | list" ;;
esac
