#!/usr/bin/env python3
"""Writes the seed corpus for fuzz_stack_input (fuzz/corpus/): valid frames of
every kind the stack parses, framed as the harness expects:
    [ctl][dt] frame  "FRM|"  [ctl][dt] frame ...
ctl bit 0: patch the frame to the established connection's seq/ack."""
import os, struct

US, PEER = bytes([2, 0, 0, 0, 0, 1]), bytes([2, 0, 0, 0, 0, 2])
IP_US, IP_PEER = 0x0a000001, 0x0a000002

def csum(b, init=0):
    if len(b) % 2: b += b'\0'
    s = init + sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff

GROUP, ALL_HOSTS = 0xef010203, 0xe0000001   # the harness's UDP socket joined GROUP

def group_mac(g):
    return bytes([1, 0, 0x5e, (g >> 16) & 0x7f, (g >> 8) & 0xff, g & 0xff])

def ip(proto, l4, ident=1, frag=0x4000, src=IP_PEER, dst=IP_US):
    h = struct.pack('!BBHHHBBHII', 0x45, 0, 20 + len(l4), ident, frag, 64, proto, 0, src, dst)
    h = h[:10] + struct.pack('!H', csum(h)) + h[12:]
    f = (group_mac(dst) if dst >> 28 == 0xe else US) + PEER + b'\x08\x00' + h + l4
    return f + b'\0' * max(0, 60 - len(f))

def pseudo(proto, n, src=IP_PEER, dst=IP_US):
    return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + n

