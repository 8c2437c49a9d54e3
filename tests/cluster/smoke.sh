#!/usr/bin/env bash
# Smoke test of the running local cluster: scheduling with rack anti-affinity, kwok pod
# lifecycle, StatefulSet controller and garbage collector, the pod-chaos helper, and an admission
# webhook called by URL. Cleans up after itself; last line "smoke: N passed, M failed".
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

[ -f "$RUN/kubeconfig" ] || die "no cluster; run make cluster-up first"
NS="smoke-$$"
WH_NAME="lws-smoke-webhook"
TMP="$(mktemp -d)"
PY_PID=""
passed=0
failed=0

cleanup() {
  [ -z "$PY_PID" ] || { kill "$PY_PID" 2>/dev/null || true; wait "$PY_PID" 2>/dev/null || true; }
  kc delete validatingwebhookconfiguration "$WH_NAME" --ignore-not-found >/dev/null 2>&1 || true
  kc delete namespace "$NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT

check() {
  local what="$1"; shift
  if "$@"; then
    passed=$((passed + 1)); log "ok   - $what"
  else
    failed=$((failed + 1)); log "FAIL - $what"
  fi
}

kc create namespace "$NS" >/dev/null
wait_for 30 kc get serviceaccount default -n "$NS" || die "no default ServiceAccount in $NS"

# --- 1. scheduling: one pod per rack -----------------------------------------------------------
kc apply -n "$NS" -f - >/dev/null <<'EOF'
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: spread}
spec:
  replicas: 4
  serviceName: spread
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: spread}}
  template:
    metadata: {labels: {app: spread}}
    spec:
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {app: spread}}
            topologyKey: rack
      containers:
      - name: app
        image: registry.invalid/app:1
        resources: {requests: {cpu: 100m}}
EOF

ready_count() {
  kc get pods -n "$NS" -l app=spread -o json |
    jq '[.items[] | select(.status.phase=="Running" and any(.status.conditions[]?; .type=="Ready" and .status=="True"))] | length'
}
four_ready() { [ "$(ready_count)" -eq 4 ]; }
distinct_racks() {
  local racks
  racks="$(kc get pods -n "$NS" -l app=spread -o jsonpath='{range .items[*]}{.spec.nodeName}{"\n"}{end}' |
    while read -r n; do kc get node "$n" -o jsonpath='{.metadata.labels.rack}{"\n"}'; done | sort -u | wc -l)"
  [ "$racks" -eq 4 ]
}
check "4 StatefulSet pods Running and Ready" wait_for 90 four_ready
check "the 4 pods sit on 4 different racks" distinct_racks

# --- 2. a fifth pod has no rack left ----------------------------------------------------------
kc scale statefulset -n "$NS" spread --replicas=5 >/dev/null
unschedulable() {
  [ "$(kc get pod -n "$NS" spread-4 -o jsonpath='{.status.conditions[?(@.type=="PodScheduled")].reason}')" = Unschedulable ]
}
still_pending() {
  sleep 5
  [ "$(kc get pod -n "$NS" spread-4 -o jsonpath='{.status.phase}')" = Pending ] && [ "$(ready_count)" -eq 4 ]
}
check "scaled to 5: spread-4 is Unschedulable" wait_for 60 unschedulable
check "spread-4 stays Pending" still_pending
# Back to 4 so a failed pod's rack is not taken by spread-4 below.
kc scale statefulset -n "$NS" spread --replicas=4 >/dev/null
four_left() { [ "$(kc get pods -n "$NS" -l app=spread -o name | wc -l)" -eq 4 ]; }
wait_for 30 four_left || true

