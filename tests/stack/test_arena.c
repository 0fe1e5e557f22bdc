/*
 * Tests: the arena is position-independent.  A process that did not fork
 * from the one that created an instance (an exec'd image, an unrelated
 * program) maps the same shared memory at another address; every
 * connection, timer and queue must carry on there.
 */
#include "harness.h"
#include "tests.h"

#define SYN 0x02
#define ACK 0x10
#define PSH 0x08

#define T_IP_OTHER 0x0a000003u   /* 10.0.0.3: a neighbour not yet resolved */
static const uint8_t T_MAC_OTHER[6] = { 0x02, 0, 0, 0, 0, 0x03 };

static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void wr32(uint8_t *p, uint32_t v) { wr16(p, (uint16_t)(v >> 16)); wr16(p + 2, (uint16_t)v); }

/* An ARP reply from 10.0.0.3 to us. */
static uint32_t arp_reply_from_other(uint8_t *f)
{
	memset(f, 0, 60);
	memcpy(f, T_MAC_US, 6);
	memcpy(f + 6, T_MAC_OTHER, 6);
	wr16(f + 12, 0x0806);
	uint8_t *a = f + 14;
	wr16(a, 1); wr16(a + 2, 0x0800); a[4] = 6; a[5] = 4; wr16(a + 6, 2);
	memcpy(a + 8, T_MAC_OTHER, 6); wr32(a + 14, T_IP_OTHER);
	memcpy(a + 18, T_MAC_US, 6); wr32(a + 24, T_IP_US);
	return 60;
}

/* A UDP datagram from the peer to our port 7777 as IPv4 fragments of at
 * most 1480 bytes; returns how many. */
static unsigned udp_fragments(uint8_t frames[][1600], uint32_t *lens, uint16_t id, const uint8_t *data,
			      uint32_t len)
{
	static uint8_t udp[8 + 4000];
	wr16(udp, 5555); wr16(udp + 2, 7777); wr16(udp + 4, (uint16_t)(8 + len)); wr16(udp + 6, 0);
	memcpy(udp + 8, data, len);
	uint16_t c = t_csum(udp, 8 + len, t_pseudo(T_IP_PEER, T_IP_US, 17, 8 + len));
	wr16(udp + 6, c ? c : 0xffff);
	unsigned n = 0;
	for (uint32_t off = 0; off < 8 + len; off += 1480, n++) {
		uint32_t k = 8 + len - off < 1480 ? 8 + len - off : 1480;
		uint16_t frag = (uint16_t)(off / 8) | (off + k < 8 + len ? 0x2000 : 0);
		lens[n] = t_ip_frame(frames[n], T_MAC_US, T_MAC_PEER, T_IP_PEER, T_IP_US, 17, id, frag, udp + off, k);
	}
	return n;
}

static int32_t find_listener(struct tenv *e)
{
	for (int i = usnet_sock_next(e->st, 0); i >= 0; i = usnet_sock_next(e->st, i + 1)) {
		int v = 0;
		if (usnet_getsockopt(e->st, i, USNET_SO_ACCEPTCONN, &v) == 0 && v)
			return i;
	}
	return -1;
}

