#!/usr/bin/env bash
# netif test suite: memwire (one process, two, fork, shared with an exec'd
# process), impair, pcap, usnet_netif_open errors, and (as root, in private
# network namespaces) tap, afpacket, dpdk and afxdp against the kernel across
# a veth pair (tap and afpacket also shared with an exec'd process).
# Prints one PASS/FAIL/SKIP line per test.
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh

T=build/netif/netif_test
TS=build/netif/netif_test_san
tmp=$(mktemp -d /tmp/netif-test.XXXXXX)
NS=""
cleanup() {
    local n
    for n in $NS; do ip netns del "$n" 2>/dev/null; done
    rm -rf "$tmp"
    rm -f /dev/shm/usnet-memwire-netif-$$-*
}
trap cleanup EXIT

# run NAME TIMEOUT CMD...: PASS when CMD exits 0 in time, else FAIL with its
# last line of output.
run() {
    local name=$1 t=$2; shift 2
    local out rc
    out=$(timeout "$t" "$@" 2>&1); rc=$?
    if [ $rc -eq 0 ]; then pass "$name"
    elif [ $rc -eq 124 ]; then fail "$name" "timed out after ${t}s"
    else fail "$name" "$(printf '%s\n' "$out" | grep -v '^$' | tail -1)"
    fi
}

for bin in "$T" "$TS"; do
    [ -x "$bin" ] || { fail netif-build "$bin missing (run make test)"; exit 0; }
done

# --- memwire ---------------------------------------------------------------
# The tx defer wrapper (unit test, sanitizers on): its own PASS/FAIL lines.
if [ -x build/netif/tx_defer_test ]; then
    timeout 20 build/netif/tx_defer_test || echo "FAIL tx_defer: the unit test exited with status $?"
else
    skip tx_defer "build/netif/tx_defer_test is not built (make test builds it)"
fi
run memwire-pair 30 "$T" pair
run memwire-pair-asan 60 "$TS" pair
run memwire-pair-jumbo 30 "$T" pair frame=9018
run memwire-pair-64k 60 "$T" pair frame=65536,ring=64
run memwire-fork 30 "$T" fork
run memwire-threads 60 "$T" threads 300000
run memwire-threads-asan 60 "$TS" threads 50000
run memwire-fork-asan 60 "$TS" fork

# Two processes: the receiver sleeps on its wait fd whenever the wire is empty.
proc_test() {
    local name=$1 bin=$2 count=$3 opts=${4:-}
    local wire=netif-$$-$name
    timeout 40 "$bin" proc "$wire" 1 "$count" $opts >"$tmp/$name.1" 2>&1 &
    local pid=$!
    timeout 40 "$bin" proc "$wire" 0 "$count" $opts >"$tmp/$name.0" 2>&1
    local rc0=$?
    wait $pid
    local rc1=$?
    if [ $rc0 -ne 0 ] || [ $rc1 -ne 0 ]; then
        fail "$name" "sender rc=$rc0 receiver rc=$rc1: $(tail -1 "$tmp/$name.0") $(tail -1 "$tmp/$name.1")"
    elif ls /dev/shm/usnet-memwire-"$wire"* >/dev/null 2>&1; then
        fail "$name" "wire files left in /dev/shm"
    else
        pass "$name"
    fi
}
proc_test memwire-2proc "$T" 50000
proc_test memwire-2proc-asan "$TS" 5000
proc_test memwire-2proc-jumbo "$T" 5000 frame=9018

# One end of a pair handed to an exec'd process (usnet_netif_share): both
# processes ping the other end's reflector on that end, taking turns.
run memwire-share 60 "$T" share memwire pair "" 10.0.0.1 10.0.0.2 300
run memwire-share-asan 90 "$TS" share memwire pair "" 10.0.0.1 10.0.0.2 300
run netif-share-errors-asan 30 "$TS" share-errors

run netif-open-errors 20 "$T" open-errors
run netif-rss-toeplitz 10 "$T" toeplitz
run netif-open-errors-asan 30 "$TS" open-errors

