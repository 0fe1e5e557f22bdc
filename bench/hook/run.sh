#!/usr/bin/env bash
# bench/hook/run.sh — what the system-call hook costs, every mode side by
# side, measured in one run (a benchmark, not a test: it prints numbers and
# ratios, it does not judge).
#
# Modes (rows): native; auto (the default: each site jumps to a stub of its
# own, no page 0, red zone kept); rewrite+sud (the same with Syscall User
# Dispatch on, as auto is when something could not be rewritten); page0
# (the opt-in page-0 trampoline, with SUD); sud (Syscall User Dispatch
# alone); a libc-symbol LD_PRELOAD wrapper of getppid (the familiar
# baseline; it does nothing to dd's read/write).  Columns:
#
#   getppid +ns    hooked minus native getppid() within one process
#                  (getppid_pair: batches in turns; native goes through
#                  usnet_hook_syscall, which is never rewritten), median
#                  over ROUNDS processes.  With SUD on, the native calls
#                  pay SUD's cost too: the next column shows it.
#   vs process     ns per getppid() in a process of its own, minus the same
#                  in a process without any hook (best of ROUNDS each).
#   dd             dd if=/dev/zero of=/dev/null bs=64 count=DD_COUNT, wall
#                  time / native's, best of 3 in turns (sud: a tenth of the
#                  count, against native's time for that count).
#   py warm/cold   python3 -c pass start-up in ms (STARTS runs averaged, best
#                  of 3): the hook's plan cache warm, and with no cache
#                  (every mapping disassembled).
#
# Then the default mode's other paths: a handler that passes getppid, one
# whose interest set leaves it out, the fast path off, the hook's round trip
# without a system call, and a 64-byte read/write pair (dd's calls).
#
# Environment: ROUNDS (5), CALLS (1000000), DD_COUNT (2000000), STARTS (20);
# USNET_BENCH_LIB and USNET_BENCH_DIR measure another build's
# libusnet-trace.so and helpers (modes that build lacks show what it does
# instead).
set -u
cd "$(dirname "$0")/../.."
B=build
H=${USNET_BENCH_DIR:-$B/hook/bench}
LIB=${USNET_BENCH_LIB:-$PWD/$B/libusnet-trace.so}
ROUNDS=${ROUNDS:-5}
CALLS=${CALLS:-1000000}
DD_COUNT=${DD_COUNT:-2000000}
STARTS=${STARTS:-20}
MODES="auto rewrite+sud page0 sud"
# the distribution's interpreter, not a version-manager shim (which would
# time its own shell scripts)
PY=$(command -v /usr/bin/python3 || command -v python3)

for f in "$LIB" "$H/getppid_loop" "$H/getppid_pair" "$H/wrap_getppid.so" "$H/answer_getppid.so"; do
    [ -e "$f" ] || { echo "bench/hook: $f missing: run make first" >&2; exit 1; }
done
WRAP=$(cd "$H" && pwd)/wrap_getppid.so
ANSWER=$(cd "$H" && pwd)/answer_getppid.so

