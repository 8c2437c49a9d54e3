#!/usr/bin/env bash
# Checks the archive `make image` wrote (image/README.md), in the importers a user has:
#   podman load   the name, the config (user, entrypoint, env, labels); the image runs read-only
#                 as 65532, validates a manifest from stdin, loads its precompiled module, and a
#                 run writes nothing (`podman diff` is empty);
#   runc          the image's bundle with a read-only root and no HOME: start time and peak RSS
#                 with the precompiled module and without it;
#   containerd    `ctr -n k8s.io images import` in a containerd of its own (root, state and socket
#                 under a temporary directory, stopped at the end) names it
#                 docker.io/library/lws:VERSION, and `ctr run` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=${IMAGE_VERSION:-$(sed -n '/^\[workspace\.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)}
ARCHIVE=target/image/lws.oci.tar
LAYOUT=target/image/layout
IMAGE=lws:$VERSION
FULL=docker.io/library/lws:$VERSION
MODULE_DIR=/usr/lib/lws/modules
[ -f "$ARCHIVE" ] || { echo "[image-test] $ARCHIVE is missing: run make image" >&2; exit 1; }

bash tests/support/need-debs.sh podman runc containerd umoci python3
export CONTAINERS_CONF=$PWD/image/containers.conf

step() { echo "[image-test] $*"; }
fail() { echo "[image-test] FAIL: $*" >&2; exit 1; }
expect() { # expect NEEDLE TEXT WHAT
  grep -qF -- "$1" <<<"$2" || fail "$3: expected '$1' in:"$'\n'"$2"
}

