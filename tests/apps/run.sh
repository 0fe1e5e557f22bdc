#!/usr/bin/env bash
# Real programs on the usnet stack: each server runs under `usnet run` on a
# TAP device inside a private network namespace; its client is a stock kernel
# client in the same namespace, on the TAP's kernel side.  Every transfer is
# checked for integrity.  Needs root (namespaces, TAP) and the programs
# (scripts/deps.d/vsock.txt); each missing piece is a SKIP with its reason.
#
# usage: tests/apps/run.sh [TEST...]     (no argument: every test)
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh

ROOT=$PWD
USNET=$ROOT/build/usnet
ONLY=" $* "
want() { [ "$ONLY" = "  " ] || [[ "$ONLY" == *" $1 "* ]]; }

if ! need_root; then
    skip apps "needs root for network namespaces and TAP devices"
    exit 0
fi
if [ ! -x "$USNET" ] || [ ! -f "$ROOT/build/libusnet.so" ]; then
    skip apps "build/usnet or build/libusnet.so not built"
    exit 0
fi
if ! LD_PRELOAD= "$USNET" run --help 2>/dev/null | grep -q provider; then
    skip apps "usnet run is not part of this build"
    exit 0
fi

WORK=$(mktemp -d /tmp/usnet-apps-$$-XXXXXX)
chmod 755 "$WORK"   # nginx workers run as another user
NSLIST=()
cleanup() {
    local ns pid
    for ns in "${NSLIST[@]}"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    rm -rf "$WORK"
    "$USNET" stat >/dev/null 2>&1   # drops the statistics files of the servers killed above
}
trap cleanup EXIT

SUBNET=0
# new_ns NAME: a namespace with a TAP whose kernel side is 10.64.N.1/24;
# sets NS, TAP, KIP (kernel side), SIP (the stack's address).
new_ns() {
    SUBNET=$((SUBNET + 1))
    NS=vs-$$-$1
    TAP=vs$$t$SUBNET
    KIP=10.64.$SUBNET.1
    SIP=10.64.$SUBNET.2
    ip netns add "$NS" || return 1
    NSLIST+=("$NS")
    ip netns exec "$NS" ip link set lo up
    ip netns exec "$NS" ip tuntap add "$TAP" mode tap || return 1
    ip netns exec "$NS" ip addr add "$KIP/24" dev "$TAP"
    ip netns exec "$NS" ip link set "$TAP" up
}

# in_ns CMD...: run a kernel program in the namespace.
in_ns() { ip netns exec "$NS" "$@"; }

# under_usnet SECONDS CMD...: start a server under usnet in the background;
# its pid in SRV, its output in $WORK/$NS.log.
SRV=
under_usnet() {
    local t=$1; shift
    ip netns exec "$NS" timeout "$t" "$USNET" run --backend tap --iface "$TAP" --ip "$SIP/24" -- "$@" \
        >"$WORK/$NS.log" 2>&1 &
    SRV=$!
}

# wait_port ADDR PORT: until a TCP connect succeeds (10 s).
wait_port() {
    local i
    for i in $(seq 1 100); do
        in_ns timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

stop_ns() {
    ns_stop "$NS"
    { wait "$SRV"; } 2>/dev/null
    SRV=
}

log_tail() { tail -c 300 "$WORK/$NS.log" 2>/dev/null | tr '\n' ' '; }

# ---- python3 -m http.server under usnet, curl on the kernel ------------------
t_python_http() {
    local py=/usr/bin/python3
    need_cmd curl && [ -x $py ] || { skip python_http "needs /usr/bin/python3 and curl"; return; }
    new_ns py || { fail python_http "namespace setup failed"; return; }
    mkdir -p "$WORK/www"
    head -c 3000000 /dev/urandom >"$WORK/www/blob"
    # USNET_PCAP is --pcap given as its environment variable.
    (cd "$WORK/www" && USNET_PCAP=$WORK/py.pcap under_usnet 60 $py -m http.server 8080 --bind "$SIP")
    if ! wait_port "$SIP" 8080; then fail python_http "server did not listen: $(log_tail)"; stop_ns; return; fi
    local want got
    want=$(sha256sum <"$WORK/www/blob" | cut -d' ' -f1)
    got=$(in_ns timeout 30 curl -sS -m 25 "http://$SIP:8080/blob" | sha256sum | cut -d' ' -f1)
    if [ "$got" = "$want" ]; then pass python_http; else fail python_http "3 MB download corrupted or failed: $(log_tail)"; fi
    # `usnet stat` lists the server's listening socket and the stack's counters.
    local st ok=no i
    for i in $(seq 1 30); do   # the file is rewritten about once a second
        st=$("$USNET" stat 2>&1)
        if printf '%s' "$st" | grep -q "socket fd=.* tcp LISTEN local=$SIP:8080" &&
           printf '%s' "$st" | grep -q "^tcp_rx [1-9]"; then ok=yes; break; fi
        sleep 0.1
    done
    if need_cmd tshark; then
        local frames
        frames=$(timeout 30 tshark -r "$WORK/py.pcap" -Y "tcp.port == 8080" 2>/dev/null | wc -l)
        if [ "$frames" -gt 100 ]; then pass pcap_capture; else fail pcap_capture "only $frames frames of port 8080 in the capture"; fi
    fi
    if [ $ok = yes ]; then
        pass usnet_stat_stack
    else
        fail usnet_stat_stack "$(printf '%s' "$st" | tr '\n' ' ' | tail -c 250)"
    fi
    stop_ns
}

# ---- curl under usnet fetching from a kernel nginx ---------------------------
# nginx logs the address each request came from: usnet's ($SIP), not the
# kernel's own ($KIP), which curl would use on kernel sockets.
t_curl_client() {
    need_cmd curl nginx || { skip curl_client "needs curl and nginx"; return; }
    new_ns cc || { fail curl_client "namespace setup failed"; return; }
    mkdir -p "$WORK/cc/www"
    head -c 5000000 /dev/urandom >"$WORK/cc/www/blob"
    cat >"$WORK/cc/nginx.conf" <<CONF
daemon off; worker_processes 1; pid $WORK/cc/nginx.pid; error_log $WORK/cc/error.log;
events { worker_connections 64; }
http { log_format peer '\$remote_addr'; access_log $WORK/cc/access.log peer;
  client_body_temp_path $WORK/cc; proxy_temp_path $WORK/cc;
  fastcgi_temp_path $WORK/cc; uwsgi_temp_path $WORK/cc; scgi_temp_path $WORK/cc;
  server { listen $KIP:8081; root $WORK/cc/www; } }
CONF
    in_ns timeout 60 nginx -c "$WORK/cc/nginx.conf" >"$WORK/cc/nginx.out" 2>&1 &
    if ! wait_port "$KIP" 8081; then fail curl_client "kernel nginx did not start"; stop_ns; return; fi
    local want got
    want=$(sha256sum <"$WORK/cc/www/blob" | cut -d' ' -f1)
    got=$(in_ns timeout 30 "$USNET" run --backend tap --iface "$TAP" --ip "$SIP/24" -- \
          curl -sS -m 25 "http://$KIP:8081/blob" 2>"$WORK/cc/curl.err" | tee $WORK/cc/got | sha256sum | cut -d' ' -f1)
    local peer; peer=$(tr '\n' ' ' <"$WORK/cc/access.log" 2>/dev/null)
    if [ "$got" = "$want" ] && [ "$peer" = "$SIP " ]; then pass curl_client; else fail curl_client "download failed ($(stat -c %s $WORK/cc/got) bytes), nginx saw requests from '$peer' (usnet is $SIP): $(head -c 200 "$WORK/cc/curl.err") $(head -c 100 $WORK/cc/got)"; fi
    stop_ns
}

# ---- redis-server: redis-benchmark and a 10 MiB value ------------------------
t_redis() {
    need_cmd redis-server redis-benchmark redis-cli || { skip redis "needs redis-server and redis-tools"; return; }
    new_ns rd || { fail redis "namespace setup failed"; return; }
    under_usnet 400 redis-server --port 6379 --bind '* -::*' --protected-mode no --save '' --appendonly no \
        --dir "$WORK"
    if ! wait_port "$SIP" 6379; then fail redis "server did not listen: $(log_tail)"; stop_ns; return; fi
    local out
    out=$(in_ns timeout 300 redis-benchmark -h "$SIP" -t set,get,incr,lpush,lrange -n 100000 -c 50 -q 2>&1 | tr '\r' '\n')
    local missing=""
    for k in SET GET INCR LPUSH LRANGE_100 LRANGE_300 LRANGE_500 LRANGE_600; do
        printf '%s\n' "$out" | grep -q "^$k[: (].* requests per second" || missing="$missing $k"
    done
    if [ -z "$missing" ]; then pass redis_benchmark; else fail redis_benchmark "no result for$missing: $(printf '%s' "$out" | tail -c 200)"; fi
    head -c 7864320 /dev/urandom | base64 -w0 >"$WORK/big"
    in_ns timeout 60 redis-cli -h "$SIP" -x set big <"$WORK/big" >/dev/null 2>&1
    in_ns timeout 60 redis-cli -h "$SIP" --raw get big >"$WORK/big.got" 2>/dev/null
    if cmp -s <(cat "$WORK/big"; echo) "$WORK/big.got"; then pass redis_10mib_value
    else fail redis_10mib_value "value differs ($(stat -c %s "$WORK/big.got") bytes back): $(log_tail)"; fi
    stop_ns
}

# ---- a daemonising fork: redis-server --daemonize yes -----------------------
t_redis_daemon() {
    need_cmd redis-server redis-cli || { skip redis_daemonize "needs redis-server and redis-tools"; return; }
    new_ns rdd || { fail redis_daemonize "namespace setup failed"; return; }
    # The launcher returns once redis has forked into the background; the
    # daemon keeps the listening socket it made before the fork.
    in_ns timeout 20 "$USNET" run --backend tap --iface "$TAP" --ip "$SIP/24" -- redis-server --daemonize yes \
        --port 6390 --bind 0.0.0.0 --protected-mode no --save '' --appendonly no --dir "$WORK" \
        --logfile "$WORK/rdd.log" --pidfile "$WORK/rdd.pid" >"$WORK/$NS.log" 2>&1
    local rc=$? got=""
    if [ $rc -eq 0 ] && wait_port "$SIP" 6390; then
        got=$(in_ns timeout 5 redis-cli -h "$SIP" -p 6390 set k daemonized 2>&1; in_ns timeout 5 redis-cli -h "$SIP" -p 6390 get k 2>&1)
    fi
    if [ "$(printf '%s' "$got" | tr '\n' ' ')" = "OK daemonized" ]; then pass redis_daemonize
    else fail redis_daemonize "launcher status $rc, replies '$got': $(log_tail)"; fi
    stop_ns
}

# nginx_conf DIR ADDR PORT WORKERS: a minimal configuration serving DIR/www.
nginx_conf() {
    mkdir -p "$1/www"
    cat >"$1/nginx.conf" <<CONF
daemon off; worker_processes $4; pid $1/nginx.pid; error_log $1/error.log;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $1; proxy_temp_path $1; sendfile on;
  fastcgi_temp_path $1; uwsgi_temp_path $1; scgi_temp_path $1;
  server { listen $2:$3 reuseport; root $1/www; } }
CONF
}

