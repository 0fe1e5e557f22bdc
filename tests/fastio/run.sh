#!/usr/bin/env bash
# Fast packet I/O end to end (root; each part SKIPs with the reason when the
# kernel or the build lacks what it needs):
#  1. the network tests of the stack (tests/net/run.sh: ping, RST, ICMP port
#     unreachable, UDP both ways, 100 MiB each way with usnet-nc as server and
#     as client, plain and impaired) over afpacket, afxdp in native and in skb
#     mode, and dpdk (net_af_packet and net_af_xdp virtual devices, when
#     built), each across a veth pair to the kernel in another namespace;
#  2. coexistence: while usnet-nc serves a transfer over afxdp on an
#     interface, the kernel, with its own address on that same interface,
#     answers ping and serves a kernel TCP server on another port;
#  3. four queues: four stack instances (build/fastio/fastio-mq-echo) share
#     one afpacket netif with four fanout queues on a four-queue veth; 64
#     kernel connections are echoed intact, spread over all four, and no
#     instance sees a segment of a flow another queue owns;
#  4. the same for 64 connections the four instances open to a kernel echo
#     server: each picks local ports whose replies come back to its queue;
#  5. `usnet run` on a four-queue veth (afxdp, then afpacket): an unmodified
#     Python echo server under usnet serves 64 kernel connections, and an
#     unmodified Python client under usnet opens 64 connections to a kernel
#     echo server; every byte comes back, the frames arrived on more than
#     one queue (usnet stat), and the kernel saw usnet's address.
# Usage: tests/fastio/run.sh [PART...]   PART: four_queues four_queues_out
#        run_queues_afxdp run_queues_afpacket coexist afpacket afxdp_native
#        afxdp_skb dpdk (default: all of them)
# Prints one PASS/FAIL/SKIP line per test.
set -u
PARTS=${*:-four_queues four_queues_out run_queues_afxdp run_queues_afpacket coexist afpacket afxdp_native afxdp_skb dpdk}
want() { [[ " $PARTS " == *" $1 "* ]]; }
cd "$(dirname "$0")/../.."
. tests/lib.sh

NC=build/usnet-nc
USNET=build/usnet
MQ=build/fastio/fastio-mq-echo
DPDK_PLUGIN=build/libusnet-netif-dpdk.so
PEERS=tests/fastio/kpeers.py
KPEER=tests/net/kpeer.py
UNS=fastio-$$-u KNS=fastio-$$-k
UIF=fiou$$ KIF=fiok$$
KIP=10.62.0.1          # the kernel, kernel-side namespace
UIP=10.62.0.2          # usnet
HIP=10.62.0.3          # the kernel's own address on usnet's interface (coexistence)
work=$(mktemp -d /tmp/usnet-fastio.XXXXXX)
bgpids=""

