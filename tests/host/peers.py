#!/usr/bin/env python3
"""The programs of tests/host/run.sh (plain Linux sockets; under `usnet run`
the ones that run there go through usnet without knowing it).

  peers.py serve PORT FILE [HOLD]     accept one connection on 0.0.0.0:PORT,
                                      send FILE, close; print
                                      "sent N bytes to ADDR"; then wait for
                                      the file HOLD to exist (60 s at most)
  peers.py fetch HOST PORT MIBPS      connect, read to the end at most MIBPS
                                      MiB a second; print the bytes' sha256
                                      and the address the data came from
  peers.py hello-server HOST PORT     a kernel service: answer every
                                      connection with "hello HOST\\n" and
                                      print "from ADDR port PORT" (runs
                                      until killed; HOST IPv4 or IPv6)
  peers.py hello HOST PORT [NAME]     connect (2 s), expect "hello NAME\\n"
                                      (NAME: HOST unless given); exit 0
                                      when it came
  peers.py connect-many HOST PORT N   open N connections at once to a
                                      hello-server, all answered and all
                                      open together; print "N connections
                                      from ports LO-HI"
  peers.py bind PORT [HOLD]           bind a TCP socket to 0.0.0.0:PORT and
                                      listen; print "bound" (then wait for
                                      the file HOLD) or the errno's name
  peers.py bind6 PORT [HOLD]          the same with an IPv6 socket on
                                      [::]:PORT (dual-stack: not V6ONLY)
Every wait is bounded; failures print one line on stderr and exit 1.
"""
import errno
import hashlib
import os
import selectors
import socket
import sys
import threading
import time

TIMEOUT = 60.0


def die(msg):
    print("peers: " + msg, file=sys.stderr)
    sys.exit(1)


def serve(port, path, hold=None):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(1)
    ls.settimeout(TIMEOUT)
    c, addr = ls.accept()
    c.settimeout(TIMEOUT)
    sent = 0
    with open(path, "rb") as f:
        while True:
            block = f.read(1 << 18)
            if not block:
                break
            c.sendall(block)
            sent += len(block)
    c.shutdown(socket.SHUT_WR)
    while c.recv(4096):
        pass
    c.close()
    print("sent %d bytes to %s" % (sent, addr[0]), flush=True)
    # Stay (with the listener) until told, so the stack can be looked at.
    deadline = time.monotonic() + TIMEOUT
    while hold and not os.path.exists(hold) and time.monotonic() < deadline:
        time.sleep(0.05)


def fetch(host, port, mibps):
    c = socket.create_connection((host, port), timeout=10)
    c.settimeout(TIMEOUT)
    peer = c.getpeername()[0]
    h = hashlib.sha256()
    start = time.monotonic()
    got = 0
    while True:
        block = c.recv(1 << 16)
        if not block:
            break
        h.update(block)
        got += len(block)
        # Pace the reading: the sender's window closes and opens, and the
        # transfer lasts long enough for the checks that run beside it.
        ahead = got / (mibps * 1048576.0) - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
    c.close()
    print("%s %d bytes from %s" % (h.hexdigest(), got, peer), flush=True)


def hello_server(host, port):
    ls = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(4096)
    msg = ("hello %s\n" % host).encode()

    def answer(c):
        try:
            c.settimeout(5)
            c.sendall(msg)
            c.close()
        except OSError:
            pass

    while True:
        c, addr = ls.accept()
        print("from %s port %d" % addr[:2], flush=True)
        threading.Thread(target=answer, args=(c,), daemon=True).start()


def hello(host, port, name=None):
    name = name or host
    try:
        c = socket.create_connection((host, port), timeout=2)
        c.settimeout(2)
        got = b""
        while not got.endswith(b"\n"):
            block = c.recv(64)
            if not block:
                break
            got += block
    except OSError as e:
        die("%s:%d: %s" % (host, port, e))
    if got != ("hello %s\n" % name).encode():
        die("%s:%d answered %r" % (host, port, got))


def bind(port, hold=None, six=False):
    s = socket.socket(socket.AF_INET6 if six else socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if six:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    try:
        s.bind(("::" if six else "0.0.0.0", port))
        s.listen(1)
        print("bound", flush=True)
        deadline = time.monotonic() + TIMEOUT
        while hold and not os.path.exists(hold) and time.monotonic() < deadline:
            time.sleep(0.05)
    except OSError as e:
        print(errno.errorcode.get(e.errno, str(e.errno)), flush=True)


def connect_many(host, port, n):
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(n):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setblocking(False)
        err = c.connect_ex((host, port))
        if err not in (0, errno.EINPROGRESS):
            die("connect %s:%d: %s" % (host, port, os.strerror(err)))
        socks.append(c)
        sel.register(c, selectors.EVENT_READ)
    answered = 0
    deadline = time.monotonic() + TIMEOUT
    while answered < n and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            try:
                data = key.fileobj.recv(64)
            except BlockingIOError:
                continue
            if not data.startswith(b"hello "):
                die("a connection got %r" % data)
            answered += 1
            sel.unregister(key.fileobj)
    if answered < n:
        die("%d of %d connections answered" % (answered, n))
    ports = sorted(c.getsockname()[1] for c in socks)
    if len(set(ports)) != n:
        die("%d connections on %d local ports" % (n, len(set(ports))))
    print("%d connections from ports %d-%d" % (n, ports[0], ports[-1]), flush=True)


def main(argv):
    try:
        if len(argv) in (4, 5) and argv[1] == "serve":
            serve(int(argv[2]), argv[3], argv[4] if len(argv) == 5 else None)
        elif len(argv) == 5 and argv[1] == "fetch":
            fetch(argv[2], int(argv[3]), float(argv[4]))
        elif len(argv) == 4 and argv[1] == "hello-server":
            hello_server(argv[2], int(argv[3]))
        elif len(argv) in (4, 5) and argv[1] == "hello":
            hello(argv[2], int(argv[3]), argv[4] if len(argv) == 5 else None)
        elif len(argv) == 5 and argv[1] == "connect-many":
            connect_many(argv[2], int(argv[3]), int(argv[4]))
        elif len(argv) in (3, 4) and argv[1] == "bind":
            bind(int(argv[2]), argv[3] if len(argv) == 4 else None)
        elif len(argv) in (3, 4) and argv[1] == "bind6":
            bind(int(argv[2]), argv[3] if len(argv) == 4 else None, six=True)
        else:
            die("usage: see the top of this file")
    except OSError as e:
        die(str(e))


if __name__ == "__main__":
    main(sys.argv)
