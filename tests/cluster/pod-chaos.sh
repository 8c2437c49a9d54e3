#!/usr/bin/env bash
# Play a misbehaving kubelet for e2e suites: change a pod's status the way a kubelet would.
#
#   pod-chaos.sh restart-container NS POD [CONTAINER]  restartCount+1, still Running and Ready
#   pod-chaos.sh fail NS POD [CONTAINER]               phase Failed, container terminated (exit 1)
#   pod-chaos.sh not-ready NS POD                      Ready/ContainersReady False, still Running
#   pod-chaos.sh ready NS POD                          undo not-ready
#   pod-chaos.sh kwok-fail NS POD [CONTAINER]          let kwok fail it (chaos stage, ~1 s later)
#   pod-chaos.sh node-not-ready NODE / node-ready NODE kwok chaos stage on a node (KCM then taints)
#
# What kwok overwrites (checked against kwok v0.8.0's stages, which this cluster uses):
#   * pod-ready only selects pods with phase Pending that are not Ready. A Running pod's status is
#     never rewritten, so the patches above stick: a not-ready pod stays not ready until `ready`,
#     restartCount stays bumped, a Failed pod stays Failed (terminal; the apiserver refuses to
#     move it back to Running, so the owner must recreate it).
#   * pod-complete only touches Running pods owned by a Job; pod-delete deletes a pod as soon as it
#     has a deletionTimestamp (no grace period is simulated).
#   * Patching a Pending (not yet Ready) pod is futile: kwok's pod-ready stage makes it Running and
#     Ready again right away. Wait for Running+Ready first (this script refuses otherwise).
# Patches are strategic merges on pods/status, so containerStatuses merge by name and conditions
# by type (a JSON merge patch would replace whole lists).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }

[ -f "$RUN/kubeconfig" ] || die "no cluster ($RUN/kubeconfig missing); run make cluster-up"

pod_field() { kc get pod -n "$1" "$2" -o jsonpath="$3"; }

# The first container unless one is named; refuse unless the pod is Running.
pick_container() {
  local ns="$1" pod="$2" c="${3:-}" phase
  phase="$(pod_field "$ns" "$pod" '{.status.phase}')"
  [ "$phase" = Running ] || die "pod $ns/$pod is $phase, not Running (kwok would undo the change)"
  [ -n "$c" ] || c="$(pod_field "$ns" "$pod" '{.spec.containers[0].name}')"
  echo "$c"
}

patch_status() { kc patch pod -n "$1" "$2" --subresource=status --type=strategic -p "$3" >/dev/null; }

restart_container() {
  local ns="$1" pod="$2" c count image started t
  c="$(pick_container "$ns" "$pod" "${3:-}")"
  count="$(pod_field "$ns" "$pod" "{.status.containerStatuses[?(@.name==\"$c\")].restartCount}")"
  image="$(pod_field "$ns" "$pod" "{.status.containerStatuses[?(@.name==\"$c\")].image}")"
  started="$(pod_field "$ns" "$pod" "{.status.containerStatuses[?(@.name==\"$c\")].state.running.startedAt}")"
  t="$(now)"
  [ -n "$started" ] || started="$t"
  patch_status "$ns" "$pod" "$(jq -cn --arg c "$c" --arg image "$image" --argjson n "$((${count:-0} + 1))" \
    --arg s "$started" --arg t "$t" '{status: {containerStatuses: [{name: $c, image: $image,
      ready: true, started: true, restartCount: $n, state: {running: {startedAt: $t}},
      lastState: {terminated: {exitCode: 1, reason: "Error", startedAt: $s, finishedAt: $t}}}]}}')"
  log "restarted container $c of $ns/$pod (restartCount $((${count:-0} + 1)))"
}

fail_pod() {
  local ns="$1" pod="$2" c image t
  c="$(pick_container "$ns" "$pod" "${3:-}")"
  image="$(pod_field "$ns" "$pod" "{.status.containerStatuses[?(@.name==\"$c\")].image}")"
  t="$(now)"
  patch_status "$ns" "$pod" "$(jq -cn --arg c "$c" --arg image "$image" --arg t "$t" '{status: {
      phase: "Failed", reason: "Error", message: "pod-chaos: container failed",
      conditions: [{type: "Ready", status: "False", reason: "PodFailed", lastTransitionTime: $t},
                   {type: "ContainersReady", status: "False", reason: "PodFailed", lastTransitionTime: $t}],
      containerStatuses: [{name: $c, image: $image, ready: false, started: false,
        state: {terminated: {exitCode: 1, reason: "Error", startedAt: $t, finishedAt: $t}}}]}}')"
  log "failed $ns/$pod"
}

set_ready() {
  local ns="$1" pod="$2" ready="$3" phase t body
  phase="$(pod_field "$ns" "$pod" '{.status.phase}')"
  [ "$phase" = Running ] || die "pod $ns/$pod is $phase, not Running"
  t="$(now)"
  # Every container's ready flag follows the pod condition, as a kubelet's probes would.
  body="$(kc get pod -n "$ns" "$pod" -o json | jq -c --argjson r "$ready" --arg t "$t" '{status: {
      conditions: [{type: "Ready", status: (if $r then "True" else "False" end), lastTransitionTime: $t},
                   {type: "ContainersReady", status: (if $r then "True" else "False" end), lastTransitionTime: $t}],
      containerStatuses: [.status.containerStatuses[] | {name, image, ready: $r}]}}')"
  patch_status "$ns" "$pod" "$body"
  log "$ns/$pod ready=$ready"
}

# kwok's pod-container-running-failed chaos stage reads these annotations and the label.
kwok_fail() {
  local ns="$1" pod="$2" c
  c="$(pick_container "$ns" "$pod" "${3:-}")"
  kc annotate pod -n "$ns" "$pod" --overwrite \
    "pod-container-running-failed.stage.kwok.x-k8s.io/container-name=$c" >/dev/null
  kc label pod -n "$ns" "$pod" --overwrite pod-container-running-failed.stage.kwok.x-k8s.io=true >/dev/null
  log "asked kwok to fail container $c of $ns/$pod"
}

cmd="${1:-}"
shift || true
case "$cmd" in
  restart-container) [ "$#" -ge 2 ] || usage; restart_container "$@" ;;
  fail) [ "$#" -ge 2 ] || usage; fail_pod "$@" ;;
  not-ready) [ "$#" -eq 2 ] || usage; set_ready "$1" "$2" false ;;
  ready) [ "$#" -eq 2 ] || usage; set_ready "$1" "$2" true ;;
  kwok-fail) [ "$#" -ge 2 ] || usage; kwok_fail "$@" ;;
  node-not-ready) [ "$#" -eq 1 ] || usage; kc label node "$1" --overwrite node-not-ready.stage.kwok.x-k8s.io=true >/dev/null ;;
  node-ready) [ "$#" -eq 1 ] || usage; kc label node "$1" node-not-ready.stage.kwok.x-k8s.io- >/dev/null ;;
  *) usage ;;
esac