WORK=$(mktemp -d /tmp/lws-image-test.XXXXXX)
CTR_PID=
cleanup() {
  if [ -n "$CTR_PID" ]; then
    kill "$CTR_PID" 2>/dev/null || true
    wait "$CTR_PID" 2>/dev/null || true
  fi
  runc delete --force "lws-image-test-$$" >/dev/null 2>&1 || true
  # Snapshots containerd left mounted, deepest first.
  grep -F " $WORK/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r umount 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

step "podman load -i $ARCHIVE"
loaded=$(podman load -i "$ARCHIVE" 2>&1) || fail "podman load: $loaded"
echo "$loaded" | sed 's/^/  /'
expect "$FULL" "$loaded" "podman load's name"
config=$(podman image inspect "$IMAGE" --format '{{json .Config}}')
python3 - "$config" "$VERSION" <<'EOF' || fail "image config: $config"
import json, sys
config, version = json.loads(sys.argv[1]), sys.argv[2]
labels = config["Labels"]
checks = {
    "User": config.get("User") == "65532:65532",
    "Entrypoint": config.get("Entrypoint") == ["/lws"],
    "WorkingDir": config.get("WorkingDir") == "/",
    "Env": "LWS_MODULE_DIR=/usr/lib/lws/modules" in config.get("Env", []),
    "version": labels.get("org.opencontainers.image.version") == version,
    "revision": len(labels.get("org.opencontainers.image.revision", "")) >= 40,
    "source": bool(labels.get("org.opencontainers.image.source")),
    "created": bool(labels.get("org.opencontainers.image.created")),
    "module": len(labels.get("dev.lws.module.sha256", "")) == 64,
}
bad = [name for name, ok in checks.items() if not ok]
if bad:
    sys.exit(f"wrong: {bad}")
print("  user 65532:65532, entrypoint /lws, LWS_MODULE_DIR, labels: "
      + ", ".join(f"{k.split('.')[-1]}={v[:12]}" for k, v in sorted(labels.items())
                  if k.startswith("org.opencontainers.image.") and k.split(".")[-1] in
                  ("version", "revision", "source") or k == "dev.lws.module.sha256"))
EOF

RUN=(podman run --rm --network none --read-only --user 65532)
step "podman run --read-only --user 65532 $IMAGE --help"
help=$("${RUN[@]}" "$IMAGE" --help) || fail "--help"
expect "LeaderWorkerSet" "$help" "--help"

step "podman run --read-only -i $IMAGE validate -f - < examples/lws.yaml"
"${RUN[@]}" -i "$IMAGE" validate -f - <examples/lws.yaml || fail "examples/lws.yaml is valid"
step "podman run --read-only -i $IMAGE validate -f - < tests/invalid/07-size-zero.yaml"
rc=0
problems=$("${RUN[@]}" -i "$IMAGE" validate -f - <tests/invalid/07-size-zero.yaml 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "an invalid manifest exits 1, not $rc: $problems"
expect "spec.leaderWorkerTemplate.size" "$problems" "validate's problems"

step "podman run --read-only $IMAGE module info"
info=$("${RUN[@]}" "$IMAGE" module info) || fail "module info"
echo "$info" | sed 's/^/  /'
expect "code: precompiled $MODULE_DIR/" "$info" "the precompiled module is used"
step "podman run --read-only --env LWS_MODULE_DIR=/nowhere $IMAGE module info (compiles, writes nothing)"
info=$("${RUN[@]}" --env LWS_MODULE_DIR=/nowhere "$IMAGE" module info) || fail "module info without the module dir"
expect "code: compiled" "$info" "without the module dir"

step "a run on a writable root changes no file (podman diff)"
name=lws-image-test-$$
podman run --network none --name "$name" -i "$IMAGE" validate -f - <examples/lws.yaml >/dev/null \
  || { podman rm -f "$name" >/dev/null 2>&1; fail "validate on a writable root"; }
# podman itself adds /etc (for its /etc/hosts and /etc/resolv.conf mounts), and /etc/passwd and
# /etc/group for the image's user unless --passwd=false.
changes=$(podman diff "$name" | grep -vxE 'A /etc|A /etc/(passwd|group)' || true)
podman rm "$name" >/dev/null
[ -z "$changes" ] || fail "the container wrote:"$'\n'"$changes"
echo "  no change (but podman's own /etc)"

step "runc: the image's bundle, read-only root, no HOME"
umoci unpack --image "$LAYOUT:$VERSION" "$WORK/bundle" >/dev/null
cp examples/lws.yaml "$WORK/lws.yaml"
# Start time and peak RSS, the container's and the process's own (the same binary and files run
# directly, so runc's own memory does not hide the process's).
python3 - "$WORK" "$MODULE_DIR" "$$" <<'EOF'
import json, os, statistics, subprocess, sys, time
work, module_dir, pid = sys.argv[1:]
bundle = f"{work}/bundle"
spec_path = f"{bundle}/config.json"
spec = json.load(open(spec_path))
spec["root"]["readonly"] = True
spec["process"]["terminal"] = False
spec["process"]["env"] = [e for e in spec["process"]["env"] if not e.startswith("HOME=")]
spec["mounts"].append({"destination": "/lws.yaml", "type": "bind", "source": f"{work}/lws.yaml",
                       "options": ["bind", "ro"]})

def measure(argv, env=None):
    start = time.monotonic()
    child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{argv} failed: {child.stderr.read().decode()}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024

def median(runs):
    return tuple(statistics.median(r[i] for r in runs) for i in range(3))

rows = []
for label, dir_ in (("precompiled", module_dir), ("compiled at start", "/nowhere")):
    env = [e for e in spec["process"]["env"] if not e.startswith("LWS_MODULE_DIR=")]
    spec["process"]["env"] = env + [f"LWS_MODULE_DIR={dir_}"]
    spec["process"]["args"] = ["/lws", "validate", "-f", "/lws.yaml"]
    json.dump(spec, open(spec_path, "w"))
    container = median([measure(["runc", "run", "--bundle", bundle, f"lws-image-test-{pid}"])
                        for _ in range(3)])
    host_dir = f"{bundle}/rootfs{dir_}" if dir_ == module_dir else dir_
    process = median([measure([f"{bundle}/rootfs/lws", "validate", "-f", f"{work}/lws.yaml"],
                              env={"LWS_MODULE_DIR": host_dir}) for _ in range(3)])
    rows.append((label, container, process))
print("  lws validate -f examples/lws.yaml, median of 3:")
for label, (cw, _, cr), (pw, pc, pr) in rows:
    print(f"  {label:>17}: container (runc run) {cw * 1000:6.0f} ms wall, peak RSS {cr:4.0f} MiB;"
          f" process {pw * 1000:6.0f} ms wall, {pc * 1000:6.0f} ms CPU, peak RSS {pr:4.0f} MiB")
EOF

step "containerd: ctr -n k8s.io images import, in a containerd of its own"
CTR=$WORK/containerd
mkdir -p "$CTR"
cat >"$CTR/config.toml" <<EOF
version = 2
root = "$CTR/root"
state = "$CTR/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CTR/containerd.sock"
[ttrpc]
  address = "$CTR/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$CTR/opt"
EOF
containerd --config "$CTR/config.toml" >"$CTR/containerd.log" 2>&1 &
CTR_PID=$!
ctr=(ctr --address "$CTR/containerd.sock" --namespace k8s.io)
for _ in $(seq 1 50); do "${ctr[@]}" version >/dev/null 2>&1 && break; sleep 0.2; done
"${ctr[@]}" version >/dev/null || fail "containerd did not start: $(tail -5 "$CTR/containerd.log")"
"${ctr[@]}" images import "$ARCHIVE" | sed 's/^/  /'
names=$("${ctr[@]}" images ls -q)
echo "$names" | sed 's/^/  named /'
[ "$names" = "$FULL" ] || fail "ctr import named it '$names', not $FULL"
info=$("${ctr[@]}" run --rm --read-only "$FULL" "lws-image-test-$$" /lws module info) \
  || fail "ctr run: $(tail -5 "$CTR/containerd.log")"
expect "code: precompiled $MODULE_DIR/" "$info" "ctr run"
echo "  ctr run --read-only: $(grep '^code:' <<<"$info")"

step "passed"