# --- impair ----------------------------------------------------------------
spec="loss=0.1,reorder=0.05,dup=0.05,corrupt=0.01,seed=7"
a=$(timeout 30 "$T" impair-trace "$spec" 5000 2>&1)
b=$(timeout 30 "$T" impair-trace "$spec" 5000 2>&1)
c=$(timeout 30 "$T" impair-trace "${spec%seed=7}seed=8" 5000 2>&1)
if [ -z "$a" ] || [ "${a#digest}" = "$a" ]; then fail impair-determinism "no trace: $a"
elif [ "$a" != "$b" ]; then fail impair-determinism "same seed, different outcome: '$a' vs '$b'"
elif [ "$a" = "$c" ]; then fail impair-determinism "different seeds, same outcome: '$a'"
else pass impair-determinism
fi
run impair-spec-fuzz-asan 60 "$TS" spec-fuzz 200000
run impair-rates 60 "$T" impair-rates
run impair-rates-asan 120 "$TS" impair-rates
bad_ok=1 bad_why=""
for s in "loss=2" "loss=-0.1" "loss" "=0.1" "foo=1" "xx:loss=0.1" "delay=5parsecs" \
         "loss=0.1," "" "rx:seed=3" "loss=abc" "dup=50%%" "loss=0.1,,dup=0.1"; do
    if ! out=$(timeout 10 "$T" impair-bad "$s" 2>&1); then
        bad_ok=0; bad_why="spec '$s': $out"; break
    fi
done
if [ $bad_ok -eq 1 ]; then pass impair-bad-spec; else fail impair-bad-spec "$bad_why"; fi

# --- pcap ------------------------------------------------------------------
if ! need_cmd tshark; then
    skip pcap-tshark "tshark not installed"
else
    pc=$tmp/cap.pcap
    if ! out=$(timeout 20 "$T" pcap "$pc" 2>&1); then
        fail pcap-tshark "writer failed: $out"
    else
        fields=$(timeout 30 tshark -r "$pc" -T fields -e frame.protocols 2>&1 >"$tmp/fields" |
                 grep -v 'Running as user' >"$tmp/tshark.err"; cat "$tmp/fields")
        total=$(printf '%s\n' "$fields" | grep -c .)
        arp=$(printf '%s\n' "$fields" | grep -c ':arp$')
        icmp=$(printf '%s\n' "$fields" | grep -c ':icmp')
        udp=$(printf '%s\n' "$fields" | grep -c ':udp')
        if [ -s "$tmp/tshark.err" ]; then fail pcap-tshark "tshark: $(head -1 "$tmp/tshark.err")"
        elif [ "$total" -ne 8 ] || [ "$arp" -ne 3 ] || [ "$icmp" -ne 2 ] || [ "$udp" -ne 3 ]; then
            fail pcap-tshark "want 8 frames (3 arp, 2 icmp, 3 udp), got $total ($arp, $icmp, $udp)"
        else
            pass pcap-tshark
        fi
    fi
fi

# --- root: tap, afpacket, afxdp in private namespaces -----------------------
ROOT_TESTS="dpdk-ping dpdk-ping-afxdp dpdk-queues dpdk-burst tap-ping tap-ping-csum tap-fork-shared tap-share tap-share-csum-asan
 afpacket-share afpacket-share-asan afpacket-share-2q afpacket-fork-shared afpacket-ping afpacket-ping-v3 afpacket-fanout afpacket-ping-asan afpacket-burst afpacket-rss afpacket-arp-queues-2 afpacket-arp-queues-4 afxdp-ping afxdp-ping-asan
 afxdp-ping-skb afxdp-fork-shared afxdp-queues afxdp-arp-queues-2 afxdp-arp-queues-4 afxdp-burst afxdp-burst-skb afxdp-fill-short afxdp-fill-short-asan afxdp-coexist afxdp-sigkill afxdp-orphan afxdp-error-attached
 afxdp-share-exec afxdp-share-exec-asan afxdp-share-exec-2q afxdp-share-exec-4q-asan afxdp-error-veth-csum afxdp-error-mtu"
if ! need_root; then
    for t in $ROOT_TESTS; do skip $t "needs root"; done
    exit 0
fi
if ! need_cmd ip ethtool; then
    for t in $ROOT_TESTS; do skip $t "iproute2 or ethtool missing"; done
    exit 0
fi

