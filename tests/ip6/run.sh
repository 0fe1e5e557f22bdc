#!/usr/bin/env bash
# IPv6 under `usnet run --ip6` against the Linux kernel.  In most tests the
# program is a shell that says "up" and sleeps: the stack answers ping and
# Neighbor Discovery by itself while the program lives.  The addresses
# exist only on the stack (no kernel interface has them), and `usnet stat`
# must count the ICMPv6 and ND it did.
#  cli_errors: bad --ip6/--gw6 values are refused in one line
#     (`usnet run: --ip6 ...`, exit 2) before anything runs.
#  afxdp, afpacket: a veth from usnet's namespace to a kernel's, which also
#     routes to a host behind it (a third namespace, fd00:88::/64).
#     `usnet run --ip6 fd00:77::2/64 --gw6 <the router's link-local>`:
#     the host's ping to fd00:77::2 is answered (the replies leave through
#     the gateway: a capture on the kernel's end shows the stack's NS for
#     the router's link-local address); the kernel's ping to fd00:77::2 and
#     to the stack's link-local address (fe80:: from its MAC) are answered
#     and its neighbour entry for fd00:77::2 is REACHABLE with the stack's
#     MAC; a ping from a second kernel address the stack has never heard of
#     (the kernel already knows the stack's MAC, so it sends no NS) is
#     answered after the stack's own NS for it.  afxdp: --ip6 in
#     host-address mode (--ip host, or no --ip), where the stack shares the
#     kernel's IPv6 addresses instead, is refused in one line, and
#     so is the kernel's link-local address from the same MAC on usnet's
#     end, which `usnet doctor` names.  afpacket: the solicited-node MAC of
#     the address is in the device's multicast list while the stack runs.
#  sockets6 (afxdp, the veth above): unmodified programs' AF_INET6 sockets
#     on the stack.  python3's http.server bound to :: under usnet run
#     answers curl -6 from the kernel (fd00:77::1) and from the host behind
#     the router (fd00:88::2, through --gw6), and curl over IPv4, logging
#     the clients as fd00:77::1, fd00:88::2 and ::ffff:10.77.0.1; usnet
#     stat counts the connections it accepted.  The same with Node.js
#     (listen(port, '::'); skipped with the reason when node is not
#     installed).  curl -6 under usnet run fetches from a kernel nginx on
#     fd00:77::1, which logs fd00:77::2, an address only the stack has.
#     tests/ip6/corners.py prints the same lines under usnet run as on the
#     kernel of the peer namespace: IPV6_V6ONLY's default and a V6ONLY
#     listener, the names of a :: listener and of its IPv6, IPv4 and
#     v4-mapped connections, IPV6_UNICAST_HOPS/TCLASS, short and AF_UNSPEC
#     addresses, ::1 with nobody there, IPV6_PKTINFO on UDP.
#  mld (afxdp, afpacket): usnet's end of a second veth whose peer is a
#     port of a Linux bridge in the kernel's namespace that snoops MLD and
#     queries (mcast_snooping 1, mcast_querier 1, mld_version 2, a query a
#     second, memberships kept 3 s) and floods no unregistered multicast
#     to that port (mcast_flood off), so that only a report of the stack's
#     brings it Neighbor Solicitations.  `usnet run --ip6 fd00:7a::2/64`:
#     `bridge mdb show` lists the stack's solicited-node groups
#     (ff02::1:ff00:2 and its link-local address's) on the port, still 5 s
#     later (the stack answers the bridge's queries: usnet stat counts
#     them); a ping from the host namespace on another port of the bridge
#     to fd00:7a::2 is answered (its NS came through the snooping: what
#     the bridge device itself sends is flooded whatever mcast_flood
#     says, so the kernel's own namespace does not ping); a capture on
#     the port reads the stack's reports as MLDv2 CHANGE_TO_EXCLUDE
#     behind Router Alert 0 with hop limit 1.
#  tap: the kernel's end of a TAP pings the stack's global and link-local
#     addresses; its neighbour entry is REACHABLE.
#  dad_duplicate: the kernel already holds fd00:77::3 (nodad): `usnet run
#     --ip6 fd00:77::3/64` refuses in one line naming it and exits non-zero;
#     the program never runs.
#  router_discovery (afpacket, the veth above): radvd on the kernel's end
#     advertises itself as default router, the prefixes fd00:77::/64 and
#     fd00:78::/64 on-link, MTU 1400 and hop limit 33.  Under `usnet run
#     --ip6 fd00:77::2/64` WITHOUT --gw6, python3's http.server on ::: a
#     capture shows the stack's Router Solicitation (from its link-local
#     address to ff02::2); the host behind the router (fd00:88::2) pings
#     fd00:77::2 and fetches from it with curl, so the stack sends through
#     the router it learned; its SYN-ACK carries MSS 1340 (1400 - 60) and
#     hop limit 33; a ping from the kernel's fd00:78::1 is answered after
#     the stack's own NS for fd00:78::1 (on-link from the RA, not through
#     the router); `usnet stat` counts the RS sent, the RAs taken, one
#     default router and the prefixes.  Then curl -6 under usnet run
#     (no --gw6) fetches from a server on the host behind the router,
#     which logs fd00:77::2: once the stack learned its router, off-prefix
#     destinations are the stack's.
# Needs root (namespaces, veth, TAP, AF_XDP, a bridge), ip, bridge, ethtool,
# ping, tcpdump; radvd for router_discovery.
# Usage: tests/ip6/run.sh [TEST...]   (default: all)
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
ALL="cli_errors afxdp afpacket sockets6 tap dad_duplicate router_discovery mld"
TESTS=$(echo ${*:-$ALL})
want() { [[ " $TESTS " == *" $1 "* ]]; }

