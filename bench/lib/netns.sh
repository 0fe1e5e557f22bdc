# shellcheck shell=bash
# Shared by the bench/ scripts that own their network (source it): two
# network namespaces joined by a veth pair, servers pinned to CPU 0 and
# clients to CPU 1, and a TAP in the server namespace that the server's
# kernel routes to, for `usnet run --backend tap`.  Names carry a prefix and
# the script's pid, so that concurrent runs never meet.
#
#   netns_setup PREFIX NET   (e.g. netns_setup bapp 65)
#   server namespace PREFIX-$$-s: veth ${PREFIX:0:2}$$s, kernel 10.NET.0.1,
#                                 usnet on the veth 10.NET.0.11,
#                                 TAP ${PREFIX:0:2}$$t, kernel side 10.NET.1.1,
#                                 usnet on the TAP 10.NET.1.2
#   client namespace PREFIX-$$-c: veth ${PREFIX:0:2}$$c, kernel 10.NET.0.2
#   IPv6 on the veth: usnet server fd00:NET::11, usnet client fd00:NET::12,
#   the client's kernel fd00:NET::2 (no DAD); neither veth end has a kernel
#   link-local address (addrgenmode none): usnet's, from the same MAC,
#   would be a duplicate
#   $netns_tmp: a scratch directory, removed at exit
#
# Every process started with netns_server is killed, and both namespaces
# deleted, when the script exits (netns_setup installs the trap).

netns_pids=()
netns_tmp=""

netns_die() {
    echo "bench: $*" >&2
    exit 1
}

netns_cleanup() {
    local p ns
    for p in "${netns_pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${netns_pids[@]}"; do wait "$p" 2>/dev/null; done
    for ns in "${SRV_NS:-}" "${CLI_NS:-}"; do
        [ -n "$ns" ] || continue
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
        ip netns del "$ns" 2>/dev/null
    done
    [ -n "$netns_tmp" ] && rm -rf "$netns_tmp"
}

netns_setup() {
    local prefix=$1 net=$2 short=${1:0:2}
    SRV_NS=$prefix-$$-s CLI_NS=$prefix-$$-c
    SRV_IF=$short$$s CLI_IF=$short$$c TAP_IF=$short$$t
    SRV_KIP=10.$net.0.1 CLI_KIP=10.$net.0.2 SRV_UIP=10.$net.0.11
    SRV_UIP6=fd00:$net::11 CLI_UIP6=fd00:$net::12 CLI_KIP6=fd00:$net::2
    TAP_KIP=10.$net.1.1 TAP_UIP=10.$net.1.2
    [ "$(id -u)" -eq 0 ] || netns_die "needs root (network namespaces)"
    trap netns_cleanup EXIT
    netns_tmp=$(mktemp -d /tmp/usnet-netns.XXXXXX)
    trap 'exit 130' INT TERM
    ip netns add "$SRV_NS" && ip netns add "$CLI_NS" || netns_die "cannot create namespaces"
    ip link add "$SRV_IF" netns "$SRV_NS" type veth peer name "$CLI_IF" netns "$CLI_NS" ||
        netns_die "cannot create the veth pair"
    ip -n "$SRV_NS" link set lo up
    ip -n "$CLI_NS" link set lo up
    ip -n "$SRV_NS" addr add "$SRV_KIP/24" dev "$SRV_IF"
    ip -n "$CLI_NS" addr add "$CLI_KIP/24" dev "$CLI_IF"
    ip -n "$SRV_NS" link set "$SRV_IF" addrgenmode none
    ip -n "$CLI_NS" link set "$CLI_IF" addrgenmode none
    ip -n "$CLI_NS" -6 addr add "$CLI_KIP6/64" dev "$CLI_IF" nodad
    ip -n "$SRV_NS" link set "$SRV_IF" up
    ip -n "$CLI_NS" link set "$CLI_IF" up
    # A veth sends CHECKSUM_PARTIAL frames (no L4 checksum) unless told not to.
    ip netns exec "$SRV_NS" ethtool -K "$SRV_IF" tx off >/dev/null 2>&1
    ip netns exec "$CLI_NS" ethtool -K "$CLI_IF" tx off >/dev/null 2>&1
    # The TAP subnet is reached through the server namespace's kernel.
    if ip netns exec "$SRV_NS" ip tuntap add "$TAP_IF" mode tap 2>/dev/null; then
        ip -n "$SRV_NS" addr add "$TAP_KIP/24" dev "$TAP_IF"
        ip -n "$SRV_NS" link set "$TAP_IF" up
        ip netns exec "$SRV_NS" sysctl -qw net.ipv4.ip_forward=1
        ip -n "$CLI_NS" route add "${TAP_KIP%.*}.0/24" via "$SRV_KIP"
    else
        TAP_IF=""
    fi
}

# in_srv CMD... / in_cli CMD...: run in a namespace, on its CPU.
in_srv() { ip netns exec "$SRV_NS" taskset -c 0 "$@"; }
in_cli() { ip netns exec "$CLI_NS" taskset -c 1 "$@"; }

# netns_wait_port IP PORT: until the client namespace can connect (10 s).
netns_wait_port() {
    ip netns exec "$CLI_NS" timeout 10 bash -c \
        "until (exec 3<>/dev/tcp/$1/$2) 2>/dev/null; do sleep 0.05; done"
}

# netns_server LOG CMD...: start a server in the server namespace on CPU 0,
# its output in LOG (exec'd, not a shell function, so $! is the server).
netns_server() {
    local log=$1
    shift
    ip netns exec "$SRV_NS" taskset -c 0 "$@" >"$log" 2>&1 &
    NETNS_SERVER_PID=$!
    netns_pids+=($!)
}

# netns_stop_server: stop the last server and anything it left in the server
# namespace, then let the device settle (an XDP program detaching).
netns_stop_server() {
    kill "$NETNS_SERVER_PID" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        kill -0 "$NETNS_SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$NETNS_SERVER_PID" 2>/dev/null
    wait "$NETNS_SERVER_PID" 2>/dev/null
    ip netns pids "$SRV_NS" 2>/dev/null | xargs -r kill -9 2>/dev/null
    # A server killed by a signal may leave its XDP program on the veth,
    # and the next afxdp server would refuse the device.
    ip -n "$SRV_NS" link set dev "$SRV_IF" xdp off 2>/dev/null
    ip -n "$SRV_NS" link set dev "$SRV_IF" xdpgeneric off 2>/dev/null
    sleep 0.3
}

# shellcheck disable=SC2034  # usnet_args and usnet_ip are for the caller
# netns_usnet_args BACKEND: sets usnet_args to the `usnet run` network options
# for BACKEND (the veth for afxdp/afpacket, the routed TAP for tap) and
# usnet_ip to the address the server will have; 1 when not available.
netns_usnet_args() {
    case $1 in
    tap)
        [ -n "$TAP_IF" ] || return 1
        usnet_args=(--backend tap --iface "$TAP_IF" --ip "$TAP_UIP/24" --gw "$TAP_KIP")
        usnet_ip=$TAP_UIP ;;
    *)
        usnet_args=(--backend "$1" --iface "$SRV_IF" --ip "$SRV_UIP/24")
        usnet_ip=$SRV_UIP ;;
    esac
}
