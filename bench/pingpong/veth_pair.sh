# Shared by bench/pingpong/run.sh and bench/kv/run.sh (source it): two
# network namespaces joined by a veth pair, the server side pinned to CPU 0
# and the client side to CPU 1, and helpers to run one measurement.
#
#   server namespace bench-$$-s: veth bv$$s, kernel 10.63.0.1, usnet 10.63.0.11
#   client namespace bench-$$-c: veth bv$$c, kernel 10.63.0.2, usnet 10.63.0.12

BENCH=${BENCH:-build/usnet-bench}
KV=${KV:-build/usnet-kv}
SRV_NS=bench-$$-s
CLI_NS=bench-$$-c
SRV_IF=bv$$s
CLI_IF=bv$$c
SRV_KIP=10.63.0.1
CLI_KIP=10.63.0.2
SRV_UIP=10.63.0.11
CLI_UIP=10.63.0.12
bench_pids=()
bench_tmp=$(mktemp -d /tmp/usnet-bench.XXXXXX)

bench_cleanup() {
    local p
    for p in "${bench_pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${bench_pids[@]}"; do wait "$p" 2>/dev/null; done
    ip netns pids "$SRV_NS" 2>/dev/null | xargs -r kill 2>/dev/null
    ip netns pids "$CLI_NS" 2>/dev/null | xargs -r kill 2>/dev/null
    ip netns del "$SRV_NS" 2>/dev/null
    ip netns del "$CLI_NS" 2>/dev/null
    rm -rf "$bench_tmp"
}

bench_die() {
    echo "bench: $*" >&2
    exit 1
}

bench_setup() {
    [ "$(id -u)" -eq 0 ] || bench_die "needs root (network namespaces)"
    [ -x "$BENCH" ] && [ -x "$KV" ] || bench_die "build first: make ($BENCH, $KV)"
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    ip netns add "$SRV_NS" && ip netns add "$CLI_NS" || bench_die "cannot create namespaces"
    ip link add "$SRV_IF" netns "$SRV_NS" type veth peer name "$CLI_IF" netns "$CLI_NS" ||
        bench_die "cannot create the veth pair"
    ip -n "$SRV_NS" link set lo up
    ip -n "$CLI_NS" link set lo up
    ip -n "$SRV_NS" addr add "$SRV_KIP/24" dev "$SRV_IF"
    ip -n "$CLI_NS" addr add "$CLI_KIP/24" dev "$CLI_IF"
    ip -n "$SRV_NS" link set "$SRV_IF" up
    ip -n "$CLI_NS" link set "$CLI_IF" up
    # A veth sends CHECKSUM_PARTIAL frames (no L4 checksum) unless told not to.
    ip netns exec "$SRV_NS" ethtool -K "$SRV_IF" tx off >/dev/null 2>&1
    ip netns exec "$CLI_NS" ethtool -K "$CLI_IF" tx off >/dev/null 2>&1
}

# in_srv CMD... / in_cli CMD...: run in a namespace, on its CPU.
in_srv() { ip netns exec "$SRV_NS" taskset -c 0 "$@"; }
in_cli() { ip netns exec "$CLI_NS" taskset -c 1 "$@"; }

# bench_wait_port NS IP PORT: until something accepts (5 s at most).
bench_wait_port() {
    ip netns exec "$1" timeout 5 bash -c "until (exec 3<>/dev/tcp/$2/$3) 2>/dev/null; do sleep 0.05; done"
}

# bench_server NAME CMD...: start a server in the server namespace (not
# through a shell function, so that $! is the server itself).
bench_server() {
    local name=$1
    shift
    ip netns exec "$SRV_NS" taskset -c 0 "$@" >"$bench_tmp/$name.log" 2>&1 &
    BENCH_SERVER_PID=$!
    bench_pids+=($!)
}

bench_stop_server() {
    kill "$BENCH_SERVER_PID" 2>/dev/null
    wait "$BENCH_SERVER_PID" 2>/dev/null
    sleep 0.5  # let the device settle (an XDP program detaching)
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
        if bench_wait_port "$CLI_NS" "$SRV_UIP" "$port"; then
            backend=$be
            return 0
        fi
        echo "bench: $be: $(tail -1 "$bench_tmp/$name-$be.log")" >&2
        bench_stop_server
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

# Table rows: bench_row WORKLOAD VARIANT FILE; the first row of a workload is
# its kernel baseline, the others get ratios to it.
bench_table_header() {
    printf '\n%-22s %-34s %12s %10s %10s %9s %9s\n' workload variant "req/s" "p50 us" "p99 us" "x rate" "x p99"
    printf '%-22s %-34s %12s %10s %10s %9s %9s\n' ---------------------- ---------------------------------- ------------ ---------- ---------- --------- ---------
}

bench_row() {
    local workload=$1 variant=$2 file=$3
    if ! bench_result "$file"; then
        printf '%-22s %-34s %12s\n' "$workload" "$variant" "failed: $(tail -1 "$file" 2>/dev/null)"
        [ "${4:-}" = base ] && base_rate="" base_p99=""
        return
    fi
    if [ "${4:-}" = base ]; then
        base_rate=$r_rate base_p99=$r_p99
    fi
    local xr="-" xp="-"
    if [ -n "${base_rate:-}" ] && [ "${base_rate%.*}" != 0 ]; then
        xr=$(awk -v a="$r_rate" -v b="$base_rate" 'BEGIN { printf "%.2f", a / b }')
        xp=$(awk -v a="$r_p99" -v b="$base_p99" 'BEGIN { if (a > 0) printf "%.2f", a / b; else print "-" }')
    fi
    printf '%-22s %-34s %12s %10s %10s %9s %9s\n' "$workload" "$variant" "$r_rate" "$r_p50" "$r_p99" "$xr" "$xp"
}
