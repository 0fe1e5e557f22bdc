#!/usr/bin/env python3
"""Writes the seed corpus for fuzz_stack_input (fuzz/corpus/): valid frames of
every kind the stack parses, framed as the harness expects:
    [ctl][dt] frame  "FRM|"  [ctl][dt] frame ...
ctl bit 0: patch the frame to the established connection's seq/ack.
The IPv6 packets among them (without their Ethernet header) are also the
seeds of fuzz_wire_ipv6 (fuzz/wire-ipv6-corpus/)."""
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

# IPv6: the harness's instance has fe80::ff:fe00:1 (from its MAC) and
# 2001:db8::1/64, used at once (no DAD).
LL_US = bytes.fromhex('fe800000000000000000 00fffe000001'.replace(' ', ''))
GL_US = bytes.fromhex('20010db8000000000000000000000001')
LL_PEER = bytes.fromhex('fe80000000000000000000fffe000002')
GL_PEER = bytes.fromhex('20010db8000000000000000000000002')
ALL_NODES = bytes.fromhex('ff020000000000000000000000000001')
UNSPEC = bytes(16)

def sol_node(a):
    return bytes.fromhex('ff0200000000000000000001ff') + a[13:]

def csum6(src, dst, nh, body):
    return csum(body, sum(struct.unpack('!16H', src + dst)) + (len(body) >> 16) + (len(body) & 0xffff) + nh)

def ip6pkt(src, dst, nh, payload, hlim=64):
    return struct.pack('!IHBB', 6 << 28, len(payload), nh, hlim) + src + dst + payload

def icmp6(src, dst, body, ext=b'', first_nh=58, hlim=64):
    m = body[:2] + b'\0\0' + body[4:]
    m = m[:2] + struct.pack('!H', csum6(src, dst, 58, m)) + m[4:]
    return ip6pkt(src, dst, first_nh if ext else 58, ext + m, hlim)

def eth6(pkt):
    dst = pkt[24:40]
    mac = b'\x33\x33' + dst[12:] if dst[0] == 0xff else US
    f = mac + PEER + b'\x86\xdd' + pkt
    return f + b'\0' * max(0, 60 - len(f))

def echo6(src=GL_PEER, dst=GL_US, ext=b'', first_nh=58):
    return icmp6(src, dst, struct.pack('!BBHHH', 128, 0, 0, 7, 1) + b'ping6 data', ext, first_nh)

def ns6(src, dst, target, slla=True, hlim=255):
    opt = struct.pack('!BB', 1, 1) + PEER if slla else b''
    return icmp6(src, dst, struct.pack('!BBHI', 135, 0, 0, 0) + target + opt, hlim=hlim)

def na6(src, dst, target, flags, tlla=PEER):
    opt = struct.pack('!BB', 2, 1) + tlla if tlla else b''
    return icmp6(src, dst, struct.pack('!BBHI', 136, 0, 0, flags << 24) + target + opt, hlim=255)

def ra6():
    prefix = struct.pack('!BBBBIII', 3, 4, 64, 0xc0, 86400, 14400, 0) + GL_US[:8] + bytes(8)
    mtu = struct.pack('!BBHI', 5, 1, 0, 1500)
    body = struct.pack('!BBHBBHII', 134, 0, 0, 64, 0, 1800, 0, 0) + struct.pack('!BB', 1, 1) + PEER + prefix + mtu
    return icmp6(LL_PEER, ALL_NODES, body, hlim=255)

def udp6(dport):
    u = struct.pack('!HHHH', 5000, dport, 8 + 5, 0) + b'hello'
    u = u[:6] + struct.pack('!H', csum6(GL_PEER, GL_US, 17, u) or 0xffff) + u[8:]
    return ip6pkt(GL_PEER, GL_US, 17, u)

HBH_PADN = bytes([60, 0, 1, 4, 0, 0, 0, 0])          # Hop-by-Hop, PadN, next: Destination Options
DST_PAD = bytes([58, 0, 0, 0, 0x1e, 1, 0, 0])        # Pad1s, an option of action 00
RH0_LEFT = bytes([58, 2, 0, 1, 0, 0, 0, 0]) + LL_PEER
FRAG_ATOMIC = bytes([58, 0, 0, 0, 0, 0, 0, 9])
FRAG_FIRST = bytes([58, 0, 0, 1, 0, 0, 0, 10])
OPT10 = bytes([58, 0, 1, 0, 0x82, 2, 0, 0])
OPT11 = bytes([58, 0, 0xc3, 4, 0, 0, 0, 0])

HBH_RA = bytes([58, 0, 5, 2, 0, 0, 1, 0])            # Hop-by-Hop: Router Alert 0 (MLD), PadN

def mld6(dst, group, code=1000, v2=True, nsrc=0, ext=HBH_RA, hlim=1, src=LL_PEER, present=None):
    body = struct.pack('!BBHHH', 130, 0, 0, code, 0) + group
    if v2:
        body += struct.pack('!BBH', 2, 125, nsrc) + bytes(16 * (nsrc if present is None else present))
    return icmp6(src, dst, body, ext, 0, hlim)

def frag6(ident, off, more, data, nh=58, src=GL_PEER, dst=GL_US):
    return ip6pkt(src, dst, 44, struct.pack('!BBHI', nh, 0, off | more, ident) + data)

def echo6_msg(n, src=GL_PEER, dst=GL_US):
    m = struct.pack('!BBHHH', 128, 0, 0, 8, 1) + bytes((i * 7) & 0xff for i in range(n))
    return m[:2] + struct.pack('!H', csum6(src, dst, 58, m)) + m[4:]

