# Shared helpers for shell test suites: source it, then call pass/fail/skip.
# Each prints one result line that tests/run-all.sh counts.
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: ${2:-failed}"; }
skip() { echo "SKIP $1: ${2:-skipped}"; }
need_root() { [ "$(id -u)" -eq 0 ]; }
# need_cmd NAME...: true when every command exists.
need_cmd() { local c; for c in "$@"; do command -v "$c" >/dev/null 2>&1 || return 1; done; }