# --- 3. pod-chaos: status patches stick on kwok pods -------------------------------------------
CHAOS="$CLUSTER_DIR/pod-chaos.sh"
restart_sticks() {
  "$CHAOS" restart-container "$NS" spread-1 2>/dev/null && sleep 3 &&
    [ "$(kc get pod -n "$NS" spread-1 -o jsonpath='{.status.containerStatuses[0].restartCount}:{.status.phase}:{.status.conditions[?(@.type=="Ready")].status}')" = "1:Running:True" ]
}
not_ready_sticks() {
  "$CHAOS" not-ready "$NS" spread-2 2>/dev/null && sleep 3 &&
    [ "$(kc get pod -n "$NS" spread-2 -o jsonpath='{.status.phase}:{.status.conditions[?(@.type=="Ready")].status}')" = "Running:False" ] &&
    [ "$(kc get statefulset -n "$NS" spread -o jsonpath='{.status.readyReplicas}')" = 3 ] &&
    "$CHAOS" ready "$NS" spread-2 2>/dev/null
}
failed_uid=""
fail_recreated() {
  failed_uid="$(kc get pod -n "$NS" spread-3 -o jsonpath='{.metadata.uid}')"
  "$CHAOS" fail "$NS" spread-3 2>/dev/null
}
replaced() {
  local uid
  uid="$(kc get pod -n "$NS" spread-3 -o jsonpath='{.metadata.uid}:{.status.phase}')"
  [ -n "$uid" ] && [ "${uid%%:*}" != "$failed_uid" ] && [ "${uid#*:}" = Running ]
}
check "restart-container: restartCount 1, still Running and Ready" restart_sticks
check "not-ready: Ready=False sticks, StatefulSet counts 3 ready" not_ready_sticks
check "fail: phase Failed accepted" fail_recreated
check "fail: the StatefulSet controller replaces the failed pod, kwok runs it" wait_for 60 replaced

# --- 4. garbage collector -----------------------------------------------------------------------
kc delete statefulset -n "$NS" spread --wait=false >/dev/null
no_pods() { [ "$(kc get pods -n "$NS" -l app=spread -o name | wc -l)" -eq 0 ]; }
check "deleting the StatefulSet removes its pods (GC + kwok pod-delete)" wait_for 60 no_pods

# --- 5. MaxUnavailableStatefulSet as configured (1.36: beta, off unless CLUSTER_FEATURE_GATES) -----
expect=0
case ",$(sed -n 's/^CLUSTER_FEATURE_GATES=//p' "$RUN/env")," in *,MaxUnavailableStatefulSet=true,*) expect=1 ;; esac
feature_as_configured() {
  local m
  m="$(kc get --raw /metrics)"  # not piped into grep -q: an early exit would SIGPIPE kubectl
  grep -q "^kubernetes_feature_enabled{name=\"MaxUnavailableStatefulSet\",stage=\"[A-Z]*\"} $expect\$" <<<"$m"
}
check "MaxUnavailableStatefulSet enabled=$expect as configured" feature_as_configured

# --- 6. admission webhook by URL -----------------------------------------------------------------
(
  cd "$TMP"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj "/CN=smoke-ca" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >ext
  openssl req -newkey rsa:2048 -nodes -keyout tls.key -out tls.csr -subj "/CN=127.0.0.1" 2>/dev/null
  openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -out tls.crt -extfile ext 2>/dev/null
)
cat >"$TMP/hook.py" <<'EOF'
# Minimal validating webhook: log each AdmissionReview (one JSON line) and allow it.
import http.server, json, ssl, sys
port, log = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with open(log, "a") as f:
            f.write(json.dumps(review) + "\n")
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                           "response": {"uid": review.get("request", {}).get("uid", ""), "allowed": True}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer(("127.0.0.1", port), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain("tls.crt", "tls.key")
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
EOF
WH_PORT="$(free_port)"
(cd "$TMP" && exec python3 hook.py "$WH_PORT" "$TMP/reviews.log") &
PY_PID=$!
wait_for 15 curl -s -o /dev/null --cacert "$TMP/ca.crt" -X POST -d '{}' "https://127.0.0.1:$WH_PORT/" || true
kc apply -f - >/dev/null <<EOF
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: $WH_NAME}
webhooks:
- name: smoke.lws.test
  admissionReviewVersions: ["v1"]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 5
  namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: $NS}}
  clientConfig:
    url: https://127.0.0.1:$WH_PORT/validate
    caBundle: $(base64 -w0 <"$TMP/ca.crt")
  rules:
  - apiGroups: [""]
    apiVersions: ["v1"]
    operations: ["CREATE"]
    resources: ["configmaps"]
    scope: Namespaced
EOF
# A new webhook configuration reaches the apiserver's admission chain within a moment; retry.
create_cm() { kc create configmap -n "$NS" "smoke-cm-$1" --from-literal=a=b >/dev/null 2>&1; }
seen() { [ -f "$TMP/reviews.log" ] && jq -e --arg n "smoke-cm-$1" 'select(.request.name == $n and .request.kind.kind == "ConfigMap")' "$TMP/reviews.log" >/dev/null; }
called() {
  local i
  for i in 1 2 3 4 5 6 7 8 9 10; do
    create_cm "$i" && seen "$i" && return 0
    sleep 1
  done
  return 1
}
check "the apiserver calls a webhook registered by URL (https://127.0.0.1:$WH_PORT)" called

printf 'smoke: %d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
