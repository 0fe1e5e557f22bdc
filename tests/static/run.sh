#!/usr/bin/env bash
# Statically linked programs under usnet (gcc -static, gcc -static-pie, Go
# built with CGO_ENABLED=0), started through usnet-exec, and programs usnet
# cannot hook: each is named in one line at start-up, or refused with
# --strict, never run unhooked without a word.
#
# Servers run under `usnet run` (afpacket) on one end of a veth pair whose
# end has no kernel address; kernel clients in the other namespace reach
# them at the stack's address, which only usnet answers.  The C server
# answers with the address each connection reached (getsockname), and
# `usnet stat PID` must count the accepted connections.
#
# usage: tests/static/run.sh [TEST...]     (no argument: every test)
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh

ROOT=$PWD
USNET=${USNET:-$ROOT/build/usnet}
BIN=$ROOT/build/tests/static
ONLY=" $* "
want() { [ "$ONLY" = "  " ] || [[ "$ONLY" == *" $1 "* ]]; }
T=30

for f in "$USNET" "$ROOT/build/usnet-exec" "$BIN/static_probe" "$BIN/static_probe_pie" \
         "$BIN/echo_server" "$BIN/echo_server_pie"; do
    if [ ! -x "$f" ]; then
        skip static "$f is not built (make all and the test programs)"
        exit 0
    fi
done
if ! grep -qw fsgsbase /proc/cpuinfo; then
    skip static "this CPU has no FSGSBASE, which the hook needs for static programs"
    exit 0
fi

WORK=$(mktemp -d /tmp/usnet-static-$$-XXXXXX)
UNS=s13-$$-u KNS=s13-$$-k UIF=s13u$$ KIF=s13k$$ KIP=10.81.0.1 UIP=10.81.0.2
cleanup() {
    local ns
    for ns in "$UNS" "$KNS"; do
        ns_stop "$ns" 2>/dev/null
        ip netns del "$ns" 2>/dev/null
    done
    rm -rf "$WORK"
    "$USNET" stat >/dev/null 2>&1   # drops the statistics files of servers stopped above
}
trap cleanup EXIT

# ---- the hook reaches a static program ---------------------------------

# The program's output and exit status, one string.
outcome() { "$@" 2>&1; echo "status $?"; }

# Every mode of static_probe gives the same output and status under usnet
# (trace, and run with the kernel provider) as without it: threads, fork,
# posix_spawn and system(), the heap, a SIGSEGV handler meeting a null
# pointer, /proc/self/exe read and exec'd.
t_semantics() {
    local name=$1 prog=$2 mode native traced ran bad=
    for mode in "tls" "threads 6" "fork" "spawn" "heap" "segv" "exe" "reexec"; do
        native=$(outcome timeout $T "$prog" $mode)
        traced=$(outcome timeout $T "$USNET" trace -o /dev/null -- "$prog" $mode)
        ran=$(outcome timeout $T "$USNET" run --provider kernel -- "$prog" $mode)
        [ "$native" = "$traced" ] || bad="$bad [$mode under trace: '$traced' not '$native']"
        [ "$native" = "$ran" ] || bad="$bad [$mode under run: '$ran' not '$native']"
    done
    if [ -z "$bad" ]; then pass "$name"; else fail "$name" "$(printf '%s' "$bad" | tr '\n' ' ' | head -c 600)"; fi
}
want static_semantics && t_semantics static_semantics "$BIN/static_probe"
want static_pie_semantics && t_semantics static_pie_semantics "$BIN/static_probe_pie"

# usnet trace -c counts what strace -f -c counts (execve, which runs
# before the hook, and the calls that never return are left out).
t_vs_strace() {
    local name=$1 prog=$2
    if ! need_cmd strace; then skip "$name" "strace is not installed"; return; fi
    timeout $T strace -f -c -o "$WORK/$name.strace" "$prog" mix 50 >/dev/null 2>&1
    timeout $T "$USNET" trace -c -o "$WORK/$name.usnet" -- "$prog" mix 50 >/dev/null 2>&1
    local s u
    s=$(awk 'NR > 2 && !/^-/ && $NF != "total" && $NF != "execve" { print $NF, $4 }' "$WORK/$name.strace" | sort)
    u=$(awk 'NR > 2 && !/^-/ && $NF != "total" && $NF != "exit_group" { print $NF, $1 }' "$WORK/$name.usnet" | sort)
    if [ -n "$s" ] && [ "$s" = "$u" ] && grep -q "getppid" <<<"$u"; then
        pass "$name"
    else
        fail "$name" "strace: $(tr '\n' ' ' <<<"$s"); usnet: $(tr '\n' ' ' <<<"$u")"
    fi
}
want static_trace_vs_strace && t_vs_strace static_trace_vs_strace "$BIN/static_probe"
want static_pie_trace_vs_strace && t_vs_strace static_pie_trace_vs_strace "$BIN/static_probe_pie"

