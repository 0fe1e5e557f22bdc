#!/usr/bin/python3
"""Throw seeded random and malformed requests at a memcached-compatible
server and check it stays up and keeps answering.  With a second server,
also compare the replies of whole-line random requests (commands built from
the real command words, random arguments).

usage: fuzz_sessions.py HOST PORT SEED COUNT [HOST_B PORT_B]"""
import random
import socket
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
import compare  # noqa: E402

WORDS = [b"get", b"gets", b"gat", b"gats", b"set", b"add", b"replace", b"append", b"prepend",
         b"cas", b"delete", b"incr", b"decr", b"touch", b"flush_all", b"verbosity", b"version",
         b"mg", b"ms", b"md", b"ma", b"mn", b"me", b"stats"]
ARGS = [b"k", b"key", b"0", b"1", b"-1", b"2", b"100", b"x", b"noreply", b"18446744073709551616",
        b"4294967296", b"v", b"q", b"T1", b"F7", b"C1", b"MA", b"ME", b"MX", b"N0", b"J5", b"D2",
        b"O1", b"c", b"f", b"t", b"s", b"k" * 251, b"\x00", b"\xff", b"b", b"Zm9v", b"I", b"h", b"l",
        b"N30", b"R5", b"u", b"E5", b"MI", b"MD", b"M+", b"Q"]


def garbage(rng):
    n = rng.randrange(1, 300)
    return bytes(rng.randrange(256) for _ in range(n))


def random_line(rng):
    words = [rng.choice(WORDS)] + [rng.choice(ARGS) for _ in range(rng.randrange(0, 7))]
    line = b" ".join(words) + b"\r\n"
    if rng.random() < 0.3:
        line += b"ab\r\n"  # a data block, or a stray line
    return line


def alive(host, port):
    s = socket.create_connection((host, port), timeout=5)
    s.sendall(b"version\r\n")
    r = compare.read_until(s, b"\r\n")
    s.close()
    return r.startswith(b"VERSION ")


def main():
    host, port, seed, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    rng = random.Random(seed)
    compared = 0
    # 1. Garbage: the server may answer ERROR or hang up, but must survive.
    for _ in range(count):
        s = socket.create_connection((host, port), timeout=5)
        s.sendall(garbage(rng) + b"\r\n")
        compare.read_raw(s) if rng.random() < 0.05 else None
        s.close()
    if not alive(host, port):
        print("server stopped answering after garbage")
        return 1
    # 2. Random command lines: same replies as the reference server.
    if len(sys.argv) > 6:
        hb, pb = sys.argv[5], int(sys.argv[6])
        compared = 0
        for i in range(count):
            req = b"".join(random_line(rng) for _ in range(5))
            step = [req]
            a = compare.norm(b"".join(compare.run(hb, pb, step, 0.3)))
            if a.endswith(b"<TIMEOUT>"):
                # memcached holds its replies while it waits for the rest
                # of a value; such a stream has no reply to compare yet.
                continue
            compared += 1
            b = compare.norm(b"".join(compare.run(host, port, step, 2.0)))
            if a != b:
                print("request %r: memcached %r, usnet-kv %r" % (req, a, b))
                return 1
    if not alive(host, port):
        print("server stopped answering")
        return 1
    print("%d garbage sessions survived, %d random request streams compared"
          % (count, compared if len(sys.argv) > 6 else 0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
