#!/usr/bin/env bash
# The usnet demo: usnet-nc, a netcat on usnet's own user-space TCP/IP stack,
# serves a file to the Linux kernel across a TAP device inside a private
# network namespace, and this script prints what happened: the file's size,
# its sha256 on both sides, the time taken and the throughput.
# Needs root (it creates a network namespace and a TAP device).
set -u
cd "$(dirname "$0")/.."

NC=build/usnet-nc
SIZE_MIB=${USNET_DEMO_MIB:-64}
NS=usnet-demo-$$
TAP=usdemo$$
KIP=10.61.100.1     # the kernel's end of the TAP device
UIP=10.61.100.2     # usnet's address
PORT=8080

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: needs root: it creates a private network namespace and a TAP device (run: sudo make demo)" >&2
	exit 1
fi
for c in ip socat sha256sum; do
	if ! command -v "$c" >/dev/null; then
		echo "demo: '$c' is missing (make demo installs it: scripts/install-deps.sh)" >&2
		exit 1
	fi
done
if [ ! -x "$NC" ]; then
	echo "demo: $NC is not built (run make)" >&2
	exit 1
fi

work=$(mktemp -d /tmp/usnet-demo.XXXXXX)
server=""
cleanup() {
	[ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# The wire: a TAP device in a namespace of its own; the kernel owns one end
# (with address $KIP), usnet-nc opens the other and runs its own stack on it.
ip netns add "$NS" && ip -n "$NS" link set lo up &&
	ip -n "$NS" tuntap add dev "$TAP" mode tap &&
	ip -n "$NS" addr add "$KIP/24" dev "$TAP" &&
	ip -n "$NS" link set "$TAP" up || { echo "demo: cannot set up namespace $NS" >&2; exit 1; }

head -c "${SIZE_MIB}M" /dev/urandom > "$work/file"
bytes=$(stat -c %s "$work/file")
sum_sent=$(sha256sum < "$work/file" | cut -c1-64)

echo "usnet demo: usnet-nc (user-space TCP/IP stack, $UIP) serves a ${SIZE_MIB} MiB file"
echo "  to the Linux kernel ($KIP) over TAP device $TAP in network namespace $NS"

ip netns exec "$NS" "$NC" -l --backend tap --iface "$TAP" --ip "$UIP/24" 0.0.0.0 "$PORT" \
	< "$work/file" 2>"$work/server.err" &
server=$!
# usnet-nc has opened the TAP device once the kernel sees carrier on it.
for _ in $(seq 100); do
	ip -n "$NS" link show "$TAP" | grep -q NO-CARRIER || break
	sleep 0.05
done

start=$(date +%s%N)
timeout 120 ip netns exec "$NS" socat -u "TCP:$UIP:$PORT,connect-timeout=5" STDOUT > "$work/got"
client_rc=$?
end=$(date +%s%N)
wait "$server"; server_rc=$?
server=""

got_bytes=$(stat -c %s "$work/got")
sum_got=$(sha256sum < "$work/got" | cut -c1-64)
ms=$(( (end - start) / 1000000 )); [ "$ms" -gt 0 ] || ms=1
echo "  sent by usnet-nc:     $bytes bytes  sha256 $sum_sent"
echo "  received by kernel:   $got_bytes bytes  sha256 $sum_got"
awk -v b="$bytes" -v ms="$ms" 'BEGIN { printf "  time %.3f s, throughput %.2f Gbit/s (%.0f MiB/s)\n", ms / 1000, b * 8 / ms / 1e6, b / 1048576 / (ms / 1000) }'
if [ "$client_rc" -ne 0 ] || [ "$server_rc" -ne 0 ]; then
	echo "demo: FAILED: kernel client exit status $client_rc, usnet-nc exit status $server_rc" >&2
	sed 's/^/  /' "$work/server.err" >&2
	exit 1
fi
if [ "$sum_got" != "$sum_sent" ]; then
	echo "demo: FAILED: the kernel received different bytes" >&2
	exit 1
fi
echo "  OK: the kernel received the file intact; usnet-nc closed the connection cleanly"
