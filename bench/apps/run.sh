#!/usr/bin/env bash
# Unmodified programs under `usnet run` against the same programs on the
# kernel (root; a benchmark, not a test).  Over a veth pair between two
# namespaces, the server on CPU 0, the client on CPU 1, one run:
#   memcached -t 1   driven by `usnet-bench kv --kernel` (text protocol,
#                    8-byte keys and values, zipf 0.99, 10% sets, 32 conns)
#   redis-server     driven by redis-benchmark -t get,set -P 1 -c 32
# each on the kernel and under `usnet run` with every backend in
# APPS_BACKENDS (default: afxdp afpacket tap; afxdp and afpacket sit on the
# veth, tap is a TAP the server namespace's kernel routes to), and prints one
# table with requests/s, p50 and p99 latency and the ratios to the kernel.
#
# usage: bench/apps/run.sh [-d SECONDS] [-c CONNS] [-n ITEMS] [-r REQUESTS]
#   -d  seconds of each memcached measurement (3)
#   -c  client connections (32)
#   -n  memcached items (1000000), preloaded before each measurement
#   -r  redis-benchmark requests per test (60000)
#   APPS_BACKENDS="afpacket"   only that backend
#   APPS_CLIENTS="kernel usnet" memcached clients (default kernel): "usnet" adds
#                              rows with the usnet-bench kv client itself on
#                              usnet (for redis too, with kv --redis) (backend APPS_CLIENT_BACKEND, default
#                              afxdp, on the client's veth), a client that
#                              costs less per request than the kernel one, so
#                              that the rows show what each server can take
#   BENCH_TSV=FILE             also append machine-readable rows to FILE:
#                              workload, variant, kind (kernel|usnet-run),
#                              req/s, p50 us, p99 us, note (tab-separated)
set -u
cd "$(dirname "$0")/../.." || exit 1
. bench/lib/netns.sh

BENCH=${BENCH:-build/usnet-bench}
USNET=${USNET:-build/usnet}
secs=3 conns=32 items=1000000 requests=60000
while getopts "d:c:n:r:" o; do
    case $o in
    d) secs=$OPTARG ;;
    c) conns=$OPTARG ;;
    n) items=$OPTARG ;;
    r) requests=$OPTARG ;;
    *) echo "usage: $0 [-d SECONDS] [-c CONNS] [-n ITEMS] [-r REQUESTS]" >&2; exit 2 ;;
    esac
done
backends=${APPS_BACKENDS:-afxdp afpacket tap}
mc_clients=${APPS_CLIENTS:-kernel}
client_backend=${APPS_CLIENT_BACKEND:-afxdp}
[ -x "$BENCH" ] && [ -x "$USNET" ] || netns_die "build first: make ($BENCH, $USNET)"

netns_setup bapp 65
tmp=$netns_tmp
rows=$tmp/rows   # workload \t variant \t kind \t rate \t p50 \t p99 \t note

# row WORKLOAD VARIANT KIND RATE P50 P99 [NOTE]: one result (RATE empty: failed, NOTE says why)
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "${7:-}" >>"$rows"; }

# why LOG: the last line a failed program printed, one line, short.
why() { tail -n 3 "$1" 2>/dev/null | tr '\n\r\t' '   ' | sed 's/  */ /g' | tail -c 160; }

# program_runs WORKLOAD NAME TAG PORT ADDR_OPT MEASURE CMD...: the server CMD
# (given ADDR_OPT and the address to listen on) on the kernel, then under
# `usnet run` with every backend in $backends; MEASURE VARIANT KIND HOST adds
# the rows of each one that answers on PORT, a "not measured" row of WORKLOAD
# stands for each one that does not.  TAG names its logs.
program_runs() {
    local workload=$1 name=$2 tag=$3 port=$4 addr_opt=$5 measure=$6 be
    shift 6
    netns_server "$tmp/$tag-kernel.log" "$@" "$addr_opt" "$SRV_KIP"
    if netns_wait_port "$SRV_KIP" "$port"; then
        "$measure" "$name (kernel)" kernel "$SRV_KIP"
    else
        row "$workload" "$name (kernel)" kernel "" "" "" "did not start: $(why "$tmp/$tag-kernel.log")"
    fi
    netns_stop_server
    for be in $backends; do
        if ! netns_usnet_args "$be"; then
            row "$workload" "$name under usnet run ($be)" usnet-run "" "" "" "no $be device here"
            continue
        fi
        netns_server "$tmp/$tag-$be.log" "$USNET" run "${usnet_args[@]}" -- "$@" "$addr_opt" "$usnet_ip"
        if netns_wait_port "$usnet_ip" "$port"; then
            "$measure" "$name under usnet run ($be)" usnet-run "$usnet_ip"
        else
            row "$workload" "$name under usnet run ($be)" usnet-run "" "" "" \
                "did not start: $(why "$tmp/$tag-$be.log")"
        fi
        netns_stop_server
    done
}

# client_row WORKLOAD VARIANT KIND FILE: the row of a usnet-bench client run
# from its RESULT line (or why there is none).
client_row() {
    local line
    line=$(grep '^RESULT ' "$4" | tail -1)
    if [ -z "$line" ]; then
        row "$1" "$2" "$3" "" "" "" "client: $(why "$4")"
        return
    fi
    row "$1" "$2" "$3" \
        "$(sed -n 's/^RESULT rate=\([0-9.]*\).*/\1/p' <<<"$line")" \
        "$(sed -n 's/.* p50_us=\([0-9.]*\).*/\1/p' <<<"$line")" \
        "$(sed -n 's/.* p99_us=\([0-9.]*\).*/\1/p' <<<"$line")"
}