# A fresh namespace with a persistent TAP whose kernel side is 10.213.0.1.
tap_test() {
    local name=$1 opts=$2 env=${3:-}
    local ns=netif-$$-$name tap=ntap$$
    NS="$NS $ns"
    if ! ip netns add "$ns" 2>"$tmp/err"; then skip "$name" "cannot create a network namespace: $(cat "$tmp/err")"; return; fi
    if [ ! -e /dev/net/tun ]; then skip "$name" "/dev/net/tun missing"; ip netns del "$ns"; return; fi
    local tapflags=""
    [ -n "$opts" ] && tapflags="vnet_hdr"
    ip netns exec "$ns" ip link set lo up
    ip netns exec "$ns" ip tuntap add dev "$tap" mode tap $tapflags
    ip netns exec "$ns" ip addr add 10.213.0.1/24 dev "$tap"
    ip netns exec "$ns" ip link set "$tap" up
    run "$name" 30 ip netns exec "$ns" env $env "${BIN:-$T}" ping tap "$tap" "$opts" 10.213.0.2 10.213.0.1
    ip netns del "$ns"
}
tap_test tap-ping ""
tap_test tap-ping-csum "csum"
# A forked child uses the inherited netif (ARP of its own), then the parent.
BIN=$TS tap_test tap-fork-shared "" NETIF_TEST_FORK_SHARED=1

# The TAP created by the owner's open, shared with an exec'd process that
# pings the kernel with it while the owner does too; the owner's close must
# remove the device although a copy of its fd is still held.
tap_share() {
    local name=$1 bin=$2 opts=$3
    local ns=netif-$$-$name
    NS="$NS $ns"
    if ! ip netns add "$ns" 2>"$tmp/err"; then skip "$name" "cannot create a network namespace: $(cat "$tmp/err")"; return; fi
    if [ ! -e /dev/net/tun ]; then skip "$name" "/dev/net/tun missing"; ip netns del "$ns"; return; fi
    ip netns exec "$ns" ip link set lo up
    run "$name" 60 ip netns exec "$ns" "$bin" share tap "nsh$$" "$opts" 10.213.0.2 10.213.0.1 300
    ip netns del "$ns"
}
tap_share tap-share "$T" ""
tap_share tap-share-csum-asan "$TS" csum

# Two namespaces joined by a veth pair: usnet's side (no kernel address) in
# $1-u, the kernel at 10.214.0.1 in $1-k.  Sets VU (usnet's interface) and NSU.
veth_setup() {
    local base=$1 nq=${2:-1}
    NSU=$base-u NSK=$base-k VU=nu$$ VK=nk$$
    NS="$NS $NSU $NSK"
    ip netns add "$NSU" && ip netns add "$NSK" || return 1
    ip link add "$VU" netns "$NSU" numtxqueues "$nq" numrxqueues "$nq" type veth \
        peer name "$VK" netns "$NSK" numtxqueues "$nq" numrxqueues "$nq" || return 1
    ip -n "$NSU" link set lo up; ip -n "$NSK" link set lo up
    ip -n "$NSU" link set "$VU" up
    ip -n "$NSK" addr add 10.214.0.1/24 dev "$VK"
    ip -n "$NSK" link set "$VK" up
    # A veth sends CHECKSUM_PARTIAL frames unless told to checksum itself.
    ip netns exec "$NSK" ethtool -K "$VK" tx off >/dev/null
}
veth_teardown() { ip netns del "$NSU" 2>/dev/null; ip netns del "$NSK" 2>/dev/null; }

# veth_ping NAME BACKEND OPTIONS [ENV...]: ARP + 50 pings to the kernel.
# VETH_QUEUES sets the veth's queue count.
veth_ping() {
    local name=$1 be=$2 opts=$3; shift 3
    if ! veth_setup "netif-$$-$name" "${VETH_QUEUES:-1}" 2>"$tmp/err"; then
        skip "$name" "cannot build the veth pair: $(head -1 "$tmp/err")"; veth_teardown; return
    fi
    run "$name" 60 ip netns exec "$NSU" env "$@" "${BIN:-$T}" ping "$be" "$VU" "$opts" 10.214.0.2 10.214.0.1
    veth_teardown
}
# Frames must not wait for a block timeout: median round trip well under 1 ms.
veth_ping afpacket-ping afpacket "" NETIF_TEST_MAX_MEDIAN_US=900
veth_ping afpacket-ping-v3 afpacket "rx=v3,tov=1"
BIN=$TS veth_ping afpacket-ping-asan afpacket "" NETIF_TEST_QUEUES=2
veth_ping afpacket-fanout afpacket "" NETIF_TEST_QUEUES=4
# A forked child uses the inherited netif (ARP of its own, with 2 queues the
# reply shared between them), then the parent.
BIN=$TS veth_ping afpacket-fork-shared afpacket "" NETIF_TEST_FORK_SHARED=1 NETIF_TEST_QUEUES=2