# ---- nginx (master + 2 workers) under usnet: curl 50 MiB, wrk ---------------
t_nginx() {
    need_cmd nginx curl wrk || { skip nginx "needs nginx, curl and wrk"; return; }
    new_ns ng || { fail nginx "namespace setup failed"; return; }
    nginx_conf "$WORK/ng" "$SIP" 8082 2
    sed -i 's/ reuseport//' "$WORK/ng/nginx.conf"
    head -c 52428800 /dev/urandom >"$WORK/ng/www/big"
    echo "small page" >"$WORK/ng/www/index.html"
    under_usnet 120 nginx -c "$WORK/ng/nginx.conf"
    if ! wait_port "$SIP" 8082; then fail nginx "server did not listen: $(log_tail) $(tail -c 200 "$WORK/ng/error.log")"; stop_ns; return; fi
    local want got
    want=$(sha256sum <"$WORK/ng/www/big" | cut -d' ' -f1)
    got=$(in_ns timeout 60 curl -sS -m 55 "http://$SIP:8082/big" 2>"$WORK/ng/curl.err" | sha256sum | cut -d' ' -f1)
    if [ "$got" = "$want" ]; then pass nginx_curl_50mib
    else fail nginx_curl_50mib "download failed: $(head -c 200 "$WORK/ng/curl.err") $(tail -c 200 "$WORK/ng/error.log")"; fi
    local out
    out=$(in_ns timeout 30 wrk -t 2 -c 64 -d 5s "http://$SIP:8082/index.html" 2>&1)
    if printf '%s' "$out" | grep -q "requests in" && ! printf '%s' "$out" | grep -q "Socket errors\|Non-2xx"; then
        pass nginx_wrk
    else
        fail nginx_wrk "$(printf '%s' "$out" | tr '\n' ' ' | tail -c 300)"
    fi
    stop_ns
}

# ---- iperf3 -s under usnet, kernel iperf3 -c: TCP and UDP, both directions --
t_iperf3() {
    need_cmd iperf3 || { skip iperf3 "needs iperf3"; return; }
    new_ns ip || { fail iperf3 "namespace setup failed"; return; }
    under_usnet 120 iperf3 -s -p 5201
    if ! wait_port "$SIP" 5201; then fail iperf3 "server did not listen: $(log_tail)"; stop_ns; return; fi
    sleep 0.5
    # UDP: iperf3's server connects its UDP socket to the client and binds a
    # second one to the same port (SO_REUSEADDR) for the next client.
    local name args out names="tcp tcp_reverse udp udp_reverse"
    for name in $names; do
        case $name in
            tcp) args="" ;; tcp_reverse) args="-R" ;;
            udp) args="-u -b 200M" ;; udp_reverse) args="-u -b 200M -R" ;;
        esac
        out=$(in_ns timeout 30 iperf3 -c "$SIP" -p 5201 -t 5 $args 2>&1)
        if [ $? -eq 0 ] && printf '%s' "$out" | grep -q "receiver"; then
            pass "iperf3_$name"
        else
            fail "iperf3_$name" "$(printf '%s' "$out" | tr '\n' ' ' | tail -c 250) $(log_tail)"
        fi
        sleep 0.3
    done
    stop_ns
}

