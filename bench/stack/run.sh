#!/usr/bin/env bash
# The stack core's benchmark (not a test): builds build/bench-stack and runs
# it.  Arguments go to bench-stack (--seconds S, --conns N, --only NAME).
# Prints a table of bulk Gbit/s, 1-byte ping-pong round trips/s over 32
# connections and memory per idle connection, each against its goal.
set -eu
cd "$(dirname "$0")/../.."
make --no-print-directory build/bench-stack >/dev/null
exec build/bench-stack "$@"