USNET=build/usnet
UNS=v6-$$-u KNS=v6-$$-k HNS=v6-$$-h TNS=v6-$$-t
UIF=v6u$$ KIF=v6k$$ RIF=v6r$$ HIF=v6h$$ TAP=v6t$$
KIP=10.77.0.1 UIP=10.77.0.2
work=$(mktemp -d /tmp/usnet-ip6.XXXXXX)

cleanup() {
    local ns
    for ns in "$UNS" "$KNS" "$HNS" "$TNS"; do ns_stop "$ns"; ip netns del "$ns" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if [ ! -x "$USNET" ] || [ ! -e build/libusnet.so ]; then
    for t in $ALL; do want "$t" && skip "$t" "build/usnet or build/libusnet.so not built (make)"; done
    exit 0
fi

# ---- cli_errors ----------------------------------------------------------

# refused NAME WANT ARGS...: usnet run ARGS -- true exits 2 with the one
# line WANT.
refused() {
    local name=$1 want=$2 out rc
    shift 2
    out=$("$USNET" run --backend tap --iface v6none --ip 10.0.0.2/24 "$@" -- sh -c 'echo ran' 2>&1)
    rc=$?
    [ "$rc" -eq 2 ] && [ "$out" = "$want" ] && return 0
    echo "$name: usnet run $* gave status $rc and '$out', not 2 and '$want'"
    return 1
}

if want cli_errors; then
    ok=1
    refused no_prefix "usnet run: --ip6 fd00:99::2: not ADDR/PREFIX (like fd00::2/64)" --ip6 fd00:99::2 || ok=0
    refused multicast "usnet run: --ip6 ff02::1/64: ff02::1 is not a unicast IPv6 address" --ip6 ff02::1/64 || ok=0
    refused prefix "usnet run: --ip6 fd00:99::2/129: the prefix length must be 1 to 128" --ip6 fd00:99::2/129 || ok=0
    refused twice "usnet run: --ip6 fd00:99::2/64: given twice" --ip6 fd00:99::2/64 --ip6 fd00:99::2/64 || ok=0
    refused five "usnet run: --ip6 fd00:99::5/64: more than 4 addresses" --ip6 fd00:99::1/64 --ip6 fd00:99::2/64 \
        --ip6 fd00:99::3/64 --ip6 fd00:99::4/64 --ip6 fd00:99::5/64 || ok=0
    refused gw6_alone "usnet run: --gw6 fe80::1 needs an IPv6 address of the stack: --ip6 ADDR/PREFIX" \
        --gw6 fe80::1 || ok=0
    refused gw6_bad "usnet run: --gw6 'ff02::2' is not a unicast IPv6 address" --ip6 fd00:99::2/64 --gw6 ff02::2 || ok=0
    # The first --ip6 replaces USNET_IP6 (the check goes on to the interface).
    out=$(USNET_IP6=bad "$USNET" run --backend tap --iface v6none --ip 10.0.0.2/24 --ip6 fd00:99::2/64 -- true 2>&1)
    [[ "$out" == "usnet run: interface v6none not found"* ]] ||
        { echo "env_replaced: USNET_IP6=bad with --ip6 fd00:99::2/64 said '$out'"; ok=0; }
    [ $ok = 1 ] && pass cli_errors || fail cli_errors "see the lines above"
fi

if ! need_root; then
    for t in afxdp afpacket sockets6 tap dad_duplicate router_discovery mld; do want "$t" && skip "$t" "needs root (network namespaces, veth, TAP)"; done
    exit 0
fi
if ! need_cmd ip ethtool ping tcpdump python3 curl; then
    for t in afxdp afpacket sockets6 tap dad_duplicate router_discovery mld; do
        want "$t" && skip "$t" "needs ip, ethtool, ping, tcpdump, python3, curl (Debian: iproute2 ethtool iputils-ping tcpdump python3 curl)"
    done
    exit 0
fi

# ns_new NS: a namespace whose new interfaces skip DAD (the kernel's
# addresses are usable at once; the stack's DAD is what is tested).
ns_new() {
    ip netns add "$1" && ip -n "$1" link set lo up &&
        ip netns exec "$1" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
}

# ll_of MAC: the link-local address of a MAC (modified EUI-64).
ll_of() {
    python3 -c 'import ipaddress,sys
m = bytes.fromhex(sys.argv[1].replace(":", ""))
print(ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + bytes([m[0] ^ 2]) + m[1:3] + b"\xff\xfe" + m[3:]))' "$1"
}

mac_of() { ip -n "$1" link show "$2" | awk '/link\/ether/ {print $2}'; }

# start_usnet LOG NS ARGS...: usnet run ARGS in NS with a program that says
# "up" (after DAD) and sleeps; the program's PID in $PROG (up within 10 s).
start_usnet() {
    local log=$1 ns=$2 i
    shift 2
    ip netns exec "$ns" "$USNET" run "$@" -- sh -c 'echo up; exec sleep 30' >"$log" 2>&1 &
    PROG=$!
    for i in $(seq 1 100); do grep -q '^up$' "$log" && return 0; sleep 0.1; done
    return 1
}

