#!/usr/bin/env bash
# Tests of the system-call hook (src/hook/) through `usnet trace`.
#
# The probe (tests/hook/probe.c) makes a known number of getppid calls by one
# route each (libc, syscall(), inline syscall, dlopen, JIT, threads, clone,
# vfork+exec, posix_spawn, fork, signal handlers, ...); `usnet trace -c` must
# count exactly that many, in each hook mode where the route makes sense
# (auto, the default: stubs; rewrite: stubs only; rewrite+sud; sud; page0:
# the opt-in page-0 trampoline).  Then: the contract used directly
# (api_probe), bad pointers and unassigned call numbers, a stray call into
# page 0, the per-call line format, agreement with strace -f -c, a Go
# program's raw calls, real programs' output unchanged under the hook, what
# a program must not notice (semantics.c: null reads fault, the red zone
# survives, mlockall returns; a Java program's implicit null checks), and
# running as a normal user; and the rewriter's decoder against objdump.
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh

B=build
USNET=$B/usnet
PROBE=$B/hook/tests/probe
RAWLIB=$PWD/$B/hook/tests/libhookraw.so
LIB=$PWD/$B/libusnet-trace.so
T=${HOOK_TEST_TIMEOUT:-30}

tmp=$(mktemp -d /tmp/usnet-hook-test.$$.XXXXXX)
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT

for f in "$USNET" "$PROBE" "$RAWLIB" "$LIB"; do
    if [ ! -e "$f" ]; then
        fail hook-build "$f is missing (run make)"
        exit 0
    fi
done

# count NAME FILE: the calls column of NAME in a `usnet trace -c` table.
count() { awk -v n="$1" '$NF == n { print $1; found=1 } END { if (!found) print 0 }' "$2"; }
# errors NAME FILE: the errors column (0 when none).
errors() { awk -v n="$1" '$NF == n { print (NF == 3 ? $2 : 0); found=1 } END { if (!found) print 0 }' "$2"; }

# expect_count TEST MODE EXPECTED PROBE-ARGS...
expect_count() {
    local name=$1 mode=$2 want=$3; shift 3
    local out=$tmp/$name.table err=$tmp/$name.err rc
    timeout "$T" "$USNET" trace -c -o "$out" --hook "$mode" -- "$PROBE" "$@" 2>"$err"
    rc=$?
    if [ "$rc" -eq 77 ]; then
        skip "$name" "the CPU lacks the feature"
        return
    fi
    if [ "$rc" -ne 0 ]; then
        fail "$name" "exit status $rc: $(head -c 300 "$err" | tr '\n' ' ')"
        return
    fi
    local got
    got=$(count getppid "$out")
    if [ "$got" = "$want" ]; then
        pass "$name"
    else
        fail "$name" "counted $got getppid calls, expected $want"
    fi
}

MODES="auto rewrite rewrite+sud sud page0"

# --- every route, counted exactly, in every mode ---
for mode in $MODES; do
    expect_count "hook-$mode-libc" "$mode" 100 libc 100
    expect_count "hook-$mode-syscall" "$mode" 100 syscall 100
    expect_count "hook-$mode-inline" "$mode" 100 inline 100
    expect_count "hook-$mode-dlopen" "$mode" 100 dlopen "$RAWLIB" 100
    # JIT: each generated call is checked against a libc getppid (2 per round)
    if [ "$mode" = rewrite ] || [ "$mode" = auto ]; then
        skip "hook-$mode-jit-rwx" "code written into RWX memory after mapping it is only seen by SUD (rewrite+sud, sud, page0)"
    else
        expect_count "hook-$mode-jit-rwx" "$mode" 200 jit-rwx 100
    fi
    expect_count "hook-$mode-jit-wx" "$mode" 200 jit-wx 100
    expect_count "hook-$mode-threads" "$mode" 400 threads 4 100
    # child N + parent N + one libc getppid in the parent
    expect_count "hook-$mode-clone-vm" "$mode" 201 clone-vm 100
    expect_count "hook-$mode-vfork-exec" "$mode" 201 vfork-exec 100
    expect_count "hook-$mode-posix-spawn" "$mode" 201 spawn 100
    # the hook puts LD_PRELOAD and USNET_* back into an emptied environment
    expect_count "hook-$mode-exec-noenv" "$mode" 100 exec-noenv 100
    expect_count "hook-$mode-fork" "$mode" 201 fork 100
    expect_count "hook-$mode-signals" "$mode" 20 signals 20
    expect_count "hook-$mode-redzone" "$mode" 100 redzone 100
    # the program's own signal mask survives SUD's signal return
    expect_count "hook-$mode-sigmask" "$mode" 10 sigmask 10
    # AVX2 then AVX-512 (when present) rounds
    if grep -qw avx512f /proc/cpuinfo; then
        expect_count "hook-$mode-vector" "$mode" 200 vector 100
    else
        expect_count "hook-$mode-vector" "$mode" 100 vector 100
    fi
    # vector state across the hook's own vector-using code (XSAVE/XRSTOR)
    expect_count "hook-$mode-vector-rewrite" "$mode" 50 vector-rewrite 50
