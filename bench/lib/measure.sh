# shellcheck shell=bash
# Shared by bench/pingpong/run.sh and bench/kv/run.sh (source it): one
# measurement is a server in the server namespace and a usnet-bench client in
# the client namespace of bench/lib/netns.sh (server on CPU 0, client on CPU 1);
# the results go into one table with ratios to the kernel baseline.
#
#   server namespace bench-$$-s: veth be$$s, kernel 10.63.0.1, usnet 10.63.0.11
#   client namespace bench-$$-c: veth be$$c, kernel 10.63.0.2, usnet 10.63.0.12

. bench/lib/netns.sh

BENCH=${BENCH:-build/usnet-bench}
KV=${KV:-build/usnet-kv}
bench_tmp=""

bench_die() { netns_die "$@"; }

# bench_setup: the namespaces (with the cleanup trap) and $bench_tmp.
bench_setup() {
    [ "$(id -u)" -eq 0 ] || bench_die "needs root (network namespaces)"
    [ -x "$BENCH" ] && [ -x "$KV" ] || bench_die "build first: make ($BENCH, $KV)"
    netns_setup bench 63
    # shellcheck disable=SC2034  # the usnet client address, for the caller
    CLI_UIP=10.63.0.12
    bench_tmp=$netns_tmp
}

# bench_server NAME CMD...: start a server, its output in $bench_tmp/NAME.log.
bench_server() {
    local name=$1
    shift
    netns_server "$bench_tmp/$name.log" "$@"
}

# USNET_BUSY_POLL=US makes usnet sides spin that long before sleeping.
usnet_poll_args=()
[ -n "${USNET_BUSY_POLL:-}" ] && usnet_poll_args=(--busy-poll "$USNET_BUSY_POLL")

# bench_usnet_server NAME PORT CMD...: start a usnet server, trying the
# backends for a veth in turn (afxdp, then afpacket; USNET_BACKEND overrides)
# with "--backend B --iface <server veth> --ip <server usnet address>" added
# to CMD.  Sets $backend to the one that answers on PORT; 1 when none did.
bench_usnet_server() {
    local name=$1 port=$2 be
    shift 2
    for be in ${USNET_BACKEND:-afxdp afpacket}; do
        bench_server "$name-$be" "$@" --backend "$be" --iface "$SRV_IF" --ip "$SRV_UIP/24" "${usnet_poll_args[@]}"
        if netns_wait_port "$SRV_UIP" "$port"; then
            backend=$be
            return 0
        fi
        echo "bench: $be: $(tail -1 "$bench_tmp/$name-$be.log")" >&2
        netns_stop_server
    done
    backend=""
    return 1
}
# bench_result FILE: the "RESULT ..." line's fields as shell variables
# r_rate r_p50 r_p99 (empty when the run produced none).
bench_result() {
    r_rate="" r_p50="" r_p99=""
    local line
    line=$(grep '^RESULT ' "$1" | tail -1)
    [ -n "$line" ] || return 1
    r_rate=$(sed -n 's/^RESULT rate=\([0-9.]*\) .*/\1/p' <<<"$line")
    r_p50=$(sed -n 's/.*p50_us=\([0-9.]*\).*/\1/p' <<<"$line")
    r_p99=$(sed -n 's/.*p99_us=\([0-9.]*\).*/\1/p' <<<"$line")
}

# Table rows: bench_row WORKLOAD VARIANT KIND FILE, KIND one of kernel (the
# workload's baseline: its first row, the others get ratios to it),
# kernel-sockets (a native app on kernel sockets) or usnet (native usnet).
# With BENCH_TSV=FILE set, each row is also appended to that file,
# tab-separated: workload, variant, kind, req/s, p50 us, p99 us, note (req/s
# empty when the run failed: the note says why), as bench/apps/run.sh does.
bench_table_header() {
    printf '\n%-24s %-42s %12s %10s %10s %9s %9s\n' workload variant "req/s" "p50 us" "p99 us" "x rate" "x p99"
    printf '%-24s %-42s %12s %10s %10s %9s %9s\n' ------------------------ ------------------------------------------ ------------ ---------- ---------- --------- ---------
}

bench_tsv() {
    [ -n "${BENCH_TSV:-}" ] || return 0
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$BENCH_TSV"
}

# bench_ratio_row WORKLOAD VARIANT FILE BASEFILE: a row with ratios to the
# run in BASEFILE rather than to the kernel (e.g. IPv6 against IPv4 on the
# same server).
bench_ratio_row() {
    local workload=$1 variant=$2 file=$3 basefile=$4 b_rate b_p99
    bench_result "$basefile" || { bench_row "$workload" "$variant" usnet "$file"; return; }
    b_rate=$r_rate b_p99=$r_p99
    if ! bench_result "$file"; then
        printf '%-24s %-42s %12s\n' "$workload" "$variant" "failed: $(tail -1 "$file" 2>/dev/null)"
        return
    fi
    bench_tsv "$workload" "$variant" usnet "$r_rate" "$r_p50" "$r_p99" "ratios to another usnet row"
    printf '%-24s %-42s %12s %10s %10s %9s %9s\n' "$workload" "$variant" "$r_rate" "$r_p50" "$r_p99" \
        "$(awk -v a="$r_rate" -v b="$b_rate" 'BEGIN { printf "%.2f", a / b }')" \
        "$(awk -v a="$r_p99" -v b="$b_p99" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')"
}

bench_row() {
    local workload=$1 variant=$2 kind=$3 file=$4
    if ! bench_result "$file"; then
        local why
        why="failed: $(tail -1 "$file" 2>/dev/null)"
        printf '%-24s %-42s %12s\n' "$workload" "$variant" "$why"
        bench_tsv "$workload" "$variant" "$kind" "" "" "" "$why"
        [ "$kind" = kernel ] && base_rate="" base_p99=""
        return
    fi
    bench_tsv "$workload" "$variant" "$kind" "$r_rate" "$r_p50" "$r_p99" ""
    if [ "$kind" = kernel ]; then
        base_rate=$r_rate base_p99=$r_p99
    fi
    local xr="-" xp="-"
    if [ -n "${base_rate:-}" ] && [ "${base_rate%.*}" != 0 ]; then
        xr=$(awk -v a="$r_rate" -v b="$base_rate" 'BEGIN { printf "%.2f", a / b }')
        xp=$(awk -v a="$r_p99" -v b="$base_p99" 'BEGIN { if (a > 0) printf "%.2f", a / b; else print "-" }')
    fi
    printf '%-24s %-42s %12s %10s %10s %9s %9s\n' "$workload" "$variant" "$r_rate" "$r_p50" "$r_p99" "$xr" "$xp"
}