# stat_of PID NAME: the stack's counter NAME as `usnet stat PID` shows it
# (published each second: wait for it to reach MIN, at most 2 s).
stat_at_least() {
    local pid=$1 name=$2 min=$3 n i
    for i in $(seq 1 20); do
        n=$("$USNET" stat "$pid" 2>/dev/null | awk -v k="$name" '$1 == k {print $2; exit}')
        [ -n "$n" ] && [ "$n" -ge "$min" ] && return 0
        sleep 0.1
    done
    echo "usnet stat $pid: $name is ${n:-missing}, not at least $min"
    return 1
}

# ping_ok NS ARGS...: ping -6 -c 3 answered 3 times.
ping_ok() {
    local ns=$1 out
    shift
    out=$(ip netns exec "$ns" ping -6 -c 3 -i 0.2 -W 1 "$@" 2>&1)
    echo "$out" | grep -q ' 3 received, 0% packet loss' && return 0   # no duplicates: one answer each
    echo "ping -6 $* from $ns: $(echo "$out" | tail -2 | head -1)"
    return 1
}

# ---- the veth set-up (afxdp, afpacket, dad_duplicate) ------------------------

veth_setup() {
    ns_new "$UNS" && ns_new "$KNS" && ns_new "$HNS" || return 1
    ip link add "$UIF" netns "$UNS" type veth peer name "$KIF" netns "$KNS" || return 1
    # The kernel of usnet's namespace makes no link-local address on usnet's
    # end: it would be the stack's (the same MAC; usnet run refuses).
    ip -n "$UNS" link set "$UIF" addrgenmode none || return 1
    ip link add "$RIF" netns "$KNS" type veth peer name "$HIF" netns "$HNS" || return 1
    ip -n "$KNS" addr add "$KIP/24" dev "$KIF" || return 1
    ip -n "$KNS" -6 addr add fd00:77::1/64 dev "$KIF" nodad || return 1
    ip -n "$KNS" -6 addr add fd00:77::9/64 dev "$KIF" nodad || return 1   # a second source (resolved by the stack)
    ip -n "$KNS" -6 addr add fd00:77::3/64 dev "$KIF" nodad || return 1   # the duplicate
    ip -n "$KNS" -6 addr add fd00:88::1/64 dev "$RIF" nodad || return 1
    ip -n "$HNS" -6 addr add fd00:88::2/64 dev "$HIF" nodad || return 1
    ip netns exec "$KNS" sysctl -qw net.ipv6.conf.all.forwarding=1 || return 1
    local i
    for i in "$UNS $UIF" "$KNS $KIF" "$KNS $RIF" "$HNS $HIF"; do
        set -- $i
        ip -n "$1" link set "$2" up && ip netns exec "$1" ethtool -K "$2" tx off >/dev/null || return 1
    done
    ip -n "$HNS" -6 route add default via fd00:88::1 || return 1
    KLL=$(ll_of "$(mac_of "$KNS" "$KIF")")
    UMAC=$(mac_of "$UNS" "$UIF")
    ULL=$(ll_of "$UMAC")
}

VETH=0
if want afxdp || want afpacket || want sockets6 || want dad_duplicate || want router_discovery || want mld; then
    if veth_setup; then VETH=1; else echo "veth set-up failed"; fi
fi

