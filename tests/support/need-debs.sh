#!/usr/bin/env bash
# Installs the Debian packages named on the command line that are not installed yet, so every
# make target can say what it needs: `bash tests/support/need-debs.sh podman umoci`.
# Runs `apt-get update` once first when the package lists are empty or older than a day.
set -euo pipefail
missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
echo "[debs] installing ${missing[*]}" >&2
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -n1)" ]; then
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
