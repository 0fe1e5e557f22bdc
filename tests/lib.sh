# Shared helpers for shell test suites: source it, then call pass/fail/skip.
# Each prints one result line that tests/run-all.sh counts.
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: ${2:-failed}"; }
skip() { echo "SKIP $1: ${2:-skipped}"; }
need_root() { [ "$(id -u)" -eq 0 ]; }
# need_cmd NAME...: true when every command exists.
need_cmd() { local c; for c in "$@"; do command -v "$c" >/dev/null 2>&1 || return 1; done; }

# veth_pair UNS UIF KNS KIF KIP [NQ]: namespaces UNS and KNS joined by a
# veth with NQ queues each way (default 1): UIF in UNS (usnet's end, no
# address), KIF at KIP/24 in KNS (the kernel's).  Neither end offloads
# transmit checksums: a veth peer would send CHECKSUM_PARTIAL frames
# (src/netif/README.md).
veth_pair() {
    local uns=$1 uif=$2 kns=$3 kif=$4 kip=$5 nq=${6:-1}
    ip netns add "$uns" && ip netns add "$kns" || return 1
    ip link add "$uif" netns "$uns" numtxqueues "$nq" numrxqueues "$nq" type veth \
        peer name "$kif" netns "$kns" numtxqueues "$nq" numrxqueues "$nq" || return 1
    ip -n "$uns" link set lo up && ip -n "$kns" link set lo up || return 1
    ip -n "$kns" addr add "$kip/24" dev "$kif" || return 1
    ip -n "$uns" link set "$uif" up && ip -n "$kns" link set "$kif" up || return 1
    ip netns exec "$kns" ethtool -K "$kif" tx off >/dev/null || return 1
    ip netns exec "$uns" ethtool -K "$uif" tx off >/dev/null || return 1
}

# ns_stop NS: end every process in namespace NS (TERM, then KILL 0.2 s later).
ns_stop() {
    local pid
    for pid in $(ip netns pids "$1" 2>/dev/null); do kill "$pid" 2>/dev/null; done
    sleep 0.2
    for pid in $(ip netns pids "$1" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
}