# on_veth NAME BACKEND: the checks of afxdp and afpacket.
on_veth() {
    local name=$1 backend=$2 log=$work/$1.log pcap=$work/$1.pcap ok=1
    ip -n "$KNS" -6 neigh flush dev "$KIF"
    ip -n "$KNS" -6 neigh flush dev "$RIF"
    ip netns exec "$KNS" tcpdump -i "$KIF" -n -U -w "$pcap" icmp6 2>"$work/$name.tcpdump" &
    local dump=$!
    for i in $(seq 1 30); do grep -q listening "$work/$name.tcpdump" && break; sleep 0.1; done
    if ! start_usnet "$log" "$UNS" --backend "$backend" --iface "$UIF" --ip "$UIP/24" \
            --ip6 fd00:77::2/64 --gw6 "$KLL"; then
        fail "$name" "usnet run did not start: $(head -3 "$log")"
        kill $dump; wait $dump 2>/dev/null; ns_stop "$UNS"
        return
    fi
    if [ "$backend" = afpacket ]; then
        ip -n "$UNS" maddr show dev "$UIF" | grep -q "link  33:33:ff:00:00:02" ||
            { echo "33:33:ff:00:00:02 is not in $UIF's multicast list: $(ip -n "$UNS" maddr show dev "$UIF" | tr '\n' ' ')"; ok=0; }
    fi
    # The kernel (its NS comes from fd00:77::1: the stack learns that
    # address's MAC, nothing else).
    ping_ok "$KNS" fd00:77::2 || ok=0
    local neigh
    neigh=$(ip -n "$KNS" -6 neigh show fd00:77::2 dev "$KIF")
    [[ "$neigh" == "fd00:77::2 lladdr $UMAC "*REACHABLE* ]] ||
        { echo "the kernel's neighbour entry for fd00:77::2: '$neigh', not REACHABLE at $UMAC"; ok=0; }
    # Through the router, which knows the stack's MAC now and asks nothing:
    # the stack resolves the router's link-local address itself.  Then a
    # source of the kernel's the stack never heard of.
    ping_ok "$HNS" fd00:77::2 || ok=0
    ping_ok "$KNS" -I fd00:77::9 fd00:77::2 || ok=0
    ping_ok "$KNS" "$ULL%$KIF" || ok=0
    stat_at_least "$PROG" icmp6_tx 12 || ok=0
    stat_at_least "$PROG" nd_tx 4 || ok=0      # two DAD probes, the NS for the router and for fd00:77::9
    stat_at_least "$PROG" nd_rx 2 || ok=0
    sleep 0.2
    kill $dump; wait $dump 2>/dev/null
    local ns_sent
    ns_sent=$(tcpdump -r "$pcap" -n 2>/dev/null | grep -E " IP6 ($ULL|fd00:77::2) > .*neighbor solicitation, who has ")
    echo "$ns_sent" | grep -q "who has $KLL," ||
        { echo "no NS from the stack for the router's $KLL in the capture"; ok=0; }
    echo "$ns_sent" | grep -q "who has fd00:77::9," ||
        { echo "no NS from the stack for fd00:77::9 in the capture"; ok=0; }
    ns_stop "$UNS"
    wait "$PROG" 2>/dev/null
    if [ "$name" = afxdp ]; then
        local out
        ip netns exec "$UNS" "$USNET" doctor "$UIF" | grep -qF "kernel link-local      none from the interface's MAC (--ip6 can take $ULL)" ||
            { echo "usnet doctor $UIF: no line saying the kernel has no link-local from the MAC"; ok=0; }
        ip -n "$UNS" -6 addr add "$ULL/64" dev "$UIF" nodad
        ip netns exec "$UNS" "$USNET" doctor "$UIF" | grep -qF "kernel link-local      $ULL, from the interface's MAC, which the stack takes with --ip6" ||
            { echo "usnet doctor $UIF: no line naming the kernel's $ULL"; ok=0; }
        out=$(ip netns exec "$UNS" "$USNET" run --backend afxdp --iface "$UIF" --ip "$UIP/24" --ip6 fd00:77::2/64 -- true 2>&1)
        [ "$out" = "usnet run: --ip6: the kernel has $ULL on $UIF, the link-local address the stack takes from the same MAC; remove it (ip -6 addr del $ULL/64 dev $UIF) and keep the kernel from making it again (ip link set $UIF addrgenmode none), or give the stack another MAC (--mac)" ] ||
            { echo "the kernel's link-local on $UIF: '$out'"; ok=0; }
        ip -n "$UNS" -6 addr del "$ULL/64" dev "$UIF"
        ip -n "$UNS" addr add 10.77.0.5/24 dev "$UIF"
        out=$(ip netns exec "$UNS" "$USNET" run --backend afxdp --iface "$UIF" --ip host --ip6 fd00:77::2/64 -- true 2>&1)
        [ "$out" = "usnet run: --ip6 in host-address mode (--ip host, or no --ip with afxdp or afpacket): the stack shares the kernel's own IPv6 addresses there; give it none, or an IPv4 address of its own with --ip ADDR/PREFIX" ] ||
            { echo "--ip host --ip6: '$out'"; ok=0; }
        out=$(ip netns exec "$UNS" "$USNET" run --backend afxdp --iface "$UIF" --ip6 fd00:77::2/64 -- true 2>&1)
        [ "$out" = "usnet run: --ip6 in host-address mode (--ip host, or no --ip with afxdp or afpacket): the stack shares the kernel's own IPv6 addresses there; give it none, or an IPv4 address of its own with --ip ADDR/PREFIX" ] ||
            { echo "no --ip, --ip6: '$out'"; ok=0; }
        ip -n "$UNS" addr del 10.77.0.5/24 dev "$UIF"
    fi
    [ $ok = 1 ] && pass "$name" || fail "$name" "see the lines above; usnet run said: $(tr '\n' ' ' <"$log")"
}

for b in afxdp afpacket; do
    want $b || continue
    if [ $VETH = 0 ]; then fail $b "no veth set-up"; continue; fi
    if ! grep -qw $b <<<"$("$USNET" run --backend nosuch --iface x --ip 10.0.0.2/24 -- true 2>&1)"; then
        skip $b "this build has no $b backend"
        continue
    fi
    on_veth $b $b
done

# serve NAME LOG READY ARGS...: usnet run --ip6 on the veth (afxdp) with
# the program ARGS, up when LOG has the line READY (within 10 s); its PID
# in $PROG.
serve() {
    local name=$1 log=$2 ready=$3 i
    shift 3
    ip netns exec "$UNS" "$USNET" run --backend afxdp --iface "$UIF" --ip "$UIP/24" --ip6 fd00:77::2/64 \
        --gw6 "$KLL" -- "$@" >"$log" 2>&1 &
    PROG=$!
    for i in $(seq 1 100); do grep -q "$ready" "$log" && return 0; sleep 0.1; done
    echo "$name: the server did not come up: $(head -3 "$log" | tr '\n' ' ')"
    return 1
}

# fetch NS URL WANT [CURL ARGS]: curl in NS gets URL with status 200 and a
# body that has WANT.
fetch() {
    local ns=$1 url=$2 want=$3 out
    shift 3
    out=$(ip netns exec "$ns" curl -s -m 5 "$@" "$url" 2>&1)
    [[ "$out" == *"$want"* ]] && return 0
    echo "curl $* $url from $ns: '$(echo "$out" | head -c 200)', without '$want'"
    return 1
}