# ---- memcached -t 4 under usnet: memcslap and a pymemcache check ------------
t_memcached() {
    need_cmd memcached || { skip memcached "needs memcached"; return; }
    new_ns mc || { fail memcached "namespace setup failed"; return; }
    under_usnet 120 memcached -t 4 -p 11211 -U 0 -l "$SIP" -u root -m 64
    if ! wait_port "$SIP" 11211; then fail memcached "server did not listen: $(log_tail)"; stop_ns; return; fi
    if need_cmd memcslap; then
        local out
        out=$(in_ns timeout 60 memcslap --servers="$SIP:11211" --concurrency=8 --execute-number=2000 2>&1)
        if [ $? -eq 0 ] && ! printf '%s' "$out" | grep -qi "error\|fail"; then pass memcached_memcslap
        else fail memcached_memcslap "$(printf '%s' "$out" | tr '\n' ' ' | tail -c 250)"; fi
    else
        skip memcached_memcslap "needs memcslap (libmemcached-tools)"
    fi
    if /usr/bin/python3 -c 'import pymemcache' 2>/dev/null; then
        local out
        out=$(in_ns timeout 60 /usr/bin/python3 - "$SIP" <<'PY' 2>&1
import hashlib, sys
from pymemcache.client.base import Client
c = Client((sys.argv[1], 11211), connect_timeout=5, timeout=10)
bad = 0
for i in range(2000):
    v = hashlib.sha256(str(i).encode()).hexdigest().encode() * (1 + i % 40)
    c.set("k%d" % i, v)
for i in range(2000):
    v = hashlib.sha256(str(i).encode()).hexdigest().encode() * (1 + i % 40)
    if c.get("k%d" % i) != v:
        bad += 1
big = bytes(range(256)) * 3000
c.set("big", big)
print("ok" if bad == 0 and c.get("big") == big else "bad %d" % bad)
PY
)
        if [ "$out" = ok ]; then pass memcached_pymemcache; else fail memcached_pymemcache "$(printf '%s' "$out" | tail -c 250)"; fi
    else
        skip memcached_pymemcache "needs python3-pymemcache"
    fi
    stop_ns
}

