#!/usr/bin/env bash
# The attach model: user sockets have Linux's lifetime, whoever holds them.
# Each server runs under `usnet run` on a TAP inside a private namespace and
# is reached by a kernel client on the TAP's kernel side, at the stack's
# address (which only usnet answers); `usnet stat` must count the
# connections.  Needs root (namespaces, TAP) and python3.
#
# usage: tests/attach/run.sh [TEST...]     (no argument: every test)
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh

ROOT=$PWD
USNET=${USNET:-$ROOT/build/usnet}
HERE=$ROOT/tests/attach
ONLY=" $* "
want() { [ "$ONLY" = "  " ] || [[ "$ONLY" == *" $1 "* ]]; }

if ! need_root; then
    skip attach "needs root for network namespaces and TAP devices"
    exit 0
fi
if [ ! -x "$USNET" ] || [ ! -f "$(dirname "$USNET")/libusnet.so" ]; then
    skip attach "build/usnet or build/libusnet.so not built"
    exit 0
fi
if ! need_cmd python3; then
    skip attach "needs python3"
    exit 0
fi

WORK=$(mktemp -d /tmp/usnet-attach-$$-XXXXXX)
NS=at-$$ TAP=at$$t KIP=10.65.0.1 SIP=10.65.0.2
# The 4-queue veth: usnet's end in $UNS, the kernel's in $KNS.
UNS=at-$$-u KNS=at-$$-k UIF=at$$u KIF=at$$k VKIP=10.69.0.1 VUIP=10.69.0.2 VHIP=10.69.0.3
cleanup() {
    local pid ns
    for ns in "$NS" "$UNS" "$KNS"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    rm -rf "$WORK"
    "$USNET" stat >/dev/null 2>&1   # drops the statistics files of the servers killed above
}
trap cleanup EXIT

ip netns add "$NS" &&
ip netns exec "$NS" ip link set lo up &&
ip netns exec "$NS" ip tuntap add "$TAP" mode tap &&
ip netns exec "$NS" ip addr add "$KIP/24" dev "$TAP" &&
ip netns exec "$NS" ip link set "$TAP" up || { fail attach "namespace set-up failed"; exit 0; }

in_ns() { ip netns exec "$NS" "$@"; }

# under_usnet NAME SECONDS CMD...: a server under usnet in the background;
# its pid in SRV, its output in $WORK/NAME.log.
SRV=
under_usnet() {
    local name=$1 t=$2; shift 2
    in_ns timeout "$t" "$USNET" run --backend tap --iface "$TAP" --ip "$SIP/24" -- "$@" \
        >"$WORK/$name.log" 2>&1 &
    SRV=$!
}

