#!/usr/bin/env bash
# HTTP serving: nginx on the kernel against nginx under `usnet run`, and the
# native usnet-httpd on usnet and on kernel sockets (root; a benchmark, not a
# test).  Over a veth pair between two namespaces, the server on CPU 0, the
# clients on CPU 1, one run:
#   nginx      1 worker, sendfile on, access_log off, keep-alive
#   1 KiB file wrk -t1 at each connection count, keep-alive and with
#              -H 'Connection: close' (a new connection per request):
#              requests/s, p50 and p99 from wrk --latency
#   large file one curl download: Gbit/s
# for nginx on the kernel, under `usnet run` with every backend in
# HTTP_BACKENDS (default: afxdp afpacket, both on the veth), and
# build/usnet-httpd on usnet (the first backend) and with --kernel, when it
# is built.  Prints one table per workload with the ratios to nginx on the
# kernel measured in the same run: each point measures every set-up in turn
# (servers restarted), so that a table's rows are seconds apart.
#
# usage: bench/http/run.sh [-d SECONDS] [-c "CONNS..."] [-m MIB] [-r ROUNDS]
#   -d  seconds of each wrk measurement (3)
#   -c  wrk connection counts ("1 8 32 128")
#   -m  size of the large file in MiB (256)
#   -r  rounds (3): each point measures every set-up in turn this many
#       times, and each row shows its median round (value, p50 and p99 of
#       that round): on a shared machine one round's rows can differ 2x
#   HTTP_BACKENDS="afxdp"   only that backend
#   BENCH_TSV=FILE          also append machine-readable rows to FILE:
#                           workload, variant, kind (kernel|usnet-run|usnet|
#                           kernel-sockets), value, p50 us, p99 us, note,
#                           unit (tab-separated, as bench/apps/run.sh)
set -u
cd "$(dirname "$0")/../.." || exit 1
. bench/lib/netns.sh

USNET=${USNET:-build/usnet}
HTTPD=${HTTPD:-build/usnet-httpd}
secs=3 conn_list="1 8 32 128" big_mib=256 rounds=3
while getopts "d:c:m:r:" o; do
    case $o in
    d) secs=$OPTARG ;;
    c) conn_list=$OPTARG ;;
    m) big_mib=$OPTARG ;;
    r) rounds=$OPTARG ;;
    *) echo "usage: $0 [-d SECONDS] [-c \"CONNS...\"] [-m MIB] [-r ROUNDS]" >&2; exit 2 ;;
    esac
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "$0: -r $rounds: not a number of rounds (1 or more)" >&2; exit 2; }
backends=${HTTP_BACKENDS:-afxdp afpacket}
PORT=8080
[ -x "$USNET" ] || netns_die "build first: make ($USNET)"
command -v nginx >/dev/null || netns_die "nginx not installed (Debian package nginx)"
command -v wrk >/dev/null || netns_die "wrk not installed (Debian package wrk)"
command -v curl >/dev/null || netns_die "curl not installed (Debian package curl)"

netns_setup bhttp 67
tmp=$netns_tmp
chmod 755 "$tmp"   # nginx's worker may run as another user
rows=$tmp/rows     # workload \t variant \t kind \t value \t p50 \t p99 \t note \t unit

# row WORKLOAD VARIANT KIND VALUE P50 P99 [NOTE [UNIT]]: one result (VALUE
# empty: failed, NOTE says why)
row() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "${7:-}" "${8:-}" >>"$rows"
}

# why LOG: the last lines a failed program printed, one line, short.
why() { tail -n 3 "$1" 2>/dev/null | tr '\n\r\t' '   ' | sed 's/  */ /g' | tail -c 160; }

# ---- the content and nginx's configuration ------------------------------------
www=$tmp/www
mkdir -p "$www"
head -c 1024 /dev/urandom >"$www/1k"
head -c $((big_mib << 20)) /dev/urandom >"$www/big"
big_bytes=$((big_mib << 20))

# nginx_conf ADDR: one worker serving $www on ADDR:$PORT.
nginx_conf() {
    cat >"$tmp/nginx.conf" <<CONF
daemon off; master_process on; worker_processes 1; pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off; sendfile on; tcp_nopush on; keepalive_requests 1000000;
  client_body_temp_path $tmp; proxy_temp_path $tmp; fastcgi_temp_path $tmp;
  uwsgi_temp_path $tmp; scgi_temp_path $tmp;
  server { listen $1:$PORT; root $www; }
}
CONF
}

# ---- measurements -------------------------------------------------------------
# wrk_section CONNS MODE: the workload name of a wrk measurement.
wrk_section() {
    if [ "$2" = close ]; then
        echo "HTTP 1 KiB, new connection per request, $1 conn$([ "$1" = 1 ] || echo s)"
    else
        echo "HTTP 1 KiB, keep-alive, $1 conn$([ "$1" = 1 ] || echo s)"
    fi
}
big_section="HTTP ${big_mib} MiB file, one curl"