# ---- a Go net/http server under usnet ----------------------------------------
t_go_http() {
    need_cmd go curl || { skip go_http "needs golang-go and curl"; return; }
    local bin=$ROOT/build/tests/apps/gohttp
    if [ ! -x "$bin" ] || [ tests/apps/gohttp/main.go -nt "$bin" ]; then
        mkdir -p "$(dirname "$bin")"
        (cd tests/apps/gohttp && GOCACHE=$ROOT/build/tests/apps/gocache GO111MODULE=off CGO_ENABLED=1 \
            timeout 300 go build -o "$bin" main.go) >"$WORK/go.log" 2>&1 ||
            { fail go_http "go build failed: $(tail -c 200 "$WORK/go.log")"; return; }
    fi
    new_ns go || { fail go_http "namespace setup failed"; return; }
    under_usnet 60 "$bin" "$SIP:8083"
    if ! wait_port "$SIP" 8083; then fail go_http "server did not listen: $(log_tail)"; stop_ns; return; fi
    local want got
    want=$(/usr/bin/python3 -c 'import sys,hashlib; print(hashlib.sha256(bytes((i*7+i//251)&255 for i in range(4<<20))).hexdigest())')
    got=$(in_ns timeout 30 curl -sS -m 25 "http://$SIP:8083/data" 2>"$WORK/go.err" | sha256sum | cut -d' ' -f1)
    if [ "$got" = "$want" ] && [ "$(in_ns timeout 10 curl -sS -m 5 "http://$SIP:8083/hello")" = "hello from go" ]; then
        pass go_http
    else
        fail go_http "download failed: $(head -c 200 "$WORK/go.err") $(log_tail)"
    fi
    # a handler's nil dereference, recovered: the same message as the same
    # program on the kernel's address gives
    in_ns timeout 30 "$bin" "$KIP:8093" >/dev/null 2>&1 &
    local kpid=$! native= ours
    wait_port "$KIP" 8093 && native=$(in_ns timeout 10 curl -sS -m 5 "http://$KIP:8093/nil" 2>&1)
    kill $kpid 2>/dev/null; wait $kpid 2>/dev/null
    ours=$(in_ns timeout 10 curl -sS -m 5 "http://$SIP:8083/nil" 2>&1)
    if [[ "$native" == "recovered: runtime error: invalid memory address or nil pointer dereference" ]] &&
       [ "$ours" = "$native" ]; then
        pass go_http_nil_recovered
    else
        fail go_http_nil_recovered "on the kernel '$native', under usnet '$ours': $(log_tail)"
    fi
    stop_ns
}

# ---- a Java com.sun.net.httpserver server under usnet (default hook) ---------
# OpenJDK's compiled code reads through null pointers and expects the fault
# (implicit null checks): the hook must leave page 0 unmapped.  1,000
# requests from a kernel curl to the stack's own address (only usnet has
# it), on new and on kept-alive connections; the server counts them.
t_java_http() {
    need_cmd java javac curl || { skip java_http "needs default-jdk-headless and curl"; return; }
    local dir=$ROOT/build/tests/apps/java
    if [ ! -f "$dir/HelloServer.class" ] || [ tests/apps/java/HelloServer.java -nt "$dir/HelloServer.class" ]; then
        mkdir -p "$dir"
        timeout 120 javac -d "$dir" tests/apps/java/HelloServer.java >"$WORK/javac.log" 2>&1 ||
            { fail java_http "javac failed: $(tail -c 200 "$WORK/javac.log")"; return; }
    fi
    new_ns java || { fail java_http "namespace setup failed"; return; }
    under_usnet 120 java -Xss1m -cp "$dir" HelloServer 8084
    local i
    for i in $(seq 1 300); do grep -q "listening on 8084" "$WORK/$NS.log" 2>/dev/null && break; sleep 0.1; done
    if ! wait_port "$SIP" 8084; then fail java_http "server did not listen: $(log_tail)"; stop_ns; return; fi
    # 900 with a new connection each (Connection: close), 100 on one
    # kept-alive connection (URL globbing; slow on the kernel too: the JDK
    # writes head and body apart, Nagle meets curl's delayed ACK); every
    # answer names its request
    local want1 want2 got1 got2 count
    want1=$(seq 1 900 | sed 's/^/hello /' | sha256sum)
    want2=$(seq 901 1000 | sed 's/^/hello /' | sha256sum)
    got1=$(in_ns timeout 60 curl -sS -m 50 -H 'Connection: close' "http://$SIP:8084/r/[1-900]" \
        2>"$WORK/java.err" | sha256sum)
    got2=$(in_ns timeout 60 curl -sS -m 50 "http://$SIP:8084/r/[901-1000]" 2>>"$WORK/java.err" | sha256sum)
    count=$(in_ns timeout 10 curl -sS -m 5 "http://$SIP:8084/count" 2>>"$WORK/java.err")
    if [ "$got1" = "$want1" ] && [ "$got2" = "$want2" ] && [ "$count" = "1000 1000" ] &&
       kill -0 "$SRV" 2>/dev/null; then
        pass java_http
    else
        fail java_http "answers differ (new connections: $([ "$got1" = "$want1" ] && echo ok || echo wrong), kept-alive: $([ "$got2" = "$want2" ] && echo ok || echo wrong)), server counted '$count': $(head -c 200 "$WORK/java.err") $(log_tail)"
    fi
    stop_ns
}

# ---- MariaDB under usnet: started as the package's init script starts it ----
# mysqld_safe (a shell script) runs mariadbd --user=mysql, which drops root;
# InnoDB does its I/O through io_uring (liburing keeps data in the red zone
# across io_uring_enter).  A kernel client at the stack's own address makes
# 2,000 inserts and reads them back with a checksum; mariadb-slap -c 8.
t_mariadb() {
    need_cmd mysqld_safe mariadbd mariadb mariadb-install-db mariadb-slap ||
        { skip mariadb "needs mariadb-server and mariadb-client"; return; }
    id mysql >/dev/null 2>&1 || { skip mariadb "needs the mysql user (mariadb-server)"; return; }
    local d=$WORK/mariadb
    mkdir -p "$d/data" "$d/run"
    chown -R mysql:mysql "$d"
    if ! timeout 120 mariadb-install-db --user=mysql --datadir="$d/data" --skip-test-db \
            --auth-root-authentication-method=socket >"$d/install.log" 2>&1; then
        fail mariadb "mariadb-install-db failed: $(tail -c 200 "$d/install.log")"
        return
    fi
    new_ns maria || { fail mariadb "namespace setup failed"; return; }
    under_usnet 180 mysqld_safe --datadir="$d/data" --socket="$d/run/sock" --pid-file="$d/run/pid" \
        --bind-address="$SIP" --port=3306 --skip-syslog --log-error="$d/error.log" \
        --innodb-use-native-aio=1 --innodb-flush-method=O_DIRECT
    if ! wait_port "$SIP" 3306 && ! wait_port "$SIP" 3306; then
        fail mariadb "server did not listen: $(tail -c 300 "$d/error.log" 2>/dev/null) $(log_tail)"
        stop_ns
        return
    fi
    local sql="mariadb -S $d/run/sock -uroot"
    if ! timeout 30 $sql -e "CREATE DATABASE t; CREATE USER 'u'@'%' IDENTIFIED BY 'pw';
            GRANT ALL ON *.* TO 'u'@'%'; CREATE TABLE t.kv (k INT PRIMARY KEY, v VARCHAR(64))" \
            >"$d/setup.log" 2>&1; then
        fail mariadb "setup over the unix socket failed: $(tail -c 200 "$d/setup.log")"
        stop_ns
        return
    fi
    local net="mariadb -h $SIP -P 3306 -uu -ppw --skip-ssl -N -B"
    local i want got where uring
    for i in $(seq 1 2000); do echo "INSERT INTO t.kv VALUES ($i, SHA1('row $i'));"; done >"$d/inserts.sql"
    want=$(for i in $(seq 1 2000); do printf 'row %s' "$i" | sha1sum | cut -d' ' -f1; done | md5sum | cut -d' ' -f1)
    in_ns timeout 120 $net <"$d/inserts.sql" >"$d/insert.log" 2>&1
    got=$(in_ns timeout 30 $net -e "SELECT v FROM t.kv ORDER BY k" 2>>"$d/insert.log" | md5sum | cut -d' ' -f1)
    # the server saw the client come from the kernel side of the TAP
    where=$(in_ns timeout 30 $net -e "SELECT SUBSTRING_INDEX(USER(), '@', -1)" 2>>"$d/insert.log")
    uring=$(grep -c "InnoDB: Using io_uring" "$d/error.log" 2>/dev/null)
    if [ "$got" = "$want" ] && [ "$where" = "$KIP" ]; then
        pass mariadb_inserts
    else
        fail mariadb_inserts "checksum $got, wanted $want; client seen at '$where': $(tail -c 200 "$d/insert.log")"
    fi
    if in_ns timeout 120 mariadb-slap -h "$SIP" -P 3306 -uu -ppw --ssl=0 --concurrency=8 --iterations=2 \
            --number-of-queries=1600 --auto-generate-sql --auto-generate-sql-load-type=mixed \
            >"$d/slap.log" 2>&1 && grep -q "Average number of seconds" "$d/slap.log"; then
        pass mariadb_slap
    else
        fail mariadb_slap "$(tail -c 300 "$d/slap.log" | tr '\n' ' ')"
    fi
    # mariadbd dropped to mysql; InnoDB said it uses io_uring
    local pid user
    pid=$(cat "$d/run/pid" 2>/dev/null)
    user=$(ps -o user= -p "${pid:-0}" 2>/dev/null | tr -d ' ')
    if [ "$user" = mysql ] && [ "${uring:-0}" -gt 0 ]; then
        pass mariadb_user_uring
    else
        fail mariadb_user_uring "mariadbd runs as '$user', \"InnoDB: Using io_uring\" lines in its log: ${uring:-0}"
    fi
    timeout 30 mariadb-admin -S "$d/run/sock" -uroot shutdown >/dev/null 2>&1
    stop_ns
}

# ---- socket options on the wire (python under usnet, a kernel peer capturing) --
# IP_TOS and IP_TTL in the peer's capture; TCP_CORK and MSG_MORE send one
# full segment each, not ten and six small ones (TCP_NODELAY is on);
# TCP_USER_TIMEOUT aborts a connection whose peer vanished with ETIMEDOUT
# after about the time set.
t_options_wire() {
    need_cmd tcpdump tshark || { skip options_wire "needs tcpdump and tshark"; return; }
    local py=/usr/bin/python3 prog=$ROOT/tests/apps/options_wire.py
    new_ns opts || { fail options_wire "namespace setup failed"; return; }
    # the kernel peer: drains port 9100 and closes; holds port 9101 open
    in_ns $py -c '
import socket, threading, time
def drain():
    l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("0.0.0.0", 9100)); l.listen()
    c, _ = l.accept()
    while c.recv(65536): pass
    c.close()
def hold():
    l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("0.0.0.0", 9101)); l.listen()
    c, _ = l.accept(); time.sleep(30)
