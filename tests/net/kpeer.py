#!/usr/bin/env python3
"""The kernel's side of the network tests: a small TCP/UDP peer on Linux
sockets that talks to usnet-nc and reports what it saw.

  kpeer.py tcp-connect HOST PORT FILE   connect (retrying while refused, 10 s),
  kpeer.py tcp-listen HOST PORT FILE    or accept one connection; send FILE,
                                        shut down the sending side, read to the
                                        end; print the received bytes' sha256
  kpeer.py tcp-reset HOST PORT          connect (retrying, 10 s), read some bytes,
                                        then abort the connection with a RST
  kpeer.py tcp-refused HOST PORT        exit 0 when connect() gets ECONNREFUSED
  kpeer.py udp-refused HOST PORT        exit 0 when a connected UDP socket gets
                                        ECONNREFUSED (ICMP port unreachable)
  kpeer.py udp-ping HOST PORT           send "ping" until a reply; print it
  kpeer.py udp-echo HOST PORT           answer one datagram with "pong:" + it;
                                        print what came
HOST is an IPv4 or an IPv6 address (tests/net6); the socket's family follows it.
Every wait is bounded; failures print one line on stderr and exit 1.
"""
import errno
import hashlib
import socket
import struct
import sys
import threading
import time

CHUNK = 1 << 20
TIMEOUT = 60.0


def die(msg):
    print("kpeer: " + msg, file=sys.stderr)
    sys.exit(1)


def family(host):
    """AF_INET6 for an IPv6 address (it has a colon), else AF_INET."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def send_file(sock, path, result):
    try:
        with open(path, "rb") as f:
            while True:
                block = f.read(CHUNK)
                if not block:
                    break
                sock.sendall(block)
        sock.shutdown(socket.SHUT_WR)
    except OSError as e:
        result.append("send: %s" % e)


def exchange(sock, path):
    sock.settimeout(TIMEOUT)
    errors = []
    sender = threading.Thread(target=send_file, args=(sock, path, errors))
    sender.start()
    digest = hashlib.sha256()
    buf = bytearray(CHUNK)
    try:
        while True:
            n = sock.recv_into(buf)
            if n == 0:
                break
            digest.update(memoryview(buf)[:n])
    except OSError as e:
        errors.append("receive: %s" % e)
    sender.join(TIMEOUT)
    sock.close()
    if errors:
        die("; ".join(errors))
    print(digest.hexdigest())


def tcp_connect(host, port, path):
    end = time.monotonic() + 10
    while True:
        s = socket.socket(family(host), socket.SOCK_STREAM)
        s.settimeout(3)
        try:
            s.connect((host, port))
            break
        except OSError as e:
            s.close()
            if time.monotonic() > end:
                die("connect %s:%d: %s" % (host, port, e))
            time.sleep(0.1)
    exchange(s, path)


def tcp_listen(host, port, path):
    ls = socket.socket(family(host), socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(1)
    ls.settimeout(30)
    try:
        s, _ = ls.accept()
    except OSError as e:
        die("accept on %s:%d: %s" % (host, port, e))
    ls.close()
    exchange(s, path)


def tcp_reset(host, port):
    end = time.monotonic() + 10
    while True:
        try:
            s = socket.create_connection((host, port), timeout=3)
            break
        except OSError as e:
            if time.monotonic() > end:
                die("connect %s:%d: %s" % (host, port, e))
            time.sleep(0.1)
    s.settimeout(10)
    if not s.recv(65536):
        die("connection closed before any data came")
    time.sleep(0.2)
    # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def tcp_refused(host, port):
    s = socket.socket(family(host), socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect((host, port))
    except ConnectionRefusedError:
        return
    except OSError as e:
        die("connect %s:%d: %s, expected connection refused (RST)" % (host, port, e))
    die("connect %s:%d succeeded, expected connection refused (RST)" % (host, port))


def udp_refused(host, port):
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    s.connect((host, port))
    s.settimeout(0.5)
    for _ in range(6):
        try:
            s.send(b"anyone there?\n")
            s.recv(2048)
            die("got a reply from closed UDP port %s:%d" % (host, port))
        except ConnectionRefusedError:
            return
        except socket.timeout:
            continue
    die("no ICMP port unreachable from %s:%d within 3 s" % (host, port))


def udp_ping(host, port):
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    s.settimeout(0.5)
    for _ in range(10):
        s.sendto(b"ping\n", (host, port))
        try:
            data, _ = s.recvfrom(65535)
        except socket.timeout:
            continue
        sys.stdout.write(data.decode(errors="replace"))
        return
    die("no UDP reply from %s:%d within 5 s" % (host, port))


def udp_echo(host, port):
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    s.bind((host, port))
    s.settimeout(10)
    try:
        data, peer = s.recvfrom(65535)
    except socket.timeout:
        die("no datagram on %s:%d within 10 s" % (host, port))
    s.sendto(b"pong:" + data, peer)
    sys.stdout.write(data.decode(errors="replace"))


def main(argv):
    if len(argv) < 4:
        die("usage: kpeer.py MODE HOST PORT [FILE]")
    mode, host, port = argv[1], argv[2], int(argv[3])
    if mode == "tcp-connect":
        tcp_connect(host, port, argv[4])
    elif mode == "tcp-listen":
        tcp_listen(host, port, argv[4])
    elif mode == "tcp-reset":
        tcp_reset(host, port)
    elif mode == "tcp-refused":
        tcp_refused(host, port)
    elif mode == "udp-refused":
        udp_refused(host, port)
    elif mode == "udp-ping":
        udp_ping(host, port)
    elif mode == "udp-echo":
        udp_echo(host, port)
    else:
        die("unknown mode " + mode)


if __name__ == "__main__":
    main(sys.argv)