# A dynamic program under usnet that execs a static one: the static one
# is started through usnet-exec too (its calls are counted).
t_exec_static() {
    local out n
    out=$(timeout $T "$USNET" trace -c -o "$WORK/exec.txt" -- sh -c "$BIN/static_probe mix 40" 2>&1)
    n=$(awk '$NF == "getppid" { print $1 }' "$WORK/exec.txt")
    if [ "$out" = "mix 40 read" ] && [ -n "$n" ] && [ "$n" -ge 40 ]; then
        pass static_exec_from_dynamic
    else
        fail static_exec_from_dynamic "output '$out', getppid counted ${n:-0} times (want >= 40)"
    fi
}
want static_exec_from_dynamic && t_exec_static

# A Go program built with CGO_ENABLED=0 whose nil-pointer dereferences
# panic and are recovered: the same output under usnet as without it.
t_go_nil() {
    local name=static_go_nil_recovered gobin=$BIN/gonil_static
    if ! need_cmd go; then skip $name "needs go (golang-go)"; return; fi
    if [ ! -x "$gobin" ] || [ tests/static/gonil/main.go -nt "$gobin" ]; then
        (cd tests/static/gonil && GOCACHE=$ROOT/build/tests/static/gocache GO111MODULE=off CGO_ENABLED=0 \
            go build -o "$gobin" .) >"$WORK/gonil.log" 2>&1 ||
            { fail $name "go build: $(tail -c 300 "$WORK/gonil.log")"; return; }
    fi
    local native traced ran
    native=$(outcome timeout $T "$gobin")
    traced=$(outcome timeout $T "$USNET" trace -o /dev/null -- "$gobin")
    ran=$(outcome timeout $T "$USNET" run --provider kernel -- "$gobin")
    if [[ "$native" == *"recovered: runtime error: invalid memory address or nil pointer dereference"* ]] &&
       [ "$traced" = "$native" ] && [ "$ran" = "$native" ]; then
        pass $name
    else
        fail $name "native '$native'; trace '$traced'; run '$ran'"
    fi
}
want static_go_nil_recovered && t_go_nil

# ---- never a silent bypass ---------------------------------------------

# A static program while static support is missing (no usnet-exec): one
# line, the program runs; --strict refuses it and runs nothing.
t_static_unsupported() {
    local out rc out2 rc2
    out=$(USNET_EXEC=$WORK/no-such-loader timeout $T "$USNET" trace -c -o "$WORK/un.txt" -- \
          "$BIN/static_probe" mix 3 2>&1); rc=$?
    out2=$(USNET_EXEC=$WORK/no-such-loader timeout $T "$USNET" trace --strict -c -o "$WORK/un2.txt" -- \
           "$BIN/static_probe" mix 3 2>&1); rc2=$?
    local line="usnet trace: $BIN/static_probe usnet-exec is missing next to usnet"
    if [ $rc = 0 ] && [[ "$out" == *"$line"*"runs unhooked"*"mix 3 read"* ]] &&
       [ "$(grep -c '^usnet trace' <<<"$out")" = 1 ] &&
       [ $rc2 = 2 ] && [[ "$out2" == *"refusing to run it (--strict)"* ]] && [[ "$out2" != *"mix 3"* ]]; then
        pass static_unsupported_reported
    else
        fail static_unsupported_reported "status $rc '$out'; --strict: status $rc2 '$out2'"
    fi
}
want static_unsupported_reported && t_static_unsupported

# A script whose interpreter is a static program: usnet-exec does not
# start interpreters, so it is named.
t_static_interpreter() {
    printf '#!%s\n' "$BIN/static_probe" >"$WORK/script"
    chmod +x "$WORK/script"
    local out rc
    out=$(timeout $T "$USNET" run --strict --provider kernel -- "$WORK/script" 2>&1); rc=$?
    if [ $rc = 2 ] && [[ "$out" == *"runs through a statically linked interpreter"*"--strict"* ]]; then
        pass static_interpreter_refused
    else
        fail static_interpreter_refused "status $rc: $out"
    fi
}
want static_interpreter_refused && t_static_interpreter

