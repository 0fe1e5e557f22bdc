#!/usr/bin/env bash
# Stream integrity under threads: build/stress/stress-streams runs under
# `usnet run` with 8 stream threads (half blocking, half epoll) carrying
# patterned streams to a kernel echo server in a peer namespace, which checks
# them and echoes them back to be checked again, while 3 churn threads
# connect, accept, shut down and close other sockets at random, and close
# sockets other threads are receiving on.  Any corrupted, reordered, crossed
# or lost byte is a FAIL line with the connection and the offset.  The peer
# accepts only connections from usnet's address (the proof that the traffic
# went through usnet).  Needs root (namespaces, veth, TAP).
#
# usage: tests/stress/run.sh [PART...]   PART: afxdp tap afpacket kernel
#   (default: afxdp tap; kernel runs the client on kernel sockets, to check
#   the test itself).  STRESS_SECONDS (default 6): how long each part starts
#   new connections; STRESS_THREADS, STRESS_CHURN: thread counts;
#   STRESS_USNET: another build's usnet (its libusnet.so beside it), e.g. one
#   built with ASan/UBSan (the hook itself cannot be: its page-0 trampoline
#   stores at address 0 on purpose); STRESS_KEEP=1 keeps the logs.
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh

PARTS=${*:-afxdp tap}
SECS=${STRESS_SECONDS:-6}
THREADS=${STRESS_THREADS:-8}
CHURN=${STRESS_CHURN:-3}
BIN=build/stress/stress-streams
USNET=${STRESS_USNET:-build/usnet}
UNS=stress-$$-u KNS=stress-$$-k
UIF=stu$$ KIF=stk$$ TAP=stt$$
KIP=10.66.0.1 UIP=10.66.0.2
PORT=7300 CPORT=7301
work=$(mktemp -d /tmp/usnet-stress.XXXXXX)

cleanup() {
	local ns p
	for ns in "$UNS" "$KNS"; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	done
	[ -n "${STRESS_KEEP:-}" ] && echo "logs kept in $work" || rm -rf "$work"
	"$USNET" stat >/dev/null 2>&1   # drops the statistics files of killed clients
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if ! need_root; then skip stress "needs root for network namespaces"; exit 0; fi
for f in "$BIN" "$USNET" "$(dirname "$USNET")/libusnet.so"; do
	[ -e "$f" ] || { skip stress "$f is not built (make test builds it)"; exit 0; }
done

# usnet's end $UIF in $UNS, the kernel's end $KIF ($KIP) in $KNS; neither
# end offloads transmit checksums (src/netif/README.md).
veth_up() { veth_pair "$UNS" "$UIF" "$KNS" "$KIF" "$KIP"; }

# One namespace; the TAP's kernel side is $KIP, usnet is $UIP behind it.
tap_up() {
	ip netns add "$KNS" || return 1
	ip -n "$KNS" link set lo up || return 1
	ip netns exec "$KNS" ip tuntap add "$TAP" mode tap || return 1
	ip -n "$KNS" addr add "$KIP/24" dev "$TAP" || return 1
	ip -n "$KNS" link set "$TAP" up || return 1
}

net_down() { ip netns del "$UNS" 2>/dev/null; ip netns del "$KNS" 2>/dev/null; }

# run_part NAME CLIENT_NS EXPECT_SRC CLIENT_PREFIX...: the peer in $KNS, the
# client in CLIENT_NS behind CLIENT_PREFIX (the usnet run command, or nothing).
run_part() {
	local name=$1 cns=$2 src=$3; shift 3
	local limit=$((SECS + 25)) ppid prc crc i
	timeout $limit ip netns exec "$KNS" "$BIN" peer "$KIP" $PORT "$src" "$UIP" $CPORT "$SECS" \
		>"$work/$name.peer" 2>&1 &
	ppid=$!
	for i in $(seq 100); do grep -q listening "$work/$name.peer" 2>/dev/null && break; sleep 0.05; done
	timeout $limit ip netns exec "$cns" "$@" "$BIN" client "$KIP" $PORT $CPORT "$SECS" "$THREADS" "$CHURN" \
		>"$work/$name.client" 2>&1
	crc=$?
	wait "$ppid"; prc=$?
	echo "peer status $prc" >>"$work/$name.peer"
	local cl pl
	cl=$(grep '^client: [0-9]' "$work/$name.client" | tail -1)
	pl=$(grep '^peer: [0-9]' "$work/$name.peer" | tail -1)
	if [ $crc -eq 0 ] && [ $prc -eq 0 ] && [ -n "$cl" ] && [ -n "$pl" ] &&
	   ! grep -q '^client: 0 streams' <<<"$cl" && ! grep -q '^peer: 0 streams' <<<"$pl"; then
		pass "$name (${cl#client: }; ${pl#peer: })"
		return
	fi
	local why
	why=$(grep -h 'FAIL' "$work/$name.client" "$work/$name.peer" | head -3 | tr '\n' ' ')
	[ -n "$why" ] || why="client status $crc, peer status $prc: $(tail -c 300 "$work/$name.client" | tr '\n' ' ')"
	fail "$name" "$why"
	# The rest of the failure lines, for whoever reads the log.
	grep -h 'FAIL' "$work/$name.client" "$work/$name.peer" | sed -n '4,20p' | sed 's/^/    /'
}

for part in $PARTS; do
	case $part in
	afxdp | afpacket | kernel)
		name=stress_streams_$part
		if ! veth_up 2>"$work/veth.err"; then
			skip $name "cannot build the veth pair: $(head -1 "$work/veth.err")"; net_down; continue
		fi
		if [ $part = kernel ]; then
			ip -n "$UNS" addr add "$UIP/24" dev "$UIF"
			run_part $name "$UNS" "$UIP"
		else
			if [ $part = afxdp ] && ! grep -q afxdp build/libusnet.so 2>/dev/null; then
				skip $name "this build has no afxdp backend"; net_down; continue
			fi
			run_part $name "$UNS" "$UIP" "$USNET" run --backend $part --iface "$UIF" --ip "$UIP/24" --
		fi
		net_down
		;;
	tap)
		name=stress_streams_tap
		if ! tap_up 2>"$work/tap.err"; then
			skip $name "cannot create the TAP device: $(head -1 "$work/tap.err")"; net_down; continue
		fi
		run_part $name "$KNS" "$UIP" "$USNET" run --backend tap --iface "$TAP" --ip "$UIP/24" --
		net_down
		;;
	*)
		fail "stress_$part" "unknown part (afxdp tap afpacket kernel)"
		;;
	esac
done
