#!/usr/bin/env bash
# Network tests of the stack, driven through usnet-nc:
#  - (no root) usnet-nc's command-line errors; two stacks over an in-process
#    memwire moving 64 MiB each way byte-exact through 5% loss, reordering,
#    duplication and corruption; two usnet-nc processes doing the same with
#    2 MiB over a two-process memwire; usnet-nc --pcap read back by tshark;
#  - (root) usnet with the Linux kernel on the other end of a link: ping,
#    100 MiB each way with usnet-nc as server and as client, plain and with
#    --impair loss=0.02,reorder=0.02, UDP both ways, RST for a SYN to a closed
#    port, ICMP port unreachable for UDP to a closed port, and usnet-nc's exit
#    status when a connection is refused or reset.
#
# Usage: tests/net/run.sh                runs both parts, the link being a TAP
#                                        device in a private namespace (the
#                                        kernel's side is the tap itself)
#        tests/net/run.sh --backend B [--backend-options O] [--label L]
#                                        runs only the root part over backend B
#                                        (afpacket, afxdp, dpdk) on one end of a
#                                        veth pair in namespace $UNS, the kernel
#                                        on the other end in namespace $KNS;
#                                        test names get the prefix "L/" (L
#                                        defaults to B).  tests/fastio uses this.
#        --mib N: the TCP transfers move N MiB each way (default 100)
#        --no-impaired-transfers WHY: skip the impaired transfers, saying why
# Prints one PASS/FAIL/SKIP line per test.
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh

BACKEND=tap BOPTS="" LABEL="" MIB=100 NO_IMPAIR=""
while [ $# -gt 0 ]; do
	case $1 in
	--backend) BACKEND=$2; shift 2 ;;
	--backend-options) BOPTS=$2; shift 2 ;;
	--label) LABEL=$2; shift 2 ;;
	--mib) MIB=$2; shift 2 ;;
	--no-impaired-transfers) NO_IMPAIR=$2; shift 2 ;;
	*) echo "usage: $0 [--backend B] [--backend-options O] [--label L] [--mib N] [--no-impaired-transfers WHY]" >&2; exit 2 ;;
	esac
done
if [ "$BACKEND" != tap ]; then
	LABEL=${LABEL:-$BACKEND}
	# Every result line names the backend it was measured on.
	pass() { echo "PASS $LABEL/$1"; }
	fail() { echo "FAIL $LABEL/$1: ${2:-failed}"; }
	skip() { echo "SKIP $LABEL/$1: ${2:-skipped}"; }
fi

NC=build/usnet-nc
MW_PROG=build/tests/net/memwire-impaired
KPEER=tests/net/kpeer.py
NS=net-$$-a            # tap: the one namespace
UNS=$NS KNS=$NS        # where usnet-nc runs, where the kernel's peers run
TAP=usnc$$
UIF=$TAP               # usnet's interface
VK=netk$$              # veth backends: the kernel's end of the pair
KIP=10.61.0.1          # the kernel's end of the link
UIP=10.61.0.2          # usnet's address
NCDEV=(--backend "$BACKEND" --iface "$UIF")
XFER_S=300             # bound on one TCP transfer test
[ "$BACKEND" != tap ] && XFER_S=120
work=$(mktemp -d /tmp/usnet-net.XXXXXX)
bgpids=""

