# shellcheck shell=bash
# Result rows shared by bench/run and its helpers (source it).  Every figure a
# benchmark prints becomes one tab-separated row of $ROWS:
#
#   section  variant  kind  value  unit  p50_us  p99_us  note  base  source
#
#   section  the workload, one table in the report per section
#   kind     kernel | unmodified under usnet | native usnet |
#            native app, kernel sockets | under the hook
#   value    the figure (empty when the variant did not run: note says why)
#   base     1 on a kernel row: the rows after it in its section (until the
#            next base row) get their ratio against it; "-": a row with no
#            baseline (neither it nor the rows after it get a ratio)
#   source   the script that measured it
#
# rows_from_tsv reads the rows the bench/ scripts write with BENCH_TSV=FILE;
# the others parse the human tables of the scripts that have no such rows.

# rows_add SECTION VARIANT KIND VALUE UNIT P50 P99 NOTE BASE SOURCE
rows_add() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$ROWS"
}

# rows_from_tsv FILE SOURCE [SECTION]: the BENCH_TSV rows that
# bench/pingpong/run.sh, bench/kv/run.sh and bench/apps/run.sh write
# (workload, variant, kind, req/s, p50 us, p99 us, note[, unit when not
# req/s]).  Every row goes into
# SECTION; without it, into its workload's (memcached ones all into
# "memcached workload", where bench/kv/run.sh puts its rows too, those with a
# usnet client into "memcached workload, client on usnet").  A kernel
# row is the baseline of the rows after it.
rows_from_tsv() {
    awk -F'\t' -v source="$2" -v section="${3:-}" -v OFS='\t' '{
        s = section != "" ? section : ($1 ~ /^memcached.*usnet client/) ? "memcached workload, client on usnet" : \
            ($1 ~ /^memcached/) ? "memcached workload" : $1
        if ($3 == "kernel") kind = "kernel"
        else if ($3 == "kernel-sockets") kind = "native app, kernel sockets"
        else if ($3 == "usnet") kind = "native usnet"
        else if ($3 == "usnet-run") kind = "unmodified under usnet"
        else kind = $3
        unit = $8 != "" ? $8 : "req/s"
        print s, $2, kind, $4, ($4 == "" ? "" : unit), $5, $6, $7, ($3 == "kernel"), source
    }' "$1" >>"$ROWS"
}

# rows_from_hook FILE SOURCE: bench/hook/run.sh (label, value, unit, ratio...);
# a "native" row is the baseline of the rows after it.
rows_from_hook() {
    awk -v source="$2" -v OFS='\t' '
        /^-+ -+/ { intable = 1; next }
        intable {
            for (i = 2; i < NF; i++)
                if ($i ~ /^[0-9.]+$/ && ($(i+1) == "ns" || $(i+1) == "ms" || $(i+1) == "s")) break
            if (i >= NF) next
            label = $1
            for (j = 2; j < i; j++) label = label " " $j
            native = (label ~ /native/)
            # the handler-only round trip has no native counterpart: no ratio
            base = native ? 1 : (label ~ /round trip alone/ ? "-" : 0)
            print "system-call hook", label, (native ? "kernel" : "under the hook"), $i, $(i+1), "", "", "", base, source
        }' "$1" >>"$ROWS"
}

# rows_from_stack FILE SOURCE: build/bench-stack's table (usnet figure, then
# the kernel's where it has one).
rows_from_stack() {
    awk -v source="$2" -v OFS='\t' '
        function emit(section, unit,   i, k, v) {
            # the figures followed by their unit, leaving out the goal (">= 10 Gb/s")
            k = 0
            for (i = 1; i < NF; i++)
                if ($i ~ /^[0-9.]+$/ && $(i+1) == unit && $(i-1) !~ /^[<>]=$/) v[++k] = $i
            if (k >= 2)
                print section, "Linux TCP over loopback, same driver", "kernel", v[2], unit, "", "", "", 1, source
            if (k >= 1)
                print section, "usnet stack, two instances over memwire", "native usnet", v[1], unit, "", "", "", 0, source
        }
        /^bulk, 1 connection/     { emit("bulk TCP throughput, 1 connection, MTU 1500 (one process)", "Gb/s") }
        /^bulk, same, MTU 9004/   { emit("bulk TCP throughput, 1 connection, MTU 9004 (one process)", "Gb/s") }
        /^1-byte ping-pong/       { emit("1-byte ping-pong, 32 connections (one process, no wire)", "rt/s") }
        /^memory per idle/        { emit("bytes per idle established connection", "B") }
    ' "$1" >>"$ROWS"
}

# rows_ratios ROWS: ROWS with two more columns, the ratio of value and of p99
# to the last baseline row above it in its section ("" where none).
rows_ratios() {
    awk -F'\t' -v OFS='\t' '
        {
            if ($9 == "1") { bv[$1] = $4; bp[$1] = $7 }
            else if ($9 == "-") { bv[$1] = ""; bp[$1] = "" }
            xr = ""; xp = ""
            if ($4 != "" && $9 != "-" && bv[$1] + 0 > 0) xr = sprintf("%.2f", $4 / bv[$1])
            if ($7 + 0 > 0 && $9 != "-" && bp[$1] + 0 > 0) xp = sprintf("%.2f", $7 / bp[$1])
            print $0, xr, xp
        }' "$1"
}
