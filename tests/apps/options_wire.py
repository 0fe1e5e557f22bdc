#!/usr/bin/env python3
"""Socket options whose effect shows on the wire or in errors, for
tests/apps options_wire (run under `usnet run`, a kernel peer capturing).

usage: options_wire.py HOST PORT cork     IP_TOS 0xb8 and IP_TTL 7 set; ten
                                          100-byte sends under TCP_CORK (with
                                          TCP_NODELAY on), uncorked after
                                          100 ms; then five sends with
                                          MSG_MORE and one without; prints
                                          "sent 1600"
       options_wire.py HOST PORT timeout FLAG
                                          TCP_USER_TIMEOUT 1000 ms; prints
                                          "ready", waits for the file FLAG
                                          (the peer is gone by then), sends,
                                          and prints the error and how long it
                                          took to come ("ETIMEDOUT 1.3");
                                          "ready" names the local address
       options_wire.py HOST PORT device IFACE TCP with SO_BINDTODEVICE IFACE
                                          to HOST:PORT, then with "lo" to
                                          127.0.0.1:PORT; prints each
                                          socket's device and local address
       options_wire.py - PORT pktinfo         UDP on PORT with IP_PKTINFO and
                                          SO_TIMESTAMP: prints "ready", then
                                          for each of two datagrams the
                                          interface index, destination and
                                          local address, and whether its
                                          time is now
"""
import errno
import os
import socket
import struct
import sys
import time

IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)      # not in every python's socket module
SO_TIMESTAMP = getattr(socket, "SO_TIMESTAMP", 29)


def main():
    host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if mode == "pktinfo":
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("0.0.0.0", port))
        u.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        u.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMP, 1)
        print("ready", flush=True)
        for _ in range(2):
            data, anc, flags, addr = u.recvmsg(100, 256)
            out = []
            for level, kind, raw in anc:
                if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
                    idx, spec, dst = struct.unpack("i4s4s", raw[:12])
                    out.append("ifindex %d to %s local %s" % (idx, socket.inet_ntoa(dst), socket.inet_ntoa(spec)))
                elif level == socket.SOL_SOCKET and kind == SO_TIMESTAMP:
                    sec, usec = struct.unpack("qq", raw[:16])
                    out.append("time %s" % ("now" if abs(time.time() - (sec + usec / 1e6)) < 2 else "off"))
            print("%s: %s" % (data.decode(), ", ".join(out)), flush=True)
        return
    if mode == "device":
        out = []
        for dev, to in ((sys.argv[4], host), ("lo", "127.0.0.1")):
            d = socket.socket()
            d.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev.encode())
            d.settimeout(5)
            d.connect((to, port))
            got = d.getsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, 16).rstrip(b"\0").decode()
            out.append("%s %s" % (got, d.getsockname()[0]))
            d.close()
        print("; ".join(out))
        return
    s = socket.create_connection((host, port), timeout=10)
    s.settimeout(None)
    if mode == "cork":
        s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0xB8)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 7)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        for _ in range(10):
            s.send(b"c" * 100)
        time.sleep(0.1)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
        time.sleep(0.1)
        for _ in range(5):
            s.send(b"m" * 100, socket.MSG_MORE)
        s.send(b"m" * 100)
        s.shutdown(socket.SHUT_WR)
        while s.recv(4096):
            pass
        print("sent 1600")
    elif mode == "timeout":
        flag = sys.argv[4]
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 1000)
        print("ready from %s" % s.getsockname()[0], flush=True)
        while not os.path.exists(flag):
            time.sleep(0.05)
        t0 = time.monotonic()
        try:
            s.send(b"x" * 100)
            s.recv(100)
            print("no error")
        except OSError as e:
            name = errno.errorcode.get(e.errno, str(e.errno))
            print("%s %.1f" % (name, time.monotonic() - t0))
    s.close()


if __name__ == "__main__":
    main()