# veth_share NAME BIN OPTIONS [ENV...]: the netif shared with an exec'd
# process; both ping the kernel through it; no packet socket is left after.
veth_share() {
    local name=$1 bin=$2 opts=$3; shift 3
    if ! veth_setup "netif-$$-$name" 2>"$tmp/err"; then
        skip "$name" "cannot build the veth pair: $(head -1 "$tmp/err")"; veth_teardown; return
    fi
    run "$name" 60 ip netns exec "$NSU" env "$@" "$bin" share afpacket "$VU" "$opts" 10.214.0.2 10.214.0.1 300
    veth_teardown
}
veth_share afpacket-share "$T" ""
veth_share afpacket-share-asan "$TS" "rx=v3,tov=1"
veth_share afpacket-share-2q "$TS" "" NETIF_TEST_QUEUES=2

# veth_arpq NAME BACKEND OPTIONS NQ: from each of NQ queues an ARP request;
# each queue must see the reply (the device gives it to one queue only).
veth_arpq() {
    local name=$1 be=$2 opts=$3 nq=$4
    if ! veth_setup "netif-$$-$name" "$nq" 2>"$tmp/err"; then
        skip "$name" "cannot build the veth pair: $(head -1 "$tmp/err")"; veth_teardown; return
    fi
    run "$name" 30 ip netns exec "$NSU" "${BIN:-$T}" arp-queues "$be" "$VU" "$opts" 10.214.0.2 10.214.0.1 "$nq"
    veth_teardown
}
veth_arpq afpacket-arp-queues-2 afpacket "" 2
BIN=$TS veth_arpq afpacket-arp-queues-4 afpacket "" 4

# veth_burst NAME BACKEND OPTIONS: 5000 frames in bursts of 64 must all reach
# the kernel's side (its rx_packets counter).
veth_burst() {
    local name=$1 be=$2 opts=$3 before after
    if ! veth_setup "netif-$$-$name" 2>"$tmp/err"; then
        skip "$name" "cannot build the veth pair: $(head -1 "$tmp/err")"; veth_teardown; return
    fi
    before=$(ip netns exec "$NSK" cat /sys/class/net/"$VK"/statistics/rx_packets)
    if ! out=$(ip netns exec "$NSU" timeout 30 "$T" burst "$be" "$VU" "$opts" 10.214.0.2 10.214.0.1 5000 2>&1); then
        fail "$name" "$(printf '%s\n' "$out" | tail -1)"
    else
        after=$(ip netns exec "$NSK" cat /sys/class/net/"$VK"/statistics/rx_packets)
        if [ $((after - before)) -lt 5000 ]; then fail "$name" "peer received $((after - before)) of 5000"
        else pass "$name"; fi
    fi
    veth_teardown
}
veth_burst afpacket-burst afpacket ""

