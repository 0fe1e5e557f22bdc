#!/usr/bin/env bash
# The socket switch's suite: the readiness program (tests/vsock/readiness.c)
# runs on the kernel, then under `usnet run` with the pass-through kernel
# provider and with a third-party provider (.so, in-memory streams), and
# every case must print the same line.  Then `usnet run`'s one-line errors,
# execve of an inherited user socket, and `usnet stat`.
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
ROOT=$PWD

B=build
PROG=$B/tests/vsock/readiness
TESTPROV=$B/tests/vsock/libtestprov.so
USNET=$B/usnet
if [ ! -x "$PROG" ] || [ ! -f "$B/libusnet.so" ] || [ ! -x "$USNET" ]; then
    skip vsock "build/libusnet.so, build/usnet or $PROG not built"
    exit 0
fi
tmp=$(mktemp -d /tmp/usnet-vsock-$$-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

timeout 120 "$PROG" >"$tmp/native" 2>"$tmp/native.err"
if [ ! -s "$tmp/native" ]; then
    fail readiness_native "the program printed nothing on the kernel: $(head -c 200 "$tmp/native.err")"
    exit 0
fi

# compare MODE FILE: one result per case of the native run.
compare() {
    local mode=$1 out=$2 skipcases=${3:-}
    while IFS= read -r line; do
        local name=${line%%:*}
        case " $skipcases " in *" $name "*) continue ;; esac
        local got
        got=$(grep -m1 "^$name: " "$out")
        if [ "$got" = "$line" ]; then
            pass "readiness_${mode}_$name"
        elif [ -z "$got" ]; then
            fail "readiness_${mode}_$name" "no result (crashed or hung?); kernel: '$line'"
        else
            fail "readiness_${mode}_$name" "kernel '${line#*: }' usnet '${got#*: }'"
        fi
    done <"$tmp/native"
}

# run_cases OUT CMD...: each case in a process of its own (a crash or hang
# costs one case, not the rest).
# Cases named in SKIPCASES are not run.
run_cases() {
    local out=$1 c; shift
    : >"$out"
    for c in $(sed 's/:.*//' "$tmp/native"); do
        case " ${SKIPCASES:-} " in *" $c "*) continue ;; esac
        timeout 30 "$@" "$PROG" "$c" >>"$out" 2>>"$out.err"
    done
}

# The default hook rewrites the program's code into stubs: no page 0, so a
# normal user gets it too (it once fell back to Syscall User Dispatch alone
# there, where a sigprocmask() made by the program did not stick).
SIGCASES=

SKIPCASES="$SIGCASES" run_cases "$tmp/kernel" "$USNET" run --provider kernel --
compare kernel "$tmp/kernel" "$SIGCASES"

# The in-memory provider is per process: fork sharing is the stack's job;
# it has no congestion control to name (tcp_cc_info) and accepts at once
# (defer_accept); it has no multicast (mcast_opts).
SKIPCASES="fork fork_exit tcp_cc_info defer_accept mcast_opts $SIGCASES" run_cases "$tmp/testprov" "$USNET" run --provider "$TESTPROV" --
compare thirdparty "$tmp/testprov" "fork fork_exit tcp_cc_info defer_accept mcast_opts $SIGCASES"

