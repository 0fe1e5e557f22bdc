#!/usr/bin/env bash
# HTTP serving under usnet: nginx (master + 2 workers) under `usnet run` on
# one end of a veth pair, its clients on the kernel at the other end, in a
# namespace of their own.  The clients reach nginx at the stack's address,
# which no kernel holds, so every request they make went through usnet.
#   php_fpm       nginx in front of php-fpm over a unix socket: 500 pages
#   py_upstream   nginx in front of a python server on 127.0.0.1 (a kernel
#                 address): 500 pages
#   idle_cpu      nginx's workers use under 5% of a CPU between requests
#   wrk_close     wrk with a new connection per request, 3 s, no errors
#   download_1mib 1,000 downloads of a 1 MiB file, every one intact
#   go_keepalive  a Go net/http server (cgo and static builds) under usnet:
#                 10 rounds of 1,000 keep-alive requests, none stalling
# Needs root and the programs of scripts/deps.d/http.txt; a missing piece is
# a SKIP with its reason.  USNET_HTTP_BACKEND picks the backend (afxdp).
#
# usage: tests/http/run.sh [TEST...]     (no argument: every test)
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh

ROOT=$PWD
USNET=$ROOT/build/usnet
BACKEND=${USNET_HTTP_BACKEND:-afxdp}
ONLY=" $* "
want() { [ "$ONLY" = "  " ] || [[ "$ONLY" == *" $1 "* ]]; }
PY=/usr/bin/python3

if ! need_root; then
    skip http "needs root for network namespaces"
    exit 0
fi
if [ ! -x "$USNET" ] || [ ! -f "$ROOT/build/libusnet.so" ]; then
    skip http "build/usnet or build/libusnet.so not built"
    exit 0
fi
if ! need_cmd nginx curl ethtool || [ ! -x $PY ]; then
    skip http "needs nginx, curl, ethtool and /usr/bin/python3 (scripts/deps.d/http.txt)"
    exit 0
fi

# usnet's end (no kernel address) and the clients' end of the veth
UNS=ng-$$-u KNS=ng-$$-k UIF=ng$$u KIF=ng$$k
KIP=10.68.0.1 UIP=10.68.0.2
WORK=$(mktemp -d /tmp/usnet-http-$$-XXXXXX)
chmod 755 "$WORK"   # nginx's workers run as nobody
cleanup() {
    ns_stop "$UNS"
    ns_stop "$KNS"
    ip netns del "$UNS" 2>/dev/null
    ip netns del "$KNS" 2>/dev/null
    rm -rf "$WORK"
    "$USNET" stat >/dev/null 2>&1   # drops the statistics files of the servers killed above
}
trap cleanup EXIT
if ! veth_pair "$UNS" "$UIF" "$KNS" "$KIF" "$KIP"; then
    skip http "cannot create the veth pair"
    exit 0
fi

in_u() { ip netns exec "$UNS" "$@"; }
in_k() { ip netns exec "$KNS" "$@"; }

# wait_port ADDR PORT: until a TCP connect from the clients' side succeeds (10 s).
wait_port() {
    in_k timeout 10 bash -c "until (exec 3<>/dev/tcp/$1/$2) 2>/dev/null; do sleep 0.1; done"
}

# under_usnet LOG SECONDS CMD...: a program under usnet in usnet's namespace,
# in the background; its pid in SRV.
SRV=
under_usnet() {
    local log=$1 t=$2
    shift 2
    in_u timeout "$t" "$USNET" run --backend "$BACKEND" --iface "$UIF" --ip "$UIP/24" -- "$@" >"$log" 2>&1 &
    SRV=$!
}

# stop_u: every process in usnet's namespace, then the XDP program a killed
# server may have left on the veth.
stop_u() {
    ns_stop "$UNS"
    { wait "$SRV"; } 2>/dev/null
    SRV=
    ip -n "$UNS" link set dev "$UIF" xdp off 2>/dev/null
    ip -n "$UNS" link set dev "$UIF" xdpgeneric off 2>/dev/null
    sleep 0.3
}

oneline() { tr '\n\r' '  ' | tail -c "${1:-250}"; }

