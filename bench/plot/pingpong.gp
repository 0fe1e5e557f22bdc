# Ping-pong against the number of connections, kernel vs usnet (bench/run).
# usage: gnuplot -e "data='FILE'; what='rate'|'p99'; out='FILE.png'; backend='afxdp'" bench/plot/pingpong.gp
# data: one line per connection count:
#   conns  rate_kernel rate_usnet_server rate_usnet_both  p99_kernel p99_usnet_server p99_usnet_both
# (NaN where a variant did not run; rates in round trips/s, p99 in microseconds)
if (!exists("backend")) backend = "usnet"
set terminal pngcairo size 900,560 font "sans,11" noenhanced
set output out
set datafile missing "NaN"
set key top left box opaque
set grid
set logscale x 2
set xlabel "connections (1-byte messages, one outstanding on each)"
set xtics (1, 2, 4, 8, 16, 32, 64, 128, 256)
# room on both sides, so the first and last connection counts keep their labels
set offsets graph 0.03, graph 0.03, 0, 0
if (what eq "rate") {
    set title "1-byte ping-pong over a veth pair: throughput (higher is better)"
    set ylabel "round trips per second"
    set yrange [0:*]
    set format y "%.0s%c"
    c = 2
} else {
    set title "1-byte ping-pong over a veth pair: p99 latency (lower is better)"
    set ylabel "p99 latency (microseconds)"
    set logscale y
    c = 5
}
plot data using 1:(column(c))   with linespoints lw 2 pt 7 title "kernel ponger, kernel pinger", \
     data using 1:(column(c+1)) with linespoints lw 2 pt 5 title sprintf("usnet (%s) ponger, kernel pinger", backend), \
     data using 1:(column(c+2)) with linespoints lw 2 pt 9 title sprintf("usnet (%s) both sides", backend)