# The stack over TAP in a private namespace (root): the program's listener
# and accepted sockets are on the stack at 10.64.200.2; its client sockets
# connect to that address, which the stack hands over to the kernel, so every
# connection crosses the TAP between a kernel socket and a stack socket.
if need_root && [ -c /dev/net/tun ] && nm "$B/libusnet.so" 2>/dev/null | grep -q '[tTW] usnet_provider_stack$'; then
    ns=vs-$$-rd; tap=vs$$rd
    cleanup_ns() { ip netns del "$ns" 2>/dev/null; }
    trap 'cleanup_ns; rm -rf "$tmp"' EXIT
    if ip netns add "$ns" && ip netns exec "$ns" ip link set lo up &&
       ip netns exec "$ns" ip tuntap add "$tap" mode tap &&
       ip netns exec "$ns" ip addr add 10.64.200.1/24 dev "$tap" && ip netns exec "$ns" ip link set "$tap" up; then
        # A fixed MAC: every case is a new process with a new stack, and the
        # kernel side's ARP cache must stay right.
        READINESS_ADDR=10.64.200.2 run_cases "$tmp/stack" ip netns exec "$ns" "$USNET" run --backend tap \
            --iface "$tap" --ip 10.64.200.2/24 --mac 02:00:0a:40:c8:02 --
        compare stack_tap "$tmp/stack"
        # The descriptor cases again with room above the soft fd limit:
        # usnet's own fds then live past it, out of the program's reach.
        fdcases=$(sed -n 's/^\(fd_[a-z0-9_]*\):.*/\1/p' "$tmp/native")
        others=$(sed -n '/^fd_/!s/:.*//p' "$tmp/native" | tr '\n' ' ')
        : >"$tmp/stack_low"
        for c in $fdcases; do
            READINESS_ADDR=10.64.200.2 timeout 30 ip netns exec "$ns" sh -c 'ulimit -S -n 1024 && exec "$@"' sh \
                "$USNET" run --backend tap --iface "$tap" --ip 10.64.200.2/24 --mac 02:00:0a:40:c8:02 -- \
                "$PROG" "$c" >>"$tmp/stack_low" 2>>"$tmp/stack_low.err"
        done
        compare stack_tap_lowlimit "$tmp/stack_low" "$others"
        # Interface queries on a stack socket about the stack's interface
        # answer with the stack's address, MAC and MTU.
        mtu=$(ip netns exec "$ns" cat "/sys/class/net/$tap/mtu")
        want="addr=0/10.64.200.2 mask=0/255.255.255.0 hw=0/02:00:0a:40:c8:02 mtu=0/$mtu listed=1"
        got=$(timeout 30 ip netns exec "$ns" "$USNET" run --backend tap --iface "$tap" --ip 10.64.200.2/24 \
            --mac 02:00:0a:40:c8:02 -- "$PROG" ifinfo "$tap" 2>&1)
        if [ "$got" = "$want" ]; then pass stack_interface_ioctls; else fail stack_interface_ioctls "want '$want' got '$got'"; fi
    else
        fail readiness_stack_tap "cannot set up namespace $ns with TAP $tap"
    fi
    cleanup_ns
else
    skip readiness_stack_tap "needs root, /dev/net/tun and the stack provider in build/libusnet.so"
fi

# The stack end to end without root: python3's http.server under usnet on a
# memwire (shared-memory) wire; the client is usnet-nc, a native app on the
# other end of the wire.
if [ -x "$B/usnet-nc" ] && [ -x /usr/bin/python3 ] && nm "$B/libusnet.so" 2>/dev/null | grep -q '[tTW] usnet_provider_stack$'; then
    wire=vs$$mw
    mkdir -p "$tmp/www"
    head -c 300000 /dev/urandom >"$tmp/www/blob"
    (cd "$tmp/www" && exec "$ROOT/$USNET" run --backend memwire --iface "$wire:0" --ip 10.64.251.2/24 -- \
        /usr/bin/python3 -m http.server 8080 --bind 10.64.251.2 >"$tmp/mw.log" 2>&1) &
    mw=$!
    trap 'kill $mw 2>/dev/null; rm -f /dev/shm/usnet-memwire-$wire*; rm -rf "$tmp"' EXIT
    ok=no
    for _ in $(seq 1 30); do
        grep -q "Serving HTTP" "$tmp/mw.log" 2>/dev/null && { ok=yes; break; }
        sleep 0.2
    done
    printf 'GET /blob HTTP/1.0\r\n\r\n' | timeout 20 "$B/usnet-nc" -w 10 --backend memwire --iface "$wire:1" \
        --ip 10.64.251.1/24 10.64.251.2 8080 >"$tmp/mw.out" 2>"$tmp/mw.err"
    if [ "$ok" = yes ] && tail -c 300000 "$tmp/mw.out" | cmp -s - "$tmp/www/blob" && head -1 "$tmp/mw.out" | grep -q " 200 "; then
        pass stack_memwire_http
    else
        fail stack_memwire_http "server: $(tail -c 150 "$tmp/mw.log" | tr '\n' ' ') client: $(head -c 150 "$tmp/mw.err")"
    fi
    kill $mw 2>/dev/null
    wait $mw 2>/dev/null
    rm -f /dev/shm/usnet-memwire-$wire*