done

# --- the contract used directly: answer, change arguments, after_pass,
# mode name, call_saved; the hook linked into the program itself ---
API=$B/hook/tests/api_probe
for mode in $MODES; do
    name=hook-$mode-api
    if [ ! -x "$API" ]; then
        fail "$name" "$API is missing (run make test)"
        continue
    fi
    out=$(timeout "$T" "$API" "$mode" 2>&1)
    rc=$?
    if [ "$rc" -eq 0 ] && [ "$out" = "$(printf 'redirected\napi ok')" ]; then
        pass "$name"
    else
        fail "$name" "status $rc: $(echo "$out" | head -c 200 | tr '\n' ' ')"
    fi
done

# --- bad pointers in calls the hook looks into: Linux's errors, no crash ---
want=$(timeout "$T" "$PROBE" bad-pointers 2>&1; echo "status $?")
for mode in $MODES; do
    name=hook-$mode-bad-pointers
    got=$(timeout "$T" "$USNET" trace -c -o "$tmp/bad.table" --hook "$mode" -- "$PROBE" bad-pointers 2>&1; echo "status $?")
    # the calls after the failed execve are still seen (SUD back on)
    clone3=$(count clone3 "$tmp/bad.table")
    if [ "$got" = "$want" ] && [ "$clone3" = 1 ]; then
        pass "$name"
    else
        fail "$name" "'$(echo $got)' differs from '$(echo $want)', or clone3 counted $clone3 times, not 1"
    fi
done

# --- SIGSEGV: calls beyond the trampoline get Linux's answers, the
# program's own handler and the default action behave as without the hook ---
want=$( (timeout "$T" "$PROBE" segv 2>/dev/null; echo "status $?") 2>/dev/null)
for mode in $MODES; do
    name=hook-$mode-segv
    got=$( (USNET_TRACE_HOOK=$mode LD_PRELOAD=$LIB timeout "$T" "$PROBE" segv 2>/dev/null; echo "status $?") 2>/dev/null)
    if [ "$got" = "$want" ] && [ "${want##*status }" = 139 ]; then
        pass "$name"
    else
        fail "$name" "'$(echo $got)' differs from '$(echo $want)' (status 139 wanted)"
    fi
done

# probe_self NAME FAST MODE ARGS...: the probe, which checks itself, under
# the preloaded hook (USNET_HOOK_FAST=FAST, "" for the default); exit 0 or
# 77 (not on this CPU) passes.
probe_self() {
    local name=$1 fast=$2 mode=$3 out rc
    shift 3
    out=$(USNET_HOOK_FAST=$fast USNET_TRACE_HOOK=$mode LD_PRELOAD=$LIB timeout "$T" "$PROBE" "$@" 2>&1)
    rc=$?
    if [ "$rc" -eq 0 ] || [ "$rc" -eq 77 ]; then
        pass "$name"
    else
        fail "$name" "status $rc: $(echo "$out" | head -c 200 | tr '\n' ' ')"
    fi
}

# --- the same routes through the pure pass-through fast path (no tracer
# callbacks: the stub, or the entry, issues the call itself); the probe
# checks itself ---
for mode in $MODES; do
    for t in "signals 20" "redzone 100" "vector 100" "vector-rewrite 20" "threads 4 100" \
             "clone-vm 50" "vfork-exec 10" "spawn 10" "fork 10" "jit-wx 10" "sigmask 10"; do
        set -- $t
        probe_self "hook-$mode-fast-$1" "" "$mode" "$@"
    done
done

