#!/usr/bin/python3
"""Send 3 MB of random bytes to an echo server (usnet-bench ponger) while
reading, and check every byte comes back in order.  usage: echo_check.py HOST PORT"""
import os
import socket
import sys
import threading


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    data = os.urandom(3 << 20)
    s = socket.create_connection((host, port), timeout=10)
    sender = threading.Thread(target=s.sendall, args=(data,))
    sender.start()
    got = bytearray()
    while len(got) < len(data):
        d = s.recv(1 << 20)
        if not d:
            break
        got += d
    sender.join()
    if bytes(got) != data:
        print("echo differs: %d of %d bytes back" % (len(got), len(data)))
        return 1
    print("3 MiB echoed intact")
    return 0


if __name__ == "__main__":
    sys.exit(main())
