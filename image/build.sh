#!/usr/bin/env bash
# Builds the controller image from local files only (image/README.md) and writes it as an OCI
# archive: target/image/lws.oci.tar, named lws:$IMAGE_VERSION.
#
#   /lws                                     lws built statically for x86_64-unknown-linux-musl
#   /usr/lib/lws/modules/<sha256>-<key>.cwasm  the embedded lws.wasm, compiled by that binary
#
# FROM scratch: no shell, no libc, no CA bundle. User 65532:65532, read-only root friendly.
# Needs target/lws.wasm (make wasm). Environment: IMAGE_VERSION (default: the workspace
# version), IMAGE_SOURCE (org.opencontainers.image.source, default "lws"), CARGO,
# SOURCE_DATE_EPOCH (the image's creation time, default now).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-unknown-linux-musl
CARGO=${CARGO:-cargo}
VERSION=${IMAGE_VERSION:-$(sed -n '/^\[workspace\.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)}
SOURCE=${IMAGE_SOURCE:-lws}
MODULE_DIR=/usr/lib/lws/modules
OUT=target/image
ARCHIVE=$OUT/lws.oci.tar
WASM=${LWS_WASM:-$PWD/target/lws.wasm}
[ -n "$VERSION" ] || { echo "[image] no [workspace.package] version in Cargo.toml" >&2; exit 1; }
[ -f "$WASM" ] || { echo "[image] $WASM is missing: run make wasm" >&2; exit 1; }
export LWS_WASM=$WASM

bash tests/support/need-debs.sh musl-tools binutils python3
rustup target add "$TARGET" >/dev/null 2>&1 || rustup target add "$TARGET"

echo "[image] lws for $TARGET, static (cold build ~10 min on 2 cores)"
$CARGO build --release --target "$TARGET" -p lws-host
BIN=target/$TARGET/release/lws
# A static binary has no libraries for ldd to list (it says "statically linked" or "not a
# dynamic executable").
if ldd "$BIN" 2>&1 | grep -q '=>'; then
  echo "[image] $BIN is dynamically linked" >&2; exit 1
fi

echo "[image] root filesystem"
rm -rf "$OUT/rootfs" "$OUT/layout" "$ARCHIVE"
mkdir -p "$OUT/rootfs$MODULE_DIR"
# No symbols: panics still say where, without a backtrace's function names.
strip -o "$OUT/rootfs/lws" "$BIN"
chmod 0755 "$OUT/rootfs/lws"
echo "[image] precompiling lws.wasm with the image's own binary"
"$OUT/rootfs/lws" module precompile --out "$OUT/rootfs$MODULE_DIR" >/dev/null
chmod 0444 "$OUT/rootfs$MODULE_DIR"/*.cwasm
find "$OUT/rootfs" -type d -exec chmod 0755 {} +

# The image's binary must load that file as it will in a pod: nothing but the image's Env.
info=$(env -i LWS_MODULE_DIR="$PWD/$OUT/rootfs$MODULE_DIR" "$OUT/rootfs/lws" module info)
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
)

echo "[image] OCI layout"
# One layer: a tar of the root filesystem whose bytes depend only on its contents and $CREATED.
tar -C "$OUT/rootfs" --sort=name --owner=0 --group=0 --numeric-owner --mtime="$CREATED" \
  -cf "$OUT/layer.tar" lws usr
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
tar -C "$OUT/layout" --sort=name --owner=0 --group=0 --numeric-owner --mode=a+r,u+w \
  --mtime="$CREATED" -cf "$ARCHIVE" oci-layout index.json blobs

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "[image] lws:$VERSION (docker.io/library/lws:$VERSION) -> $ARCHIVE"
echo "[image]   archive $(mib "$(stat -c %s "$ARCHIVE")"), uncompressed $(mib "$UNPACKED")" \
  "(lws $(mib "$(stat -c %s "$OUT/rootfs/lws")"), precompiled module" \
  "$(mib "$(cat "$OUT/rootfs$MODULE_DIR"/*.cwasm | wc -c)"))"
echo "[image]   digest $MANIFEST_DIGEST (manifest), id $CONFIG_DIGEST (config)"
echo "[image]   module sha256 $MODULE_SHA256, revision $REVISION"
echo "[image] load it: podman load -i $ARCHIVE | ctr -n k8s.io images import $ARCHIVE | docker load -i $ARCHIVE"
