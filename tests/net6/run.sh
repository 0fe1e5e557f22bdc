#!/usr/bin/env bash
# IPv6 network tests of the stack, driven through usnet-nc; the root part
# runs usnet on a TAP device whose kernel side, in a private namespace, is
# the Linux kernel's peer and IPv6 router:
#  - (no root) usnet-nc's IPv6 command-line errors; two usnet-nc over a
#    memwire, 2 MiB each way over IPv6;
#  - DAD refusing an address the kernel already holds (one line naming it);
#  - ping6, RST for a SYN to a closed port, ICMPv6 port unreachable for UDP
#    to a closed port;
#  - 100 MiB each way over IPv6 with usnet-nc as server and as client,
#    plain and with --impair loss=0.02,reorder=0.02; UDP both ways;
#  - a UDP datagram larger than the MTU that the kernel sends in fragments,
#    received whole;
#  - a transfer through the kernel routing onto a link of MTU 1400: its
#    Packet Too Big lowers the stack's MSS, the transfer completes;
#  - crafted packets (scapy, tests/net6/craft6.py): extension header chains
#    of every kind, routing type 0, unknown next header and options, a bad
#    payload length, overlapping and tiny fragments, a first fragment
#    without its UDP header, ND with a bad hop limit or code; each answered
#    or dropped as the RFCs say and counted (usnet-nc --stats), and the
#    stack still answers after them;
#  - tshark reads usnet-nc --pcap's capture of an IPv6 transfer.
# The IPv6 addresses usnet uses exist only on the stack (the kernel holds
# its own on the other side), and each test checks the stack's counters or
# its answers, so what passed went through usnet.
#
# Usage: tests/net6/run.sh [--mib N]   (N MiB each way, default 100)
# Prints one PASS/FAIL/SKIP line per test.
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh

MIB=100
while [ $# -gt 0 ]; do
	case $1 in
	--mib) MIB=$2; shift 2 ;;
	*) echo "usage: $0 [--mib N]" >&2; exit 2 ;;
	esac
done

NC=build/usnet-nc
KPEER=tests/net/kpeer.py
CRAFT=tests/net6/craft6.py
PY=/usr/bin/python3
NS=net6-$$-k           # the kernel: peer and router (the TAP's side)
FNS=net6-$$-f          # a host behind the router's small-MTU link
TAP=usn6$$
RV=n6r$$ FV=n6f$$      # router <-> far host veth ends
UIP=10.66.0.2          # usnet's IPv4 address (usnet-nc wants one)
KIP6=fd00:66::1        # the kernel's address on the TAP link
UIP6=fd00:66::2        # usnet's: only the stack holds it
RIP6=fd00:67::1        # the router's on the far link (MTU 1400)
FIP6=fd00:67::2        # the far host's (MTU 1500: it hands the router
                       # full-size frames, the router cannot forward them)
NCDEV=(--backend tap --iface "$TAP" --ip "$UIP/24" --ip6 "$UIP6/64" --gw6 "$KIP6")
XFER_S=300
work=$(mktemp -d /tmp/usnet-net6.XXXXXX)
bgpids=""

