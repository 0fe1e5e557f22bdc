#!/usr/bin/env bash
# The packet I/O backends side by side (root): which one should be the
# default is measured here, not assumed.  Over a veth pair between two
# namespaces (server on CPU 0, client on CPU 1):
#   1. 1-byte ping-pong, 32 connections (usnet-bench): the kernel pair, then
#      for each backend a usnet ponger with a kernel pinger and with a usnet
#      pinger on the same backend; ROUNDS rounds of all of them in turn, each
#      row the median round (the kernel pair's rate moves by 2x between
#      spells of this shared machine, usnet's much less);
#   2. bulk transfer over one TCP connection, at MTU 1500 and 3500
#      (BULK_MTUS): the kernel pair (iperf3 when installed), with the veth's
#      transmit offloads off (as usnet needs its kernel peers) and on (the
#      veth's default, TSO/GSO: the baseline the usnet rows are compared
#      to), then usnet-nc on each backend sending to usnet-nc on the same
#      backend (MIB MiB from a file in memory to /dev/null; the time of the
#      same transfer with one byte, i.e. start-up, handshake and close, is
#      taken off).
# Backends: afxdp (native mode), afpacket, dpdk (its net_af_packet virtual
# device, when the plugin is built; busy-polling, as a poll-mode driver
# without a wait fd runs).  A backend that cannot run here gets a
# row saying why.  Ratios are to the kernel rows of the same run.
#
# usage: bench/backends/run.sh [-d SECONDS] [-b MIB] [-r ROUNDS]
#   BACKENDS="afxdp afpacket"   only these backends
#   BULK_MTUS="1500"            the MTUs of the bulk runs (default 1500 3500)
#   BENCH_TSV=FILE              also append machine-readable rows to FILE
#                               (bench/lib/measure.sh; bulk rows carry "Gb/s"
#                               in an eighth column)
set -u
cd "$(dirname "$0")/../.."
. bench/lib/measure.sh

secs=3 mib=1024 rounds=3
while getopts "d:b:r:" o; do
    case $o in
    d) secs=$OPTARG ;;
    b) mib=$OPTARG ;;
    r) rounds=$OPTARG ;;
    *) echo "usage: $0 [-d SECONDS] [-b MIB] [-r ROUNDS]" >&2; exit 2 ;;
    esac
done
[ "$rounds" -ge 1 ] 2>/dev/null || { echo "$0: -r wants a number of rounds >= 1" >&2; exit 2; }
NC=${NC:-build/usnet-nc}
DPDK_PLUGIN=build/libusnet-netif-dpdk.so
[ -x "$NC" ] || bench_die "build first: make ($NC)"
backends=${BACKENDS:-afxdp afpacket dpdk}

bench_setup
port=7000

# be_args BACKEND: the usnet-bench options for it (besides iface and ip).
be_args() {
    case $1 in
    # a poll-mode driver has no wait fd to sleep on: it polls, as DPDK does
    dpdk) echo "--backend dpdk --netif-opts vdev=net_af_packet --busy-poll 500000" ;;
    *) echo "--backend $1" ;;
    esac
}
be_missing() {   # why BACKEND cannot run here, or nothing
    if [ "$1" = dpdk ] && [ ! -e "$DPDK_PLUGIN" ]; then
        echo "built without DPDK (Debian: libdpdk-dev)"
    fi
}

# ---- 1. ping-pong ------------------------------------------------------------
# PP_ROUNDS rounds, each measuring every set-up in turn, so that a slow spell
# of the shared machine hits them all; each row is the round with the median
# rate (its p50 and p99 with it).
pinger_args=(-p $port -c 32 -t 1 -m 1 -d "$secs")
for ((round = 0; round < rounds; round++)); do
    bench_server kernel-ponger "$BENCH" ponger --kernel -p $port
    if netns_wait_port "$SRV_KIP" $port; then
        in_cli timeout $((secs + 20)) "$BENCH" pinger "$SRV_KIP" --kernel "${pinger_args[@]}" \
            >"$bench_tmp/pp-kernel.$round" 2>&1
    else
        echo "did not answer: $(tail -1 "$bench_tmp/kernel-ponger.log")" >"$bench_tmp/pp-kernel.$round"
    fi
    netns_stop_server

    for be in $backends; do
        why=$(be_missing "$be")
        if [ -n "$why" ]; then
            echo "RESULT-NONE $why" | tee "$bench_tmp/pp-$be-k.$round" >"$bench_tmp/pp-$be-u.$round"
            continue
        fi
        # shellcheck disable=SC2046
        bench_server "ponger-$be" "$BENCH" ponger -p $port $(be_args "$be") --iface "$SRV_IF" --ip "$SRV_UIP/24" \
            "${usnet_poll_args[@]}"
        if ! netns_wait_port "$SRV_UIP" $port; then
            echo "did not answer: $(tail -1 "$bench_tmp/ponger-$be.log")" | tee "$bench_tmp/pp-$be-k.$round" \
                >"$bench_tmp/pp-$be-u.$round"
            netns_stop_server
            continue
        fi
        in_cli timeout $((secs + 20)) "$BENCH" pinger "$SRV_UIP" --kernel "${pinger_args[@]}" >"$bench_tmp/pp-$be-k.$round" 2>&1
        # shellcheck disable=SC2046
        in_cli timeout $((secs + 20)) "$BENCH" pinger "$SRV_UIP" $(be_args "$be") --iface "$CLI_IF" \
            --ip "$CLI_UIP/24" "${usnet_poll_args[@]}" "${pinger_args[@]}" >"$bench_tmp/pp-$be-u.$round" 2>&1
        netns_stop_server
    done
