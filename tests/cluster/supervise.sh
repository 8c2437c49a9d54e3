#!/usr/bin/env bash
# supervise.sh CMD [ARG...]: run CMD and start it again whenever it exits, as the kubelet does for
# a control plane's static pods. kube-scheduler exits by design when it finds its cache corrupted
# (after an API server restart, see tests/e2e/README.md "Faults"); a real cluster brings it back.
# Back-off doubles from 1 s to 30 s, and starts over after a run of 60 s or more. TERM or INT
# stop the child and then the supervisor (down.sh stops the pid recorded by lib.sh's start).
set -uo pipefail

child=
stop() {
  [ -n "$child" ] && kill -TERM "$child" 2>/dev/null && wait "$child"
  exit 0
}
trap stop TERM INT

backoff=1
while :; do
  started=$SECONDS
  "$@" &
  child=$!
  wait "$child"
  rc=$?
  child=
  if ((SECONDS - started >= 60)); then backoff=1; fi
  echo "supervise.sh: $1 exited with $rc; starting it again in ${backoff}s" >&2
  sleep "$backoff"
  backoff=$((backoff * 2 > 30 ? 30 : backoff * 2))
done