# --- the same routes with the fast path off (every call through the entry;
# what happens on CPUs without BMI2), and (page0) with it on but without its
# site cache (every site looked up in the set of sites) ---
for mode in auto rewrite+sud page0; do
    for t in "off signals 20" "off redzone 100" "off threads 4 100" "off clone-vm 50" \
             "off vfork-exec 10" "off fork 10" "off sigmask 10" "off vector 100" \
             "nocache signals 20" "nocache threads 4 100" "nocache fork 10" "nocache jit-wx 10"; do
        set -- $t
        fast=$1
        shift
        probe_self "hook-$mode-fast-$fast-$1" "$fast" "$mode" "$@"
    done
done

# --- the interest set: calls outside it skip the handler and after_pass,
# changed while running, from several threads; flags kept on every path ---
IPROBE=$B/hook/tests/interest_probe
for fast in on off nocache; do
    for mode in $MODES; do
        [ $mode = sud ] && [ $fast = nocache ] && continue
        name=hook-$mode-interest-fast-$fast
        if [ ! -x "$IPROBE" ]; then
            fail "$name" "$IPROBE is missing (run make test)"
            continue
        fi
        out=$(USNET_HOOK_FAST=$fast timeout "$T" "$IPROBE" "$mode" 2>&1)
        rc=$?
        if [ "$rc" -eq 0 ] && [ "$out" = "interest ok" ]; then
            pass "$name"
        else
            fail "$name" "status $rc: $(echo "$out" | head -c 200 | tr '\n' ' ')"
        fi
    done
done

# --- usnet trace with an interest set (USNET_TRACE_CALLS): only those calls
# are counted, exactly; the others (rt_sigreturn, read, ... in the signal
# test) take the fast path ---
for mode in $MODES; do
    name=hook-$mode-trace-calls
    USNET_TRACE_CALLS=getppid,lseek timeout "$T" "$USNET" trace -c -o "$tmp/calls.table" --hook "$mode" -- \
        "$PROBE" mix 20 >/dev/null 2>"$tmp/calls.err"
    rc=$?
    got="$(count getppid "$tmp/calls.table") $(count lseek "$tmp/calls.table") $(count write "$tmp/calls.table") $(count chdir "$tmp/calls.table")"
    total=$(awk '$NF == "total" { print $1 }' "$tmp/calls.table")
    if [ "$rc" -eq 0 ] && [ "$got" = "20 20 0 0" ] && [ "$total" = 40 ]; then
        pass "$name"
    else
        fail "$name" "status $rc, getppid/lseek/write/chdir counted $got, total $total: $(head -c 200 "$tmp/calls.err" | tr '\n' ' ')"
    fi
    USNET_TRACE_CALLS=getppid expect_count "hook-$mode-trace-calls-signals" "$mode" 20 signals 20
    USNET_TRACE_CALLS=getppid expect_count "hook-$mode-trace-calls-sigmask" "$mode" 10 sigmask 10
done
name=hook-trace-calls-unknown
out=$(USNET_TRACE_CALLS=getppid,nosuchcall timeout "$T" "$USNET" trace -c -- "$PROBE" inline 1 2>&1)
rc=$?
if [ "$rc" -ne 0 ] && echo "$out" | grep -q "USNET_TRACE_CALLS names an unknown system call: nosuchcall"; then
    pass "$name"
else
    fail "$name" "status $rc: $(echo "$out" | head -c 200 | tr '\n' ' ')"
fi

# --- the same through `usnet trace -e trace=LIST`; a bad list is refused
# before the program starts ---
name=hook-trace-e
timeout "$T" "$USNET" trace -c -e trace=getppid,8 -o "$tmp/e.table" -- "$PROBE" mix 20 >/dev/null 2>"$tmp/e.err"
rc=$?
got="$(count getppid "$tmp/e.table") $(count lseek "$tmp/e.table") $(count write "$tmp/e.table")"
if [ "$rc" -eq 0 ] && [ "$got" = "20 20 0" ]; then
    pass "$name"
else
    fail "$name" "status $rc, getppid/lseek/write counted $got: $(head -c 200 "$tmp/e.err" | tr '\n' ' ')"
fi
name=hook-trace-e-unknown
out=$(timeout "$T" "$USNET" trace -e trace=getppid,nosuchcall -- /bin/echo started 2>&1)
rc=$?
if [ "$rc" -eq 2 ] && [ "$out" = "usnet trace: -e: unknown system call 'nosuchcall'" ]; then
    pass "$name"
