#!/usr/bin/env bash
# Listeners under load: a server under `usnet run --backend afxdp` on a veth
# keeps accepting a kernel client's connections (1,000 in a row, each with a
# 1 s timeout, each echoing a line) while the peer namespace floods it with
# 100,000 SYNs from random addresses of the link's own prefix.  The SYN
# queue fills and SYN cookies answer: every real connection gets through,
# `usnet stat` counts the cookies, and once the flood is over the spoofed
# half-open connections go (their SYN-ACKs are retried less while the queue
# is half full) and the stack's sockets and buffers return to idle.  With
# net.ipv4.tcp_syncookies=0 in the namespace, no cookie is sent.
# Needs root (namespaces, AF_XDP, raw sockets) and python3.
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh

USNET=build/usnet FLOOD=build/tests/listen/synflood
if ! need_root; then skip listen "needs root for namespaces, AF_XDP and raw sockets"; exit 0; fi
for f in "$USNET" "$FLOOD" build/libusnet.so; do
    [ -e "$f" ] || { skip listen "$f is not built"; exit 0; }
done
need_cmd python3 ethtool || { skip listen "needs python3 and ethtool"; exit 0; }

UNS=ls-$$-u KNS=ls-$$-k UIF=ls$$u KIF=ls$$k KIP=10.73.0.1 UIP=10.73.0.2
WORK=$(mktemp -d /tmp/usnet-listen-XXXXXX)
cleanup() { ns_stop "$UNS"; ns_stop "$KNS"; ip netns del "$UNS" 2>/dev/null; ip netns del "$KNS" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
veth_pair "$UNS" "$UIF" "$KNS" "$KIF" "$KIP" || { fail syn_flood_cookies "cannot set up the veth pair"; exit 0; }

# An echo server: accept, read a line, send it back, close.
SERVER='
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7400)); s.listen(128); print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.settimeout(2)
    try:
        c.sendall(c.recv(100))
    except OSError:
        pass
    c.close()'
# N sequential connections with a 1 s timeout each; prints how many worked.
CLIENT='
import socket, sys
ok = 0
for i in range(int(sys.argv[2])):
    try:
        c = socket.create_connection((sys.argv[1], 7400), timeout=1)
        c.sendall(b"ping %d\n" % i)
        ok += c.recv(100) == b"ping %d\n" % i
        c.close()
    except OSError as e:
        print("connection", i, "failed:", e, flush=True)
print("ok", ok)'

stat_of() { "$USNET" stat "$1" 2>/dev/null | sed -n "s/^$2 //p" | head -1; }
# The stack's sockets but those in TIME_WAIT (the server closes first: its
# side of each of the 1,000 connections waits there for 60 s, as on Linux).
live_sockets() { echo $(( $(stat_of "$1" sockets_in_use) - $(stat_of "$1" tcp_time_wait) )); }

