#!/usr/bin/env bash
# usnet beside the kernel on one interface (root; namespaces and veths):
#  arp_<backend>: the kernel keeps its own address on usnet's interface.
#     A veth between two namespaces; on usnet's end the kernel has an
#     address of its own ($HIP) and a TCP service there, and `usnet run`
#     serves a file from its address ($UIP) with afxdp (native, then skb
#     mode) or afpacket.  Neighbour caches on both sides are flushed before
#     usnet starts and then every second while the kernel peer downloads the
#     file from usnet; each second, ping to $HIP and a connection to the
#     kernel's service on $HIP must be answered (both need ARP for $HIP
#     again), and the download must arrive intact from $UIP.
#     The download is 100 MiB read at 12 MiB/s: eight seconds of transfer,
#     at least three rounds of flushed caches.  Long enough to catch a
#     kernel address that stops answering ARP (the entry is gone within a
#     round), short enough for a shared two-core machine.
#     dpdk's net_af_packet device is checked the same way, with usnet-nc
#     serving the file (a program running DPDK does not run under the hook).
#  gw_kernel_routes_other_interface: with --gw, a connection to a subnet the
#     kernel routes through another interface goes through the kernel.
#  gateway_learned_from_kernel[_host_address]: with no --gw, the gateway of
#     the kernel's default route through usnet's interface is the stack's
#     (with an address of its own, and in host-address mode: there with no
#     option at all, `usnet run -- PROGRAM`).
#  host_address[_afpacket]: `usnet run --backend afxdp (afpacket) --iface
#     IF` with no --ip shares the kernel's address on IF (each test: the kernel and usnet serve
#     on one address, the kernel keeps ping, a bind to a port a kernel
#     listener holds gets EADDRINUSE, a program under usnet reaches the
#     kernel's service on the shared address, 1000 connections from each side at
#     once never collide on a port, the reserved ports are the kernel's
#     setting plus the stack's range while it runs and the setting again
#     after).
#  host_address_ip6[_afpacket]: the kernel's IPv6 address shared too
#     (afxdp, afpacket; with no --ip): a server on :: under usnet answers a
#     kernel client in the peer namespace over the shared IPv6 address
#     (usnet stat lists the listener and counts the connection, no kernel
#     socket listens there), while the kernel's own IPv6 service on another
#     port of the address answers and the kernel answers ping -6 (the stack
#     sees no ICMPv6); a :: bind under usnet to a port the kernel holds on
#     IPv6, or on IPv4 (dual-stack), gets EADDRINUSE, a free one does not;
#     a client under usnet reaches a peer address new to both the stack and
#     the kernel (its neighbour resolved by the kernel), from the shared
#     address and a port of the stack's range.
#  host_address_two_stacks: two host-address stacks in one namespace each
#     add their own range to the reserved ports and take out only theirs.
#  doctor_veth_and_tap: `usnet doctor IF`'s key lines on a veth and a TAP.
#  dpdk's net_af_xdp takes every frame of the interface: `usnet run` says so
#     in one line when the kernel has an address there (checked here too).
# Usage: tests/host/run.sh [TEST...]   TEST: arp_afxdp_native arp_afxdp_skb
#        arp_afpacket arp_dpdk_af_packet dpdk_af_xdp_warning
#        gw_kernel_routes_other_interface gateway_learned_from_kernel
#        gateway_learned_from_kernel_host_address host_address
#        host_address_ip6 host_address_afpacket host_address_ip6_afpacket
#        host_address_two_stacks doctor_veth_and_tap
#        (default: all)
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
ALL="arp_afxdp_native arp_afxdp_skb arp_afpacket arp_dpdk_af_packet dpdk_af_xdp_warning gw_kernel_routes_other_interface gateway_learned_from_kernel
     gateway_learned_from_kernel_host_address host_address host_address_ip6 host_address_afpacket host_address_ip6_afpacket
     host_address_two_stacks doctor_veth_and_tap"
TESTS=$(echo ${*:-$ALL})   # one line, single spaces
want() { [[ " $TESTS " == *" $1 "* ]]; }

USNET=build/usnet
NC=build/usnet-nc
LIBUSNET=build/libusnet.so
DPDK_PLUGIN=build/libusnet-netif-dpdk.so
PEERS=tests/host/peers.py
UNS=hm-$$-u KNS=hm-$$-k UIF=hmu$$ KIF=hmk$$
SNS=hm-$$-s VIF=hmv$$ WIF=hmw$$   # a second interface of usnet's namespace, to $SNS
KIP=10.81.0.1     # the peer namespace's kernel
UIP=10.81.0.2     # usnet
HIP=10.81.0.3     # the kernel's own address on usnet's interface
KIP6=fd00:81::1   # the peer namespace's kernel, IPv6
KIP6B=fd00:81::2  # and a second address of it, which only a client under usnet talks to
HIP6=fd00:81::3   # the kernel's own IPv6 address on usnet's interface
MIB=100 RATE=12
work=$(mktemp -d /tmp/usnet-host.XXXXXX)