# A program for another machine or class (here a 32-bit ELF header).
t_foreign() {
    cp /bin/true "$WORK/foreign" && printf '\001' | dd of="$WORK/foreign" bs=1 seek=4 conv=notrunc 2>/dev/null
    local out rc
    out=$(timeout $T "$USNET" run --strict --provider kernel -- "$WORK/foreign" 2>&1); rc=$?
    if [ $rc = 2 ] && [ "$out" = "usnet run: $WORK/foreign is not an x86-64 ELF program, so usnet cannot hook it: refusing to run it (--strict)" ]; then
        pass foreign_program_refused
    else
        fail foreign_program_refused "status $rc: $out"
    fi
}
want foreign_program_refused && t_foreign

# A set-user-ID program (the dynamic loader ignores LD_PRELOAD for it).
t_setuid() {
    if ! need_root; then skip setuid_reported "needs root to make a set-user-ID program"; return; fi
    cp /bin/true "$WORK/suid_true" && chown 65534 "$WORK/suid_true" && chmod 4755 "$WORK/suid_true"
    if findmnt -n -o OPTIONS --target "$WORK" | grep -qw nosuid; then
        skip setuid_reported "$WORK is on a nosuid file system"; return
    fi
    local out rc out2 rc2
    out=$(timeout $T "$USNET" run --provider kernel -- "$WORK/suid_true" 2>&1); rc=$?
    out2=$(timeout $T "$USNET" trace --strict -- "$WORK/suid_true" 2>&1); rc2=$?
    if [ $rc = 0 ] && [[ "$out" == "usnet run: $WORK/suid_true is set-user-ID"*"runs unhooked"* ]] &&
       [ $rc2 = 2 ] && [[ "$out2" == "usnet trace: $WORK/suid_true is set-user-ID"*"refusing"* ]]; then
        pass setuid_reported
    else
        fail setuid_reported "status $rc '$out'; trace --strict: status $rc2 '$out2'"
    fi
}
want setuid_reported && t_setuid

# Code the rewriter cannot make writable (a read-only MAP_SHARED file),
# mapped after start-up: the default mode (which turns SUD on only for what
# start-up left) says so in one line; --hook rewrite+sud catches its calls;
# --hook rewrite says they are not hooked, and refuses with --strict.
t_unhookable_map() {
    local name=unhookable_code_reported bin=$ROOT/build/tests/static/unhookable_map
    if [ ! -x "$bin" ]; then skip $name "$bin is not built"; return; fi
    if [ "$(cat /proc/sys/vm/mmap_min_addr)" != 0 ] && ! need_root; then
        skip $name "--hook rewrite needs page 0 (root or vm.mmap_min_addr 0)"; return
    fi
    local out1 rc1 out2 rc2 out3 rc3 n1 n2
    local out0 rc0 n0
    out0=$(timeout $T "$USNET" trace -c -o "$WORK/um0.txt" -- "$bin" "$WORK/um" 2>&1); rc0=$?
    n0=$(awk '$NF == "getppid" { print $1 }' "$WORK/um0.txt")
    out1=$(timeout $T "$USNET" trace --hook rewrite+sud -c -o "$WORK/um1.txt" -- "$bin" "$WORK/um" 2>&1); rc1=$?
    out2=$(timeout $T "$USNET" trace --hook rewrite -c -o "$WORK/um2.txt" -- "$bin" "$WORK/um" 2>&1); rc2=$?
    out3=$(timeout $T "$USNET" trace --strict --hook rewrite -c -o "$WORK/um3.txt" -- "$bin" "$WORK/um" 2>&1); rc3=$?
    n1=$(awk '$NF == "getppid" { print $1 }' "$WORK/um1.txt")
    n2=$(awk '$NF == "getppid" { print $1 }' "$WORK/um2.txt")
    if [ $rc0 = 0 ] && [ "${n0:-0}" = 1 ] && [ "$(grep -c 'cannot make code writable' <<<"$out0")" = 1 ] &&
       [ $rc1 = 0 ] && [ "${n1:-0}" = 2 ] && [[ "$out1" == *"getppid right"* ]] &&
       [ $rc2 = 0 ] && [ "${n2:-0}" = 1 ] &&
       [ "$(grep -c 'its system calls are not hooked' <<<"$out2")" = 1 ] &&
       [ $rc3 = 127 ] && [[ "$out3" == *"refusing to run (USNET_STRICT)"* ]] && [[ "$out3" != *"getppid"* ]]; then
        pass $name
    else
        fail $name "auto: status $rc0, getppid ${n0:-0} '$out0'; rewrite+sud: status $rc1, getppid ${n1:-0} '$out1'; rewrite: status $rc2, getppid ${n2:-0} '$out2'; --strict: status $rc3 '$out3'"
    fi
}
want unhookable_code_reported && t_unhookable_map