# RSS awareness: 64 UDP flows from the kernel land, over 4 fanout queues, each
# on the queue usnet_netif_flow_queue() names.
afpacket_rss() {
    local name=afpacket-rss mac i
    if ! veth_setup "netif-$$-rss" 2>"$tmp/err"; then
        skip $name "cannot build the veth pair: $(head -1 "$tmp/err")"; veth_teardown; return
    fi
    mac=$(ip -n "$NSU" -o link show "$VU" | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
    ip -n "$NSK" neigh replace 10.214.0.2 lladdr "$mac" dev "$VK" nud permanent
    ip netns exec "$NSU" timeout 20 "$T" flowq afpacket "$VU" "" 10.214.0.2 4 64 >"$tmp/rss.out" 2>&1 &
    local pid=$!
    for i in $(seq 100); do grep -q ready "$tmp/rss.out" && break; sleep 0.1; done
    ip netns exec "$NSK" bash -c 'for p in $(seq 5000 5063); do echo x > /dev/udp/10.214.0.2/$p; done'
    if wait $pid; then pass $name; else fail $name "$(tail -1 "$tmp/rss.out")"; fi
    veth_teardown
}
afpacket_rss

# dpdk (a plugin, built where libdpdk-dev is installed): its net_af_packet
# and net_af_xdp virtual devices over the veth, without hugepages.
if "$T" open-errors 2>/dev/null | grep -q 'backends:.*dpdk'; then
    veth_ping dpdk-ping dpdk ""
    veth_ping dpdk-ping-afxdp dpdk "vdev=net_af_xdp"
    VETH_QUEUES=2 veth_ping dpdk-queues dpdk "" NETIF_TEST_QUEUES=2
    veth_burst dpdk-burst dpdk ""
else
    for t in dpdk-ping dpdk-ping-afxdp dpdk-queues dpdk-burst; do
        skip $t "built without dpdk (libdpdk-dev)"
    done
fi

# afxdp: native and generic mode, several queues, and sharing the interface.
if ! "$T" open-errors 2>/dev/null | grep -q 'backends:.*afxdp'; then
    for t in afxdp-ping afxdp-ping-asan afxdp-ping-skb afxdp-fork-shared afxdp-queues afxdp-arp-queues-2 afxdp-arp-queues-4 afxdp-burst afxdp-burst-skb \
             afxdp-fill-short afxdp-fill-short-asan afxdp-coexist afxdp-sigkill \
             afxdp-share-exec afxdp-share-exec-asan afxdp-share-exec-2q afxdp-share-exec-4q-asan \
             afxdp-error-attached afxdp-error-veth-csum afxdp-error-mtu; do
        skip $t "built without afxdp (libxdp-dev, libbpf-dev, clang)"
    done
    exit 0
fi
veth_ping afxdp-ping afxdp "ip=10.214.0.2" NETIF_TEST_MAX_MEDIAN_US=900
veth_ping afxdp-ping-skb afxdp "mode=skb,ip=10.214.0.2"
# A forked child uses the inherited netif (ARP of its own), then the parent.
BIN=$TS veth_ping afxdp-fork-shared afxdp "ip=10.214.0.2" NETIF_TEST_FORK_SHARED=1
BIN=$TS veth_ping afxdp-ping-asan afxdp "ip=10.214.0.2"
VETH_QUEUES=4 veth_ping afxdp-queues afxdp "ip=10.214.0.2" NETIF_TEST_QUEUES=4
veth_arpq afxdp-arp-queues-2 afxdp "ip=10.214.0.2" 2
BIN=$TS veth_arpq afxdp-arp-queues-4 afxdp "ip=10.214.0.2" 4
veth_burst afxdp-burst afxdp "ip=10.214.0.2"
veth_burst afxdp-burst-skb afxdp "ip=10.214.0.2,mode=skb"

# Sharing with a process that did not fork: the owner shares its netif with
# an exec'd image of the test over a socketpair; both exchange echoes with
# the kernel on the same queues under a process-shared lock, a second
# attacher is SIGKILLed midway, the owner goes on, then closes.  Every frame
# the usnet side sent must reach the kernel's side, and no XDP program may
# stay attached.
afxdp_share() {
    local name=$1 nq=$2 bin=$3 mac before after out sent
    # (the namespaces' names must not contain "xdp": ip link names the peer's)
    if ! veth_setup "netif-$$-share${name#afxdp-share-exec}" "$nq" 2>"$tmp/err"; then
        skip "$name" "cannot build the veth pair: $(head -1 "$tmp/err")"; veth_teardown; return
    fi
    # neither usnet process answers ARP: the kernel knows our MAC beforehand
    mac=$(ip -n "$NSU" -o link show "$VU" | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
    ip -n "$NSK" neigh replace 10.214.0.2 lladdr "$mac" dev "$VK" nud permanent
    before=$(ip netns exec "$NSK" cat /sys/class/net/"$VK"/statistics/rx_packets)
    if ! out=$(ip netns exec "$NSU" timeout 90 "$bin" share afxdp "$VU" ip=10.214.0.2 10.214.0.2 10.214.0.1 "$nq" 2>&1); then
        fail "$name" "$(printf '%s\n' "$out" | grep -v '^$' | tail -1)"
    else
        after=$(ip netns exec "$NSK" cat /sys/class/net/"$VK"/statistics/rx_packets)
        sent=$(printf '%s\n' "$out" | sed -n 's/^sent \([0-9]*\)$/\1/p')
        printf '%s\n' "$out" | grep -v '^sent ' | sed "s/^/    $name: /"
        if [ -z "$sent" ]; then fail "$name" "no count of frames sent: $(printf '%s\n' "$out" | tail -1)"
        elif [ $((after - before)) -lt "$sent" ]; then fail "$name" "the kernel's side received $((after - before)) of $sent frames"
        elif ip -n "$NSU" link show "$VU" | grep -q 'prog/xdp'; then fail "$name" "XDP program left attached after the owner closed"
        else pass "$name"
        fi
    fi
    veth_teardown
}
afxdp_share afxdp-share-exec 1 build/netif/netif_share_test
afxdp_share afxdp-share-exec-asan 1 build/netif/netif_share_test_san
afxdp_share afxdp-share-exec-2q 2 build/netif/netif_share_test
afxdp_share afxdp-share-exec-4q-asan 4 build/netif/netif_share_test_san
# Every rx frame released while the fill ring looks full (its consumer index
# published late, as the kernel does for a moment after each rx batch): the
# backend keeps them, and all come back once there is room, none twice.
# frames=1024: a fill ring of 512 entries or more can be sized from its mapping.
veth_fill_short() {
    local name=$1
    if ! veth_setup "netif-$$-$name" 2>"$tmp/err"; then
        skip "$name" "cannot build the veth pair: $(head -1 "$tmp/err")"; veth_teardown; return
    fi
    run "$name" 60 ip netns exec "$NSU" "${BIN:-$T}" fill-short afxdp "$VU" "ip=10.214.0.2,frames=1024" \
        10.214.0.2 10.214.0.1
    veth_teardown
}
veth_fill_short afxdp-fill-short
BIN=$TS veth_fill_short afxdp-fill-short-asan

# Coexistence: the kernel keeps its own address (10.214.0.3) on usnet's
# interface; while usnet holds the interface, the kernel still answers ping
# there, and after usnet closes, no XDP program is left behind.
afxdp_coexist() {
    local name=afxdp-coexist
    if ! veth_setup "netif-$$-coex" 2>"$tmp/err"; then
        skip $name "cannot build the veth pair: $(head -1 "$tmp/err")"; veth_teardown; return
    fi
    ip -n "$NSU" addr add 10.214.0.3/24 dev "$VU"
    ip netns exec "$NSU" env NETIF_TEST_HOLD_MS=3000 timeout 30 "$T" ping afxdp "$VU" ip=10.214.0.2 \
        10.214.0.2 10.214.0.1 >"$tmp/coex.out" 2>&1 &
    local pid=$! i
    for i in $(seq 100); do grep -q rtt "$tmp/coex.out" && break; sleep 0.1; done
    local kping=1
    grep -q rtt "$tmp/coex.out" && timeout 10 ip netns exec "$NSK" ping -c 3 -i 0.2 -W 1 10.214.0.3 >"$tmp/kping" 2>&1 && kping=0
    wait $pid; local rc=$?
    if [ $rc -ne 0 ]; then fail $name "usnet side failed: $(tail -1 "$tmp/coex.out")"
    elif [ $kping -ne 0 ]; then fail $name "the kernel stopped answering on its own address: $(tail -1 "$tmp/kping")"
    elif ip -n "$NSU" link show "$VU" | grep -q 'xdp'; then fail $name "XDP program left attached after close"
    else pass $name
    fi
    veth_teardown
}
afxdp_coexist

# A usnet process killed by SIGKILL must not leave the interface unusable:
# while it lives a second open is refused, once it is gone one succeeds.
afxdp_sigkill() {
    local name=afxdp-sigkill
    if ! veth_setup "netif-$$-kill" 2>"$tmp/err"; then
        skip $name "cannot build the veth pair: $(head -1 "$tmp/err")"; veth_teardown; return
    fi
    ip netns exec "$NSU" env NETIF_TEST_HOLD_MS=20000 timeout 30 "$T" ping afxdp "$VU" ip=10.214.0.2 \
        10.214.0.2 10.214.0.1 >"$tmp/kill.out" 2>&1 &
    local pid=$! i out
    for i in $(seq 100); do grep -q rtt "$tmp/kill.out" && break; sleep 0.1; done
    if ! grep -q rtt "$tmp/kill.out"; then
        fail $name "first process did not come up: $(tail -1 "$tmp/kill.out")"
    elif out=$(ip netns exec "$NSU" timeout 20 "$T" ping afxdp "$VU" ip=10.214.0.2 10.214.0.2 10.214.0.1 2>&1); then
        fail $name "a second open succeeded while the first process lives"
    elif ! printf '%s' "$out" | grep -q "already has an XDP program"; then
        fail $name "second open failed oddly: $out"
    elif ! printf '%s' "$out" | grep -q "usnet process"; then
        fail $name "the message does not name the live usnet process: $out"
    else
        pkill -KILL -P $pid 2>/dev/null; kill -KILL $pid 2>/dev/null; wait $pid 2>/dev/null
        sleep 0.2
        if out=$(ip netns exec "$NSU" timeout 20 "$T" ping afxdp "$VU" ip=10.214.0.2 10.214.0.2 10.214.0.1 2>&1); then
            pass $name
        else
            fail $name "open after SIGKILL: $(printf '%s\n' "$out" | tail -1)"
        fi
    fi
    kill -KILL $pid 2>/dev/null; wait $pid 2>/dev/null
    veth_teardown
}
afxdp_sigkill

# A usnet program left attached through netlink by a process that is gone
# (older builds, kernels without XDP links) is replaced; one with no known
# owner (afxdp-error-attached below) is not.
afxdp_orphan() {
    local name=afxdp-orphan out
    if [ ! -x build/netif/xdp_orphan ]; then skip $name "build/netif/xdp_orphan not built"; return; fi
    if ! veth_setup "netif-$$-orph" 2>"$tmp/err"; then
        skip $name "cannot build the veth pair: $(head -1 "$tmp/err")"; veth_teardown; return
    fi
    if ! out=$(ip netns exec "$NSU" timeout 10 build/netif/xdp_orphan build/netif/usnet_steer.bpf.o "$VU" 2>&1); then
        fail $name "cannot leave an orphan program: $out"
    elif ! ip -n "$NSU" link show "$VU" | grep -q 'xdp'; then
        fail $name "the orphan program is not attached"
    elif out=$(ip netns exec "$NSU" timeout 20 "$T" ping afxdp "$VU" ip=10.214.0.2 10.214.0.2 10.214.0.1 2>&1); then
        if ip -n "$NSU" link show "$VU" | grep -q 'xdp'; then fail $name "XDP program left attached after close"
        else pass $name; fi
    else
        fail $name "open over an orphan: $(printf '%s\n' "$out" | tail -1)"
    fi
    veth_teardown
}
afxdp_orphan

# expect_open_fail NAME NEEDLE NETNS IFACE OPTIONS: opening must fail with a
# one-line message containing NEEDLE.
expect_open_fail() {
    local name=$1 needle=$2 ns=$3 ifc=$4 opts=$5 out
    if out=$(ip netns exec "$ns" timeout 20 "$T" ping afxdp "$ifc" "$opts" 10.214.0.2 10.214.0.1 2>&1); then
        fail "$name" "opened although it should not"
    elif ! printf '%s' "$out" | grep -qF -- "$needle"; then
        fail "$name" "message lacks '$needle': $out"
    else
        pass "$name"
    fi
}
if veth_setup "netif-$$-err" 2>"$tmp/err"; then
    ip -n "$NSU" link set dev "$VU" xdp obj build/netif/usnet_steer.bpf.o sec xdp 2>"$tmp/err" ||
        echo "cannot attach with ip: $(head -1 "$tmp/err")" >&2
    expect_open_fail afxdp-error-attached "already has an XDP program" "$NSU" "$VU" ip=10.214.0.2
    ip -n "$NSU" link set dev "$VU" xdp off
    ip -n "$NSU" link set dev "$VU" mtu 3000
    expect_open_fail afxdp-error-mtu "MTU 3000" "$NSU" "$VU" ip=10.214.0.2
    veth_teardown
else
    skip afxdp-error-attached "cannot build the veth pair"; skip afxdp-error-mtu "cannot build the veth pair"
    veth_teardown
fi
# A veth pair inside one namespace, peer still offloading checksums.
nsv=netif-$$-csum; NS="$NS $nsv"
if ip netns add "$nsv" && ip -n "$nsv" link add nc1$$ type veth peer name nc2$$; then
    ip -n "$nsv" link set nc1$$ up; ip -n "$nsv" link set nc2$$ up
    ip netns exec "$nsv" ethtool -K nc2$$ tx on >/dev/null 2>&1
    expect_open_fail afxdp-error-veth-csum "ethtool -K nc2$$ tx off" "$nsv" nc1$$ ip=10.214.0.2
else
    skip afxdp-error-veth-csum "cannot create a namespace with a veth pair"
fi
ip netns del "$nsv" 2>/dev/null
