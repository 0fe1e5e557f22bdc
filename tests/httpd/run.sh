#!/usr/bin/env bash
# usnet-httpd, the static-content server on the native API.
#
#  cli       bad command lines and roots are refused with a reason;
#  replay    the request parser's fuzz target replays its seed corpus and
#            every regression under ASan/UBSan (build/httpd/fuzz_http_replay);
#  kernel    --kernel, built with ASan/UBSan (build/httpd/usnet-httpd-san):
#            the conformance checks (conformance.py: curl, http.client, raw
#            sockets; stalled and idle connections closed after
#            --idle-timeout), 2000 connections of random, mutated and truncated
#            requests (fuzz_requests.py), then a correct request still
#            answered, no sanitizer report, a clean exit on SIGTERM; and the
#            plain build with two threads;
#  afxdp afpacket
#            the server on the usnet stack at the end of a veth pair whose
#            namespace gives the kernel no address, a kernel client in the
#            other namespace: the same conformance checks and fuzzing, curl
#            reporting usnet's address (the traffic went through the stack),
#            a clean exit; over afpacket the whole server, stack and backend
#            included, runs under ASan/UBSan (build/httpd/usnet-httpd-usnet-san);
#  afxdp-threads
#            two threads, two stack instances on a two-queue veth: the
#            conformance checks.
#
# usage: tests/httpd/run.sh [PART...]  (default: all of them)
set -u
PARTS=${*:-cli replay kernel afxdp afpacket afxdp-threads}
want() { [[ " $PARTS " == *" $1 "* ]]; }
cd "$(dirname "$0")/../.."
. tests/lib.sh

HTTPD=build/usnet-httpd
SAN=build/httpd/usnet-httpd-san
USNET_SAN=build/httpd/usnet-httpd-usnet-san
REPLAY=build/httpd/fuzz_http_replay
PY=/usr/bin/python3
T=tests/httpd
UNS=hd-$$-u KNS=hd-$$-k
UIF=hdu$$ KIF=hdk$$
KIP=10.71.0.1 UIP=10.71.0.2
PORT=8080
work=$(mktemp -d /tmp/usnet-httpd-test.XXXXXX)
pids=()

cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	ip netns del "$UNS" 2>/dev/null
	ip netns del "$KNS" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if [ ! -x "$HTTPD" ]; then
	fail httpd-build "$HTTPD is missing (run make)"
	exit 1
fi
if [ ! -x "$PY" ] || ! need_cmd curl; then
	skip httpd-all "needs python3 and curl (Debian packages python3, curl)"
	exit 0
fi
ROOT=$work/root
$PY $T/make_root.py "$ROOT" || { fail httpd-root "cannot write the test's document root"; exit 1; }

# wait_http HOST PORT [NETNS]: until the server answers a request (10 s at most).
wait_http() {
	local exec=()
	[ -n "${3:-}" ] && exec=(ip netns exec "$3")
	"${exec[@]}" $PY - "$1" "$2" <<'PYEOF'
import socket, sys, time
end = time.time() + 10
while time.time() < end:
    try:
        s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=0.5)
        s.sendall(b"HEAD / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        if s.recv(12).startswith(b"HTTP/1.1 "):
            sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
PYEOF
}

# fuzz NAME HOST PORT PID LOG [NETNS]: the fuzz client, then the server
# still running and its log free of sanitizer reports.
fuzz() {
	local name=$1 host=$2 port=$3 pid=$4 log=$5 exec=()
	[ -n "${6:-}" ] && exec=(ip netns exec "$6")
	if ! out=$(timeout 120 "${exec[@]}" $PY $T/fuzz_requests.py "$host" "$port" $$ 2000 "$ROOT/index.html" 2>&1); then
		fail "$name" "$(tail -1 <<<"$out")"
	elif ! kill -0 "$pid" 2>/dev/null; then
		fail "$name" "the server died: $(tail -3 "$log" | tr '\n' ' ')"
	elif grep -q "Sanitizer\|runtime error" "$log"; then
		fail "$name" "$(grep -m1 "Sanitizer\|runtime error" "$log")"
	else
		echo "$out"
		pass "$name"
	fi
}