threading.Thread(target=drain, daemon=True).start()
hold()' >/dev/null 2>&1 &
    local peer=$!
    in_ns timeout 20 tcpdump -i "$TAP" -U -w "$WORK/opts.pcap" "tcp port 9100" >/dev/null 2>&1 &
    local dump=$! i
    for i in $(seq 1 50); do [ -s "$WORK/opts.pcap" ] && break; sleep 0.1; done
    sleep 0.3
    local out segs
    out=$(in_ns timeout 30 "$USNET" run --backend tap --iface "$TAP" --ip "$SIP/24" -- $py "$prog" "$KIP" 9100 cork 2>&1)
    sleep 0.3
    kill $dump 2>/dev/null; wait $dump 2>/dev/null
    # every data segment usnet sent: length, DS field, TTL
    segs=$(tshark -r "$WORK/opts.pcap" -Y "ip.src == $SIP && tcp.len > 0" -T fields -e tcp.len -e ip.dsfield \
        -e ip.ttl 2>/dev/null | tr '\t\n' ' ;')
    if [ "$out" = "sent 1600" ] && [ "$segs" = "1000 0xb8 7;600 0xb8 7;" ]; then
        pass options_wire_cork_tos_ttl
    else
        fail options_wire_cork_tos_ttl "client '$out'; data segments (length DS TTL): '$segs', wanted '1000 0xb8 7;600 0xb8 7;'"
    fi
    # TCP_USER_TIMEOUT: the peer's link goes down once the connection is up
    rm -f "$WORK/opts.flag"
    in_ns timeout 30 "$USNET" run --backend tap --iface "$TAP" --ip "$SIP/24" -- \
        $py "$prog" "$KIP" 9101 timeout "$WORK/opts.flag" >"$WORK/opts.timeout" 2>&1 &
    local cl=$!
    for i in $(seq 1 100); do grep -q ready "$WORK/opts.timeout" 2>/dev/null && break; sleep 0.1; done
    in_ns ip link set "$TAP" down
    touch "$WORK/opts.flag"
    wait $cl
    out=$(grep -v ready "$WORK/opts.timeout")
    local secs=${out#ETIMEDOUT } from
    from=$(sed -n 's/^ready from //p' "$WORK/opts.timeout")
    # the connection was the stack's (from its address), not a kernel socket's
    if [ "$from" = "$SIP" ] && [[ "$out" == ETIMEDOUT\ * ]] &&
       awk -v s="$secs" 'BEGIN { exit !(s >= 0.9 && s <= 4) }'; then
        pass options_wire_user_timeout
    else
        fail options_wire_user_timeout "client at '$from' said '$out' (wanted $SIP, ETIMEDOUT after 1-4 s)"
    fi
    # IP_PKTINFO and SO_TIMESTAMP on datagrams from the wire: the TAP's
    # index, the destination (the stack's address, then the broadcast
    # address) and the local address Linux gives for each
    in_ns ip link set "$TAP" up
    in_ns timeout 30 "$USNET" run --backend tap --iface "$TAP" --ip "$SIP/24" -- \
        $py "$prog" - 9102 pktinfo >"$WORK/opts.pktinfo" 2>&1 &
    cl=$!
    for i in $(seq 1 100); do grep -q ready "$WORK/opts.pktinfo" 2>/dev/null && break; sleep 0.1; done
    local bcast=${SIP%.*}.255 idx
    idx=$(in_ns cat "/sys/class/net/$TAP/ifindex")
    in_ns $py -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.sendto(b"unicast", (sys.argv[1], 9102))   # the kernel holds it until ARP is answered
time.sleep(0.3)
s.sendto(b"broadcast", (sys.argv[2], 9102))' "$SIP" "$bcast"
    wait $cl
    out=$(grep -v ready "$WORK/opts.pktinfo" | tr '\n' ';')
    local want="unicast: time now, ifindex $idx to $SIP local $SIP;broadcast: time now, ifindex $idx to $bcast local $SIP;"
    if [ "$out" = "$want" ]; then
        pass options_wire_pktinfo_timestamp
    else
        fail options_wire_pktinfo_timestamp "got '$out', wanted '$want'"
    fi
    # SO_BINDTODEVICE: to the stack's interface the socket stays on the
    # stack (its address is the stack's); to lo it is the kernel's, and
    # reaches the peer's loopback listener
    out=$(in_ns timeout 30 "$USNET" run --backend tap --iface "$TAP" --ip "$SIP/24" -- \
        $py "$prog" "$KIP" 9101 device "$TAP" 2>&1)
    if [ "$out" = "$TAP $SIP; lo 127.0.0.1" ]; then
        pass options_wire_bindtodevice
    else
        fail options_wire_bindtodevice "got '$out', wanted '$TAP $SIP; lo 127.0.0.1'"
    fi
    kill $peer 2>/dev/null; wait $peer 2>/dev/null
    stop_ns
}

# ---- UDP multicast: a receiver under usnet, kernel senders and members ------
# Over a veth (afxdp, afpacket): a python3 receiver under usnet bound to the
# group 239.1.2.3 (on the stack's interface only the stack serves that: the
# kernel of its namespace has no address there) joins it; a kernel sender in
# the peer namespace sends to the group.  It must receive them, its IGMPv3
# report (and, once it closes, its leave) must come from the stack's address,
# `usnet stat` must count them in udp_mcast_rx, and its datagram to the group
# must reach a kernel member in the peer namespace from the stack's address.
t_multicast() {
    local py=/usr/bin/python3 prog=$ROOT/tests/apps/mcast.py backend
    need_cmd tcpdump ethtool || { skip multicast "needs tcpdump and ethtool"; return; }
    for backend in afxdp afpacket; do
        local uns=mc-$$-u kns=mc-$$-k uif=mcu$$ kif=mck$$ uip=10.65.1.2 kip=10.65.1.1 name=multicast_$backend
        NSLIST+=("$uns" "$kns")
        if ! veth_pair "$uns" "$uif" "$kns" "$kif" "$kip"; then
            fail "$name" "veth setup failed"
            continue
        fi
        rm -f "$WORK/mc.flag" "$WORK/mc.pcap"
        ip netns exec "$kns" timeout 20 tcpdump -i "$kif" -U -n -w "$WORK/mc.pcap" igmp >/dev/null 2>&1 &
        local dump=$! i
        for i in $(seq 1 50); do [ -s "$WORK/mc.pcap" ] && break; sleep 0.1; done
        ip netns exec "$kns" timeout 15 $py "$prog" member "$kip" 9203 >"$WORK/mc.member" 2>&1 &
        local member=$!
        ip netns exec "$uns" timeout 20 "$USNET" run --backend "$backend" --iface "$uif" --ip "$uip/24" -- \
            $py "$prog" recv 9202 5 "$WORK/mc.flag" >"$WORK/mc.recv" 2>&1 &
        local rcv=$!
        for i in $(seq 1 100); do grep -q ready "$WORK/mc.recv" 2>/dev/null && break; sleep 0.1; done
        ip netns exec "$kns" $py "$prog" send "$kip" 9202 5
        for i in $(seq 1 100); do grep -q "^got" "$WORK/mc.recv" 2>/dev/null && break; sleep 0.1; done
        local counted=0
        for i in $(seq 1 30); do   # usnet stat shows what the process published (each second)
            counted=$(ip netns exec "$uns" "$USNET" stat 2>/dev/null | awk -v a="address $uip/" \
                '/^stack /{on = index($0, a) > 0} on && $1 == "udp_mcast_rx" {print $2; exit}')
            [ "${counted:-0}" -ge 5 ] && break
            sleep 0.1
        done
        touch "$WORK/mc.flag"
        wait $rcv $member
        sleep 0.3
        kill $dump 2>/dev/null; wait $dump 2>/dev/null
        local got report leave heard
        got=$(grep "^got" "$WORK/mc.recv")
        heard=$(grep -v ready "$WORK/mc.member")
        # the stack's IGMPv3 join (to_ex) and leave (to_in) for the group
        report=$(tcpdump -r "$WORK/mc.pcap" -n -v 2>/dev/null | grep -A1 "$uip > 224.0.0.22" | grep -c "gaddr 239.1.2.3 to_ex")
        leave=$(tcpdump -r "$WORK/mc.pcap" -n -v 2>/dev/null | grep -A1 "$uip > 224.0.0.22" | grep -c "gaddr 239.1.2.3 to_in")
        if [ "$got" = "got m0 m1 m2 m3 m4 from $kip" ] && [ "${counted:-0}" -ge 5 ] && [ "$report" -ge 1 ] &&
           [ "$leave" -ge 1 ] && [ "$heard" = "from-usnet $uip" ]; then
            pass "$name"
        else
            fail "$name" "receiver '$(tr '\n' ' ' <"$WORK/mc.recv" | tail -c 300)', udp_mcast_rx '$counted', IGMP joins $report leaves $leave from $uip, kernel member heard '$heard'"
        fi
        ns_stop "$uns"
        ns_stop "$kns"
        ip netns del "$uns" 2>/dev/null
        ip netns del "$kns" 2>/dev/null
    done
}

