#!/usr/bin/env bash
# bench/run reads the rows (BENCH_TSV) or tables the benchmark scripts
# write; these tests feed its parsers (bench/lib/rows.sh) and report
# (bench/lib/report.sh) recorded outputs of those scripts
# (tests/bench/samples/) and check the rows, the
# ratios and the goals that come out, so that a change of format is caught
# here rather than by an empty report.  No root, no network.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
. bench/lib/rows.sh
. bench/lib/report.sh

S=tests/bench/samples
work=$(mktemp -d /tmp/usnet-tests-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
ROWS=$work/rows.tsv

# field ROW_MATCH COLUMN: a column of the first ratio row whose variant matches.
field() { rows_ratios "$ROWS" | awk -F'\t' -v m="$1" -v c="$2" '$2 ~ m { print $c; exit }'; }

# expect NAME WANT GOT
expect() {
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "want '$2', got '$3'"; fi
}

# expect_goals NAME PATTERN...: report_goals of $ROWS has a line matching
# each pattern.
expect_goals() {
    local name=$1 goals p
    shift
    goals=$(report_goals "$ROWS")
    for p in "$@"; do
        if ! grep -q "$p" <<<"$goals"; then
            fail "$name" "no goal line matches '$p': $(tr '\n' ' ' <<<"$goals" | cut -c1-400)"
            return
        fi
    done
    pass "$name"
}

# ---- ping-pong rows: long variant, failed row ---------------------------------
: >"$ROWS"
rows_from_tsv $S/pingpong.tsv src "pp"
expect parse_pingpong_rows 3 "$(wc -l <"$ROWS")"
expect parse_pingpong_variant "usnet (afpacket) ponger, kernel pinger" \
    "$(awk -F'\t' 'NR == 2 { print $2 }' "$ROWS")"
expect parse_pingpong_values "5936 362.8 13468.0" "$(field 'afpacket. ponger' 4) $(field 'afpacket. ponger' 6) $(field 'afpacket. ponger' 7)"
expect parse_pingpong_ratio "0.34 0.75" "$(field 'afpacket. ponger' 11) $(field 'afpacket. ponger' 12)"
expect parse_pingpong_failed "|failed: pinger: connect: Connection timed out" \
    "$(field 'both sides' 4)|$(field 'both sides' 8)"

# ---- bench_row writes the BENCH_TSV rows that rows_from_tsv reads ----------
(
    . bench/lib/measure.sh
    echo "RESULT rate=1000 p50_us=10.5 p90_us=20.0 p99_us=30.5 p999_us=40.0 count=1000 errors=0" >"$work/k.out"
    echo "RESULT rate=500 p50_us=20.0 p90_us=30.0 p99_us=61.0 p999_us=80.0 count=500 errors=0" >"$work/u.out"
    echo "usnet-bench pinger: no connection could be made" >"$work/f.out"
    BENCH_TSV=$work/row.tsv
    bench_row "ping-pong 1 B" "kernel ponger, kernel pinger" kernel "$work/k.out"
    bench_row "ping-pong 1 B" "usnet (afxdp) both sides" usnet "$work/u.out"
    bench_row "ping-pong 1 B" "usnet (afxdp) ponger, kernel pinger" usnet "$work/f.out"
) >"$work/row.txt"
: >"$ROWS"
rows_from_tsv "$work/row.tsv" src "pp"
expect tsv_bench_row "native usnet 500 req/s 20.0 61.0 0.50 2.00" \
    "$(field 'both sides' 3) $(field 'both sides' 4) $(field 'both sides' 5) $(field 'both sides' 6) $(field 'both sides' 7) $(field 'both sides' 11) $(field 'both sides' 12)"
expect tsv_bench_row_failed "|failed: usnet-bench pinger: no connection could be made" \
    "$(field 'afxdp. ponger' 4)|$(field 'afxdp. ponger' 8)"

# ---- memcached workload (bench/kv) then bench/apps in the same section ------
: >"$ROWS"
rows_from_tsv $S/kv.tsv kv "memcached workload"
rows_from_tsv $S/apps.tsv apps
expect parse_kv_kinds "kernel,native app, kernel sockets,native usnet,native usnet" \
    "$(awk -F'\t' '$10 == "kv" { printf "%s%s", (NR > 1 ? "," : ""), $3 }' "$ROWS")"
expect ratio_kv_native "0.86" "$(field 'usnet-kv -t 1 on usnet' 11)"
# the apps rows take their ratio from the apps kernel row, not bench/kv's
expect ratio_apps_own_baseline "2.00 0.50" "$(field 'memcached under usnet run .afxdp' 11) $(field 'memcached under usnet run .afxdp' 12)"
expect parse_apps_failed "did not start: no tap" "$(field 'run .tap' 8)"
expect ratio_redis_sections "1.62" "$(rows_ratios "$ROWS" | awk -F'\t' '$1 == "redis SET" && $3 != "kernel" { print $11 }')"

expect_goals report_goals 'usnet-kv on usnet .*0.86×.*not met' \
    'memcached -t 1 under usnet run (best: afxdp, kernel client).*2.00×.*met' \
    'ping-pong p99.*not measured'

# ---- bench/backends: ping-pong per backend, bulk rows in Gb/s --------------
: >"$ROWS"
rows_from_tsv $S/backends.tsv backends
expect parse_backends_units "req/s Gb/s" "$(field 'afxdp. both sides' 5) $(field 'usnet-nc .afxdp' 5)"
# the bulk rows take their ratio from the offloads-on kernel row
# (each MTU's rows against that MTU's kernel row)
expect ratio_backends_bulk "0.40 0.25 0.90 0.50" \
    "$(rows_ratios "$ROWS" | awk -F'\t' '$2 ~ /^usnet-nc/ { printf "%s%s", sep, $11; sep = " " }')"
expect parse_backends_missing "built without DPDK (Debian: libdpdk-dev)" "$(field 'dpdk' 8)"
expect_goals report_goals_backends 'usnet on both sides over afxdp.*4.50×.*: met' \
    'usnet server over afxdp + kernel client.*1.20×.*not met' \
    'bulk over one connection (best: afxdp, MTU 3500).*0.90×.*not met'

# ---- bench/apps with a usnet client too: its rows get their own section and
# baseline, and the goal takes the better of the two set-ups ---------------
: >"$ROWS"
rows_from_tsv $S/apps_clients.tsv apps
expect apps_client_sections "memcached workload|memcached workload, client on usnet|redis, usnet client" \
    "$(cut -f1 "$ROWS" | sort -u | paste -sd'|')"
expect ratio_apps_client "1.50 2.40 2.40" "$(rows_ratios "$ROWS" | awk -F'\t' '$2 ~ /afxdp/ { printf "%s%s", (n++ ? " " : ""), $11 }')"
expect_goals report_goals_apps_client \
    'memcached -t 1 under usnet run (best: afxdp, client on usnet).*2.40×.*: met' \
    'redis-server under usnet run (best: afxdp, 10% SET / 90% GET from a client on usnet).*2.40×.*: met'

# ---- bench/kv with the client on usnet too: usnet-kv's goal is against the
# memcached row driven by the same client -------------------------------------
: >"$ROWS"
rows_from_tsv $S/kv_clients.tsv kv "memcached workload"
expect_goals report_goals_kv_same_client 'usnet-kv on usnet vs memcached -t 1 on the kernel, same client.*4.09×.*: met'

# ---- the hook table: every row, each ratio against its own native row -----
: >"$ROWS"
rows_from_hook $S/hook.out hook
expect parse_hook_rows 16 "$(wc -l <"$ROWS")"
expect ratio_hook_sud "6.09" "$(field 'Syscall User Dispatch' 11)"
expect ratio_hook_python_cold "6.78" "$(field 'python3 -c pass, hooked, no cache' 11)"
expect ratio_hook_handler_alone "" "$(field 'round trip alone' 11)"

# ---- the stack core's table: goals left out, kernel where it has one --------
: >"$ROWS"
rows_from_stack $S/stack.out stack
expect parse_stack_bulk "38.29 25.14" "$(awk -F'\t' '/MTU 1500/ { printf "%s%s", (n++ ? " " : ""), $4 }' "$ROWS")"
expect parse_stack_memory "2122 B" "$(awk -F'\t' '/idle/ { print $4, $5 }' "$ROWS")"

# ---- markdown: one table per section, a row per figure ----------------------
: >"$ROWS"
rows_from_tsv $S/pingpong.tsv src "pp"
md=$(report_tables "$ROWS")
if [ "$(grep -c '^### ' <<<"$md")" = 1 ] && [ "$(grep -c '^| usnet\|^| kernel' <<<"$md")" = 3 ] &&
   grep -q '| not measured: failed: pinger' <<<"$md"; then
    pass report_tables
else
    fail report_tables "$(tr '\n' ' ' <<<"$md" | cut -c1-300)"
fi

# ---- the plot script draws a PNG ----------------------------------------------
if need_cmd gnuplot; then
    printf '1 1000 1200 NaN 50 40 NaN\n32 20000 25000 30000 900 700 500\n' >"$work/pp.dat"
    if timeout 20 gnuplot -e "data='$work/pp.dat'; what='p99'; out='$work/p.png'" bench/plot/pingpong.gp \
        >"$work/gp.out" 2>&1 && [ "$(head -c 4 "$work/p.png" | tail -c 3)" = PNG ]; then
        pass plot_png
    else
        fail plot_png "$(tail -1 "$work/gp.out")"
    fi
else
    skip plot_png "needs gnuplot (Debian package gnuplot-nox)"
fi

# ---- bad usage is refused before anything is set up -------------------------
bench/run --bogus >/dev/null 2>&1
expect run_bad_option 2 $?
bench/apps/run.sh -x >/dev/null 2>&1
expect apps_bad_option 2 $?
