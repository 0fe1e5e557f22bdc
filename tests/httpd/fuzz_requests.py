#!/usr/bin/env python3
"""Random, mutated and truncated requests against usnet-httpd (seeded, so a
failure can be replayed).  Each connection sends a few requests — valid ones,
valid ones with bytes flipped, inserted or cut, field soup, pure noise —
some of it in pieces, then closes its side or just goes away.  Every answer
must be a well-formed HTTP/1.1 status line, no connection may hang, and at
the end the server must still answer a correct request correctly.

usage: fuzz_requests.py HOST PORT SEED CONNECTIONS EXPECTED_INDEX_FILE"""
import random
import socket
import sys
import time

host, port, seed, nconn, index_file = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
rnd = random.Random(seed)
PATHS = [b"/", b"/index.html", b"/one.bin", b"/style.css", b"/missing", b"/docs", b"/docs/", b"/%41", b"/a?b=c",
         b"/../x", b"http://h/one.bin", b"*", b"/" + b"z" * 300]
METHODS = [b"GET", b"HEAD", b"POST", b"PUT", b"OPTIONS", b"BREW", b"get", b"G ET", b""]
FIELDS = [b"Host: t", b"Range: bytes=0-10", b"Range: bytes=-5", b"Range: bytes=99999-", b"Range: bytes=5-1",
          b"Range: bytes=0-1,3-4", b"If-None-Match: *", b'If-None-Match: "x", W/"y"', b"If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT",
          b"If-Modified-Since: garbage", b"If-Range: \"x\"", b"If-Match: *", b"Connection: close", b"Connection: keep-alive",
          b"Content-Length: 3", b"Content-Length: 0", b"Content-Length: -1", b"Content-Length: 99999999999999999999",
          b"Transfer-Encoding: chunked", b"X-Empty:", b": novalue", b"NoColon", b" leading-space: x",
          b"Host: a", b"If-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT"]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/1.9", b"HTTP/2.0", b"HTTP/1", b"http/1.1", b"HTTP/1.1 ", b""]


def valid_request():
    fields = [b"Host: t"] + rnd.sample(FIELDS[1:12], rnd.randint(0, 3))
    return rnd.choice([b"GET", b"HEAD"]) + b" " + rnd.choice(PATHS[:9]) + b" HTTP/1.1\r\n" + b"".join(f + b"\r\n" for f in fields) + b"\r\n"


def soup_request():
    fields = rnd.sample(FIELDS, rnd.randint(0, 6))
    eol = rnd.choice([b"\r\n", b"\n", b"\r", b"\r\r\n"])
    head = rnd.choice(METHODS) + rnd.choice([b" ", b"  ", b"\t", b""]) + rnd.choice(PATHS) + b" " + rnd.choice(VERSIONS)
    body = b"abc" if rnd.random() < 0.2 else b""
    return head + eol + b"".join(f + eol for f in fields) + eol + body


def mutate(data):
    data = bytearray(data)
    for _ in range(rnd.randint(1, 6)):
        op = rnd.random()
        pos = rnd.randrange(len(data) + 1)
        if op < 0.4 and data:
            data[min(pos, len(data) - 1)] = rnd.randrange(256)
        elif op < 0.7:
            data[pos:pos] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 8)))
        elif data:
            del data[pos:pos + rnd.randint(1, 8)]
    return bytes(data)


def noise():
    return bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 300)))


def one_request():
    r = rnd.random()
    if r < 0.3:
        return valid_request()
    if r < 0.55:
        return mutate(valid_request())
    if r < 0.85:
        return soup_request()
    return noise()


def check_answers(data, what):
    """Every response head in data is well formed (bodies are skipped
    loosely: statuses are what matter here)."""
    if data and not data.startswith(b"HTTP/1.1 "):
        raise SystemExit("FAIL: %s: the answer does not start with a status line: %r" % (what, data[:60]))
    for line in data.split(b"\r\n"):
        if line.startswith(b"HTTP/1.1 "):
            code = line[9:12]
            if not (code.isdigit() and line[12:13] == b" "):
                raise SystemExit("FAIL: %s: bad status line %r" % (what, line[:60]))


def run():
    requests = 0
    statuses = {}
    start = time.time()
    for i in range(nconn):
        stream = b"".join(one_request() for _ in range(rnd.randint(1, 3)))
        requests += stream.count(b" HTTP/")
        if rnd.random() < 0.3:
            stream = stream[:rnd.randint(0, len(stream))]  # truncated
        s = socket.create_connection((host, port), timeout=10)
        try:
            # in pieces, sometimes
            cuts = sorted(rnd.sample(range(len(stream) + 1), min(len(stream) + 1, rnd.randint(0, 3))))
            last = 0
            for c in cuts + [len(stream)]:
                if c > last:
                    s.sendall(stream[last:c])
                    last = c
            how = rnd.random()
            if how < 0.1:
                s.close()  # gone without reading
                continue
            if how < 0.95:
                s.shutdown(socket.SHUT_WR)
            else:
                s.settimeout(0.1)  # stays: a pause, then the client gives up
            got = b""
            deadline = time.time() + 10
            while True:
                try:
                    d = s.recv(65536)
                except socket.timeout:
                    if how >= 0.95:
                        break
                    raise SystemExit("FAIL: connection %d: no end within 10 s (stream %r)" % (i, stream[:80]))
                except ConnectionResetError:
                    break
                if not d:
                    break
                got += d
                if time.time() > deadline:
                    raise SystemExit("FAIL: connection %d: answers without end" % i)
            check_answers(got, "connection %d (stream %r)" % (i, stream[:60]))
            for line in got.split(b"\r\n"):
                if line.startswith(b"HTTP/1.1 "):
                    statuses[line[9:12]] = statuses.get(line[9:12], 0) + 1
        finally:
            s.close()

    # the server is still there, and still right
    want = open(index_file, "rb").read()
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    got = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        got += d
    if not got.startswith(b"HTTP/1.1 200 ") or not got.endswith(b"\r\n\r\n" + want):
        raise SystemExit("FAIL: after the fuzzing, GET / got %r" % got[:100])
    print("seed %d: %d connections, about %d requests, %d answers in %.1f s, statuses %s" % (
        seed, nconn, requests, sum(statuses.values()), time.time() - start,
        " ".join("%s:%d" % (k.decode(), v) for k, v in sorted(statuses.items()))))


try:
    run()
except SystemExit as e:
    if isinstance(e.code, str):
        sys.exit("%s (seed %d: fuzz_requests.py HOST PORT %d %d FILE replays it)" % (e.code, seed, seed, nconn))
    raise
except OSError as e:
    sys.exit("FAIL: %s (seed %d: fuzz_requests.py HOST PORT %d %d FILE replays it)" % (e, seed, seed, nconn))