# ---- IPv6 UDP multicast: the same with ff15::1:2 under --ip6 ----------------
# afxdp and afpacket: a python3 receiver under `usnet run --ip6 fd00:65::2/64`
# binds to ff15::1:2 (only the stack serves that on its interface), joins it
# by IPV6_JOIN_GROUP (a second join: EADDRINUSE;
# IPV6_MULTICAST_HOPS reads 1, IPV6_MULTICAST_LOOP 1) and gets the 5
# datagrams a kernel sender in the peer namespace sends to the group from
# fd00:65::1; it then sends one to the group, which a kernel member there
# receives from fd00:65::2 (the stack's address: the datagram went through
# usnet, not the kernel of the receiver's namespace, which has no IPv6
# address there); the capture holds the stack's MLDv2 join (to_ex) and,
# after the close, its leave (to_in) for the group; usnet stat counts the
# datagrams (udp_mcast_rx) and the reports (mld_tx).
t_multicast6() {
    local py=/usr/bin/python3 prog=$ROOT/tests/apps/mcast.py backend
    need_cmd tcpdump ethtool || { skip multicast6 "needs tcpdump and ethtool"; return; }
    for backend in afxdp afpacket; do
        local uns=m6-$$-u kns=m6-$$-k uif=m6u$$ kif=m6k$$ uip=fd00:65::2 kip=fd00:65::1 name=multicast6_$backend
        NSLIST+=("$uns" "$kns")
        # the stack takes the link-local address the kernel would make on $uif
        if ! veth_pair "$uns" "$uif" "$kns" "$kif" 10.66.1.1 || ! ip -n "$uns" link set "$uif" addrgenmode none ||
           ! ip -n "$uns" -6 addr flush dev "$uif" || ! ip -n "$kns" -6 addr add "$kip/64" dev "$kif" nodad; then
            fail "$name" "veth setup failed"
            continue
        fi
        rm -f "$WORK/m6.flag" "$WORK/m6.pcap"
        local umac
        umac=$(ip netns exec "$uns" cat "/sys/class/net/$uif/address")   # the stack sends from it
        ip netns exec "$kns" timeout 25 tcpdump -i "$kif" -U -n -w "$WORK/m6.pcap" ip6 >/dev/null 2>&1 &
        local dump=$! i
        for i in $(seq 1 50); do [ -s "$WORK/m6.pcap" ] && break; sleep 0.1; done
        ip netns exec "$kns" timeout 20 $py "$prog" member6 "$kif" 9213 >"$WORK/m6.member" 2>&1 &
        local member=$!
        ip netns exec "$uns" timeout 25 "$USNET" run --backend "$backend" --iface "$uif" --ip 10.66.1.2/24 \
            --ip6 "$uip/64" -- $py "$prog" recv6 9212 5 "$WORK/m6.flag" >"$WORK/m6.recv" 2>&1 &
        local rcv=$!
        for i in $(seq 1 150); do grep -q ready "$WORK/m6.recv" 2>/dev/null && break; sleep 0.1; done
        ip netns exec "$kns" $py "$prog" send6 "$kif" 9212 5
        for i in $(seq 1 100); do grep -q "^got" "$WORK/m6.recv" 2>/dev/null && break; sleep 0.1; done
        local counted=0 mld=0
        for i in $(seq 1 30); do   # usnet stat shows what the process published (each second)
            read -r counted mld < <(ip netns exec "$uns" "$USNET" stat 2>/dev/null | awk -v a="address 10.66.1.2/" \
                '/^stack /{on = index($0, a) > 0} on && $1 == "udp_mcast_rx" {u = $2} on && $1 == "mld_tx" {m = $2}
                 END {print u + 0, m + 0}')
            [ "${counted:-0}" -ge 5 ] && [ "${mld:-0}" -ge 2 ] && break
            sleep 0.1
        done
        touch "$WORK/m6.flag"
        wait $rcv $member
        sleep 0.3
        kill $dump 2>/dev/null; wait $dump 2>/dev/null
        local got report leave heard ready
        ready=$(grep "^ready" "$WORK/m6.recv")
        got=$(grep "^got" "$WORK/m6.recv")
        heard=$(grep -v ready "$WORK/m6.member")
        # the stack's MLDv2 join (to_ex) and leave (to_in) for the group, from
        # its MAC (the kernel member in the peer namespace reports it too)
        report=$(tcpdump -r "$WORK/m6.pcap" -n -v -e 2>/dev/null | grep "$umac > 33:33:00:00:00:16" |
            grep -c "gaddr ff15::1:2 to_ex")
        leave=$(tcpdump -r "$WORK/m6.pcap" -n -v -e 2>/dev/null | grep "$umac > 33:33:00:00:00:16" |
            grep -c "gaddr ff15::1:2 to_in")
        if [ "$ready" = "ready hops 1 loop 1" ] && [ "$got" = "got m0 m1 m2 m3 m4 from $kip" ] &&
           [ "${counted:-0}" -ge 5 ] && [ "${mld:-0}" -ge 2 ] && [ "$report" -ge 1 ] && [ "$leave" -ge 1 ] &&
           [ "$heard" = "from-usnet $uip" ]; then
            pass "$name"
        else
            fail "$name" "receiver '$(tr '\n' ' ' <"$WORK/m6.recv" | tail -c 300)', udp_mcast_rx '$counted', mld_tx '$mld', MLD joins $report leaves $leave, kernel member heard '$heard'"
        fi
        ns_stop "$uns"
        ns_stop "$kns"
        ip netns del "$uns" 2>/dev/null
        ip netns del "$kns" 2>/dev/null
    done
}

# ---- dual-stack AF_INET6 server, IPV6_V6ONLY, TCP_INFO (python under usnet) --
t_dualstack() {
    local py=/usr/bin/python3
    [ -x $py ] || { skip dualstack "needs /usr/bin/python3"; return; }
    new_ns ds || { fail dualstack "namespace setup failed"; return; }
    cat >"$WORK/ds.py" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", 8090)); s.listen(4)
only = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
only.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
only.bind(("::", 8091)); only.listen(4)
print("v6only", s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY),
      only.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY), flush=True)
while True:   # the first connections may be readiness probes without data
    c, peer = s.accept()
    data = c.recv(100)
    if data:
        break
    c.close()
ti = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
state, retrans = ti[0], ti[2]
rtt, rttvar, ssthresh, cwnd = struct.unpack_from("<IIII", ti, 68)
c.sendall(b"echo:" + data)
c.close()
print("peer", peer[0], "state", state, "rtt>0", rtt > 0, "cwnd>0", cwnd > 0, "retrans", retrans, flush=True)
PY
    under_usnet 30 $py "$WORK/ds.py"
    if ! wait_port "$SIP" 8090; then fail dualstack "server did not listen: $(log_tail)"; stop_ns; return; fi
    local got
    got=$(in_ns timeout 10 $py -c "
import socket
c = socket.create_connection(('$SIP', 8090), timeout=5)
c.sendall(b'ping')
print(c.recv(100).decode())
try:
    socket.create_connection(('$SIP', 8091), timeout=3); print('v6only-reached')
except OSError:
    print('v6only-refused')
" 2>&1 | tr '\n' ' ')
    sleep 0.5
    local log
    log=$(grep -v "^usnet" "$WORK/$NS.log" | tr '\n' ' ')
    if [ "$got" = "echo:ping v6only-refused " ] &&
       [[ "$log" == *"v6only 0 1"*"peer ::ffff:$KIP state 1 rtt>0 True cwnd>0 True retrans 0"* ]]; then
        pass dualstack_v6only_tcpinfo
    else
        fail dualstack_v6only_tcpinfo "client '$got' server '$log'"
    fi
    stop_ns
}