else
    fail "$name" "status $rc: $(echo "$out" | head -c 200 | tr '\n' ' ')"
fi

# --- a null function pointer: without page 0, the program dies of SIGSEGV
# as it would without the hook ---
want=$( (timeout "$T" "$PROBE" null-call 2>/dev/null; echo "status $?") 2>/dev/null)
for mode in auto rewrite rewrite+sud sud; do
    name=hook-$mode-null-call
    got=$( (USNET_TRACE_HOOK=$mode LD_PRELOAD=$LIB timeout "$T" "$PROBE" null-call 2>/dev/null; echo "status $?") 2>/dev/null)
    if [ "$got" = "$want" ] && [ "${want##*status }" = 139 ]; then
        pass "$name"
    else
        fail "$name" "'$(echo $got)' differs from '$(echo $want)' (status 139 wanted)"
    fi
done

# --- page0: a stray call into page 0 is reported with its address, not run ---
for mode in page0; do
    name=hook-$mode-null-call
    timeout "$T" "$USNET" trace -c -o "$tmp/null.table" --hook "$mode" -- "$PROBE" null-call 2>"$tmp/null.err"
    rc=$?
    if [ "$rc" -eq 134 ] && grep -q "call into page 0 from 0x[0-9a-f]*, which is not a rewritten system call" "$tmp/null.err"; then
        pass "$name"
    else
        fail "$name" "exit status $rc, stderr: $(head -c 200 "$tmp/null.err" | tr '\n' ' ')"
    fi
done

# ... also from code whose bytes are those of a rewritten site (`call
# *%rax`) but which never was one, on the fast path (getpid, no handler)
# and through the entry (mmap) ---
for mode in page0; do
    for t in "on 39" "on 9" "nocache 39"; do
        set -- $t
        fast=$1 nr=$2
        name=hook-$mode-stray-$nr-fast-$fast
        # (in a subshell: the shell's own "Aborted" line stays out of the output)
        (USNET_HOOK_FAST=$fast USNET_TRACE_HOOK=$mode LD_PRELOAD=$LIB timeout "$T" "$PROBE" stray $nr 2>"$tmp/stray.err"; exit $?) 2>/dev/null
        rc=$?
        if [ "$rc" -eq 134 ] && grep -q "call into page 0 from 0x[0-9a-f]*, which is not a rewritten system call" "$tmp/stray.err"; then
            pass "$name"
        else
            fail "$name" "exit status $rc, stderr: $(head -c 200 "$tmp/stray.err" | tr '\n' ' ')"
        fi
    done
done

# --- one line per call without -c ---
for mode in $MODES; do
    name=hook-$mode-trace-lines
    rm -f "$tmp/lines"
    timeout "$T" "$USNET" trace -o "$tmp/lines" --hook "$mode" -- "$PROBE" inline 7 >/dev/null 2>&1
    n=$(grep -c "^\[[0-9]*\] getppid(.*) = [0-9][0-9]*$" "$tmp/lines" 2>/dev/null)
    if [ "${n:-0}" -ge 7 ] && grep -q "exit_group(0, .*) = ?" "$tmp/lines"; then
        pass "$name"
    else
        fail "$name" "expected 7+ getppid lines and an exit_group line, got: $(head -3 "$tmp/lines" 2>/dev/null | tr '\n' ' ')"
    fi
done

# --- the front end refuses bad usage clearly ---
name=hook-trace-usage
out=$("$USNET" trace --hook bogus -- true 2>&1); rc1=$?
"$USNET" trace -c 2>/dev/null; rc2=$?
if [ "$rc1" -eq 2 ] && [ "$rc2" -eq 2 ] && echo "$out" | grep -q "must be auto, rewrite, rewrite+sud, sud or page0"; then
    pass "$name"
else
    fail "$name" "status $rc1/$rc2: $out"
fi