cleanup() {
	local p
	for p in $bgpids; do kill "$p" 2>/dev/null; done
	for p in $bgpids; do wait "$p" 2>/dev/null; done
	ip netns del "$NS" 2>/dev/null
	[ "$UNS" != "$NS" ] && ip netns del "$UNS" 2>/dev/null
	[ "$KNS" != "$NS" ] && ip netns del "$KNS" 2>/dev/null
	rm -f /dev/shm/usnet-memwire-ncw$$* /dev/shm/usnet-memwire-ncp$$* /dev/shm/usnet-memwire-ncq$$*
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

sha() { sha256sum < "$1" | cut -c1-64; }

# Start a command in the background, remembering its pid for cleanup.
# Usage: bg_start PIDVAR command...
bg_start() {
	local var=$1; shift
	"$@" &
	bgpids="$bgpids $!"
	printf -v "$var" %s "$!"
}

# ---- no root ---------------------------------------------------------------

test_bad_arguments() {
	local name=nc_bad_arguments out rc
	out=$("$NC" --backend memwire --iface w:0 --ip 10.61.9.1/33 10.61.9.2 80 2>&1 </dev/null); rc=$?
	if [ "$rc" -ne 2 ] || ! grep -q "ADDR/PREFIX" <<<"$out"; then
		fail $name "bad prefix: status $rc, message '$out'"; return
	fi
	out=$("$NC" --backend memwire --iface w:0 --ip 10.61.9.1/24 10.61.9.2 70000 2>&1 </dev/null); rc=$?
	if [ "$rc" -ne 2 ] || ! grep -q "PORT" <<<"$out"; then
		fail $name "bad port: status $rc, message '$out'"; return
	fi
	out=$("$NC" --backend nosuch --iface x --ip 10.61.9.1/24 10.61.9.2 80 2>&1 </dev/null); rc=$?
	if [ "$rc" -ne 1 ] || [ "$(wc -l <<<"$out")" -ne 1 ]; then
		fail $name "unknown backend: status $rc, message '$out'"; return
	fi
	pass $name
}

# Two stacks in one process over an impaired memwire, 64 MiB each way (a
# test program that skips idle time to the next timer: see its header).
test_memwire_stacks() {
	local prog=$MW_PROG out rc
	if [ ! -x "$prog" ]; then
		skip memwire_tcp_64MiB_each_way_impaired "$prog is not built"
		return
	fi
	out=$(timeout "$XFER_S" "$prog" 64 loss=0.05,reorder=0.05,dup=0.02,corrupt=0.01,seed=11 2>&1); rc=$?
	if [ "$rc" -eq 124 ]; then
		fail memwire_tcp_64MiB_each_way_impaired "not done within 300 s"
	elif [ "$rc" -ne 0 ] && ! grep -q '^FAIL ' <<<"$out"; then
		fail memwire_tcp_64MiB_each_way_impaired "exit status $rc: $(tail -c 300 <<<"$out")"
	else
		echo "$out"
	fi
}

# Two usnet-nc processes over a two-process memwire, 2 MiB each way, the
# client's netif impaired in both directions (in real time: every
# retransmission timeout is waited for, hence the small size).
test_memwire_impaired() {
	local name=memwire_nc_pair_2MiB_each_way_impaired wire=ncw$$ a=$work/mw.a b=$work/mw.b
	local impair=loss=0.05,reorder=0.05,dup=0.02,corrupt=0.01,seed=11 srv cli
	head -c 2M /dev/urandom > "$a"; head -c 2M /dev/urandom > "$b"
	( timeout 240 "$NC" -l --backend memwire --iface "$wire:0" --ip 10.61.200.1/24 \
		0.0.0.0 5000 < "$a" 2>"$work/mw.err0"; echo $? > "$work/mw.rc0" ) \
		| sha256sum | cut -c1-64 > "$work/mw.sum0" &
	srv=$!; bgpids="$bgpids $srv"
	for _ in $(seq 50); do [ -e "/dev/shm/usnet-memwire-$wire" ] && break; sleep 0.1; done
	sleep 0.3
	( timeout 240 "$NC" --backend memwire --iface "$wire:1" --ip 10.61.200.2/24 --impair "$impair" \
		10.61.200.1 5000 < "$b" 2>"$work/mw.err1"; echo $? > "$work/mw.rc1" ) \
		| sha256sum | cut -c1-64 > "$work/mw.sum1" &
	cli=$!; bgpids="$bgpids $cli"
	wait "$cli"; wait "$srv"
	local rc0 rc1; rc0=$(cat "$work/mw.rc0" 2>/dev/null); rc1=$(cat "$work/mw.rc1" 2>/dev/null)
	if [ "$rc0" != 0 ] || [ "$rc1" != 0 ]; then
		fail $name "exit status server ${rc0:-?} client ${rc1:-?}: $(head -c 300 "$work/mw.err0" "$work/mw.err1" | tr '\n' ' ')"
	elif [ "$(cat "$work/mw.sum0")" != "$(sha "$b")" ]; then
		fail $name "server received different bytes than the client sent"
	elif [ "$(cat "$work/mw.sum1")" != "$(sha "$a")" ]; then
		fail $name "client received different bytes than the server sent"
	else
		pass $name
	fi
	rm -f "$a" "$b"
}

# usnet-nc --pcap writes a capture that tshark reads: the handshake, the data
# and the FINs of a small transfer are all in it.
test_pcap() {
	local name=nc_pcap_capture_readable wire=ncp$$ srv out syn fin bytes
	if ! need_cmd tshark; then
		skip $name "needs tshark (Debian: tshark)"
		return
	fi
	head -c 100000 /dev/urandom > "$work/pc.a"
	( timeout 30 "$NC" -l --backend memwire --iface "$wire:0" --ip 10.61.202.1/24 \
		0.0.0.0 5000 < "$work/pc.a" >/dev/null 2>"$work/pc.err0"; echo $? > "$work/pc.rc0" ) &
	srv=$!; bgpids="$bgpids $srv"
	for _ in $(seq 50); do [ -e "/dev/shm/usnet-memwire-$wire" ] && break; sleep 0.1; done
	sleep 0.3
	timeout 30 "$NC" --backend memwire --iface "$wire:1" --ip 10.61.202.2/24 --pcap "$work/pc.pcap" \
		10.61.202.1 5000 </dev/null >"$work/pc.out" 2>"$work/pc.err1"
	wait "$srv"
	if ! cmp -s "$work/pc.a" "$work/pc.out"; then
		fail $name "transfer failed: $(head -c 200 "$work/pc.err0" "$work/pc.err1" | tr '\n' ' ')"
		return
	fi
	out=$(timeout 30 tshark -r "$work/pc.pcap" -T fields -e tcp.flags.syn -e tcp.flags.fin -e tcp.len 2>&1)
	syn=$(awk '$1 == 1' <<<"$out" | wc -l)
	fin=$(awk '$2 == 1' <<<"$out" | wc -l)
	bytes=$(awk '{ n += $3 } END { print n + 0 }' <<<"$out")
	if [ "$syn" -ge 2 ] && [ "$fin" -ge 2 ] && [ "$bytes" -ge 100000 ]; then
		pass $name
	else
		fail $name "capture has $syn SYN, $fin FIN, $bytes payload bytes: $(head -c 200 <<<"$out")"
	fi
}

# usnet-nc -u -q 1 whose peer answers ARP only after 1.6 s (it starts late,
# and the stack asks again every second): -q counts from the datagram's
# departure, not from the end of stdin, so the datagram still arrives.
test_udp_quit_waits_for_arp() {
	local name=nc_udp_quit_waits_for_arp wire=ncq$$ cli
	( echo late-peer | timeout 20 "$NC" -u -q 1 --backend memwire --iface "$wire:1" \
		--ip 10.61.204.2/24 10.61.204.1 9000 2>"$work/uq.err1"; echo $? > "$work/uq.rc1" ) &
	cli=$!; bgpids="$bgpids $cli"
	sleep 1.6
	timeout 10 "$NC" -u -l -w 3 --backend memwire --iface "$wire:0" --ip 10.61.204.1/24 \
		0.0.0.0 9000 </dev/null >"$work/uq.out" 2>"$work/uq.err0"
	wait "$cli"
	if [ "$(cat "$work/uq.out")" = late-peer ] && [ "$(cat "$work/uq.rc1")" = 0 ]; then
		pass $name
	else
		fail $name "received '$(head -c 100 "$work/uq.out")', client exit $(cat "$work/uq.rc1"):\
 $(head -c 200 "$work/uq.err1" "$work/uq.err0" | tr '\n' ' ')"
	fi
}

# ---- root: usnet on a TAP or a veth, the kernel on the other side -------------

setup_namespace() {
	ip netns add "$NS" || return 1
	ip -n "$NS" link set lo up || return 1
	ip -n "$NS" tuntap add dev "$TAP" mode tap || return 1
	ip -n "$NS" addr add "$KIP/24" dev "$TAP" || return 1
	ip -n "$NS" link set "$TAP" up || return 1
}

# Two namespaces joined by a veth pair: usnet's end ($UIF, no kernel address)
# in $UNS, the kernel's end ($VK, $KIP) in $KNS.  Neither end offloads
# transmit checksums: a veth would otherwise hand the other side frames whose
# TCP/UDP checksum is not filled in, which AF_PACKET/AF_XDP readers cannot
# tell from corrupt ones.
setup_veth() {
	UNS=net-$$-u KNS=net-$$-k UIF=netu$$
	NCDEV=(--backend "$BACKEND" --iface "$UIF")
	[ -n "$BOPTS" ] && NCDEV+=(--backend-options "$BOPTS")
	ip netns add "$UNS" && ip netns add "$KNS" || return 1
	ip link add "$UIF" netns "$UNS" type veth peer name "$VK" netns "$KNS" || return 1
	ip -n "$UNS" link set lo up && ip -n "$KNS" link set lo up || return 1
	ip -n "$KNS" addr add "$KIP/24" dev "$VK" || return 1
	ip -n "$UNS" link set "$UIF" up && ip -n "$KNS" link set "$VK" up || return 1
	ip netns exec "$KNS" ethtool -K "$VK" tx off >/dev/null || return 1
	ip netns exec "$UNS" ethtool -K "$UIF" tx off >/dev/null || return 1
}

in_kns() { ip netns exec "$KNS" "$@"; }

# DPDK's net_af_xdp device lets libbpf and libxdp log to stderr (lines
# "libbpf: ..." / "libxdp: ...") beside usnet-nc's own one-line message:
# leave those out where the tests count usnet-nc's lines.
lib_noise_filter() {
	if [ "$BACKEND" = dpdk ]; then grep -v -e '^libbpf: ' -e '^libxdp: '; else cat; fi
}

# Wait until usnet-nc serves the link: on a tap the kernel reports carrier
# once a process has it open; on a veth the kernel's side pings until usnet
# answers (the interface's MAC stays the same from run to run, so the
# kernel's ARP entry stays right).
wait_usnet_up() {
	for _ in $(seq 100); do
		if [ "$BACKEND" = tap ]; then
			ip -n "$NS" link show "$TAP" 2>/dev/null | grep -q NO-CARRIER || return 0
			sleep 0.05
		else
			in_kns ping -c 1 -W 1 -q "$UIP" >/dev/null 2>&1 && return 0
			sleep 0.1
		fi
	done
	return 1
}

# Wait until no usnet-nc has the link open any more (tap: no carrier).  On a
# veth nothing is left once usnet-nc has exited, except an XDP program when
# an afxdp usnet-nc was killed before it could detach it: remove it, so that
# one failure does not turn every later test into "already attached" (the
# program stays when usnet-nc is killed, e.g. by test_probes).
wait_usnet_down() {
	if [ "$BACKEND" != tap ]; then
		ip -n "$UNS" link set dev "$UIF" xdpgeneric off 2>/dev/null
		ip -n "$UNS" link set dev "$UIF" xdpdrv off 2>/dev/null
		return 0
	fi
	for _ in $(seq 100); do
		ip -n "$NS" link show "$TAP" 2>/dev/null | grep -q NO-CARRIER && return 0
		sleep 0.05
	done
	return 1
}

# Wait for a kernel listener (tcp|udp) on PORT inside the namespace.
wait_kernel_port() {
	local flag=-ltn; [ "$1" = udp ] && flag=-lun
	for _ in $(seq 100); do
		in_kns ss -H $flag "sport = :$2" 2>/dev/null | grep -q . && return 0
		sleep 0.05
	done
	return 1
}

# A usnet-nc that only listens on port 7, so that the stack answers ping,
# ARP and closed ports while the kernel probes it.
test_probes() {
	local resp out
	bg_start resp timeout 60 ip netns exec "$UNS" "$NC" -l "${NCDEV[@]}" \
		--ip "$UIP/24" 0.0.0.0 7 </dev/null >/dev/null 2>"$work/resp.err"
	if ! wait_usnet_up; then
		fail usnet_attach "usnet-nc did not come up on $UIF: $(head -c 300 "$work/resp.err")"
		USNET_DOWN=1
		return
	fi
	if out=$(timeout 20 ip netns exec "$KNS" ping -c 3 -i 0.2 -W 2 "$UIP" 2>&1); then
		pass kernel_ping_answered
	else
		fail kernel_ping_answered "$(tail -2 <<<"$out" | tr '\n' ' ')"
	fi
	if out=$(timeout 20 ip netns exec "$KNS" python3 "$KPEER" tcp-refused "$UIP" 9 2>&1); then
		pass tcp_syn_closed_port_gets_rst
	else
		fail tcp_syn_closed_port_gets_rst "$out"
	fi
	if out=$(timeout 20 ip netns exec "$KNS" python3 "$KPEER" udp-refused "$UIP" 9 2>&1); then
		pass udp_closed_port_gets_icmp_unreachable
	else
		fail udp_closed_port_gets_icmp_unreachable "$out"
	fi
	kill "$resp" 2>/dev/null; wait "$resp" 2>/dev/null
	wait_usnet_down
}

# usnet-nc -l serves file a and takes file b from a kernel client, at once.
tcp_server_transfer() {
	local name=$1 port=$2; shift 2
	local a=$work/a b=$work/b srv got
	( timeout "$XFER_S" ip netns exec "$UNS" "$NC" -l "${NCDEV[@]}" --ip "$UIP/24" "$@" \
		0.0.0.0 "$port" < "$a" 2>"$work/$name.err"; echo $? > "$work/$name.rc" ) \
		| sha256sum | cut -c1-64 > "$work/$name.sum" &
	srv=$!; bgpids="$bgpids $srv"
	wait_usnet_up
	got=$(timeout "$XFER_S" ip netns exec "$KNS" python3 "$KPEER" tcp-connect "$UIP" "$port" "$b" 2>"$work/$name.kerr")
	wait "$srv"
	check_transfer "$name" "$got"
	wait_usnet_down
}

# usnet-nc connects to a kernel server, sends file a and takes file b.
tcp_client_transfer() {
	local name=$1 port=$2; shift 2
	local a=$work/a b=$work/b srv cli got
	bg_start srv timeout "$XFER_S" ip netns exec "$KNS" python3 "$KPEER" tcp-listen "$KIP" "$port" "$b" \
		>"$work/$name.ksum" 2>"$work/$name.kerr"
	wait_kernel_port tcp "$port"
	( timeout "$XFER_S" ip netns exec "$UNS" "$NC" "${NCDEV[@]}" --ip "$UIP/24" "$@" \
		"$KIP" "$port" < "$a" 2>"$work/$name.err"; echo $? > "$work/$name.rc" ) \
		| sha256sum | cut -c1-64 > "$work/$name.sum" &
	cli=$!; bgpids="$bgpids $cli"
	wait "$cli"; wait "$srv"
	got=$(cat "$work/$name.ksum")
	check_transfer "$name" "$got"
	wait_usnet_down
}

# The kernel got a (sha256 in $2) and usnet-nc got b, exiting 0.
check_transfer() {
	local name=$1 got=$2 rc
	rc=$(cat "$work/$name.rc" 2>/dev/null)
	if [ "$rc" != 0 ]; then
		fail "$name" "usnet-nc exit status ${rc:-?}: $(head -c 300 "$work/$name.err" | tr '\n' ' ')"
	elif [ "$got" != "$(sha "$work/a")" ]; then
		fail "$name" "kernel received different bytes than usnet-nc sent: $(head -c 300 "$work/$name.kerr" | tr '\n' ' ')"
	elif [ "$(cat "$work/$name.sum")" != "$(sha "$work/b")" ]; then
		fail "$name" "usnet-nc received different bytes than the kernel sent"
	else
		pass "$name"
	fi
}

test_udp() {
	local name srv out rc
	# Kernel client -> usnet-nc -u -l, which answers the last sender.
	name=udp_kernel_to_usnet_and_reply
	echo pong-from-usnet > "$work/udp.in"
	( timeout 30 ip netns exec "$UNS" "$NC" -u -l -q 1 "${NCDEV[@]}" --ip "$UIP/24" \
		0.0.0.0 6001 < "$work/udp.in" > "$work/udp1.out" 2>"$work/udp1.err"; echo $? > "$work/udp1.rc" ) &
	srv=$!; bgpids="$bgpids $srv"
	wait_usnet_up
	out=$(timeout 20 ip netns exec "$KNS" python3 "$KPEER" udp-ping "$UIP" 6001 2>&1)
	wait "$srv"
	rc=$(cat "$work/udp1.rc" 2>/dev/null)
	if [ "$out" != pong-from-usnet ]; then
		fail $name "kernel got '$out'"
	elif ! grep -qx ping "$work/udp1.out"; then
		fail $name "usnet-nc printed '$(head -c 100 "$work/udp1.out")'"
	elif [ "$rc" != 0 ]; then
		fail $name "usnet-nc exit status ${rc:-?}: $(head -c 300 "$work/udp1.err")"
	else
		pass $name
	fi
	wait_usnet_down
	# usnet-nc -u client -> kernel echo server.
	name=udp_usnet_to_kernel_and_reply
	bg_start srv timeout 30 ip netns exec "$KNS" python3 "$KPEER" udp-echo "$KIP" 6002 \
		>"$work/udp2.kout" 2>"$work/udp2.kerr"
	wait_kernel_port udp 6002
	# -q 3: the datagram waits for ARP, whose request is retried after 1 s
	# and 2 s; with -q 1 a lost first request would end the session first
	out=$(echo hello-from-usnet | timeout 30 ip netns exec "$UNS" "$NC" -u -q 3 "${NCDEV[@]}" \
		--ip "$UIP/24" "$KIP" 6002 2>"$work/udp2.err"); rc=$?
	wait "$srv"
	if [ "$rc" != 0 ]; then
		fail $name "usnet-nc exit status $rc: $(head -c 300 "$work/udp2.err")"
	elif [ "$(cat "$work/udp2.kout")" != hello-from-usnet ]; then
		fail $name "kernel got '$(head -c 100 "$work/udp2.kout")' $(head -c 200 "$work/udp2.kerr")"
	elif [ "$out" != pong:hello-from-usnet ]; then
		fail $name "usnet-nc printed '$out'"
	else
		pass $name
	fi
	wait_usnet_down
}

test_nc_refused() {
	local name=nc_connect_refused_exits_nonzero out rc
	out=$(timeout 30 ip netns exec "$UNS" "$NC" "${NCDEV[@]}" --ip "$UIP/24" \
		"$KIP" 9 </dev/null 2>&1); rc=$?
	out=$(lib_noise_filter <<<"$out")
	if [ "$rc" -eq 1 ] && grep -qi "refused" <<<"$out" && [ "$(wc -l <<<"$out")" -eq 1 ]; then
		pass $name
	else
		fail $name "status $rc, message '$out'"
	fi
	wait_usnet_down
}

# The kernel peer aborts the connection (RST) while usnet-nc -l is sending:
# usnet-nc must exit 1 with one line naming the reset.
test_nc_reset() {
	local name=nc_reset_by_peer_exits_nonzero srv rc out
	( timeout 60 ip netns exec "$UNS" "$NC" -l "${NCDEV[@]}" --ip "$UIP/24" \
		0.0.0.0 5005 < "$work/a" >/dev/null 2>"$work/reset.err"; echo $? > "$work/reset.rc" ) &
	srv=$!; bgpids="$bgpids $srv"
	wait_usnet_up
	out=$(timeout 30 ip netns exec "$KNS" python3 "$KPEER" tcp-reset "$UIP" 5005 2>&1)
	wait "$srv"
	rc=$(cat "$work/reset.rc" 2>/dev/null)
	if [ -n "$out" ]; then
		fail $name "kernel peer: $out"
	elif lib_noise_filter < "$work/reset.err" > "$work/reset.err1"; mv "$work/reset.err1" "$work/reset.err"
	     [ "$rc" = 1 ] && grep -qi "reset" "$work/reset.err" && [ "$(wc -l < "$work/reset.err")" -eq 1 ]; then
		pass $name
	else
		fail $name "status ${rc:-?}, message '$(head -c 200 "$work/reset.err")'"
	fi
	wait_usnet_down
}

# ---- run ----------------------------------------------------------------------

if [ ! -x "$NC" ]; then
	skip net_tests "$NC is not built (the stack or netif library is missing)"
	exit 0
fi
# Run private copies, so that a rebuild during the run cannot swap them.
cp "$NC" "$work/usnet-nc" && NC=$work/usnet-nc
[ -x "$MW_PROG" ] && cp "$MW_PROG" "$work/memwire-impaired" && MW_PROG=$work/memwire-impaired
if [ "$BACKEND" = tap ]; then
	test_bad_arguments
	test_memwire_stacks
	test_memwire_impaired
	test_pcap
	test_udp_quit_waits_for_arp
fi

if ! need_root; then
	skip link_tests "needs root (network namespaces, TAP and veth devices)"
	exit 0
fi
if ! need_cmd ip ping ss python3 timeout sha256sum; then
	skip link_tests "needs ip, ping, ss, python3 (Debian: iproute2 iputils-ping python3)"
	exit 0
fi
if [ "$BACKEND" = tap ]; then
	if ! setup_namespace; then
		skip link_tests "cannot create network namespace $NS with TAP $TAP"
		exit 0
	fi
else
	if ! need_cmd ethtool; then
		skip link_tests "needs ethtool (Debian: ethtool)"
		exit 0
	fi
	if ! setup_veth 2>"$work/setup.err"; then
		skip link_tests "cannot create namespaces $UNS/$KNS with a veth pair: $(head -1 "$work/setup.err")"
		exit 0
	fi
fi
USNET_DOWN=0
test_probes
if [ "$USNET_DOWN" = 1 ]; then
	# Every later test would wait for it in vain.
	skip link_transfer_tests "usnet-nc cannot run on $UIF (see usnet_attach)"
	exit 0
fi
test_nc_refused
test_udp
head -c "${MIB}M" /dev/urandom > "$work/a"
head -c "${MIB}M" /dev/urandom > "$work/b"
test_nc_reset
tcp_server_transfer tcp_nc_server_${MIB}MiB_each_way 5001
tcp_client_transfer tcp_nc_client_${MIB}MiB_each_way 5003
if [ -n "$NO_IMPAIR" ]; then
	skip tcp_nc_server_${MIB}MiB_each_way_impaired "$NO_IMPAIR"
	skip tcp_nc_client_${MIB}MiB_each_way_impaired "$NO_IMPAIR"
	exit 0
fi
tcp_server_transfer tcp_nc_server_${MIB}MiB_each_way_impaired 5002 --impair loss=0.02,reorder=0.02,seed=5
tcp_client_transfer tcp_nc_client_${MIB}MiB_each_way_impaired 5004 --impair loss=0.02,reorder=0.02,seed=6
exit 0