else
    skip stack_memwire_http "needs build/usnet-nc, /usr/bin/python3 and the stack provider"
fi

# execve: a user socket without FD_CLOEXEC is closed in the new image, loudly.
out=$(timeout 20 "$USNET" run --provider kernel -- "$PROG" exec 2>"$tmp/exec.err")
if [ "$out" = "0" ] && grep -q "socket of the program before execve" "$tmp/exec.err"; then
    pass execve_closes_user_socket
else
    fail execve_closes_user_socket "stdout '$out', stderr '$(head -c 200 "$tmp/exec.err")'"
fi

# One-line errors for misconfigurations (exit status 2, one line on stderr).
one_line_error() {
    local name=$1 want=$2; shift 2
    local err rc
    err=$(env -u USNET_IP -u USNET_IFACE -u USNET_BACKEND -u USNET_PROVIDER timeout 10 "$USNET" run "$@" 2>&1 >/dev/null)
    rc=$?
    if [ "$rc" -eq 2 ] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] && printf '%s' "$err" | grep -q "$want"; then
        pass "run_error_$name"
    else
        fail "run_error_$name" "status $rc, stderr '$err'"
    fi
}
one_line_error no_program "no program" --provider kernel
one_line_error bad_hook "hook must be" --hook bogus -- true
one_line_error bad_provider "cannot load provider" --provider /nonexistent/prov.so -- true
one_line_error no_address "needs an address" --iface vs-none -- true
one_line_error bad_address "not ADDR/PREFIX" --ip 10.64.0.300/24 --iface vs-none -- true
one_line_error missing_iface "not found" --ip 10.64.0.2/24 --iface vs-$$-none -- true
one_line_error unknown_option "unknown option" --bogus 1 -- true
one_line_error bad_backend "unknown backend" --backend bogus --ip 10.64.0.2/24 --iface lo -- true
one_line_error bad_tx_batch "not 0 or 1" --tx-batch 2 --ip 10.64.0.2/24 --iface lo -- true
one_line_error not_a_tap "tap: lo" --backend tap --ip 10.64.0.2/24 --iface lo -- true
one_line_error address_in_use "in use by the kernel" --ip 127.0.0.1/8 --iface lo -- true
one_line_error bad_mac "not a MAC" --mac 02:00:zz --ip 10.64.0.2/24 --iface lo -- true

# usnet stat sees a running usnet process and its socket; that process's
# first publication removes the file of a process that died without
# removing its own (SIGKILL).
sh -c 'exit 0' & dead=$!
wait "$dead"
echo "pid $dead" >"/dev/shm/usnet-$dead.stat"
"$USNET" run --provider kernel -- "$PROG" hold >/dev/null 2>&1 &   # exits by itself after 3 s
bg=$!
found=no
for _ in $(seq 1 25); do
    if "$USNET" stat "$bg" 2>/dev/null | grep -q "provider kernel" &&
       "$USNET" stat "$bg" 2>/dev/null | grep -q "socket fd=.* tcp LISTEN local=127.0.0.1:"; then found=yes; break; fi
    sleep 0.1
done
wait "$bg" 2>/dev/null
if [ "$found" = yes ]; then pass stat_lists_process; else fail stat_lists_process "no usnet process in 'usnet stat'"; fi
if [ ! -e "/dev/shm/usnet-$dead.stat" ]; then
    pass stat_removes_dead_process_file
else
    rm -f "/dev/shm/usnet-$dead.stat"
    fail stat_removes_dead_process_file "/dev/shm/usnet-$dead.stat is still there"
fi
exit 0
