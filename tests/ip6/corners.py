#!/usr/bin/python3
# AF_INET6 socket corners, printed one per line so that a run on the kernel
# and one under `usnet run --ip6` can be compared line by line.  Usage:
#   corners.py SELF6 SELF4 PORT
# SELF6 and SELF4 are this host's IPv6 and IPv4 addresses (the kernel's in
# the one run, the stack's in the other); they print as SELF6 and SELF4.
import ctypes
import errno
import socket
import struct
import sys

self6, self4, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
V6ONLY, HOPS, TCLASS = socket.IPV6_V6ONLY, socket.IPV6_UNICAST_HOPS, socket.IPV6_TCLASS


def name(a):
    if isinstance(a, tuple):
        a = tuple(a)
        host = a[0].replace('::ffff:' + self4, '::ffff:SELF4').replace(self6, 'SELF6')
        if host == self4:
            host = 'SELF4'
        # the test's ports by name, ephemeral ones as eph
        p = a[1]
        if isinstance(p, int):
            p = 'port%d' % (p - port) if 0 <= p - port < 4 else 'eph'
        rest = [p] + list(a[2:])
        return '(' + ', '.join([host] + [str(x) for x in rest]) + ')'
    return str(a)


def attempt(f):
    try:
        r = f()
        return 'ok' if r is None else name(r)
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


libc = ctypes.CDLL(None, use_errno=True)


def raw(call, fd, buf, n):
    r = getattr(libc, call)(fd, ctypes.c_char_p(buf), n)
    return 'ok' if r == 0 else errno.errorcode.get(ctypes.get_errno(), '?')


def say(case, *parts):
    print(case + ': ' + ' '.join(str(p) for p in parts), flush=True)


def six(kind=socket.SOCK_STREAM):
    return socket.socket(socket.AF_INET6, kind)


# IPV6_V6ONLY: its default (net.ipv6.bindv6only), set, and after bind.
s = six()
d = s.getsockopt(socket.IPPROTO_IPV6, V6ONLY)
s.setsockopt(socket.IPPROTO_IPV6, V6ONLY, 1)
one = s.getsockopt(socket.IPPROTO_IPV6, V6ONLY)
mapped = attempt(lambda: s.bind(('::ffff:' + self4, port)))
inet = raw('bind', s.fileno(), struct.pack('!HH4s8x', socket.AF_INET, port, socket.inet_aton(self4)), 16)
s.bind(('::', port))
late = attempt(lambda: s.setsockopt(socket.IPPROTO_IPV6, V6ONLY, 0))
s.listen(4)
say('v6only', 'default', d, 'set', one, 'bind_mapped', mapped, 'bind_inet', inet, 'after_bind', late)
# ... its listener takes IPv6 only: IPv4 to the port is refused.
c4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
c4.settimeout(3)
r4 = attempt(lambda: c4.connect((self4, port)))
c6 = six()
c6.settimeout(3)
r6 = attempt(lambda: c6.connect((self6, port)))
a, peer = s.accept()
say('v6only_listener', 'name', name(s.getsockname()), 'ipv4', r4, 'ipv6', r6, 'peer', name(peer),
    'local', name(a.getsockname()), 'client', name(c6.getsockname()), name(c6.getpeername()))
for x in (s, c4, c6, a):
    x.close()

# A dual-stack listener on :: (V6ONLY 0): its name, and both families' peers.
s = six()
s.setsockopt(socket.IPPROTO_IPV6, V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('::', port + 1))
s.listen(4)
c4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
c4.connect((self4, port + 1))
a4, p4 = s.accept()
c6 = six()
c6.connect((self6, port + 1, 0, 0))
a6, p6 = s.accept()
cm = six()
cm.connect(('::ffff:' + self4, port + 1))
am, pm = s.accept()
say('dual_listener', 'name', name(s.getsockname()), 'ipv4_peer', name(p4), 'ipv4_local', name(a4.getsockname()),
    'ipv6_peer', name(p6), 'ipv6_local', name(a6.getsockname()), 'mapped_client', name(cm.getsockname()),
    name(cm.getpeername()), 'mapped_peer', name(pm))
for x in (s, c4, a4, c6, a6, cm, am):
    x.close()

# Hop limit and traffic class: defaults, set, -1, out of range.
s = six()
vals = [s.getsockopt(socket.IPPROTO_IPV6, HOPS), s.getsockopt(socket.IPPROTO_IPV6, TCLASS)]
s.setsockopt(socket.IPPROTO_IPV6, HOPS, 7)
s.setsockopt(socket.IPPROTO_IPV6, TCLASS, 0x20)
vals += [s.getsockopt(socket.IPPROTO_IPV6, HOPS), s.getsockopt(socket.IPPROTO_IPV6, TCLASS)]
s.setsockopt(socket.IPPROTO_IPV6, HOPS, -1)
s.setsockopt(socket.IPPROTO_IPV6, TCLASS, -1)
vals += [s.getsockopt(socket.IPPROTO_IPV6, HOPS), s.getsockopt(socket.IPPROTO_IPV6, TCLASS)]
vals.append(attempt(lambda: s.setsockopt(socket.IPPROTO_IPV6, HOPS, 256)))
vals.append(attempt(lambda: s.setsockopt(socket.IPPROTO_IPV6, TCLASS, -2)))
say('hops_tclass', *vals)
s.close()

# Address arguments: short, AF_INET on an AF_INET6 socket, AF_UNSPEC, ::1
# with nothing listening (the kernel's: refused).
s = six()
sa6 = struct.pack('!HH4x16s', socket.AF_INET6, port, socket.inet_pton(socket.AF_INET6, self6))
short = raw('bind', s.fileno(), sa6, 20)
unspec = raw('bind', s.fileno(), struct.pack('!H', socket.AF_UNSPEC) + bytes(26), 28)
lo = six()
lo.settimeout(3)
say('addr_args', 'short', short, 'unspec', unspec, 'loopback_nobody', attempt(lambda: lo.connect(('::1', port + 2))))
s.close()
lo.close()

# UDP: IPV6_RECVPKTINFO on a :: socket, a datagram to the own address and
# one over IPv4 (v4-mapped), with where each came from.
u = six(socket.SOCK_DGRAM)
u.setsockopt(socket.IPPROTO_IPV6, V6ONLY, 0)
u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
u.bind(('::', port + 3))
t6 = six(socket.SOCK_DGRAM)
t6.sendto(b'six', (self6, port + 3))
t4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
t4.sendto(b'four', (self4, port + 3))
out = []
for _ in range(2):
    data, anc, flags, frm = u.recvmsg(64, 256)
    info = []
    for lvl, typ, blob in anc:
        if lvl == socket.IPPROTO_IPV6 and typ == socket.IPV6_PKTINFO:
            addr, idx = socket.inet_ntop(socket.AF_INET6, blob[:16]), struct.unpack('I', blob[16:20])[0]
            info.append('pktinfo=' + name((addr, 'lo' if idx == 1 else 'if' if idx else 0)))
        else:
            info.append('cmsg=%d/%d' % (lvl, typ))
    out.append('%s from %s %s' % (data.decode(), name(frm[:2]), ' '.join(info)))
say('udp_pktinfo', *sorted(out))
say('udp_connected_name', attempt(lambda: t6.connect((self6, port + 3))), name(t6.getsockname()[:2]))
for x in (u, t6, t4):
    x.close()
