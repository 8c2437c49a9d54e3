#!/usr/bin/env bash
# `make conformance`: upstream LWS's own e2e suite (sigs.k8s.io/lws test/e2e, built by
# tests/cluster/build.sh e2e-suite) against our controller, then against upstream's controller (the
# peer) in the same run, on the local cluster; the table, spec by spec, is printed and written to
# target/conformance/results.json (tests/conformance/report.py). tests/e2e/README.md, "Upstream's
# e2e suite", has what is adapted here and why. Four legs, one controller at a time:
#   ours-process     `lws controller` on 127.0.0.1 (tests/e2e/controller.sh up), every spec but
#                    the metrics spec
#   ours-incluster   the chart on the real nodes (charts/deploy.sh deploy), the metrics spec
#   peer-process     upstream's manager on 127.0.0.1 (tests/cluster/peer-up.sh), every spec but
#                    the metrics spec
#   peer-incluster   upstream's manifests on a real node (tests/conformance/peer-incluster.sh),
#                    the metrics spec
# The in-cluster legs need the real nodes (REAL_NODE=1 make cluster-up; `make test` has them);
# without them the metrics spec is reported as not run, a failure.
# Env: LWS (our binary), CONFORMANCE_READY_DELAY and CONFORMANCE_DELETE_DELAY (KWOK's pod start
# and stop times, tests/conformance/kwok-pods.yaml; default 1s each), CONFORMANCE_FOCUS (a regexp: run
# only the specs it matches, e.g. to debug one), CONFORMANCE_LEGS (default all four, in order).
# Exit 1 when a spec did not pass for ours, unless tests/conformance/known-failures.txt lists it
# (and then also when a listed spec passes).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
# shellcheck source-path=SCRIPTDIR source=../cluster/lib.sh
. tests/cluster/lib.sh
log() { printf '[conformance] %s\n' "$*" >&2; }
die() { printf '[conformance] ERROR: %s\n' "$*" >&2; exit 1; }

LWS="${LWS:-$ROOT/target/release/lws}"
OUT="$ROOT/target/conformance"
READY_DELAY="${CONFORMANCE_READY_DELAY:-1s}"
DELETE_DELAY="${CONFORMANCE_DELETE_DELAY:-1s}"
LEGS="${CONFORMANCE_LEGS:-ours-process ours-incluster peer-process peer-incluster}"
VERSION="${LWS_CONFORMANCE_VERSION:-v0.9.0}"
# Upstream's spec texts (test/e2e/e2e_test.go, e2e_gang_scheduling_test.go).
METRICS_SPEC="should ensure the metrics endpoint is serving metrics"
GANG="leaderWorkerSet e2e gang scheduling tests"
# The images the suite's pods use that a registry has (kind pulls them); any other never starts.
PULLABLE='["docker.io/nginxinc/nginx-unprivileged:1.27", "busybox"]'

E2E="$(bash tests/cluster/build.sh e2e-suite)"
[ -x "$LWS" ] || die "$LWS is missing: make build"
if ! { [ -f "$RUN/env" ] && kc get --raw=/readyz >/dev/null 2>&1; }; then
  log "no local cluster: make cluster-up"
  make --no-print-directory cluster-up
fi
set -a
# shellcheck source=/dev/null  # written by cluster-up
. "$RUN/env"
set +a
REAL_NODES=0
[ -n "${LWS_REAL_NODES:-}" ] && REAL_NODES=1
PEER_VERSION="$(bash tests/cluster/build.sh peer)"

rm -rf "$OUT" && mkdir -p "$OUT"
LEGS_JSON="[]"

# Stop every controller this script may have started; none of these fails when nothing runs.
stop_all() {
  bash tests/e2e/controller.sh down >&2 || true
  bash tests/cluster/peer-down.sh >/dev/null 2>&1 || true
  if [ "$REAL_NODES" = 1 ]; then
    bash tests/conformance/peer-incluster.sh down >&2 || true
    if "$(bash charts/helm.sh)" status lws -n lws-system >/dev/null 2>&1; then bash charts/deploy.sh undeploy >&2 || true; fi
  fi
}