# ---- cli ---------------------------------------------------------------------
check_cli() {
	local out
	"$HTTPD" --help | grep -q -- "--root DIR" || { echo "--help does not name --root"; return 1; }
	for args in "--kernel --root $ROOT" "--kernel -p 8080" "--kernel -p 0 --root $ROOT" \
		"--kernel -p 8080 -t 0 --root $ROOT" "--kernel -p 8080 --root" "--kernel -p 8080 --bogus --root $ROOT" \
		"-p 8080 --root $ROOT" "--backend afxdp --iface lo --ip nonsense -p 8080 --root $ROOT"; do
		# shellcheck disable=SC2086
		out=$(timeout 10 "$HTTPD" $args 2>&1)
		rc=$?
		if [ $rc = 0 ] || [ $rc -ge 124 ] || ! grep -q "usnet-httpd: \|needs an argument" <<<"$out"; then
			echo "'$args': exit $rc, '$out'"
			return 1
		fi
	done
	out=$(timeout 10 "$HTTPD" --kernel -p 8080 --root "$work/none" 2>&1) && return 1
	grep -q "No such file" <<<"$out" || { echo "missing root: '$out'"; return 1; }
	out=$(timeout 10 "$HTTPD" --kernel -p 8080 --max-mb 1 --root "$ROOT" 2>&1) && return 1
	grep -q "limit" <<<"$out" || { echo "a root over --max-mb: '$out'"; return 1; }
	return 0
}
if want cli; then
	if out=$(check_cli 2>&1); then pass httpd-cli-refuses-bad-arguments
	else fail httpd-cli-refuses-bad-arguments "$out"; fi
fi

