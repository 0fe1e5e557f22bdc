#!/usr/bin/env python3
"""Crafted IPv6 packets against usnet (tests/net6): run in the kernel's
namespace, sends Ethernet frames on IFACE to usnet's MAC and checks what
comes back from usnet's address.

  craft6.py IFACE KERNEL_MAC KERNEL_IP6 USNET_MAC USNET_IP6

One line per case, "PASS net6_craft_<case>" or "FAIL net6_craft_<case>:
why", as tests/run-all.sh counts them.  What the stack must count for each
dropped packet is checked by run.sh from usnet-nc --stats afterwards: this
script only sees the wire.  The answers expected are those of RFC 8200
(4.x: extension headers, 4.5: fragments), RFC 5095 (routing type 0),
RFC 5722 (overlaps), RFC 7112 (header chain in the first fragment),
RFC 4861 7.1.1 (NS validation) and RFC 4443 (Parameter Problem codes).
"""
import sys
import time

from scapy.all import (AsyncSniffer, Ether, HBHOptUnknown, ICMPv6EchoRequest,
                       ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr, IPv6, IPv6ExtHdrDestOpt,
                       IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting,
                       PadN, Raw, UDP, conf, sendp)

conf.verb = 0
IFACE, KMAC, KIP6, UMAC, UIP6 = sys.argv[1:6]
ETH = Ether(src=KMAC, dst=UMAC)
failures = 0
echo_id = 0x6600


def result(name, ok, why=""):
    global failures
    if ok:
        print("PASS net6_craft_%s" % name)
    else:
        failures += 1
        print("FAIL net6_craft_%s: %s" % (name, why))
    sys.stdout.flush()


def exchange(frames, wait):
    """Send frames, return the ICMPv6 packets from usnet's address seen
    within `wait` seconds."""
    sn = AsyncSniffer(iface=IFACE, filter="icmp6 and src host %s" % UIP6, store=True)
    sn.start()
    time.sleep(0.15)   # the capture is open before the first frame leaves
    sendp(frames, iface=IFACE)
    time.sleep(wait)
    sn.stop()
    return [p for p in sn.results if IPv6 in p]


def icmp_of(p):
    """(type, code, the ICMPv6 layer) of a received packet's ICMPv6 message."""
    layer = p[IPv6].payload
    while layer and not layer.name.startswith("ICMPv6"):   # NoPayload ends it
        layer = layer.payload
    return (layer.type, getattr(layer, "code", None), layer) if layer else (None, None, None)


def echo(payload=b"usnet-net6", ident=None):
    global echo_id
    echo_id += 1
    return ICMPv6EchoRequest(id=ident or echo_id, seq=1, data=payload), echo_id


def expect_echo_reply(name, headers, ident):
    got = exchange(ETH / headers, 0.6)
    ok = any(icmp_of(p)[0] == 129 and icmp_of(p)[2].id == ident for p in got)
    result(name, ok, "no echo reply (saw %s)" % [icmp_of(p)[:2] for p in got])


def expect_param_problem(name, frames, code, pointer=None):
    got = exchange(frames, 0.6)
    pp = [icmp_of(p)[2] for p in got if icmp_of(p)[0] == 4]
    if not pp:
        result(name, False, "no Parameter Problem (saw %s)" % [icmp_of(p)[:2] for p in got])
    elif pp[0].code != code or (pointer is not None and pp[0].ptr != pointer):
        result(name, False, "Parameter Problem code %d pointer %d, want code %d pointer %s"
               % (pp[0].code, pp[0].ptr, code, pointer))
    else:
        result(name, True)


def expect_silence(name, frames, what="any answer"):
    got = [p for p in exchange(frames, 0.6) if icmp_of(p)[0] not in (135,)]  # our own NS may go out
    result(name, not got, "%s came back: %s" % (what, [icmp_of(p)[:2] for p in got]))


ip = IPv6(src=KIP6, dst=UIP6)