# ---- nginx (master + 2 workers) in front of php-fpm and python ----------------
NG=$WORK/ng
mkdir -p "$NG/www"
echo "nginx under usnet" >"$NG/www/index.html"
head -c 1048576 /dev/urandom >"$NG/www/blob"
cat >"$NG/www/page.php" <<'PHP'
<?php
$n = isset($_GET['n']) ? (int)$_GET['n'] : -1;
echo "php page ", $n, " ", hash('sha256', "page" . $n), "\n";
PHP
cat >"$NG/upstream.py" <<'PY'
import hashlib, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Page(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = ("py page %s %s\n" % (self.path, hashlib.sha256(self.path.encode()).hexdigest())).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Page).serve_forever()
PY
# pages.py KIND HOST PORT COUNT: COUNT pages over one keep-alive connection,
# each checked against what its backend computes; prints "ok COUNT" or the
# first wrong answer.
cat >"$NG/pages.py" <<'PY'
import hashlib, http.client, sys
kind, host, port, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
conn = http.client.HTTPConnection(host, port, timeout=10)
for i in range(count):
    if kind == "php":
        path = "/page.php?n=%d" % i
        want = "php page %d %s\n" % (i, hashlib.sha256(b"page%d" % i).hexdigest())
    else:
        path = "/py/item%d" % i
        want = "py page %s %s\n" % (path, hashlib.sha256(path.encode()).hexdigest())
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read().decode(errors="replace")
    except OSError as e:
        print("request %d: %s" % (i, e))
        sys.exit(1)
    if r.status != 200 or body != want:
        print("request %d: status %d, body %r" % (i, r.status, body[:120]))
        sys.exit(1)
print("ok", count)
PY

PHP_FPM=$(command -v php-fpm8.2 php-fpm 2>/dev/null | head -1)
PHP_FPM=${PHP_FPM:-$(ls /usr/sbin/php-fpm* 2>/dev/null | head -1)}
cat >"$NG/php-fpm.conf" <<CONF
[global]
pid = $NG/php-fpm.pid
error_log = $NG/php-fpm.log
daemonize = no
[www]
user = root
listen = $NG/php.sock
listen.mode = 0666
pm = static
pm.max_children = 2
CONF
PYPORT=9081
cat >"$NG/nginx.conf" <<CONF
daemon off; master_process on; worker_processes 2; pid $NG/nginx.pid; error_log $NG/error.log;
events { worker_connections 1024; }
http {
  access_log off; sendfile on; tcp_nopush on;
  client_body_temp_path $NG; proxy_temp_path $NG; fastcgi_temp_path $NG;
  uwsgi_temp_path $NG; scgi_temp_path $NG;
  server {
    listen $UIP:8090; root $NG/www;
    location ~ \.php\$ {
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
      fastcgi_pass unix:$NG/php.sock;
    }
    location /py/ { proxy_pass http://127.0.0.1:$PYPORT; }
  }
}
CONF

# worker_pids: nginx's worker processes in usnet's namespace.
worker_pids() {
    local p
    for p in $(ip netns pids "$UNS" 2>/dev/null); do
        grep -q '^nginx: worker process' "/proc/$p/cmdline" 2>/dev/null && echo "$p"
    done
}
# cpu_ticks PID...: user + system clock ticks those processes have used.
cpu_ticks() {
    local p sum=0 t
    for p in "$@"; do
        # fields after the command name (which may hold spaces): utime is the 12th, stime the 13th
        t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }')
        sum=$((sum + ${t:-0}))
    done
    echo $sum
}

