#!/usr/bin/env bash
# Builds the controller image from local files only (image/README.md) and writes it as an OCI
# archive: target/image/lws.oci.tar, named lws:$IMAGE_VERSION. FROM scratch:
#
#   /lws                                        the lws binary, stripped
#   /lib/x86_64-linux-gnu/, /lib64/             its four glibc libraries, copied from this machine
#   /usr/lib/lws/modules/<sha256>-<key>.cwasm   the embedded lws.wasm, compiled by that binary
#
# No shell, no CA bundle; user 65532:65532; works with a read-only root. Environment:
#   LWS_BIN          the binary (glibc; default target/release/lws, built if missing: make build)
#   IMAGE_LIBC       glibc (default) or musl: a static x86_64-unknown-linux-musl build instead,
#                    no libraries (docs/design-notes.md has why glibc is the default)
#   IMAGE_VERSION    the tag (default: the workspace version in Cargo.toml)
#   IMAGE_SOURCE     org.opencontainers.image.source (default "lws")
#   SOURCE_DATE_EPOCH  the image's creation time (default now)
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
LIBC=${IMAGE_LIBC:-glibc}
VERSION=${IMAGE_VERSION:-$(sed -n '/^\[workspace\.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)}
SOURCE=${IMAGE_SOURCE:-lws}
MODULE_DIR=/usr/lib/lws/modules
OUT=target/image
ARCHIVE=$OUT/lws.oci.tar
WASM=${LWS_WASM:-$PWD/target/lws.wasm}
[ -n "$VERSION" ] || { echo "[image] no [workspace.package] version in Cargo.toml" >&2; exit 1; }
[ -f "$WASM" ] || { echo "[image] $WASM is missing: run make wasm" >&2; exit 1; }
export LWS_WASM=$WASM

bash tests/support/need-debs.sh binutils python3
case "$LIBC" in
  glibc)
    BIN=${LWS_BIN:-target/release/lws}
    if [ -z "${LWS_BIN:-}" ]; then
      echo "[image] lws (release; cold build ~10 min on 2 cores)"
      $CARGO build --release -p lws-host
    fi
    ;;
  musl)
    TARGET=x86_64-unknown-linux-musl
    BIN=target/$TARGET/release/lws
    bash tests/support/need-debs.sh musl-tools
    rustup target add "$TARGET" >/dev/null 2>&1 || rustup target add "$TARGET"
    echo "[image] lws for $TARGET, static (cold build ~15 min on 2 cores)"
    $CARGO build --release --target "$TARGET" -p lws-host
    ;;
  *) echo "[image] IMAGE_LIBC is glibc or musl, not $LIBC" >&2; exit 1 ;;
esac
[ -x "$BIN" ] || { echo "[image] $BIN is missing: run make build" >&2; exit 1; }

echo "[image] root filesystem ($LIBC)"
ROOTFS=$OUT/rootfs
rm -rf "$ROOTFS" "$OUT/layout"
mkdir -p "$ROOTFS$MODULE_DIR"
# No symbols: a panic still says where, only a backtrace loses its function names.
strip -o "$ROOTFS/lws" "$BIN"
# The libraries the binary needs, at the paths the loader looks in (the interpreter's path is in
# the binary; the others are found in its default /lib/x86_64-linux-gnu). A static binary has
# none: ldd says "statically linked" or "not a dynamic executable".
libraries=$(ldd "$BIN" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
case "$LIBC" in
  glibc) [ -n "$libraries" ] || { echo "[image] ldd lists no libraries for $BIN" >&2; exit 1; } ;;
  musl) [ -z "$libraries" ] || { echo "[image] $BIN is not static: $libraries" >&2; exit 1; } ;;
esac
for library in $libraries; do
  mkdir -p "$ROOTFS$(dirname "$library")"
  cp -L "$library" "$ROOTFS$library"
done
LIBC_LABEL=musl
if [ "$LIBC" = glibc ]; then
  LIBC_LABEL="glibc $(dpkg-query -W -f='${Version}' libc6 2>/dev/null || ldd --version | sed -n '1s/.* //p')"
fi

