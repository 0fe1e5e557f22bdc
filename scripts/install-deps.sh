#!/usr/bin/env bash
# Installs the Debian packages usnet's build, tests and demo need: the union
# of scripts/deps.d/*.txt (one package per line, # comments).  Needs root;
# without it, says which packages are missing and carries on.
set -u
cd "$(dirname "$0")/.."
pkgs=$(cat scripts/deps.d/*.txt 2>/dev/null | sed 's/#.*//' | tr -s ' \n' '\n' | grep -v '^$' | sort -u)
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: not root; missing Debian packages:$missing" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null || apt-get update
apt-get install -y -q --no-install-recommends $missing >/tmp/usnet-apt.log 2>&1 || {
    tail -20 /tmp/usnet-apt.log >&2
    echo "install-deps: apt-get install failed (log: /tmp/usnet-apt.log)" >&2
    exit 1
}
