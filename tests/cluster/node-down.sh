#!/usr/bin/env bash
# Stop the real nodes started by node-up.sh and leave nothing of them behind: kubelets, then
# containerds, then whatever still runs in their pods (by cgroup) and their shims, then every
# mount under .cluster/nodes (the kubelet's root-dir bind mount, tmpfs secret volumes, overlay
# rootfs, sandbox shm and netns), the pod cgroups and the nodes' log symlinks; finally the
# directory itself. Safe with no nodes, after a half-finished node-up, and twice in a row.
# Exits non-zero (and removes nothing) if a mount under .cluster/nodes cannot be unmounted.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

[ -d "$NODES_RUN" ] || exit 0

# Pids running executable $2 (a pattern) with the exact argument $1: found even if
# .cluster/pids lost them (a half-finished up). The exe check also skips grep itself.
pids_with_arg() {
  local f pid
  for f in $(grep -lzxF -- "$1" /proc/[0-9]*/cmdline 2>/dev/null || true); do
    pid="${f#/proc/}"; pid="${pid%/cmdline}"
    if runs_exe "$pid" "$2"; then echo "$pid"; fi
  done
}

# TERM, wait up to 10 s, then KILL: every pid in $2... (named $1) that still runs.
stop_all() {
  local name="$1" pid i left
  shift
  [ "$#" -gt 0 ] || return 0
  log "stopping $name (pid $*)"
  kill -TERM "$@" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    left=0
    for pid in "$@"; do pid_running "$pid" && left=1; done
    [ "$left" = 0 ] && return 0
    sleep 0.1
  done
  log "$name ignored TERM; killing"
  kill -KILL "$@" 2>/dev/null || true
}

# Mount points under $1, deepest first (mountinfo field 5; our paths hold no escapes).
mounts_under() {
  awk -v d="$1/" 'index($5, d) == 1 { print length($5), $5 }' /proc/self/mountinfo | sort -rn | cut -d' ' -f2-
}

# Node $1's pod cgroup in every hierarchy that has it (never a hierarchy's root).
node_cgroups() {
  local name h
  name="$(real_node_cgroup "$1")"
  [ -n "$name" ] || die "no cgroup name for node $1"
  for h in /sys/fs/cgroup/*/"$name"; do [ -d "$h" ] && echo "$h"; done
  return 0
}

indexes="$(find "$NODES_RUN" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort -n)"

# 1. kubelets first, so nothing restarts the pods being torn down.
for i in $indexes; do
  # shellcheck disable=SC2046  # one pid per word
  stop_all "kubelet-$(real_node_name "$i")" $(pids_with_arg "--root-dir=$NODES_RUN/$i/kubelet" "*/kubelet")
done
# 2. containerds: containers and shims outlive them, hence the next steps.
for i in $indexes; do
  # shellcheck disable=SC2046
  stop_all "containerd-$(real_node_name "$i")" $(pids_with_arg "$NODES_RUN/$i/containerd/config.toml" /usr/bin/containerd)
done
for i in $indexes; do
  # 3. every process of the node's pods: whatever runs in its cgroup, in any hierarchy.
  procs=""
  for h in $(node_cgroups "$i"); do
    procs+="$(find "$h" -name cgroup.procs -exec cat {} + 2>/dev/null || true)"$'\n'
  done
  procs="$(echo "$procs" | grep -x '[0-9]\+' | sort -u || true)"
  if [ -n "$procs" ]; then
    log "killing the pods' processes of $(real_node_name "$i"): $(echo "$procs" | wc -l)"
    # shellcheck disable=SC2086
    kill -KILL $procs 2>/dev/null || true
  fi
  # 4. the shims of that containerd (they name its socket in their arguments).
  # shellcheck disable=SC2046
  stop_all "shims of $(real_node_name "$i")" $(pids_with_arg "$NODES_RUN/$i/containerd.sock" "*/containerd-shim*")
done

# 5. mounts, deepest first; a busy one gets a few more tries, then a lazy unmount.
for pass in 1 2 3 4 5; do
  m="$(mounts_under "$NODES_RUN")"
  [ -n "$m" ] || break
  while read -r mp; do
    if [ "$pass" -lt 5 ]; then umount "$mp" 2>/dev/null || true; else umount -l "$mp" 2>/dev/null || true; fi
  done <<<"$m"
  sleep 0.2
done
if [ -n "$(mounts_under "$NODES_RUN")" ]; then
  log "still mounted under $NODES_RUN:"; mounts_under "$NODES_RUN" >&2
  die "not removing $NODES_RUN while something is mounted there"
fi

# 6. the pod cgroups (empty now: rmdir, deepest first) and the kubelets' log symlinks.
for i in $indexes; do
  for h in $(node_cgroups "$i"); do
    for ((t = 0; t < 20; t++)); do
      find "$h" -depth -type d -exec rmdir {} + 2>/dev/null || true
      [ -d "$h" ] || break
      sleep 0.25
    done
    if [ -d "$h" ]; then log "WARNING: could not remove cgroup $h"; fi
  done
done
find /var/log/containers -maxdepth 1 -type l -lname "$NODES_RUN/*" -delete 2>/dev/null || true

# --one-file-system: never follow into anything mounted after the check above.
rm -rf --one-file-system "$NODES_RUN"
log "real nodes down"