# wait_ready NAME: until the server printed "ready" (10 s).
wait_ready() {
    local i
    for i in $(seq 1 100); do
        grep -q '^ready' "$WORK/$1.log" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

stop_server() {
    ns_stop "$NS"
    { wait "$SRV"; } 2>/dev/null
    SRV=
}

# accepted PID: the stack's tcp_accepted as `usnet stat PID` shows it.
accepted() {
    "$USNET" stat "$1" 2>/dev/null | sed -n 's/^tcp_accepted //p' | head -1
}

# served NAME MODE MIN: the server's first process published tcp_accepted
# >= MIN within 3 s.
served() {
    local name=$1 mode=$2 min=$3 pid n i
    pid=$(pgrep -o -f "^[^ ]*python3[^ ]* [^ ]*servers.py $mode $SIP")
    for i in $(seq 1 30); do
        n=$(accepted "$pid")
        [ -n "$n" ] && [ "$n" -ge "$min" ] && return 0
        sleep 0.1
    done
    echo "usnet stat counted ${n:-no} accepted connections in process ${pid:-?}, not $min" >>"$WORK/$name.log"
    return 1
}

# serve_clients NAME MODE N: servers.py MODE under usnet, N kernel clients.
serve_clients() {
    local name=$1 mode=$2 n=$3 out
    under_usnet "$name" 60 python3 "$HERE/servers.py" "$mode" "$SIP" 7000
    if ! wait_ready "$name"; then
        fail "$name" "server did not start: $(tail -c 300 "$WORK/$name.log" | tr '\n' ' ')"
        stop_server
        return
    fi
    out=$(in_ns timeout 60 python3 "$HERE/client.py" "$SIP" 7000 "$n" 2>&1)
    if [ $? -eq 0 ] && served "$name" "$mode" "$n"; then
        pass "$name"
    else
        fail "$name" "$(printf '%s' "$out" | tr '\n' ' ' | head -c 300) server: $(tail -c 300 "$WORK/$name.log" | tr '\n' ' ')"
    fi
    stop_server
}

# A fork-per-connection server whose parent closes the accepted socket at
# once: the child's copy lives on (Linux's lifetime across processes).
want fork_close_50 && serve_clients fork_close_50 fork-close 50
# A parent hands each accepted socket to a worker process over a UNIX
# socket (SCM_RIGHTS) and closes its copy at once.
want scm_rights_worker_50 && serve_clients scm_rights_worker_50 scm-worker 50
# The same with the worker taking each socket with pidfd_getfd(2).
want pidfd_getfd_worker_20 && serve_clients pidfd_getfd_worker_20 pidfd-worker 20
# A server that re-execs itself for every connection: the new image
# attaches to the stack and takes the inherited connection back.
want reexec_20 && serve_clients reexec_20 reexec 20

# socat's fork + EXEC: each child execs cat with the connection as its
# stdin and stdout; 1 MiB echoed intact on each of 5 connections.
t_socat_exec() {
    need_cmd socat || { skip socat_exec_cat "needs socat"; return; }
    head -c 1048576 /dev/urandom >"$WORK/blob"
    under_usnet socat 60 socat TCP-LISTEN:7100,bind=$SIP,fork,reuseaddr EXEC:cat
    local i ok=0 want got
    want=$(sha256sum <"$WORK/blob" | cut -c1-64)
    for i in $(seq 1 50); do in_ns bash -c "exec 3<>/dev/tcp/$SIP/7100" 2>/dev/null && break; sleep 0.1; done
    for i in 1 2 3 4 5; do
        got=$(in_ns timeout 20 socat -t 5 - TCP:$SIP:7100 <"$WORK/blob" 2>>"$WORK/socat.log" | sha256sum | cut -c1-64)
        [ "$got" = "$want" ] && ok=$((ok + 1))
    done
    local pid n
    pid=$(pgrep -o -x socat)
    sleep 1.2   # the statistics file is rewritten about once a second
    n=$(accepted "$pid")
    [ -n "$n" ] && [ "$n" -ge 5 ] || { "$USNET" stat >"$WORK/socat.stat" 2>&1; echo "stat of $pid: $(head -c 600 "$WORK/socat.stat" | tr '\n' ' ')" >>"$WORK/socat.log"; }
    if [ "$ok" -eq 5 ] && [ -n "$n" ] && [ "$n" -ge 5 ]; then
        pass socat_exec_cat
    else
        fail socat_exec_cat "$ok of 5 echoed intact, usnet stat counted ${n:-no} accepted: $(tail -c 300 "$WORK/socat.log" | tr '\n' ' ')"
    fi
    stop_server
}
want socat_exec_cat && t_socat_exec

# Two unrelated `usnet run`s on one interface, one stack: haproxy (tcp mode)
# in front of an echo backend at the stack's own address; 5 MiB through the
# proxy intact.  The backend must see the proxy coming from the stack's
# address (the connection stayed on the stack), and a third run with another
# --ip is refused in one line naming both.
t_proxy_two_runs() {
    need_cmd haproxy || { skip proxy_two_runs "needs haproxy"; return; }
    head -c 5242880 /dev/urandom >"$WORK/blob5"
    cat >"$WORK/haproxy.cfg" <<CFG
global
    maxconn 64
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind $SIP:8000
    default_backend be
backend be
    server echo $SIP:9000
CFG
    under_usnet backend 60 python3 "$HERE/servers.py" echo "$SIP" 9000
    local backend=$SRV
    wait_ready backend || { fail proxy_two_runs "backend did not start: $(tail -c 300 "$WORK/backend.log" | tr '\n' ' ')"; stop_server; return; }
    in_ns timeout 60 "$USNET" run --backend tap --iface "$TAP" --ip "$SIP/24" -- haproxy -db -f "$WORK/haproxy.cfg" \
        >"$WORK/haproxy.log" 2>&1 &
    local i
    for i in $(seq 1 50); do in_ns bash -c "exec 3<>/dev/tcp/$SIP/8000" 2>/dev/null && break; sleep 0.1; done
    local want got conflict rc
    want=$(sha256sum <"$WORK/blob5" | cut -c1-64)
    got=$(in_ns timeout 30 socat -t 10 - TCP:$SIP:8000 <"$WORK/blob5" 2>>"$WORK/haproxy.log" | sha256sum | cut -c1-64)
    conflict=$(in_ns timeout 10 "$USNET" run --backend tap --iface "$TAP" --ip 10.65.0.9/24 -- true 2>&1)
    rc=$?
    # `usnet stat` shows the one stack, its address and both processes.
    local stackline
    stackline=$("$USNET" stat | grep "^stack $TAP@")
    if [ "$got" != "$want" ]; then
        fail proxy_two_runs "5 MiB through haproxy corrupted or lost: haproxy: $(tail -c 200 "$WORK/haproxy.log" | tr '\n' ' ') backend: $(tail -c 200 "$WORK/backend.log" | tr '\n' ' ')"
    elif ! grep -q "^peer $SIP\$" "$WORK/backend.log"; then
        fail proxy_two_runs "the backend did not see the proxy at the stack's address: $(grep peer "$WORK/backend.log" | tr '\n' ' ')"
    elif [ $rc -ne 2 ] || [ "$(printf '%s\n' "$conflict" | wc -l)" -ne 1 ] || ! printf '%s' "$conflict" | grep -q "10.65.0.9/24.*$SIP/24"; then
        fail proxy_two_runs "a run with another --ip was not refused in one line (status $rc): $conflict"
    elif ! printf '%s' "$stackline" | grep -qE "address $SIP/24, processes [0-9]+ [0-9]+"; then
        fail proxy_two_runs "usnet stat does not show one stack with both processes: '$stackline'"
    else
        pass proxy_two_runs
    fi
    stop_server
}
want proxy_two_runs && t_proxy_two_runs

# Privileges dropped before the first socket (setpriv execs the server as
# nobody, which may not open AF_PACKET/AF_XDP/TAP itself: it attaches through
# the connection usnet run left it) and after binding (setuid() in the
# server).  Each echoes 1 MiB intact, at the stack's address, as uid 65534.
t_privdrop() {
    local name=$1; shift
    local py=/usr/bin/python3 lib
    lib=$(dirname "$USNET")/libusnet.so
    if ! runuser -u nobody -- test -r "$lib" 2>/dev/null || ! runuser -u nobody -- test -x "$py" 2>/dev/null; then
        skip "$name" "nobody cannot read $lib or run $py from this checkout"
        return
    fi
    cp "$HERE/servers.py" "$WORK/servers.py"
    chmod 755 "$WORK" "$WORK/servers.py"
    head -c 1048576 /dev/urandom >"$WORK/blob1"
    under_usnet "$name" 60 "$@" "$py" "$WORK/servers.py" "${MODE:-echo}" "$SIP" 7300
    if ! wait_ready "$name"; then
        fail "$name" "server did not start: $(tail -c 300 "$WORK/$name.log" | tr '\n' ' ')"
        stop_server
        return
    fi
    local want got
    want=$(sha256sum <"$WORK/blob1" | cut -c1-64)
    got=$(in_ns timeout 20 socat -t 5 - TCP:$SIP:7300 <"$WORK/blob1" 2>>"$WORK/$name.log" | sha256sum | cut -c1-64)
    if [ "$got" = "$want" ] && grep -q "^ready uid=65534" "$WORK/$name.log" && grep -q "^peer $KIP\$" "$WORK/$name.log"; then
        pass "$name"
    else
        fail "$name" "1 MiB echo $([ "$got" = "$want" ] && echo intact || echo lost): $(tail -c 300 "$WORK/$name.log" | tr '\n' ' ')"
    fi
    stop_server
}
# Node's cluster: 4 worker processes (new node images) handed every
# connection by the primary over their IPC channel; 1000 requests, answered
# by all four.
t_node_cluster() {
    need_cmd node || { skip node_cluster_4_workers "needs nodejs"; return; }
    under_usnet cluster 120 node "$HERE/cluster.js" "$SIP" 8080 4
    wait_ready cluster || { fail node_cluster_4_workers "cluster did not start: $(tail -c 300 "$WORK/cluster.log" | tr '\n' ' ')"; stop_server; return; }
    local out pid n
    out=$(in_ns timeout 100 python3 "$HERE/http_clients.py" "$SIP" 8080 1000 2>&1)
    local rc=$?
    pid=$(pgrep -o -f "^node $HERE/cluster.js")
    sleep 1.2
    n=$(accepted "$pid")
    if [ $rc -eq 0 ] && printf '%s' "$out" | grep -q "from 4 processes" && [ -n "$n" ] && [ "$n" -ge 1000 ]; then
        pass node_cluster_4_workers
    else
        fail node_cluster_4_workers "$(printf '%s' "$out" | tr '\n' ' ' | head -c 300); usnet stat counted ${n:-no} accepted; $(tail -c 200 "$WORK/cluster.log" | tr '\n' ' ')"
    fi
    stop_server
}
want node_cluster_4_workers && t_node_cluster

want setpriv_nobody && t_privdrop setpriv_nobody setpriv --reuid=nobody --regid=nogroup --clear-groups --
want setuid_after_bind && MODE=drop-echo t_privdrop setuid_after_bind

# A process that may not open the owner's socket (mode 0600, root's) and was
# not handed a connection is refused: socket() fails with EACCES, and one
# line says why.
t_attach_refused() {
    local py=/usr/bin/python3 lib out
    lib=$(dirname "$USNET")/libusnet.so
    if ! runuser -u nobody -- test -r "$lib" 2>/dev/null; then
        skip attach_refused_eacces "nobody cannot read $lib from this checkout"
        return
    fi
    under_usnet refusedsrv 30 "$py" "$HERE/servers.py" echo "$SIP" 7400
    wait_ready refusedsrv || { fail attach_refused_eacces "server did not start"; stop_server; return; }
    out=$(in_ns runuser -u nobody -- env LD_PRELOAD="$lib" USNET_BACKEND=tap USNET_IFACE="$TAP" USNET_IP="$SIP/24" \
        "$py" -c 'import socket
try:
    socket.socket()
    print("created")
except PermissionError as e:
    print("EACCES")' 2>&1)
    if [ "$(printf '%s\n' "$out" | tail -1)" = EACCES ] && [ "$(printf '%s\n' "$out" | grep -c 'permission denied: this process may not attach')" -eq 1 ]; then
        pass attach_refused_eacces
    else
        fail attach_refused_eacces "$(printf '%s' "$out" | tr '\n' ' ' | head -c 300)"
    fi
    stop_server
}
want attach_refused_eacces && t_attach_refused

# A program whose first sockets come from 64 threads at once: while one
# thread initialises the stack, the others' calls must wait for it, and no
# thread may use the half-made provider (under SUD every call of every
# thread is trapped, which made that window wide).  Three runs.
t_threads_start() {
    in_ns timeout 60 python3 -c '
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("'"$KIP"'", 7005)); s.listen(256); print("ready", flush=True)
def echo(c):
    with c:
        while (d := c.recv(4096)):
            c.sendall(d)
while True:
    c, _ = s.accept(); threading.Thread(target=echo, args=(c,), daemon=True).start()' >"$WORK/kecho.log" 2>&1 &
    local kecho=$! run ok=0 out
    wait_ready kecho || { fail threads_start_sud "kernel echo server did not start"; kill $kecho; return; }
    for run in 1 2 3; do
        out=$(in_ns timeout 30 "$USNET" run --hook sud --backend tap --iface "$TAP" --ip "$SIP/24" -- python3 -c '
import socket, threading
ok = []
def one(i):
    c = socket.create_connection(("'"$KIP"'", 7005), timeout=10)
    c.sendall(b"x%d" % i)
    ok.append(c.recv(100) == b"x%d" % i)
    c.close()
t = [threading.Thread(target=one, args=(i,)) for i in range(64)]
[x.start() for x in t]; [x.join() for x in t]
print(sum(ok), "ok")' 2>&1)
        [ "$(tail -1 <<<"$out")" = "64 ok" ] && ok=$((ok + 1))
    done
    kill $kecho 2>/dev/null; wait $kecho 2>/dev/null
    if [ $ok -eq 3 ]; then pass threads_start_sud; else fail threads_start_sud "$ok of 3 runs worked; last: $(tail -c 300 <<<"$out" | tr '\n' ' ')"; fi
}
want threads_start_sud && t_threads_start

# usnet stat: every counter by name, a connection's TCP details as `ss -ti`
# shows them, --json for scripts, -w refreshing.
t_stat() {
    under_usnet stat 30 python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("0.0.0.0", 7003)); s.listen(); print("ready", flush=True)
c, _ = s.accept(); c.sendall(b"x" * 100000); time.sleep(20)'
    if ! wait_ready stat; then fail stat_counters_json "server did not start: $(tail -c 300 "$WORK/stat.log")"; stop_server; return; fi
    in_ns timeout 20 python3 -c '
import socket, time
s = socket.create_connection(("'"$SIP"'", 7003)); n = 0
while n < 100000: n += len(s.recv(65536))
time.sleep(15)' &
    local cli=$! pid why="" i
    for i in $(ip netns pids "$NS"); do
        [ "$(cat "/proc/$i/comm" 2>/dev/null)" = python3 ] && grep -q 7003 "/proc/$i/cmdline" 2>/dev/null &&
            "$USNET" stat "$i" >/dev/null 2>&1 && pid=$i
    done
    for i in $(seq 1 30); do
        "$USNET" stat "$pid" 2>/dev/null | grep -q "bytes_acked=100000" && break
        sleep 0.1
    done
    local text; text=$("$USNET" stat "$pid" 2>&1)
    for c in rx_drop_not_ours ip_drop_csum tcp_drop_csum tcp_no_port tcp_challenge_ack udp_no_port tx_no_buffer; do
        grep -q "^$c [0-9]" <<<"$text" || why="$why no counter $c;"
    done
    grep -q "ESTABLISHED local=$SIP:7003 .* rtt=[0-9.]*/[0-9.]* cwnd=[1-9][0-9]* .*bytes_acked=100000" <<<"$text" ||
        why="$why no connection line with rtt, cwnd and 100000 bytes acked;"
    "$USNET" stat --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
p = [p for p in d["processes"] if p["pid"] == '"${pid:-0}"']
assert p, "process not listed"
p = p[0]
assert p["tcp_accepted"] == 1 and p["tcp_tx"] > 0, "counters"
assert any(s["state"] == "ESTABLISHED" and s["bytes_acked"] == 100000 for s in p["sockets"]), "sockets"
' 2>>"$WORK/stat.json.err" || why="$why --json: $(tail -1 "$WORK/stat.json.err");"
    [ "$(timeout 2.5 "$USNET" stat -w 1 "$pid" | grep -c '^tcp_accepted ')" -ge 2 ] || why="$why -w 1 did not refresh;"
    kill "$cli" 2>/dev/null; wait "$cli" 2>/dev/null
    stop_server
    if [ -z "$why" ]; then pass stat_counters_json; else fail stat_counters_json "$why"; fi
}
want stat_counters_json && t_stat

# ---- a 4-queue veth (every real NIC has many queues), afxdp ----------------

veth4_up() { veth_pair "$UNS" "$UIF" "$KNS" "$KIF" "$VKIP" 4; }

# nginx_conf DIR PORT WORKERS
nginx_conf() {
    mkdir -p "$1/www"
    cat >"$1/nginx.conf" <<CONF
daemon off; worker_processes $3; pid $1/nginx.pid; error_log $1/error.log;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $1; proxy_temp_path $1; sendfile on;
  fastcgi_temp_path $1; uwsgi_temp_path $1; scgi_temp_path $1;
  server { listen $VUIP:$2; root $1/www; } }
CONF
}

