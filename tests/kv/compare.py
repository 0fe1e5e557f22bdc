#!/usr/bin/python3
"""Send the same memcached request sequences to two servers (the real
memcached and usnet-kv) and compare the replies byte for byte.

usage: compare.py [--prefix P] HOST_A PORT_A HOST_B PORT_B [SCENARIO...]
       compare.py --list

Prints one line per scenario: "PASS P-NAME" or "FAIL P-NAME: first
difference ..." (P is kv-compare unless --prefix says otherwise).

Replies that legitimately differ are normalised before comparing, and only
these:
  - CAS unique numbers (gets/gats "VALUE k f n CAS", meta "c<cas>" flags):
    each server counts its own; they are replaced by "CAS".
  - "VERSION ..." (the version string).
  - "STAT name value" lines (each server has its own statistics set).
  - "ME" debug lines: la=, cas=, cls= and size= describe server internals.
"""
import re
import socket
import sys
import threading
import time

# A request no scenario uses, whose reply ends what a step sent.
SENTINEL = b"mg __end__ k\r\n"
SENTINEL_REPLY = b"EN k__end__\r\n"

BIG = bytes((i * 7 + 3) % 256 for i in range(300000))
BIN = b"a\x00b\r\nc\nEND\r\n\xff\xfe"

# Each scenario: a list of steps.
#   bytes           sent as is (the reply is read until a sentinel "mn")
#   ("sleep", s)    wait
#   ("cas", key)    "gets key" and remember the CAS as {cas} for later steps
#   ("raw", bytes)  send without a sentinel, read until EOF or 0.5 s of quiet
SCENARIOS = {
    "basic-set-get": [b"set a 5 0 3\r\nabc\r\nget a\r\nget a b a\r\ngets a\r\n"],
    "add-replace": [b"add a 0 0 1\r\nx\r\nadd a 0 0 1\r\ny\r\nreplace a 1 0 2\r\nzz\r\nreplace nope 0 0 1\r\nq\r\nget a nope\r\n"],
    "append-prepend": [b"append a 0 0 1\r\nx\r\nprepend a 0 0 1\r\nx\r\nset a 7 0 2\r\nmm\r\nappend a 9 0 2\r\n>>\r\nprepend a 9 0 2\r\n<<\r\nget a\r\n"],
    "cas": [b"cas a 0 0 1 1\r\nx\r\nset a 0 0 1\r\nx\r\n", ("cas", b"a"),
            b"cas a 0 0 1 {cas}\r\ny\r\ncas a 0 0 1 {cas}\r\nz\r\ngets a\r\n"],
    "cas-noreply": [b"set a 0 0 1\r\nx\r\n", ("cas", b"a"), b"cas a 0 0 1 {cas} noreply\r\nq\r\nget a\r\n"],
    "delete": [b"set a 0 0 1\r\nx\r\ndelete a\r\ndelete a\r\nset a 0 0 1\r\nx\r\ndelete a 0\r\ndelete a 1\r\n"
               b"delete a noreply\r\ndelete a 0 noreply\r\ndelete a x y\r\ndelete\r\n"],
    "incr-decr": [b"set n 3 0 3\r\n100\r\ndecr n 1\r\nget n\r\nincr n 5\r\ndecr n 1000\r\nget n\r\n"
                  b"incr n 18446744073709551615\r\nincr n 1\r\nget n\r\n"],
    "incr-wrap": [b"set n 0 0 20\r\n18446744073709551615\r\nincr n 1\r\nget n\r\nincr n 18446744073709551615\r\n"],
    "incr-range": [b"set b 5 0 20\r\n99999999999999999999\r\nincr b 1\r\nset c 0 0 22\r\n0000000000000000000007\r\n"
                   b"incr c 1\r\nget c\r\nset d 0 0 3\r\n 12\r\nincr d 1\r\nset e 0 0 3\r\n12 \r\nincr e 1\r\n"
                   b"set f 0 0 3\r\n1 2\r\nincr f 1\r\nset g 0 0 2\r\n-0\r\nincr g 1\r\nma b\r\n"],
    "append-too-large": [b"set a 0 0 900000\r\n" + b"x" * 900000 + b"\r\nappend a 0 0 200000\r\n" + b"y" * 200000
                         + b"\r\nmg a s\r\nms a 200000 MA\r\n" + b"y" * 200000 + b"\r\nmg a s\r\n"],
    "incr-grow": [b"set n 0 0 1\r\n9\r\nincr n 1\r\nget n\r\nincr n 99999\r\ngets n\r\n"],
    "incr-errors": [b"set s 0 0 2\r\n-1\r\nincr s 1\r\nset e 0 0 0\r\n\r\nincr e 1\r\nincr n -1\r\nincr n abc\r\n"
                    b"incr nope 1\r\ndecr nope 1\r\nincr\r\nincr a\r\nincr a 1 2 3\r\nincr s 1 noreply\r\n"
                    b"incr n 18446744073709551616\r\n"],
    "touch-gat": [b"set a 0 0 1\r\nx\r\ntouch a 100\r\ntouch nope 10\r\ntouch a\r\ntouch a x\r\n"
                  b"gat 100 a nope\r\ngats 100 a\r\ngat\r\ngat 10\r\ngat x a\r\ntouch a 10 noreply\r\n"],
    # Both servers count time in whole seconds from their own start, so a
    # TTL of N expires between N-1 and N seconds after the set: TTLs of 2
    # and sleeps past them keep these runs from racing a clock tick.
    "expiry": [b"set a 0 2 1\r\nx\r\nset b 0 100 1\r\ny\r\nset c 0 -1 1\r\nz\r\nget a b c\r\n",
               ("sleep", 2.6), b"get a b c\r\n"],
    "expiry-absolute": [b"set a 0 1000000000 1\r\nx\r\nset b 0 4000000000 1\r\ny\r\nset c 0 2592000 1\r\nz\r\nget a b c\r\n"],
    "expiry-touch": [b"set a 0 2 1\r\nx\r\ntouch a 100\r\nset b 0 100 1\r\ny\r\ngat 2 b\r\n",
                     ("sleep", 2.6), b"get a b\r\n"],
    "flush": [b"set a 0 0 1\r\nx\r\nflush_all\r\nget a\r\nset a 0 0 1\r\nx\r\nget a\r\nflush_all 0\r\nflush_all x\r\n"
              b"flush_all noreply\r\nflush_all 1 2 3\r\nflush_all 0 noreply\r\nget a\r\n"],
    "flush-delay": [b"set a 0 0 1\r\nx\r\nflush_all 3\r\nget a\r\n", ("sleep", 3.2),
                    b"get a\r\nset b 0 0 1\r\ny\r\nget b\r\nflush_all\r\n"],
    "noreply": [b"set a 0 0 1 noreply\r\nx\r\nadd a 0 0 1 noreply\r\ny\r\nreplace a 0 0 1 noreply\r\nz\r\n"
                b"append a 0 0 1 noreply\r\n1\r\nprepend a 0 0 1 noreply\r\n0\r\nget a\r\n"
                b"set n 0 0 1 noreply\r\n5\r\nincr n 2 noreply\r\ndecr n 1 noreply\r\nget n\r\n"
                b"verbosity 1 noreply\r\nset a 0 0 1 noreply\r\nxyz\r\nget a\r\n"],
    "errors-unknown": [b"\r\n", b"x\r\n", b"GET a\r\n", b"foo bar\r\n", b"gets\r\n", b"get\r\n", b"sets a 0 0 1\r\n",
                       b"mx\r\n", b"mg\r\n", b"ms\r\n", b"version\r\n", b"verbosity\r\nverbosity 1\r\nverbosity x\r\n"],
    "errors-storage": [b"set a 0 0 1\r\nab\r\nget a\r\n", b"set a 0 0 -1\r\nget a\r\n", b"set a x 0 1\r\nx\r\n",
                       b"set a 0 x 1\r\nx\r\n", b"set a 0 0 x\r\nx\r\n", b"set a -1 0 1\r\nx\r\nget a\r\n",
                       b"set a 4294967296 0 1\r\nx\r\nget a\r\n", b"set a 0 0 1 2 3\r\nx\r\n", b"set a 0\r\n",
                       b"cas a 0 0 1\r\n", b"cas a 0 0 1 x\r\nz\r\n", b"set q 0 0 1\r\nxyz\r\nget q\r\n",
                       b"set a 0 0 1\r\nx\rget a\r\n"],
    "key-too-long": [b"get " + b"k" * 251 + b"\r\n", b"set b 0 0 1\r\nx\r\nget b " + b"k" * 251 + b" b\r\n",
                     b"set " + b"k" * 251 + b" 0 0 1\r\nx\r\n", b"get " + b"k" * 250 + b"\r\n",
                     b"set " + b"k" * 250 + b" 0 0 1\r\nx\r\nget " + b"k" * 250 + b"\r\n",
                     b"delete " + b"k" * 251 + b"\r\nincr " + b"k" * 251 + b" 1\r\ntouch " + b"k" * 251 + b" 1\r\n"],
    "too-large": [b"set a 0 0 1\r\nx\r\nset a 0 0 2000000\r\n" + b"x" * 2000002 + b"get a\r\n",
                  b"set a 0 0 2000000 noreply\r\n" + b"x" * 2000002 + b"get a\r\n",
                  b"add big 0 0 1048576\r\n" + b"y" * 1048578 + b"get big\r\n"],
    "large-value": [b"set big 1 0 %d\r\n" % len(BIG) + BIG + b"\r\nget big\r\nappend big 0 0 3\r\nEND\r\ngets big\r\n"],
    "binary-safe": [b"set bin 0 0 %d\r\n" % len(BIN) + BIN + b"\r\nget bin\r\nmg bin v s\r\n",
                    b"set \x01\x02 0 0 1\r\nx\r\nget \x01\x02\r\n"],
    "pipelined": [b"".join(b"set k%d 0 0 %d\r\n%s\r\n" % (i, len(str(i)), str(i).encode()) for i in range(200))
                  + b"get " + b" ".join(b"k%d" % i for i in range(0, 200, 3)) + b"\r\n"
                  + b"".join(b"incr k%d 1\r\ndelete k%d\r\n" % (i, i + 1) for i in range(0, 100, 2))],
    "multiget-long": [b"get " + b" ".join(b"key%04d" % i for i in range(600)) + b"\r\n"],
    "meta-get": [b"set c 3 0 3\r\nabc\r\nmg c v k t f s\r\nmg c\r\nmg c v\r\nmg nope\r\nmg nope q\r\n"
                 b"mg nope k O123\r\nmg c q k\r\nmg c c\r\nmg c O12345678901234567890123456789012\r\n"
                 b"mg c O123456789012345678901234567890123\r\nmg c v v\r\nmg c !\r\nmg c T30 t\r\nmg c t\r\n"
                 b"mg c h\r\nmg c h\r\nmg " + b"k" * 251 + b" v\r\nmg c s v f t k c O1 q\r\n"],
    "meta-set": [b"ms c 2\r\nhi\r\nms c 2 T0 F5 q\r\nhi\r\nms c 2 MA\r\nyo\r\nmg c v f\r\nms c S2\r\nhi\r\n"
                 b"ms c 2 I\r\nxx\r\nms nope 2 C1\r\nxx\r\nms c x\r\nms c 2 ME\r\nzz\r\nms nope 2 MR\r\nzz\r\n"
                 b"ms nope 2 MA\r\nzz\r\nms c 2 MP\r\n<<\r\nmg c v\r\nms c 2 MX\r\nzz\r\nms c 2 k O9\r\nok\r\n"
                 b"ms c 2 T-1\r\nxx\r\nmg c\r\nms c 1\r\nxyz\r\nms c -1\r\nms c 2 Tx\r\nab\r\nms c 2 q\r\nxy\r\n"
                 b"ms c\r\nms c 1 MSS\r\nx\r\nms c 1 !\r\nx\r\nms c 1 q q\r\nx\r\nms c 1 T1 Tx\r\nx\r\nms c 2 F4294967295 T100\r\nab\r\nmg c f t v\r\n"],
    "meta-set-cas": [b"ms c 2\r\nhi\r\n", ("cas", b"c"), b"ms c 2 C{cas}\r\nyo\r\nms c 2 C{cas}\r\nno\r\nmg c v\r\n"
                     b"md c C{cas}\r\nmd c C1\r\n"],
    "meta-set-large": [b"ms c 2000000\r\n" + b"x" * 2000002 + b"mg c v\r\nms c 2000000 q\r\n" + b"x" * 2000002 + b"mn\r\n"],
    "meta-delete": [b"set c 0 0 1\r\nx\r\nmd nope\r\nmd nope q\r\nmd c q\r\nmd c\r\nset c 0 0 1\r\nx\r\n"
                    b"md c k O7\r\nmd nope k O7\r\nmd " + b"k" * 251 + b"\r\nmd c !\r\n"],
    "meta-arith": [b"ma nope\r\nma nope N0 J10\r\nma nope\r\nma nope v\r\nma nope MD D100 v\r\nma nope q\r\n"
                   b"ma nope q MI D1 v\r\nmg nope v\r\nma nope M+ D5 v t\r\nma nope M- D2 v\r\nma nope MX\r\n"
                   b"ma nope Dx\r\nma nope2 N0 Jx\r\nset s 0 0 1\r\nx\r\nma s\r\nma nope k O5 v\r\n"
                   b"ma missing k O5\r\nma missing q\r\nma nope MI D18446744073709551615 v\r\n"],
    "meta-stale-win": [b"mg v N30 s t v\r\nmg v s v\r\nms v 3 T100\r\nnew\r\nmg v v\r\nmd v I T30\r\nmg v v c\r\nmg v v\r\n"
                       b"ms v 3\r\nnew\r\nmg v v\r\nset r 0 10 1\r\nx\r\nmg r R30 v\r\nmg r R30 v\r\nmg r R5 v\r\n"
                       b"mg r R\r\nmg r Rx\r\nmg q N\r\nmg q2 Nx\r\nmg q3 N0 q\r\nmg q3 q\r\nmd q3 I q\r\nmg q3 v\r\n"],
    "meta-base64-keys": [b"ms Zm9v 2 b\r\nhi\r\nmg Zm9v b v k\r\nget foo\r\nmg foo k v\r\nmd Zm9v b k q\r\nmg foo\r\n"
                         b"mg Zm9v= b\r\nmg !!! b\r\nmd !!! b\r\nma !!! b\r\nms !!! 1 b\r\nx\r\nmg Zm9vYg b k\r\n"
                         b"ma YmFy b N0 J1 k v\r\nms AAEgAw== 3 b k c\r\nabc\r\nmg AAEgAw== b k v s\r\n"
                         b"mg AAEgAw== k\r\nmg Zg== b k O1\r\nmg Zg b\r\nmg ==== b\r\n"],
    "meta-ttl-order": [b"mg y2 t N30\r\nmg y2 t\r\nmg y3 N30 t\r\nset x 0 100 1\r\nx\r\nmg x t T50\r\nmg x T60 t\r\n"
                       b"ma a3 t N30\r\nma a4 N30 t\r\nma a4 t T9\r\nma a4 t\r\nme x\r\nme a4\r\nset n 0 0 1\r\n1\r\n"
                       b"incr n 1\r\nme n\r\ntouch n 0\r\nme n\r\n"],
    "meta-debug": [b"set c 0 0 3\r\nabc\r\nme c\r\nme nope\r\nme\r\nmn\r\nms Zm9v 2 b\r\nhi\r\nme Zm9v b\r\nme foo\r\n"
                   b"me Zm9v\r\nme Zm9v b x\r\nme Zm9v x\r\nme Zm9v= b\r\nme c b\r\nme c q\r\n"],
    "stats": [b"set a 0 0 1\r\nx\r\nget a\r\nstats\r\nstats foo\r\nstats detail\r\nstats items\r\n"
              b"stats settings\r\nstats reset\r\n"],
    "quit": [("raw", b"set a 0 0 1\r\nx\r\nget a\r\nquit\r\nget a\r\n")],
    "long-line-dropped": [("raw", b"a" * 3000)],
    "http-dropped": [("raw", b"GET / HTTP/1.1\r\n")],
}


