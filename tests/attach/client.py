#!/usr/bin/env python3
"""client.py ADDR PORT N: N sequential connections, each "ping I" expecting
"pong I PID"; prints "ok K of N, P answering processes" and exits 0 when
every connection was answered."""
import socket
import sys

addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ok, pids, errors = 0, set(), []
for i in range(n):
    try:
        with socket.create_connection((addr, port), timeout=5) as c:
            c.sendall(b"ping %d\n" % i)
            data = b""
            while not data.endswith(b"\n"):
                b = c.recv(100)
                if not b:
                    break
                data += b
            words = data.decode().split()
            if len(words) == 3 and words[0] == "pong" and words[1] == str(i):
                ok += 1
                pids.add(words[2])
            else:
                errors.append("%d: %r" % (i, data))
    except OSError as e:
        errors.append("%d: %s" % (i, e))
print("ok %d of %d, %d answering processes" % (ok, n, len(pids)))
for e in errors[:5]:
    print("  " + e)
sys.exit(0 if ok == n else 1)
