#!/usr/bin/env python3
"""The kernel's side of tests/fastio: Linux-socket clients of usnet.

  kpeers.py download HOST PORT FILE   connect (retrying while refused or
                                      unreachable, 10 s), send nothing, write
                                      what arrives to FILE as it arrives
                                      (unbuffered, so that the test can watch
                                      it grow), print its sha256 at the end
  kpeers.py many HOST PORT N BYTES    open N connections at once to an echo
                                      server; on each send BYTES random bytes,
                                      shut down the sending side and check
                                      that exactly those bytes come back
  kpeers.py echo PORT N               serve N connections on PORT (all
                                      addresses), echoing every byte until the
                                      peer shuts down its side, then print
                                      "echoed N connections BYTES bytes"
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


def many(host, port, n, nbytes):
    errors = []
    lock = threading.Lock()

    def one(i):
        try:
            data = os.urandom(nbytes)
            s = connect(host, port)

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
    print("%d connections echoed %d bytes each" % (n, nbytes))


def echo(port, n):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(256)
    ls.settimeout(TIMEOUT)
    total = [0]
    lock = threading.Lock()
    errors = []

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
            c, _ = ls.accept()
            t = threading.Thread(target=serve, args=(c,))
            t.start()
            threads.append(t)
    except OSError as e:
        die("echo: accepted %d of %d connections: %s" % (len(threads), n, e))
    for t in threads:
        t.join(TIMEOUT)
    if errors:
        die("echo: " + errors[0])
    print("echoed %d connections %d bytes" % (n, total[0]))


def main(argv):
    try:
        if len(argv) == 5 and argv[1] == "download":
            download(argv[2], int(argv[3]), argv[4])
        elif len(argv) == 4 and argv[1] == "echo":
            echo(int(argv[2]), int(argv[3]))
        elif len(argv) == 6 and argv[1] == "many":
            many(argv[2], int(argv[3]), int(argv[4]), int(argv[5]))
        else:
            die("usage: kpeers.py download HOST PORT FILE | many HOST PORT N BYTES | echo PORT N")
    except OSError as e:
        die(str(e))


if __name__ == "__main__":
    main(sys.argv)