# v4_nginx NAME PORT WORKERS: nginx under usnet (afxdp) on the veth; its
# master's pid in NGX.
NGX=
v4_nginx() {
    local dir=$WORK/$1
    nginx_conf "$dir" "$2" "$3"
    echo "small page" >"$dir/www/index.html"
    head -c 1048576 /dev/urandom >"$dir/www/blob"
    chmod -R 755 "$WORK"
    ip netns exec "$UNS" timeout 120 "$USNET" run --backend afxdp --iface "$UIF" --ip "$VUIP/24" -- \
        nginx -c "$dir/nginx.conf" >"$dir/run.log" 2>&1 &
    local i
    for i in $(seq 1 100); do
        ip netns exec "$KNS" curl -s -m 1 -o /dev/null "http://$VUIP:$2/index.html" && break
        sleep 0.1
    done
    NGX=$(cat "$dir/nginx.pid" 2>/dev/null)
    [ -n "$NGX" ]
}

# stat_of PID KEY: a counter of `usnet stat PID`.
stat_of() { "$USNET" stat "$1" 2>/dev/null | sed -n "s/^$2 //p" | head -1; }
# live_sockets PID: the stack's sockets but those in TIME_WAIT (which Linux
# keeps apart too: no descriptor, no buffer; they go after 60 s).
live_sockets() {
    local all tw
    all=$(stat_of "$1" sockets_in_use)
    tw=$(stat_of "$1" tcp_time_wait)
    [ -n "$all" ] && [ -n "$tw" ] && echo $((all - tw))
}

