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
    if [ "$got" != "$want" ]; then
        fail proxy_two_runs "5 MiB through haproxy corrupted or lost: haproxy: $(tail -c 200 "$WORK/haproxy.log" | tr '\n' ' ') backend: $(tail -c 200 "$WORK/backend.log" | tr '\n' ' ')"
    elif ! grep -q "^peer $SIP\$" "$WORK/backend.log"; then
        fail proxy_two_runs "the backend did not see the proxy at the stack's address: $(grep peer "$WORK/backend.log" | tr '\n' ' ')"
    elif [ $rc -ne 2 ] || [ "$(printf '%s\n' "$conflict" | wc -l)" -ne 1 ] || ! printf '%s' "$conflict" | grep -q "10.65.0.9/24.*$SIP/24"; then
        fail proxy_two_runs "a run with another --ip was not refused in one line (status $rc): $conflict"
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
exit 0
fi
if [ ! -x "$USNET" ] || [ ! -f "$(dirname "$USNET")/libusnet.so" ]; then
    skip attach "build/usnet or build/libusnet.so not built"
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
    if [ "$got" != "$want" ]; then
        fail proxy_two_runs "5 MiB through haproxy corrupted or lost: haproxy: $(tail -c 200 "$WORK/haproxy.log" | tr '\n' ' ') backend: $(tail -c 200 "$WORK/backend.log" | tr '\n' ' ')"
    elif ! grep -q "^peer $SIP\$" "$WORK/backend.log"; then
        fail proxy_two_runs "the backend did not see the proxy at the stack's address: $(grep peer "$WORK/backend.log" | tr '\n' ' ')"
    elif [ $rc -ne 2 ] || [ "$(printf '%s\n' "$conflict" | wc -l)" -ne 1 ] || ! printf '%s' "$conflict" | grep -q "10.65.0.9/24.*$SIP/24"; then
        fail proxy_two_runs "a run with another --ip was not refused in one line (status $rc): $conflict"
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
exit 0
fi
if ! need_cmd python3; then
    skip attach "needs python3"
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
    if [ "$got" != "$want" ]; then
        fail proxy_two_runs "5 MiB through haproxy corrupted or lost: haproxy: $(tail -c 200 "$WORK/haproxy.log" | tr '\n' ' ') backend: $(tail -c 200 "$WORK/backend.log" | tr '\n' ' ')"
    elif ! grep -q "^peer $SIP\$" "$WORK/backend.log"; then
        fail proxy_two_runs "the backend did not see the proxy at the stack's address: $(grep peer "$WORK/backend.log" | tr '\n' ' ')"
    elif [ $rc -ne 2 ] || [ "$(printf '%s\n' "$conflict" | wc -l)" -ne 1 ] || ! printf '%s' "$conflict" | grep -q "10.65.0.9/24.*$SIP/24"; then
        fail proxy_two_runs "a run with another --ip was not refused in one line (status $rc): $conflict"
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
exit 0
fi

WORK=$(mktemp -d /tmp/usnet-attach-$$-XXXXXX)
NS=at-$$ TAP=at$$t KIP=10.65.0.1 SIP=10.65.0.2
cleanup() {
    local pid
    for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
    ip netns del "$NS" 2>/dev/null
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
    local pid
    for pid in $(ip netns pids "$NS" 2>/dev/null); do kill "$pid" 2>/dev/null; done
    sleep 0.2
    for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
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
    if [ "$got" != "$want" ]; then
        fail proxy_two_runs "5 MiB through haproxy corrupted or lost: haproxy: $(tail -c 200 "$WORK/haproxy.log" | tr '\n' ' ') backend: $(tail -c 200 "$WORK/backend.log" | tr '\n' ' ')"
    elif ! grep -q "^peer $SIP\$" "$WORK/backend.log"; then
        fail proxy_two_runs "the backend did not see the proxy at the stack's address: $(grep peer "$WORK/backend.log" | tr '\n' ' ')"
    elif [ $rc -ne 2 ] || [ "$(printf '%s\n' "$conflict" | wc -l)" -ne 1 ] || ! printf '%s' "$conflict" | grep -q "10.65.0.9/24.*$SIP/24"; then
        fail proxy_two_runs "a run with another --ip was not refused in one line (status $rc): $conflict"
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
exit 0