# logged LOG LINE: LOG has a line that starts with LINE.
logged() {
    grep -q "^$2" "$1" && return 0
    echo "the server logged no line starting '$2': $(tr '\n' ' ' <"$1" | head -c 400)"
    return 1
}

if want sockets6; then
    ok=1
    if [ $VETH = 0 ]; then
        echo "no veth set-up"; ok=0
    elif ! grep -qw afxdp <<<"$("$USNET" run --backend nosuch --iface x --ip 10.0.0.2/24 -- true 2>&1)"; then
        skip sockets6 "this build has no afxdp backend"; ok=
    fi
    if [ "$ok" = 1 ]; then
        ip -n "$KNS" -6 neigh flush dev "$KIF"
        # python3's http.server on :: (both families), the clients it logs
        log=$work/py.log
        if serve python "$log" "Serving HTTP" /usr/bin/python3 -u -m http.server 8080 --bind ::; then
            # the kernel has three addresses there: the client names its own
            fetch "$KNS" "http://[fd00:77::2]:8080/" "Directory listing" -6 --interface fd00:77::1 || ok=0
            fetch "$HNS" "http://[fd00:77::2]:8080/" "Directory listing" -6 || ok=0
            fetch "$KNS" "http://$UIP:8080/" "Directory listing" || ok=0
            logged "$log" "fd00:77::1 - - " || ok=0
            logged "$log" "fd00:88::2 - - " || ok=0
            logged "$log" "::ffff:$KIP - - " || ok=0
            stat_at_least "$PROG" tcp_accepted 3 || ok=0
            "$USNET" stat "$PROG" | grep -q '\[::\]:8080' ||
                { echo "usnet stat $PROG lists no socket at [::]:8080: $("$USNET" stat "$PROG" | tail -3 | tr '\n' ' ')"; ok=0; }
            grep -q "^Serving HTTP on :: port 8080" "$log" || { echo "python: $(head -1 "$log")"; ok=0; }
        else
            ok=0
        fi
        ns_stop "$UNS"; wait "$PROG" 2>/dev/null
        # Node.js: listen(port, '::')
        if need_cmd node; then
            log=$work/node.log
            if serve node "$log" "listening" node -e "require('http').createServer((q, r) => {
                    console.log('client ' + q.socket.remoteAddress); r.end('from ' + q.socket.remoteAddress + '\n');
                }).listen(8090, '::', () => console.log('listening'))"; then
                fetch "$KNS" "http://[fd00:77::2]:8090/" "from fd00:77::1" -6 --interface fd00:77::1 || ok=0
                fetch "$KNS" "http://$UIP:8090/" "from ::ffff:$KIP" || ok=0
                stat_at_least "$PROG" tcp_accepted 2 || ok=0
            else
                ok=0
            fi
            ns_stop "$UNS"; wait "$PROG" 2>/dev/null
        else
            echo "sockets6: Node.js part not run: node is not installed (Debian: nodejs)"
        fi
        # curl -6 under usnet run, a client of a kernel nginx listening on
        # IPv6 in the peer namespace: its access log shows the stack's
        # address (python's http.server when nginx is not installed).
        log=$work/kernel_http.log
        ng=$work/nginx
        if command -v nginx >/dev/null; then
            mkdir -p "$ng" && echo hello >"$ng/index.html"
            cat >"$ng/nginx.conf" <<CONF
daemon off; master_process off; pid $ng/nginx.pid; error_log $ng/error.log;
events { worker_connections 64; }
http { access_log $log; client_body_temp_path $ng; proxy_temp_path $ng; fastcgi_temp_path $ng;
       uwsgi_temp_path $ng; scgi_temp_path $ng;
       server { listen [fd00:77::1]:8081; root $ng; } }
CONF
            ip netns exec "$KNS" nginx -c "$ng/nginx.conf" >"$ng/out" 2>&1 &
            kpid=$!
            for i in $(seq 1 50); do ip netns exec "$KNS" ss -ltn 2>/dev/null | grep -q ':8081 ' && break; sleep 0.1; done
        else
            (cd "$work" && exec ip netns exec "$KNS" /usr/bin/python3 -u -m http.server 8081 --bind fd00:77::1) >"$log" 2>&1 &
            kpid=$!
            for i in $(seq 1 50); do grep -q "Serving HTTP" "$log" && break; sleep 0.1; done
        fi
        out=$(ip netns exec "$UNS" "$USNET" run --backend afxdp --iface "$UIF" --ip "$UIP/24" --ip6 fd00:77::2/64 -- \
            curl -s -6 -m 5 -o /dev/null -w '%{http_code} %{local_ip}' "http://[fd00:77::1]:8081/" 2>&1)
        [ "$out" = "200 fd00:77::2" ] || { echo "curl -6 under usnet run: '$out', not '200 fd00:77::2'"; ok=0; }
        ns_stop "$UNS"   # the interface's owner outlives its last program a while
        logged "$log" "fd00:77::2 - - " || ok=0
        kill "$kpid"; wait "$kpid" 2>/dev/null
        # Socket corners: under usnet run as on the kernel.
        ip netns exec "$KNS" /usr/bin/python3 tests/ip6/corners.py fd00:77::1 "$KIP" 9100 >"$work/corners.kernel" 2>&1
        timeout 60 ip netns exec "$UNS" "$USNET" run --backend afxdp --iface "$UIF" --ip "$UIP/24" --ip6 fd00:77::2/64 -- \
            /usr/bin/python3 tests/ip6/corners.py fd00:77::2 "$UIP" 9100 >"$work/corners.usnet" 2>&1
        if [ "$(wc -l <"$work/corners.kernel")" -lt 7 ]; then
            echo "corners.py on the kernel: $(tr '\n' ' ' <"$work/corners.kernel" | head -c 300)"; ok=0
        fi
        while IFS= read -r line; do
            got=$(grep -m1 "^${line%%:*}: " "$work/corners.usnet")
            [ "$got" = "$line" ] || { echo "corners: kernel '$line', usnet '${got:-nothing}'"; ok=0; }
        done <"$work/corners.kernel"
        ns_stop "$UNS"
        [ $ok = 1 ] && pass sockets6 || fail sockets6 "see the lines above"
    elif [ "$ok" = 0 ]; then
        fail sockets6 "see the lines above"
    fi