min() { awk 'NR == 1 || $1 < m { m = $1 } END { printf "%.1f", m }'; }
median() { sort -n | awk '{ a[NR] = $1 } END { printf "%.1f", NR ? a[int((NR + 1) / 2)] : 0 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
delta() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f", a - b }'; }
hooked() {   # hooked MODE CMD...: CMD under the trace library in MODE
    local mode=$1; shift
    USNET_TRACE_HOOK=$mode LD_PRELOAD=$LIB "$@"
}

# --- 1. getppid ---
declare -A pairs loops ns
for ((r = 0; r < ROUNDS; r++)); do
    loops[native]+="$("$H/getppid_loop" "$CALLS") "
    loops[wrapper]+="$(LD_PRELOAD=$WRAP "$H/getppid_loop" "$CALLS") "
    for mode in $MODES; do
        # SUD alone traps every call: fewer of them
        n=$CALLS; [ "$mode" = sud ] && n=$((CALLS / 50))
        pairs[$mode]+="$(hooked "$mode" "$H/getppid_pair" $((n / 200)) 100)|"
        loops[$mode]+="$(hooked "$mode" "$H/getppid_loop" "$n") "
    done
    pairs[pass]+="$(USNET_BENCH_HANDLER=pass LD_PRELOAD=$ANSWER "$H/getppid_pair" $((CALLS / 200)) 100)|"
    pairs[unint]+="$(USNET_BENCH_HANDLER=uninterested LD_PRELOAD=$ANSWER "$H/getppid_pair" $((CALLS / 200)) 100)|"
    pairs[off]+="$(USNET_HOOK_FAST=off hooked auto "$H/getppid_pair" $((CALLS / 200)) 100)|"
    pairs[io]+="$(hooked auto "$H/getppid_pair" $((CALLS / 200)) 100 rw)|"
    loops[hook-only]+="$(LD_PRELOAD=$ANSWER "$H/getppid_loop" $((CALLS * 10))) "
done
# A pair's figure: the median over rounds of (hooked - native) within each
# process: the machine's state (other tenants, caches) changes between
# processes far more than within one.
pair_delta() { echo "$1" | tr '|' '\n' | grep . | awk '{ print $2 - $1 }' | median; }
for k in "${!pairs[@]}"; do ns[$k-pair]=$(pair_delta "${pairs[$k]}"); done
for k in "${!loops[@]}"; do ns[$k-loop]=$(echo "${loops[$k]}" | tr ' ' '\n' | grep . | min); done

# --- 2. dd, system-call heavy ---
secs() {   # secs CMD...: wall seconds of one run
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null 2>&1
    t1=$(date +%s%N)
    awk -v d=$((t1 - t0)) 'BEGIN { printf "%.3f\n", d / 1e9 }'
}
declare -A dd
for ((r = 0; r < 3; r++)); do
    dd[native]+="$(secs dd if=/dev/zero of=/dev/null bs=64 count="$DD_COUNT") "
    dd[native10]+="$(secs dd if=/dev/zero of=/dev/null bs=64 count=$((DD_COUNT / 10))) "
    dd[wrapper]+="$(LD_PRELOAD=$WRAP secs dd if=/dev/zero of=/dev/null bs=64 count="$DD_COUNT") "
    for mode in $MODES; do
        if [ "$mode" = sud ]; then
            dd[$mode]+="$(hooked "$mode" secs dd if=/dev/zero of=/dev/null bs=64 count=$((DD_COUNT / 10))) "
        else
            dd[$mode]+="$(hooked "$mode" secs dd if=/dev/zero of=/dev/null bs=64 count="$DD_COUNT") "
        fi
    done
done
best3() { echo "$1" | tr ' ' '\n' | grep . | awk 'NR == 1 || $1 < m { m = $1 } END { printf "%.3f", m }'; }
for k in "${!dd[@]}"; do dd[$k]=$(best3 "${dd[$k]}"); done

# --- 3. start-up, ms per run ---
starts() {   # starts CMD...: ms per run, averaged over STARTS runs
    local t0 t1 i
    t0=$(date +%s%N)
    for ((i = 0; i < STARTS; i++)); do "$@" >/dev/null 2>&1; done
    t1=$(date +%s%N)
    awk -v d=$((t1 - t0)) -v n="$STARTS" 'BEGIN { printf "%.2f\n", d / n / 1e6 }'
}
declare -A st
for mode in $MODES; do hooked "$mode" "$PY" -c pass >/dev/null 2>&1; done   # warm the cache
for ((r = 0; r < 3; r++)); do
    st[native]+="$(starts "$PY" -c pass) "
    st[wrapper]+="$(LD_PRELOAD=$WRAP starts "$PY" -c pass) "
    st[true-native]+="$(starts /bin/true) "
    st[true-auto]+="$(hooked auto starts /bin/true) "
    for mode in $MODES; do
        st[$mode]+="$(hooked "$mode" starts "$PY" -c pass) "
    done
    st[auto-cold]+="$(USNET_HOOK_CACHE=off hooked auto starts "$PY" -c pass) "
    st[page0-cold]+="$(USNET_HOOK_CACHE=off hooked page0 starts "$PY" -c pass) "
done
for k in "${!st[@]}"; do st[$k]=$(echo "${st[$k]}" | tr ' ' '\n' | grep . | min); done

# --- the table ---
printf '%-13s %12s %12s %8s %16s\n' "mode" "getppid +ns" "vs process" "dd" "py warm / cold"
printf '%-13s %12s %12s %8s %16s\n' "-------------" "------------" "------------" "--------" "----------------"
printf '%-13s %12s %9s ns %8s %16s\n' "native" "" "${ns[native-loop]}" "${dd[native]}s" "${st[native]} ms"
for mode in $MODES; do
    ddr=$(ratio "${dd[$mode]}" "${dd[native]}")
    [ "$mode" = sud ] && ddr="$(ratio "${dd[$mode]}" "${dd[native10]}")"
    cold=""
    [ -n "${st[$mode-cold]:-}" ] && cold=" / ${st[$mode-cold]}"
    printf '%-13s %9s ns %9s ns %8s %16s\n' "$mode" "$(delta "${ns[$mode-pair]}" 0)" \
        "$(delta "${ns[$mode-loop]}" "${ns[native-loop]}")" "$ddr" "${st[$mode]}$cold ms"
done
printf '%-13s %12s %9s ns %8s %16s\n' "LD_PRELOAD" "" "$(delta "${ns[wrapper-loop]}" "${ns[native-loop]}")" \
    "$(ratio "${dd[wrapper]}" "${dd[native]}")" "${st[wrapper]} ms"
echo
printf '%-52s %9s ns\n' "auto, a handler that passes getppid (+ns)" "$(delta "${ns[pass-pair]}" 0)"
printf '%-52s %9s ns\n' "auto, getppid not in the handler's interest set" "$(delta "${ns[unint-pair]}" 0)"
printf '%-52s %9s ns\n' "auto, USNET_HOOK_FAST=off" "$(delta "${ns[off-pair]}" 0)"
printf '%-52s %9s ns\n' "auto, a 64-byte read or write (dd's calls)" "$(delta "${ns[io-pair]}" 0)"
printf '%-52s %9s ns\n' "hook round trip alone (the handler answers getppid)" "${ns[hook-only-loop]}"
printf '%-52s %9s ms\n' "start /bin/true: native, auto" "${st[true-native]} / ${st[true-auto]}"