# --- usnet trace -c agrees with strace -f -c ---
if need_cmd strace; then
    timeout "$T" strace -f -c -o "$tmp/strace.txt" "$PROBE" mix 50 >/dev/null 2>&1
    for mode in $MODES; do
        name=hook-$mode-vs-strace
        timeout "$T" "$USNET" trace -c -o "$tmp/mix.table" --hook "$mode" -- "$PROBE" mix 50 2>/dev/null
        bad=""
        for sc in getppid write chdir lseek; do
            s_calls=$(awk -v n=$sc '$NF == n { print $4 }' "$tmp/strace.txt")
            s_err=$(awk -v n=$sc '$NF == n { print (NF == 6 ? $5 : 0) }' "$tmp/strace.txt")
            u_calls=$(count $sc "$tmp/mix.table")
            u_err=$(errors $sc "$tmp/mix.table")
            [ "$s_calls" = "$u_calls" ] && [ "${s_err:-0}" = "${u_err:-0}" ] ||
                bad="$bad $sc: strace $s_calls/${s_err:-0}, usnet $u_calls/${u_err:-0};"
        done
        if [ -z "$bad" ]; then pass "$name"; else fail "$name" "calls/errors differ:$bad"; fi
    done
else
    skip hook-vs-strace "strace is not installed"
fi

# --- Go: the runtime's own SYSCALL instructions, goroutines on several threads ---
if need_cmd go; then
    GODIR=$PWD/$B/hook/go
    mkdir -p "$GODIR"
    if [ ! -x "$GODIR/goprobe" ] || [ tests/hook/goprobe/main.go -nt "$GODIR/goprobe" ]; then
        (cd tests/hook/goprobe && GOCACHE=$GODIR/cache GOPATH=$GODIR/path GO111MODULE=off \
            GOPROXY=off GOFLAGS=-mod=mod CGO_ENABLED=1 timeout 300 go build -o "$GODIR/goprobe" main.go) \
            >"$tmp/go-build.log" 2>&1
    fi
    if [ -x "$GODIR/goprobe" ]; then
        for mode in $MODES; do
            name=hook-$mode-go
            out=$(timeout "$T" "$USNET" trace -c -o "$tmp/go.table" --hook "$mode" -- "$GODIR/goprobe" 1000 2>&1)
            got=$(count getppid "$tmp/go.table")
            # RawSyscall N times, each checked against os.Getppid (another raw call)
            if [ "$out" = ok ] && [ "$got" = 2000 ]; then pass "$name"; else fail "$name" "output '$out', counted $got getppid, expected 2000"; fi
        done
        # goroutines making raw calls with their small stacks nearly full,
        # traced line by line (the handler's largest frames): the hook must
        # run it on its own stack
        for mode in $MODES; do
            name=hook-$mode-go-small-stacks
            out=$(timeout "$T" "$USNET" trace -o "$tmp/go.lines" --hook "$mode" -- "$GODIR/goprobe" deep 40 3 2>&1)
            rc=$?
            got=$(grep -c '^\[[0-9]*\] getppid(' "$tmp/go.lines")
            # 40 goroutines x 3 rounds x 401 levels, plus one os.Getppid
            if [ "$rc" -eq 0 ] && [ "$out" = ok ] && [ "$got" = 48121 ]; then
                pass "$name"
            else
                fail "$name" "status $rc, output '$(echo "$out" | head -c 200 | tr '\n' ' ')', $got getppid lines, expected 48121"
            fi
        done
    else
        fail hook-go-build "go build failed: $(tail -3 "$tmp/go-build.log" | tr '\n' ' ')"
    fi
else
    skip hook-go "golang-go is not installed"
fi

# --- the rewriter's decoder (src/hook/hook_decode.c) agrees with GNU objdump
# on every instruction of real code: lengths, branches and their targets,
# rip-relative operands; AVX-512, XOP, PadLock and data inside code included ---
DCHECK=$B/hook/tests/decode_check
if ! need_cmd objdump; then
    skip hook-decode "objdump (binutils) is not installed"
elif [ ! -x "$DCHECK" ]; then
    fail hook-decode "$DCHECK is missing (run make test)"
else
    for f in /lib/x86_64-linux-gnu/libc.so.6 /lib64/ld-linux-x86-64.so.2 /usr/bin/python3 \
             /usr/lib/x86_64-linux-gnu/libcrypto.so.3 /usr/lib/x86_64-linux-gnu/libstdc++.so.6 \
             "${GODIR:-/nonexistent}/goprobe"; do
        [ -e "$f" ] || continue
        f=$(readlink -f "$f")
        name=hook-decode-$(basename "$f")
        out=$(timeout 120 "$DCHECK" "$f" 2>&1)
        rc=$?
        if [ "$rc" -eq 0 ] && echo "$out" | grep -q ' 0 disagreements'; then
            pass "$name"
        else
            fail "$name" "status $rc: $(echo "$out" | head -4 | tr '\n' ' ' | head -c 600)"
        fi
    done
