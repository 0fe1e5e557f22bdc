/* Tests: ARP, IPv4 (validation, reassembly), ICMP, UDP, checksums. */
#include "harness.h"
#include "tests.h"

static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void wr32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }

static uint32_t arp_frame(uint8_t *f, uint16_t op, uint32_t spa, uint32_t tpa, const uint8_t *dmac)
{
	memset(f, 0, 60);
	memcpy(f, dmac, 6);
	memcpy(f + 6, T_MAC_PEER, 6);
	wr16(f + 12, 0x0806);
	uint8_t *a = f + 14;
	wr16(a, 1); wr16(a + 2, 0x0800); a[4] = 6; a[5] = 4; wr16(a + 6, op);
	memcpy(a + 8, T_MAC_PEER, 6); wr32(a + 14, spa);
	if (op == 2) memcpy(a + 18, T_MAC_US, 6);
	wr32(a + 24, tpa);
	return 60;
}

int test_arp_reply(void)
{
	struct tenv e; tenv_init(&e, NULL);
	uint8_t f[64];
	static const uint8_t bc[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	tenv_input(&e, f, arp_frame(f, 1, T_IP_PEER, T_IP_US, bc));
	struct tpkt p;
	struct tframe *fr = tnif_next(e.nif);
	CHECK(fr && t_parse(fr, &p) == 0 && p.is_arp);
	CHECK(p.arp_op == 2 && p.arp_spa == T_IP_US && p.arp_tpa == T_IP_PEER);
	CHECK(memcmp(fr->d, T_MAC_PEER, 6) == 0);
	/* A request for someone else is not answered. */
	tenv_input(&e, f, arp_frame(f, 1, T_IP_PEER, 0x0a000009, bc));
	CHECK(tnif_next(e.nif) == NULL);
	/* Malformed (bad hlen) is counted. */
	arp_frame(f, 1, T_IP_PEER, T_IP_US, bc);
	f[14 + 4] = 5;
	tenv_input(&e, f, 60);
	struct usnet_stack_stats s; usnet_stack_stats(e.st, &s);
	CHECK(s.arp_drop == 1 && tnif_next(e.nif) == NULL);
	/* Truncated. */
	tenv_input(&e, f, 20);
	usnet_stack_stats(e.st, &s);
	CHECK(s.arp_drop == 2);
	tenv_fini(&e);
	return 0;
}

/* Neighbours from outside (host-address mode): the stack says what it waits
 * for, and a MAC set from outside releases the queued frame as a reply
 * would; a set MAC is used at once for the next neighbour, with no ARP. */
int test_neigh_set_from_outside(void)
{
	struct tenv e; tenv_init(&e, NULL);
	int32_t u = usnet_socket(e.st, USNET_SOCK_DGRAM);
	struct usnet_addr to = { .ip = T_IP_PEER, .port = 9 };
	CHECK(usnet_sendv(e.st, &e.io, u, &(struct usnet_iovec){ "hi", 2 }, 1, 0, &to, e.now) == 2);
	uint32_t ips[4];
	CHECK(usnet_neigh_waiting(e.st, ips, 4) == 1 && ips[0] == T_IP_PEER);
	tnif_clear(e.nif);
	usnet_neigh_set(e.st, &e.io, T_IP_PEER, T_MAC_PEER, e.now);
	struct tpkt p;
	CHECK(t_next_proto(&e, 17, &p) && p.dlen == 2 && memcmp(p.data, "hi", 2) == 0);
	CHECK(memcmp(p.eth_dst, T_MAC_PEER, 6) == 0);
	CHECK(usnet_neigh_waiting(e.st, ips, 4) == 0);
	/* Set before any frame needs it: no request leaves. */
	static const uint8_t other_mac[6] = { 0x02, 0, 0, 0, 0, 0x77 };
	usnet_neigh_set(e.st, &e.io, 0x0a000007, other_mac, e.now);
	tnif_clear(e.nif);
	to.ip = 0x0a000007;
	CHECK(usnet_sendv(e.st, &e.io, u, &(struct usnet_iovec){ "x", 1 }, 1, 0, &to, e.now) == 1);
	struct tframe *fr = tnif_next(e.nif);
	CHECK(fr && t_parse(fr, &p) == 0 && !p.is_arp && memcmp(p.eth_dst, other_mac, 6) == 0);
	/* A multicast MAC is no neighbour's. */
	static const uint8_t mcast[6] = { 0x01, 0, 0x5e, 0, 0, 1 };
	usnet_neigh_set(e.st, &e.io, 0x0a000008, mcast, e.now);
	CHECK(usnet_neigh_waiting(e.st, ips, 4) == 0);
	usnet_close(e.st, &e.io, u, e.now);
	tenv_fini(&e);
	return 0;
}

/* Sending to an unresolved neighbour: request, retries, queued frame sent
 * on reply; a neighbour that never answers is given up. */
int test_arp_resolve_retry(void)
{
	struct tenv e; tenv_init(&e, NULL);
	int32_t u = usnet_socket(e.st, USNET_SOCK_DGRAM);
	struct usnet_addr to = { .ip = T_IP_PEER, .port = 9 };
	CHECK(usnet_sendv(e.st, &e.io, u, &(struct usnet_iovec){ "hi", 2 }, 1, 0, &to, e.now) == 2);
	struct tpkt p;
	struct tframe *fr = tnif_next(e.nif);
	CHECK(fr && t_parse(fr, &p) == 0 && p.is_arp && p.arp_op == 1 && p.arp_tpa == T_IP_PEER);
	CHECK(tnif_next(e.nif) == NULL);
	struct usnet_stack_stats s; usnet_stack_stats(e.st, &s);
	CHECK(s.arp_waiting == 1);
	uint64_t t0 = e.now;
	tenv_advance(&e, t0 + 1100 * MS);
	fr = tnif_next(e.nif);
	CHECK(fr && t_parse(fr, &p) == 0 && p.is_arp && p.arp_op == 1);   /* retry */
	/* The reply releases the queued datagram. */
	uint8_t f[64];
	tenv_input(&e, f, arp_frame(f, 2, T_IP_PEER, T_IP_US, T_MAC_US));
	CHECK(t_next_proto(&e, 17, &p) && p.dlen == 2 && memcmp(p.data, "hi", 2) == 0 && p.l4_csum_ok);
	CHECK(memcmp(p.eth_dst, T_MAC_PEER, 6) == 0);
	usnet_stack_stats(e.st, &s);
	CHECK(s.arp_waiting == 0);
	/* An address nobody answers for: 1 request + 3 retries, then dropped. */
	to.ip = 0x0a000007;
	tnif_clear(e.nif);
	CHECK(usnet_sendv(e.st, &e.io, u, &(struct usnet_iovec){ "x", 1 }, 1, 0, &to, e.now) == 1);
	usnet_stack_stats(e.st, &s);
	CHECK(s.arp_waiting == 1);
	tenv_advance(&e, e.now + 10 * SEC);
	int reqs = 0;
	while ((fr = tnif_next(e.nif)))
		if (t_parse(fr, &p) == 0 && p.is_arp && p.arp_tpa == 0x0a000007) reqs++;
	CHECKF(reqs == 4, "requests %d", reqs);
	usnet_stack_stats(e.st, &s);
	CHECK(s.arp_drop >= 1 && s.arp_waiting == 0);
	CHECK(s.buffers_in_use == 0);
	usnet_close(e.st, &e.io, u, e.now);
	tenv_fini(&e);
	return 0;
}

/* A cache entry older than its lifetime is re-confirmed by unicast. */
int test_arp_expiry(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	int32_t u = usnet_socket(e.st, USNET_SOCK_DGRAM);
	struct usnet_addr to = { .ip = T_IP_PEER, .port = 9 };
	usnet_sendv(e.st, &e.io, u, &(struct usnet_iovec){ "a", 1 }, 1, 0, &to, e.now);
	struct tpkt p;
	struct tframe *fr = tnif_next(e.nif);
	CHECK(fr && t_parse(fr, &p) == 0 && p.is_ip);   /* no ARP needed */
	CHECK(tnif_next(e.nif) == NULL);
	e.now += 61 * SEC;
	usnet_sendv(e.st, &e.io, u, &(struct usnet_iovec){ "b", 1 }, 1, 0, &to, e.now);
	int ip = 0, arp_unicast = 0;
	while ((fr = tnif_next(e.nif))) {
		t_parse(fr, &p);
		if (p.is_ip) ip++;
		if (p.is_arp && memcmp(fr->d, T_MAC_PEER, 6) == 0) arp_unicast++;
	}
	CHECK(ip == 1 && arp_unicast == 1);
	/* No answer: the entry goes, and the next send broadcasts a request. */
	tenv_advance(&e, e.now + 10 * SEC);
	tnif_clear(e.nif);
	usnet_sendv(e.st, &e.io, u, &(struct usnet_iovec){ "c", 1 }, 1, 0, &to, e.now);
	fr = tnif_next(e.nif);
	CHECK(fr && t_parse(fr, &p) == 0 && p.is_arp && fr->d[0] == 0xff);
	usnet_close(e.st, &e.io, u, e.now);
	tenv_fini(&e);
	return 0;
}

int test_icmp_echo(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	uint8_t icmp[64 + 8], f[200];
	icmp[0] = 8; icmp[1] = 0; wr16(icmp + 2, 0); wr16(icmp + 4, 0x77); wr16(icmp + 6, 1);
	for (int i = 0; i < 64; i++) icmp[8 + i] = (uint8_t)i;
	wr16(icmp + 2, t_csum(icmp, sizeof icmp, 0));
	uint32_t n = t_ip_frame(f, T_MAC_US, T_MAC_PEER, T_IP_PEER, T_IP_US, 1, 1, 0, icmp, sizeof icmp);
	tenv_input(&e, f, n);
	struct tpkt p;
	CHECK(t_next_proto(&e, 1, &p));
	CHECK(p.icmp_type == 0 && p.l4_csum_ok && p.ip_csum_ok && p.dst == T_IP_PEER);
	CHECK(p.l4len == sizeof icmp && memcmp(p.l4 + 4, icmp + 4, sizeof icmp - 4) == 0);
	/* A corrupted request is dropped and counted. */
	f[14 + 20 + 10] ^= 1;
	tenv_input(&e, f, n);
	CHECK(!t_next_proto(&e, 1, &p));
	struct usnet_stack_stats s; usnet_stack_stats(e.st, &s);
	CHECK(s.icmp_drop == 1 && s.icmp_tx == 1);
	tenv_fini(&e);
	return 0;
}

int test_udp_port_unreachable(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	uint8_t f[200];
	uint32_t n = t_udp_frame(f, 5555, 7777, (const uint8_t *)"hello", 5);
	tenv_input(&e, f, n);
	struct tpkt p;
	CHECK(t_next_proto(&e, 1, &p));
	CHECK(p.icmp_type == 3 && p.icmp_code == 3 && p.l4_csum_ok);
	/* Quotes the original IP header and the first 8 bytes of UDP. */
	CHECK(p.l4len == 8 + 20 + 8 && memcmp(p.l4 + 8, f + 14, 28) == 0);
	struct usnet_stack_stats s; usnet_stack_stats(e.st, &s);
	CHECK(s.udp_no_port == 1);
	tenv_fini(&e);
	return 0;
}

int test_udp_socket(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	int32_t u = usnet_socket(e.st, USNET_SOCK_DGRAM);
	struct usnet_addr a = { .ip = 0, .port = 7777 };
	CHECK(usnet_bind(e.st, u, &a) == 0);
	int32_t u2 = usnet_socket(e.st, USNET_SOCK_DGRAM);
	CHECK(usnet_bind(e.st, u2, &a) == -USNET_EADDRINUSE);
	usnet_close(e.st, &e.io, u2, e.now);
	char buf[100];
	CHECK(usnet_recv(e.st, &e.io, u, buf, sizeof buf, 0, e.now) == -USNET_EAGAIN);
	uint8_t f[200];
	tenv_input(&e, f, t_udp_frame(f, 5555, 7777, (const uint8_t *)"hello", 5));
	tenv_input(&e, f, t_udp_frame(f, 5556, 7777, (const uint8_t *)"", 0));
	CHECK(tenv_last_event(&e, u) & USNET_EV_IN);
	CHECK(usnet_sock_readable_bytes(e.st, u) == 5);
	struct usnet_addr from;
	struct usnet_iovec v = { buf, 3 };
	CHECK(usnet_recvv(e.st, &e.io, u, &v, 1, USNET_MSG_PEEK, &from, e.now) == 3);
	CHECK(usnet_recvv(e.st, &e.io, u, &v, 1, USNET_MSG_TRUNC, &from, e.now) == 5);   /* truncated */
	CHECK(from.ip == T_IP_PEER && from.port == 5555 && memcmp(buf, "hel", 3) == 0);
	CHECK(usnet_recvv(e.st, &e.io, u, &v, 1, 0, &from, e.now) == 0 && from.port == 5556);
	CHECK(usnet_recv(e.st, &e.io, u, buf, sizeof buf, 0, e.now) == -USNET_EAGAIN);
	/* Bad checksum, bad length. */
	uint32_t n = t_udp_frame(f, 5555, 7777, (const uint8_t *)"hello", 5);
	f[n - 1 - (n - 47)] ^= 0x40;   /* flip a payload bit */
	tenv_input(&e, f, n);
	n = t_udp_frame(f, 5555, 7777, (const uint8_t *)"hello", 5);
	f[14 + 20 + 5] = 200;   /* UDP length past the IP payload */
	tenv_input(&e, f, n);
	struct usnet_stack_stats s; usnet_stack_stats(e.st, &s);
	CHECK(s.udp_drop_csum == 1 && s.udp_drop_len == 1);
	/* Sending. */
	struct usnet_addr to = { .ip = T_IP_PEER, .port = 9999 };
	CHECK(usnet_sendv(e.st, &e.io, u, &(struct usnet_iovec){ "world", 5 }, 1, 0, &to, e.now) == 5);
	struct tpkt p;
	CHECK(t_next_proto(&e, 17, &p) && p.sport == 7777 && p.dport == 9999 && p.l4_csum_ok && p.ip_csum_ok);
	CHECK(usnet_send(e.st, &e.io, u, "x", 1, 0, e.now) == -USNET_EDESTADDRREQ);
	CHECK(usnet_connect(e.st, &e.io, u, &to, e.now) == 0);
	CHECK(usnet_send(e.st, &e.io, u, "x", 1, 0, e.now) == 1);
	/* Connected: datagrams from another source are not delivered. */
	tenv_input(&e, f, t_udp_frame(f, 5555, 7777, (const uint8_t *)"no", 2));
	CHECK(usnet_recv(e.st, &e.io, u, buf, sizeof buf, 0, e.now) == -USNET_EAGAIN);
	tenv_input(&e, f, t_udp_frame(f, 9999, 7777, (const uint8_t *)"yes", 3));
	CHECK(usnet_recv(e.st, &e.io, u, buf, sizeof buf, 0, e.now) == 3);
	usnet_close(e.st, &e.io, u, e.now);
	usnet_stack_stats(e.st, &s);
	CHECK(s.buffers_in_use == 0 && s.sockets_in_use == 0);
	tenv_fini(&e);
	return 0;
}

/* Sockets sharing a UDP port with SO_REUSEADDR (iperf3's server connects one
 * and binds the next): each datagram goes to the most specific socket. */
int test_udp_reuseaddr_delivery(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	struct usnet_addr any = { .ip = 0, .port = 7777 }, ours = { .ip = T_IP_US, .port = 7777 };
	int32_t wild = usnet_socket(e.st, USNET_SOCK_DGRAM);
	int32_t conn = usnet_socket(e.st, USNET_SOCK_DGRAM);
	int32_t spec = usnet_socket(e.st, USNET_SOCK_DGRAM);
	CHECK(usnet_setsockopt(e.st, conn, USNET_SO_REUSEADDR, 1) == 0);
	CHECK(usnet_bind(e.st, conn, &any) == 0);
	/* Without SO_REUSEADDR on both, the port is taken. */
	CHECK(usnet_bind(e.st, wild, &any) == -USNET_EADDRINUSE);
	CHECK(usnet_setsockopt(e.st, wild, USNET_SO_REUSEADDR, 1) == 0);
	CHECK(usnet_bind(e.st, wild, &any) == 0);
	struct usnet_addr peer = { .ip = T_IP_PEER, .port = 5555 };
	CHECK(usnet_connect(e.st, &e.io, conn, &peer, e.now) == 0);
	uint8_t f[200];
	char buf[16];
	/* The connected socket gets its sender's datagrams, the wildcard the rest,
	 * whichever order they were bound in. */
	tenv_input(&e, f, t_udp_frame(f, 5555, 7777, (const uint8_t *)"c", 1));
	tenv_input(&e, f, t_udp_frame(f, 5556, 7777, (const uint8_t *)"w", 1));
	CHECK(usnet_recv(e.st, &e.io, conn, buf, sizeof buf, 0, e.now) == 1 && buf[0] == 'c');
	CHECK(usnet_recv(e.st, &e.io, conn, buf, sizeof buf, 0, e.now) == -USNET_EAGAIN);
	CHECK(usnet_recv(e.st, &e.io, wild, buf, sizeof buf, 0, e.now) == 1 && buf[0] == 'w');
	CHECK(usnet_recv(e.st, &e.io, wild, buf, sizeof buf, 0, e.now) == -USNET_EAGAIN);
	/* A socket bound to our address beats the wildcard, not the connected one. */
	CHECK(usnet_setsockopt(e.st, spec, USNET_SO_REUSEADDR, 1) == 0);
	CHECK(usnet_bind(e.st, spec, &ours) == 0);
	tenv_input(&e, f, t_udp_frame(f, 5557, 7777, (const uint8_t *)"s", 1));
	tenv_input(&e, f, t_udp_frame(f, 5555, 7777, (const uint8_t *)"C", 1));
	CHECK(usnet_recv(e.st, &e.io, spec, buf, sizeof buf, 0, e.now) == 1 && buf[0] == 's');
	CHECK(usnet_recv(e.st, &e.io, wild, buf, sizeof buf, 0, e.now) == -USNET_EAGAIN);
	CHECK(usnet_recv(e.st, &e.io, conn, buf, sizeof buf, 0, e.now) == 1 && buf[0] == 'C');
	/* Once the connected socket is closed its sender's datagrams go to the
	 * most specific bound socket. */
	usnet_close(e.st, &e.io, conn, e.now);
	tenv_input(&e, f, t_udp_frame(f, 5555, 7777, (const uint8_t *)"x", 1));
	CHECK(usnet_recv(e.st, &e.io, spec, buf, sizeof buf, 0, e.now) == 1 && buf[0] == 'x');
	struct usnet_stack_stats s; usnet_stack_stats(e.st, &s);
	CHECK(s.udp_no_port == 0);
	usnet_close(e.st, &e.io, spec, e.now);
	usnet_close(e.st, &e.io, wild, e.now);
	/* With no socket left the port is unreachable again. */
	tenv_input(&e, f, t_udp_frame(f, 5555, 7777, (const uint8_t *)"x", 1));
	usnet_stack_stats(e.st, &s);
	CHECK(s.udp_no_port == 1 && s.sockets_in_use == 0 && s.buffers_in_use == 0);
	tenv_fini(&e);
	return 0;
}

/* Fragments of a UDP datagram of len bytes, 8-aligned pieces of fsize. */
static unsigned make_frags(uint8_t frames[][1600], uint32_t *lens, uint16_t id, const uint8_t *data, uint32_t len,
			   uint32_t fsize)
{
	static uint8_t udp[70000];
	wr16(udp, 5555); wr16(udp + 2, 7777); wr16(udp + 4, (uint16_t)(8 + len)); wr16(udp + 6, 0);
	memcpy(udp + 8, data, len);
	uint16_t c = t_csum(udp, 8 + len, t_pseudo(T_IP_PEER, T_IP_US, 17, 8 + len));
	wr16(udp + 6, c ? c : 0xffff);
	unsigned n = 0;
	for (uint32_t off = 0; off < 8 + len; off += fsize, n++) {
		uint32_t k = 8 + len - off < fsize ? 8 + len - off : fsize;
		uint16_t frag = (uint16_t)(off / 8) | (off + k < 8 + len ? 0x2000 : 0);
		lens[n] = t_ip_frame(frames[n], T_MAC_US, T_MAC_PEER, T_IP_PEER, T_IP_US, 17, id, frag, udp + off, k);
	}
	return n;
}

int test_ip_reassembly(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	int32_t u = usnet_socket(e.st, USNET_SOCK_DGRAM);
	struct usnet_addr a = { .ip = 0, .port = 7777 };
	usnet_bind(e.st, u, &a);
	static uint8_t data[5000], buf[6000], fr[8][1600];
	uint32_t lens[8];
	for (unsigned i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 7);
	/* In order. */
	unsigned n = make_frags(fr, lens, 1, data, 3000, 1480);
	CHECK(n == 3);
	for (unsigned i = 0; i < n; i++) tenv_input(&e, fr[i], lens[i]);
	CHECK(usnet_recv(e.st, &e.io, u, buf, sizeof buf, 0, e.now) == 3000 && memcmp(buf, data, 3000) == 0);
	/* Out of order, with an exact duplicate. */
	n = make_frags(fr, lens, 2, data, 5000, 1000);
	CHECK(n == 6);
	unsigned order[] = { 5, 2, 0, 2, 4, 1, 3 };
	for (unsigned i = 0; i < 7; i++) tenv_input(&e, fr[order[i]], lens[order[i]]);
	CHECK(usnet_recv(e.st, &e.io, u, buf, sizeof buf, 0, e.now) == 5000 && memcmp(buf, data, 5000) == 0);
	/* Overlap: a fragment that overlaps another drops the datagram. */
	n = make_frags(fr, lens, 3, data, 3000, 1480);
	tenv_input(&e, fr[0], lens[0]);
	{
		uint8_t evil[1600];
		static uint8_t piece[800];
		memset(piece, 'E', sizeof piece);
		uint32_t l = t_ip_frame(evil, T_MAC_US, T_MAC_PEER, T_IP_PEER, T_IP_US, 17, 3, (uint16_t)(1000 / 8) | 0x2000, piece, 800);
		tenv_input(&e, evil, l);
	}
	tenv_input(&e, fr[1], lens[1]);
	tenv_input(&e, fr[2], lens[2]);
	CHECK(usnet_recv(e.st, &e.io, u, buf, sizeof buf, 0, e.now) == -USNET_EAGAIN);
	struct usnet_stack_stats s; usnet_stack_stats(e.st, &s);
	CHECK(s.ip_frag_drop >= 1);
	/* Timeout: a datagram missing a piece is freed after 30 s. */
	n = make_frags(fr, lens, 4, data, 3000, 1480);
	tenv_input(&e, fr[0], lens[0]);
	tenv_input(&e, fr[2], lens[2]);
	usnet_stack_stats(e.st, &s);
	CHECK(s.buffers_in_use > 0);
	tenv_advance(&e, e.now + 31 * SEC);
	usnet_stack_stats(e.st, &s);
	CHECK(s.ip_frag_timeout >= 1);
	tenv_input(&e, fr[1], lens[1]);
	CHECK(usnet_recv(e.st, &e.io, u, buf, sizeof buf, 0, e.now) == -USNET_EAGAIN);
	tenv_advance(&e, e.now + 31 * SEC);
	usnet_stack_stats(e.st, &s);
	CHECK(s.buffers_in_use == 0);
	/* Non-last fragment with a length not a multiple of 8 is dropped. */
	{
		uint8_t bad[1600], piece[100] = { 0 };
		uint32_t l = t_ip_frame(bad, T_MAC_US, T_MAC_PEER, T_IP_PEER, T_IP_US, 17, 9, 0x2000, piece, 100 - 3);
		uint64_t before = s.ip_frag_drop;
		tenv_input(&e, bad, l);
		usnet_stack_stats(e.st, &s);
		CHECK(s.ip_frag_drop == before + 1);
	}
	usnet_close(e.st, &e.io, u, e.now);
	tenv_fini(&e);
	return 0;
}

/* Large UDP datagrams leave as fragments that reassemble to the original. */
int test_udp_fragment_output(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	int32_t u = usnet_socket(e.st, USNET_SOCK_DGRAM);
	static uint8_t data[4000], asm_[4100];
	for (unsigned i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 13 + 1);
	struct usnet_addr to = { .ip = T_IP_PEER, .port = 9 };
	struct usnet_iovec v[2] = { { data, 1001 }, { data + 1001, 2999 } };   /* odd split */
	CHECK(usnet_sendv(e.st, &e.io, u, v, 2, 0, &to, e.now) == 4000);
	struct tpkt p;
	unsigned nf = 0;
	uint32_t total = 0;
	while (t_next_proto(&e, 17, &p)) {
		uint32_t off = (p.frag & 0x1fff) * 8u;
		CHECK(p.ip_csum_ok && off + p.l4len <= sizeof asm_);
		memcpy(asm_ + off, p.l4, p.l4len);
		total += p.l4len;
		nf++;
	}
	CHECK(nf == 3 && total == 4008);
	CHECK(t_csum(asm_, 4008, t_pseudo(T_IP_US, T_IP_PEER, 17, 4008)) == 0);
	CHECK(memcmp(asm_ + 8, data, 4000) == 0);
	usnet_close(e.st, &e.io, u, e.now);
	tenv_fini(&e);
	return 0;
}

int test_ip_validation(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	uint8_t f[200];
	uint32_t n = t_udp_frame(f, 1, 2, (const uint8_t *)"abc", 3);
	struct usnet_stack_stats s0, s;
	usnet_stack_stats(e.st, &s0);
	uint8_t g[200];
	memcpy(g, f, n); g[14] = 0x65; tenv_input(&e, g, n);                  /* version 6 */
	memcpy(g, f, n); g[14] = 0x44; tenv_input(&e, g, n);                  /* IHL 4 */
	memcpy(g, f, n); g[14 + 2] = 0x05; tenv_input(&e, g, n);              /* total > frame */
	memcpy(g, f, n); g[14 + 10] ^= 0xff; tenv_input(&e, g, n);            /* header checksum */
	memcpy(g, f, n); tenv_input(&e, g, 14 + 10);                          /* truncated */
	memcpy(g, f, n); g[14 + 19] = 99; g[24] = g[25] = 0; wr16(g + 24, t_csum(g + 14, 20, 0)); tenv_input(&e, g, n); /* not ours */
	memcpy(g, f, n); tenv_input(&e, g, 10);                               /* runt frame */
	usnet_stack_stats(e.st, &s);
	CHECK(s.ip_drop_header - s0.ip_drop_header == 2);
	CHECK(s.ip_drop_len - s0.ip_drop_len == 2);
	CHECK(s.ip_drop_csum - s0.ip_drop_csum == 1);
	CHECK(s.rx_drop_short - s0.rx_drop_short == 1);
	CHECK(s.ip_drop_not_ours - s0.ip_drop_not_ours >= 1);
	CHECK(tnif_next(e.nif) == NULL);
	/* Options are skipped: IHL 6 with a NOP word is accepted. */
	{
		uint8_t h[200];
		memcpy(h, f, 14);
		uint8_t *ip = h + 14;
		memcpy(ip, f + 14, 20);
		ip[0] = 0x46;
		memset(ip + 20, 1, 4);
		memcpy(ip + 24, f + 34, n - 34);
		wr16(ip + 2, (uint16_t)(24 + 11));
		wr16(ip + 10, 0);
		wr16(ip + 10, t_csum(ip, 24, 0));
		tenv_input(&e, h, 14 + 24 + 11 < 60 ? 60 : 14 + 24 + 11);
		struct tpkt p;
		CHECK(t_next_proto(&e, 1, &p) && p.icmp_type == 3);   /* reached UDP: port unreachable */
	}
	tenv_fini(&e);
	return 0;
}

/* Checksum offload: TX frames are marked partial; RX flags skip checks. */
int test_csum_offload(void)
{
	struct usnet_stack_config cfg;
	tenv_default_cfg(&cfg);
	cfg.netif_caps = USNET_NETIF_CAP_TX_CSUM;
	struct tenv e; tenv_init(&e, &cfg);
	tenv_learn_peer(&e);
	int32_t u = usnet_socket(e.st, USNET_SOCK_DGRAM);
	struct usnet_addr a = { .ip = 0, .port = 7777 }, to = { .ip = T_IP_PEER, .port = 9 };
	usnet_bind(e.st, u, &a);
	CHECK(usnet_sendv(e.st, &e.io, u, &(struct usnet_iovec){ "abcde", 5 }, 1, 0, &to, e.now) == 5);
	struct tframe *fr = tnif_next(e.nif);
	struct tpkt p;
	CHECK(fr && (fr->flags & USNET_PKT_TX_CSUM_PARTIAL) && fr->csum_start == 34 && fr->csum_offset == 6);
	CHECK(t_parse(fr, &p) == 0 && p.l4_csum_ok);
	/* RX: a frame with a garbage checksum but CSUM_PARTIAL/OK is accepted. */
	uint8_t f[200];
	uint32_t n = t_udp_frame(f, 5555, 7777, (const uint8_t *)"hello", 5);
	f[14 + 20 + 6] ^= 0x55;
	tenv_input(&e, f, n);
	char buf[16];
	CHECK(usnet_recv(e.st, &e.io, u, buf, sizeof buf, 0, e.now) == -USNET_EAGAIN);
	tenv_input_flags(&e, f, n, USNET_PKT_RX_CSUM_PARTIAL);
	CHECK(usnet_recv(e.st, &e.io, u, buf, sizeof buf, 0, e.now) == 5);
	tenv_input_flags(&e, f, n, USNET_PKT_RX_CSUM_OK);
	CHECK(usnet_recv(e.st, &e.io, u, buf, sizeof buf, 0, e.now) == 5);
	usnet_close(e.st, &e.io, u, e.now);
	tenv_fini(&e);
	return 0;
}

/* The stack's checksum against the simple reference, odd lengths too. */
int test_checksum_reference(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	int32_t u = usnet_socket(e.st, USNET_SOCK_DGRAM);
	struct usnet_addr to = { .ip = T_IP_PEER, .port = 9 };
	uint8_t data[1400];
	uint32_t seed = 1;
	for (int len = 0; len < 1400; len += 37) {
		for (int i = 0; i < len; i++) { seed = seed * 1103515245 + 12345; data[i] = (uint8_t)(seed >> 16); }
		CHECK(usnet_sendv(e.st, &e.io, u, &(struct usnet_iovec){ data, (size_t)len }, 1, 0, &to, e.now) == len);
		struct tpkt p;
		CHECKF(t_next_proto(&e, 17, &p) && p.l4_csum_ok && p.ip_csum_ok, "len %d", len);
	}
	usnet_close(e.st, &e.io, u, e.now);
	tenv_fini(&e);
	return 0;
}

int test_config_and_api_errors(void)
{
	struct usnet_stack_config cfg;
	tenv_default_cfg(&cfg);
	size_t sz = usnet_stack_mem_size(&cfg);
	CHECK(sz > 0);
	void *mem = aligned_alloc(64, (sz + 63) & ~(size_t)63);
	CHECK(usnet_stack_create(mem, sz - 1, &cfg) == NULL);
	CHECK(usnet_stack_create((char *)mem + 8, sz, &cfg) == NULL);
	cfg.mtu = 100;
	CHECK(usnet_stack_mem_size(&cfg) == 0 && usnet_stack_create(mem, sz, &cfg) == NULL);
	free(mem);
	struct tenv e; tenv_init(&e, NULL);
	CHECK(usnet_socket(e.st, 99) == -USNET_EPROTONOSUPPORT);
	CHECK(usnet_bind(e.st, 5, &(struct usnet_addr){ .ip = 0, .port = 1 }) == -USNET_EBADF);
	CHECK(usnet_bind(e.st, -1, &(struct usnet_addr){ .ip = 0, .port = 1 }) == -USNET_EBADF);
	CHECK(usnet_bind(e.st, 100000, &(struct usnet_addr){ .ip = 0, .port = 1 }) == -USNET_EBADF);
	int32_t t = usnet_socket(e.st, USNET_SOCK_STREAM);
	CHECK(usnet_bind(e.st, t, &(struct usnet_addr){ .ip = 0x0b000001, .port = 80 }) == -USNET_EADDRNOTAVAIL);
	CHECK(usnet_send(e.st, &e.io, t, "x", 1, 0, e.now) == -USNET_ENOTCONN);
	CHECK(usnet_connect(e.st, &e.io, t, &(struct usnet_addr){ .ip = 0x0b000001, .port = 80 }, e.now) == -USNET_ENETUNREACH);
	int v = 0;
	CHECK(usnet_getsockopt(e.st, t, USNET_SO_TYPE, &v) == 0 && v == USNET_SOCK_STREAM);
	CHECK(usnet_setsockopt(e.st, t, USNET_TCP_CONGESTION, 7) == -USNET_ENOENT);
	CHECK(usnet_route_add(e.st, 0x0b000000, 8, T_IP_PEER) == 0);
	CHECK(usnet_connect(e.st, &e.io, t, &(struct usnet_addr){ .ip = 0x0b000001, .port = 80 }, e.now) == -USNET_EINPROGRESS);
	CHECK(usnet_connect(e.st, &e.io, t, &(struct usnet_addr){ .ip = 0x0b000001, .port = 80 }, e.now) == -USNET_EALREADY);
	CHECK(usnet_close(e.st, &e.io, t, e.now) == 0);
	CHECK(usnet_close(e.st, &e.io, t, e.now) == -USNET_EBADF);
	tnif_clear(e.nif);
	tenv_advance(&e, e.now + 1 * SEC);
	tenv_fini(&e);
	return 0;
}

/* A ping larger than the MTU (fragmented) gets a fragmented reply. */
int test_icmp_echo_fragmented(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	static uint8_t icmp[3008], f[1600], asm_[3100];
	memset(icmp, 0, sizeof icmp);
	icmp[0] = 8; wr16(icmp + 4, 0x99); wr16(icmp + 6, 3);
	for (unsigned i = 8; i < sizeof icmp; i++) icmp[i] = (uint8_t)(i * 3);
	wr16(icmp + 2, t_csum(icmp, sizeof icmp, 0));
	for (uint32_t off = 0; off < sizeof icmp; off += 1480) {
		uint32_t n = sizeof icmp - off < 1480 ? sizeof icmp - off : 1480;
		uint16_t frag = (uint16_t)(off / 8) | (off + n < sizeof icmp ? 0x2000 : 0);
		tenv_input(&e, f, t_ip_frame(f, T_MAC_US, T_MAC_PEER, T_IP_PEER, T_IP_US, 1, 55, frag, icmp + off, n));
	}
	struct tpkt p;
	uint32_t total = 0;
	int nf = 0;
	while (t_next_proto(&e, 1, &p)) {
		uint32_t off = (p.frag & 0x1fff) * 8u;
		CHECK(p.ip_csum_ok && off + p.l4len <= sizeof asm_);
		memcpy(asm_ + off, p.l4, p.l4len);
		total += p.l4len;
		nf++;
	}
	CHECKF(nf == 3 && total == sizeof icmp, "frags %d total %u", nf, total);
	CHECK(asm_[0] == 0 && t_csum(asm_, sizeof icmp, 0) == 0);
	CHECK(memcmp(asm_ + 4, icmp + 4, sizeof icmp - 4) == 0);
	tenv_fini(&e);
	return 0;
}