def frags6(msg, size, ident):
    return [frag6(ident, off, 1 if off + size < len(msg) else 0, msg[off:off + size])
            for off in range(0, len(msg), size)]

def ptb6(mtu, qsrc=GL_US, qdst=GL_PEER, src=GL_PEER):
    quote = ip6pkt(qsrc, qdst, 58, struct.pack('!BBHHH', 129, 0, 0, 8, 1) + bytes(1400))[:48]
    return icmp6(src, GL_US, struct.pack('!BBHI', 2, 0, 0, mtu) + quote)

BIG_ECHO = echo6_msg(2992)

ipv6_seeds = {
    'ip6_echo': [echo6()],
    'ip6_echo_all_nodes': [ns6(LL_PEER, sol_node(LL_US), LL_US), echo6(LL_PEER, ALL_NODES)],
    'ip6_ns_na': [ns6(GL_PEER, sol_node(GL_US), GL_US), echo6()],
    'ip6_ns_dad': [ns6(UNSPEC, sol_node(GL_US), GL_US, slla=False)],
    'ip6_resolve': [echo6(), echo6(), na6(GL_PEER, GL_US, GL_PEER, 0x60)],
    'ip6_na_override': [echo6(), na6(GL_PEER, GL_US, GL_PEER, 0x40), na6(GL_PEER, ALL_NODES, GL_PEER, 0x20, bytes([2, 0, 0, 0, 0, 9]))],
    'ip6_ra': [ra6()],
    'ip6_ext_ok': [echo6(ext=HBH_PADN + DST_PAD, first_nh=0)],
    'ip6_rh0': [echo6(ext=RH0_LEFT, first_nh=43)],
    'ip6_frag_atomic': [echo6(ext=FRAG_ATOMIC, first_nh=44)],
    'ip6_frag': [echo6(ext=FRAG_FIRST, first_nh=44)],
    # Fragments: a 3000-byte echo request whole in order and out of order
    # (its reply leaves in fragments), duplicates, an overlap, a first
    # fragment without its ICMPv6 header, lengths RFC 8200 refuses, ND in
    # fragments; Packet Too Big before a reply that then needs fragments.
    'ip6_frag_echo': frags6(BIG_ECHO, 1232, 0x100),
    'ip6_frag_echo_ooo': list(reversed(frags6(BIG_ECHO, 1232, 0x101))),
    'ip6_frag_dup': frags6(BIG_ECHO, 1232, 0x102)[:1] + frags6(BIG_ECHO, 1232, 0x102),
    'ip6_frag_overlap': [frag6(0x103, 0, 1, BIG_ECHO[:1232]), frag6(0x103, 1224, 1, BIG_ECHO[1224:2456])]
                        + frags6(BIG_ECHO, 1232, 0x103)[1:],
    'ip6_frag_tiny_overlap': [frag6(0x104, 1232, 1, BIG_ECHO[1232:1248]), frag6(0x104, 1240, 1, BIG_ECHO[1240:1248])],
    'ip6_frag_chain_cut': [frag6(0x105, 0, 1, bytes([58, 0, 1, 4, 0, 0, 0, 0]), nh=60)],
    'ip6_frag_bad_len': [frag6(0x106, 0, 1, BIG_ECHO[:100]), frag6(0x107, 65528, 0, BIG_ECHO[:16])],
    'ip6_frag_nd': [frag6(0x108, 0, 1, ns6(GL_PEER, GL_US, GL_US)[40:56]), frag6(0x108, 16, 0, ns6(GL_PEER, GL_US, GL_US)[56:])],
    'ip6_packet_too_big': [ptb6(1280), ptb6(600, qsrc=GL_PEER), icmp6(GL_PEER, GL_US, echo6_msg(1432))],
    'ip6_opt_actions': [echo6(ext=OPT10, first_nh=60), echo6(ext=OPT11, first_nh=60), echo6(GL_PEER, ALL_NODES, OPT10, 60)],
    'ip6_udp_closed': [udp6(53)],
    'ip6_unknown_next': [ip6pkt(GL_PEER, GL_US, 253, bytes(range(8)))],
    'ip6_mld_query': [mld6(ALL_NODES, UNSPEC), mld6(sol_node(LL_US), sol_node(LL_US), 0x8fff, nsrc=1)],
    'ip6_mld_query_v1': [mld6(ALL_NODES, UNSPEC, v2=False), mld6(ALL_NODES, sol_node(GL_US), v2=False)],
    'ip6_mld_bad': [mld6(ALL_NODES, UNSPEC, ext=bytes([58, 0, 1, 4, 0, 0, 0, 0])), mld6(ALL_NODES, UNSPEC, hlim=255),
                    mld6(ALL_NODES, UNSPEC, nsrc=3, present=1)],
}

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

for name, pkts in ipv6_seeds.items():
    # dt 120 (1.2 s) before the last frame: neighbour timers run too.
    seeds[name] = [(0, 0 if i + 1 < len(pkts) else 120, eth6(p)) for i, p in enumerate(pkts)]

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, 'corpus')
os.makedirs(out, exist_ok=True)
for name, frames in seeds.items():
    blob = b'FRM|'.join(bytes([ctl, dt]) + f for ctl, dt, f in frames)
    with open(os.path.join(out, name), 'wb') as fh:
        fh.write(blob)
print('wrote', len(seeds), 'seeds to', out)
out6 = os.path.join(here, 'wire-ipv6-corpus')
os.makedirs(out6, exist_ok=True)
n6 = 0
for name, pkts in ipv6_seeds.items():
    for i, p in enumerate(pkts):
        with open(os.path.join(out6, '%s_%d' % (name, i)), 'wb') as fh:
            fh.write(p)
        n6 += 1
print('wrote', n6, 'seeds to', out6)