echo "[image] precompiling lws.wasm with the image's own binary"
"$ROOTFS/lws" module precompile --out "$ROOTFS$MODULE_DIR" >/dev/null
find "$ROOTFS" -type d -exec chmod 0755 {} +
find "$ROOTFS" -type f -exec chmod a+r,go-w {} +
chmod 0755 "$ROOTFS/lws"
chmod 0444 "$ROOTFS$MODULE_DIR"/*.cwasm

# The image's binary must run from the image's files alone and load that file as in a pod:
# chrooted, as 65532, with only the image's Env (as root; else from here, with this machine's
# libraries).
if [ "$(id -u)" = 0 ]; then
  info=$(env -i LWS_MODULE_DIR="$MODULE_DIR" "$(command -v chroot)" --userspec=65532:65532 "$ROOTFS" /lws module info)
else
  info=$(env -i LWS_MODULE_DIR="$PWD/$ROOTFS$MODULE_DIR" "$ROOTFS/lws" module info)
fi
case "$info" in
  *"code: precompiled "*) ;;
  *) echo "[image] the image's binary does not load its precompiled module:"$'\n'"$info" >&2; exit 1 ;;
esac
MODULE_SHA256=$(sed -n 's/^sha256: //p' <<<"$info")
[ "$MODULE_SHA256" = "$(sha256sum "$WASM" | cut -d' ' -f1)" ] \
  || { echo "[image] the binary embeds $MODULE_SHA256, not $WASM" >&2; exit 1; }

REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [ "$REVISION" != unknown ] && ! git diff --quiet HEAD -- 2>/dev/null; then
  REVISION="$REVISION-dirty"
fi
CREATED=$(date -u ${SOURCE_DATE_EPOCH:+-d @$SOURCE_DATE_EPOCH} +%Y-%m-%dT%H:%M:%SZ)

labels=(
  "org.opencontainers.image.title=lws"
  "org.opencontainers.image.description=LeaderWorkerSet controller and admission webhooks, deciding through lws.wasm"
  "org.opencontainers.image.source=$SOURCE"
  "org.opencontainers.image.version=$VERSION"
  "org.opencontainers.image.revision=$REVISION"
  "org.opencontainers.image.created=$CREATED"
  "org.opencontainers.image.licenses=Apache-2.0"
  "dev.lws.module.sha256=$MODULE_SHA256"
  "dev.lws.libc=$LIBC_LABEL"
)

echo "[image] OCI layout"
# One layer: a tar of the root filesystem whose bytes depend only on its contents and $CREATED.
# shellcheck disable=SC2046 # the top-level names, no "./" prefix
tar -C "$ROOTFS" --sort=name --owner=0 --group=0 --numeric-owner --mtime="$CREATED" \
  -cf "$OUT/layer.tar" $(cd "$ROOTFS" && ls -A)
python3 - "$OUT/config.json" "$CREATED" "$MODULE_DIR" "${labels[@]}" <<'EOF'
import json, sys
path, created, module_dir, *labels = sys.argv[1:]
json.dump({
    "created": created,
    "created_by": f"image/build.sh: /lws, {module_dir}",
    "config": {
        "User": "65532:65532",
        "Entrypoint": ["/lws"],
        "WorkingDir": "/",
        "Env": [f"LWS_MODULE_DIR={module_dir}"],
    },
    "annotations": dict(label.split("=", 1) for label in labels),
}, open(path, "w"))
EOF
# Named for containerd (ctr import, a kubelet, docker load) as the kubelet resolves lws:VERSION.
read -r MANIFEST_DIGEST CONFIG_DIGEST UNPACKED < <(python3 image/oci.py "$OUT/layout" \
  "$OUT/layer.tar" "$OUT/config.json" "docker.io/library/lws:$VERSION" "$VERSION")
rm "$OUT/layer.tar" "$OUT/config.json"
# Written aside and renamed, so a reader (make deploy, a node import) never sees half an archive.
tar -C "$OUT/layout" --sort=name --owner=0 --group=0 --numeric-owner --mode=a+r,u+w \
  --mtime="$CREATED" -cf "$ARCHIVE.partial" oci-layout index.json blobs
mv -f "$ARCHIVE.partial" "$ARCHIVE"

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "[image] lws:$VERSION (docker.io/library/lws:$VERSION) -> $ARCHIVE"
libraries_size=0
for library in $libraries; do libraries_size=$((libraries_size + $(stat -c %s "$ROOTFS$library"))); done
echo "[image]   archive $(mib "$(stat -c %s "$ARCHIVE")"), uncompressed $(mib "$UNPACKED"):" \
  "lws $(mib "$(stat -c %s "$ROOTFS/lws")"), precompiled module" \
  "$(mib "$(cat "$ROOTFS$MODULE_DIR"/*.cwasm | wc -c)"), libraries $(mib "$libraries_size")"
echo "[image]   digest $MANIFEST_DIGEST (manifest), id $CONFIG_DIGEST (config)"
echo "[image]   module sha256 $MODULE_SHA256, revision $REVISION"
echo "[image] load it: podman load -i $ARCHIVE | ctr -n k8s.io images import $ARCHIVE | docker load -i $ARCHIVE"
