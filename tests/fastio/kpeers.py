#!/usr/bin/env python3
"""The kernel's side of tests/fastio: Linux-socket clients of usnet.

  kpeers.py download HOST PORT FILE   connect (retrying while refused or
                                      unreachable, 10 s), send nothing, write
                                      what arrives to FILE as it arrives
                                      (unbuffered, so that the test can watch
                                      it grow), print its sha256 at the end
  kpeers.py many HOST PORT N BYTES [HOLD]
                                      open N connections at once to an echo
                                      server; on each send BYTES random bytes,
                                      shut down the sending side and check
                                      that exactly those bytes come back; print
                                      "N connections echoed BYTES bytes each
                                      from ADDR[,ADDR...]" (the local addresses)
  kpeers.py echo PORT N [HOLD]        serve N connections on PORT (all
                                      addresses), echoing every byte until the
                                      peer shuts down its side, then print
                                      "echoed N connections BYTES bytes from
                                      ADDR[,ADDR...]" (the peers' addresses)
kpeers.py --one-thread many ...      the same from one thread with epoll
                                      (non-blocking sockets), all N at once
With HOLD (a file name), the program stays until that file exists (30 s at
most) after printing its result, so that a test can read the counters of a
program that runs under `usnet run` before it exits.
Every wait is bounded; failures print one line on stderr and exit 1.
"""
import hashlib
import os
import socket
import sys
import threading
import time

TIMEOUT = 60.0


def die(msg):
    print("kpeers: " + msg, file=sys.stderr)
    sys.exit(1)


def connect(host, port):
    end = time.monotonic() + 10.0
    while True:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(TIMEOUT)
        try:
            s.connect((host, port))
            return s
        except (ConnectionRefusedError, OSError) as e:
            s.close()
            if time.monotonic() > end:
                raise e
            time.sleep(0.1)


def download(host, port, path):
    s = connect(host, port)
    h = hashlib.sha256()
    with open(path, "wb", buffering=0) as f:
        while True:
            block = s.recv(1 << 20)
            if not block:
                break
            h.update(block)
            f.write(block)
    s.close()
    print(h.hexdigest())


def hold(path):
    sys.stdout.flush()
    end = time.monotonic() + 30.0
    while path and not os.path.exists(path) and time.monotonic() < end:
        time.sleep(0.1)


def many(host, port, n, nbytes):
    errors = []
    lock = threading.Lock()
    local = set()

    def one(i):
        try:
            data = os.urandom(nbytes)
            s = connect(host, port)
            with lock:
                local.add(s.getsockname()[0])

            def sender():
                try:
                    s.sendall(data)
                    s.shutdown(socket.SHUT_WR)
                except OSError as e:
                    with lock:
                        errors.append("connection %d send: %s" % (i, e))

            t = threading.Thread(target=sender)
            t.start()
            got = bytearray()
            while True:
                block = s.recv(1 << 16)
                if not block:
                    break
                got += block
            t.join()
            s.close()
            if bytes(got) != data:
                with lock:
                    errors.append("connection %d: %d bytes back of %d, %s" %
                                  (i, len(got), nbytes, "differing" if len(got) == nbytes else "short"))
        except OSError as e:
            with lock:
                errors.append("connection %d: %s" % (i, e))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        die("%d of %d connections failed, first: %s" % (len(errors), n, errors[0]))
    print("%d connections echoed %d bytes each from %s" % (n, nbytes, ",".join(sorted(local))))


def many_one_thread(host, port, n, nbytes):
    import errno
    import selectors
    sel = selectors.DefaultSelector()
    conns = []
    local = set()
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        e = s.connect_ex((host, port))
        if e not in (0, errno.EINPROGRESS):
            die("connection %d: connect: %s" % (i, os.strerror(e)))
        c = {"i": i, "s": s, "data": os.urandom(nbytes), "sent": 0, "got": bytearray(),
             "up": False, "done": False}
        conns.append(c)
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
    left = n
    end = time.monotonic() + TIMEOUT
    while left:
        if time.monotonic() > end:
            die("%d of %d connections unfinished after %d s" % (left, n, TIMEOUT))
        for key, ev in sel.select(1.0):
            c = key.data
            s = c["s"]
            if not c["up"]:
                e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if e:
                    die("connection %d: connect: %s" % (c["i"], os.strerror(e)))
                if not ev & selectors.EVENT_WRITE:
                    continue
                c["up"] = True
                local.add(s.getsockname()[0])
            if ev & selectors.EVENT_WRITE and c["sent"] < nbytes:
                try:
                    c["sent"] += s.send(c["data"][c["sent"]:])
                except BlockingIOError:
                    pass
                if c["sent"] == nbytes:
                    s.shutdown(socket.SHUT_WR)
                    sel.modify(s, selectors.EVENT_READ, c)
            if ev & selectors.EVENT_READ:
                try:
                    block = s.recv(1 << 16)
                except BlockingIOError:
                    continue
                if block:
                    c["got"] += block
                    continue
                if bytes(c["got"]) != c["data"]:
                    die("connection %d: %d bytes back of %d, %s" % (c["i"], len(c["got"]), nbytes,
                        "differing" if len(c["got"]) == nbytes else "short"))
                sel.unregister(s)
                s.close()
                left -= 1
    print("%d connections echoed %d bytes each from %s" % (n, nbytes, ",".join(sorted(local))))


def echo(port, n):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(256)
    ls.settimeout(TIMEOUT)
    total = [0]
    lock = threading.Lock()
    errors = []
    peers = set()

    def serve(c):
        c.settimeout(TIMEOUT)
        try:
            while True:
                block = c.recv(65536)
                if not block:
                    break
                c.sendall(block)
                with lock:
                    total[0] += len(block)
        except OSError as e:
            errors.append(str(e))
        finally:
            c.close()

    threads = []
    try:
        for _ in range(n):
            c, peer = ls.accept()
            peers.add(peer[0])
            t = threading.Thread(target=serve, args=(c,))
            t.start()
            threads.append(t)
    except OSError as e:
        die("echo: accepted %d of %d connections: %s" % (len(threads), n, e))
    for t in threads:
        t.join(TIMEOUT)
    if errors:
        die("echo: " + errors[0])
    print("echoed %d connections %d bytes from %s" % (n, total[0], ",".join(sorted(peers))))


def main(argv):
    one_thread = len(argv) > 1 and argv[1] == "--one-thread"
    if one_thread:
        argv = argv[:1] + argv[2:]
    try:
        if len(argv) == 5 and argv[1] == "download":
            download(argv[2], int(argv[3]), argv[4])
        elif len(argv) in (4, 5) and argv[1] == "echo":
            echo(int(argv[2]), int(argv[3]))
            hold(argv[4] if len(argv) == 5 else None)
        elif len(argv) in (6, 7) and argv[1] == "many":
            (many_one_thread if one_thread else many)(argv[2], int(argv[3]), int(argv[4]), int(argv[5]))
            hold(argv[6] if len(argv) == 7 else None)
        else:
            die("usage: kpeers.py download HOST PORT FILE | [--one-thread] many HOST PORT N BYTES [HOLD] | echo PORT N [HOLD]")
    except OSError as e:
        die(str(e))


if __name__ == "__main__":
    main(sys.argv)