def norm(data):
    out = []
    for line in data.split(b"\r\n"):
        line = re.sub(rb"^(VALUE \S+ \d+ \d+) \d+$", rb"\1 CAS", line)
        if re.match(rb"^(VA|HD|EN|NF|NS|EX)( |$)", line):
            line = re.sub(rb" c\d+", b" cCAS", line)
        if line.startswith(b"VERSION "):
            line = b"VERSION X"
        if line.startswith(b"STAT "):
            continue
        if line.startswith(b"ME "):
            line = re.sub(rb" (la|cas|cls|size)=\d+", rb" \1=N", line)
        out.append(line)
    return b"\r\n".join(out)


def read_until(sock, suffix, timeout=5.0):
    buf = b""
    sock.settimeout(timeout)
    while not buf.endswith(suffix):
        try:
            d = sock.recv(1 << 20)
        except socket.timeout:
            return buf + b"<TIMEOUT>"
        if not d:
            return buf + b"<EOF>"
        buf += d
    return buf


def read_raw(sock):
    buf = b""
    sock.settimeout(0.5)
    while True:
        try:
            d = sock.recv(1 << 20)
        except socket.timeout:
            return buf + b"<OPEN>"
        except ConnectionResetError:
            return buf + b"<EOF>"
        if not d:
            return buf + b"<EOF>"
        buf += d


