# Multicast between a program under usnet and the kernel of a peer namespace
# (tests/apps/run.sh t_multicast, t_multicast6), group 239.1.2.3, or
# ff15::1:2 for the modes ending in 6.
#   recv PORT COUNT FLAG   under usnet: bound to the group (only the stack
#                          serves that on its interface), joined; prints
#                          what came, sends one datagram to the group's
#                          PORT+1, waits for FLAG, closes (the leave)
#   send KIP PORT COUNT    the kernel: COUNT datagrams to the group from KIP
#   member KIP PORT        the kernel: joined on KIP's interface, prints the
#                          first datagram and its source
#   recv6 PORT COUNT FLAG  under usnet: as recv, joined by IPV6_JOIN_GROUP
#                          (interface 0)
#   send6 IF PORT COUNT    the kernel: COUNT datagrams to the group by
#                          interface IF (IPV6_MULTICAST_IF)
#   member6 IF PORT        the kernel: joined on interface IF, prints the
#                          first datagram and its source
import os, socket, struct, sys, time

G = "239.1.2.3"
G6 = "ff15::1:2"
mode = sys.argv[1]
s = socket.socket(socket.AF_INET6 if mode.endswith("6") else socket.AF_INET, socket.SOCK_DGRAM)


def receive(count):
    s.settimeout(5)
    got, src = [], "-"
    try:
        while len(got) < count:
            data, addr = s.recvfrom(100)
            got.append(data.decode())
            src = addr[0]
    except socket.timeout:
        pass
    print("got", " ".join(got), "from", src, flush=True)


def wait_flag(flag):
    for _ in range(100):
        if os.path.exists(flag):
            break
        time.sleep(0.1)


if mode == "recv6":
    port, count, flag = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    s.bind((G6, port))
    mreq = socket.inet_pton(socket.AF_INET6, G6) + struct.pack("@I", 0)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
    try:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
        print("second join succeeded", flush=True)
    except OSError as e:
        assert e.errno == 98, e   # EADDRINUSE
    hops = s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS)
    loop = s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP)
    print("ready hops", hops, "loop", loop, flush=True)
    receive(count)
    t = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    t.sendto(b"from-usnet", (G6, port + 1))
    wait_flag(flag)
    s.close()
    time.sleep(1.5)   # the leave's second report within a second
elif mode == "send6":
    ifindex, port, count = socket.if_nametoindex(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
    for i in range(count):
        s.sendto(b"m%d" % i, (G6, port))
        time.sleep(0.05)
elif mode == "member6":
    ifindex, port = socket.if_nametoindex(sys.argv[2]), int(sys.argv[3])
    s.bind(("::", port))
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                 socket.inet_pton(socket.AF_INET6, G6) + struct.pack("@I", ifindex))
    print("ready", flush=True)
    s.settimeout(10)
    try:
        data, addr = s.recvfrom(100)
        print(data.decode(), addr[0], flush=True)
    except socket.timeout:
        print("nothing", flush=True)
elif mode == "recv":
    port, count, flag = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((G, port))
    mreqn = struct.pack("4s4si", socket.inet_aton(G), socket.inet_aton("0.0.0.0"), 0)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
    try:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
        print("second join succeeded", flush=True)
    except OSError as e:
        assert e.errno == 98, e   # EADDRINUSE
    print("ready", flush=True)
    s.settimeout(5)
    got, src = [], "-"
    try:
        while len(got) < count:
            data, (src, _) = s.recvfrom(100)
            got.append(data.decode())
    except socket.timeout:
        pass
    print("got", " ".join(got), "from", src, flush=True)
    t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t.sendto(b"from-usnet", (G, port + 1))
    for _ in range(100):
        if os.path.exists(flag):
            break
        time.sleep(0.1)
    s.close()
    time.sleep(1.5)   # the switch notices the closed file within a second
elif mode == "send":
    kip, port, count = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(kip))
    for i in range(count):
        s.sendto(b"m%d" % i, (G, port))
        time.sleep(0.05)
elif mode == "member":
    kip, port = sys.argv[2], int(sys.argv[3])
    s.bind(("", port))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(G) + socket.inet_aton(kip))
    print("ready", flush=True)
    s.settimeout(10)
    try:
        data, (src, _) = s.recvfrom(100)
        print(data.decode(), src, flush=True)
    except socket.timeout:
        print("nothing", flush=True)
