#!/usr/bin/env bash
# The two images upstream's e2e suite needs on the real nodes, which pull nothing (no registry):
#   images.sh curl   the curl-metrics Job's image, named docker.io/curlimages/curl:7.78.0 as the
#                    metrics spec asks for it: this machine's curl and dash (as /bin/sh) with
#                    their libraries, FROM scratch. Not upstream's image, but what the spec runs
#                    in it (`/bin/sh -c "curl -v -k -H ... https://...:8443/metrics"`) is real.
#   images.sh peer   upstream LWS's manager (tests/cluster/build.sh peer: a static Go binary) as
#                    /manager, user 65532, named localhost/lws-peer:<version>: what upstream's
#                    Dockerfile puts in a distroless image.
# Each prints "ARCHIVE NAME"; archives are written once into $LWS_CACHE/bin (keyed by what goes
# in) and packed by image/oci.py.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../cluster/lib.sh
. "$(dirname "$0")/../cluster/lib.sh"

CREATED=2026-01-01T00:00:00Z  # fixed: the same files give the same archive

# Pack root filesystem $1 with image config JSON $2 as $3 (archive) named $4 (tag $5).
pack() {
  local rootfs="$1" config="$2" archive="$3" name="$4" tag="$5" work
  work="$(mktemp -d)"
  # shellcheck disable=SC2046  # the top-level names, no "./" prefix
  tar -C "$rootfs" --sort=name --owner=0 --group=0 --numeric-owner --mtime="$CREATED" \
    -cf "$work/layer.tar" $(cd "$rootfs" && ls -A)
  printf '%s' "$config" >"$work/config.json"
  python3 "$REPO/image/oci.py" "$work/layout" "$work/layer.tar" "$work/config.json" "$name" "$tag" >/dev/null
  mkdir -p "$(dirname "$archive")"
  tar -C "$work/layout" --sort=name --owner=0 --group=0 --numeric-owner --mtime="$CREATED" \
    -cf "$archive.partial" oci-layout index.json blobs
  mv -f "$archive.partial" "$archive"
  rm -rf "$work"
}

# Copy executable $1 to $3 in root filesystem $2, with the libraries ldd lists for it.
copy_with_libraries() {
  local exe="$1" rootfs="$2" dest="$3" library
  mkdir -p "$rootfs$(dirname "$dest")"
  cp -L "$exe" "$rootfs$dest"
  for library in $(ldd "$exe" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
    mkdir -p "$rootfs$(dirname "$library")"
    cp -L "$library" "$rootfs$library"
  done
}

curl_image() {
  local name=docker.io/curlimages/curl:7.78.0 version key archive rootfs
  command -v curl >/dev/null || die "curl is not installed"
  version="$(curl --version | head -n1 | cut -d' ' -f2)"
  key="$(sha256sum "$(command -v curl)" "$(readlink -f /bin/sh)" | sha256sum | cut -c1-12)"
  archive="$BIN/conformance-curl-$key/curl.oci.tar"
  if [ ! -s "$archive" ]; then
    rootfs="$(mktemp -d)"
    copy_with_libraries "$(command -v curl)" "$rootfs" /usr/bin/curl
    copy_with_libraries "$(readlink -f /bin/sh)" "$rootfs" /bin/sh
    # glibc's default without this file asks DNS first; the pod's /etc/hosts holds the answer.
    mkdir -p "$rootfs/etc" "$rootfs/tmp"
    printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
    chmod 1777 "$rootfs/tmp"
    pack "$rootfs" "{\"created\": \"$CREATED\", \"created_by\": \"tests/conformance/images.sh: curl $version, dash\",
      \"config\": {\"Entrypoint\": [\"/usr/bin/curl\"], \"Env\": [\"PATH=/usr/bin:/bin\"], \"WorkingDir\": \"/\"},
      \"annotations\": {\"org.opencontainers.image.description\": \"curl $version and /bin/sh from this machine, standing in for curlimages/curl:7.78.0\"}}" \
      "$archive" "$name" 7.78.0
    rm -rf "$rootfs"
    log "curl image: $archive ($name: curl $version)"
  fi
  echo "$archive $name"
}

peer_image() {
  local version manager archive name rootfs
  version="$("$REPO/tests/cluster/build.sh" peer)"
  manager="$BIN/lws-$version/manager"
  name="localhost/lws-peer:$version"
  archive="$BIN/lws-$version/manager.oci.tar"
  if [ ! -s "$archive" ] || [ "$manager" -nt "$archive" ]; then
    ldd "$manager" >/dev/null 2>&1 && die "$manager is not static"
    rootfs="$(mktemp -d)"
    install -m 0755 "$manager" "$rootfs/manager"
    pack "$rootfs" "{\"created\": \"$CREATED\", \"created_by\": \"tests/conformance/images.sh: upstream lws $version manager\",
      \"config\": {\"Entrypoint\": [\"/manager\"], \"User\": \"65532:65532\", \"WorkingDir\": \"/\"},
      \"annotations\": {\"org.opencontainers.image.version\": \"$version\"}}" \
      "$archive" "$name" "$version"
    rm -rf "$rootfs"
    log "peer image: $archive ($name)"
  fi
  echo "$archive $name"
}

case "${1:-}" in
  curl) curl_image ;;
  peer) peer_image ;;
  *) echo "usage: $0 curl|peer" >&2; exit 2 ;;
esac