def cases():
    global echo_id

    # -- header chains that must be walked and answered ---------------------------
    m, i = echo()
    expect_echo_reply("plain_echo", ip / m, i)
    for n in (0, 4, 12, 60, 250):
        m, i = echo()
        expect_echo_reply("hop_by_hop_padn_%d" % n,
                          ip / IPv6ExtHdrHopByHop(options=[PadN(optdata=b"\0" * n)]) / m, i)
    for n in (0, 20):
        m, i = echo()
        expect_echo_reply("destopt_padn_%d" % n, ip / IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\0" * n)]) / m, i)
    m, i = echo()
    expect_echo_reply("destopt_1285_bytes_of_options",
                      ip / IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\0" * 255)] * 5) / m, i)
    m, i = echo()
    expect_echo_reply("routing_type0_segments_left_0",
                      ip / IPv6ExtHdrRouting(type=0, segleft=0, addresses=[KIP6]) / m, i)
    m, i = echo()
    expect_echo_reply("atomic_fragment", ip / IPv6ExtHdrFragment(offset=0, m=0, id=0x1234) / m, i)
    m, i = echo()
    expect_echo_reply("chain_hbh_dest_routing_frag_dest",
                      ip / IPv6ExtHdrHopByHop(options=[PadN(optdata=b"\0" * 4)])
                      / IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\0" * 10)])
                      / IPv6ExtHdrRouting(type=2, segleft=0, addresses=[UIP6])
                      / IPv6ExtHdrFragment(offset=0, m=0, id=0x1235)
                      / IPv6ExtHdrDestOpt() / m, i)
    # Option type 00xxxxxx unknown: skipped.
    m, i = echo()
    expect_echo_reply("option_skip_type_00",
                      ip / IPv6ExtHdrDestOpt(options=[HBHOptUnknown(otype=0x1e, optdata=b"\0\0\0\0")]) / m, i)

    # -- headers that must be refused -------------------------------------------
    # Routing header with segments left: type 0 (RFC 5095) and an unknown type,
    # Parameter Problem code 0 at the Routing Type field (40 + 2).
    m, i = echo()
    expect_param_problem("routing_type0_segments_left_1",
                         ETH / ip / IPv6ExtHdrRouting(type=0, segleft=1, addresses=[KIP6]) / m, 0, 42)
    m, i = echo()
    expect_param_problem("routing_type_unknown_segments_left_1",
                         ETH / ip / IPv6ExtHdrRouting(type=253, segleft=1, addresses=[KIP6]) / m, 0, 42)
    # Hop-by-Hop not first: code 1 at the Next Header field that named it (40).
    m, i = echo()
    expect_param_problem("hop_by_hop_not_first",
                         ETH / ip / IPv6ExtHdrDestOpt() / IPv6ExtHdrHopByHop() / m, 1, 40)
    # Unknown next header: code 1 at the fixed header's Next Header (6).
    expect_param_problem("unknown_next_header", ETH / IPv6(src=KIP6, dst=UIP6, nh=200) / Raw(b"\0" * 16), 1, 6)
    # Unknown option 10xxxxxx: code 2 at the option (40 + 2).
    m, i = echo()
    expect_param_problem("option_type_10_answered",
                         ETH / ip / IPv6ExtHdrDestOpt(options=[HBHOptUnknown(otype=0x9e, optdata=b"\0\0\0\0")]) / m,
                         2, 42)
    # Unknown option 01xxxxxx: dropped silently.
    m, i = echo()
    expect_silence("option_type_01_dropped",
                   ETH / ip / IPv6ExtHdrDestOpt(options=[HBHOptUnknown(otype=0x5e, optdata=b"\0\0\0\0")]) / m)
    # Payload length past the frame.
    m, i = echo()
    expect_silence("payload_length_past_frame", ETH / IPv6(src=KIP6, dst=UIP6, plen=400) / m)
    # An extension header longer than the packet.
    m, i = echo()
    bad = bytes(ETH / ip / IPv6ExtHdrDestOpt(len=30) / m)
    expect_silence("extension_header_cut_short", Ether(bad))

    # -- fragments ----------------------------------------------------------------
    payload = bytes(range(256)) * 4   # the reply fits one frame: no fragments back
    m, i = echo(payload)
    whole = bytes(ip / m)[40:]   # the ICMPv6 message, its checksum over ip's addresses


    def fh(off, more, ident):
        return IPv6(src=KIP6, dst=UIP6, nh=44) / IPv6ExtHdrFragment(nh=58, offset=off // 8, m=more, id=ident)


    frags = [ETH / fh(0, 1, 0xa001) / Raw(whole[:512]), ETH / fh(512, 0, 0xa001) / Raw(whole[512:])]
    got = exchange(list(reversed(frags)), 0.8)
    result("fragments_out_of_order_reassembled",
           any(icmp_of(p)[0] == 129 and icmp_of(p)[2].id == i for p in got),
           "no echo reply to a fragmented echo request (saw %s)" % [icmp_of(p)[:2] for p in got])
    # Overlap (RFC 5722): the second fragment starts inside the first.
    m, i = echo(payload)
    whole = bytes(ip / m)[40:]
    expect_silence("fragments_overlapping_dropped",
                   [ETH / fh(0, 1, 0xa002) / Raw(whole[:512]), ETH / fh(504, 0, 0xa002) / Raw(whole[504:])],
                   "an answer to overlapping fragments")
    # Tiny overlapping fragments: 8 bytes each, one of them again at a shifted offset.
    m, i = echo(payload[:64])
    whole = bytes(ip / m)[40:]
    tiny = [ETH / fh(o, 1 if o + 8 < len(whole) else 0, 0xa003) / Raw(whole[o:o + 8]) for o in range(0, len(whole), 8)]
    tiny.insert(3, ETH / fh(8, 1, 0xa003) / Raw(whole[12:28]))
    expect_silence("tiny_fragments_overlapping_dropped", tiny, "an answer to overlapping tiny fragments")
    # First fragment without the upper-layer header (RFC 7112): a Destination
    # Options header alone in it, UDP in the second: code 3.
    udp = bytes(UDP(sport=4000, dport=9) / Raw(b"x" * 32))
    first = IPv6(src=KIP6, dst=UIP6, nh=44) / IPv6ExtHdrFragment(nh=60, offset=0, m=1, id=0xa004) / \
        IPv6ExtHdrDestOpt(nh=17)
    second = IPv6(src=KIP6, dst=UIP6, nh=44) / IPv6ExtHdrFragment(nh=60, offset=1, m=0, id=0xa004) / Raw(udp)
    expect_param_problem("first_fragment_without_upper_header", [ETH / first, ETH / second], 3)

    # -- Neighbor Discovery validation (RFC 4861 7.1.1) ---------------------------
    def ns(hlim=255, code=0):
        return ETH / IPv6(src=KIP6, dst=UIP6, hlim=hlim) / ICMPv6ND_NS(tgt=UIP6, code=code) / \
            ICMPv6NDOptSrcLLAddr(lladdr=KMAC)


    got = exchange(ns(), 0.6)
    result("nd_valid_ns_answered", any(icmp_of(p)[0] == 136 for p in got),
           "no NA to a valid NS (saw %s)" % [icmp_of(p)[:2] for p in got])
    got = [p for p in exchange(ns(hlim=254), 0.6) if icmp_of(p)[0] == 136]
    result("nd_ns_hop_limit_254_dropped", not got, "an NA answered an NS with hop limit 254")
    got = [p for p in exchange(ns(code=1), 0.6) if icmp_of(p)[0] == 136]
    result("nd_ns_code_1_dropped", not got, "an NA answered an NS with code 1")

    # -- still alive --------------------------------------------------------------
    m, i = echo()
    expect_echo_reply("still_answers_after_crafted", ip / m, i)


try:
    cases()
except Exception as e:   # a scapy or socket error: say so, as a failure
    result("script", False, "%s: %s" % (type(e).__name__, e))
sys.exit(1 if failures else 0)