# --strict says nothing about what usnet does hook.
t_strict_quiet() {
    local out rc
    out=$(timeout $T "$USNET" trace --strict -c -o "$WORK/q.txt" -- /bin/true 2>&1); rc=$?
    local out2 rc2
    out2=$(timeout $T "$USNET" run --strict --provider kernel -- "$BIN/static_probe" mix 2 2>&1); rc2=$?
    if [ $rc = 0 ] && [ -z "$out" ] && [ $rc2 = 0 ] && [ "$out2" = "mix 2 read" ]; then
        pass strict_hooked_programs_run
    else
        fail strict_hooked_programs_run "dynamic: status $rc '$out'; static: status $rc2 '$out2'"
    fi
}
want strict_hooked_programs_run && t_strict_quiet

# ---- servers over the stack --------------------------------------------

if ! need_root; then
    skip static_servers "needs root for network namespaces"
    exit 0
fi
if ! veth_pair "$UNS" "$UIF" "$KNS" "$KIF" "$KIP"; then
    fail static_servers "veth set-up failed"
    exit 0
fi

# accepted PID MIN: the stack's tcp_accepted as `usnet stat PID` shows it,
# once it is at least MIN (the counters are published every second: 3 s).
accepted() {
    local n i
    for i in $(seq 1 30); do
        n=$("$USNET" stat "$1" 2>/dev/null | sed -n 's/^tcp_accepted //p' | head -1)
        [ -n "$n" ] && [ "$n" -ge "$2" ] && break
        sleep 0.1
    done
    echo "$n"
}

# ns_idle: until the previous server and the interface's owner, which
# leaves after the last process of the stack, are gone (5 s): a run that
# arrives while the owner is leaving finds no owner to attach to.
ns_idle() {
    local i
    for i in $(seq 1 50); do
        [ -z "$(ip netns pids "$UNS" 2>/dev/null)" ] && return 0
        sleep 0.1
    done
}

