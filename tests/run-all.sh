#!/usr/bin/env bash
# Runs each test suite given as an argument (an executable script), echoes its
# output, and counts its result lines:
#   PASS <name>            a test passed
#   FAIL <name>: <why>     a test failed
#   SKIP <name>: <why>     a test could not run here (missing root, package...)
# A suite that exits non-zero without printing FAIL counts as one failure.
# Ends with the single line "N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/.."
pass=0 fail=0 skip=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for suite in "$@"; do
    echo "== $suite"
    "$suite" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    p=$(grep -c '^PASS ' "$log"); f=$(grep -c '^FAIL ' "$log"); s=$(grep -c '^SKIP ' "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $suite: suite exited with status $rc"
        f=1
    fi
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
