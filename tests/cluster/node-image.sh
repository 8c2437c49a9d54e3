#!/usr/bin/env bash
# Put images on the real nodes: there is no registry, so pods on them run only what was imported
# (imagePullPolicy IfNotPresent or Never). Usage:
#   node-image.sh import ARCHIVE [REF...]   OCI archive (podman save --format oci-archive, umoci +
#                                           tar, skopeo) into every real node's containerd
#   node-image.sh list                      the images on each real node
# Each image also gets the name a kubelet asks for: it normalizes a pod's `lws:0.1.0` to
# docker.io/library/lws:0.1.0, while podman names it localhost/lws:0.1.0, so a localhost/ or
# short name is tagged with its docker.io form too. REF names the image explicitly (needed when
# the archive's ref is a bare tag, as umoci writes by default). Prints the names, one a line.
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

import() {
  local archive="$1" i names name ref out
  shift
  [ -f "$archive" ] || die "no such archive: $archive"
  for i in $(nodes); do
    # ctr prints "unpacking NAME (sha256:...)...done" for each image it names.
    out="$(ctr_node "$i" images import "$archive")" || die "import into $(real_node_name "$i") failed"
    names="$(sed -n 's/^unpacking \(.*\) (sha256:[0-9a-f]*)\.\.\.done$/\1/p' <<<"$out")"
    [ -n "$names" ] || die "$archive holds no named image; name it: node-image.sh import $archive REF"
    if [ "$#" -gt 0 ] && [ "$(wc -l <<<"$names")" -ne 1 ]; then
      die "$archive holds several images ($(tr '\n' ' ' <<<"$names")); REF would be ambiguous"
    fi
    while read -r name; do
      for ref in "$@"; do tag "$i" "$name" "$(normalize "$ref")"; done
      # ctr's name for a bare tag ("import-DATE:TAG") means nothing to a pod: REF is needed.
      if [[ "$name" =~ ^import-[0-9-]+: ]]; then
        [ "$#" -gt 0 ] || die "$archive names its image by a bare tag (${name#*:}); name it: node-image.sh import $archive REF"
        continue
      fi
      tag "$i" "$name" "$name"
      tag "$i" "$name" "$(docker_io_twin "$name")"
    done <<<"$names"
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