t_nginx_upstreams() {
    local php_ok=no
    if [ -n "$PHP_FPM" ]; then
        in_u "$PHP_FPM" -F -R -y "$NG/php-fpm.conf" >"$NG/php-fpm.out" 2>&1 &
        php_ok=yes
    fi
    in_u $PY "$NG/upstream.py" $PYPORT >"$NG/upstream.out" 2>&1 &
    under_usnet "$NG/usnet.log" 300 nginx -c "$NG/nginx.conf"
    if ! wait_port "$UIP" 8090; then
        fail nginx_upstreams "nginx did not listen: $(oneline <"$NG/usnet.log") $(oneline <"$NG/error.log")"
        stop_u
        return
    fi
    local i workers
    for i in $(seq 1 50); do
        workers=$(worker_pids | wc -l)
        [ "$workers" -ge 2 ] && break
        sleep 0.1
    done
    if [ "$workers" -eq 2 ]; then pass nginx_master_2_workers
    else fail nginx_master_2_workers "$workers worker processes, not 2"; fi

    local out
    if [ $php_ok = yes ]; then
        for i in $(seq 1 50); do [ -S "$NG/php.sock" ] && break; sleep 0.1; done
        out=$(in_k timeout 120 $PY "$NG/pages.py" php "$UIP" 8090 500 2>&1)
        if [ "$out" = "ok 500" ]; then pass nginx_php_fpm_500
        else fail nginx_php_fpm_500 "$(printf '%s' "$out" | oneline) $(oneline <"$NG/error.log")"; fi
    else
        skip nginx_php_fpm_500 "needs php-fpm"
    fi
    out=$(in_k timeout 120 $PY "$NG/pages.py" py "$UIP" 8090 500 2>&1)
    if [ "$out" = "ok 500" ]; then pass nginx_py_upstream_500
    else fail nginx_py_upstream_500 "$(printf '%s' "$out" | oneline) $(oneline <"$NG/error.log")"; fi

    # Between requests the workers sleep: under 5% of a CPU over 2 s.
    local pids t0 t1 hz pct
    pids=$(worker_pids)
    hz=$(getconf CLK_TCK)
    sleep 0.5
    # shellcheck disable=SC2086
    t0=$(cpu_ticks $pids)
    sleep 2
    # shellcheck disable=SC2086
    t1=$(cpu_ticks $pids)
    pct=$(( (t1 - t0) * 100 * 100 / (hz * 200) ))   # percent of one CPU over 2 s, per worker set
    if [ -n "$pids" ] && [ $pct -lt 5 ]; then pass "nginx_workers_idle ($pct% of a CPU)"
    else fail nginx_workers_idle "workers [$(echo $pids)] used $pct% of a CPU over 2 s idle"; fi

    # A new connection per request for 3 s: every one answered.
    if need_cmd wrk; then
        out=$(in_k timeout 30 wrk -t1 -c32 -d3s -H 'Connection: close' "http://$UIP:8090/index.html" 2>&1)
        if printf '%s' "$out" | grep -q " requests in " && ! printf '%s' "$out" | grep -q "Socket errors\|Non-2xx"; then
            pass nginx_wrk_close
        else
            fail nginx_wrk_close "$(printf '%s' "$out" | oneline 300)"
        fi
    else
        skip nginx_wrk_close "needs wrk"
    fi

    # 1,000 downloads of 1 MiB, 16 at a time, in batches of 100.
    local want bad=0 got batch n urls
    want=$(sha256sum <"$NG/www/blob" | cut -d' ' -f1)
    mkdir -p "$NG/dl"
    for batch in $(seq 1 10); do
        urls=()
        for n in $(seq 1 100); do urls+=(-o "$NG/dl/$n" "http://$UIP:8090/blob"); done
        in_k timeout 60 curl -sS --no-progress-meter --parallel --parallel-max 16 -m 30 "${urls[@]}" 2>>"$NG/dl.err"
        for n in $(seq 1 100); do
            got=$(sha256sum <"$NG/dl/$n" 2>/dev/null | cut -d' ' -f1)
            [ "$got" = "$want" ] || bad=$((bad + 1))
        done
        rm -f "$NG"/dl/*
    done
    if [ $bad -eq 0 ]; then pass nginx_download_1000x1mib
    else fail nginx_download_1000x1mib "$bad of 1000 downloads missing or corrupted: $(oneline <"$NG/dl.err")"; fi
    stop_u
}

# ---- a Go net/http server (cgo and static builds) under usnet ----------------
# go_server CGO NAME: build tests/apps/gohttp with CGO_ENABLED=CGO (0: a static
# binary, started through usnet-exec) and serve 10 rounds of 1,000 keep-alive
# requests from it; test NAME.
go_server() {
    local cgo=$1 name=$2
    local bin=$ROOT/build/tests/http/gohttp-cgo$cgo
    if [ ! -x "$bin" ] || [ tests/apps/gohttp/main.go -nt "$bin" ]; then
        mkdir -p "$(dirname "$bin")"
        (cd tests/apps/gohttp && GOCACHE=$ROOT/build/tests/http/gocache GO111MODULE=off CGO_ENABLED=$cgo \
            timeout 300 go build -o "$bin" main.go) >"$WORK/go.log" 2>&1 ||
            { fail "$name" "go build failed: $(oneline <"$WORK/go.log")"; return; }
    fi
    under_usnet "$WORK/go-usnet.log" 200 "$bin" "$UIP:8083"
    if ! wait_port "$UIP" 8083; then fail "$name" "server did not listen: $(oneline <"$WORK/go-usnet.log")"; stop_u; return; fi
    # Each round: one curl, 1,000 requests over one connection; a stall runs
    # into the round's time limit.
    local round n bad=""
    for round in $(seq 1 10); do
        n=$(in_k timeout 30 curl -sS -m 25 "http://$UIP:8083/hello?r=$round&n=[1-1000]" 2>>"$WORK/go.err" |
            grep -c '^hello from go$')
        [ "$n" = 1000 ] || bad="$bad round $round: $n of 1000;"
    done
    if [ -z "$bad" ]; then pass "$name"
    else fail "$name" "$bad $(oneline <"$WORK/go.err") $(oneline <"$WORK/go-usnet.log")"; fi
    stop_u
}

t_go_keepalive() {
    need_cmd go || { skip go_keepalive "needs golang-go"; return; }
    go_server 1 go_keepalive_10x1000
    go_server 0 go_static_keepalive_10x1000
}

want nginx && t_nginx_upstreams
want go && t_go_keepalive
exit 0
