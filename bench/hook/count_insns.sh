#!/usr/bin/env bash
# bench/hook/count_insns.sh — instructions one hooked getppid() executes,
# from the libc wrapper's first instruction to its return (the trampoline,
# the entry, the dispatcher and the system call itself), counted by
# single-stepping under gdb: deterministic, unlike timings on a loaded
# machine.  (callgrind cannot be used: valgrind does not let its client map
# page 0, so the page-0 mode could not run under it.)
#
#   native                        the libc wrapper alone
#   pass-through                  libusnet-trace.so without a tracer (no
#                                 handler): the stub's fast path (the
#                                 default) or page 0's (--hook page0), and
#                                 the entry with it off (USNET_HOOK_FAST=off)
#   handler answers / passes /    bench/hook/answer_getppid.so
#   not in its interest set       (USNET_BENCH_HANDLER)
#
# The second call is counted: the first one also allocates the thread's hook
# stack.  USNET_BENCH_LIB and USNET_BENCH_DIR count another build's library
# and helpers.
set -u
cd "$(dirname "$0")/../.."
B=build
H=${USNET_BENCH_DIR:-$B/hook/bench}
LIB=${USNET_BENCH_LIB:-$PWD/$B/libusnet-trace.so}
command -v gdb >/dev/null || { echo "bench/hook: gdb is not installed" >&2; exit 1; }
for f in "$LIB" "$H/getppid_loop" "$H/answer_getppid.so"; do
    [ -e "$f" ] || { echo "bench/hook: $f missing: run make first" >&2; exit 1; }
done
script=$(mktemp /tmp/usnet-hook-insns.XXXXXX.py)
trap 'rm -f "$script"' EXIT
cat >"$script" <<'PY'
import gdb
gdb.execute("set pagination off")
gdb.execute("set confirm off")
gdb.execute("break main")
gdb.execute("run 3")
gdb.execute("break getppid")
gdb.execute("continue")
gdb.execute("continue")
ret = int(gdb.parse_and_eval("*(unsigned long *)$sp"))
n = 0
while n < 100000:
    gdb.execute("stepi", to_string=True)
    n += 1
    if int(gdb.parse_and_eval("$pc")) == ret:
        break
print("INSNS", n)
gdb.execute("kill")
PY
count() {   # count PRELOAD [ENV...]: instructions of one getppid (PRELOAD may be empty)
    local wrapper="" preload=$1
    shift
    [ -n "$preload" ] && wrapper="set exec-wrapper env LD_PRELOAD=$preload USNET_TRACE_HOOK=auto $*"
    timeout 120 gdb -q -batch -ex "$wrapper" -x "$script" "$H/getppid_loop" 2>/dev/null |
        awk '$1 == "INSNS" { print $2 }'
}
ANSWER=$(cd "$H" && pwd)/answer_getppid.so
printf '%-42s %s\n' "getppid" "instructions"
printf '%-42s %s\n' "native" "$(count "")"
printf '%-42s %s\n' "hooked (auto: stubs), pass-through" "$(count "$LIB")"
printf '%-42s %s\n' "  the same, USNET_HOOK_FAST=off" "$(count "$LIB" USNET_HOOK_FAST=off)"
printf '%-42s %s\n' "hooked (page0), pass-through" "$(count "$LIB" USNET_TRACE_HOOK=page0)"
printf '%-42s %s\n' "  the same, USNET_HOOK_FAST=off" "$(count "$LIB" USNET_TRACE_HOOK=page0 USNET_HOOK_FAST=off)"
printf '%-42s %s\n' "hooked, the handler answers" "$(count "$ANSWER")"
printf '%-42s %s\n' "hooked, the handler passes it" "$(count "$ANSWER" USNET_BENCH_HANDLER=pass)"
printf '%-42s %s\n' "hooked, not in the handler's interest set" "$(count "$ANSWER" USNET_BENCH_HANDLER=uninterested)"