cleanup() {
	local p
	for p in $bgpids; do kill "$p" 2>/dev/null; done
	for p in $bgpids; do wait "$p" 2>/dev/null; done
	ip netns del "$NS" 2>/dev/null
	ip netns del "$FNS" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

sha() { sha256sum < "$1" | cut -c1-64; }
in_ns() { ip netns exec "$NS" "$@"; }
in_fns() { ip netns exec "$FNS" "$@"; }
# stat FILE NAME: a counter from usnet-nc --stats output in FILE (0 if absent).
stat() { awk -v n="$2" '$1 == "usnet-nc:" && $2 == "stat" && $3 == n { v = $4 } END { print v + 0 }' "$1"; }
# Errors of a usnet-nc run for a message: its stderr without the --stats lines.
nc_errors() { grep -v '^usnet-nc: stat ' "$1" | head -c 300 | tr '\n' ' '; }

# The kernel's side: the TAP with its address (nodad: usable at once), the
# far host behind a veth with forwarding on, the link MTU 1400 at the router.
setup() {
	ip netns add "$NS" && ip netns add "$FNS" || return 1
	ip -n "$NS" link set lo up && ip -n "$FNS" link set lo up || return 1
	ip -n "$NS" tuntap add dev "$TAP" mode tap || return 1
	ip -n "$NS" addr add 10.66.0.1/24 dev "$TAP" || return 1
	ip -n "$NS" -6 addr add "$KIP6/64" dev "$TAP" nodad || return 1
	ip -n "$NS" link set "$TAP" up || return 1
	ip link add "$RV" netns "$NS" type veth peer name "$FV" netns "$FNS" || return 1
	ip -n "$NS" link set "$RV" mtu 1400 up && ip -n "$FNS" link set "$FV" up || return 1
	ip -n "$NS" -6 addr add "$RIP6/64" dev "$RV" nodad || return 1
	ip -n "$FNS" -6 addr add "$FIP6/64" dev "$FV" nodad || return 1
	ip -n "$FNS" -6 route add default via "$RIP6" || return 1
	in_ns ethtool -K "$RV" tx off >/dev/null && in_fns ethtool -K "$FV" tx off >/dev/null || return 1
	in_ns sysctl -qw net.ipv6.conf.all.forwarding=1 || return 1
}

# Wait until usnet answers ping6 on its address (DAD done, stack serving).
wait_usnet6_up() {
	for _ in $(seq 60); do
		in_ns ping -6 -c 1 -W 1 -q "$UIP6" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# Wait until no usnet-nc has the TAP open any more (no carrier).
wait_usnet_down() {
	for _ in $(seq 100); do
		ip -n "$NS" link show "$TAP" 2>/dev/null | grep -q NO-CARRIER && return 0
		sleep 0.05
	done
	return 1
}

wait_port() {   # wait_port NS-RUNNER tcp|udp PORT
	local run=$1 flag=-ltn; [ "$2" = udp ] && flag=-lun
	for _ in $(seq 100); do
		$run ss -H $flag "sport = :$3" 2>/dev/null | grep -q . && return 0
		sleep 0.05
	done
	return 1
}

test_arguments() {
	local name=net6_nc_arguments out rc
	out=$("$NC" --backend memwire --iface w:0 --ip 10.66.9.1/24 --ip6 fd00::1/129 fd00::2 80 2>&1 </dev/null); rc=$?
	if [ "$rc" -ne 2 ] || ! grep -q -- "--ip6 wants ADDR/PREFIX" <<<"$out"; then
		fail $name "bad --ip6 prefix: status $rc, message '$out'"; return
	fi
	out=$("$NC" --backend memwire --iface w:0 --ip 10.66.9.1/24 fd00::2 80 2>&1 </dev/null); rc=$?
	if [ "$rc" -ne 2 ] || ! grep -q -- "--ip6" <<<"$out"; then
		fail $name "IPv6 HOST without --ip6: status $rc, message '$out'"; return
	fi
	out=$("$NC" -6 --backend memwire --iface w:0 --ip 10.66.9.1/24 --ip6 fd00::1/64 10.66.9.2 80 2>&1 </dev/null); rc=$?
	if [ "$rc" -ne 2 ] || ! grep -q -- "-6" <<<"$out"; then
		fail $name "-6 with an IPv4 HOST: status $rc, message '$out'"; return
	fi
	pass $name
}

# Two usnet-nc over a two-process memwire (no root), 2 MiB each way over
# IPv6; the listener on :: sees the client's IPv6 address.
test_memwire_pair() {
	local name=net6_memwire_nc_pair_2MiB_each_way wire=n6w$$ srv cli rc0 rc1
	head -c 2M /dev/urandom > "$work/mw.a"; head -c 2M /dev/urandom > "$work/mw.b"
	( timeout 60 "$NC" -v -l --backend memwire --iface "$wire:0" --ip 10.66.200.1/24 \
		--ip6 fd00:66:200::1/64 :: 5000 < "$work/mw.a" 2>"$work/mw.err0"; echo $? > "$work/mw.rc0" ) \
		| sha256sum | cut -c1-64 > "$work/mw.sum0" &
	srv=$!; bgpids="$bgpids $srv"
	# the client once the server listens (its DAD done): a client through
	# its own DAD first would be answered with a reset
	for _ in $(seq 100); do grep -q "listening on" "$work/mw.err0" 2>/dev/null && break; sleep 0.1; done
	( timeout 60 "$NC" --backend memwire --iface "$wire:1" --ip 10.66.200.2/24 \
		--ip6 fd00:66:200::2/64 "[fd00:66:200::1]" 5000 < "$work/mw.b" 2>"$work/mw.err1"; echo $? > "$work/mw.rc1" ) \
		| sha256sum | cut -c1-64 > "$work/mw.sum1" &
	cli=$!; bgpids="$bgpids $cli"
	wait "$cli"; wait "$srv"
	rm -f /dev/shm/usnet-memwire-$wire*
	rc0=$(cat "$work/mw.rc0" 2>/dev/null); rc1=$(cat "$work/mw.rc1" 2>/dev/null)
	if [ "$rc0" != 0 ] || [ "$rc1" != 0 ]; then
		fail $name "exit status server ${rc0:-?} client ${rc1:-?}: $(head -c 300 "$work/mw.err0" "$work/mw.err1" | tr '\n' ' ')"
	elif [ "$(cat "$work/mw.sum0")" != "$(sha "$work/mw.b")" ] || [ "$(cat "$work/mw.sum1")" != "$(sha "$work/mw.a")" ]; then
		fail $name "bytes differ"
	elif ! grep -q "connection from \[fd00:66:200::2\]:" "$work/mw.err0"; then
		fail $name "the server did not see an IPv6 client: $(head -c 200 "$work/mw.err0")"
	else
		pass $name
	fi
}

# The kernel holds $KIP6: DAD finds it taken, usnet-nc refuses to start.
test_dad_duplicate() {
	local name=net6_dad_duplicate_refused out rc
	out=$(timeout 20 ip netns exec "$NS" "$NC" --backend tap --iface "$TAP" --ip "$UIP/24" --ip6 "$KIP6/64" \
		"$KIP6" 9 </dev/null 2>&1); rc=$?
	if [ "$rc" -eq 1 ] && grep -q "IPv6 address $KIP6 is already in use" <<<"$out" \
	   && [ "$(wc -l <<<"$out")" -eq 1 ]; then
		pass $name
	else
		fail $name "status $rc, message '$out'"
	fi
	wait_usnet_down
}

# A usnet-nc listening on port 7 only: ping6, closed TCP and UDP ports.
test_probes() {
	local resp out
	timeout 60 ip netns exec "$NS" "$NC" -l "${NCDEV[@]}" --stats :: 7 </dev/null >/dev/null 2>"$work/probe.err" &
	resp=$!; bgpids="$bgpids $resp"
	if ! wait_usnet6_up; then
		fail net6_usnet_up "usnet-nc did not answer ping6 on $UIP6: $(nc_errors "$work/probe.err")"
		return 1
	fi
	pass net6_ping6_answered
	if out=$(timeout 20 ip netns exec "$NS" $PY "$KPEER" tcp-refused "$UIP6" 9 2>&1); then
		pass net6_tcp_syn_closed_port_gets_rst
	else
		fail net6_tcp_syn_closed_port_gets_rst "$out"
	fi
	if out=$(timeout 20 ip netns exec "$NS" $PY "$KPEER" udp-refused "$UIP6" 9 2>&1); then
		pass net6_udp_closed_port_gets_icmp6_unreachable
	else
		fail net6_udp_closed_port_gets_icmp6_unreachable "$out"
	fi
	kill "$resp" 2>/dev/null; wait "$resp" 2>/dev/null
	wait_usnet_down
}

# The kernel got a (sha256 in $2) and usnet-nc got b, exiting 0; the stack's
# counters saw the bytes as IPv6.
check_transfer() {
	local name=$1 got=$2 rc
	rc=$(cat "$work/$name.rc" 2>/dev/null)
	if [ "$rc" != 0 ]; then
		fail "$name" "usnet-nc exit status ${rc:-?}: $(nc_errors "$work/$name.err")"
	elif [ "$got" != "$(sha "$work/a")" ]; then
		fail "$name" "kernel received different bytes than usnet-nc sent: $(head -c 300 "$work/$name.kerr" | tr '\n' ' ')"
	elif [ "$(cat "$work/$name.sum")" != "$(sha "$work/b")" ]; then
		fail "$name" "usnet-nc received different bytes than the kernel sent"
	elif [ "$(stat "$work/$name.err" ip6_rx)" -lt $((MIB * 700)) ] || [ "$(stat "$work/$name.err" ip_rx)" -gt 100 ]; then
		fail "$name" "the stack's counters do not show the transfer over IPv6: ip6_rx $(stat "$work/$name.err" ip6_rx), ip_rx $(stat "$work/$name.err" ip_rx)"
	else
		pass "$name"
	fi
}

# usnet-nc -l serves file a and takes file b from a kernel client.
tcp_server_transfer() {
	local name=$1 port=$2; shift 2
	local srv got
	( timeout "$XFER_S" ip netns exec "$NS" "$NC" -l "${NCDEV[@]}" --stats "$@" :: "$port" < "$work/a" \
		2>"$work/$name.err"; echo $? > "$work/$name.rc" ) | sha256sum | cut -c1-64 > "$work/$name.sum" &
	srv=$!; bgpids="$bgpids $srv"
	wait_usnet6_up
	got=$(timeout "$XFER_S" ip netns exec "$NS" $PY "$KPEER" tcp-connect "$UIP6" "$port" "$work/b" 2>"$work/$name.kerr")
	wait "$srv"
	check_transfer "$name" "$got"
	wait_usnet_down
}

# usnet-nc connects to a kernel server, sends file a and takes file b.
tcp_client_transfer() {
	local name=$1 port=$2; shift 2
	local srv cli got
	in_ns timeout "$XFER_S" $PY "$KPEER" tcp-listen "$KIP6" "$port" "$work/b" \
		>"$work/$name.ksum" 2>"$work/$name.kerr" &
	srv=$!; bgpids="$bgpids $srv"
	wait_port in_ns tcp "$port"
	( timeout "$XFER_S" ip netns exec "$NS" "$NC" "${NCDEV[@]}" --stats "$@" "[$KIP6]" "$port" < "$work/a" \
		2>"$work/$name.err"; echo $? > "$work/$name.rc" ) | sha256sum | cut -c1-64 > "$work/$name.sum" &
	cli=$!; bgpids="$bgpids $cli"
	wait "$cli"; wait "$srv"
	got=$(cat "$work/$name.ksum")
	check_transfer "$name" "$got"
	wait_usnet_down
}

test_udp() {
	local name srv out rc
	name=net6_udp_kernel_to_usnet_and_reply
	echo pong-from-usnet > "$work/udp.in"
	( timeout 30 ip netns exec "$NS" "$NC" -u -l -q 1 "${NCDEV[@]}" --stats :: 6001 < "$work/udp.in" > "$work/udp1.out" \
		2>"$work/udp1.err"; echo $? > "$work/udp1.rc" ) &
	srv=$!; bgpids="$bgpids $srv"
	wait_usnet6_up
	out=$(timeout 20 ip netns exec "$NS" $PY "$KPEER" udp-ping "$UIP6" 6001 2>&1)
	wait "$srv"
	rc=$(cat "$work/udp1.rc" 2>/dev/null)
	if [ "$out" != pong-from-usnet ]; then
		fail $name "kernel got '$out'"
	elif ! grep -qx ping "$work/udp1.out"; then
		fail $name "usnet-nc printed '$(head -c 100 "$work/udp1.out")'"
	elif [ "$rc" != 0 ]; then
		fail $name "usnet-nc exit status ${rc:-?}: $(nc_errors "$work/udp1.err")"
	elif [ "$(stat "$work/udp1.err" udp_rx)" -lt 1 ] || [ "$(stat "$work/udp1.err" ip6_tx)" -lt 1 ]; then
		fail $name "counters: udp_rx $(stat "$work/udp1.err" udp_rx), ip6_tx $(stat "$work/udp1.err" ip6_tx)"
	else
		pass $name
	fi
	wait_usnet_down
	name=net6_udp_usnet_to_kernel_and_reply
	in_ns timeout 30 $PY "$KPEER" udp-echo "$KIP6" 6002 >"$work/udp2.kout" 2>"$work/udp2.kerr" &
	srv=$!; bgpids="$bgpids $srv"
	wait_port in_ns udp 6002
	# -q 3: the datagram waits for ND, whose solicitation is retried each second
	out=$(echo hello-from-usnet | timeout 30 ip netns exec "$NS" "$NC" -u -q 3 "${NCDEV[@]}" "$KIP6" 6002 2>"$work/udp2.err"); rc=$?
	wait "$srv"
	if [ "$rc" != 0 ]; then
		fail $name "usnet-nc exit status $rc: $(nc_errors "$work/udp2.err")"
	elif [ "$(cat "$work/udp2.kout")" != hello-from-usnet ]; then
		fail $name "kernel got '$(head -c 100 "$work/udp2.kout")' $(head -c 200 "$work/udp2.kerr")"
	elif [ "$out" != pong:hello-from-usnet ]; then
		fail $name "usnet-nc printed '$out'"
	else
		pass $name
	fi
	wait_usnet_down
}

# The kernel sends one 6000-byte UDP datagram (in fragments: the TAP's MTU
# is 1500); usnet-nc prints it whole.
test_fragments_from_kernel() {
	local name=net6_udp_datagram_in_fragments_received_whole srv rc
	head -c 6000 /dev/urandom > "$work/big.dgram"
	echo ok > "$work/frag.in"
	( timeout 30 ip netns exec "$NS" "$NC" -u -l -q 1 "${NCDEV[@]}" --stats :: 6003 < "$work/frag.in" > "$work/frag.out" \
		2>"$work/frag.err"; echo $? > "$work/frag.rc" ) &
	srv=$!; bgpids="$bgpids $srv"
	wait_usnet6_up
	in_ns timeout 20 $PY -c '
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(1)
data = open(sys.argv[3], "rb").read()
for _ in range(10):
    s.sendto(data, (sys.argv[1], int(sys.argv[2])))
    try:
        s.recvfrom(100)
        sys.exit(0)
    except socket.timeout:
        pass
sys.exit("no reply to the big datagram")' "$UIP6" 6003 "$work/big.dgram" 2>"$work/frag.kerr"
	wait "$srv"
	rc=$(cat "$work/frag.rc" 2>/dev/null)
	if [ "$rc" != 0 ]; then
		fail $name "usnet-nc exit status ${rc:-?}: $(nc_errors "$work/frag.err") $(head -c 200 "$work/frag.kerr")"
	elif ! cmp -s <(head -c 6000 "$work/frag.out") "$work/big.dgram"; then
		fail $name "usnet-nc printed $(wc -c < "$work/frag.out") bytes, not the 6000 the kernel sent"
	elif [ "$(stat "$work/frag.err" ip6_frag_reassembled)" -lt 1 ] || [ "$(stat "$work/frag.err" ip6_frag_rx)" -lt 5 ]; then
		fail $name "counters: ip6_frag_rx $(stat "$work/frag.err" ip6_frag_rx), ip6_frag_reassembled $(stat "$work/frag.err" ip6_frag_reassembled)"
	else
		pass $name
	fi
	wait_usnet_down
}

# usnet-nc sends 8 MiB to the far host through the kernel router; the link
# beyond it has MTU 1400, so the router answers the first full-size segment
# with Packet Too Big and the stack's MSS drops to 1400 - 60 = 1340.
test_pmtu_through_router() {
	local name=net6_packet_too_big_lowers_mss srv rc mss
	head -c 8M /dev/urandom > "$work/pmtu.a"
	: > "$work/empty"
	in_fns timeout 60 $PY "$KPEER" tcp-listen "$FIP6" 5010 "$work/empty" >"$work/pmtu.ksum" 2>"$work/pmtu.kerr" &
	srv=$!; bgpids="$bgpids $srv"
	wait_port in_fns tcp 5010
	timeout 60 ip netns exec "$NS" "$NC" -v --stats "${NCDEV[@]}" "$FIP6" 5010 < "$work/pmtu.a" >/dev/null 2>"$work/pmtu.err"; rc=$?
	wait "$srv"
	mss=$(sed -n 's/^usnet-nc: tcp: mss \([0-9]*\),.*/\1/p' "$work/pmtu.err")
	if [ "$rc" != 0 ]; then
		fail $name "usnet-nc exit status $rc: $(nc_errors "$work/pmtu.err") $(head -c 200 "$work/pmtu.kerr")"
	elif [ "$(cat "$work/pmtu.ksum")" != "$(sha "$work/pmtu.a")" ]; then
		fail $name "the far host received different bytes: $(head -c 200 "$work/pmtu.kerr")"
	elif [ "$(stat "$work/pmtu.err" ip6_pmtu_update)" -lt 1 ]; then
		fail $name "no Packet Too Big took effect (ip6_pmtu_update 0, icmp6_rx $(stat "$work/pmtu.err" icmp6_rx))"
	elif [ -z "$mss" ] || [ "$mss" -gt 1340 ]; then
		fail $name "the connection's MSS is '${mss:-?}', not at most 1340"
	else
		pass $name
	fi
	wait_usnet_down
}

# Crafted packets while usnet-nc -u -l waits; then a datagram it answers
# (ending the session), and its counters.
test_crafted() {
	local srv umac kmac out rc
	echo alive > "$work/craft.in"
	( timeout 120 ip netns exec "$NS" "$NC" -u -l -q 1 "${NCDEV[@]}" --stats :: 6004 < "$work/craft.in" > "$work/craft.out" \
		2>"$work/craft.err"; echo $? > "$work/craft.rc" ) &
	srv=$!; bgpids="$bgpids $srv"
	wait_usnet6_up
	umac=$(ip -n "$NS" -6 neigh show "$UIP6" dev "$TAP" | sed -n 's/.*lladdr \([0-9a-f:]*\).*/\1/p')
	kmac=$(ip -n "$NS" link show "$TAP" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
	if [ -z "$umac" ] || [ -z "$kmac" ]; then
		fail net6_craft "no neighbour entry for $UIP6 ('$umac') or no MAC on $TAP ('$kmac')"
		kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null; wait_usnet_down
		return
	fi
	in_ns timeout 100 $PY "$CRAFT" "$TAP" "$kmac" "$KIP6" "$umac" "$UIP6" 2>"$work/craft.perr"
	out=$(timeout 20 ip netns exec "$NS" $PY "$KPEER" udp-ping "$UIP6" 6004 2>&1)
	wait "$srv"
	rc=$(cat "$work/craft.rc" 2>/dev/null)
	if [ "$out" = alive ] && [ "$rc" = 0 ]; then
		pass net6_craft_stack_still_serves_udp
	else
		fail net6_craft_stack_still_serves_udp "kernel got '$out', usnet-nc status ${rc:-?}: $(nc_errors "$work/craft.err") $(head -c 300 "$work/craft.perr")"
		wait_usnet_down
		return
	fi
	# Each kind of drop was counted (at least once: the kernel's own
	# traffic may add to some, never to these).
	local c bad=""
	for c in ip6_drop_len ip6_drop_ext ip6_drop_hbh_order ip6_drop_option ip6_drop_routing \
		 ip6_drop_next_header ip6_frag_drop_overlap ip6_frag_drop_chain ip6_frag_reassembled \
		 nd_drop_hop_limit nd_drop_code icmp6_err_tx; do
		[ "$(stat "$work/craft.err" $c)" -ge 1 ] || bad="$bad $c"
	done
	if [ -z "$bad" ]; then
		pass net6_craft_drops_counted
	else
		fail net6_craft_drops_counted "counters still 0:$bad"
	fi
	wait_usnet_down
}

# usnet-nc --pcap of an IPv6 transfer: tshark reads IPv6 TCP in it, the
# handshake, the FINs and every payload byte.
test_pcap() {
	local name=net6_pcap_read_by_tshark srv out syn fin bytes
	head -c 300000 /dev/urandom > "$work/pc.a"
	in_ns timeout 30 $PY "$KPEER" tcp-listen "$KIP6" 5020 "$work/empty" >"$work/pc.ksum" 2>"$work/pc.kerr" &
	srv=$!; bgpids="$bgpids $srv"
	wait_port in_ns tcp 5020
	timeout 30 ip netns exec "$NS" "$NC" "${NCDEV[@]}" --pcap "$work/pc.pcap" "$KIP6" 5020 < "$work/pc.a" >/dev/null 2>"$work/pc.err"
	wait "$srv"
	if [ "$(cat "$work/pc.ksum")" != "$(sha "$work/pc.a")" ]; then
		fail $name "transfer failed: $(head -c 200 "$work/pc.err" "$work/pc.kerr" | tr '\n' ' ')"
		wait_usnet_down
		return
	fi
	out=$(timeout 30 tshark -r "$work/pc.pcap" -Y "ipv6.src == $UIP6 || ipv6.dst == $UIP6" \
		-T fields -e ipv6.nxt -e tcp.flags.syn -e tcp.flags.fin -e tcp.len 2>&1)
	syn=$(awk '$1 == 6 && $2 == 1' <<<"$out" | wc -l)
	fin=$(awk '$1 == 6 && $3 == 1' <<<"$out" | wc -l)
	bytes=$(awk '$1 == 6 { n += $4 } END { print n + 0 }' <<<"$out")
	if [ "$syn" -ge 2 ] && [ "$fin" -ge 2 ] && [ "$bytes" -ge 300000 ] \
	   && timeout 30 tshark -r "$work/pc.pcap" -Y icmpv6.type==135 2>/dev/null | grep -q .; then
		pass $name
	else
		fail $name "tshark saw $syn SYN, $fin FIN, $bytes TCP payload bytes over IPv6 (and ND?): $(head -c 200 <<<"$out")"
	fi
	wait_usnet_down
}

# ---- run ----------------------------------------------------------------------

if [ ! -x "$NC" ]; then
	skip net6_tests "$NC is not built (the stack or netif library is missing)"
	exit 0
fi
cp "$NC" "$work/usnet-nc" && NC=$work/usnet-nc
test_arguments
test_memwire_pair
if ! need_root; then
	skip net6_link_tests "needs root (network namespaces, TAP and veth devices)"
	exit 0
fi
if ! need_cmd ip ping ss ethtool sysctl timeout sha256sum || [ ! -x $PY ]; then
	skip net6_link_tests "needs ip, ping, ss, ethtool, sysctl, /usr/bin/python3 (Debian: iproute2 iputils-ping ethtool procps python3)"
	exit 0
fi
if ! setup 2>"$work/setup.err"; then
	skip net6_link_tests "cannot create namespaces $NS/$FNS with TAP $TAP and a veth: $(head -1 "$work/setup.err")"
	exit 0
fi
test_dad_duplicate
if ! test_probes; then
	skip net6_transfer_tests "usnet-nc does not come up over IPv6 on $TAP (see net6_usnet_up)"
	exit 0
fi
test_udp
test_fragments_from_kernel
test_pmtu_through_router
if $PY -c 'import scapy.all' 2>/dev/null; then
	test_crafted
else
	skip net6_craft "needs scapy for /usr/bin/python3 (Debian: python3-scapy)"
fi
if need_cmd tshark; then
	test_pcap
else
	skip net6_pcap_read_by_tshark "needs tshark (Debian: tshark)"
fi
head -c "${MIB}M" /dev/urandom > "$work/a"
head -c "${MIB}M" /dev/urandom > "$work/b"
tcp_server_transfer net6_tcp_nc_server_${MIB}MiB_each_way 5001
tcp_client_transfer net6_tcp_nc_client_${MIB}MiB_each_way 5003
tcp_server_transfer net6_tcp_nc_server_${MIB}MiB_each_way_impaired 5002 --impair loss=0.02,reorder=0.02,seed=5
tcp_client_transfer net6_tcp_nc_client_${MIB}MiB_each_way_impaired 5004 --impair loss=0.02,reorder=0.02,seed=6
exit 0