# ---- nginx with SO_REUSEPORT: one listening socket per worker -----------------
t_nginx_reuseport() {
    need_cmd nginx wrk || { skip nginx_reuseport "needs nginx and wrk"; return; }
    new_ns nr || { fail nginx_reuseport "namespace setup failed"; return; }
    nginx_conf "$WORK/nr" "$SIP" 8084 2
    echo "reuseport page" >"$WORK/nr/www/index.html"
    under_usnet 60 nginx -c "$WORK/nr/nginx.conf"
    if ! wait_port "$SIP" 8084; then fail nginx_reuseport "server did not listen: $(log_tail) $(tail -c 200 "$WORK/nr/error.log")"; stop_ns; return; fi
    local out
    out=$(in_ns timeout 30 wrk -t 2 -c 32 -d 3s "http://$SIP:8084/index.html" 2>&1)
    if printf '%s' "$out" | grep -q "requests in" && ! printf '%s' "$out" | grep -q "Socket errors\|Non-2xx"; then
        pass nginx_reuseport
    else
        fail nginx_reuseport "$(printf '%s' "$out" | tr '\n' ' ' | tail -c 300)"
    fi
    stop_ns
}

# ---- a UDP client and a refused TCP connect on the stack (python under usnet) --
t_udp_client() {
    local py=/usr/bin/python3
    [ -x $py ] || { skip udp_client "needs /usr/bin/python3"; return; }
    new_ns uc || { fail udp_client "namespace setup failed"; return; }
    in_ns timeout 30 $py -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('$KIP', 9000))
while True:
    d, a = s.recvfrom(65536); s.sendto(d[::-1], a)
" >/dev/null 2>&1 &
    sleep 0.5
    local out
    out=$(in_ns timeout 30 "$USNET" run --backend tap --iface "$TAP" --ip "$SIP/24" -- $py -c "
import socket, os
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5)
ok = 0
for i in range(200):
    d = os.urandom(1 + (i * 37) % 1400)
    u.sendto(d, ('$KIP', 9000))
    r, a = u.recvfrom(2048)
    ok += r == d[::-1] and a == ('$KIP', 9000)
u.connect(('$KIP', 9000)); u.send(b'abc'); part = u.recv(2)
t = socket.socket(); t.settimeout(5)
try:
    t.connect(('$KIP', 9001)); refused = 'connected'
except ConnectionRefusedError:
    refused = 'refused'
print(ok, part, refused, u.getsockname()[0])
" 2>&1 | grep -v '^usnet')
    if [ "$out" = "200 b'cb' refused $SIP" ]; then pass udp_client_and_refused
    else fail udp_client_and_refused "got '$out'"; fi
    stop_ns
}

# ---- usnet demo: nginx under usnet on a veth pair, curl on the kernel --------
# demo_check NAME BACKEND: the demo over BACKEND (nginx's workers are forked
# children driving the netif their master opened) moves intact files.
demo_check() {
    local name=$1 out rc
    out=$(timeout 120 "$USNET" demo --backend "$2" --requests 3 --mib 2 2>&1); rc=$?
    local sum
    sum=$(printf '%s\n' "$out" | sed -n 's/^ *sha256: *\([0-9a-f]\{64\}\) served$/\1/p')
    if [ $rc -eq 0 ] && [ -n "$sum" ] &&
       printf '%s\n' "$out" | grep -q "^  requests: 3 of 3 completed.*, 3 intact$" &&
       printf '%s\n' "$out" | grep -q "^  bytes: *6291456 moved" &&
       printf '%s\n' "$out" | grep -q "^ *$sum received (every copy)$" &&
       printf '%s\n' "$out" | grep -q "^  stack: *[3-9][0-9]* connections accepted, [1-9][0-9]* segments in" &&
       printf '%s\n' "$out" | grep -q "^  OK: "; then
        pass "$name"
    else
        fail "$name" "status $rc: $(printf '%s' "$out" | tr '\n' ' ' | tail -c 300)"
    fi
}
t_demo() {
    need_cmd nginx curl ethtool || { skip usnet_demo "needs nginx, curl and ethtool"; return; }
    demo_check usnet_demo afpacket
    demo_check usnet_demo_afxdp afxdp
    local out rc
    # Its one-line errors: a bad option, and not root.
    out=$("$USNET" demo --backend nope 2>&1); rc=$?
    local nonroot
    nonroot=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$USNET" demo 2>&1); local nrc=$?
    if [ $rc -eq 2 ] && [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] && [[ "$out" == "usnet demo: bad option --backend nope"* ]] &&
       [ $nrc -eq 1 ] && [[ "$nonroot" == "usnet demo: needs root"* ]]; then
        pass usnet_demo_errors
    else
        fail usnet_demo_errors "bad option: status $rc '$out'; not root: status $nrc '$nonroot'"
    fi
}

# ---- redis-cli on the server's host: through 127.0.0.1 and usnet's address --
# The server listens on the wildcard address on the stack.  redis-cli under
# usnet (attached to the same stack) reaches it through 127.0.0.1 and
# through the stack's address, the stack delivering to itself; a kernel
# redis-cli reaches it through the stack's address.  The server's CLIENT
# INFO shows where each came from.
t_redis_loopback() {
    need_cmd redis-server redis-cli || { skip redis_loopback "needs redis-server and redis-tools"; return; }
    new_ns rl || { fail redis_loopback "namespace setup failed"; return; }
    under_usnet 60 redis-server --port 6390 --protected-mode no --save '' --appendonly no --dir "$WORK"
    if ! wait_port "$SIP" 6390; then fail redis_loopback "server did not listen: $(log_tail)"; stop_ns; return; fi
    local cli=(in_ns timeout 20 "$USNET" run --backend tap --iface "$TAP" --ip "$SIP/24" -- redis-cli)
    local lo self kern list
    lo=$(printf 'set k lo\nclient info\n' | "${cli[@]}" -h 127.0.0.1 -p 6390 2>&1)
    self=$("${cli[@]}" -h "$SIP" -p 6390 client info 2>&1)
    kern=$(in_ns timeout 20 redis-cli -h "$SIP" -p 6390 get k 2>&1)
    if printf '%s' "$lo" | grep -q "addr=127.0.0.1:[0-9]* laddr=127.0.0.1:6390"; then pass redis_cli_127_0_0_1
    else fail redis_cli_127_0_0_1 "client list: $(printf '%s' "$lo" | head -c 300)"; fi
    if printf '%s' "$self" | grep -q "addr=$SIP:[0-9]* laddr=$SIP:6390"; then pass redis_cli_own_address
    else fail redis_cli_own_address "client list: $(printf '%s' "$self" | head -c 300)"; fi
    if [ "$kern" = "lo" ]; then pass redis_cli_kernel_client
    else fail redis_cli_kernel_client "get k: '$kern'"; fi
    stop_ns
}