int test_arena_relocation(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	struct tpkt p;
	uint8_t f[2048];
	char buf[4096];

	/* Before the move, state in every table: an established connection
	 * with data queued each way (in order, out of order, unacknowledged)
	 * and its timers armed; a listener; a datagram waiting for ARP; a
	 * datagram half reassembled. */
	struct tconn c;
	CHECK(tconn_accept(&c, &e, 80, 1, 1, 7, 1460) == 0);
	int32_t l = find_listener(&e);
	CHECK(l >= 0);
	tconn_send(&c, ACK | PSH, "hello", 5, 65535);
	CHECK(usnet_recv(e.st, &e.io, c.s, buf, sizeof buf, 0, e.now) == 5 && memcmp(buf, "hello", 5) == 0);
	tconn_send_seq(&c, c.pseq + 4, ACK | PSH, "5678", 4, 65535);   /* ahead of a 4-byte hole */
	static uint8_t out[3000];
	for (unsigned i = 0; i < sizeof out; i++)
		out[i] = (uint8_t)(i * 13 + 1);
	tnif_clear(e.nif);
	CHECK(usnet_send(e.st, &e.io, c.s, out, sizeof out, 0, e.now) == (long)sizeof out);
	CHECK(t_count_tcp(&e) >= 2);   /* sent, and left unacknowledged */

	int32_t u = usnet_socket(e.st, USNET_SOCK_DGRAM);
	CHECK(usnet_bind(e.st, u, &(struct usnet_addr){ .ip = 0, .port = 7777 }) == 0);
	struct usnet_addr other = { .ip = T_IP_OTHER, .port = 9 };
	CHECK(usnet_sendv(e.st, &e.io, u, &(struct usnet_iovec){ "arp-wait", 8 }, 1, 0, &other, e.now) == 8);
	struct tframe *fr = tnif_next(e.nif);
	CHECK(fr && t_parse(fr, &p) == 0 && p.is_arp && p.arp_tpa == T_IP_OTHER);

	static uint8_t dgram[3000], frags[4][1600];
	uint32_t flens[4];
	for (unsigned i = 0; i < sizeof dgram; i++)
		dgram[i] = (uint8_t)(i * 7 + 3);
	unsigned nfrag = udp_fragments(frags, flens, 42, dgram, sizeof dgram);
	CHECK(nfrag == 3);
	tenv_input(&e, frags[0], flens[0]);
	CHECK(usnet_recv(e.st, &e.io, u, buf, sizeof buf, 0, e.now) == -USNET_EAGAIN);

	tenv_move_arena(&e);

	/* The hole is filled: the out-of-order bytes were kept. */
	tnif_clear(e.nif);
	tconn_send(&c, ACK | PSH, "1234", 4, 65535);
	c.pseq += 4;
	CHECK(usnet_recv(e.st, &e.io, c.s, buf, sizeof buf, 0, e.now) == 8 && memcmp(buf, "12345678", 8) == 0);
	CHECK(t_next_tcp(&e, &p) && p.ack == c.pseq && memcmp(p.eth_dst, T_MAC_PEER, 6) == 0);

	/* The retransmission timer fires and resends the queued bytes. */
	tnif_clear(e.nif);
	tenv_advance(&e, e.now + 1500 * MS);
	int resent_first = 0, segs = 0;
	while (t_next_tcp(&e, &p)) {
		if (!p.dlen)
			continue;
		uint32_t off = p.seq - c.pack;
		CHECKF(off + p.dlen <= sizeof out, "segment at +%u, %u bytes", off, p.dlen);
		CHECK(memcmp(p.data, out + off, p.dlen) == 0);
		resent_first |= off == 0;
		segs++;
	}
	CHECKF(resent_first, "%d data segments, none at the first byte", segs);
	c.pack += sizeof out;
	tconn_send(&c, ACK, NULL, 0, 65535);
	struct usnet_tcp_info ti;
	CHECK(usnet_tcp_info(e.st, c.s, &ti) == 0 && ti.unacked == 0 && ti.state == USNET_TCP_ESTABLISHED);

	/* New data both ways. */
	tconn_send(&c, ACK | PSH, "after", 5, 65535);
	CHECK(usnet_recv(e.st, &e.io, c.s, buf, sizeof buf, 0, e.now) == 5 && memcmp(buf, "after", 5) == 0);
	tnif_clear(e.nif);
	CHECK(usnet_send(e.st, &e.io, c.s, "moved", 5, 0, e.now) == 5);
	CHECK(t_next_tcp(&e, &p) && p.seq == c.pack && p.dlen == 5 && memcmp(p.data, "moved", 5) == 0);
	c.pack += 5;
	tconn_send(&c, ACK, NULL, 0, 65535);

	/* The rest of the fragmented datagram completes it. */
	for (unsigned i = 1; i < nfrag; i++)
		tenv_input(&e, frags[i], flens[i]);
	struct usnet_addr from;
	CHECK(usnet_recvv(e.st, &e.io, u, &(struct usnet_iovec){ buf, sizeof buf }, 1, 0, &from, e.now) ==
	      (long)sizeof dgram);
	CHECK(memcmp(buf, dgram, sizeof dgram) == 0 && from.ip == T_IP_PEER && from.port == 5555);

	/* The ARP answer releases the datagram that waited for it. */
	tnif_clear(e.nif);
	tenv_input(&e, f, arp_reply_from_other(f));
	CHECK(t_next_proto(&e, 17, &p) && p.dst == T_IP_OTHER && p.dlen == 8 && memcmp(p.data, "arp-wait", 8) == 0);
	CHECK(memcmp(p.eth_dst, T_MAC_OTHER, 6) == 0 && p.l4_csum_ok);

	/* The listener accepts a new connection. */
	tnif_clear(e.nif);
	tenv_input(&e, f, t_tcp_frame(f, 40001, 80, 9000, 0, SYN, 65535, NULL, 0, NULL, 0));
	CHECK(t_next_tcp(&e, &p) && p.flags == (SYN | ACK) && p.ack == 9001 && p.dport == 40001);
	uint32_t iss = p.seq;
	tenv_input(&e, f, t_tcp_frame(f, 40001, 80, 9001, iss + 1, ACK, 65535, NULL, 0, NULL, 0));
	struct usnet_addr peer;
	int32_t s2 = usnet_accept(e.st, &e.io, l, &peer, e.now);
	CHECK(s2 >= 0 && s2 != c.s && peer.ip == T_IP_PEER && peer.port == 40001);
	tenv_input(&e, f, t_tcp_frame(f, 40001, 80, 9001, iss + 1, ACK | PSH, 65535, NULL, 0, (const uint8_t *)"new", 3));
	CHECK(usnet_recv(e.st, &e.io, s2, buf, sizeof buf, 0, e.now) == 3 && memcmp(buf, "new", 3) == 0);
	tnif_clear(e.nif);
	CHECK(usnet_send(e.st, &e.io, s2, "conn", 4, 0, e.now) == 4);
	CHECK(t_next_tcp(&e, &p) && p.dport == 40001 && p.seq == iss + 1 && p.ack == 9004 &&
	      p.dlen == 4 && memcmp(p.data, "conn", 4) == 0);
	tenv_input(&e, f, t_tcp_frame(f, 40001, 80, 9004, iss + 5, ACK, 65535, NULL, 0, NULL, 0));

	/* Everything closes and every buffer and socket comes back. */
	usnet_setsockopt(e.st, s2, USNET_SO_LINGER, 0);
	usnet_close(e.st, &e.io, s2, e.now);
	usnet_setsockopt(e.st, c.s, USNET_SO_LINGER, 0);
	usnet_close(e.st, &e.io, c.s, e.now);
	usnet_close(e.st, &e.io, l, e.now);
	usnet_close(e.st, &e.io, u, e.now);
	tenv_advance(&e, e.now + 200 * SEC);
	struct usnet_stack_stats st;
	usnet_stack_stats(e.st, &st);
	CHECKF(st.sockets_in_use == 0 && st.buffers_in_use == 0 && st.arp_waiting == 0,
	       "sockets %u, buffer bytes %llu, ARP waiting %llu", st.sockets_in_use,
	       (unsigned long long)st.buffers_in_use, (unsigned long long)st.arp_waiting);
	tenv_fini(&e);
	return 0;
}