# flood_round NAME COOKIES: the server under usnet with the namespace's
# tcp_syncookies set to COOKIES, the flood and the client at once.
flood_round() {
    local name=$1 cookies=$2 srv pid="" i why="" idle_socks idle_bufs out sent sockets
    ip netns exec "$UNS" sysctl -qw net.ipv4.tcp_syncookies="$cookies"
    ip netns exec "$UNS" timeout 120 "$USNET" run --backend afxdp --iface "$UIF" --ip "$UIP/24" -- \
        python3 -c "$SERVER" >"$WORK/$name.srv" 2>&1 &
    srv=$!
    for i in $(seq 1 100); do grep -q ready "$WORK/$name.srv" && break; sleep 0.1; done
    for i in $(ip netns pids "$UNS"); do
        [ "$(cat "/proc/$i/comm" 2>/dev/null)" = python3 ] && pid=$i
    done
    if [ -z "$pid" ] || ! ip netns exec "$KNS" python3 -c "$CLIENT" "$UIP" 1 | grep -q "^ok 1$"; then
        fail "$name" "the server did not come up: $(tail -c 300 "$WORK/$name.srv")"; ns_stop "$UNS"; return
    fi
    sleep 1.2   # the statistics are published once a second
    idle_socks=$(live_sockets "$pid") idle_bufs=$(stat_of "$pid" buffers_in_use)
    ip netns exec "$KNS" "$FLOOD" "$UIP" 7400 100000 10.73.0.0/24 >"$WORK/$name.flood" 2>&1 &
    local flood=$!
    out=$(ip netns exec "$KNS" timeout 200 python3 -c "$CLIENT" "$UIP" 1000 2>&1)
    wait "$flood"
    sent=$(grep -o 'sent [0-9]*' "$WORK/$name.flood")
    [ "$sent" = "sent 100000" ] || why="the flood: $(tail -1 "$WORK/$name.flood");"
    sleep 1.2
    local cookies_sent cookies_ok; cookies_sent=$(stat_of "$pid" tcp_syncookies_sent)
    cookies_ok=$(stat_of "$pid" tcp_syncookies_ok)
    if [ "$cookies" = 1 ]; then
        grep -q "^ok 1000$" <<<"$out" || why="$why $(grep -c failed <<<"$out") of 1000 connections failed: $(grep -m1 failed <<<"$out");"
        [ "${cookies_sent:-0}" -gt 0 ] || why="$why usnet stat shows no SYN cookies sent;"
        # The spoofed half-open connections go within 7 s (1 + 2 + 4), and
        # the SYN-ACKs waiting for their (never answered) ARP after that.
        for i in $(seq 1 30); do
            sockets=$(live_sockets "$pid")
            [ "${sockets:-x}" -le "$((idle_socks + 1))" ] && break
            sleep 0.5
        done
        for i in $(seq 1 20); do
            [ "$(stat_of "$pid" buffers_in_use)" = "$idle_bufs" ] && break
            sleep 0.5
        done
        [ "${sockets:-x}" -le "$((idle_socks + 1))" ] || why="$why sockets in use $sockets, idle $idle_socks;"
        [ "$(stat_of "$pid" buffers_in_use)" = "$idle_bufs" ] || why="$why buffers in use $(stat_of "$pid" buffers_in_use), idle $idle_bufs;"
    else
        [ "${cookies_sent:-x}" = 0 ] || why="$why $cookies_sent SYN cookies sent with tcp_syncookies=0;"
        [ "$(stat_of "$pid" tcp_listen_drop)" -gt 0 ] || why="$why no SYN dropped with a full queue and no cookies;"
    fi
    ns_stop "$UNS"; wait "$srv" 2>/dev/null
    if [ -z "$why" ]; then
        pass "$name (SYN cookies sent $cookies_sent, $cookies_ok came back)"
    else
        fail "$name" "$why"
    fi
}

flood_round syn_flood_cookies 1
flood_round syn_flood_no_cookies 0

# The host's net.ipv4 choices apply to usnet's SYNs: with tcp_timestamps=0
# and tcp_sack=0 in its namespace, a client under usnet offers neither (a
# capture in the peer namespace shows the options); with both on, both, in
# the kernel's layout and with the window scale the kernel offers.
syn_options() {
    local name=$1 on=$2 want=$3 cap=$WORK/$1.txt
    ip netns exec "$UNS" sysctl -qw net.ipv4.tcp_timestamps="$on" net.ipv4.tcp_sack="$on"
    ip netns exec "$KNS" timeout 20 tcpdump -l -n -v -i "$KIF" -c 1 "tcp[tcpflags] & tcp-syn != 0 and src $UIP" \
        >"$cap" 2>/dev/null &
    local dump=$!
    sleep 0.5
    ip netns exec "$KNS" timeout 10 python3 -c '
import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("'"$KIP"'", 7401)); s.listen(); c, _ = s.accept()' &
    local ksrv=$!
    sleep 0.3
    ip netns exec "$UNS" timeout 10 "$USNET" run --backend afxdp --iface "$UIF" --ip "$UIP/24" -- \
        python3 -c 'import socket; socket.create_connection(("'"$KIP"'", 7401), timeout=3).close()' >"$WORK/$name.cli" 2>&1
    wait "$dump" "$ksrv" 2>/dev/null
    # The stack (and the options it read) lives until its owner leaves,
    # a second after its last process: the next round needs a new one.
    local i
    for i in $(seq 1 50); do
        [ -z "$(ip netns pids "$UNS")" ] && break
        sleep 0.1
    done
    local opts; opts=$(grep -o 'options \[[^]]*\]' "$cap" | head -1)
    if [ -z "$opts" ]; then
        fail "$name" "no SYN from $UIP captured: $(tail -c 200 "$WORK/$name.cli")"
    elif [ "$want" = none ] && grep -qE 'TS|sackOK' <<<"$opts"; then
        fail "$name" "usnet's SYN with tcp_timestamps=0 tcp_sack=0: $opts"
    elif [ "$want" = both ] && ! { grep -q TS <<<"$opts" && grep -q sackOK <<<"$opts"; }; then
        fail "$name" "usnet's SYN with tcp_timestamps=1 tcp_sack=1: $opts"
    elif [ "$want" = both ] && [ "$(strip_syn "$opts")" != "$(kernel_syn_options)" ]; then
        fail "$name" "usnet's SYN options '$(strip_syn "$opts")' differ from the kernel's '$(kernel_syn_options)'"
    else
        pass "$name ($opts)"
    fi
}