# A server dry run of a pod labelled $2 in namespace $1: the pod as admission leaves it.
dry_run_pod() {
  kc create --dry-run=server -o json -n "$1" -f - <<EOF
{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe", "labels": {"$2": "probe"}},
 "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
EOF
}
# The API server loads a new policy a moment after it is created: these tell when it acts.
kwok_policy_acts() {
  dry_run_pod test-ns-conformance-probe leaderworkerset.sigs.k8s.io/name |
    jq -e --arg d "$READY_DELAY" '.metadata.annotations["pod-ready.stage.kwok.x-k8s.io/delay"] == $d'
}
metrics_policy_acts() {
  dry_run_pod lws-system batch.kubernetes.io/job-name | jq -e '.spec.hostNetwork == true'
}

policies() {  # apply|delete
  sed -e "s|@READY_DELAY@|$READY_DELAY|g" -e "s|@DELETE_DELAY@|$DELETE_DELAY|g" -e "s|@PULLABLE@|$PULLABLE|g" \
    tests/conformance/kwok-pods.yaml |
    if [ "$1" = apply ]; then kc apply -f - >/dev/null; else kc delete --ignore-not-found -f - >/dev/null; fi
  [ "$1" = apply ] || return 0
  kc create namespace test-ns-conformance-probe --dry-run=client -o yaml | kc apply -f - >/dev/null
  wait_for 60 kwok_policy_acts || die "the KWOK pod policy (tests/conformance/kwok-pods.yaml) does not act"
  kc delete namespace test-ns-conformance-probe --wait=false >/dev/null
}

metrics_policy() {  # apply IP | delete
  sed -e "s|@METRICS_IP@|${2:-127.0.0.1}|g" tests/conformance/metrics-job.yaml |
    if [ "$1" = apply ]; then kc apply -f - >/dev/null; else kc delete --ignore-not-found -f - >/dev/null; fi
  [ "$1" = apply ] || return 0
  wait_for 60 metrics_policy_acts || die "the metrics Job policy (tests/conformance/metrics-job.yaml) does not act"
}

cleanup() {
  local rc=$?
  stop_all
  metrics_policy delete || true
  policies delete || true
  kc -n lws-system delete job curl-metrics --ignore-not-found >/dev/null 2>&1 || true
  restore_crd || true
  exit "$rc"
}
trap cleanup EXIT

# Our CRD as `lws crd` prints it (the peer legs apply upstream's over it): a replace, so no field
# of upstream's is left behind for the suites that run after this one.
restore_crd() {
  local rv
  rv="$(kc get crd leaderworkersets.leaderworkerset.x-k8s.io -o jsonpath='{.metadata.resourceVersion}' 2>/dev/null)" || return 0
  "$LWS" crd -o json 2>/dev/null | jq --arg rv "$rv" '.metadata.resourceVersion = $rv' | kc replace -f - >/dev/null ||
    "$LWS" crd | kc apply --server-side --force-conflicts --field-manager=lws-install -f - >/dev/null
  log "our CRD restored"
}

# Run the suite; $1 leg name, $2 controller, $3 deployment, then ginkgo flags.
run_leg() {
  local name="$1" controller="$2" deployment="$3" t0=$SECONDS rc=0
  shift 3
  local args=(-test.v -ginkgo.v -ginkgo.no-color -ginkgo.timeout=2h
    "-ginkgo.json-report=$OUT/$name.json" "$@")
  [ -z "${CONFORMANCE_FOCUS:-}" ] || args+=("-ginkgo.focus=$CONFORMANCE_FOCUS")
  log "$name: running upstream's suite against $controller ($deployment), log $OUT/$name.log"
  # kubectl for the metrics spec; the suite runs its commands from its own directory.
  (cd "$OUT" && PATH="$(dirname "$KUBECTL"):$PATH" "$E2E" "${args[@]}") >"$OUT/$name.log" 2>&1 || rc=$?
  grep -E '^(Ran [0-9]+ of [0-9]+ Specs|(SUCCESS|FAIL)! --)' "$OUT/$name.log" | sed "s/^/[conformance] $name: /" >&2 || true
  LEGS_JSON="$(jq -c --arg n "$name" --arg c "$controller" --arg d "$deployment" \
    --argjson s "$((SECONDS - t0))" --argjson rc "$rc" --arg r "$name.json" --arg l "$OUT/$name.log" \
    '. + [{name: $n, controller: $c, deployment: $d, seconds: $s, rc: $rc, report: $r, log: $l}]' <<<"$LEGS_JSON")"
}

# The IP of the first endpoint of the metrics Service (the pod the curl Job reaches).
metrics_endpoint() {
  local ip=""
  for _ in $(seq 1 60); do
    ip="$(kc -n lws-system get endpointslices -l kubernetes.io/service-name=lws-controller-manager-metrics-service \
      -o jsonpath='{.items[*].endpoints[*].addresses[0]}' 2>/dev/null | awk '{print $1}')"
    [ -z "$ip" ] || break
    sleep 1
  done
  echo "${ip:-127.0.0.1}"
}

# The development installation (webhooks by URL, the RBAC of `lws install --rbac-only`) has the
# chart's and upstream's object names: removed before either in-cluster deployment.
remove_dev_installation() {
  "$LWS" install --rbac-only -o json | jq '.items |= map(select(.kind != "Namespace"))' |
    kc delete --ignore-not-found -f - >/dev/null
  kc delete --ignore-not-found mutatingwebhookconfiguration/lws-mutating-webhook-configuration \
    validatingwebhookconfiguration/lws-validating-webhook-configuration >/dev/null
}

metrics_leg() {  # name controller
  local ip archive name
  read -r archive name < <(bash tests/conformance/images.sh curl)
  bash tests/cluster/node-image.sh import "$archive" "$name" >/dev/null
  ip="$(metrics_endpoint)"
  log "$1: the curl Job reaches lws-controller-manager-metrics-service at its endpoint $ip"
  metrics_policy apply "$ip"
  kc -n lws-system delete job curl-metrics --ignore-not-found >/dev/null
  run_leg "$1" "$2" in-cluster "-ginkgo.focus=$METRICS_SPEC"
  kc -n lws-system delete job curl-metrics --ignore-not-found >/dev/null
  metrics_policy delete
}

stop_all
policies apply
log "upstream lws $VERSION e2e suite ($E2E); peer: upstream lws $PEER_VERSION; KWOK pods ready after $READY_DELAY, gone $DELETE_DELAY after deletion"
for leg in $LEGS; do
  case "$leg" in
    ours-process)
      bash tests/e2e/controller.sh up
      run_leg ours-process ours process "-ginkgo.skip=$GANG|$METRICS_SPEC"
      bash tests/e2e/controller.sh down ;;
    ours-incluster)
      [ "$REAL_NODES" = 1 ] || { log "no real nodes: skipping $leg (the metrics spec counts as not run)"; continue; }
      bash tests/e2e/controller.sh down
      remove_dev_installation
      bash charts/deploy.sh deploy >&2
      metrics_leg ours-incluster ours
      bash charts/deploy.sh undeploy >&2 ;;
    peer-process)
      bash tests/cluster/peer-up.sh
      run_leg peer-process peer process "-ginkgo.skip=$GANG|$METRICS_SPEC"
      bash tests/cluster/peer-down.sh ;;
    peer-incluster)
      [ "$REAL_NODES" = 1 ] || { log "no real nodes: skipping $leg"; continue; }
      remove_dev_installation
      bash tests/conformance/peer-incluster.sh up
      metrics_leg peer-incluster peer
      bash tests/conformance/peer-incluster.sh down ;;
    *) die "unknown leg $leg (ours-process ours-incluster peer-process peer-incluster)" ;;
  esac
done

jq -n --argjson legs "$LEGS_JSON" --arg v "$VERSION" --arg pv "$PEER_VERSION" --arg d "$READY_DELAY" --arg dd "$DELETE_DELAY" \
  --arg m "$METRICS_SPEC" --arg g "$GANG" --argjson rn "$REAL_NODES" --arg f "${CONFORMANCE_FOCUS:-}" \
  '{legs: $legs, version: $v, peer_version: $pv, ready_delay: $d, delete_delay: $dd, metrics_spec: $m, gang: $g, real_nodes: ($rn == 1), focus: $f}' \
  >"$OUT/legs.json"
python3 tests/conformance/report.py "$OUT"
