/*
 * IPv4 multicast on the stack: memberships and their errnos, IGMP reports,
 * leaves and answers to queries (checked on the wire with the harness's own
 * checksum), delivery of datagrams to a group, and sending to one.
 */
#include "harness.h"
#include "tests.h"

#define G1 0xef010203u   /* 239.1.2.3 */
#define G2 0xef010204u   /* 239.1.2.4 */

static void wr16_(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void wr32_(uint8_t *p, uint32_t v) { wr16_(p, (uint16_t)(v >> 16)); wr16_(p + 2, (uint16_t)v); }
static uint16_t rd16_(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t rd32_(const uint8_t *p) { return (uint32_t)rd16_(p) << 16 | rd16_(p + 2); }

static void group_mac(uint32_t g, uint8_t mac[6])
{
	mac[0] = 1; mac[1] = 0; mac[2] = 0x5e;
	mac[3] = (uint8_t)((g >> 16) & 0x7f); mac[4] = (uint8_t)(g >> 8); mac[5] = (uint8_t)g;
}

/* An IGMP message from the peer to dst (its checksum filled in unless bad). */
static uint32_t igmp_frame(uint8_t *f, uint32_t dst, uint8_t *msg, uint32_t len, int bad_csum)
{
	wr16_(msg + 2, 0);
	wr16_(msg + 2, (uint16_t)(t_csum(msg, len, 0) ^ (bad_csum ? 0x0100 : 0)));
	uint8_t mac[6];
	group_mac(dst, mac);
	return t_ip_frame(f, mac, T_MAC_PEER, T_IP_PEER, dst, 2, 0, 0, msg, len);
}

/* A query: v 1, 2 or 3, max resp code, group. */
static uint32_t query_frame(uint8_t *f, int v, uint8_t code, uint32_t group)
{
	uint8_t m[12] = { 0x11, (uint8_t)(v == 1 ? 0 : code) };
	wr32_(m + 4, group);
	return igmp_frame(f, group ? group : 0xe0000001u, m, v == 3 ? 12 : 8, 0);
}

/* A datagram from the peer to group:port. */
static uint32_t mc_udp_frame(uint8_t *f, uint32_t group, uint16_t dport, const char *data)
{
	uint8_t u[256];
	uint32_t n = (uint32_t)strlen(data);
	wr16_(u, 4000); wr16_(u + 2, dport); wr16_(u + 4, (uint16_t)(8 + n)); wr16_(u + 6, 0);
	memcpy(u + 8, data, n);
	uint16_t c = t_csum(u, 8 + n, t_pseudo(T_IP_PEER, group, 17, 8 + n));
	wr16_(u + 6, c ? c : 0xffff);
	uint8_t mac[6];
	group_mac(group, mac);
	return t_ip_frame(f, mac, T_MAC_PEER, T_IP_PEER, group, 17, 1, 0, u, 8 + n);
}

/* What an IGMP frame of the stack said, with every header rule checked
 * (RFC 3376 4, RFC 2236 2): ok is 0 when one fails. */
struct igmp_out {
	int ok;
	uint32_t dst;
	uint8_t type;
	uint32_t group;           /* v1/v2 */
	unsigned nrec;            /* v3 */
	uint8_t rtype[8];
	uint32_t rgroup[8];
};

static int next_igmp(struct tenv *e, struct igmp_out *o)
{
	struct tframe *f;
	memset(o, 0, sizeof *o);
	while ((f = tnif_next(e->nif))) {
		const uint8_t *ip = f->d + 14;
		if (f->len < 14 + 24 || rd16_(f->d + 12) != 0x0800 || ip[9] != 2)
			continue;
		uint32_t hl = (ip[0] & 15) * 4u, tot = rd16_(ip + 2);
		const uint8_t *m = ip + hl;
		uint32_t len = tot - hl;
		o->dst = rd32_(ip + 16);
		uint8_t mac[6];
		group_mac(o->dst, mac);
		o->type = m[0];
		o->ok = hl == 24 && ip[20] == 0x94 && ip[21] == 4 && ip[8] == 1 && ip[1] == 0xc0 &&
			t_csum(ip, hl, 0) == 0 && rd32_(ip + 12) == T_IP_US && memcmp(f->d, mac, 6) == 0 &&
			memcmp(f->d + 6, T_MAC_US, 6) == 0 && len >= 8 && t_csum(m, len, 0) == 0;
		if (o->type == 0x22) {
			o->nrec = rd16_(m + 6);
			o->ok &= o->dst == 0xe0000016u && len == 8 + 8 * o->nrec;
			for (unsigned i = 0; i < o->nrec && i < 8; i++) {
				o->rtype[i] = m[8 + 8 * i];
				o->rgroup[i] = rd32_(m + 12 + 8 * i);
				o->ok &= m[9 + 8 * i] == 0 && rd16_(m + 10 + 8 * i) == 0;
			}
		} else {
			o->group = rd32_(m + 4);
			o->ok &= len == 8 && o->dst == (o->type == 0x17 ? 0xe0000002u : o->group);
		}
		return 1;
	}
	return 0;
}

static unsigned count_igmp(struct tenv *e)
{
	struct igmp_out o;
	unsigned n = 0;
	while (next_igmp(e, &o))
		n++;
	return n;
}

int test_mc_join_leave_reports(void)
{
	struct tenv e; tenv_init(&e, NULL);
	int32_t a = usnet_socket(e.st, USNET_SOCK_DGRAM), b = usnet_socket(e.st, USNET_SOCK_DGRAM);
	int32_t t = usnet_socket(e.st, USNET_SOCK_STREAM);
	struct igmp_out o;
	/* errnos first: nothing goes out for them */
	CHECK(usnet_mc_join(e.st, &e.io, t, G1, e.now) == -USNET_EPROTO);
	CHECK(usnet_mc_join(e.st, &e.io, a, T_IP_PEER, e.now) == -USNET_EINVAL);
	CHECK(usnet_mc_leave(e.st, &e.io, a, G1, e.now) == -USNET_EADDRNOTAVAIL);
	CHECK(count_igmp(&e) == 0);
	/* the first join: a v3 TO_EX({}) report at once, again within 1 s */
	CHECK(usnet_mc_join(e.st, &e.io, a, G1, e.now) == 0);
	CHECK(usnet_mc_joined(e.st, G1) == 1);
	CHECK(next_igmp(&e, &o) && o.ok && o.type == 0x22 && o.nrec == 1 && o.rtype[0] == 4 && o.rgroup[0] == G1);
	CHECK(usnet_mc_join(e.st, &e.io, a, G1, e.now) == -USNET_EADDRINUSE);
	CHECK(usnet_mc_join(e.st, &e.io, b, G1, e.now) == 0);   /* not the first: no report */
	CHECK(count_igmp(&e) == 0);
	tenv_advance(&e, e.now + 1 * SEC);
	CHECK(next_igmp(&e, &o) && o.ok && o.rtype[0] == 4 && o.rgroup[0] == G1);
	tenv_advance(&e, e.now + 5 * SEC);
	CHECK(count_igmp(&e) == 0);   /* robustness 2: two reports */
	/* the last leave: TO_IN({}), twice */
	CHECK(usnet_mc_leave(e.st, &e.io, a, G1, e.now) == 0);
	CHECK(count_igmp(&e) == 0 && usnet_mc_joined(e.st, G1) == 1);
	CHECK(usnet_mc_leave(e.st, &e.io, b, G1, e.now) == 0);
	CHECK(usnet_mc_joined(e.st, G1) == 0);
	CHECK(next_igmp(&e, &o) && o.ok && o.type == 0x22 && o.rtype[0] == 3 && o.rgroup[0] == G1);
	tenv_advance(&e, e.now + 1 * SEC);
	CHECK(next_igmp(&e, &o) && o.ok && o.rtype[0] == 3);
	tenv_advance(&e, e.now + 5 * SEC);
	CHECK(count_igmp(&e) == 0);
	CHECK(usnet_mc_leave(e.st, &e.io, b, G1, e.now) == -USNET_EADDRNOTAVAIL);
	/* 20 groups a socket (Linux's igmp_max_memberships), then ENOBUFS */
	for (uint32_t i = 0; i < 20; i++)
		CHECK(usnet_mc_join(e.st, &e.io, a, 0xef020001u + i, e.now) == 0);
	CHECK(usnet_mc_join(e.st, &e.io, a, 0xef020100u, e.now) == -USNET_ENOBUFS);
	uint32_t groups[32];
	CHECK(usnet_mc_sock_groups(e.st, a, groups, 32) == 20);
	/* 224.0.0.1 is joined but never reported */
	CHECK(usnet_mc_join(e.st, &e.io, b, 0xe0000001u, e.now) == 0);
	tenv_advance(&e, e.now + 5 * SEC);
	tnif_clear(e.nif);
	/* closing leaves every group: a TO_IN for each, at once */
	usnet_close(e.st, &e.io, a, e.now);
	unsigned leaves = 0;
	while (next_igmp(&e, &o)) {
		CHECK(o.ok && o.type == 0x22 && o.rtype[0] == 3);
		leaves++;
	}
	CHECK(leaves == 20);
	CHECK(usnet_mc_joined(e.st, 0xef020001u) == 0);
	usnet_close(e.st, &e.io, b, e.now);
	CHECK(count_igmp(&e) == 0);
	tenv_fini(&e);
	return 0;
}

int test_mc_query_answers(void)
{
	struct tenv e; tenv_init(&e, NULL);
	int32_t a = usnet_socket(e.st, USNET_SOCK_DGRAM);
	CHECK(usnet_mc_join(e.st, &e.io, a, G1, e.now) == 0);
	CHECK(usnet_mc_join(e.st, &e.io, a, G2, e.now) == 0);
	tenv_advance(&e, e.now + 5 * SEC);
	tnif_clear(e.nif);
	uint8_t f[128];
	struct igmp_out o;
	struct usnet_stack_stats s;
	/* v3 general query, Max Resp 1 s: one report of both groups, IS_EX */
	tenv_input(&e, f, query_frame(f, 3, 10, 0));
	CHECK(count_igmp(&e) == 0);
	tenv_advance(&e, e.now + 1 * SEC);
	CHECK(next_igmp(&e, &o) && o.ok && o.type == 0x22 && o.nrec == 2 && o.rtype[0] == 2 && o.rtype[1] == 2);
	CHECK((o.rgroup[0] == G1 && o.rgroup[1] == G2) || (o.rgroup[0] == G2 && o.rgroup[1] == G1));
	CHECK(count_igmp(&e) == 0);
	/* group-specific: that group only; another group's: nothing (not even
	 * taken in: the stack is no member of it) */
	tenv_input(&e, f, query_frame(f, 3, 10, G2));
	tenv_input(&e, f, query_frame(f, 3, 10, 0xef090909u));
	tenv_advance(&e, e.now + 1 * SEC);
	CHECK(next_igmp(&e, &o) && o.ok && o.nrec == 1 && o.rtype[0] == 2 && o.rgroup[0] == G2);
	CHECK(count_igmp(&e) == 0);
	/* malformed ones are counted and dropped */
	uint8_t m[12] = { 0x11, 10 };
	tenv_input(&e, f, igmp_frame(f, 0xe0000001u, m, 8, 1));   /* bad checksum */
	tenv_input(&e, f, igmp_frame(f, 0xe0000001u, m, 10, 0));  /* between v2 and v3 */
	wr16_(m + 10, 3);                                          /* 3 sources that are not there */
	tenv_input(&e, f, igmp_frame(f, 0xe0000001u, m, 12, 0));
	usnet_stack_stats(e.st, &s);
	CHECKF(s.igmp_drop_csum == 1 && s.igmp_drop_len == 2 && s.igmp_queries == 2, "csum %lu len %lu queries %lu",
	       (unsigned long)s.igmp_drop_csum, (unsigned long)s.igmp_drop_len, (unsigned long)s.igmp_queries);
	tenv_advance(&e, e.now + 30 * SEC);
	CHECK(count_igmp(&e) == 0);
	/* a v2 querier: v2 reports to the group within its 10 s */
	tenv_input(&e, f, query_frame(f, 2, 100, 0));
	tenv_advance(&e, e.now + 10 * SEC);
	unsigned n = 0;
	while (next_igmp(&e, &o)) {
		CHECK(o.ok && o.type == 0x16 && (o.group == G1 || o.group == G2));
		n++;
	}
	CHECK(n == 2);
	/* another member's report for G1 cancels ours (RFC 2236 3) */
	tenv_input(&e, f, query_frame(f, 2, 100, 0));
	uint8_t r[8] = { 0x16, 0 };
	wr32_(r + 4, G1);
	tenv_input(&e, f, igmp_frame(f, G1, r, 8, 0));
	tenv_advance(&e, e.now + 10 * SEC);
	CHECK(next_igmp(&e, &o) && o.ok && o.type == 0x16 && o.group == G2);
	CHECK(count_igmp(&e) == 0);
	/* in v2, the last leave is a leave to 224.0.0.2, once */
	CHECK(usnet_mc_leave(e.st, &e.io, a, G1, e.now) == 0);
	CHECK(next_igmp(&e, &o) && o.ok && o.type == 0x17 && o.group == G1 && o.dst == 0xe0000002u);
	tenv_advance(&e, e.now + 20 * SEC);
	CHECK(count_igmp(&e) == 0);
	/* the v2 querier gone (260 s), answers are v3 again */
	tenv_advance(&e, e.now + 300 * SEC);
	tenv_input(&e, f, query_frame(f, 3, 10, G2));
	tenv_advance(&e, e.now + 1 * SEC);
	CHECK(next_igmp(&e, &o) && o.ok && o.type == 0x22 && o.rgroup[0] == G2);
	usnet_close(e.st, &e.io, a, e.now);
	tenv_fini(&e);
	return 0;
}

static int recv_str(struct tenv *e, int32_t s, const char *want)
{
	char buf[64];
	long n = usnet_recv(e->st, &e->io, s, buf, sizeof buf - 1, 0, e->now);
	if (!want)
		return n == -USNET_EAGAIN;
	if (n < 0)
		return 0;
	buf[n] = 0;
	return strcmp(buf, want) == 0;
}

int test_mc_udp_delivery(void)
{
	struct tenv e; tenv_init(&e, NULL);
	struct usnet_addr any = { .ip = 0, .port = 5000 }, grp = { .ip = G1, .port = 5000 }, ours = { .ip = T_IP_US, .port = 5000 }, other = { .ip = 0, .port = 5001 };
	int32_t a = usnet_socket(e.st, USNET_SOCK_DGRAM);      /* 0.0.0.0:5000, joined */
	int32_t b = usnet_socket(e.st, USNET_SOCK_DGRAM);      /* G1:5000, not joined (IP_MULTICAST_ALL) */
	int32_t c = usnet_socket(e.st, USNET_SOCK_DGRAM);      /* 0.0.0.0:5000, MULTICAST_ALL 0, not joined */
	int32_t d = usnet_socket(e.st, USNET_SOCK_DGRAM);      /* 0.0.0.0:5001, joined */
	int32_t u = usnet_socket(e.st, USNET_SOCK_DGRAM);      /* 10.0.0.1:5000: the unicast address */
	for (int32_t s = a; s <= u; s++)
		CHECK(usnet_setsockopt(e.st, s, USNET_SO_REUSEADDR, 1) == 0);
	CHECK(usnet_bind(e.st, a, &any) == 0 && usnet_bind(e.st, b, &grp) == 0 && usnet_bind(e.st, c, &any) == 0 &&
	      usnet_bind(e.st, d, &other) == 0 && usnet_bind(e.st, u, &ours) == 0);
	CHECK(usnet_setsockopt(e.st, c, USNET_IP_MULTICAST_ALL, 0) == 0);
	uint8_t f[256];
	/* before any join the group's datagrams are not the stack's */
	tenv_input(&e, f, mc_udp_frame(f, G1, 5000, "early"));
	CHECK(recv_str(&e, a, NULL) && recv_str(&e, b, NULL));
	struct usnet_stack_stats s;
	usnet_stack_stats(e.st, &s);
	CHECK(s.ip_drop_not_ours == 1);
	CHECK(usnet_mc_join(e.st, &e.io, a, G1, e.now) == 0 && usnet_mc_join(e.st, &e.io, d, G1, e.now) == 0);
	tnif_clear(e.nif);
	tenv_input(&e, f, mc_udp_frame(f, G1, 5000, "one"));
	CHECK(recv_str(&e, a, "one") && recv_str(&e, b, "one"));
	CHECK(recv_str(&e, c, NULL) && recv_str(&e, d, NULL) && recv_str(&e, u, NULL));
	/* where it was sent to (IP_PKTINFO's address) */
	uint32_t dst; uint64_t at;
	tenv_input(&e, f, mc_udp_frame(f, G1, 5000, "two"));
	CHECK(usnet_udp_next_meta(e.st, a, &dst, &at) == 0 && dst == G1);
	CHECK(recv_str(&e, a, "two") && recv_str(&e, b, "two"));
	/* c joins: it takes them too */
	CHECK(usnet_mc_join(e.st, &e.io, c, G1, e.now) == 0);
	tenv_input(&e, f, mc_udp_frame(f, G1, 5000, "three"));
	CHECK(recv_str(&e, a, "three") && recv_str(&e, b, "three") && recv_str(&e, c, "three"));
	/* a group nobody joined, a port nobody has: dropped, no ICMP error */
	tenv_input(&e, f, mc_udp_frame(f, G2, 5000, "g2"));
	tenv_input(&e, f, mc_udp_frame(f, G1, 5999, "port"));
	CHECK(recv_str(&e, a, NULL) && recv_str(&e, b, NULL));
	usnet_stack_stats(e.st, &s);
	CHECK(s.udp_mcast_rx == 3 && s.udp_no_port == 1 && s.ip_drop_not_ours == 2);
	CHECK(tnif_next(e.nif) == NULL);
	/* every member gone: the group is not the stack's any more */
	usnet_close(e.st, &e.io, a, e.now);
	usnet_close(e.st, &e.io, c, e.now);
	CHECK(usnet_mc_leave(e.st, &e.io, d, G1, e.now) == 0);
	tenv_input(&e, f, mc_udp_frame(f, G1, 5000, "late"));
	CHECK(recv_str(&e, b, NULL));
	usnet_close(e.st, &e.io, b, e.now);
	usnet_close(e.st, &e.io, d, e.now);
	usnet_close(e.st, &e.io, u, e.now);
	usnet_stack_stats(e.st, &s);
	CHECK(s.buffers_in_use == 0 && s.sockets_in_use == 0);
	tenv_fini(&e);
	return 0;
}

int test_mc_send(void)
{
	struct tenv e; tenv_init(&e, NULL);
	int32_t tx = usnet_socket(e.st, USNET_SOCK_DGRAM), rx = usnet_socket(e.st, USNET_SOCK_DGRAM);
	int32_t t = usnet_socket(e.st, USNET_SOCK_STREAM);
	struct usnet_addr port = { .ip = 0, .port = 6000 }, to = { .ip = G1, .port = 6000 };
	CHECK(usnet_bind(e.st, rx, &port) == 0);
	/* the options: Linux's defaults and errnos */
	int v = -1;
	CHECK(usnet_getsockopt(e.st, tx, USNET_IP_MULTICAST_TTL, &v) == 0 && v == 1);
	CHECK(usnet_getsockopt(e.st, tx, USNET_IP_MULTICAST_LOOP, &v) == 0 && v == 1);
	CHECK(usnet_getsockopt(e.st, tx, USNET_IP_MULTICAST_ALL, &v) == 0 && v == 1);
	CHECK(usnet_getsockopt(e.st, tx, USNET_IP_MULTICAST_IF, &v) == 0 && v == 0);
	CHECK(usnet_setsockopt(e.st, tx, USNET_IP_MULTICAST_TTL, 256) == -USNET_EINVAL);
	CHECK(usnet_setsockopt(e.st, tx, USNET_IP_MULTICAST_ALL, 2) == -USNET_EINVAL);
	CHECK(usnet_setsockopt(e.st, tx, USNET_IP_MULTICAST_IF, (int)T_IP_PEER) == -USNET_EADDRNOTAVAIL);
	CHECK(usnet_setsockopt(e.st, t, USNET_IP_MULTICAST_TTL, 3) == -USNET_EINVAL);
	CHECK(usnet_setsockopt(e.st, t, USNET_IP_MULTICAST_IF, 0) == -USNET_EINVAL);
	CHECK(usnet_setsockopt(e.st, tx, USNET_IP_MULTICAST_IF, (int)T_IP_US) == 0);
	CHECK(usnet_getsockopt(e.st, tx, USNET_IP_MULTICAST_IF, &v) == 0 && (uint32_t)v == T_IP_US);
	/* the group's MAC, no ARP, TTL 1 */
	CHECK(usnet_sendv(e.st, &e.io, tx, &(struct usnet_iovec){ "m1", 2 }, 1, 0, &to, e.now) == 2);
	struct tframe *fr = tnif_next(e.nif);
	struct tpkt p;
	uint8_t mac[6];
	group_mac(G1, mac);
	CHECK(fr && t_parse(fr, &p) == 0 && p.is_ip && p.proto == 17 && p.dst == G1 && p.src == T_IP_US);
	CHECK(memcmp(fr->d, mac, 6) == 0 && fr->d[14 + 8] == 1 && p.ip_csum_ok && p.l4_csum_ok);
	CHECK(tnif_next(e.nif) == NULL);
	CHECK(recv_str(&e, rx, NULL));   /* the stack is no member: nothing looped */
	/* a member on the stack: the copy loops back to it (IP_MULTICAST_LOOP) */
	CHECK(usnet_mc_join(e.st, &e.io, rx, G1, e.now) == 0);
	tnif_clear(e.nif);
	CHECK(usnet_setsockopt(e.st, tx, USNET_IP_MULTICAST_TTL, 5) == 0);
	CHECK(usnet_sendv(e.st, &e.io, tx, &(struct usnet_iovec){ "m2", 2 }, 1, 0, &to, e.now) == 2);
	CHECK((fr = tnif_next(e.nif)) && t_parse(fr, &p) == 0 && p.dst == G1 && fr->d[14 + 8] == 5);
	CHECK(recv_str(&e, rx, "m2"));
	CHECK(usnet_setsockopt(e.st, tx, USNET_IP_MULTICAST_LOOP, 0) == 0);
	CHECK(usnet_sendv(e.st, &e.io, tx, &(struct usnet_iovec){ "m3", 2 }, 1, 0, &to, e.now) == 2);
	CHECK(tnif_next(e.nif) && recv_str(&e, rx, NULL));
	/* TTL 0: the host's own members only */
	CHECK(usnet_setsockopt(e.st, tx, USNET_IP_MULTICAST_LOOP, 1) == 0);
	CHECK(usnet_setsockopt(e.st, tx, USNET_IP_MULTICAST_TTL, 0) == 0);
	CHECK(usnet_sendv(e.st, &e.io, tx, &(struct usnet_iovec){ "m4", 2 }, 1, 0, &to, e.now) == 2);
	CHECK(tnif_next(e.nif) == NULL);
	CHECK(recv_str(&e, rx, "m4"));
	CHECK(usnet_setsockopt(e.st, tx, USNET_IP_MULTICAST_TTL, -1) == 0);
	CHECK(usnet_getsockopt(e.st, tx, USNET_IP_MULTICAST_TTL, &v) == 0 && v == 1);
	/* a datagram larger than the MTU: fragments to the group, reassembled by the member */
	static char big[3000];
	memset(big, 'x', sizeof big);
	CHECK(usnet_sendv(e.st, &e.io, tx, &(struct usnet_iovec){ big, sizeof big }, 1, 0, &to, e.now) == 3000);
	CHECK(usnet_recv(e.st, &e.io, rx, big, sizeof big, 0, e.now) == 3000);
	unsigned frags = 0;
	while ((fr = tnif_next(e.nif)))
		frags += t_parse(fr, &p) == 0 && p.dst == G1 && memcmp(fr->d, mac, 6) == 0;
	CHECK(frags == 3);
	usnet_close(e.st, &e.io, tx, e.now);
	usnet_close(e.st, &e.io, rx, e.now);
	usnet_close(e.st, &e.io, t, e.now);
	tenv_fini(&e);
	return 0;
}