# strip_syn OPTIONS: tcpdump's options without the MSS value and timestamps
# ("mss,sackOK,TS,nop,wscale 7").
strip_syn() { sed -e 's/options \[//; s/\]//; s/mss [0-9]*/mss/; s/TS val [0-9]* ecr [0-9]*/TS/' <<<"$1"; }

# The options of a kernel SYN from the same namespace's settings (over lo
# in usnet's namespace, whose sysctls the stack read): layout and window
# scale.
kernel_syn_options() {
    local cap=$WORK/kernel-syn.txt
    ip netns exec "$UNS" timeout 10 tcpdump -l -n -v -i lo -c 1 "tcp[tcpflags] == tcp-syn and port 7402" \
        >"$cap" 2>/dev/null &
    local dump=$!
    sleep 0.5
    ip netns exec "$UNS" timeout 5 python3 -c '
import socket
l = socket.socket(); l.bind(("127.0.0.1", 7402)); l.listen()
socket.create_connection(("127.0.0.1", 7402), timeout=3).close()' >/dev/null 2>&1
    wait "$dump" 2>/dev/null
    strip_syn "$(grep -o 'options \[[^]]*\]' "$cap" | head -1)"
}
# The host's default congestion control: reno in usnet's namespace gives
# reno to a new stack socket (TCP_CONGESTION reads it back).  It is bound
# to the stack's address, which no kernel socket here could take.
cc_default() {
    local was got
    was=$(ip netns exec "$UNS" sysctl -n net.ipv4.tcp_congestion_control)
    ip netns exec "$UNS" sysctl -qw net.ipv4.tcp_congestion_control=reno
    got=$(ip netns exec "$UNS" timeout 10 "$USNET" run --backend afxdp --iface "$UIF" --ip "$UIP/24" -- \
        python3 -c 'import socket, sys; s = socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).rstrip(b"\0").decode())' "$UIP" 2>&1)
    ip netns exec "$UNS" sysctl -qw net.ipv4.tcp_congestion_control="$was"
    local i
    for i in $(seq 1 50); do
        [ -z "$(ip netns pids "$UNS")" ] && break
        sleep 0.1
    done
    if [ "$got" = reno ]; then pass cc_default_from_sysctl; else fail cc_default_from_sysctl "TCP_CONGESTION read '$got' with tcp_congestion_control=reno"; fi
}
cc_default

# wait_stack_gone: the stack of the last round leaves a second after its
# last process (with the sysctls it read); the next round needs a new one.
wait_stack_gone() {
    local i
    for i in $(seq 1 50); do
        [ -z "$(ip netns pids "$UNS")" ] && break
        sleep 0.1
    done
}