cleanup() {
    ns_stop "$UNS"; ns_stop "$KNS"; ns_stop "$SNS"
    ip netns del "$UNS" 2>/dev/null; ip netns del "$KNS" 2>/dev/null; ip netns del "$SNS" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if ! need_root; then
    for t in $ALL; do want "$t" && skip "$t" "needs root (network namespaces, veth, AF_XDP)"; done
    exit 0
fi
if ! need_cmd ip ethtool ping ss python3 timeout sha256sum; then
    for t in $ALL; do want "$t" && skip "$t" "needs ip, ethtool, ping, ss, python3 (Debian: iproute2 ethtool iputils-ping python3)"; done
    exit 0
fi
if [ ! -x "$USNET" ] || [ ! -e "$LIBUSNET" ]; then
    for t in $ALL; do want "$t" && skip "$t" "usnet run is not part of this build"; done
    exit 0
fi
# Private copies, so that a rebuild during the run cannot swap them (usnet
# run preloads the library next to it).
cp "$USNET" "$LIBUSNET" "$work/" && USNET=$work/usnet LIBUSNET=$work/libusnet.so
[ -x "$NC" ] && cp "$NC" "$work/usnet-nc" && NC=$work/usnet-nc

veth_up() {
    veth_pair "$UNS" "$UIF" "$KNS" "$KIF" "$KIP" 1 || return 1
    ip -n "$UNS" addr add "$HIP/24" dev "$UIF"
}
veth_down() {
    ns_stop "$UNS"; ns_stop "$KNS"
    ip netns del "$UNS" 2>/dev/null; ip netns del "$KNS" 2>/dev/null
}
wait_listen() {   # NS PORT: until a kernel socket listens there (5 s at most)
    for _ in $(seq 50); do ip netns exec "$1" ss -Hltn "sport = :$2" | grep -q . && return 0; sleep 0.1; done
    return 1
}
flush_neighbours() {
    ip -n "$KNS" neigh flush dev "$KIF"
    ip -n "$UNS" neigh flush dev "$UIF"
}

# test_arp NAME BACKEND NETIF_OPTIONS
test_arp() {
    local name=$1 backend=$2 opts=$3 srv cli why="" rounds=0 bad=0 t0 out
    if [ "$backend" = afxdp ] && ! nm -D "$LIBUSNET" 2>/dev/null | grep -q netif_afxdp_open; then
        skip "$name" "this build has no afxdp (Debian: libxdp-dev libbpf-dev clang)"; return
    fi
    if ! veth_up 2>"$work/veth.err"; then
        skip "$name" "cannot build the veth pair: $(head -1 "$work/veth.err")"; veth_down; return
    fi
    # The kernel's own TCP service on its address on usnet's interface.
    ip netns exec "$UNS" python3 "$PEERS" hello-server "$HIP" 7001 >/dev/null 2>"$work/hello.err" &
    wait_listen "$UNS" 7001
    head -c "${MIB}M" /dev/urandom > "$work/data"
    flush_neighbours
    if [ "$backend" = dpdk ]; then
        # A program that starts DPDK's EAL does not run under usnet run's
        # hook: usnet's own netcat serves the file instead.
        ( timeout 60 ip netns exec "$UNS" "$NC" -l --backend dpdk --backend-options "$opts" \
            --iface "$UIF" --ip "$UIP/24" 0.0.0.0 7000 < "$work/data" > "$work/srv.out" 2>&1
          echo $? > "$work/srv.rc"
          echo "sent $((MIB * 1048576)) bytes to $KIP" >> "$work/srv.out" ) &
    else
        ( USNET_NETIF_OPTIONS=$opts timeout 60 ip netns exec "$UNS" "$USNET" run --backend "$backend" \
            --iface "$UIF" --ip "$UIP/24" -- python3 "$PEERS" serve 7000 "$work/data" \
            > "$work/srv.out" 2>&1; echo $? > "$work/srv.rc" ) &
    fi
    srv=$!
    # usnet is up once its address answers ping (which resolves it too).
    for _ in $(seq 100); do
        ip netns exec "$KNS" ping -c 1 -W 1 -q "$UIP" >/dev/null 2>&1 && break
        kill -0 "$srv" 2>/dev/null || break
        sleep 0.1
    done
    if ! ip netns exec "$KNS" ping -c 1 -W 1 -q "$UIP" >/dev/null 2>&1; then
        fail "$name" "usnet run did not come up: $(tail -c 300 "$work/srv.out" | tr '\n' ' ')"
        veth_down; wait "$srv"; return
    fi
    flush_neighbours
    ( timeout 60 ip netns exec "$KNS" python3 "$PEERS" fetch "$UIP" 7000 "$RATE" \
        > "$work/cli.out" 2>&1; echo $? > "$work/cli.rc" ) &
    cli=$!
    # Every second while the download runs: empty caches, then the kernel's
    # address must answer ping and its service must answer a connection.
    while kill -0 "$cli" 2>/dev/null; do
        t0=$(date +%s%N)
        flush_neighbours
        if ! out=$(ip netns exec "$KNS" ping -c 1 -w 2 -q "$HIP" 2>&1); then
            bad=$((bad + 1)); why="ping $HIP: $(grep -m1 loss <<<"$out")"
        elif ! out=$(ip netns exec "$KNS" python3 "$PEERS" hello "$HIP" 7001 2>&1); then
            bad=$((bad + 1)); why="kernel service: $out"
        fi
        kill -0 "$cli" 2>/dev/null && rounds=$((rounds + 1))
        sleep "$(awk -v d=$(( ($(date +%s%N) - t0) / 1000000 )) 'BEGIN { s = (1000 - d) / 1000; print (s > 0 ? s : 0) }')"
    done
    wait "$cli"; wait "$srv"
    local want_sum; want_sum=$(sha256sum < "$work/data" | cut -c1-64)
    if [ "$bad" -gt 0 ]; then
        fail "$name" "$bad of $rounds rounds lost the kernel's $HIP (last: $why); peer's neighbours: $(ip -n "$KNS" neigh show dev "$KIF" | tr '\n' ' ')"
    elif [ "$(cat "$work/cli.rc")" != 0 ]; then
        fail "$name" "the download from usnet failed: $(tail -1 "$work/cli.out")"
    elif [ "$(cat "$work/cli.out")" != "$want_sum $((MIB * 1048576)) bytes from $UIP" ]; then
        fail "$name" "the download from usnet's $UIP was not the file: $(cat "$work/cli.out")"
    elif [ "$(cat "$work/srv.rc")" != 0 ] || ! grep -q "^sent $((MIB * 1048576)) bytes to $KIP\$" "$work/srv.out"; then
        fail "$name" "the server under usnet said: $(tail -c 300 "$work/srv.out" | tr '\n' ' ')"
    elif [ "$rounds" -lt 3 ]; then
        fail "$name" "only $rounds rounds of checks ran during the transfer (3 wanted)"
    else
        pass "$name ($rounds rounds of flushed caches)"
    fi
    veth_down
}

# With --gw, a destination the kernel routes through another interface is
# the kernel's: a second veth from usnet's namespace to a third one ($SNS,
# subnet 10.82.0.0/24) carries the program's connection to a kernel service
# there (which sees the kernel's 10.82.0.1), while a destination only the
# gateway knows (10.83.0.5, on the gateway's loopback) is still reached
# through usnet (the gateway's service sees usnet's $UIP).
test_route_with_gw() {
    local name=gw_kernel_routes_other_interface out
    if ! veth_up 2>"$work/veth.err" || ! ip netns add "$SNS" 2>>"$work/veth.err" ||
        ! ip link add "$VIF" netns "$UNS" type veth peer name "$WIF" netns "$SNS" 2>>"$work/veth.err"; then
        skip "$name" "cannot build the veths: $(head -1 "$work/veth.err")"; veth_down; return
    fi
    ip -n "$UNS" addr add 10.82.0.1/24 dev "$VIF"; ip -n "$UNS" link set "$VIF" up
    ip -n "$SNS" addr add 10.82.0.2/24 dev "$WIF"; ip -n "$SNS" link set "$WIF" up
    ip -n "$SNS" link set lo up
    ip -n "$KNS" addr add 10.83.0.5/32 dev lo
    ip netns exec "$SNS" python3 "$PEERS" hello-server 10.82.0.2 7002 > "$work/sns.out" 2>&1 &
    ip netns exec "$KNS" python3 "$PEERS" hello-server 10.83.0.5 7003 > "$work/kns.out" 2>&1 &
    wait_listen "$SNS" 7002; wait_listen "$KNS" 7003
    out=$(timeout 30 ip netns exec "$UNS" "$USNET" run --backend afpacket --iface "$UIF" --ip "$UIP/24" \
        --gw "$KIP" -- sh -c "python3 $PEERS hello 10.82.0.2 7002 && python3 $PEERS hello 10.83.0.5 7003" 2>&1)
    local rc=$?
    if [ $rc -ne 0 ]; then
        fail "$name" "status $rc: $(tail -c 300 <<<"$out" | tr '\n' ' ')"
    elif ! grep -q "^from 10.82.0.1 port " "$work/sns.out"; then
        fail "$name" "the service behind the second interface saw: $(tr '\n' ' ' < "$work/sns.out")"
    elif ! grep -q "^from $UIP port " "$work/kns.out"; then
        fail "$name" "the service behind the gateway saw: $(tr '\n' ' ' < "$work/kns.out")"
    else
        pass "$name"
    fi
    ns_stop "$SNS"; ip netns del "$SNS" 2>/dev/null
    veth_down
}

# Without --gw, the stack takes the gateway of the kernel's default route
# through its interface: $KNS routes between usnet's veth and a third
# namespace ($SNS, 10.84.0.0/24); usnet's namespace has a default route via
# $KIP on $UIF.  A client under usnet run with no --gw reaches a service in
# $SNS, which sees usnet's $UIP (the kernel's socket would have come from
# $HIP).
test_gateway_from_kernel() {
    local mode=${1:-} name=gateway_learned_from_kernel${1:-} out run_args=(--backend afpacket --iface "$UIF" --ip "$UIP/24") from=$UIP
    if [ "$mode" = _host_address ]; then
        # The shortest form, `usnet run -- PROGRAM`: the interface of the
        # default route, afxdp, and the kernel's $HIP shared; the connection
        # leaves from the stack's reserved ports, which the kernel never
        # picks (the proof that it went through usnet).
        if ! nm -D "$LIBUSNET" 2>/dev/null | grep -q netif_afxdp_open; then
            skip "$name" "this build has no afxdp (Debian: libxdp-dev libbpf-dev clang)"; return
        fi
        run_args=() from=$HIP
    fi
    if ! veth_up 2>"$work/veth.err" || ! ip netns add "$SNS" 2>>"$work/veth.err" ||
        ! ip link add "$VIF" netns "$KNS" type veth peer name "$WIF" netns "$SNS" 2>>"$work/veth.err"; then
        skip "$name" "cannot build the veths: $(head -1 "$work/veth.err")"; veth_down; return
    fi
    ip -n "$KNS" addr add 10.84.0.1/24 dev "$VIF"; ip -n "$KNS" link set "$VIF" up
    ip -n "$SNS" addr add 10.84.0.2/24 dev "$WIF"; ip -n "$SNS" link set "$WIF" up
    ip netns exec "$SNS" ethtool -K "$WIF" tx off >/dev/null; ip netns exec "$KNS" ethtool -K "$VIF" tx off >/dev/null
    ip -n "$SNS" link set lo up
    ip -n "$SNS" route add default via 10.84.0.1
    ip netns exec "$KNS" sysctl -qw net.ipv4.ip_forward=1
    ip -n "$UNS" route add default via "$KIP" dev "$UIF"
    ip netns exec "$SNS" python3 "$PEERS" hello-server 10.84.0.2 7004 > "$work/sns.out" 2>&1 &
    wait_listen "$SNS" 7004
    out=$(timeout 30 ip netns exec "$UNS" "$USNET" run "${run_args[@]}" \
        -- python3 "$PEERS" hello 10.84.0.2 7004 2>&1)
    local rc=$? port
    port=$(awk '/^from / { print $4; exit }' "$work/sns.out")
    if [ $rc -ne 0 ]; then
        fail "$name" "status $rc: $(tail -c 300 <<<"$out" | tr '\n' ' ')"
    elif ! grep -q "^from $from port " "$work/sns.out"; then
        fail "$name" "the service behind the router saw: $(tr '\n' ' ' < "$work/sns.out") (usnet is $from)"
    elif [ "$mode" = _host_address ] && ! [ "${port:-0}" -ge 61440 ]; then
        fail "$name" "the connection came from port $port, not from usnet's reserved 61440-65535"
    else
        pass "$name"
    fi
    ns_stop "$SNS"; ip netns del "$SNS" 2>/dev/null
    veth_down
}

# The counters of the stack on $UIF (`usnet stat` lists every stack here).
stack_stat() { "$USNET" stat 2>/dev/null | awk -v RS= -v want="netif $1 $UIF" 'index($0, want "\n")'; }

# test_host_address_ip6 BACKEND PREFIX: the kernel's IPv6 address shared
# too, on BACKEND (afxdp or afpacket), the tests named PREFIX_*.
test_host_address_ip6() {
    local hb=$1 pre=$2 why="" out st srv
    if ! nm -D "$LIBUSNET" 2>/dev/null | grep -q netif_afxdp_open; then
        skip "${pre}_same_address" "this build has no libbpf programs (Debian: libxdp-dev libbpf-dev clang)"
        skip "${pre}_bind_kernel_port" "this build has no libbpf programs (Debian: libxdp-dev libbpf-dev clang)"
        skip "${pre}_connects_to_peer" "this build has no libbpf programs (Debian: libxdp-dev libbpf-dev clang)"
        return
    fi
    if ! veth_up 2>"$work/veth.err"; then
        skip "$pre" "cannot build the veth pair: $(head -1 "$work/veth.err")"; veth_down; return
    fi
    ip -n "$UNS" addr add "$HIP6/64" dev "$UIF" nodad
    ip -n "$KNS" addr add "$KIP6/64" dev "$KIF" nodad
    # The kernel's own services: on the IPv6 address (7011) and on IPv4 (7001).
    ip netns exec "$UNS" python3 "$PEERS" hello-server "$HIP6" 7011 >/dev/null 2>&1 &
    ip netns exec "$UNS" python3 "$PEERS" hello-server "$HIP" 7001 >/dev/null 2>&1 &
    wait_listen "$UNS" 7011; wait_listen "$UNS" 7001
    ( timeout 60 ip netns exec "$UNS" "$USNET" run --backend "$hb" --iface "$UIF" -- \
        python3 "$PEERS" hello-server :: 7010 > "$work/srv6.out" 2>&1 ) &
    srv=$!
    for _ in $(seq 100); do
        stack_stat "$hb" | grep -q "tcp LISTEN local=\[::\]:7010 " && break
        kill -0 "$srv" 2>/dev/null || break
        sleep 0.1
    done
    if ! stack_stat "$hb" | grep -q "tcp LISTEN local=\[::\]:7010 "; then
        why="usnet run did not listen on [::]:7010: $(tail -c 300 "$work/srv6.out" | tr '\n' ' ')"
    elif ip netns exec "$UNS" ss -Hltn "sport = :7010" | grep -q .; then
        why="a kernel socket listens on port 7010: the server is not on usnet"
    elif ! out=$(ip netns exec "$KNS" python3 "$PEERS" hello "$HIP6" 7010 :: 2>&1); then
        why="usnet's server on [$HIP6]:7010: $out"
    elif ! grep -q "^from $KIP6 port" "$work/srv6.out"; then
        why="usnet's server did not see the peer's $KIP6: $(tr '\n' ' ' < "$work/srv6.out")"
    elif ! out=$(ip netns exec "$KNS" python3 "$PEERS" hello "$HIP6" 7011 2>&1); then
        why="the kernel's service on [$HIP6]:7011: $out"
    elif ! out=$(ip netns exec "$KNS" ping -6 -c 1 -w 2 -q "$HIP6" 2>&1); then
        why="ping -6 $HIP6: $(grep -m1 loss <<<"$out")"
    else
        sleep 1.2   # the counters are published once a second
        st=$(stack_stat "$hb")
        if ! [ "$(awk '$1 == "tcp_accepted" { print $2 }' <<<"$st")" -ge 1 ] 2>/dev/null; then
            why="usnet stat does not count the connection: $(grep tcp_accepted <<<"$st")"
        elif [ "$(awk '$1 == "icmp6_rx" { print $2 }' <<<"$st")" != 0 ]; then
            why="the stack saw ICMPv6 (the kernel's: the echo request, ND): $(grep icmp6_rx <<<"$st")"
        fi
    fi
    if [ -n "$why" ]; then fail "$pre"_same_address "$why"; else pass "$pre"_same_address; fi

    # Binds of an IPv6 socket on :: (dual-stack) under usnet: the kernel
    # holds 7011 on its IPv6 address and 7001 on IPv4 (a :: bind conflicts
    # with both families, as on Linux); 7012 is free.
    out=$(timeout 20 ip netns exec "$UNS" "$USNET" run --backend "$hb" --iface "$UIF" -- \
        sh -c "python3 $PEERS bind6 7011; python3 $PEERS bind6 7001; python3 $PEERS bind6 7012" 2>&1)
    if [ "$out" != "$(printf 'EADDRINUSE\nEADDRINUSE\nbound')" ]; then
        fail "$pre"_bind_kernel_port "binding [::]:7011, 7001 (the kernel's) then 7012 under usnet said: $(tr '\n' ' ' <<<"$out")"
    else
        pass "$pre"_bind_kernel_port
    fi

    # A client under usnet reaches a peer address that neither the stack
    # nor the kernel has met (the stack has the kernel resolve it, and
    # reads the answer from the kernel's table): the peer sees the shared
    # address and a port of the stack's range (the kernel's own ports stay
    # outside it).
    ip -n "$KNS" addr add "$KIP6B/64" dev "$KIF" nodad
    ip netns exec "$KNS" python3 "$PEERS" hello-server "$KIP6B" 7013 > "$work/peer6.out" 2>&1 &
    wait_listen "$KNS" 7013
    local port
    if ! out=$(timeout 20 ip netns exec "$UNS" "$USNET" run --backend "$hb" --iface "$UIF" -- \
        python3 "$PEERS" hello "$KIP6B" 7013 2>&1); then
        fail "$pre"_connects_to_peer "under usnet, [$KIP6B]:7013: $(tail -c 200 <<<"$out")"
    elif ! port=$(sed -n "s/^from $HIP6 port \([0-9]*\)$/\1/p" "$work/peer6.out") || [ -z "$port" ]; then
        fail "$pre"_connects_to_peer "the peer did not see $HIP6: $(tr '\n' ' ' < "$work/peer6.out")"
    elif [ "$port" -lt 61440 ]; then
        fail "$pre"_connects_to_peer "the peer saw port $port, outside the stack's range 61440-65535: the kernel's"
    else
        pass "$pre"_connects_to_peer
    fi
    kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null
    veth_down
}

# test_host_address BACKEND PREFIX: the tests, named PREFIX_*, on BACKEND.
test_host_address() {
    local hb=$1 pre=$2 t rs why="" st
    if ! nm -D "$LIBUSNET" 2>/dev/null | grep -q netif_afxdp_open; then
        for t in same_address bind_kernel_port reaches_kernel_service 1000_connections_each_side reserved_ports; do
            skip "${pre}_$t" "this build has no libbpf programs (Debian: libxdp-dev libbpf-dev clang)"
        done
        return
    fi
    if ! veth_up 2>"$work/veth.err"; then
        skip "$pre" "cannot build the veth pair: $(head -1 "$work/veth.err")"; veth_down; return
    fi
    ip netns exec "$UNS" sysctl -qw net.ipv4.ip_local_reserved_ports=5000
    ip netns exec "$UNS" python3 "$PEERS" hello-server "$HIP" 7001 > "$work/hello.out" 2>&1 &
    wait_listen "$UNS" 7001
    head -c 4M /dev/urandom > "$work/data"
    rm -f "$work/hold"
    flush_neighbours
    ( timeout 60 ip netns exec "$UNS" "$USNET" run --backend "$hb" --iface "$UIF" -- \
        python3 "$PEERS" serve 7000 "$work/data" "$work/hold" > "$work/srv.out" 2>&1; echo $? > "$work/srv.rc" ) &
    local srv=$!
    for _ in $(seq 100); do
        stack_stat "$hb" | grep -q "tcp LISTEN local=[0-9.]*:7000 " && break
        kill -0 "$srv" 2>/dev/null || break
        sleep 0.1
    done
    rs=$(ip netns exec "$UNS" cat /proc/sys/net/ipv4/ip_local_reserved_ports)
    if ! stack_stat "$hb" | grep -q "tcp LISTEN local=[0-9.]*:7000 "; then
        why="usnet run did not listen on $HIP:7000: $(tail -c 300 "$work/srv.out" | tr '\n' ' ')"
    elif ip netns exec "$UNS" ss -Hltn "sport = :7000" | grep -q .; then
        why="a kernel socket listens on port 7000: the server is not on usnet"
    elif ! out=$(ip netns exec "$KNS" ping -c 1 -w 2 -q "$HIP" 2>&1); then
        why="ping $HIP: $(grep -m1 loss <<<"$out")"
    elif ! out=$(ip netns exec "$KNS" python3 "$PEERS" hello "$HIP" 7001 2>&1); then
        why="the kernel's service on $HIP:7001: $out"
    elif ! out=$(timeout 20 ip netns exec "$KNS" python3 "$PEERS" fetch "$HIP" 7000 1000 2>&1); then
        why="the download from usnet on $HIP:7000: $out"
    elif [ "$out" != "$(sha256sum < "$work/data" | cut -c1-64) $((4 * 1048576)) bytes from $HIP" ]; then
        why="the download from usnet on $HIP:7000 was not the file: $out"
    else
        sleep 1.2   # the counters are published once a second
        st=$(stack_stat "$hb")
        [ "$(awk '$1 == "tcp_accepted" { print $2 }' <<<"$st")" -ge 1 ] 2>/dev/null ||
            why="usnet stat does not count the connection: $(grep tcp_accepted <<<"$st")"
    fi
    if [ -n "$why" ]; then fail "$pre"_same_address "$why"; else pass "$pre"_same_address; fi

    # Another program on the same stack: a port a kernel listener holds is
    # refused as Linux refuses it; a free one is not.
    # The listener on 7002 must be usnet's: listed by usnet stat, unknown to
    # the kernel.
    rm -f "$work/hold2"
    ( timeout 20 ip netns exec "$UNS" "$USNET" run --backend "$hb" --iface "$UIF" -- \
        sh -c "python3 $PEERS bind 7001; python3 $PEERS bind 7002 $work/hold2" > "$work/bind.out" 2>&1 ) &
    local binder=$!
    for _ in $(seq 100); do grep -q bound "$work/bind.out" && break; kill -0 $binder 2>/dev/null || break; sleep 0.1; done
    for _ in $(seq 30); do   # usnet stat's view is published once a second
        stack_stat "$hb" | grep -q "tcp LISTEN local=[0-9.]*:7002 " && break; sleep 0.1
    done
    if [ "$(cat "$work/bind.out")" != "$(printf 'EADDRINUSE\nbound')" ]; then
        fail "$pre"_bind_kernel_port "binding 7001 (the kernel's) then 7002 under usnet said: $(tr '\n' ' ' < "$work/bind.out")"
    elif ! stack_stat "$hb" | grep -q "tcp LISTEN local=[0-9.]*:7002 " || ip netns exec "$UNS" ss -Hltn "sport = :7002" | grep -q .; then
        fail "$pre"_bind_kernel_port "the listener on 7002 is not usnet's: $(ip netns exec "$UNS" ss -Hltn "sport = :7002")"
    else
        pass "$pre"_bind_kernel_port
    fi
    touch "$work/hold2"; wait $binder

    # A program under usnet reaches the kernel's own service on the shared
    # address (a port that is not the stack's is the kernel's).
    out=$(timeout 20 ip netns exec "$UNS" "$USNET" run --backend "$hb" --iface "$UIF" -- \
        python3 "$PEERS" hello "$HIP" 7001 2>&1)
    if [ $? -eq 0 ]; then
        pass "$pre"_reaches_kernel_service
    else
        fail "$pre"_reaches_kernel_service "under usnet, $HIP:7001 (the kernel's): $(tail -c 200 <<<"$out")"
    fi

    # 1000 connections from the kernel and 1000 from usnet at once, from
    # the one address to a service in the peer namespace: each side's ports
    # are its own (usnet's in its reserved range, the kernel's outside it),
    # so none collides and every connection is answered.
    ip netns exec "$KNS" python3 "$PEERS" hello-server "$KIP" 7005 >/dev/null 2>&1 &
    wait_listen "$KNS" 7005
    ( ulimit -n 4096; timeout 60 ip netns exec "$UNS" python3 "$PEERS" connect-many "$KIP" 7005 1000 \
        > "$work/kmany.out" 2>&1 ) &
    local kmany=$!
    out=$(ulimit -n 4096; timeout 60 ip netns exec "$UNS" "$USNET" run --backend "$hb" --iface "$UIF" -- \
        python3 "$PEERS" connect-many "$KIP" 7005 1000 2>&1)
    wait $kmany
    local ulo uhi klo khi
    read -r ulo uhi <<<"$(sed -n 's/^1000 connections from ports \([0-9]*\)-\([0-9]*\)$/\1 \2/p' <<<"$out")"
    read -r klo khi <<<"$(sed -n 's/^1000 connections from ports \([0-9]*\)-\([0-9]*\)$/\1 \2/p' "$work/kmany.out")"
    if [ -z "$ulo" ]; then
        fail "$pre"_1000_connections_each_side "usnet's client: $(tail -c 300 <<<"$out" | tr '\n' ' ')"
    elif [ -z "$klo" ]; then
        fail "$pre"_1000_connections_each_side "the kernel's client: $(tail -c 300 "$work/kmany.out" | tr '\n' ' ')"
    elif [ "$ulo" -lt 61440 ] || [ "$khi" -ge 61440 ]; then
        fail "$pre"_1000_connections_each_side "usnet used ports $ulo-$uhi, the kernel $klo-$khi: they overlap usnet's range 61440-65535"
    else
        pass "${pre}_1000_connections_each_side (usnet $ulo-$uhi, kernel $klo-$khi)"
    fi

    touch "$work/hold"; wait "$srv"
    # The owner leaves a second after the last program: the setting is back.
    local after
    for _ in $(seq 50); do
        after=$(ip netns exec "$UNS" cat /proc/sys/net/ipv4/ip_local_reserved_ports)
        [ "$after" = 5000 ] && break
        sleep 0.1
    done
    if [ "$rs" != "5000,61440-65535" ]; then
        fail "$pre"_reserved_ports "while usnet ran, ip_local_reserved_ports was '$rs', not '5000,61440-65535'"
    elif [ "$after" != 5000 ]; then
        fail "$pre"_reserved_ports "after usnet ran, ip_local_reserved_ports is '$after', not '5000'"
    else
        pass "$pre"_reserved_ports
    fi
    veth_down
}

# Two stacks in host-address mode in one namespace, on two interfaces with
# ranges of their own: each takes out only its own range when it goes.
reserved_now() { ip netns exec "$UNS" cat /proc/sys/net/ipv4/ip_local_reserved_ports; }
wait_reserved() {   # wait (5 s at most) until the setting is $1
    for _ in $(seq 50); do [ "$(reserved_now)" = "$1" ] && return 0; sleep 0.1; done
    return 1
}
test_host_two_stacks() {
    local name=host_address_two_stacks_reserved_ports why="" a b
    if ! nm -D "$LIBUSNET" 2>/dev/null | grep -q netif_afxdp_open; then
        skip "$name" "this build has no afxdp (Debian: libxdp-dev libbpf-dev clang)"; return
    fi
    if ! veth_up 2>"$work/veth.err" || ! ip netns add "$SNS" 2>>"$work/veth.err" ||
        ! ip link add "$VIF" netns "$UNS" type veth peer name "$WIF" netns "$SNS" 2>>"$work/veth.err"; then
        skip "$name" "cannot build the veths: $(head -1 "$work/veth.err")"; veth_down; return
    fi
    ip -n "$UNS" addr add 10.82.0.1/24 dev "$VIF"; ip -n "$UNS" link set "$VIF" up
    ip -n "$SNS" link set "$WIF" up
    ip netns exec "$UNS" ethtool -K "$VIF" tx off >/dev/null; ip netns exec "$SNS" ethtool -K "$WIF" tx off >/dev/null
    ip netns exec "$UNS" sysctl -qw net.ipv4.ip_local_reserved_ports=5000
    rm -f "$work/hold-a" "$work/hold-b"
    ( timeout 30 ip netns exec "$UNS" "$USNET" run --backend afxdp --iface "$UIF" --host-ports 61440-62000 -- \
        python3 "$PEERS" bind 7010 "$work/hold-a" > "$work/a.out" 2>&1 ) &
    a=$!
    wait_reserved 5000,61440-62000 || why="with stack A: '$(reserved_now)'"
    ( timeout 30 ip netns exec "$UNS" "$USNET" run --backend afxdp --iface "$VIF" --host-ports 63000-64000 -- \
        python3 "$PEERS" bind 7010 "$work/hold-b" > "$work/b.out" 2>&1 ) &
    b=$!
    [ -z "$why" ] && ! wait_reserved 5000,61440-62000,63000-64000 && why="with stacks A and B: '$(reserved_now)'"
    touch "$work/hold-a"; wait $a
    [ -z "$why" ] && ! wait_reserved 5000,63000-64000 && why="after A, with B: '$(reserved_now)'"
    touch "$work/hold-b"; wait $b
    [ -z "$why" ] && ! wait_reserved 5000 && why="after both: '$(reserved_now)'"
    if [ -n "$why" ]; then
        fail "$name" "ip_local_reserved_ports $why ($(cat "$work/a.out" "$work/b.out" | tr '\n' ' '))"
    else
        pass "$name"
    fi
    ns_stop "$SNS"; ip netns del "$SNS" 2>/dev/null
    veth_down
}

# usnet doctor: the key lines on a veth (with a kernel address) and on a
# TAP (without), one for a missing interface (status 1), and the page 0 fix
# for a user who cannot map it.
test_doctor() {
    local name=doctor_veth_and_tap out why="" tap=hmt$$ l
    if ! veth_up 2>"$work/veth.err"; then
        skip "$name" "cannot build the veth pair: $(head -1 "$work/veth.err")"; veth_down; return
    fi
    ip -n "$UNS" tuntap add "$tap" mode tap && ip -n "$UNS" link set "$tap" up
    out=$(ip netns exec "$UNS" "$USNET" doctor "$UIF" 2>&1)
    for l in "^interface $UIF\$" "^  driver  *veth\$" "^  queues  *1 " "^  xdp native  *(yes|no)\$" \
        "^  af_xdp zero-copy  *no " "^  kernel address  *$HIP/24 " "^  veth peer  *must not offload" \
        "^usnet run --iface $UIF would use\$" "^  backend  *--backend afxdp" "^  address  *$HIP/24 shared" \
        "^  privileges  *root " "^  syscall user dispatch  *(yes|no)"; do
        grep -Eq "$l" <<<"$out" || { why="veth: no line like '$l'"; break; }
    done
    if [ -z "$why" ]; then
        out=$(ip netns exec "$UNS" "$USNET" doctor "$tap" 2>&1)
        for l in "^interface $tap\$" "^  driver  *tun\$" "^  kernel address  *none " "^  address  *--ip ADDR/PREFIX"; do
            grep -Eq "$l" <<<"$out" || { why="tap: no line like '$l'"; break; }
        done
    fi
    if [ -z "$why" ]; then
        out=$(ip netns exec "$UNS" "$USNET" doctor hmnone$$ 2>&1); local rc=$?
        [ $rc -eq 1 ] && grep -Eq "^  exists  *no " <<<"$out" && grep -Eq "^ +fix: name an existing interface" <<<"$out" ||
            why="a missing interface: status $rc, $(tr '\n' ' ' <<<"$out" | tail -c 200)"
    fi
    if [ -z "$why" ] && need_cmd setpriv; then
        chmod 755 "$work"
        out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$USNET" doctor 2>&1)
        if [ "$(cat /proc/sys/vm/mmap_min_addr)" != 0 ]; then
            grep -Eq "^  page 0  *not mappable" <<<"$out" && grep -Eq "^ +fix: run as root \(CAP_SYS_RAWIO" <<<"$out" ||
                why="as nobody: no page 0 fix: $(tr '\n' ' ' <<<"$out" | head -c 300)"
        fi
        chmod 700 "$work"
    fi
    if [ -n "$why" ]; then fail "$name" "$why"; else pass "$name"; fi
    veth_down
}

# dpdk's af_xdp device loads DPDK's own XDP program, which takes every frame:
# usnet run says so in one line when the kernel has an address there.
test_dpdk_warning() {
    local name=dpdk_af_xdp_warning
    if [ ! -e "$DPDK_PLUGIN" ]; then skip "$name" "built without DPDK (Debian: libdpdk-dev)"; return; fi
    if ! veth_up 2>"$work/veth.err"; then
        skip "$name" "cannot build the veth pair: $(head -1 "$work/veth.err")"; veth_down; return
    fi
    cp "$DPDK_PLUGIN" "$work/"
    USNET_NETIF_DPDK_PLUGIN=$work/${DPDK_PLUGIN##*/} USNET_NETIF_OPTIONS=vdev=net_af_xdp \
        timeout 30 ip netns exec "$UNS" "$USNET" run --backend dpdk --iface "$UIF" --ip "$UIP/24" -- true \
        > "$work/dpdk.out" 2>&1
    if grep -q "net_af_xdp takes every frame of $UIF.*$HIP" "$work/dpdk.out"; then
        pass "$name"
    else
        fail "$name" "no warning about the kernel's $HIP: $(tail -c 300 "$work/dpdk.out" | tr '\n' ' ')"
    fi
    veth_down
}

want arp_afxdp_native && test_arp arp_afxdp_native afxdp mode=native
want arp_afxdp_skb && test_arp arp_afxdp_skb afxdp mode=skb
want arp_afpacket && test_arp arp_afpacket afpacket ""
if want arp_dpdk_af_packet && [ -e "$DPDK_PLUGIN" ]; then
    cp "$DPDK_PLUGIN" "$work/" && export USNET_NETIF_DPDK_PLUGIN=$work/${DPDK_PLUGIN##*/}
    test_arp arp_dpdk_af_packet dpdk vdev=net_af_packet
elif want arp_dpdk_af_packet; then
    skip arp_dpdk_af_packet "built without DPDK (Debian: libdpdk-dev)"
fi
want dpdk_af_xdp_warning && test_dpdk_warning
want gw_kernel_routes_other_interface && test_route_with_gw
want gateway_learned_from_kernel && test_gateway_from_kernel
want gateway_learned_from_kernel_host_address && test_gateway_from_kernel _host_address
want host_address && test_host_address afxdp host_address
want host_address_ip6 && test_host_address_ip6 afxdp host_address_ip6
want host_address_afpacket && test_host_address afpacket host_address_afpacket
want host_address_ip6_afpacket && test_host_address_ip6 afpacket host_address_ip6_afpacket
want host_address_two_stacks && test_host_two_stacks
want doctor_veth_and_tap && test_doctor
exit 0