def run(host, port, steps, timeout=5.0):
    """Run one scenario on a fresh connection; returns the transcript."""
    s = socket.create_connection((host, port), timeout=5)
    s.sendall(b"flush_all\r\n")
    out = [read_until(s, b"OK\r\n")]
    cas = b""
    for st in steps:
        if isinstance(st, bytes):
            s.sendall(st.replace(b"{cas}", cas) + SENTINEL)
            out.append(read_until(s, SENTINEL_REPLY, timeout))
        elif st[0] == "sleep":
            time.sleep(st[1])
        elif st[0] == "cas":
            s.sendall(b"gets " + st[1] + b"\r\n")
            r = read_until(s, b"END\r\n")
            m = re.match(rb"VALUE \S+ \d+ \d+ (\d+)", r)
            cas = m.group(1) if m else b"0"
            out.append(r)
        elif st[0] == "raw":
            s.sendall(st[1])
            out.append(read_raw(s))
    s.close()
    return out


def run_all(host, port, names, results):
    for n in names:
        try:
            results[n] = run(host, port, SCENARIOS[n])
        except Exception as e:  # a dead server, a refused connection ...
            results[n] = ["<exception %r>" % e]


def main():
    if "--list" in sys.argv:
        print("\n".join(SCENARIOS))
        return 0
    args = sys.argv[1:]
    prefix = "kv-compare"
    if args[:1] == ["--prefix"]:
        prefix, args = args[1], args[2:]
    ha, pa, hb, pb = args[0], int(args[1]), args[2], int(args[3])
    names = args[4:] or list(SCENARIOS)
    ra, rb = {}, {}
    ta = threading.Thread(target=run_all, args=(ha, pa, names, ra))
    tb = threading.Thread(target=run_all, args=(hb, pb, names, rb))
    ta.start(); tb.start(); ta.join(); tb.join()
    failed = 0
    for n in names:
        a = [norm(x) if isinstance(x, bytes) else x for x in ra[n]]
        b = [norm(x) if isinstance(x, bytes) else x for x in rb[n]]
        if a == b:
            print("PASS %s-%s" % (prefix, n))
            continue
        failed += 1
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                break
        else:
            i = min(len(a), len(b))
        x = a[i] if i < len(a) else b"<none>"
        y = b[i] if i < len(b) else b"<none>"
        j = 0
        while j < min(len(x), len(y)) and x[j] == y[j]:
            j += 1
        lo = max(0, j - 60)
        print("FAIL %s-%s: step %d differs at byte %d: memcached %r, usnet-kv %r"
              % (prefix, n, i, j, x[lo:j + 80], y[lo:j + 80]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
