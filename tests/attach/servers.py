#!/usr/bin/env python3
"""Servers that hand accepted sockets to other processes, as classic Unix
daemons do.  Each answers every line "ping N" with "pong N PID" (PID: the
process that answered) and closes the connection.

  servers.py fork-close ADDR PORT    accept, fork, the parent closes its copy
                                     at once, the child answers (inetd,
                                     rsyncd, vsftpd)
  servers.py scm-worker ADDR PORT    a worker forked at start receives every
                                     accepted socket over a UNIX socket
                                     (SCM_RIGHTS); the parent closes its copy
                                     at once (Node's cluster, vsftpd)
  servers.py pidfd-worker ADDR PORT  a worker forked at start takes each
                                     accepted socket from the parent with
                                     pidfd_getfd(2), given its number
  servers.py echo ADDR PORT          echoes every connection until its end
                                     (a thread each), printing each peer
  servers.py drop-echo ADDR PORT     as echo, but binds as root and then
                                     drops to nobody (setuid) before serving
  servers.py reexec ADDR PORT        the server re-execs itself for every
                                     connection (sshd does): the child execs
                                     "servers.py answer-fd FD" with the
                                     connection inherited at the same number
"""
import os
import signal
import socket
import sys


def answer(conn):
    f = conn.makefile("rb")
    line = f.readline().decode().strip()
    f.close()
    if line.startswith("ping "):
        conn.sendall(("pong %s %d\n" % (line[5:], os.getpid())).encode())
    conn.close()


def listener(addr, port):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(64)
    return ls


def fork_close(addr, port):
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)   # no zombies
    ls = listener(addr, port)
    print("ready", flush=True)
    while True:
        conn, _ = ls.accept()
        if os.fork() == 0:
            ls.close()
            answer(conn)
            os._exit(0)
        conn.close()   # at once: the child's copy must live on


def scm_worker(addr, port):
    parent_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    ls = listener(addr, port)
    if os.fork() == 0:
        ls.close()
        parent_end.close()
        while True:
            msg, fds, _, _ = socket.recv_fds(worker_end, 16, 4)
            if not msg:
                os._exit(0)
            for fd in fds:
                answer(socket.socket(fileno=fd))
    worker_end.close()
    print("ready", flush=True)
    while True:
        conn, _ = ls.accept()
        socket.send_fds(parent_end, [b"c"], [conn.fileno()])
        conn.close()   # at once: the worker's copy is in flight


def pidfd_worker(addr, port):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    SYS_pidfd_getfd = 438
    parent = os.getpid()
    to_worker, from_parent = socket.socketpair()
    ls = listener(addr, port)
    if os.fork() == 0:
        ls.close()
        pidfd = os.pidfd_open(parent)
        f = from_parent.makefile("rb")
        for line in f:
            fd = libc.syscall(SYS_pidfd_getfd, pidfd, int(line), 0)
            if fd < 0:
                print("pidfd_getfd: errno %d" % ctypes.get_errno(), flush=True)
                os._exit(1)
            from_parent.sendall(b"k")   # the parent may close its copy now
            answer(socket.socket(fileno=fd))
        os._exit(0)
    print("ready", flush=True)
    while True:
        conn, _ = ls.accept()
        to_worker.sendall(b"%d\n" % conn.fileno())
        to_worker.recv(1)
        conn.close()


def echo(addr, port, drop=False):
    import threading

    def serve(conn):
        while True:
            b = conn.recv(65536)
            if not b:
                break
            conn.sendall(b)
        conn.close()

    ls = listener(addr, port)
    if drop:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    print("ready uid=%d" % os.getuid(), flush=True)
    while True:
        conn, peer = ls.accept()
        print("peer %s" % peer[0], flush=True)
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def reexec(addr, port):
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    ls = listener(addr, port)
    print("ready", flush=True)
    while True:
        conn, _ = ls.accept()
        if os.fork() == 0:
            fd = conn.fileno()
            os.set_inheritable(fd, True)
            os.execv(sys.executable, [sys.executable, os.path.abspath(__file__), "answer-fd", str(fd)])
        conn.close()


if __name__ == "__main__":
    if sys.argv[1] == "answer-fd":
        answer(socket.socket(fileno=int(sys.argv[2])))
        sys.exit(0)
    mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    {"fork-close": fork_close, "scm-worker": scm_worker, "reexec": reexec, "echo": echo, "pidfd-worker": pidfd_worker,
     "drop-echo": lambda a, p: echo(a, p, drop=True)}[mode](addr, port)