# ---- memcached -t 1 --------------------------------------------------------
# mc_measure VARIANT KIND HOST: drive the server at HOST with every client in
# $mc_clients, add the rows.
# shellcheck disable=SC2317  # called through program_runs
mc_measure() {
    local out client workload cargs
    for client in $mc_clients; do
        out=$tmp/mc-client.$RANDOM
        if [ "$client" = usnet ]; then
            workload="memcached, usnet client"
            cargs=(--backend "$client_backend" --iface "$CLI_IF" --ip "${CLI_KIP%.*}.12/24")
        else
            workload="memcached -t 1"
            cargs=(--kernel)
        fi
        in_cli timeout $((secs + 60)) "$BENCH" kv "$3" "${cargs[@]}" -p 11211 -c "$conns" -t 1 \
            -d "$secs" -n "$items" >"$out" 2>&1
        client_row "$workload" "$1" "$2" "$out"
    done
}

if command -v memcached >/dev/null; then
    program_runs "memcached -t 1" memcached mc 11211 -l mc_measure \
        memcached -u root -p 11211 -U 0 -t 1 -m 1024
else
    row "memcached -t 1" "memcached (kernel)" kernel "" "" "" "memcached not installed (Debian package memcached)"
fi

# ---- redis-server ----------------------------------------------------------
# redis_measure VARIANT KIND HOST: redis-benchmark GET and SET, one row each.
# shellcheck disable=SC2317  # called through program_runs
redis_measure() {
    local out=$tmp/redis-client.$RANDOM t line
    in_cli timeout $((requests / 1000 + 60)) redis-benchmark -h "$3" -p 6379 -t get,set -P 1 \
        -c "$conns" -n "$requests" --csv >"$out" 2>&1
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    for t in SET GET; do
        line=$(tr -d '"\r' <"$out" | grep "^$t,")
        if [ -z "$line" ]; then
            row "redis $t" "$1" "$2" "" "" "" "redis-benchmark: $(why "$out")"
            continue
        fi
        local rps p50 p99
        read -r rps p50 p99 < <(awk -F, '{ printf "%.0f %.1f %.1f\n", $2, $5 * 1000, $7 * 1000 }' <<<"$line")
        row "redis $t" "$1" "$2" "$rps" "$p50" "$p99"
    done
    # the memcached workload in the Redis protocol, from a client on usnet
    case " $mc_clients " in *" usnet "*)
        out=$tmp/redis-uclient.$RANDOM
        in_cli timeout $((secs + 60)) "$BENCH" kv "$3" --redis --backend "$client_backend" --iface "$CLI_IF" \
            --ip "${CLI_KIP%.*}.12/24" -p 6379 -c "$conns" -t 1 -d "$secs" -n "$items" >"$out" 2>&1
        client_row "redis, usnet client" "$1" "$2" "$out" ;;
    esac
}

if command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null; then
    program_runs "redis SET" redis-server redis 6379 --bind redis_measure \
        redis-server --port 6379 --protected-mode no --save '' --appendonly no --dir "$tmp"
else
    row "redis SET" "redis-server (kernel)" kernel "" "" "" "redis-server/redis-benchmark not installed (Debian redis-server, redis-tools)"
fi

# ---- the table ---------------------------------------------------------------
echo "unmodified programs: kernel vs \`usnet run\`; veth pair, server CPU 0, client CPU 1, $conns connections;"
echo "memcached: usnet-bench kv --kernel, $items items, 8-byte keys/values, zipf 0.99, 10% sets, $secs s;"
case " $mc_clients " in *" usnet "*)
    echo "memcached, usnet client: the same with usnet-bench kv on usnet ($client_backend on the client's veth)" ;;
esac
echo "redis: redis-benchmark -t get,set -P 1 -c $conns -n $requests"
case " $mc_clients " in *" usnet "*)
    echo "redis, usnet client: the memcached workload in the Redis protocol (usnet-bench kv --redis) on usnet" ;;
esac
printf '\n%-24s %-38s %12s %10s %10s %8s %8s\n' workload variant "req/s" "p50 us" "p99 us" "x rate" "x p99"
printf '%-24s %-38s %12s %10s %10s %8s %8s\n' ------------------------ -------------------------------------- \
    ------------ ---------- ---------- -------- --------
awk -F'\t' '
    $3 == "kernel" { base_rate[$1] = $4; base_p99[$1] = $6 }
    {
        if ($4 == "") { printf "%-24s %-38s %s\n", $1, $2, "not measured: " $7; next }
        xr = "-"; xp = "-"
        if (base_rate[$1] > 0) xr = sprintf("%.2f", $4 / base_rate[$1])
        if (base_p99[$1] > 0 && $6 > 0) xp = sprintf("%.2f", $6 / base_p99[$1])
        printf "%-24s %-38s %12s %10s %10s %8s %8s\n", $1, $2, $4, $5, $6, xr, xp
    }' "$rows"
echo
echo "x rate: requests/s relative to the same program on the kernel; x p99: p99 latency relative to it (lower is better)"
[ -n "${BENCH_TSV:-}" ] && cat "$rows" >>"$BENCH_TSV"
exit 0
