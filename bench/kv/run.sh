#!/usr/bin/env bash
# memcached workload benchmark (root): text protocol, 8-byte keys and values,
# zipfian keys (theta 0.99) over 1,000,000 items, 10% sets / 90% gets, one
# request outstanding on each of 32 connections, driven by
# `usnet-bench kv --kernel` over a veth pair between two namespaces; every
# server runs one thread on CPU 0, the client on CPU 1.  Runs
#   1. memcached -t 1 on the kernel          (the baseline)
#   2. usnet-kv -t 1 --kernel                (same server code, kernel sockets)
#   3. usnet-kv -t 1 on usnet (afxdp, else afpacket)
#   4. the same with the client on usnet too (usnet-bench kv without --kernel)
#   5. memcached -t 1 on the kernel again, driven by that usnet client
# and prints one table with ratios to memcached measured in the same run: row
# 5 is the baseline of the client-on-usnet row below it, so that it compares
# two servers driven by the same client (rows 3 and 4 differ in the client,
# not only in the server).
#
# usage: bench/kv/run.sh [-d SECONDS] [-c CONNS] [-n ITEMS]
#   USNET_BACKEND=afpacket, USNET_BUSY_POLL=US, BENCH_TSV=FILE: as for
#   bench/pingpong/run.sh
set -u
cd "$(dirname "$0")/../.."
. bench/lib/measure.sh

secs=3 conns=32 items=1000000
while getopts "d:c:n:" o; do
    case $o in
    d) secs=$OPTARG ;;
    c) conns=$OPTARG ;;
    n) items=$OPTARG ;;
    *) echo "usage: $0 [-d SECONDS] [-c CONNS] [-n ITEMS]" >&2; exit 2 ;;
    esac
done
command -v memcached >/dev/null || bench_die "needs memcached (Debian package memcached)"

bench_setup
client_args=(-p 11211 -c "$conns" -t 1 -d "$secs" -n "$items")
client_timeout=$((secs + 120))

# 1. memcached on the kernel
bench_server memcached memcached -u root -l "$SRV_KIP" -p 11211 -U 0 -t 1 -m 1024
netns_wait_port "$SRV_KIP" 11211 || bench_die "memcached did not start"
in_cli timeout $client_timeout "$BENCH" kv "$SRV_KIP" --kernel "${client_args[@]}" >"$bench_tmp/mc" 2>&1
netns_stop_server

# 2. usnet-kv on kernel sockets
bench_server kv-kernel "$KV" --kernel -l "$SRV_KIP" -p 11211 -t 1 -m 1024
netns_wait_port "$SRV_KIP" 11211 || bench_die "usnet-kv --kernel did not start"
in_cli timeout $client_timeout "$BENCH" kv "$SRV_KIP" --kernel "${client_args[@]}" >"$bench_tmp/kvk" 2>&1
netns_stop_server

# 3. usnet-kv on usnet
if bench_usnet_server kv-usnet 11211 "$KV" -p 11211 -t 1 -m 1024; then
    in_cli timeout $client_timeout "$BENCH" kv "$SRV_UIP" --kernel "${client_args[@]}" >"$bench_tmp/kvu" 2>&1
    # 4. (extra) the client on usnet as well
    in_cli timeout $client_timeout "$BENCH" kv "$SRV_UIP" --backend "$backend" --iface "$CLI_IF" \
        --ip "$CLI_UIP/24" "${usnet_poll_args[@]}" "${client_args[@]}" >"$bench_tmp/kvuu" 2>&1
    netns_stop_server
    # 5. memcached on the kernel, the same usnet client
    bench_server memcached-uc memcached -u root -l "$SRV_KIP" -p 11211 -U 0 -t 1 -m 1024
    netns_wait_port "$SRV_KIP" 11211 || bench_die "memcached did not start"
    in_cli timeout $client_timeout "$BENCH" kv "$SRV_KIP" --backend "$backend" --iface "$CLI_IF" \
        --ip "$CLI_UIP/24" "${usnet_poll_args[@]}" "${client_args[@]}" >"$bench_tmp/mcuc" 2>&1
    netns_stop_server
else
    echo "no usnet backend answered on the veth" | tee "$bench_tmp/kvu" "$bench_tmp/mcuc" >"$bench_tmp/kvuu"
fi

echo "memcached workload: $items items, 8-byte keys/values, zipf 0.99, 10% sets, $conns connections," \
     "$secs s each; veth pair, server CPU 0, client CPU 1 (usnet-bench kv --kernel)"
bench_table_header
bench_row "memcached 10% set" "memcached -t 1 (kernel)" kernel "$bench_tmp/mc"
bench_row "memcached 10% set" "usnet-kv -t 1 --kernel" kernel-sockets "$bench_tmp/kvk"
bench_row "memcached 10% set" "usnet-kv -t 1 on usnet ($backend)" usnet "$bench_tmp/kvu"
bench_row "memcached 10% set" "memcached -t 1 (kernel), client on usnet" kernel "$bench_tmp/mcuc"
bench_row "memcached 10% set" "usnet-kv, client on usnet too" usnet "$bench_tmp/kvuu"
echo
echo "x rate: requests/s relative to the kernel row above (memcached on the kernel, driven by the same"
echo "client: kernel sockets for the first rows, usnet for the last); x p99: p99 latency relative to it"
echo "(lower is better)"
