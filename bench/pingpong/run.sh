#!/usr/bin/env bash
# Ping-pong benchmark (root): 1-byte messages, 32 connections, one message
# outstanding on each, over a veth pair between two namespaces; the server
# on CPU 0, the client on CPU 1.  Runs
#   1. kernel ponger  <- kernel pinger   (the baseline)
#   2. usnet ponger   <- kernel pinger   (usnet on the server side)
#   3. usnet ponger   <- usnet pinger    (usnet on both sides)
# and prints one table with round trips/s and latency, with ratios to the
# kernel measured in the same run; then IPv6 against IPv4 on one usnet
# ponger (on the backend that answered above) listening on ::,
#   4. kernel pinger over IPv4, then over IPv6
#   5. usnet pinger over IPv4, then over IPv6
# each IPv6 row with its ratios to the IPv4 row above it.
#
# usage: bench/pingpong/run.sh [-d SECONDS] [-c CONNS] [-m BYTES]
#   USNET_BACKEND=afpacket bench/pingpong/run.sh   to force a backend
#   USNET_BUSY_POLL=200 bench/pingpong/run.sh      usnet sides spin 200 us before sleeping
#   BENCH_TSV=FILE bench/pingpong/run.sh           also append machine-readable rows to FILE
#                                                  (bench/lib/measure.sh, bench_row)
set -u
cd "$(dirname "$0")/../.."
. bench/lib/measure.sh

secs=3 conns=32 bytes=1
while getopts "d:c:m:" o; do
    case $o in
    d) secs=$OPTARG ;;
    c) conns=$OPTARG ;;
    m) bytes=$OPTARG ;;
    *) echo "usage: $0 [-d SECONDS] [-c CONNS] [-m BYTES]" >&2; exit 2 ;;
    esac
done

bench_setup
port=7000
pinger_args=(-p $port -c "$conns" -t 1 -m "$bytes" -d "$secs")

# 1. kernel <- kernel
bench_server kernel-ponger "$BENCH" ponger --kernel -p $port
netns_wait_port "$SRV_KIP" $port || bench_die "kernel ponger did not start"
in_cli timeout $((secs + 20)) "$BENCH" pinger "$SRV_KIP" --kernel "${pinger_args[@]}" >"$bench_tmp/kk" 2>&1
netns_stop_server

if bench_usnet_server usnet-ponger $port "$BENCH" ponger -p $port; then
    # 2. usnet <- kernel
    in_cli timeout $((secs + 20)) "$BENCH" pinger "$SRV_UIP" --kernel "${pinger_args[@]}" >"$bench_tmp/uk" 2>&1
    # 3. usnet <- usnet (same server, a usnet client on the other side)
    in_cli timeout $((secs + 20)) "$BENCH" pinger "$SRV_UIP" --backend "$backend" --iface "$CLI_IF" \
        --ip "$CLI_UIP/24" "${usnet_poll_args[@]}" "${pinger_args[@]}" >"$bench_tmp/uu" 2>&1
    netns_stop_server
else
    echo "no usnet backend answered on the veth" | tee "$bench_tmp/uk" >"$bench_tmp/uu"
fi

# 4, 5: one dual-stack usnet ponger for both families, on the backend of
# rows 2 and 3.
v6be=${backend:-afpacket}
bench_server usnet-ponger-v6 "$BENCH" ponger -p $port --backend $v6be --iface "$SRV_IF" --ip "$SRV_UIP/24" \
    --ip6 "$SRV_UIP6/64" "${usnet_poll_args[@]}"
if netns_wait_port "$SRV_UIP" $port; then
    in_cli timeout $((secs + 20)) "$BENCH" pinger "$SRV_UIP" --kernel "${pinger_args[@]}" >"$bench_tmp/uk4" 2>&1
    in_cli timeout $((secs + 20)) "$BENCH" pinger "$SRV_UIP6" --kernel "${pinger_args[@]}" >"$bench_tmp/uk6" 2>&1
    in_cli timeout $((secs + 20)) "$BENCH" pinger "$SRV_UIP" --backend $v6be --iface "$CLI_IF" \
        --ip "$CLI_UIP/24" "${usnet_poll_args[@]}" "${pinger_args[@]}" >"$bench_tmp/uu4" 2>&1
    in_cli timeout $((secs + 20)) "$BENCH" pinger "$SRV_UIP6" --backend $v6be --iface "$CLI_IF" \
        --ip "$CLI_UIP/24" --ip6 "$CLI_UIP6/64" "${usnet_poll_args[@]}" "${pinger_args[@]}" >"$bench_tmp/uu6" 2>&1
    netns_stop_server
else
    for f in uk4 uk6 uu4 uu6; do
        echo "the usnet ponger with IPv6 did not answer: $(tail -1 "$bench_tmp/usnet-ponger-v6.log")" >"$bench_tmp/$f"
    done
    netns_stop_server
fi

echo "ping-pong: $conns connections x $bytes-byte messages, $secs s each, veth pair, server CPU 0, client CPU 1"
bench_table_header
bench_row "ping-pong $bytes B" "kernel ponger, kernel pinger" kernel "$bench_tmp/kk"
bench_row "ping-pong $bytes B" "usnet ($backend) ponger, kernel pinger" usnet "$bench_tmp/uk"
bench_row "ping-pong $bytes B" "usnet ($backend) both sides" usnet "$bench_tmp/uu"
echo
echo "IPv6 against IPv4: one usnet ($v6be) ponger on :: for both; x rate and x p99 of each IPv6 row are relative to the IPv4 row above it"
bench_table_header
bench_row "ping-pong $bytes B" "usnet ($v6be) ponger, kernel pinger, IPv4" usnet "$bench_tmp/uk4"
bench_ratio_row "ping-pong $bytes B" "usnet ($v6be) ponger, kernel pinger, IPv6" "$bench_tmp/uk6" "$bench_tmp/uk4"
bench_row "ping-pong $bytes B" "usnet ($v6be) both sides, IPv4" usnet "$bench_tmp/uu4"
bench_ratio_row "ping-pong $bytes B" "usnet ($v6be) both sides, IPv6" "$bench_tmp/uu6" "$bench_tmp/uu4"
echo
echo "x rate: round trips/s relative to the kernel (IPv6 rows: to IPv4); x p99: p99 latency likewise (lower is better)"
