#!/usr/bin/env bash
# usnet-kv and usnet-bench behaviour tests.
#
# Kernel mode (no root): the same request sequences go to the real memcached
# and to `usnet-kv --kernel`, each on its own loopback port, and the replies
# are compared byte for byte (tests/kv/compare.py lists what is normalised);
# then real clients (memccapable, memcslap, memaslap, pymemcache) run against
# usnet-kv, and its own limits (-m, -I, -t) and the benchmark tool are checked.
# usnet mode (root): the same over a TAP device inside a private namespace.
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh

KV=build/usnet-kv
BENCH=build/usnet-bench
PY=/usr/bin/python3
T=tests/kv
tmp=$(mktemp -d /tmp/usnet-kv-test.XXXXXX)
pids=()
ns=""

cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    if [ -n "$ns" ]; then
        ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
        ip netns del "$ns" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# A TCP port nobody listens on right now.
free_port() {
    $PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port HOST PORT [NETNS]: until something accepts there (5 s at most).
wait_port() {
    local exec=()
    [ -n "${3:-}" ] && exec=(ip netns exec "$3")
    "${exec[@]}" $PY - "$1" "$2" <<'EOF'
import socket, sys, time
end = time.time() + 5
while time.time() < end:
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
EOF
}

# start NAME CMD...: run CMD in the background (output in $tmp/NAME.log).
start() {
    local name=$1
    shift
    "$@" >"$tmp/$name.log" 2>&1 &
    pids+=($!)
}

# result NAME CMD...: PASS when CMD succeeds, else FAIL with its last line.
result() {
    local name=$1
    shift
    if "$@" >"$tmp/$name.out" 2>&1; then
        pass "$name"
    else
        fail "$name" "$(tail -n 3 "$tmp/$name.out" | tr '\n' ' ')"
    fi
}

if [ ! -x "$KV" ] || [ ! -x "$BENCH" ]; then
    fail kv-build "$KV or $BENCH is missing (run make)"
    exit 1
fi
if [ ! -x "$PY" ]; then
    skip kv-all "needs python3 (Debian package python3)"
    exit 0
fi
have_mc=0
need_cmd memcached && have_mc=1

# ---- kernel mode ------------------------------------------------------------
kv_port=$(free_port)
start usnet-kv timeout 300 "$KV" --kernel -l 127.0.0.1 -p "$kv_port"
if ! wait_port 127.0.0.1 "$kv_port"; then
    fail kv-start "usnet-kv did not start: $(tail -3 "$tmp/usnet-kv.log" | tr '\n' ' ')"
    exit 1
fi
if [ $have_mc = 1 ]; then
    mc_port=$(free_port)
    start memcached memcached -u root -l 127.0.0.1 -p "$mc_port" -U 0 -t 1
    if wait_port 127.0.0.1 "$mc_port"; then
        # Byte-for-byte comparison, one line per scenario.
        timeout 120 $PY $T/compare.py 127.0.0.1 "$mc_port" 127.0.0.1 "$kv_port" ||
            echo "FAIL kv-compare: compare.py exited with an error"
        # Seeded random request streams and garbage: same replies, no crash.
        result kv-fuzz-random-requests timeout 120 $PY $T/fuzz_sessions.py 127.0.0.1 "$kv_port" 42 150 127.0.0.1 "$mc_port"
    else
        fail kv-compare "memcached did not start: $(tail -3 "$tmp/memcached.log" | tr '\n' ' ')"
    fi
else
    skip kv-compare "needs memcached (Debian package memcached) to compare against"
    result kv-fuzz-garbage timeout 120 $PY $T/fuzz_sessions.py 127.0.0.1 "$kv_port" 42 150
fi

if need_cmd memccapable; then
    check_capable() {
        timeout 60 memccapable -h 127.0.0.1 -p "$kv_port" -a -t 5 >"$tmp/capable" 2>&1
        grep -q "All tests passed" "$tmp/capable" || { tail -3 "$tmp/capable"; return 1; }
    }
    result kv-memccapable-ascii check_capable
else
    skip kv-memccapable-ascii "needs memccapable (libmemcached-tools)"
fi

if need_cmd memcslap; then
    check_memcslap() {
        local t
        for t in set get mget; do
            timeout 60 memcslap -s "127.0.0.1:$kv_port" -c 2 -e 500 -t $t >"$tmp/slap" 2>&1 || { cat "$tmp/slap"; return 1; }
            grep -q "Time total" "$tmp/slap" || { cat "$tmp/slap"; return 1; }
        done
    }
    result kv-memcslap check_memcslap
else
    skip kv-memcslap "needs memcslap (libmemcached-tools)"
fi

if need_cmd memcaslap; then
    check_memaslap() {
        HOME=$tmp timeout 30 memcaslap -s "127.0.0.1:$kv_port" -T 1 -c 4 -t 1s -v 0.2 >"$tmp/aslap" 2>&1 || { tail -3 "$tmp/aslap"; return 1; }
        grep -q "^verify_failed: 0" "$tmp/aslap" && grep -q "^get_misses: 0" "$tmp/aslap" &&
            grep -Eq "Ops: [1-9]" "$tmp/aslap" || { grep -E "verify|misses|Ops" "$tmp/aslap"; return 1; }
    }
    result kv-memaslap check_memaslap
else
    skip kv-memaslap "needs memcaslap (libmemcached-tools)"
fi

if $PY -c 'import pymemcache' 2>/dev/null; then
    result kv-pymemcache timeout 60 $PY $T/pymemcache_check.py 127.0.0.1 "$kv_port"
else
    skip kv-pymemcache "needs python3-pymemcache"
fi

# kv_check KV-OPTIONS...: a usnet-kv of its own (kernel sockets, loopback, a
# free port, with KV-OPTIONS) for the Python check read from stdin, which gets
# the port as its argument; the check's exit status.
kv_check() {
    local port pid rc
    port=$(free_port)
    timeout 60 "$KV" --kernel -l 127.0.0.1 -p "$port" "$@" &
    pid=$!
    wait_port 127.0.0.1 "$port" || { kill $pid; return 1; }
    $PY - "$port"
    rc=$?
    kill $pid
    wait $pid 2>/dev/null
    return $rc
}

# -m: a 1 MB budget keeps the newest items and evicts the oldest.
check_memory_limit() {
    kv_check -m 1 <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = s.makefile("rb")
val = b"x" * 1000
for i in range(3000):              # 3 MB into 1 MB
    s.sendall(b"set key%d 0 0 1000\r\n%s\r\n" % (i, val))
    assert f.readline() == b"STORED\r\n"
    if i % 100 == 1:               # key1 is read all along: it stays
        s.sendall(b"get key1\r\n")
        assert f.readline() == b"VALUE key1 0 1000\r\n", "a hot item was evicted (%d)" % i
        f.readline(); f.readline()
s.sendall(b"get key0\r\nget key2999\r\nstats\r\n")
assert f.readline() == b"END\r\n", "oldest item survived"
assert f.readline() == b"VALUE key2999 0 1000\r\n", "newest item lost"
f.readline(); f.readline()
stats = {}
while True:
    line = f.readline()
    if line == b"END\r\n":
        break
    _, k, v = line.split()
    if v.isdigit():
        stats[k] = int(v)
assert stats[b"evictions"] > 0, stats
assert stats[b"bytes"] <= 1 << 20, stats
assert stats[b"limit_maxbytes"] == 1 << 20, stats
EOF
}
result kv-memory-limit-evicts-lru check_memory_limit

# -I: values over the item size limit get memcached's error, the stream goes on.
check_item_limit() {
    kv_check -I 2k <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = s.makefile("rb")
s.sendall(b"set big 0 0 3000\r\n" + b"y" * 3000 + b"\r\nset small 0 0 1000\r\n" + b"z" * 1000 + b"\r\nget big small\r\n")
assert f.readline() == b"SERVER_ERROR object too large for cache\r\n"
assert f.readline() == b"STORED\r\n"
assert f.readline() == b"VALUE small 0 1000\r\n"
EOF
}
result kv-item-size-limit check_item_limit

# -t: several threads (SO_REUSEPORT listeners) share one store.
check_threads() {
    kv_check -t 3 <<'EOF'
import socket, sys
port = int(sys.argv[1])
conns = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(12)]
files = [c.makefile("rb") for c in conns]
for i, c in enumerate(conns):
    c.sendall(b"set t%d 0 0 2\r\n%02d\r\n" % (i, i))
    assert files[i].readline() == b"STORED\r\n"
for i, c in enumerate(conns):         # each reads what another stored
    j = (i + 5) % len(conns)
    c.sendall(b"get t%d\r\n" % j)
    assert files[i].readline() == b"VALUE t%d 0 2\r\n" % j
    assert files[i].readline() == b"%02d\r\n" % j
    assert files[i].readline() == b"END\r\n"
EOF
}
result kv-threads-share-store check_threads

