#!/usr/bin/env bash
# The stack core's benchmark (not a test): builds build/bench-stack and runs
# it.  Prints one table: bulk Gbit/s of one connection and 1-byte ping-pong
# round trips/s over 32 connections (two usnet stacks over an in-process
# memwire in one thread, next to Linux TCP over loopback driven the same
# way), each over IPv4 and over IPv6 (in turn, three rounds, the median of
# each, with IPv6's ratio to IPv4 per CPU-second), and memory per idle
# established connection with 100,000 of them, each against its goal.
# Arguments go to bench-stack:
#   --seconds S   length of each timed run (default 2)
#   --conns N     connections for the memory figure (default 100000)
#   --only bulk|jumbo|pingpong|memory   one measurement, e.g. for
#                 perf record -g build/bench-stack --only pingpong
set -eu
cd "$(dirname "$0")/../.."
make --no-print-directory build/bench-stack >/dev/null
exec build/bench-stack "$@"
