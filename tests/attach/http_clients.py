#!/usr/bin/env python3
"""http_clients.py ADDR PORT N: N GET requests, each on a new connection;
prints "ok K of N from P processes" (the answers are "pid PID") and exits 0
when all were answered."""
import http.client
import sys

addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ok, pids, errors = 0, set(), []
for i in range(n):
    try:
        c = http.client.HTTPConnection(addr, port, timeout=5)
        c.request("GET", "/%d" % i)
        r = c.getresponse()
        body = r.read().decode()
        c.close()
        if r.status == 200 and body.startswith("pid "):
            ok += 1
            pids.add(body.split()[1])
        else:
            errors.append("%d: %d %r" % (i, r.status, body[:60]))
    except (OSError, http.client.HTTPException) as e:
        errors.append("%d: %s" % (i, e))
print("ok %d of %d from %d processes" % (ok, n, len(pids)))
for e in errors[:5]:
    print("  " + e)
sys.exit(0 if ok == n else 1)