# usnet-bench on kernel sockets: ping-pong and the memcached workload.
check_bench_pingpong() {
    local port
    port=$(free_port)
    timeout 30 "$BENCH" ponger --kernel -p "$port" &
    local pid=$!
    wait_port 127.0.0.1 "$port" || { kill $pid; return 1; }
    timeout 30 "$BENCH" pinger 127.0.0.1 --kernel -p "$port" -c 4 -t 2 -m 64 -d 0.5 >"$tmp/pinger" &&
        timeout 30 $PY $T/echo_check.py 127.0.0.1 "$port" >>"$tmp/pinger"
    local rc=$?
    kill $pid
    wait $pid 2>/dev/null
    cat "$tmp/pinger"
    [ $rc -eq 0 ] && grep -Eq '^RESULT rate=[1-9][0-9]* .* errors=0$' "$tmp/pinger"
}
result bench-pingpong-kernel check_bench_pingpong

check_bench_kv() {
    timeout 60 "$BENCH" kv 127.0.0.1 --kernel -p "$kv_port" -c 4 -d 0.5 -n 20000 >"$tmp/kvbench" || return 1
    cat "$tmp/kvbench"
    grep -q "^kv: stored 20000 items" "$tmp/kvbench" &&
        grep -Eq '^RESULT rate=[1-9][0-9]* .* errors=0$' "$tmp/kvbench"
}
result bench-kv-kernel check_bench_kv