# to_us VALUE: a wrk latency (520.00us, 1.20ms, 1.01s) in microseconds.
to_us() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "ms") n *= 1000; else if (u == "s") n *= 1000000; else if (u == "m") n *= 60000000
        printf "%.0f", n
    }'
}

# measure_point POINT VARIANT KIND HOST: one measurement against the server
# at HOST:$PORT, one row: POINT is "keepalive C" or "close C" (wrk with C
# connections) or "big" (the large download).
measure_point() {
    local point=$1 variant=$2 kind=$3 host=$4 out
    out=$tmp/client.$RANDOM
    if [ "$point" = big ]; then
        in_cli timeout 120 curl -sS -o /dev/null -w '%{size_download} %{speed_download}\n' \
            "http://$host:$PORT/big" >"$out" 2>&1
        local size speed
        read -r size speed <"$out"
        if [ "$size" = "$big_bytes" ]; then
            row "$big_section" "$variant" "$kind" "$(awk -v s="$speed" 'BEGIN { printf "%.2f", s * 8 / 1e9 }')" \
                "" "" "" "Gbit/s"
        else
            row "$big_section" "$variant" "$kind" "" "" "" "curl: ${size:-no} of $big_bytes bytes: $(why "$out")"
        fi
        return
    fi
    local mode=${point% *} c=${point#* } rate p50 p99 errs hdr=()
    [ "$mode" = close ] && hdr=(-H 'Connection: close')
    in_cli timeout $((secs + 30)) wrk -t1 -c "$c" -d "${secs}s" --latency "${hdr[@]}" \
        "http://$host:$PORT/1k" >"$out" 2>&1
    rate=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$out")
    if [ -z "$rate" ] || ! grep -q ' requests in ' "$out"; then
        row "$(point_section "$point")" "$variant" "$kind" "" "" "" "wrk: $(why "$out")"
        return
    fi
    p50=$(to_us "$(awk '$1 == "50%" { print $2 }' "$out")")
    p99=$(to_us "$(awk '$1 == "99%" { print $2 }' "$out")")
    # errors and non-2xx answers are noted, not hidden
    errs=$(grep -E 'Socket errors|Non-2xx' "$out" | tr '\n' ' ' | sed 's/  */ /g')
    row "$(point_section "$point")" "$variant" "$kind" "$(printf '%.0f' "$rate")" "$p50" "$p99" "$errs"
}

# point_section POINT: the workload (table) a point belongs to.
point_section() {
    if [ "$1" = big ]; then echo "$big_section"; else wrk_section "${1#* }" "${1% *}"; fi
}

# The set-ups, nginx on the kernel first (the baseline of every table):
# variant | kind | host | backend ("" for kernel sockets) | program
setups=("nginx (kernel)|kernel|$SRV_KIP||nginx")
for be in $backends; do
    netns_usnet_args "$be" || { setups+=("nginx under usnet run ($be)|usnet-run|-|$be|nginx"); continue; }
    setups+=("nginx under usnet run ($be)|usnet-run|$usnet_ip|$be|nginx")
done
if [ -x "$HTTPD" ]; then
    be=${backends%% *}
    netns_usnet_args "$be" && setups+=("usnet-httpd on usnet ($be)|usnet|$usnet_ip|$be|httpd")
    setups+=("usnet-httpd, kernel sockets|kernel-sockets|$SRV_KIP||httpd")
else
    echo "usnet-httpd: $HTTPD is not built, no rows for it"
fi

# setup_start SETUP: start its server; 0 when it answers on its port, else
# 1 with $setup_why saying why.
setup_start() {
    local variant kind host be prog log
    IFS='|' read -r variant kind host be prog <<<"$1"
    setup_why=""
    if [ "$host" = - ]; then
        setup_why="no $be device here"
        return 1
    fi
    log=$tmp/server.$RANDOM
    if [ -n "$be" ]; then netns_usnet_args "$be"; fi
    if [ "$prog" = nginx ]; then
        nginx_conf "$host"
        : >"$tmp/nginx-error.log"
        if [ -n "$be" ]; then
            netns_server "$log" "$USNET" run "${usnet_args[@]}" -- nginx -c "$tmp/nginx.conf"
        else
            netns_server "$log" nginx -c "$tmp/nginx.conf"
        fi
    elif [ -n "$be" ]; then
        netns_server "$log" "$HTTPD" "${usnet_args[@]}" -p "$PORT" -t 1 --root "$www"
    else
        netns_server "$log" "$HTTPD" --kernel -p "$PORT" -t 1 --root "$www"
    fi
    netns_wait_port "$host" "$PORT" && return 0
    setup_why="did not start: $(why "$log") $(why "$tmp/nginx-error.log")"
    netns_stop_server
    return 1
}

# Every point measures each set-up in turn, restarting the servers, and
# does so $rounds times: on a machine whose load changes, the rows of one
# table are measured within seconds of each other rather than minutes apart.
points=()
for c in $conn_list; do points+=("keepalive $c" "close $c"); done
points+=(big)
for point in "${points[@]}"; do
    for _ in $(seq 1 "$rounds"); do
        for setup in "${setups[@]}"; do
            IFS='|' read -r variant kind host _ _ <<<"$setup"
            if setup_start "$setup"; then
                measure_point "$point" "$variant" "$kind" "$host"
                netns_stop_server
            else
                row "$(point_section "$point")" "$variant" "$kind" "" "" "" "$setup_why"
            fi
        done
    done
done

# Each set-up's median round of each point (the lower middle one of an even
# count), in the order first measured; a set-up that never measured keeps
# its first failure.
all_rows=$tmp/rows.all
mv "$rows" "$all_rows"
awk -F'\t' '
    { k = $1 SUBSEP $2 }
    !(k in seen) { seen[k] = 1; order[++nk] = k }
    $4 == "" { if (!(k in failed)) { failed[k] = $0; why[k] = $7 } nfail[k]++; next }
    { n = ++cnt[k]; val[k, n] = $4 + 0; line[k, n] = $0 }
    END {
        OFS = "\t"
        for (i = 1; i <= nk; i++) {
            k = order[i]
            if (!cnt[k]) { print failed[k]; continue }
            n = cnt[k]
            for (a = 2; a <= n; a++)   # insertion sort of the rounds by value
                for (b = a; b > 1 && val[k, b - 1] > val[k, b]; b--) {
                    t = val[k, b]; val[k, b] = val[k, b - 1]; val[k, b - 1] = t
                    t = line[k, b]; line[k, b] = line[k, b - 1]; line[k, b - 1] = t
                }
            m = line[k, int((n + 1) / 2)]
            if (nfail[k]) {   # a failed round is said, not hidden
                split(m, f, "\t")
                f[7] = (f[7] == "" ? "" : f[7] " ") "(" nfail[k] " of " nfail[k] + n " rounds failed: " why[k] ")"
                m = f[1]; for (j = 2; j <= 8; j++) m = m "\t" f[j]
            }
            print m
        }
    }' "$all_rows" >"$rows"

# ---- the table ------------------------------------------------------------------
echo "HTTP serving: nginx (1 worker, sendfile on, access_log off) on the kernel vs under \`usnet run\`,"
echo "and usnet-httpd; veth pair, server CPU 0, client CPU 1; wrk -t1 --latency ${secs} s per point on a"
echo "1 KiB file (keep-alive, and -H 'Connection: close'); one curl of a ${big_mib} MiB file; each row the"
echo "median of $rounds round(s), the set-ups measured in turn in each"
printf '\n%-44s %-34s %12s %10s %10s %8s %8s\n' workload variant "value" "p50 us" "p99 us" "x value" "x p99"
printf '%-44s %-34s %12s %10s %10s %8s %8s\n' -------------------------------------------- \
    ---------------------------------- ------------ ---------- ---------- -------- --------
awk -F'\t' '
    !($1 in seen) { seen[$1] = 1; order[++ns] = $1 }
    { lines[$1, ++count[$1]] = $0 }
    END {
        for (s = 1; s <= ns; s++) {
            sec = order[s]; base = ""; basep = ""
            for (r = 1; r <= count[sec]; r++) {
                split(lines[sec, r], f, "\t")
                if (f[3] == "kernel") { base = f[4]; basep = f[6] }
                if (f[4] == "") { printf "%-44s %-34s not measured: %s\n", sec, f[2], f[7]; continue }
                xr = "-"; xp = "-"
                if (base > 0) xr = sprintf("%.2f", f[4] / base)
                if (basep > 0 && f[6] > 0) xp = sprintf("%.2f", f[6] / basep)
                v = f[4] (f[8] == "" ? "" : " " f[8])
                printf "%-44s %-34s %12s %10s %10s %8s %8s%s\n", sec, f[2], v, f[5], f[6], xr, xp, \
                    (f[7] == "" ? "" : "  " f[7])
            }
        }
    }' "$rows"
echo
echo "x value: requests/s (Gbit/s for the download) relative to nginx on the kernel; x p99: p99 latency"
echo "relative to it (lower is better)"
[ -n "${BENCH_TSV:-}" ] && cat "$rows" >>"$BENCH_TSV"
exit 0