def tcp(sport, dport, seq, ack, flags, data=b'', opts=b''):
    opts += b'\x01' * ((4 - len(opts) % 4) % 4)
    hl = 20 + len(opts)
    t = struct.pack('!HHIIBBHHH', sport, dport, seq, ack, (hl // 4) << 4, flags, 65535, 0, 0) + opts + data
    t = t[:16] + struct.pack('!H', csum(t, pseudo(6, len(t)))) + t[18:]
    return ip(6, t)

def udp(sport, dport, data, dst=IP_US):
    u = struct.pack('!HHHH', sport, dport, 8 + len(data), 0) + data
    c = csum(u, pseudo(17, len(u), dst=dst)) or 0xffff
    return ip(17, u[:6] + struct.pack('!H', c) + u[8:], frag=0, dst=dst)

def igmp(typ, code, group, dst, extra=b'', bad=False):
    m = struct.pack('!BBHI', typ, code, 0, group) + extra
    m = m[:2] + struct.pack('!H', csum(m) ^ (0x100 if bad else 0)) + m[4:]
    return ip(2, m, frag=0, dst=dst)

def icmp_echo(payload):
    m = struct.pack('!BBHHH', 8, 0, 0, 1, 1) + payload
    m = m[:2] + struct.pack('!H', csum(m)) + m[4:]
    return ip(1, m, frag=0)

def arp(op, tpa):
    a = struct.pack('!HHBBH', 1, 0x0800, 6, 4, op) + PEER + struct.pack('!I', IP_PEER) + b'\0' * 6 + struct.pack('!I', tpa)
    f = b'\xff' * 6 + PEER + b'\x08\x06' + a
    return f + b'\0' * (60 - len(f))

def frag_udp(data, size, ident):
    u = struct.pack('!HHHH', 5000, 53, 8 + len(data), 0) + data
    c = csum(u, pseudo(17, len(u))) or 0xffff
    u = u[:6] + struct.pack('!H', c) + u[8:]
    out = []
    for off in range(0, len(u), size):
        piece = u[off:off + size]
        mf = 0x2000 if off + size < len(u) else 0
        out.append(ip(17, piece, ident=ident, frag=(off // 8) | mf))
    return out

SYNOPT = bytes([2, 4, 5, 0xb4, 1, 3, 3, 7, 1, 1, 4, 2, 1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 0])
TS = bytes([1, 1, 8, 10, 0, 0, 0, 5, 0, 0, 0, 0])
def sack(a, b): return TS + bytes([1, 1, 5, 10]) + struct.pack('!II', a, b)

seeds = {
    'arp_request': [(0, 0, arp(1, IP_US))],
    'arp_reply': [(0, 0, arp(2, IP_US))],
    'icmp_echo': [(0, 0, icmp_echo(b'abcdefgh' * 8))],
    'udp_bound': [(0, 0, udp(5000, 53, b'query'))],
    'udp_closed': [(0, 0, udp(5000, 54, b'x'))],
    'udp_multicast': [(0, 0, udp(5000, 53, b'to the group', dst=GROUP))],
    'igmp_query_v3': [(0, 0, igmp(0x11, 10, 0, ALL_HOSTS, b'\x02\x7d\x00\x00')), (0, 150, arp(1, IP_US))],
    'igmp_query_v3_group': [(0, 0, igmp(0x11, 200, GROUP, GROUP, b'\x02\x7d\x00\x01' + struct.pack('!I', IP_PEER)))],
    'igmp_query_v2': [(0, 0, igmp(0x11, 100, 0, ALL_HOSTS)), (0, 0, igmp(0x16, 0, GROUP, GROUP)),
                      (0, 255, arp(1, IP_US))],
    'igmp_query_v1': [(0, 0, igmp(0x11, 0, 0, ALL_HOSTS)), (0, 255, arp(1, IP_US))],
    'igmp_bad_csum': [(0, 0, igmp(0x11, 10, 0, ALL_HOSTS, bad=True))],
    'udp_fragments': [(0, 0, f) for f in frag_udp(bytes(range(256)) * 12, 1480, 77)],
    'udp_fragments_ooo': [(0, 1, f) for f in reversed(frag_udp(bytes(range(200)) * 10, 512, 78))],
    'tcp_syn_listener': [(0, 0, tcp(41000, 80, 100, 0, 0x02, opts=SYNOPT)),
                         (0, 0, tcp(41000, 80, 101, 0, 0x10, opts=TS))],
    'tcp_syn_closed': [(0, 0, tcp(41000, 99, 100, 0, 0x02))],
    'tcp_data': [(1 | 0x10, 0, tcp(40000, 81, 0, 0, 0x18, b'hello world', TS))],
    'tcp_ooo': [(1, 0, tcp(40000, 81, 20, 0, 0x10, b'later', TS)),
                (1 | 0x10, 0, tcp(40000, 81, 0, 0, 0x10, b'0123456789abcdefghij', TS))],
    'tcp_ack_sack': [(1, 0, tcp(40000, 81, 0, 0, 0x10, opts=sack(0, 0))),
                     (1, 0, tcp(40000, 81, 0, 0, 0x10, opts=TS)),
                     (1, 0, tcp(40000, 81, 0, 0, 0x10, opts=TS)),
                     (1, 0, tcp(40000, 81, 0, 0, 0x10, opts=TS))],
    'tcp_fin': [(1 | 0x20, 0, tcp(40000, 81, 0, 0, 0x11, opts=TS)), (1, 100, tcp(40000, 81, 1, 1, 0x10, opts=TS))],
    'tcp_rst': [(1, 0, tcp(40000, 81, 0, 0, 0x04))],
    'tcp_rst_inwindow': [(1, 0, tcp(40000, 81, 50, 0, 0x04))],
    'tcp_syn_established': [(1, 0, tcp(40000, 81, 5, 0, 0x02))],
    'tcp_zero_window': [(1, 200, tcp(40000, 81, 0, 0, 0x10, opts=TS))],
    'tcp_timeout': [(0, 255, tcp(41000, 99, 1, 0, 0x10)), (0, 255, arp(1, IP_US))],
    'tcp_batch': [(1 | 0x40, 0, tcp(40000, 81, 0, 0, 0x10, b'A' * 1000, TS)),
                  (1 | 0x40, 0, tcp(40000, 81, 0x0, 0, 0x10, b'B' * 1000, TS)),
                  (1 | 0x10, 0, tcp(40000, 81, 0, 0, 0x10, b'C' * 100, TS))],
}

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, 'corpus')
os.makedirs(out, exist_ok=True)
for name, frames in seeds.items():
    blob = b'FRM|'.join(bytes([ctl, dt]) + f for ctl, dt, f in frames)
    with open(os.path.join(out, name), 'wb') as fh:
        fh.write(blob)
print('wrote', len(seeds), 'seeds to', out)