# The same workload in the Redis protocol against a real redis-server: every
# item stored (DBSIZE), the values as the client wrote them, no errors.
check_bench_kv_redis() {
    local port pid rc
    port=$(free_port)   # its own: kv_port + 7 may be an ephemeral port in use
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
    pid=$!
    for _ in $(seq 50); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
    timeout 60 "$BENCH" kv 127.0.0.1 --kernel --redis -p "$port" -c 4 -d 0.5 -n 5000 >"$tmp/kvredis"
    rc=$?
    cat "$tmp/kvredis"
    local size val
    size=$(redis-cli -p "$port" dbsize)
    val=$(redis-cli -p "$port" get k0004321)
    kill $pid
    wait $pid 2>/dev/null
    echo "dbsize $size, k0004321 = $val"
    [ $rc -eq 0 ] && grep -q "^kv: stored 5000 items" "$tmp/kvredis" &&
        grep -Eq '^RESULT rate=[1-9][0-9]* .* errors=0$' "$tmp/kvredis" &&
        [ "$size" = 5000 ] && [ "$val" = v0004321 ]
}
if need_cmd redis-server redis-cli; then
    result bench-kv-redis-kernel check_bench_kv_redis
else
    skip bench-kv-redis-kernel "needs redis-server and redis-cli (Debian: redis-server, redis-tools)"
fi

# Bad command lines are refused with a reason, not a crash.
check_bad_args() {
    "$KV" --kernel -p 0 2>/dev/null && return 1
    "$KV" --kernel -m x 2>/dev/null && return 1
    "$BENCH" pinger nohost -p 1 2>/dev/null && return 1
    "$BENCH" bogus 2>/dev/null && return 1
    "$BENCH" kv 127.0.0.1 2>/dev/null && return 1
    return 0
}
result kv-bad-arguments check_bad_args

# Out of descriptors (ulimit -n 32, 60 clients): usnet-kv says so once and
# refuses the connections it cannot take, instead of spinning on its ready
# listener; once clients leave it answers again.
check_emfile() {
    local port pid rc
    port=$(free_port)
    (ulimit -n 32 && exec "$KV" --kernel -p "$port" -t 1) >"$tmp/emfile.log" 2>&1 &
    pid=$!
    if ! wait_port 127.0.0.1 "$port"; then
        kill $pid 2>/dev/null
        return 1
    fi
    $PY - "$port" "$pid" <<'EOF'
import socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
held = []
for i in range(60):
    try:
        held.append(socket.create_connection(("127.0.0.1", port), timeout=2))
    except OSError:
        pass
def cpu():
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])
time.sleep(0.3)
c0 = cpu()
time.sleep(1.0)
used = cpu() - c0
for s in held:
    s.close()
time.sleep(0.3)
s = socket.create_connection(("127.0.0.1", port), timeout=2)
s.sendall(b"version\r\n")
ok = s.recv(100).startswith(b"VERSION")
print("clock ticks used in 1 s while out of descriptors: %d; answers afterwards: %s" % (used, ok))
sys.exit(0 if used < 30 and ok else 1)
EOF
    rc=$?
    kill $pid 2>/dev/null
    wait $pid 2>/dev/null
    cat "$tmp/emfile.log"
    [ $rc -eq 0 ] && grep -q "out of file descriptors" "$tmp/emfile.log"
}
result kv-emfile-no-spin check_emfile

# ---- usnet mode over TAP, in a private namespace ---------------------------
tap_skip() {
    local n
    for n in compare pymemcache memccapable-memaslap bench-kv bench-pingpong; do skip "kv-tap-$n" "$1"; done
}
if ! need_root; then
    tap_skip "needs root (network namespace and TAP device)"
    exit 0