done
# pp_median NAME: $bench_tmp/NAME becomes the round of NAME.* with the
# median rate (or the last round's output when none has a result).
pp_median() {
    local f pick
    pick=$(for f in "$bench_tmp/$1".*; do
        bench_result "$f" && echo "$r_rate $f"
    done | sort -n | awk '{ a[NR] = $2 } END { if (NR) print a[int((NR + 1) / 2)] }')
    [ -n "$pick" ] || pick="$bench_tmp/$1.$((rounds - 1))"
    cp "$pick" "$bench_tmp/$1"
}
pp_median pp-kernel
for be in $backends; do
    pp_median "pp-$be-k"
    pp_median "pp-$be-u"
done

# ---- 2. bulk over one connection ---------------------------------------------
# At each MTU of BULK_MTUS: the kernel pair (iperf3), then usnet-nc on each
# backend.  3500 is the largest MTU whose frames fit one 4 KiB AF_XDP frame
# (and native XDP on a veth); the kernel pair, with TSO/GSO, moves 64 KiB
# segments over the veth at any MTU.
BULK_MTUS=${BULK_MTUS:-1500 3500}
# bulk_row MTU VARIANT KIND GBPS|"" WHY: one line of the bulk table (and TSV).
bulk_base=""
bulk_row() {
    local mtu=$1 variant=$2 kind=$3 g=$4 why=$5 x="" section="bulk, 1 connection, MTU $1"
    if [ -z "$g" ]; then
        printf '%-30s %-42s %12s\n' "$section" "$variant" "failed: $why"
        bench_tsv "$section" "$variant" "$kind" "" "" "" "$why"
        [ "$kind" = kernel ] && bulk_base=""
        return
    fi
    [ "$kind" = kernel ] && bulk_base=$g
    [ -n "$bulk_base" ] && x=$(awk -v a="$g" -v b="$bulk_base" 'BEGIN { printf "%.2f", a / b }')
    printf '%-30s %-42s %9s Gb/s %9s\n' "$section" "$variant" "$g" "$x"
    [ -n "${BENCH_TSV:-}" ] && printf '%s\t%s\t%s\t%s\t\t\t\t%s\n' "$section" "$variant" "$kind" "$g" "Gb/s" >>"$BENCH_TSV"
}

bulk_lines=$bench_tmp/bulk
: >"$bulk_lines"
set_mtu() {   # set_mtu MTU: both ends of the veth
    ip -n "$SRV_NS" link set dev "$SRV_IF" mtu "$1" && ip -n "$CLI_NS" link set dev "$CLI_IF" mtu "$1"
}
set_tx() {    # set_tx on|off: the veth's transmit offloads (checksum, and with it TSO/GSO)
    ip netns exec "$SRV_NS" ethtool -K "$SRV_IF" tx "$1" >/dev/null 2>&1
    ip netns exec "$CLI_NS" ethtool -K "$CLI_IF" tx "$1" >/dev/null 2>&1
}
# kernel_bulk MTU OFFLOAD: iperf3 between the two kernels with the veth's
# transmit offloads on or off; appends a line.
kernel_bulk() {
    local g
    set_tx "$2"
    bench_server iperf3-kernel iperf3 -s -p $((port + 1)) -1
    sleep 0.5
    g=$(in_cli timeout $((secs + 20)) iperf3 -c "$SRV_KIP" -p $((port + 1)) -t "$secs" -J 2>/dev/null |
        python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))' 2>/dev/null)
    echo "$1|kernel-tx-$2|$g|iperf3 gave no result: $(tail -1 "$bench_tmp/iperf3-kernel.log")" >>"$bulk_lines"
    netns_stop_server
    # usnet needs the kernel's peer to send complete checksums (tx off, as
    # bench_setup leaves it)
    set_tx off
}