fi

# --- the decoder's fuzz corpus replayed under ASan/UBSan (fuzz/fuzz_hook_decode.c:
# never reads past the instruction it returns, never more than 15 bytes) ---
DREPLAY=$B/hook/fuzz_decode_replay
if [ -x "$DREPLAY" ] && out=$(timeout 60 "$DREPLAY" fuzz/decode-corpus/* 2>&1); then
    pass hook-decode-fuzz-replay
else
    fail hook-decode-fuzz-replay "$(echo "${out:-$DREPLAY is missing (run make test)}" | tail -3 | tr '\n' ' ')"
fi

# --- real programs behave the same under a pass-through hook ---
printf 'int main(void) { return 42; }\n' >"$tmp/cc.c"
run_real() {   # run_real MODE|native CMD...: output and status in one string
    local mode=$1; shift
    if [ "$mode" = native ]; then
        "$@" 2>&1
    else
        USNET_TRACE_HOOK=$mode LD_PRELOAD=$LIB timeout "$T" "$@" 2>&1
    fi
    echo "status $?"
}
real_ls() { ls -l --time-style=+ /usr/share/doc/bash; }
# the distribution's interpreter (a version-manager shim would add its own processes)
PY=$(command -v /usr/bin/python3 || command -v python3)
real_python3() { "$PY" -c "import hashlib, json; print(json.dumps([hashlib.sha256(b'usnet').hexdigest(), sum(range(10**5))]))"; }
real_git() { git --version; }
real_curl() { curl -s file:///etc/hostname; }
real_gcc() { rm -f "$tmp/cc.out"; gcc -o "$tmp/cc.out" "$tmp/cc.c" && "$tmp/cc.out"; echo "program status $?"; }
real_bash() { bash -c 'seq 1 2000 | sort -r | head -3 | tr 0-9 a-j'; }
for mode in $MODES; do
    for prog in ls python3 git curl gcc bash; do
        name=hook-$mode-real-$prog
        if ! need_cmd "$prog"; then
            skip "$name" "$prog is not installed"
            continue
        fi
        want=$(run_real native "real_$prog")
        # the functions run in a bash that is itself under the hook
        got=$(run_real "$mode" bash -c "$(declare -f "real_$prog"); tmp=$tmp; PY=$PY; real_$prog")
        if [ "$want" = "$got" ]; then
            pass "$name"
        else
            fail "$name" "output differs: '$(echo "$want" | head -c 120)' vs '$(echo "$got" | head -c 120)'"
        fi
    done
done

# --- what a program must not notice (tests/hook/semantics.c), in every mode
# but the opt-in page0 (whose hazards docs/hook.md lists) ---
SEM=$B/hook/tests/semantics
# sem_run MODE|native|run CMD...: output and status in one string ("run":
# under `usnet run` with the kernel provider and the default hook)
sem_run() {
    local mode=$1; shift
    case $mode in
        native) timeout "$T" "$@" 2>&1 ;;
        run) timeout "$T" "$USNET" run --provider kernel -- "$@" 2>&1 ;;
        *) USNET_TRACE_HOOK=$mode LD_PRELOAD=$LIB timeout "$T" "$@" 2>&1 ;;
    esac
    echo "status $?"
}
if [ -x "$SEM" ]; then
    # a null read faults, and the program's SIGSEGV handler sees it as it
    # would without the hook (address, si_code), then exits 3
    want=$(sem_run native "$SEM" null-read)
    for mode in auto rewrite rewrite+sud sud run; do
        name=hook-$mode-null-read
        got=$(sem_run "$mode" "$SEM" null-read)
        if [ "$got" = "$want" ] && [ "${want##*status }" = 3 ]; then
            pass "$name"
        else
            fail "$name" "'$(echo $got)' differs from '$(echo $want)'"
        fi
    done
    # every slot of the red zone, -8 included, across inline syscalls whose
    # sites are rewritten each way (padding, forward, backward)
    for mode in auto rewrite rewrite+sud sud run; do
        name=hook-$mode-redzone-full
        got=$(sem_run "$mode" "$SEM" redzone 1000)
        if [ "$got" = "$(printf 'red zone kept\nstatus 0')" ]; then
            pass "$name"
        else
            fail "$name" "$(echo $got)"
        fi
    done
    # liburing passes io_uring_register's argument in the red zone and keeps
    # a pointer there across io_uring_enter (the page-0 trampoline's return
    # address lands on both)
    want=$(sem_run native "$SEM" uring)
    if [ "${want##*status }" = 77 ]; then
        skip hook-liburing "built without liburing (Debian liburing-dev)"
    else
        for mode in auto rewrite rewrite+sud sud run; do
            name=hook-$mode-liburing
            got=$(sem_run "$mode" "$SEM" uring)
            if [ "$got" = "$want" ] && [ "${want##*status }" = 0 ]; then
                pass "$name"
            else
                fail "$name" "'$(echo $got)' differs from '$(echo $want)'"
            fi
        done
    fi
    # a site no plan can take: auto leaves it to SUD, which it turns on (and
    # the stubs then issue their calls from the hook's raw section); rewrite
    # says that it is not hooked
    for t in "auto 100 1 left to Syscall User Dispatch" "rewrite 50 1 could not be rewritten and are NOT hooked"; do
        set -- $t
        mode=$1 wantn=$2; shift 2
        name=hook-$mode-leftover
        timeout "$T" "$USNET" trace -v -c -o "$tmp/lo.table" --hook "$mode" -- "$B/hook/tests/leftover" 50 >/dev/null 2>"$tmp/lo.err"
        rc=$?
        got=$(count getppid "$tmp/lo.table")
        if [ "$rc" -eq 0 ] && [ "$got" = "$wantn" ] && grep -q "$*" "$tmp/lo.err"; then
            pass "$name"
        else
            fail "$name" "status $rc, counted $got getppid (expected $wantn): $(head -c 300 "$tmp/lo.err" | tr '\n' ' ')"
        fi
    done
    # ... and each of those calls reaches the hook
    timeout "$T" "$USNET" trace -c -o "$tmp/rz.table" -- "$SEM" redzone 100 >/dev/null 2>&1
    got=$(count getppid "$tmp/rz.table")
    if [ "$got" = 600 ]; then pass hook-redzone-full-counted; else fail hook-redzone-full-counted "counted $got getppid, expected 600"; fi
    # mlockall(MCL_CURRENT | MCL_FUTURE) returns at once (the page-0 mode's
    # site map once reserved 16 TiB, which mlockall tried to fill), and a
    # listener on an address only usnet's stack owns (memwire: no root)
    # follows it; VmLck stays what the stack and the hook really use
    wire=hk$$ml
    start=$(date +%s%N)
    out=$(timeout 5 "$USNET" run --backend memwire --iface "$wire:0" --ip 10.64.253.2/24 -- \
        "$SEM" mlock 10.64.253.2 8080 2>&1)
    rc=$?
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    rm -f /dev/shm/usnet-memwire-$wire*
    lck=$(echo "$out" | sed -n 's/.*VmLck \([0-9]*\) MiB.*/\1/p')
    if [ "$rc" -eq 0 ] && echo "$out" | grep -q '^listening' && [ "${lck:-99999}" -lt 1024 ]; then
        pass hook-mlockall-run
    else
        fail hook-mlockall-run "status $rc after $ms ms (5 s allowed): $(echo "$out" | head -c 200 | tr '\n' ' ')"
    fi
    for mode in $MODES; do
        name=hook-$mode-mlockall
        out=$(USNET_TRACE_HOOK=$mode LD_PRELOAD=$LIB timeout 5 "$SEM" mlock 127.0.0.1 0 2>&1)
        rc=$?
        lck=$(echo "$out" | sed -n 's/.*VmLck \([0-9]*\) MiB.*/\1/p')
        if [ "$rc" -eq 0 ] && [ "${lck:-99999}" -lt 64 ]; then
            pass "$name"
        else
            fail "$name" "status $rc (5 s allowed): $(echo "$out" | head -c 200 | tr '\n' ' ')"
        fi
    done
else
    fail hook-semantics-build "$SEM is missing (run make test)"
fi

# --- Java: implicit null checks (a load through null must fault) in a hot
# loop, 100,000 NullPointerExceptions, under the default hook and with SUD
# (the JVM's SIGSEGV handler blocks every signal, SIGSYS included, and makes
# system calls) ---
if need_cmd java javac; then
    JDIR=$B/hook/java
    mkdir -p "$JDIR"
    if [ ! -f "$JDIR/NullLoop.class" ] || [ tests/hook/java/NullLoop.java -nt "$JDIR/NullLoop.class" ]; then
        timeout 120 javac -d "$JDIR" tests/hook/java/NullLoop.java >"$tmp/javac.log" 2>&1
    fi
    if [ -f "$JDIR/NullLoop.class" ]; then
        want=$(sem_run native java -cp "$JDIR" NullLoop 100000)
        for mode in auto rewrite+sud sud run; do
            name=hook-$mode-java-npe
            got=$(sem_run "$mode" java -cp "$JDIR" NullLoop 100000)
            if [ "$got" = "$want" ] && [ "${want##*status }" = 0 ]; then
                pass "$name"
            else
                fail "$name" "'$(echo $got | head -c 200)' differs from '$(echo $want)'"
            fi
        done
    else
        fail hook-java-build "javac failed: $(tail -3 "$tmp/javac.log" | tr '\n' ' ')"
    fi
else
    skip hook-java-npe "java/javac not installed (Debian default-jdk-headless)"
fi

# --- a normal user: the default needs no page 0 (no vm.mmap_min_addr
# change); page0 is refused before the program runs, with the reason ---
minaddr=$(cat /proc/sys/vm/mmap_min_addr 2>/dev/null || echo 0)
if ! need_root || ! need_cmd setpriv; then
    skip hook-nonroot "needs root and setpriv to run as nobody"
elif [ "$minaddr" -eq 0 ]; then
    skip hook-nonroot "vm.mmap_min_addr is 0: anyone can map page 0 here"
else
    as_nobody() { timeout "$T" setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
    mkdir -p "$tmp/nobody" && chmod 1777 "$tmp/nobody"
    name=hook-nonroot-auto
    as_nobody env USNET_HOOK_VERBOSE=1 "$USNET" trace -c -o "$tmp/nobody/auto.table" --hook auto -- \
        "$PROBE" inline 100 2>"$tmp/nobody.err"
    rc=$?
    got=$(count getppid "$tmp/nobody/auto.table" 2>/dev/null)
    if [ "$rc" -eq 0 ] && [ "$got" = 100 ] && grep -q "mode rewrite (auto)" "$tmp/nobody.err" &&
       ! grep -q "page 0" "$tmp/nobody.err"; then
        pass "$name"
    else
        fail "$name" "status $rc, counted $got: $(head -c 200 "$tmp/nobody.err" | tr '\n' ' ')"
    fi
    name=hook-nonroot-page0
    as_nobody "$USNET" trace -c -o "$tmp/nobody/page0.table" --hook page0 -- "$PROBE" inline 1 2>"$tmp/nobody2.err"
    rc=$?
    if [ "$rc" -ne 0 ] && grep -q "page0 needs page 0, but vm.mmap_min_addr is $minaddr" "$tmp/nobody2.err"; then
        pass "$name"
    else
        fail "$name" "status $rc: $(head -c 200 "$tmp/nobody2.err" | tr '\n' ' ')"
    fi
    # ... and the library itself says so when asked for page 0 directly
    name=hook-nonroot-page0-lib
    out=$(USNET_TRACE_HOOK=page0 as_nobody env LD_PRELOAD="$LIB" "$PROBE" inline 1 2>&1)
    rc=$?
    if [ "$rc" -ne 0 ] && echo "$out" | grep -q "page 0 cannot be mapped (vm.mmap_min_addr is $minaddr)"; then
        pass "$name"
    else
        fail "$name" "status $rc: $(echo "$out" | head -c 200 | tr '\n' ' ')"
    fi
    for mode in auto sud; do
        name=hook-nonroot-$mode-sigmask
        as_nobody "$USNET" trace -c -o "$tmp/nobody/sigmask-$mode.table" --hook "$mode" -- "$PROBE" sigmask 10 2>"$tmp/nobody3.err"
        rc=$?
        got=$(count getppid "$tmp/nobody/sigmask-$mode.table" 2>/dev/null)
        if [ "$rc" -eq 0 ] && [ "$got" = 10 ]; then
            pass "$name"
        else
            fail "$name" "status $rc, counted $got: $(head -c 200 "$tmp/nobody3.err" | tr '\n' ' ')"
        fi
    done
fi
exit 0