# nothing_left: the interface has no XDP program and no owner, and no
# process maps a stack's shared memory, once the last process is gone.
leftovers() {
    ip -n "$UNS" link show "$UIF" | grep -o 'xdp[a-z]*' | head -1
    ls /run/usnet/ 2>/dev/null | grep "^$UIF@.*sock"
    local p
    for p in $(ip netns pids "$UNS" 2>/dev/null); do
        grep -ls 'memfd:usnet-\(stack\|switch\|afxdp\)' "/proc/$p/maps" 2>/dev/null
    done
}
nothing_left() {
    local i
    for i in $(seq 1 50); do
        [ -z "$(leftovers)" ] && return 0
        sleep 0.1
    done
    return 1
}

t_veth4() {
    need_cmd nginx curl ethtool || { skip nginx_4_workers_4_queues "needs nginx, curl, ethtool"; skip nginx_chaos_sigkill_workers "needs nginx, curl, ethtool"; skip ip6_4_queues "needs nginx, curl, ethtool"; return; }
    [ -f "$(dirname "$USNET")/libusnet.so" ] && nm "$(dirname "$USNET")/libusnet.so" 2>/dev/null | grep -q netif_afxdp_open ||
        { skip nginx_4_workers_4_queues "this build has no afxdp"; skip nginx_chaos_sigkill_workers "this build has no afxdp"; skip ip6_4_queues "this build has no afxdp"; return; }
    veth4_up || { fail nginx_4_workers_4_queues "cannot set up the 4-queue veth"; return; }
    ip -n "$UNS" addr add "$VHIP/24" dev "$UIF"   # the kernel's own address there

    # nginx master + 4 workers; 16 connections fetch 1 MiB each, checked.
    if want nginx_4_workers_4_queues; then
        if v4_nginx ng4 8090 4; then
            local want got ok=0 i
            want=$(sha256sum <"$WORK/ng4/www/blob" | cut -c1-64)
            for i in $(seq 1 16); do
                got=$(ip netns exec "$KNS" curl -s -m 10 "http://$VUIP:8090/blob" | sha256sum | cut -c1-64)
                [ "$got" = "$want" ] && ok=$((ok + 1))
            done
            # 48 more connections for a small page: 64 in all, spread by
            # their flow hash, reach every one of the stack's 4 instances.
            local pages=0
            for i in $(seq 1 48); do
                ip netns exec "$KNS" curl -s -m 5 "http://$VUIP:8090/" | grep -q "small page" && pages=$((pages + 1))
            done
            sleep 1.2
            local queues=0 insts=0 q n
            for q in 0 1 2 3; do
                n=$(stat_of "$NGX" "rx_frames_queue_$q")
                [ -n "$n" ] && [ "$n" -gt 0 ] && queues=$((queues + 1))
                n=$(stat_of "$NGX" "instance_$q" | awk '{ for (i = 1; i < NF; i++) if ($i == "accepted") print $(i + 1) }')
                [ -n "$n" ] && [ "$n" -gt 0 ] && insts=$((insts + 1))
            done
            if [ $ok -eq 16 ] && [ $pages -eq 48 ] && [ $queues -ge 2 ] && [ $insts -eq 4 ]; then
                pass nginx_4_workers_4_queues
            else
                fail nginx_4_workers_4_queues "$ok of 16 downloads intact, $pages of 48 pages, frames on $queues queues, connections on $insts of 4 instances: $(tail -c 200 "$WORK/ng4/error.log" | tr '\n' ' ')"
            fi
            # The kernel's own address on the same interface keeps answering
            # ARP and ping while usnet is attached, from empty neighbour
            # caches on both sides, and again after they are flushed.
            if want kernel_address_beside_afxdp; then
                local round okk=0
                for round in 1 2; do
                    ip -n "$KNS" neigh flush dev "$KIF"
                    ip -n "$UNS" neigh flush dev "$UIF"
                    ip netns exec "$KNS" ping -c 2 -W 1 -q "$VHIP" >/dev/null 2>&1 &&
                        ip netns exec "$KNS" ping -c 1 -W 1 -q "$VUIP" >/dev/null 2>&1 && okk=$((okk + 1))
                done
                if [ $okk -eq 2 ]; then
                    pass kernel_address_beside_afxdp
                else
                    fail kernel_address_beside_afxdp "$okk of 2 rounds reached both the kernel ($VHIP) and usnet ($VUIP): $(ip -n "$KNS" neigh show dev "$KIF" | tr '\n' ' ')"
                fi
            fi
        else
            fail nginx_4_workers_4_queues "nginx did not answer: $(tail -c 300 "$WORK/ng4/run.log" | tr '\n' ' ')"
        fi
        [ -n "$NGX" ] && kill "$NGX" 2>/dev/null
        wait 2>/dev/null
    fi

    # Chaos: wrk keeps 32 connections busy against nginx (master + 2
    # workers) while a worker is SIGKILLed every 200 ms for 30 s.  A probe
    # makes new connections all along: the service never stops (no two
    # probes in a row fail); only a connection a killed worker held may fail
    # (at most 1 in 20).  Afterwards the stack's sockets and buffers come back
    # to their idle counts exactly (a worker killed holding an instance's lock
    # leaves nothing half done: the next holder repairs the stack), and when
    # nginx exits nothing stays attached.
    if want nginx_chaos_sigkill_workers; then
        if ! nothing_left; then
            fail nginx_chaos_sigkill_workers "the previous server left its stack attached: $(leftovers | tr '\n' ' ')"
        elif ! v4_nginx chaos 8091 2; then
            fail nginx_chaos_sigkill_workers "nginx did not answer: $(tail -c 300 "$WORK/chaos/run.log" | tr '\n' ' ')"
        else
            sleep 1.2
            local idle_socks idle_bufs
            idle_socks=$(live_sockets "$NGX")
            idle_bufs=$(stat_of "$NGX" buffers_in_use)
            ip netns exec "$KNS" timeout 40 wrk -t 1 -c 32 -d 31s "http://$VUIP:8091/index.html" >"$WORK/chaos/wrk.out" 2>&1 &
            local wrk=$!
            (
                end=$((SECONDS + 30))
                while [ $SECONDS -lt $end ]; do
                    ip netns exec "$KNS" curl -s -o /dev/null -m 2 "http://$VUIP:8091/index.html"
                    echo "$?"
                    sleep 0.05
                done
            ) >"$WORK/chaos/probe.out" &
            local probe=$! kills=0 end=$((SECONDS + 30)) victims v
            while [ $SECONDS -lt $end ]; do
                victims=($(pgrep -P "$NGX"))
                if [ ${#victims[@]} -gt 0 ]; then
                    v=${victims[$((RANDOM % ${#victims[@]}))]}
                    kill -9 "$v" 2>/dev/null && kills=$((kills + 1))
                fi
                sleep 0.2
            done
            wait "$probe" "$wrk" 2>/dev/null
            # A probe the killed worker had accepted may fail, however it
            # fails (cut, or left unanswered); the service stopping shows
            # as failures in a row.
            local total failed inarow
            total=$(wc -l <"$WORK/chaos/probe.out")
            failed=$(grep -cv '^0$' "$WORK/chaos/probe.out")
            inarow=$(awk '$1 != 0 { run++; if (run > max) max = run; next } { run = 0 } END { print max + 0 }' "$WORK/chaos/probe.out")
            # Idle again: the killed workers' sockets closed, their buffers back.
            local socks bufs i
            for i in $(seq 1 75); do
                socks=$(live_sockets "$NGX")
                bufs=$(stat_of "$NGX" buffers_in_use)
                [ "$socks" = "$idle_socks" ] && [ "$bufs" = "$idle_bufs" ] && break
                sleep 0.2
            done
            # Workers killed holding an instance's lock: the next holder
            # repaired the stack (usnet_stack_repair).
            local repairs
            repairs=$(stat_of "$NGX" repairs)
            kill "$NGX" 2>/dev/null
            wait 2>/dev/null
            local left=yes
            nothing_left && left=no
            if [ "$kills" -lt 100 ] || [ "$total" -lt 100 ] || [ "$inarow" -gt 1 ] || [ $((failed * 20)) -gt "$total" ]; then
                fail nginx_chaos_sigkill_workers "$kills kills; of $total probes $failed failed, at most $inarow in a row (curl status: count): $(sort "$WORK/chaos/probe.out" | uniq -c | tr '\n' ' '); sockets $socks (idle $idle_socks), buffers $bufs (idle $idle_bufs), ${repairs:-no} repairs"
            elif [ -z "$socks" ] || [ "$socks" != "$idle_socks" ] || [ "$bufs" != "$idle_bufs" ]; then
                fail nginx_chaos_sigkill_workers "not idle again: sockets $socks (idle $idle_socks), buffers $bufs (idle $idle_bufs), ${repairs:-no} repairs"
            elif [ $left = yes ]; then
                fail nginx_chaos_sigkill_workers "left behind: $(leftovers | tr '\n' ' ')"
            else
                pass nginx_chaos_sigkill_workers
                echo "    $kills workers killed; $total probes, $failed of them held by a killed worker; sockets $socks (idle $idle_socks), buffers $bufs (idle $idle_bufs); ${repairs:-no} repairs; wrk: $(grep -E 'requests in' "$WORK/chaos/wrk.out" | tr -s ' ')"
            fi
        fi
    fi

    # The owner killed: nginx keeps serving on the stack it holds (the XDP
    # program stays, its link held by every attached process); a second
    # `usnet run` on the interface is refused in one line naming the gone
    # owner; once nginx exits, nothing is left and a new run serves again.
    if want owner_killed; then
        local owner p why="" second
        ns_stop "$UNS"; nothing_left
        if ! v4_nginx ok 8092 2; then
            fail owner_killed "nginx did not answer: $(tail -c 300 "$WORK/ok/run.log" | tr '\n' ' ')"
        else
            for p in $(ip netns pids "$UNS"); do
                tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q '^[^ ]*usnet owner' && owner=$p
            done
            kill -9 "${owner:-0}" 2>/dev/null
            sleep 0.3
            ip netns exec "$KNS" curl -s -m 5 "http://$VUIP:8092/index.html" | grep -q "small page" ||
                why="nginx stopped answering when its owner ($owner) was killed"
            second=$(ip netns exec "$UNS" timeout 10 "$USNET" run --backend afxdp --iface "$UIF" --ip "$VUIP/24" -- true 2>&1)
            [ -z "$why" ] && ! grep -q "usnet process $owner, which is gone" <<<"$second" &&
                why="a second usnet run said: $second"
            ns_stop "$UNS"
            [ -z "$why" ] && ! nothing_left && why="left behind after nginx exited: $(leftovers | tr '\n' ' ')"
            if [ -z "$why" ]; then
                v4_nginx ok2 8093 1 || why="a new nginx did not answer: $(tail -c 300 "$WORK/ok2/run.log" | tr '\n' ' ')"
                ns_stop "$UNS"
            fi
            if [ -z "$why" ]; then pass owner_killed; else fail owner_killed "$why"; fi
        fi
    fi

    # IPv6 on the 4 queues (--ip6 fd00:69::2, an address only the stack
    # has): an IPv6 flow's frames reach the queue the peer's hash picks,
    # which need not be its connection's instance; the provider hands them
    # over, and copies Neighbor Discovery to every instance.  curl -6 under
    # usnet fetches 16 times from a kernel http.server, which logs the
    # stack's address; the kernel's curl -6 fetches 16 times from a
    # http.server on :: under usnet, whose connections usnet stat counts;
    # 8 kernel UDP sockets (8 flows) each get their datagram echoed by a
    # UDP server on :: under usnet.
    if want ip6_4_queues; then
        local why="" log=$WORK/ip6q.log srvlog=$WORK/ip6q-kernel.log n i
        ns_stop "$UNS"; nothing_left
        # usnet's end gets no kernel link-local address (the stack's, from the same MAC)
        ip -n "$UNS" link set "$UIF" addrgenmode none
        ip -n "$UNS" -6 addr flush dev "$UIF" scope link
        ip -n "$KNS" -6 addr add fd00:69::1/64 dev "$KIF" nodad
        ip netns exec "$KNS" python3 -m http.server 8095 --bind fd00:69::1 --directory "$WORK" >"$srvlog" 2>&1 &
        local ksrv=$!
        sleep 0.5
        n=$(ip netns exec "$UNS" timeout 60 "$USNET" run --backend afxdp --iface "$UIF" --ip "$VUIP/24" --ip6 fd00:69::2/64 -- \
            sh -c 'n=0; for i in $(seq 1 16); do curl -6 -s -m 3 -o /dev/null "http://[fd00:69::1]:8095/" && n=$((n + 1)); done; echo $n' 2>&1)
        kill $ksrv; wait $ksrv 2>/dev/null
        [ "$n" = 16 ] || why="curl -6 under usnet: $n of 16 fetches"
        [ -z "$why" ] && [ "$(grep -c '^fd00:69::2 ' "$srvlog")" -ne 16 ] &&
            why="the kernel's http.server logged $(grep -c '^fd00:69::2 ' "$srvlog") of 16 requests from fd00:69::2: $(tail -2 "$srvlog" | tr '\n' ' ')"
        ns_stop "$UNS"; nothing_left
        if [ -z "$why" ]; then
            ip netns exec "$UNS" timeout 60 "$USNET" run --backend afxdp --iface "$UIF" --ip "$VUIP/24" --ip6 fd00:69::2/64 -- \
                python3 -c '
import os, socket, sys, threading, http.server
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u.bind(("::", 8097))
def echo():
    while True:
        d, a = u.recvfrom(100)
        u.sendto(d, a)
threading.Thread(target=echo, daemon=True).start()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"v6 page")
    def log_message(self, *a): pass
class S(http.server.HTTPServer): address_family = socket.AF_INET6
s = S(("::", 8096), H)
print("ready", os.getpid(), flush=True)
s.serve_forever()' >"$log" 2>&1 &
            local pid
            for i in $(seq 1 100); do grep -q '^ready' "$log" && break; sleep 0.1; done
            pid=$(awk '$1 == "ready" {print $2}' "$log")
            n=0
            for i in $(seq 1 16); do
                ip netns exec "$KNS" curl -6 -s -m 3 "http://[fd00:69::2]:8096/" | grep -q "v6 page" && n=$((n + 1))
            done
            [ $n -eq 16 ] || why="the kernel's curl -6 to http.server under usnet: $n of 16 fetches: $(tail -3 "$log" | tr '\n' ' ')"
            local acc=0 q a
            sleep 1.2   # (usnet stat's figures are published once a second)
            for q in 0 1 2 3; do
                a=$(stat_of "$pid" "instance_$q" | awk '{ for (i = 1; i < NF; i++) if ($i == "accepted") print $(i + 1) }')
                acc=$((acc + ${a:-0}))
            done
            [ -z "$why" ] && [ $acc -lt 16 ] && why="usnet stat counts $acc accepted connections, not 16"
            local echoed
            echoed=$(ip netns exec "$KNS" python3 -c '
import socket
n = 0
for i in range(8):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.sendto(b"dgram %d" % i, ("fd00:69::2", 8097))
    try:
        d, a = s.recvfrom(100)
        n += d == b"dgram %d" % i and a[0] == "fd00:69::2"
    except OSError:
        pass
print(n)')
            [ -z "$why" ] && [ "$echoed" != 8 ] && why="UDP over IPv6: $echoed of 8 kernel sockets got their datagram back"
            ns_stop "$UNS"
        fi
        if [ -z "$why" ]; then pass ip6_4_queues; else fail ip6_4_queues "$why"; fi
    fi
}
want nginx_4_workers_4_queues || want nginx_chaos_sigkill_workers || want owner_killed || want ip6_4_queues && t_veth4
exit 0