# ---- varnishd -F under usnet caching a kernel origin ------------------------
# varnishd closes every fd it did not open at start-up (close_range(3, ~0U)),
# usnet's own among them; its listener at the stack's address and its
# backend connections must work after that.
t_varnish() {
    need_cmd varnishd curl python3 || { skip varnish "needs varnish, curl and python3"; return; }
    new_ns vn || { fail varnish "namespace setup failed"; return; }
    mkdir -p "$WORK/origin"
    head -c 500000 /dev/urandom >"$WORK/origin/blob"
    (cd "$WORK/origin" && exec ip netns exec "$NS" timeout 120 python3 -m http.server 8000 --bind "$KIP" \
        >"$WORK/origin.log" 2>&1) &
    local origin=$!
    under_usnet 120 varnishd -F -a "$SIP:8080" -b "$KIP:8000" -n "$WORK/varnish" -s malloc,32m
    if ! wait_port "$SIP" 8080; then fail varnish "varnishd did not listen: $(log_tail)"; stop_ns; kill $origin 2>/dev/null; return; fi
    local want got1 got2 hdr
    want=$(sha256sum <"$WORK/origin/blob" | cut -d' ' -f1)
    got1=$(in_ns timeout 30 curl -sS -m 25 "http://$SIP:8080/blob" | sha256sum | cut -d' ' -f1)
    hdr=$(in_ns timeout 30 curl -sS -m 25 -D "$WORK/vn.hdr" -o "$WORK/vn.body" "http://$SIP:8080/blob" && cat "$WORK/vn.hdr")
    got2=$(sha256sum <"$WORK/vn.body" | cut -d' ' -f1)
    local fetched
    fetched=$(grep -c "^$SIP - .*GET /blob" "$WORK/origin.log")
    # The second answer is a hit: X-Varnish carries two transaction ids.
    if [ "$got1" = "$want" ] && [ "$got2" = "$want" ] && printf '%s' "$hdr" | grep -qi "^X-Varnish: [0-9]* [0-9]*" &&
       [ "$fetched" = 1 ]; then
        pass varnish_cache
    else
        fail varnish_cache "first $([ "$got1" = "$want" ] && echo intact || echo bad), second $([ "$got2" = "$want" ] && echo intact || echo bad), origin fetches from $SIP: $fetched, headers: $(printf '%s' "$hdr" | grep -i varnish | tr '\r\n' '  '): $(log_tail)"
    fi
    stop_ns
    kill $origin 2>/dev/null
    wait $origin 2>/dev/null
}

# ---- sockperf ping-pong with --data-integrity, both ways --------------------
# Its TCP server answers with sendto() on the connected socket, giving back
# the address recvfrom() returned (Linux: length 0, and ignored).
# sockperf_check NAME LOG: the client's run had no error, and every message
# came back intact and in order.
sockperf_check() {
    local name=$1 log=$2 sent recvd
    sent=$(sed -n 's/.*\[Valid Duration\].*SentMessages=\([0-9]*\);.*/\1/p' "$log")
    recvd=$(sed -n 's/.*\[Valid Duration\].*ReceivedMessages=\([0-9]*\).*/\1/p' "$log")
    if ! grep -qi "error" "$log" && [ "${sent:-0}" -gt 1000 ] && [ "$sent" = "$recvd" ] &&
       grep -q "# dropped messages = 0; # duplicated messages = 0; # out-of-order messages = 0" "$log"; then
        pass "$name"
    else
        fail "$name" "sent ${sent:-?} received ${recvd:-?}: $(grep -iE 'error|dropped' "$log" | head -3 | tr '\n' ' ')"
    fi
}
t_sockperf() {
    need_cmd sockperf || { skip sockperf "needs sockperf"; return; }
    new_ns sp || { fail sockperf "namespace setup failed"; return; }
    local proto opt port
    # A sockperf server under usnet at the stack's address (only usnet
    # answers it), a kernel client.
    for proto in tcp udp; do
        opt=; [ $proto = tcp ] && opt=--tcp
        port=$([ $proto = tcp ] && echo 11111 || echo 11112)
        under_usnet 60 sockperf server $opt -i "$SIP" -p $port
        local i
        for i in $(seq 1 50); do grep -q "using recvfrom\|using select\|using epoll" "$WORK/$NS.log" 2>/dev/null && break; sleep 0.1; done
        in_ns timeout 30 sockperf ping-pong $opt -i "$SIP" -p $port -t 3 --data-integrity >"$WORK/sp-$proto.log" 2>&1
        sockperf_check "sockperf_${proto}_server" "$WORK/sp-$proto.log"
        stop_ns
    done
    # Both under usnet, through 127.0.0.1: the server listens on the
    # wildcard address on the stack (the kernel has no listener there), the
    # stack delivers to itself between the two processes.
    under_usnet 60 sockperf server --tcp -p 11115
    local j
    for j in $(seq 1 50); do grep -q "using recvfrom\|using select\|using epoll" "$WORK/$NS.log" 2>/dev/null && break; sleep 0.1; done
    in_ns timeout 30 "$USNET" run --backend tap --iface "$TAP" --ip "$SIP/24" -- \
        sockperf ping-pong --tcp -i 127.0.0.1 -p 11115 -t 3 --data-integrity >"$WORK/sp-lo.log" 2>&1
    sockperf_check sockperf_tcp_loopback "$WORK/sp-lo.log"
    stop_ns
    # A sockperf client under usnet, a kernel server at the TAP's kernel
    # side: the server's peer is the stack's address.
    for proto in tcp udp; do
        opt=; [ $proto = tcp ] && opt=--tcp
        port=$([ $proto = tcp ] && echo 11113 || echo 11114)
        in_ns timeout 60 sockperf server $opt -i "$KIP" -p $port >"$WORK/sps-$proto.log" 2>&1 &
        local ks=$! i
        for i in $(seq 1 50); do grep -q "using recvfrom\|using select\|using epoll" "$WORK/sps-$proto.log" 2>/dev/null && break; sleep 0.1; done
        in_ns timeout 30 "$USNET" run --backend tap --iface "$TAP" --ip "$SIP/24" -- \
            sockperf ping-pong $opt -i "$KIP" -p $port -t 3 --data-integrity >"$WORK/spc-$proto.log" 2>&1 &
        local cl=$! peer=none
        for i in $(seq 1 30); do
            sleep 0.1
            if [ $proto = tcp ]; then
                in_ns ss -tnH state established "( sport = :$port )" | grep -q " $SIP:" && { peer=usnet; break; }
            else
                # the stack at usnet's address sends the datagrams
                "$USNET" stat 2>/dev/null | awk -v a="address $SIP/" '/^stack /{on = index($0, a) > 0}
                    on && $1 == "udp_tx" && $2 > 100 {found = 1} END {exit !found}' && { peer=usnet; break; }
            fi
        done
        wait $cl
        kill $ks 2>/dev/null; wait $ks 2>/dev/null
        if [ $peer = usnet ]; then
            sockperf_check "sockperf_${proto}_client" "$WORK/spc-$proto.log"
        else
            fail "sockperf_${proto}_client" "the kernel server never saw usnet's address $SIP: $(tail -c 200 "$WORK/spc-$proto.log" | tr '\n' ' ')"
        fi
    done
    stop_ns
}

for t in demo python_http curl_client redis redis_daemon nginx nginx_reuseport iperf3 memcached go_http java_http mariadb options_wire multicast multicast6 dualstack udp_client sockperf varnish redis_loopback; do
    want "$t" && "t_$t"
done
[[ "$ONLY" == *" iperf3_udp "* ]] && t_iperf3   # the same test under the name of its UDP half
exit 0