fi
if ! "$KV" --help | grep -q "usnet mode: available"; then
    tap_skip "usnet-kv was built without the usnet runtime (kernel mode only)"
    exit 0
fi
if [ $have_mc = 0 ]; then
    tap_skip "needs memcached (Debian package memcached) to compare against"
    exit 0
fi
ns=kv-$$-ns
if ! ip netns add "$ns" 2>/dev/null; then
    ns=""
    tap_skip "cannot create a network namespace"
    exit 0
fi
ip -n "$ns" link set lo up
ip -n "$ns" tuntap add dev kvtap0 mode tap
ip -n "$ns" addr add 10.62.0.1/24 dev kvtap0
ip -n "$ns" link set kvtap0 up
in_ns() { ip netns exec "$ns" "$@"; }

start tap-memcached ip netns exec "$ns" memcached -u root -l 10.62.0.1 -p 11211 -U 0 -t 1
start tap-usnet-kv ip netns exec "$ns" timeout 300 "$KV" --backend tap --iface kvtap0 --ip 10.62.0.2/24 -p 11211
if ! wait_port 10.62.0.1 11211 "$ns" || ! wait_port 10.62.0.2 11211 "$ns"; then
    tap_skip "usnet-kv over tap did not answer: $(tail -2 "$tmp/tap-usnet-kv.log" | tr '\n' ' ')"
    exit 0
fi
in_ns timeout 120 $PY $T/compare.py --prefix kv-tap-compare 10.62.0.1 11211 10.62.0.2 11211 ||
    echo "FAIL kv-tap-compare: compare.py exited with an error"
if $PY -c 'import pymemcache' 2>/dev/null; then
    result kv-tap-pymemcache in_ns timeout 60 $PY $T/pymemcache_check.py 10.62.0.2 11211
else
    skip kv-tap-pymemcache "needs python3-pymemcache"
fi
if need_cmd memccapable memcaslap; then
    check_tap_clients() {
        in_ns timeout 60 memccapable -h 10.62.0.2 -p 11211 -a -t 5 >"$tmp/tcap" 2>&1
        grep -q "All tests passed" "$tmp/tcap" || { tail -3 "$tmp/tcap"; return 1; }
        HOME=$tmp in_ns timeout 30 memcaslap -s 10.62.0.2:11211 -T 1 -c 32 -t 1s -v 0.2 >"$tmp/taslap" 2>&1 ||
            { tail -3 "$tmp/taslap"; return 1; }
        grep -q "^verify_failed: 0" "$tmp/taslap" && grep -q "^get_misses: 0" "$tmp/taslap" &&
            grep -Eq "Ops: [1-9]" "$tmp/taslap" || { grep -E "verify|misses|Ops" "$tmp/taslap"; return 1; }
    }
    result kv-tap-memccapable-memaslap check_tap_clients
else
    skip kv-tap-memccapable-memaslap "needs libmemcached-tools"
fi
check_tap_bench_kv() {
    in_ns timeout 60 "$BENCH" kv 10.62.0.2 --kernel -p 11211 -c 4 -d 0.5 -n 20000 >"$tmp/tapkv" || { cat "$tmp/tapkv"; return 1; }
    cat "$tmp/tapkv"
    grep -Eq '^RESULT rate=[1-9][0-9]* .* errors=0$' "$tmp/tapkv"
}
result kv-tap-bench-kv check_tap_bench_kv

# usnet-bench ponger on the same kind of TAP device, kernel pinger.
check_tap_pingpong() {
    ip -n "$ns" tuntap add dev kvtap1 mode tap
    ip -n "$ns" addr add 10.62.1.1/24 dev kvtap1
    ip -n "$ns" link set kvtap1 up
    ip netns exec "$ns" timeout 30 "$BENCH" ponger --backend tap --iface kvtap1 --ip 10.62.1.2/24 -p 7000 &
    local pid=$!
    wait_port 10.62.1.2 7000 "$ns" || { kill $pid; return 1; }
    in_ns timeout 30 "$BENCH" pinger 10.62.1.2 --kernel -p 7000 -c 4 -m 64 -d 0.5 >"$tmp/tapping" &&
        in_ns timeout 30 $PY $T/echo_check.py 10.62.1.2 7000 >>"$tmp/tapping"
    local rc=$?
    kill $pid
    wait $pid 2>/dev/null
    cat "$tmp/tapping"
    [ $rc -eq 0 ] && grep -Eq '^RESULT rate=[1-9][0-9]* .* errors=0$' "$tmp/tapping"
}
result kv-tap-bench-pingpong check_tap_pingpong
exit 0