# nc_args BACKEND IFACE IP MTU: usnet-nc's network options.
nc_args() {
    case $1 in
    dpdk) echo "--backend dpdk --backend-options vdev=net_af_packet --iface $2 --ip $3/24" ;;
    # frames of more than 1778 bytes need 4 KiB AF_XDP frames
    afxdp) echo "--backend afxdp --iface $2 --ip $3/24$([ "$4" -gt 1500 ] && echo " --backend-options frame=4096")" ;;
    *) echo "--backend $1 --iface $2 --ip $3/24" ;;
    esac
}
# The bytes to send come from a file in memory and the received ones go to
# /dev/null (a pipe from head or into wc would cost each side as much as the
# transfer); the server's -v line says how many bytes it received.
bytes=$((mib * 1048576))
src_one=$(mktemp /dev/shm/usnet-bench-bulk.XXXXXX)
src_all=$(mktemp /dev/shm/usnet-bench-bulk.XXXXXX)
trap 'rm -f "$src_one" "$src_all"; netns_cleanup' EXIT
head -c 1 /dev/zero >"$src_one"
head -c "$bytes" /dev/zero >"$src_all"
# nc_once BACKEND FILE MTU: one usnet-nc transfer of FILE's bytes; prints the
# seconds it took end to end (client start to connection closed), or
# "error: why".
nc_once() {
    local be=$1 n start end got pid
    n=$(stat -c %s "$2")
    # shellcheck disable=SC2046
    netns_server "$bench_tmp/nc-$be.log" bash -c "exec $NC -l -v $(nc_args "$be" "$SRV_IF" "$SRV_UIP" "$3") \
        0.0.0.0 $((port + 2)) >/dev/null"
    pid=$NETNS_SERVER_PID
    sleep 1   # the server's netif is up (ARP unanswered until then would cost a SYN retry)
    start=$(date +%s.%N)
    # shellcheck disable=SC2046
    if ! ip netns exec "$CLI_NS" taskset -c 1 timeout 120 "$NC" $(nc_args "$be" "$CLI_IF" "$CLI_UIP" "$3") \
        -w 10 "$SRV_UIP" $((port + 2)) <"$2" >/dev/null 2>"$bench_tmp/nc-$be.err"; then
        echo "error: usnet-nc: $(tail -1 "$bench_tmp/nc-$be.err")"
        netns_stop_server
        return
    fi
    end=$(date +%s.%N)
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    netns_stop_server
    got=$(sed -n 's/.*peer closed its side after \([0-9]*\) bytes.*/\1/p' "$bench_tmp/nc-$be.log")
    if [ "$got" != "$n" ]; then
        echo "error: the server received ${got:-nothing} of $n bytes"
        return
    fi
    awk -v s="$start" -v e="$end" 'BEGIN { printf "%.6f", e - s }'
}
for mtu in $BULK_MTUS; do
    if ! set_mtu "$mtu" 2>/dev/null; then
        echo "$mtu|kernel-tx-on||the veth refused MTU $mtu" >>"$bulk_lines"
        continue
    fi
    if command -v iperf3 >/dev/null; then
        kernel_bulk "$mtu" off
        # the kernel pair's own baseline: the veth's default, offloads on,
        # which is the faster of the two
        kernel_bulk "$mtu" on
    else
        echo "$mtu|kernel-tx-on||iperf3 is not installed (Debian: iperf3)" >>"$bulk_lines"
    fi
    for be in $backends; do
        why=$(be_missing "$be")
        if [ -n "$why" ]; then echo "$mtu|$be||$why" >>"$bulk_lines"; continue; fi
        # the fixed costs (start-up, handshake, close) measured with one byte
        # are taken off the big transfer's time
        t1=$(nc_once "$be" "$src_one" "$mtu")
        tn=$(nc_once "$be" "$src_all" "$mtu")
        case "$t1 $tn" in
        *error:*) echo "$mtu|$be||$(grep -o 'error: .*' <<<"$t1 $tn" | head -1 | cut -c8-)" >>"$bulk_lines" ;;
        *) echo "$mtu|$be|$(awk -v b="$bytes" -v a="$t1" -v t="$tn" 'BEGIN { d = t - a; if (d <= 0) d = t; printf "%.2f", b * 8 / d / 1e9 }')|" >>"$bulk_lines" ;;
        esac
    done
done
rm -f "$src_one" "$src_all"
set_mtu 1500 2>/dev/null

echo "backends: veth pair, server CPU 0, client CPU 1; ping-pong 32 connections x 1 byte, $secs s each,"
echo "          median of $rounds rounds taken in turns;"
echo "bulk: kernel iperf3 -t $secs vs usnet-nc sending $mib MiB from a file in memory to usnet-nc writing to /dev/null"
echo "      (less a 1-byte run's fixed costs), at MTU $BULK_MTUS; the veth's offloads off for usnet"
bench_table_header
bench_row "ping-pong 1 B, 32 conns" "kernel ponger, kernel pinger" kernel "$bench_tmp/pp-kernel"
for be in $backends; do
    bench_row "ping-pong 1 B, 32 conns" "usnet ($be) ponger, kernel pinger" usnet "$bench_tmp/pp-$be-k"
    bench_row "ping-pong 1 B, 32 conns" "usnet ($be) both sides" usnet "$bench_tmp/pp-$be-u"
done
echo
while IFS='|' read -r mtu be g why; do
    case $be in
    kernel-tx-off) bulk_row "$mtu" "kernel (iperf3), veth tx offload off" kernel "$g" "$why" ;;
    kernel-tx-on) bulk_row "$mtu" "kernel (iperf3), veth offloads on" kernel "$g" "$why" ;;
    *) bulk_row "$mtu" "usnet-nc ($be), both sides" usnet "$g" "$why" ;;
    esac
done <"$bulk_lines"
echo
echo "x rate: relative to the kernel row above it; x p99: p99 latency relative to it (lower is better)"
