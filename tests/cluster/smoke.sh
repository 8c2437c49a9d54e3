#!/usr/bin/env bash
# Smoke test of the running local cluster: scheduling with rack anti-affinity, kwok pod
# lifecycle, StatefulSet controller and garbage collector, the pod-chaos helper, and an admission
# webhook called by URL; with real nodes (REAL_NODE=1), pods on them and a webhook by Service.
# Cleans up after itself; last line "smoke: N passed, M failed".
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

[ -f "$RUN/kubeconfig" ] || die "no cluster; run make cluster-up first"
NS="smoke-$$"
WH_NAME="lws-smoke-webhook"
TMP="$(mktemp -d)"
PY_PIDS=()
passed=0
failed=0

cleanup() {
  local p
  for p in "${PY_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  kc delete validatingwebhookconfiguration "$WH_NAME" "$WH_NAME-svc" --ignore-not-found >/dev/null 2>&1 || true
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
# The hook listens on 127.0.0.1, and with real nodes also on their addresses (section 7).
HOOK_IPS="$(printf '127.0.0.1\n'; cut -d' ' -f2 "$NODES_RUN/nodes" 2>/dev/null | grep -vx 127.0.0.1 || true)"
(
  cd "$TMP"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj "/CN=smoke-ca" 2>/dev/null
  # The apiserver checks the URL's IP, or for a Service the name <service>.<namespace>.svc.
  # shellcheck disable=SC2086  # one address per word
  printf 'subjectAltName=%sDNS:smoke-hook.%s.svc\nextendedKeyUsage=serverAuth\n' \
    "$(printf 'IP:%s,' $HOOK_IPS)" "$NS" >ext
  openssl req -newkey rsa:2048 -nodes -keyout tls.key -out tls.csr -subj "/CN=127.0.0.1" 2>/dev/null
  openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -out tls.crt -extfile ext 2>/dev/null
)
cat >"$TMP/hook.py" <<'EOF'
# Minimal validating webhook on HOST:PORT: log each AdmissionReview (one JSON line, with the
# address it was served on) and allow it.
import http.server, json, ssl, sys
host, port, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with open(log, "a") as f:
            f.write(json.dumps(dict(review, server=host)) + "\n")
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                           "response": {"uid": review.get("request", {}).get("uid", ""), "allowed": True}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer((host, port), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain("tls.crt", "tls.key")
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
EOF
WH_PORT="$(free_port)"
for ip in $HOOK_IPS; do
  (cd "$TMP" && exec python3 hook.py "$ip" "$WH_PORT" "$TMP/reviews-$ip.log") &
  PY_PIDS+=($!)
  wait_for 15 curl -s -o /dev/null --cacert "$TMP/ca.crt" -X POST -d '{}' "https://$ip:$WH_PORT/" || true
done
# Registers ValidatingWebhookConfiguration NAME (webhook HOOK) for CREATE of RESOURCE in $NS,
# failing closed, reached through CLIENT (a clientConfig's url: or service: line) with the
# smoke CA. Usage: register_webhook NAME HOOK RESOURCE CLIENT
register_webhook() {
  kc apply -f - >/dev/null <<EOF
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: $1}
webhooks:
- name: $2
  admissionReviewVersions: ["v1"]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 5
  namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: $NS}}
  clientConfig:
    $4
    caBundle: $(base64 -w0 <"$TMP/ca.crt")
  rules:
  - apiGroups: [""]
    apiVersions: ["v1"]
    operations: ["CREATE"]
    resources: ["$3"]
    scope: Namespaced
EOF
}
register_webhook "$WH_NAME" smoke.lws.test configmaps "url: https://127.0.0.1:$WH_PORT/validate"
# A new webhook configuration reaches the apiserver's admission chain within a moment; retry.
create_cm() { kc create configmap -n "$NS" "smoke-cm-$1" --from-literal=a=b >/dev/null 2>&1; }
seen() { [ -f "$TMP/reviews-127.0.0.1.log" ] && jq -e --arg n "smoke-cm-$1" 'select(.request.name == $n and .request.kind.kind == "ConfigMap")' "$TMP/reviews-127.0.0.1.log" >/dev/null; }
called() {
  local i
  for i in 1 2 3 4 5 6 7 8 9 10; do
    create_cm "$i" && seen "$i" && return 0
    sleep 1
  done
  return 1
}
check "the apiserver calls a webhook registered by URL (https://127.0.0.1:$WH_PORT)" called