cleanup() {
	local p
	for p in $bgpids; do kill "$p" 2>/dev/null; done
	for p in $bgpids; do wait "$p" 2>/dev/null; done
	ip netns del "$UNS" 2>/dev/null
	ip netns del "$KNS" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

sha() { sha256sum < "$1" | cut -c1-64; }

# A veth pair with NQ queues each way between $UNS (usnet's end, $UIF) and
# $KNS (the kernel's end, $KIF at $KIP); neither end offloads transmit
# checksums (see tests/net/run.sh).
veth_up() { veth_pair "$UNS" "$UIF" "$KNS" "$KIF" "$KIP" "$1"; }
veth_down() { ip netns del "$UNS" 2>/dev/null; ip netns del "$KNS" 2>/dev/null; }

# The kernel's side pings usnet until it answers (usnet is up), 10 s at most.
wait_usnet_up() {
	for _ in $(seq 50); do
		ip netns exec "$KNS" ping -c 1 -W 1 -q "$UIP" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# ---- 1. the network tests over each backend ---------------------------------

run_net_tests() {
	local label=$1 backend=$2 opts=$3 mib=$4; shift 4
	tests/net/run.sh --backend "$backend" --backend-options "$opts" --label "$label" --mib "$mib" "$@"
}

# ---- 2. afxdp and the kernel on one interface --------------------------------

# usnet-nc -l serves 24 MiB over afxdp on $UIF, where the kernel has $HIP.
# The data is fed in two halves: the second only after the kernel's own
# services were checked, so the checks happen while usnet's connection is in
# the middle of its transfer.
test_coexist() {
	local name=afxdp_coexist_kernel_same_interface mode=$1 srv kls got
	name=${name}_$mode
	if ! veth_up 1 2>"$work/veth.err"; then
		skip $name "cannot build the veth pair: $(head -1 "$work/veth.err")"; veth_down; return
	fi
	ip -n "$UNS" addr add "$HIP/24" dev "$UIF"
	head -c 12M /dev/urandom > "$work/c1"; head -c 12M /dev/urandom > "$work/c2"
	cat "$work/c1" "$work/c2" > "$work/c"
	rm -f "$work/go"
	( { cat "$work/c1"; for _ in $(seq 300); do [ -e "$work/go" ] && break; sleep 0.1; done
	    cat "$work/c2"; } | timeout 60 ip netns exec "$UNS" "$NC" -l --backend afxdp --iface "$UIF" \
		--backend-options "mode=$mode" --ip "$UIP/24" 0.0.0.0 7000 >/dev/null 2>"$work/co.err"
	  echo $? > "$work/co.rc" ) &
	srv=$!; bgpids="$bgpids $srv"
	if ! wait_usnet_up; then
		fail $name "usnet-nc did not come up: $(head -c 300 "$work/co.err")"; veth_down; return
	fi
	# The kernel client (kernel side) downloads from usnet.
	( timeout 60 ip netns exec "$KNS" python3 "$PEERS" download "$UIP" 7000 "$work/co.part" \
		> "$work/co.sum" 2>"$work/co.kerr" ) &
	bgpids="$bgpids $!"; local cli=$!
	# Wait until the first half has arrived: the transfer is under way.
	for _ in $(seq 200); do
		[ "$(stat -c %s "$work/co.part" 2>/dev/null || echo 0)" -ge 12000000 ] && break; sleep 0.05
	done
	local why=""
	[ "$(stat -c %s "$work/co.part" 2>/dev/null || echo 0)" -ge 12000000 ] || why="usnet's transfer did not start"
	# The kernel's own services on usnet's interface, checked meanwhile.
	if [ -z "$why" ] && ! out=$(timeout 10 ip netns exec "$KNS" ping -c 3 -i 0.2 -W 2 -q "$HIP" 2>&1); then
		why="kernel address $HIP on $UIF did not answer ping: $(tail -1 <<<"$out")"
	fi
	if [ -z "$why" ]; then
		head -c 1M /dev/urandom > "$work/k"
		bg_kls() { timeout 20 ip netns exec "$UNS" python3 "$KPEER" tcp-listen "$HIP" 7001 "$work/k" > "$work/kls.sum" 2>"$work/kls.err"; }
		bg_kls & kls=$!; bgpids="$bgpids $kls"
		for _ in $(seq 100); do ip netns exec "$UNS" ss -Hltn "sport = :7001" | grep -q . && break; sleep 0.05; done
		got=$(timeout 20 ip netns exec "$KNS" python3 "$KPEER" tcp-connect "$HIP" 7001 "$work/k" 2>&1)
		wait "$kls"
		if [ "$got" != "$(sha "$work/k")" ] || [ "$(cat "$work/kls.sum")" != "$(sha "$work/k")" ]; then
			why="kernel TCP server on $HIP:7001 failed: $got $(head -c 200 "$work/kls.err")"
		fi
	fi
	if [ -z "$why" ] && ! kill -0 "$srv" 2>/dev/null; then
		why="usnet-nc ended before the kernel's services were checked"
	fi
	touch "$work/go"
	wait "$cli"; wait "$srv"
	if [ -n "$why" ]; then
		fail $name "$why"
	elif [ "$(cat "$work/co.rc")" != 0 ]; then
		fail $name "usnet-nc exit status $(cat "$work/co.rc"): $(head -c 300 "$work/co.err")"
	elif [ "$(cat "$work/co.sum")" != "$(sha "$work/c")" ]; then
		fail $name "kernel client received different bytes than usnet-nc sent: $(head -c 200 "$work/co.kerr")"
	else
		pass $name
	fi
	veth_down
}

# ---- 3. four queues, four instances -----------------------------------------

# On a veth the queue a frame is received on is chosen by the sender (the
# peer's transmit queue selection), not by a hash the receiver controls, so
# AF_XDP per-queue sockets would see whatever the kernel's XPS picked.
# afpacket's fanout instead hashes every frame with a symmetric program whose
# result usnet_netif_flow_queue() reproduces: that is the "RSS" shown here,
# four instances each owning the flows the hash gives its queue.
test_four_queues() {
	local name=afpacket_4_queues_64_connections srv out
	if [ ! -x "$MQ" ]; then skip $name "$MQ is not built"; return; fi
	if ! veth_up 4 2>"$work/veth.err"; then
		skip $name "cannot build a 4-queue veth pair: $(head -1 "$work/veth.err")"; veth_down; return
	fi
	( timeout 90 ip netns exec "$UNS" "$MQ" afpacket "$UIF" 4 "$UIP/24" 7100 64 80 \
		> "$work/mq.out" 2>&1; echo $? > "$work/mq.rc" ) &
	srv=$!; bgpids="$bgpids $srv"
	if ! wait_usnet_up; then
		fail $name "usnet did not come up: $(head -c 300 "$work/mq.out")"; veth_down; return
	fi
	out=$(timeout 80 ip netns exec "$KNS" python3 "$PEERS" many "$UIP" 7100 64 262144 2>&1); local krc=$?
	wait "$srv"
	local rc; rc=$(cat "$work/mq.rc" 2>/dev/null)
	if [ "$krc" -ne 0 ]; then
		fail $name "kernel clients: $(tail -1 <<<"$out") / $(grep FAIL "$work/mq.out" | head -1)"
	elif [ "$rc" != 0 ]; then
		fail $name "$(grep -m1 FAIL "$work/mq.out" || tail -1 "$work/mq.out") ($(grep -c '^queue' "$work/mq.out") queue lines, status ${rc:-?})"
	else
		pass "$name ($(grep '^queue' "$work/mq.out" | awk '{printf "q%s=%s ", $2, $4}'))"
	fi
	veth_down
}

# Outgoing connections: each instance opens its share of 64 connections to a
# kernel echo server; the local ports it picks must bring the replies back
# to its own queue (the stack asks usnet_netif_flow_queue()), or the
# SYN-ACKs reach an instance that has no such connection.
test_four_queues_out() {
	local name=afpacket_4_queues_64_outgoing_connections kpid out
	if [ ! -x "$MQ" ]; then skip $name "$MQ is not built"; return; fi
	if ! veth_up 4 2>"$work/veth.err"; then
		skip $name "cannot build a 4-queue veth pair: $(head -1 "$work/veth.err")"; veth_down; return
	fi
	( timeout 90 ip netns exec "$KNS" python3 "$PEERS" echo 7101 64 > "$work/kecho.out" 2>&1
	  echo $? > "$work/kecho.rc" ) &
	kpid=$!; bgpids="$bgpids $kpid"
	local i
	for i in $(seq 50); do
		ip netns exec "$KNS" ss -Hltn 'sport = :7101' 2>/dev/null | grep -q . && break
		sleep 0.1
	done
	out=$(timeout 80 ip netns exec "$UNS" "$MQ" afpacket "$UIF" 4 "$UIP/24" "$KIP:7101" 64 60 2>&1); local rc=$?
	wait "$kpid"
	local krc; krc=$(cat "$work/kecho.rc" 2>/dev/null)
	if [ "$rc" -ne 0 ]; then
		fail $name "$(grep -m1 FAIL <<<"$out" || tail -1 <<<"$out") ($(grep -c '^queue' <<<"$out") queue lines, status $rc)"
	elif [ "$krc" != 0 ]; then
		fail $name "kernel echo server: $(tail -1 "$work/kecho.out")"
	else
		pass "$name ($(grep '^queue' <<<"$out" | awk '{printf "q%s=%s ", $2, $4}'))"
	fi
	veth_down
}

# ---- 5. usnet run on four queues ---------------------------------------------

# The counters `usnet stat` shows for the usnet process on $UIF with
# backend $1 (other usnet processes may run on this machine).
usnet_stat_of() {
	"$USNET" stat 2>/dev/null | awk -v RS= -v want="netif $1 $UIF" 'index($0, want "\n")'
}

# Wait until file $1 has a line matching $2 (40 s at most).
wait_line() {
	for _ in $(seq 400); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}

# What usnet stat says of a program under usnet run (its output in $1, its
# backend $2) once its result line is out and its counters were published
# (once a second); the program waits for $work/hold meanwhile.
stat_and_release() {
	local out=$1 backend=$2
	wait_line "$out" " connections " || return 1
	sleep 1.5
	usnet_stat_of "$backend"
}

# Why the counters $1 (usnet stat of one process) fail the test, if they do:
# counter $2 must be at least $3, and frames must have arrived on at least
# two queues.
stat_problem() {
	local st=$1 counter=$2 least=$3 busy v
	[ -n "$st" ] && grep -q '^provider usnet$' <<<"$st" || { echo "usnet stat shows no usnet process on $UIF"; return; }
	v=$(awk -v c="$counter" '$1 == c { print $2 }' <<<"$st")
	[ "${v:-0}" -ge "$least" ] || { echo "usnet stat: $counter ${v:-missing}, expected at least $least"; return; }
	busy=$(awk '$1 ~ /^rx_frames_queue_/ && $2 > 0' <<<"$st" | wc -l)
	[ "$busy" -ge 2 ] || { echo "frames arrived on $busy queue(s), expected at least 2: $(grep rx_frames_queue_ <<<"$st" | tr '\n' ' ')"; return; }
	# One stack instance per queue; connections from the peer (64, spread
	# by their flow hash) reach every instance.
	[ "$(grep -c '^instance_' <<<"$st")" -eq 4 ] || { echo "usnet stat shows $(grep -c '^instance_' <<<"$st") stack instances, expected 4"; return; }
	if [ "$counter" = tcp_accepted ]; then
		busy=$(awk '$1 ~ /^instance_/ { for (i = 2; i < NF; i++) if ($i == "accepted" && $(i + 1) > 0) n++ } END { print n + 0 }' <<<"$st")
		[ "$busy" -eq 4 ] || echo "connections were accepted on $busy of 4 instances: $(instance_counts "$st")"
	fi
}

# "i0=A/C ...": connections each instance accepted / connected.
instance_counts() {
	awk '$1 ~ /^instance_/ { a = c = 0; for (i = 2; i < NF; i++) { if ($i == "accepted") a = $(i + 1); if ($i == "connects") c = $(i + 1) }
		sub("instance_", "i", $1); printf "%s%s=%s/%s", sep, $1, a, c; sep = " " }' <<<"$1"
}

# "q0=N q1=N ...": the frames each queue received.
queue_counts() {
	awk '$1 ~ /^rx_frames_queue_/ { sub("rx_frames_queue_", "q", $1); printf "%s%s=%s", sep, $1, $2; sep = " " }' <<<"$1"
}

# An unmodified Python echo server under `usnet run --backend $1` on a
# 4-queue veth; 64 kernel connections from the peer namespace, each echoed.
# On a veth the receiving queue is the sender's transmit queue: the kernel
# client's connections are spread over all four.
test_run_queues_in() {
	local backend=$1 name=usnet_run_${1}_4_queues_64_connections srv out krc st why=""
	if ! veth_up 4 2>"$work/veth.err"; then
		skip $name "cannot build a 4-queue veth pair: $(head -1 "$work/veth.err")"; veth_down; return
	fi
	rm -f "$work/hold" "$work/rin.out"
	( timeout 60 ip netns exec "$UNS" "$USNET" run --backend "$backend" --iface "$UIF" --ip "$UIP/24" -- \
		python3 "$PEERS" echo 7200 64 "$work/hold" > "$work/rin.out" 2>&1; echo $? > "$work/rin.rc" ) &
	srv=$!; bgpids="$bgpids $srv"
	if ! wait_usnet_up; then
		fail $name "usnet run did not come up: $(head -c 300 "$work/rin.out")"; touch "$work/hold"; wait "$srv"; veth_down; return
	fi
	out=$(timeout 50 ip netns exec "$KNS" python3 "$PEERS" many "$UIP" 7200 64 4096 2>&1); krc=$?
	[ "$krc" -eq 0 ] && st=$(stat_and_release "$work/rin.out" "$backend")
	touch "$work/hold"; wait "$srv"
	if [ "$krc" -ne 0 ]; then
		why="kernel clients: $(tail -1 <<<"$out")"
	elif ! grep -q "^echoed 64 connections 262144 bytes from $KIP\$" "$work/rin.out"; then
		why="the echo server under usnet said: $(tail -1 "$work/rin.out")"
	else
		why=$(stat_problem "$st" tcp_accepted 64)
	fi
	[ -z "$why" ] && [ "$(cat "$work/rin.rc" 2>/dev/null)" != 0 ] && why="usnet run exit status $(cat "$work/rin.rc"): $(tail -1 "$work/rin.out")"
	if [ -n "$why" ]; then fail $name "$why"; else pass "$name ($(queue_counts "$st"); accepted/connects $(instance_counts "$st"))"; fi
	veth_down
}

# An unmodified Python client under `usnet run --backend $1` opens 64
# connections to a kernel echo server in the peer namespace, which must see
# usnet's address as their source.  The client runs them all at once from
# one thread with epoll (tests/attach threads_start_sud covers many threads).
test_run_queues_out() {
	local backend=$1 name=usnet_run_${1}_4_queues_64_outgoing_connections kpid cli st why=""
	if ! veth_up 4 2>"$work/veth.err"; then
		skip $name "cannot build a 4-queue veth pair: $(head -1 "$work/veth.err")"; veth_down; return
	fi
	( timeout 60 ip netns exec "$KNS" python3 "$PEERS" echo 7201 64 > "$work/kecho.out" 2>&1
	  echo $? > "$work/kecho.rc" ) &
	kpid=$!; bgpids="$bgpids $kpid"
	for _ in $(seq 50); do
		ip netns exec "$KNS" ss -Hltn 'sport = :7201' 2>/dev/null | grep -q . && break
		sleep 0.1
	done
	rm -f "$work/hold" "$work/rout.out"
	( timeout 60 ip netns exec "$UNS" "$USNET" run --backend "$backend" --iface "$UIF" --ip "$UIP/24" -- \
		python3 "$PEERS" --one-thread many "$KIP" 7201 64 4096 "$work/hold" > "$work/rout.out" 2>&1; echo $? > "$work/rout.rc" ) &
	cli=$!; bgpids="$bgpids $cli"
	st=$(stat_and_release "$work/rout.out" "$backend")
	touch "$work/hold"; wait "$cli"; wait "$kpid"
	if [ "$(cat "$work/rout.rc" 2>/dev/null)" != 0 ]; then
		why="the client under usnet, exit status $(cat "$work/rout.rc" 2>/dev/null): $(tail -1 "$work/rout.out")"
	elif ! grep -q "^64 connections echoed 4096 bytes each from $UIP\$" "$work/rout.out"; then
		why="the client under usnet said: $(tail -1 "$work/rout.out")"
	elif ! grep -q "^echoed 64 connections 262144 bytes from $UIP\$" "$work/kecho.out"; then
		why="the kernel echo server did not see 64 connections from usnet's $UIP: $(tail -1 "$work/kecho.out")"
	else
		why=$(stat_problem "$st" tcp_connects 64)
	fi
	if [ -n "$why" ]; then fail $name "$why"; else pass "$name ($(queue_counts "$st"); accepted/connects $(instance_counts "$st"))"; fi
	veth_down
}

test_run_queues() {
	local backend=$1
	if [ ! -x "$USNET" ] || [ ! -e "$LIBUSNET" ]; then
		skip usnet_run_${backend}_4_queues "usnet run is not part of this build"; return
	fi
	test_run_queues_in "$backend"
	test_run_queues_out "$backend"
}

# ---- run ----------------------------------------------------------------------

ALL_TESTS="afpacket afxdp_native afxdp_skb dpdk_af_packet dpdk_af_xdp afxdp_coexist afpacket_4_queues afpacket_4_queues_out usnet_run_afxdp_4_queues usnet_run_afpacket_4_queues"
if ! need_root; then
	for t in $ALL_TESTS; do skip "$t" "needs root (network namespaces, veth, AF_XDP)"; done
	exit 0
fi
if ! need_cmd ip ethtool ping ss python3 timeout sha256sum; then
	for t in $ALL_TESTS; do skip "$t" "needs ip, ethtool, ping, ss, python3 (Debian: iproute2 ethtool iputils-ping python3)"; done
	exit 0
fi
if [ ! -x "$NC" ]; then
	for t in $ALL_TESTS; do skip "$t" "$NC is not built"; done
	exit 0
fi
# Private copies, so that a rebuild during the run cannot swap them.
cp "$NC" "$work/usnet-nc" && NC=$work/usnet-nc
[ -x "$MQ" ] && cp "$MQ" "$work/fastio-mq-echo" && MQ=$work/fastio-mq-echo
LIBUSNET=build/libusnet.so
if [ -x "$USNET" ] && [ -e "$LIBUSNET" ]; then   # usnet run preloads the library next to it
	cp "$USNET" "$LIBUSNET" "$work/" && USNET=$work/usnet LIBUSNET=$work/libusnet.so
fi

want four_queues && test_four_queues
want four_queues_out && test_four_queues_out
want run_queues_afxdp && test_run_queues afxdp
want run_queues_afpacket && test_run_queues afpacket
want coexist && test_coexist native
want afpacket && run_net_tests afpacket afpacket "" 100
want afxdp_native && run_net_tests afxdp_native afxdp mode=native 100
want afxdp_skb && run_net_tests afxdp_skb afxdp mode=skb 32
if want dpdk && [ -e "$DPDK_PLUGIN" ]; then
	# usnet-nc runs from a private copy: tell it where the plugin is.
	cp "$DPDK_PLUGIN" "$work/" && export USNET_NETIF_DPDK_PLUGIN=$work/${DPDK_PLUGIN##*/}
	run_net_tests dpdk_af_packet dpdk vdev=net_af_packet 32
	run_net_tests dpdk_af_xdp dpdk vdev=net_af_xdp 32
elif want dpdk; then
	skip dpdk_af_packet "built without DPDK (Debian: libdpdk-dev)"
	skip dpdk_af_xdp "built without DPDK (Debian: libdpdk-dev)"
fi
exit 0