# ECN (RFC 3168) as Linux: with tcp_ecn=1 in usnet's namespace its SYN asks
# for ECN (ECE and CWR: tcpdump's [SEW]) and, granted by the kernel's
# SYN-ACK, its data goes out ECT(0).  With the default tcp_ecn=2, a usnet
# server grants a kernel client's ECN-setup SYN (its SYN-ACK carries ECE
# alone: [S.E]) and sends its data ECT(0).  That client has timestamps off:
# the SYN-ACK then carries no timestamp, nor the NOPs of its slot, in
# Linux's layout.  Every packet checked left from the stack's address.
ecn_capture() {
    local cap=$WORK/ecn-client.txt why=""
    ip netns exec "$UNS" sysctl -qw net.ipv4.tcp_ecn=1
    ip netns exec "$KNS" timeout 20 tcpdump -l -n -v -i "$KIF" -c 4 "tcp and src $UIP" >"$cap" 2>/dev/null &
    local dump=$!
    sleep 0.5
    ip netns exec "$KNS" timeout 10 python3 -c '
import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("'"$KIP"'", 7403)); s.listen(); c, _ = s.accept(); c.recv(100); c.sendall(b"ok"); c.recv(100)' &
    local ksrv=$!
    sleep 0.3
    ip netns exec "$UNS" timeout 10 "$USNET" run --backend afxdp --iface "$UIF" --ip "$UIP/24" -- \
        python3 -c 'import socket; c = socket.create_connection(("'"$KIP"'", 7403), timeout=3); c.sendall(b"hello"); c.recv(10); c.close()' \
        >"$WORK/ecn-client.out" 2>&1
    wait "$dump" "$ksrv" 2>/dev/null
    ip netns exec "$UNS" sysctl -qw net.ipv4.tcp_ecn=2
    wait_stack_gone
    grep -q "Flags \[SEW\]" "$cap" || why="usnet's SYN with tcp_ecn=1 did not ask for ECN: $(grep -m1 -o 'Flags \[[^]]*\]' "$cap");"
    grep -q "ECT(0)" "$cap" || why="$why usnet's data was not ECT(0) on an ECN connection;"
    if [ -z "$why" ]; then pass ecn_syn_tcp_ecn_1; else fail ecn_syn_tcp_ecn_1 "$why $(tail -c 200 "$WORK/ecn-client.out")"; fi

    cap=$WORK/ecn-server.txt why=""
    ip netns exec "$KNS" sysctl -qw net.ipv4.tcp_ecn=1 net.ipv4.tcp_timestamps=0
    ip netns exec "$UNS" timeout 10 "$USNET" run --backend afxdp --iface "$UIF" --ip "$UIP/24" -- \
        python3 -c '
import socket, sys
s = socket.socket(); s.bind((sys.argv[1], 7404)); s.listen(); print("ready", flush=True)
c, _ = s.accept(); c.recv(100); c.sendall(b"world"); c.recv(100)' "$UIP" >"$WORK/ecn-server.out" 2>&1 &
    local usrv=$! i
    for i in $(seq 1 100); do grep -q ready "$WORK/ecn-server.out" && break; sleep 0.1; done
    # everything the stack sent until the server is gone (a count would
    # miss the data behind a retransmitted SYN-ACK or an early ACK)
    ip netns exec "$KNS" timeout 20 tcpdump -l -n -v -i "$KIF" "tcp and src $UIP" >"$cap" 2>/dev/null &
    dump=$!
    sleep 0.5
    ip netns exec "$KNS" timeout 10 python3 -c '
import socket; c = socket.create_connection(("'"$UIP"'", 7404), timeout=3); c.sendall(b"hello"); c.recv(10); c.close()' \
        >"$WORK/ecn-kclient.out" 2>&1
    wait "$usrv" 2>/dev/null
    sleep 0.3
    kill "$dump" 2>/dev/null
    wait "$dump" 2>/dev/null
    ip netns exec "$KNS" sysctl -qw net.ipv4.tcp_ecn=2 net.ipv4.tcp_timestamps=1
    wait_stack_gone
    local synack opts
    synack=$(grep -A1 -m1 "Flags \[S\.E\]" "$cap")
    opts=$(strip_syn "$(grep -o 'options \[[^]]*\]' <<<"$synack" | head -1)")
    [ -n "$synack" ] || why="no SYN-ACK with ECE to the kernel's ECN-setup SYN: $(grep -m1 -o 'Flags \[[^]]*\]' "$cap");"
    [[ "$opts" =~ ^mss,nop,nop,sackOK,nop,wscale\ [0-9]+$ ]] || why="$why the SYN-ACK to a SYN without timestamps has options '$opts';"
    grep -q "ECT(0)" "$cap" || why="$why the usnet server's data was not ECT(0);"
    if [ -z "$why" ]; then pass "ecn_synack_tcp_ecn_2 ($opts)"; else fail ecn_synack_tcp_ecn_2 "$why $(tail -c 200 "$WORK/ecn-server.out")"; fi
}

if need_cmd tcpdump; then
    syn_options syn_options_sysctl_off 0 none
    syn_options syn_options_sysctl_on 1 both
    ecn_capture
else
    skip syn_options_sysctl "needs tcpdump"
fi
exit 0