fi

if want dad_duplicate; then
    if [ $VETH = 0 ]; then
        fail dad_duplicate "no veth set-up"
    else
        out=$(ip netns exec "$UNS" "$USNET" run --backend afxdp --iface "$UIF" --ip "$UIP/24" --ip6 fd00:77::3/64 \
            -- sh -c 'echo ran' 2>&1)
        rc=$?
        ns_stop "$UNS"
        if [ "$rc" -ne 0 ] && [ "$(echo "$out" | wc -l)" = 1 ] &&
           [[ "$out" == "usnet["*"]: IPv6 address fd00:77::3 is already in use on the link of $UIF (Duplicate Address Detection: another node holds it or claims it): the stack does not start; give it an address of its own" ]]; then
            pass dad_duplicate
        else
            fail dad_duplicate "status $rc, said: $(echo "$out" | tr '\n' ' ')"
        fi
    fi
fi

# stat_wait PID NAME MIN: as stat_at_least, for up to 15 s (what comes
# after a Router Solicitation and radvd's answer to it).
stat_wait() {
    local i
    for i in $(seq 1 15); do stat_at_least "$@" >/dev/null && return 0; done
    stat_at_least "$@"
}

router_discovery() {
    local log=$work/ra.log pcap=$work/ra.pcap conf=$work/radvd.conf ok=1 i
    cat >"$conf" <<CONF
interface $KIF {
    AdvSendAdvert on; MinRtrAdvInterval 3; MaxRtrAdvInterval 10;
    AdvLinkMTU 1400; AdvCurHopLimit 33; AdvDefaultLifetime 600;
    prefix fd00:77::/64 { AdvOnLink on; AdvAutonomous off; };
    prefix fd00:78::/64 { AdvOnLink on; AdvAutonomous off; };
};
CONF
    # The kernel of usnet's namespace sees the RAs too (afpacket takes
    # copies): it keeps out of it.
    ip netns exec "$UNS" sysctl -qw "net.ipv6.conf.$UIF.accept_ra=0"
    ip -n "$KNS" -6 addr add fd00:78::1/64 dev "$KIF" nodad
    ip -n "$KNS" -6 neigh flush dev "$KIF"
    ip -n "$KNS" -6 neigh flush dev "$RIF"
    ip netns exec "$KNS" tcpdump -i "$KIF" -n -U -w "$pcap" icmp6 or tcp port 8080 2>"$work/ra.tcpdump" &
    local dump=$!
    for i in $(seq 1 30); do grep -q listening "$work/ra.tcpdump" && break; sleep 0.1; done
    ip netns exec "$KNS" radvd -n -C "$conf" -p "$work/radvd.pid" -m logfile -l "$work/radvd.log" &
    local radvd=$!
    ip netns exec "$UNS" "$USNET" run --backend afpacket --iface "$UIF" --ip "$UIP/24" --ip6 fd00:77::2/64 -- \
        /usr/bin/python3 -u -m http.server 8080 --bind :: >"$log" 2>&1 &
    PROG=$!
    for i in $(seq 1 100); do grep -q "Serving HTTP" "$log" && break; sleep 0.1; done
    if ! grep -q "Serving HTTP" "$log"; then
        echo "usnet run did not start: $(head -3 "$log" | tr '\n' ' ')"; ok=0
    elif stat_wait "$PROG" nd_routers 1; then
        ping_ok "$HNS" fd00:77::2 || ok=0
        fetch "$HNS" "http://[fd00:77::2]:8080/" "Directory listing" -6 || ok=0
        ping_ok "$KNS" -I fd00:78::1 fd00:77::2 || ok=0
        stat_at_least "$PROG" nd_rs_tx 1 || ok=0
        stat_at_least "$PROG" nd_ra_rx 1 || ok=0
        stat_at_least "$PROG" nd_prefixes 2 || ok=0
    else
        ok=0
    fi
    ns_stop "$UNS"; wait "$PROG" 2>/dev/null
    # A client: curl -6 to the host behind the router, retried until the
    # stack has learned its router (before that the destination is the
    # kernel's, which has no IPv6 here: unreachable at once).
    local hlog=$work/ra_host.log
    (cd "$work" && exec ip netns exec "$HNS" /usr/bin/python3 -u -m http.server 8082 --bind fd00:88::2) >"$hlog" 2>&1 &
    local hpid=$!
    for i in $(seq 1 50); do grep -q "Serving HTTP" "$hlog" && break; sleep 0.1; done
    out=$(timeout 30 ip netns exec "$UNS" "$USNET" run --backend afpacket --iface "$UIF" --ip "$UIP/24" \
        --ip6 fd00:77::2/64 -- sh -c 'for i in $(seq 1 50); do
            r=$(curl -s -6 -m 2 -o /dev/null -w "%{http_code} %{local_ip}" "http://[fd00:88::2]:8082/") &&
                { echo "$r"; exit 0; }
            sleep 0.2
        done' 2>&1)
    [ "$out" = "200 fd00:77::2" ] || { echo "curl -6 to fd00:88::2 under usnet run: '$out', not '200 fd00:77::2'"; ok=0; }
    ns_stop "$UNS"
    logged "$hlog" "fd00:77::2 - - " || ok=0
    kill "$hpid"; wait "$hpid" 2>/dev/null
    kill "$radvd"; wait "$radvd" 2>/dev/null
    sleep 0.2
    kill $dump; wait $dump 2>/dev/null
    ip -n "$KNS" -6 addr del fd00:78::1/64 dev "$KIF"
    local dumped
    dumped=$(tcpdump -r "$pcap" -n -v 2>/dev/null | tr '\n' ' ' | sed 's/ IP6 /\nIP6 /g')
    echo "$dumped" | grep -q "IP6 .* $ULL > ff02::2: \[icmp6 sum ok\] ICMP6, router solicitation" ||
        { echo "no Router Solicitation from $ULL to ff02::2 in the capture"; ok=0; }
    local synack
    synack=$(echo "$dumped" | grep -m1 " fd00:77::2.8080 > fd00:88::2\.[0-9]*: Flags \[S\.\]")
    [[ "$synack" == *"hlim 33,"* && "$synack" == *"mss 1340,"* ]] ||
        { echo "the stack's SYN-ACK to fd00:88::2: '${synack:-none in the capture}', not hlim 33 and mss 1340"; ok=0; }
    echo "$dumped" | grep -q "IP6 .* fd00:77::2 > ff02::1:ff00:1: .*neighbor solicitation, .*who has fd00:78::1" ||
        { echo "no NS from the stack for fd00:78::1 in the capture"; ok=0; }
    [ $ok = 1 ] && pass router_discovery ||
        fail router_discovery "see the lines above; usnet run said: $(tr '\n' ' ' <"$log" | head -c 300); radvd: $(tr '\n' ' ' <"$work/radvd.log" 2>/dev/null | head -c 300)"
}

if want router_discovery; then
    if [ $VETH = 0 ]; then
        fail router_discovery "no veth set-up"
    elif ! grep -qw afpacket <<<"$("$USNET" run --backend nosuch --iface x --ip 10.0.0.2/24 -- true 2>&1)"; then
        skip router_discovery "this build has no afpacket backend"
    elif ! need_cmd radvd; then
        skip router_discovery "needs radvd (Debian: radvd)"
    else
        router_discovery
    fi
fi

# sol_group ADDR: the solicited-node group of an IPv6 address, as
# `bridge mdb show` prints it.
sol_group() {
    python3 -c 'import ipaddress,sys
a = ipaddress.IPv6Address(sys.argv[1]).packed
print(ipaddress.IPv6Address(bytes.fromhex("ff0200000000000000000001ff") + a[13:]))' "$1"
}

# mdb_has PORT GROUP...: `bridge mdb show` in the kernel's namespace lists
# every GROUP on PORT (within 3 s).
mdb_has() {
    local port=$1 g i mdb missing
    shift
    for i in $(seq 1 30); do
        mdb=$(bridge -n "$KNS" mdb show 2>&1)
        missing=0
        for g in "$@"; do [[ "$mdb" == *" port $port grp $g "* ]] || missing=1; done
        [ $missing = 0 ] && return 0
        sleep 0.1
    done
    echo "bridge mdb show: '$(echo "$mdb" | tr '\n' ' ')', without $* on $port"
    return 1
}

# on_bridge BACKEND: the checks of mld with usnet on BACKEND.
on_bridge() {
    local b=$1 log=$work/mld-$1.log pcap=$work/mld-$1.pcap ok=1 mif=v6m$$ pif=v6p$$ br=v6b$$ hif=v6q$$ qif=v6s$$ dump
    # The pinger is the host namespace on another port: what the bridge
    # device sends itself is flooded to every port, mcast_flood or not.
    # The querier is turned on once the response interval is set: the
    # bridge floods until one interval after that (10 s by default).
    if ! { ip link add "$mif" netns "$UNS" type veth peer name "$pif" netns "$KNS" &&
           ip link add "$hif" netns "$HNS" type veth peer name "$qif" netns "$KNS" &&
           ip -n "$UNS" link set "$mif" addrgenmode none &&
           ip -n "$KNS" link add "$br" type bridge mcast_snooping 1 mcast_mld_version 2 \
               mcast_query_interval 100 mcast_query_response_interval 50 mcast_startup_query_interval 100 \
               mcast_membership_interval 300 &&
           ip -n "$KNS" link set "$br" type bridge mcast_querier 1 &&
           ip -n "$KNS" link set "$pif" master "$br" && ip -n "$KNS" link set "$qif" master "$br" &&
           ip -n "$HNS" -6 addr add fd00:7a::3/64 dev "$hif" nodad &&
           bridge -n "$KNS" link set dev "$pif" mcast_flood off &&
           ip -n "$KNS" -6 addr add fd00:7a::1/64 dev "$br" nodad &&
           ip -n "$KNS" link set "$br" up && ip -n "$KNS" link set "$pif" up && ip -n "$UNS" link set "$mif" up &&
           ip -n "$KNS" link set "$qif" up && ip -n "$HNS" link set "$hif" up &&
           ip netns exec "$KNS" ethtool -K "$pif" tx off >/dev/null &&
           ip netns exec "$UNS" ethtool -K "$mif" tx off >/dev/null &&
           ip netns exec "$KNS" ethtool -K "$qif" tx off >/dev/null &&
           ip netns exec "$HNS" ethtool -K "$hif" tx off >/dev/null; }; then
        fail "mld/$b" "bridge set-up failed"
        ip -n "$KNS" link del "$br" 2>/dev/null; ip -n "$UNS" link del "$mif" 2>/dev/null
        ip -n "$HNS" link del "$hif" 2>/dev/null
        return
    fi
    local ll group_ll
    ll=$(ll_of "$(mac_of "$UNS" "$mif")")
    group_ll=$(sol_group "$ll")
    ip netns exec "$KNS" tcpdump -i "$pif" -n -U -w "$pcap" ip6 2>"$work/mld-$b.tcpdump" &
    dump=$!
    for i in $(seq 1 30); do grep -q listening "$work/mld-$b.tcpdump" && break; sleep 0.1; done
    if start_usnet "$log" "$UNS" --backend "$b" --iface "$mif" --ip 10.78.0.2/24 --ip6 fd00:7a::2/64; then
        mdb_has "$pif" ff02::1:ff00:2 "$group_ll" || ok=0
        ping_ok "$HNS" fd00:7a::2 || ok=0
        sleep 5   # memberships last 3 s: the stack's answers to the queries keep them
        mdb_has "$pif" ff02::1:ff00:2 "$group_ll" || ok=0
        stat_at_least "$PROG" mld_queries 3 || ok=0
        stat_at_least "$PROG" mld_tx 5 || ok=0
    else
        echo "usnet run did not start: $(head -3 "$log")"; ok=0
    fi
    ns_stop "$UNS"
    wait "$PROG" 2>/dev/null
    sleep 0.2
    kill $dump; wait $dump 2>/dev/null
    # one line a packet with -v; the stack's from :: (DAD) or its link-local address
    tcpdump -r "$pcap" -n -v 2>/dev/null | grep -E "\(hlim 1, next-header Options \(0\) .*\) (::|$ll) > ff02::16: HBH \(rtalert: 0x0000\) .*multicast listener report v2, .*\[gaddr ff02::1:ff00:2 to_ex, 0 source\(s\)\]" >/dev/null ||
        { echo "no MLDv2 report of ff02::1:ff00:2 (to_ex, hop limit 1, Router Alert 0) from the stack in the capture: $(tcpdump -r "$pcap" -n -v 2>/dev/null | grep -m3 'listener report' | tr '\n' ' ' | head -c 600)"; ok=0; }
    ip -n "$KNS" link del "$br"
    ip -n "$UNS" link del "$mif" 2>/dev/null
    ip -n "$HNS" link del "$hif" 2>/dev/null
    [ $ok = 1 ] && pass "mld/$b" || fail "mld/$b" "see the lines above; usnet run said: $(tr '\n' ' ' <"$log")"
}

if want mld; then
    for b in afxdp afpacket; do
        if [ $VETH = 0 ]; then fail "mld/$b" "no veth set-up"; continue; fi
        if ! need_cmd bridge; then skip "mld/$b" "needs bridge (Debian: iproute2)"; continue; fi
        if ! grep -qw $b <<<"$("$USNET" run --backend nosuch --iface x --ip 10.0.0.2/24 -- true 2>&1)"; then
            skip "mld/$b" "this build has no $b backend"
            continue
        fi
        on_bridge $b
    done
fi

if want tap; then
    ok=1
    if ns_new "$TNS" && ip -n "$TNS" tuntap add "$TAP" mode tap && ip -n "$TNS" link set "$TAP" up &&
       ip -n "$TNS" -6 addr add fd00:79::1/64 dev "$TAP" nodad; then
        if start_usnet "$work/tap.log" "$TNS" --backend tap --iface "$TAP" --ip 10.79.0.2/24 --ip6 fd00:79::2/64; then
            ping_ok "$TNS" fd00:79::2 || ok=0
            neigh=$(ip -n "$TNS" -6 neigh show fd00:79::2 dev "$TAP")
            tmac=$(echo "$neigh" | awk '{print $3}')
            [[ "$neigh" == *REACHABLE* ]] || { echo "the kernel's neighbour entry for fd00:79::2: '$neigh'"; ok=0; }
            if [ -n "$tmac" ]; then ping_ok "$TNS" "$(ll_of "$tmac")%$TAP" || ok=0; else ok=0; fi
            stat_at_least "$PROG" icmp6_tx 6 || ok=0
        else
            echo "usnet run did not start: $(head -3 "$work/tap.log")"
            ok=0
        fi
        ns_stop "$TNS"
    else
        echo "TAP set-up failed"
        ok=0
    fi
    [ $ok = 1 ] && pass tap || fail tap "see the lines above"
fi
exit 0
