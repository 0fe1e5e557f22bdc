# shellcheck shell=bash
# Markdown rendering of result rows (bench/lib/rows.sh) for bench/run
# (source it).

# report_tables ROWS: one markdown table per section, in the order the
# sections first appear; each row's ratio is to the last baseline row above
# it in its section (the kernel measured by the same script in the same run).
report_tables() {
    rows_ratios "$1" | awk -F'\t' '
        !($1 in seen) { seen[$1] = 1; order[++ns] = $1 }
        { rows[$1, ++count[$1]] = $0 }
        function esc(s) { gsub(/\|/, "\\|", s); return s }
        END {
            for (s = 1; s <= ns; s++) {
                sec = order[s]
                printf "\n### %s\n\n", sec
                print "| variant | stack | value | p50 µs | p99 µs | × kernel | p99 × kernel | measured by |"
                print "|---|---|---:|---:|---:|---:|---:|---|"
                for (r = 1; r <= count[sec]; r++) {
                    split(rows[sec, r], f, "\t")
                    if (f[4] == "")
                        printf "| %s | %s | not measured: %s | | | | | %s |\n", esc(f[2]), f[3], esc(f[8]), f[10]
                    else
                        printf "| %s | %s | %s %s | %s | %s | %s | %s | %s |\n", esc(f[2]), f[3], f[4], f[5], \
                            f[6], f[7], f[11], f[12], f[10]
                }
            }
        }'
}

# report_goals ROWS: the goals of the benchmark against this run's ratios,
# as markdown list items.
report_goals() {
    rows_ratios "$1" | awk -F'\t' '
        function best(sec, pat, col,   r, v) {
            v = ""
            for (r = 1; r <= n; r++)
                if (S[r] == sec && V[r] ~ pat && K[r] != "kernel" && (col == 11 ? XR[r] : XP[r]) != "") {
                    x = (col == 11 ? XR[r] : XP[r]) + 0
                    if (v == "" || (col == 11 ? x > v : x < v)) {
                        v = x
                        which = V[r]
                        if (match(which, /\([a-z0-9]+\)/)) which = substr(which, RSTART + 1, RLENGTH - 2)
                    }
                }
            return v
        }
        function line(text, v, goal, ok) {
            if (v == "") printf "- %s: not measured in this run (goal %s)\n", text, goal
            else printf "- %s: **%.2f×** (goal %s: %s)\n", text, v, goal, (ok ? "met" : "not met")
        }
        { n++; S[n] = $1; V[n] = $2; K[n] = $3; XR[n] = $11; XP[n] = $12 }
        END {
            # each usnet-kv row against the memcached row above it: the same
            # client drives both (kernel client, or client on usnet)
            v = best("memcached workload", "^usnet-kv.*on usnet", 11)
            line("usnet-kv on usnet vs memcached -t 1 on the kernel, same client, requests/s", v, "≥ 2.5×", v >= 2.5)
            # with the kernel client, or with a client on usnet (both drive
            # the kernel row of their own section)
            v = best("memcached workload", "^memcached under usnet run", 11)
            w = which ", kernel client"
            v2 = best("memcached workload, client on usnet", "^memcached under usnet run", 11)
            if (v2 != "" && (v == "" || v2 > v)) { v = v2; w = which ", client on usnet" }
            which = w
            line("memcached -t 1 under usnet run (best: " (v == "" ? "-" : which) ") vs the kernel, requests/s", v, "≥ 2×", v >= 2)
            # redis-benchmark GET and SET (the kernel client), and the mixed
            # workload from a client on usnet: the best of the three
            v = best("redis GET", "under usnet run", 11); w = which ", redis-benchmark GET"
            v2 = best("redis SET", "under usnet run", 11)
            if (v2 != "" && (v == "" || v2 > v)) { v = v2; w = which ", redis-benchmark SET" }
            v2 = best("redis, usnet client", "under usnet run", 11)
            if (v2 != "" && (v == "" || v2 > v)) { v = v2; w = which ", 10% SET / 90% GET from a client on usnet" }
            which = w
            line("redis-server under usnet run (best: " (v == "" ? "-" : which) ") vs the kernel, requests/s", v, "≥ 2×", v >= 2)
            v = best("ping-pong 1 B, 32 conns", "^usnet \\(afxdp\\) both sides", 11)
            line("ping-pong, 32 connections, usnet on both sides over afxdp vs the kernel pair, round trips/s", v, "≥ 4×", v >= 4)
            v = best("ping-pong 1 B, 32 conns", "^usnet \\(afxdp\\) ponger, kernel pinger", 11)
            line("ping-pong, 32 connections, usnet server over afxdp + kernel client vs the kernel pair, round trips/s", v, "≥ 1.5×", v >= 1.5)
            # each MTU has its own section, usnet against the kernel pair at
            # that MTU: the best of them
            v = ""; w = ""
            for (r = 1; r <= n; r++)
                if (S[r] ~ /^bulk, 1 connection/ && !(S[r] in bulk_seen)) {
                    bulk_seen[S[r]] = 1
                    v2 = best(S[r], "^usnet-nc", 11)
                    if (v2 != "" && (v == "" || v2 > v)) {
                        v = v2; w = which; m = S[r]
                        sub(/^bulk, 1 connection,? ?/, "", m)
                        if (m != "") w = w ", " m
                    }
                }
            line("bulk over one connection (best: " (v == "" ? "-" : w) ") vs the kernel pair at the same MTU, Gb/s", v, "≥ 1×", v >= 1)
            # HTTP (bench/http): nginx under usnet run, best backend, and
            # usnet-httpd, each against nginx on the kernel
            v = best("HTTP 1 KiB, keep-alive, 32 conns", "^nginx under usnet run", 11)
            line("nginx under usnet run (best: " (v == "" ? "-" : which) ") vs nginx on the kernel, 1 KiB, keep-alive, 32 connections, requests/s", v, "≥ 2×", v >= 2)
            v = best("HTTP 1 KiB, new connection per request, 32 conns", "^nginx under usnet run", 11)
            line("nginx under usnet run (best: " (v == "" ? "-" : which) ") vs nginx on the kernel, 1 KiB, a new connection per request, 32 connections, requests/s", v, "≥ 1.5×", v >= 1.5)
            hsec = ""
            for (r = 1; r <= n; r++)
                if (S[r] ~ /^HTTP [0-9]+ MiB file/) hsec = S[r]
            v = best(hsec, "^nginx under usnet run", 11)
            line("nginx under usnet run (best: " (v == "" ? "-" : which) ") vs nginx on the kernel, large file, Gbit/s", v, "≥ 1×", v >= 1)
            v = best("HTTP 1 KiB, keep-alive, 32 conns", "^usnet-httpd on usnet", 11)
            line("usnet-httpd on usnet vs nginx on the kernel, 1 KiB, keep-alive, 32 connections, requests/s", v, "≥ 3×", v >= 3)
            for (r = 1; r <= n; r++)
                if (S[r] ~ /^1-byte ping-pong over a veth pair, 32 connections/) sec = S[r]
            v = best(sec, "ponger, kernel pinger$", 12)
            line("ping-pong p99, 32 connections, usnet server vs the kernel", v, "≤ 0.5×", v != "" && v <= 0.5)
            v = best(sec, "both sides", 12)
            line("ping-pong p99, 32 connections, usnet on both sides vs the kernel", v, "≤ 0.5×", v != "" && v <= 0.5)
        }'
}