# wait_for FILE TEXT: until FILE holds TEXT (10 s).
wait_for() {
    local i
    for i in $(seq 1 100); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# t_echo NAME PROGRAM [threads|fork|sh]: the static echo server under usnet
# serves 4 kernel clients (fork: each in a forked child); each answer names
# usnet's address; usnet stat counts.  sh: started by a shell that execs it.
t_echo() {
    local name=$1 prog=$2 mode=${3:-} log=$WORK/$1.log port=7100 i got bad= n
    ns_idle
    local cmd=("$prog" serve $port 4 $mode)
    [ "$mode" = sh ] && cmd=(sh -c "exec $prog serve $port 4")
    ip netns exec "$UNS" "$USNET" run --backend afpacket --iface "$UIF" --ip "$UIP/24" -- \
        "${cmd[@]}" >"$log" 2>&1 &
    local pid=$!
    if ! wait_for "$log" '^ready'; then
        fail "$name" "not ready: $(tr '\n' ' ' <"$log" | head -c 300)"
        kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
        return
    fi
    for i in 1 2 3 4; do
        got=$(ip netns exec "$KNS" timeout 10 "$BIN/echo_server" client "$UIP" $port "hello $i" 2>&1)
        [ "$got" = "$UIP hello $i" ] || bad="$bad [client $i got '$got']"
        if [ $i = 3 ]; then
            n=$(accepted $pid 3)
            [ -n "$n" ] && [ "$n" -ge 3 ] || bad="$bad [usnet stat $pid counted ${n:-no} accepted]"
        fi
    done
    timeout 10 tail --pid=$pid -f /dev/null
    wait $pid; local rc=$?
    grep -q '^served 4' "$log" || bad="$bad [server: status $rc, $(tr '\n' ' ' <"$log" | head -c 200)]"
    if [ -z "$bad" ]; then pass "$name"; else fail "$name" "$bad"; kill -9 $pid 2>/dev/null; fi
}
# Signals arriving while the program waits inside the switch (a poll on a
# usnet listener), handled on the program's alternate stack: same output as
# on the kernel, and the listener is usnet's (usnet stat lists it).
t_sigpoll() {
    local name=$1 prog=$2 want got pid
    want=$(outcome timeout $T "$prog" sigpoll 7200)
    ns_idle
    ip netns exec "$UNS" "$USNET" run --backend afpacket --iface "$UIF" --ip "$UIP/24" -- \
        "$prog" sigpoll 7201 >"$WORK/$name.log" 2>&1 &
    pid=$!
    local socks=
    for i in $(seq 1 30); do
        socks=$("$USNET" stat "$pid" 2>/dev/null | grep -c "tcp LISTEN local=0.0.0.0:7201")
        [ "${socks:-0}" -ge 1 ] && break
        sleep 0.1
    done
    wait $pid; got="$(cat "$WORK/$name.log")
status $?"
    if [ "$got" = "$want" ] && [ "${socks:-0}" -ge 1 ]; then
        pass "$name"
    else
        fail "$name" "got '$(tr '\n' ' ' <<<"$got")', want '$(tr '\n' ' ' <<<"$want")'; usnet stat listed the listener: ${socks:-no}"
    fi
}
want static_signals_in_switch && t_sigpoll static_signals_in_switch "$BIN/static_probe"
want static_server && t_echo static_server "$BIN/echo_server"
want static_pie_server && t_echo static_pie_server "$BIN/echo_server_pie"
want static_server_threads && t_echo static_server_threads "$BIN/echo_server" threads
want static_server_exec_by_sh && t_echo static_server_exec_by_sh "$BIN/echo_server" sh
want static_server_fork && t_echo static_server_fork "$BIN/echo_server" fork

# A Go net/http server built with CGO_ENABLED=0 (tests/apps/gohttp): its
# raw system calls reach the stack; the 4 MiB body arrives intact; a
# handler's recovered nil dereference answers as on the kernel.
t_go() {
    local name=static_go_http gobin=$BIN/gohttp_static
    if ! need_cmd go curl; then skip $name "needs go (golang-go) and curl"; return; fi
    if [ ! -x "$gobin" ] || [ tests/apps/gohttp/main.go -nt "$gobin" ]; then
        (cd tests/apps/gohttp && GOCACHE=$ROOT/build/tests/static/gocache GO111MODULE=off CGO_ENABLED=0 \
            go build -o "$gobin" .) >"$WORK/gobuild.log" 2>&1 ||
            { fail $name "go build: $(tail -c 300 "$WORK/gobuild.log")"; return; }
    fi
    if readelf -l "$gobin" | grep -q INTERP; then
        fail $name "$gobin is not statically linked"; return
    fi
    # the body (and the recovered nil dereference) as the same program
    # serves it from the kernel, as reference
    ip netns exec "$KNS" "$gobin" "127.0.0.1:8090" >/dev/null 2>&1 &
    local ref=$! want= got hello i nilwant= nilgot
    for i in $(seq 1 50); do
        ip netns exec "$KNS" curl -sf -m 5 -o "$WORK/go.want" "http://127.0.0.1:8090/data" &&
            want=$(md5sum <"$WORK/go.want") && break
        sleep 0.1
    done
    nilwant=$(ip netns exec "$KNS" curl -sS -m 5 "http://127.0.0.1:8090/nil" 2>&1)
    kill $ref 2>/dev/null; wait $ref 2>/dev/null
    ns_idle
    ip netns exec "$UNS" "$USNET" run --backend afpacket --iface "$UIF" --ip "$UIP/24" -- \
        "$gobin" ":8080" >"$WORK/go.log" 2>&1 &
    local pid=$!
    for i in $(seq 1 100); do
        hello=$(ip netns exec "$KNS" curl -sf -m 2 "http://$UIP:8080/hello") && break
        sleep 0.1
    done
    got=$(ip netns exec "$KNS" curl -sf -m 20 "http://$UIP:8080/data" | md5sum)
    nilgot=$(ip netns exec "$KNS" curl -sS -m 5 "http://$UIP:8080/nil" 2>&1)
    local n; n=$(accepted $pid 3)
    kill $pid 2>/dev/null; wait $pid 2>/dev/null
    if [ "$hello" = "hello from go" ] && [ "$got" = "$want" ] && [ -n "$n" ] && [ "$n" -ge 3 ]; then
        pass $name
    else
        fail $name "hello '$hello', body $got (want $want), usnet stat counted ${n:-no} accepted: $(tail -c 300 "$WORK/go.log" | tr '\n' ' ')"
    fi
    # a handler's nil dereference, recovered: the message is the kernel run's
    if [[ "$nilwant" == "recovered: runtime error: invalid memory address or nil pointer dereference" ]] &&
       [ "$nilgot" = "$nilwant" ]; then
        pass static_go_http_nil_recovered
    else
        fail static_go_http_nil_recovered "on the kernel '$nilwant', under usnet '$nilgot'"
    fi
}
want static_go_http && t_go
