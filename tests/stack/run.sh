#!/usr/bin/env bash
# The stack core's test suite: unit tests (plain and ASan/UBSan builds), the
# fuzz regression replay, and the freestanding/aarch64 checks.  One
# PASS/FAIL/SKIP line per test.  Needs `make` (and the suite's TEST_DEPS)
# built first, as `make test` does.
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
B=${B:-build}
rc=0

run_unit() {   # binary prefix
    local bin=$1 prefix=$2
    if [ ! -x "$bin" ]; then
        fail "${prefix}build" "$bin missing (make $bin)"
        rc=1
        return
    fi
    STACK_TEST_PREFIX=$prefix timeout 120 "$bin"
    local st=$?
    if [ $st -ne 0 ] && [ $st -ne 1 ]; then
        fail "${prefix}runner" "exited with status $st (crash or timeout)"
    fi
    [ $st -eq 0 ] || rc=1
}

run_unit "$B/stack/test_stack" "stack/"
run_unit "$B/stack/test_stack_san" "stack-san/"

# Processes killed inside stack calls on shared instances, then repaired
# (tests/stack/kill/kill_repair.c), plain and under ASan/UBSan; and the
# same without repair, which the invariant check must catch.
run_kill() {   # binary prefix args...
    local bin=$1 prefix=$2
    shift 2
    if [ ! -x "$bin" ]; then
        fail "${prefix}kill-repair" "$bin missing (make $bin)"
        rc=1
        return
    fi
    STACK_TEST_PREFIX=$prefix timeout 60 "$bin" "$@" 2>/dev/null
    local st=$?
    if [ $st -ne 0 ] && [ $st -ne 1 ]; then
        fail "${prefix}kill-repair" "exited with status $st (crash or timeout)"
    fi
    [ $st -eq 0 ] || rc=1
}
run_kill "$B/stack/kill_repair" "stack/" --kills 400
run_kill "$B/stack/kill_repair_san" "stack-san/" --kills 300
run_kill "$B/stack/kill_repair" "stack/" --kills 400 --no-repair

# Fuzz regressions and seeds, replayed under ASan/UBSan.
if [ -x "$B/stack/fuzz_replay" ]; then
    inputs=$(ls fuzz/regressions/* fuzz/corpus/* 2>/dev/null)
    if out=$(timeout 120 "$B/stack/fuzz_replay" $inputs 2>&1); then
        pass stack-san/fuzz-replay
    else
        fail stack-san/fuzz-replay "$(echo "$out" | grep -m1 -E 'ERROR|runtime error|SUMMARY' || echo "$out" | tail -1)"
        rc=1
    fi
else
    fail stack-san/fuzz-replay "$B/stack/fuzz_replay missing"
    rc=1
fi

# The IPv6 views' seeds (fuzz/wire-ipv6-corpus/), the same way.
if [ -x "$B/stack/fuzz_wire_ipv6_replay" ]; then
    if out=$(timeout 120 "$B/stack/fuzz_wire_ipv6_replay" fuzz/wire-ipv6-corpus/* 2>&1); then
        pass stack-san/fuzz-wire-ipv6-replay
    else
        fail stack-san/fuzz-wire-ipv6-replay "$(echo "$out" | grep -m1 -E 'ERROR|runtime error|SUMMARY' || echo "$out" | tail -1)"
        rc=1
    fi
else
    fail stack-san/fuzz-wire-ipv6-replay "$B/stack/fuzz_wire_ipv6_replay missing"
    rc=1
fi

B=$B tests/stack/check-freestanding.sh || rc=1
exit $rc
