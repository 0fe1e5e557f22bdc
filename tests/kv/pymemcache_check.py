#!/usr/bin/python3
"""Drive a memcached-compatible server with pymemcache (a real client
library) and check every answer.  usage: pymemcache_check.py HOST PORT
Exits 0 when every check holds, else prints the first failure and exits 1."""
import sys

from pymemcache.client.base import Client


def main():
    c = Client((sys.argv[1], int(sys.argv[2])), connect_timeout=5, timeout=5)
    checks = []

    def check(name, got, want):
        if got != want:
            print("%s: got %r, want %r" % (name, got, want))
            sys.exit(1)
        checks.append(name)

    c.flush_all()
    check("set", c.set("a", b"1", noreply=False), True)
    check("get", c.get("a"), b"1")
    check("get-missing", c.get("nope"), None)
    check("add-existing", c.add("a", b"2", noreply=False), False)
    check("add-new", c.add("b", b"2", noreply=False), True)
    check("replace", c.replace("b", b"3", noreply=False), True)
    check("replace-missing", c.replace("zz", b"3", noreply=False), False)
    check("append", c.append("b", b"4", noreply=False), True)
    check("prepend", c.prepend("b", b"0", noreply=False), True)
    check("get-many", c.get_many(["a", "b", "nope"]), {"a": b"1", "b": b"034"})
    value, cas = c.gets("a")
    check("gets", value, b"1")
    check("cas-ok", c.cas("a", b"5", cas, noreply=False), True)
    check("cas-stale", c.cas("a", b"6", cas, noreply=False), False)
    check("cas-missing", c.cas("zz", b"6", cas, noreply=False), None)
    check("incr", c.incr("a", 10), 15)
    check("decr", c.decr("a", 100), 0)
    check("incr-missing", c.incr("zz", 1), None)
    check("touch", c.touch("a", 100, noreply=False), True)
    check("delete", c.delete("a", noreply=False), True)
    check("delete-missing", c.delete("a", noreply=False), False)
    blob = bytes(range(256)) * 1000
    check("set-binary", c.set("bin", blob, noreply=False), True)
    check("get-binary", c.get("bin"), blob)
    c.set_many({"k%d" % i: b"v%d" % i for i in range(100)}, noreply=False)
    check("set-many", c.get_many(["k%d" % i for i in range(100)]),
          {"k%d" % i: b"v%d" % i for i in range(100)})
    check("version", bool(c.version()), True)
    check("stats", "curr_items" in {k.decode() if isinstance(k, bytes) else k for k in c.stats()}, True)
    c.close()
    print("%d pymemcache checks passed" % len(checks))


if __name__ == "__main__":
    main()