# ---- replay --------------------------------------------------------------------
if want replay; then
	if [ ! -x "$REPLAY" ]; then
		fail httpd-fuzz-replay "$REPLAY is missing (make test builds it)"
	elif out=$(timeout 120 "$REPLAY" fuzz/http-corpus/* fuzz/http-regressions/* 2>&1); then
		pass httpd-fuzz-replay
	else
		fail httpd-fuzz-replay "$(tail -3 <<<"$out" | tr '\n' ' ')"
	fi
fi

# ---- kernel sockets --------------------------------------------------------------
# In a namespace of its own when root (a port nobody else uses), else on
# loopback.
kernel_part() {
	local ns="" host=127.0.0.1 port pid rc
	if need_root && ip netns add "$KNS" 2>/dev/null; then
		ip -n "$KNS" link set lo up
		ns=$KNS
		port=$PORT
	else
		port=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	fi
	local pre=()
	[ -n "$ns" ] && pre=(ip netns exec "$ns")
	if [ ! -x "$SAN" ]; then
		fail httpd-kernel-san "$SAN is missing (make test builds it)"
		return
	fi
	"${pre[@]}" timeout 300 "$SAN" --kernel -p "$port" --idle-timeout 2 --root "$ROOT" >"$work/san.log" 2>&1 &
	pid=$!
	pids+=($pid)
	if ! wait_http $host "$port" "$ns"; then
		fail httpd-kernel-start "$(tail -3 "$work/san.log" | tr '\n' ' ')"
		return
	fi
	"${pre[@]}" timeout 120 $PY $T/conformance.py --label httpd-kernel --idle-timeout 2 $host "$port" "$ROOT" ||
		echo "FAIL httpd-kernel-conformance: conformance.py exited with an error"
	fuzz httpd-kernel-fuzz $host "$port" $pid "$work/san.log" "$ns"
	kill -TERM $pid
	wait $pid
	rc=$?
	if [ $rc != 0 ] || grep -q "Sanitizer\|runtime error" "$work/san.log"; then
		fail httpd-kernel-san-clean-exit "exit $rc: $(grep -m3 "ERROR\|runtime error\|SUMMARY" "$work/san.log" | tr '\n' ' ')"
	else
		pass httpd-kernel-san-clean-exit
	fi
	# the plain build, two threads (two listeners on one port)
	"${pre[@]}" timeout 120 "$HTTPD" --kernel -p "$port" -t 2 --root "$ROOT" >"$work/k2.log" 2>&1 &
	pid=$!
	pids+=($pid)
	if ! wait_http $host "$port" "$ns"; then
		fail httpd-kernel-threads "$(tail -3 "$work/k2.log" | tr '\n' ' ')"
		return
	fi
	"${pre[@]}" timeout 120 $PY $T/conformance.py --label httpd-kernel-threads $host "$port" "$ROOT" ||
		echo "FAIL httpd-kernel-threads-conformance: conformance.py exited with an error"
	kill $pid
	wait $pid 2>/dev/null
	[ -n "$ns" ] && ip netns del "$ns"
}
want kernel && kernel_part

# ---- the usnet stack over a veth ------------------------------------------------
# usnet_part NAME BACKEND QUEUES SERVER: SERVER (a build of usnet-httpd) on
# a veth with QUEUES queues, one server thread per queue.
usnet_part() {
	local name=httpd-$1 backend=$2 nq=$3 server=$4 pid rc
	if ! need_root; then skip "$name" "needs root (network namespaces, veth)"; return; fi
	if ! "$HTTPD" --help | grep -q "usnet mode: available"; then
		skip "$name" "usnet-httpd was built without the usnet runtime (kernel mode only)"; return
	fi
	if [ "$backend" = afxdp ] && ! nm "$HTTPD" 2>/dev/null | grep -q netif_afxdp_open; then
		skip "$name" "this build has no afxdp (libxdp-dev missing at build time)"; return
	fi
	if [ ! -x "$server" ]; then
		fail "$name" "$server is missing (make test builds it)"; return
	fi
	if ! veth_pair "$UNS" "$UIF" "$KNS" "$KIF" "$KIP" "$nq" 2>"$work/veth.err"; then
		skip "$name" "cannot build the veth pair: $(head -1 "$work/veth.err")"
		ip netns del "$UNS" 2>/dev/null; ip netns del "$KNS" 2>/dev/null
		return
	fi
	ip netns exec "$UNS" timeout 300 "$server" --backend "$backend" --iface "$UIF" --ip "$UIP/24" \
		-p $PORT -t "$nq" --idle-timeout 2 --root "$ROOT" >"$work/$name.log" 2>&1 &
	pid=$!
	pids+=($pid)
	if ! wait_http $UIP $PORT "$KNS"; then
		fail "$name-start" "$(tail -3 "$work/$name.log" | tr '\n' ' ')"
	else
		# usnet's namespace gives the kernel no IPv4 address on the veth:
		# whatever answers at $UIP is the stack
		if ip -n "$UNS" -4 addr show dev "$UIF" | grep -q inet; then
			fail "$name-address-is-usnets" "the kernel has an address on $UIF"
		else
			pass "$name-address-is-usnets"
		fi
		timeout 120 ip netns exec "$KNS" $PY $T/conformance.py --label "$name" --expect-ip $UIP --idle-timeout 2 \
			$UIP $PORT "$ROOT" ||
			echo "FAIL $name-conformance: conformance.py exited with an error"
		[ "$nq" = 1 ] && fuzz "$name-fuzz" $UIP $PORT $pid "$work/$name.log" "$KNS"
	fi
	kill $pid
	wait $pid 2>/dev/null
	rc=$?
	if [ $rc != 0 ] || grep -q "Sanitizer\|runtime error" "$work/$name.log"; then
		fail "$name-clean-exit" "exit $rc: $(grep -m3 "ERROR\|runtime error\|SUMMARY" "$work/$name.log" | tr '\n' ' ')"
	else
		pass "$name-clean-exit"
	fi
	ip netns del "$UNS" 2>/dev/null
	ip netns del "$KNS" 2>/dev/null
}
want afxdp && usnet_part afxdp afxdp 1 "$HTTPD"
want afpacket && usnet_part afpacket-san afpacket 1 "$USNET_SAN"
want afxdp-threads && usnet_part afxdp-threads afxdp 2 "$HTTPD"
exit 0