# --- 7. real nodes (REAL_NODE=1 cluster-up) ---------------------------------------------------------
# A hostNetwork pause pod per real node (toleration + nodeSelector, as the controller's chart
# values do) with a Secret volume; then what a controller pod relies on: its ServiceAccount
# token and ca.crt reach the API server at KUBERNETES_SERVICE_HOST:PORT (127.0.0.1), the API
# server reaches the kubelet (logs), and a webhook Service is called at its pods' 127.0.0.x
# endpoints (aggregator routing). The pods' server is played by the hook above, listening on
# each node's address: a hostNetwork pod shares exactly that network.
if [ -s "$NODES_RUN/nodes" ]; then
  API_PORT="$(sed -n 's/^LWS_APISERVER_PORT=//p' "$RUN/env")"
  kc create secret generic -n "$NS" smoke-secret --from-literal=word=loopback >/dev/null
  while read -r node ip _; do
    kc apply -n "$NS" -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $node, labels: {app: smoke-real}}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  nodeSelector: {$REAL_NODE_LABEL: "true", kubernetes.io/hostname: $node}
  tolerations: [{key: $REAL_NODE_LABEL, operator: Equal, value: "true", effect: NoSchedule}]
  containers:
  - name: pause
    image: $PAUSE_IMAGE
    imagePullPolicy: Never
    env:
    - {name: KUBERNETES_SERVICE_HOST, value: 127.0.0.1}
    - {name: KUBERNETES_SERVICE_PORT, value: "$API_PORT"}
    volumeMounts: [{name: secret, mountPath: /etc/smoke-secret, readOnly: true}]
  volumes: [{name: secret, secret: {secretName: smoke-secret}}]
EOF
  done <"$NODES_RUN/nodes"

  # The pause process of pod $1 (its container's task pid, from the node's containerd).
  pause_pid() {
    local id node i
    id="$(kc get pod -n "$NS" "$1" -o jsonpath='{.status.containerStatuses[0].containerID}')"
    node="$(kc get pod -n "$NS" "$1" -o jsonpath='{.spec.nodeName}')"
    i="${node##*-}"
    ctr --address "$NODES_RUN/$i/containerd.sock" -n k8s.io tasks ls | awk -v id="${id#containerd://}" '$1 == id { print $2 }'
  }
  running_at() {
    [ "$(kc get pod -n "$NS" "$1" -o jsonpath='{.status.phase} {.spec.nodeName} {.status.podIP}')" = "Running $1 $2" ]
  }
  secret_mounted() {
    local pid; pid="$(pause_pid "$1")"
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/root/etc/smoke-secret/word")" = loopback ]
  }
  # As a client in the pod would: its env, its token and CA, over its (the host's) network.
  token_reaches_apiserver() {
    local pid sa env host port who
    pid="$(pause_pid "$1")"; sa="/proc/$pid/root/var/run/secrets/kubernetes.io/serviceaccount"
    env="$(tr '\0' '\n' <"/proc/$pid/environ")"
    host="$(sed -n 's/^KUBERNETES_SERVICE_HOST=//p' <<<"$env")"
    port="$(sed -n 's/^KUBERNETES_SERVICE_PORT=//p' <<<"$env")"
    who="$(curl -sf --cacert "$sa/ca.crt" -H "Authorization: Bearer $(cat "$sa/token")" \
      -H 'Content-Type: application/json' -X POST \
      -d '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}' \
      "https://$host:$port/apis/authentication.k8s.io/v1/selfsubjectreviews" | jq -r .status.userInfo.username)"
    [ "$host:$port" = "127.0.0.1:$API_PORT" ] && [ "$who" = "system:serviceaccount:$NS:default" ]
  }
  while read -r node ip _; do
    check "$node: hostNetwork pause pod Running at $ip" wait_for 120 running_at "$node" "$ip"
    check "$node: the Secret volume is mounted in the container" secret_mounted "$node"
    check "$node: the pod's token + ca.crt reach https://127.0.0.1:$API_PORT as its ServiceAccount" token_reaches_apiserver "$node"
    check "$node: kubectl logs reaches the kubelet" kc logs -n "$NS" "$node"
  done <"$NODES_RUN/nodes"

  # A webhook by Service, backed by the two pods (endpoints 127.0.0.1 and 127.0.0.2).
  kc apply -n "$NS" -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata: {name: smoke-hook}
spec:
  selector: {app: smoke-real}
  ports: [{name: https, port: 443, targetPort: $WH_PORT}]
EOF
  endpoints_loopback() {
    [ "$(kc get endpointslices -n "$NS" -l kubernetes.io/service-name=smoke-hook \
      -o jsonpath='{range .items[*].endpoints[*]}{.addresses[0]}{"\n"}{end}' | sort | tr '\n' ' ')" = \
      "$(cut -d' ' -f2 "$NODES_RUN/nodes" | sort | tr '\n' ' ')" ]
  }
  check "the Service's EndpointSlice lists the real nodes' 127.0.0.x" wait_for 30 endpoints_loopback
  register_webhook "$WH_NAME-svc" smoke-svc.lws.test secrets \
    "service: {namespace: $NS, name: smoke-hook, port: 443, path: /validate}"
  # Both endpoints answer, so both get called: count distinct server addresses in the log.
  svc_called() {
    local i
    for i in $(seq 1 20); do
      kc create secret generic -n "$NS" "smoke-svc-$i" --from-literal=a=b >/dev/null 2>&1 || true
      [ "$(jq -r 'select(.request.kind.kind == "Secret") | .server' "$TMP"/reviews-*.log 2>/dev/null | sort -u | wc -l)" -eq "$(wc -l <"$NODES_RUN/nodes")" ] && return 0
      sleep 0.5
    done
    return 1
  }
  check "the apiserver calls a webhook Service at each endpoint 127.0.0.x (aggregator routing)" svc_called
fi

printf 'smoke: %d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
