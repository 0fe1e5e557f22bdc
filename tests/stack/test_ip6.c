/* Tests: IPv6 input, extension headers, ICMPv6 echo and errors, Neighbor
 * Discovery (RFC 4861) with router discovery, DAD (RFC 4862) and MLD
 * listener reports (RFC 3810).  Frames are built and read here, with their
 * own checksum code, not the stack's. */
#include "harness.h"
#include "tests.h"

static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void wr32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* Our link-local address from T_MAC_US (02:00:00:00:00:01): the U/L bit
 * flipped gives 00, ff:fe in the middle. */
static const uint8_t US_LL[16] = { 0xfe, 0x80, [8] = 0x00, 0, 0, 0xff, 0xfe, 0, 0, 0x01 };
static const uint8_t US_GL[16] = { 0x20, 0x01, 0x0d, 0xb8, [7] = 1, [15] = 0x01 };      /* 2001:db8:0:1::1 */
static const uint8_t PEER_LL[16] = { 0xfe, 0x80, [8] = 0x00, 0, 0, 0xff, 0xfe, 0, 0, 0x02 };
static const uint8_t PEER_GL[16] = { 0x20, 0x01, 0x0d, 0xb8, [7] = 1, [15] = 0x02 };
static const uint8_t ALL_NODES[16] = { 0xff, 0x02, [15] = 1 };
static const uint8_t UNSPEC[16] = { 0 };

static void ip6_cfg(struct usnet_stack_config *cfg, int dad)
{
	tenv_default_cfg(cfg);
	cfg->ip6_link_local = 1;
	memcpy(cfg->ip6[0], US_GL, 16);
	cfg->ip6_prefix_len[0] = 64;
	cfg->ip6_dad_transmits = (uint8_t)dad;
}

static void sol_node(const uint8_t a[16], uint8_t g[16])
{
	memset(g, 0, 16);
	g[0] = 0xff; g[1] = 0x02; g[11] = 1; g[12] = 0xff;
	g[13] = a[13]; g[14] = a[14]; g[15] = a[15];
}

/* The ICMPv6 checksum over the pseudo-header, computed here. */
static uint16_t c6(const uint8_t src[16], const uint8_t dst[16], uint8_t nh, const uint8_t *p, uint32_t len)
{
	uint32_t s = 0;
	for (int i = 0; i < 16; i += 2)
		s += (uint32_t)(src[i] << 8 | src[i + 1]) + (uint32_t)(dst[i] << 8 | dst[i + 1]);
	s += (len >> 16) + (len & 0xffff) + nh;
	return t_csum(p, len, s);
}

/* Ethernet + IPv6 around a payload (extension headers and upper layer
 * already in pl); dst's MAC is ours, or the group's for multicast. */
static uint32_t f6(uint8_t *f, const uint8_t src[16], const uint8_t dst[16], uint8_t nh, uint8_t hlim,
		   const uint8_t *pl, uint32_t len)
{
	if (dst[0] == 0xff) {
		f[0] = 0x33; f[1] = 0x33; memcpy(f + 2, dst + 12, 4);
	} else {
		memcpy(f, T_MAC_US, 6);
	}
	memcpy(f + 6, T_MAC_PEER, 6);
	wr16(f + 12, 0x86dd);
	uint8_t *ip = f + 14;
	wr32(ip, 6u << 28);
	wr16(ip + 4, (uint16_t)len);
	ip[6] = nh;
	ip[7] = hlim;
	memcpy(ip + 8, src, 16);
	memcpy(ip + 24, dst, 16);
	memcpy(ip + 40, pl, len);
	uint32_t n = 14 + 40 + len;
	if (n < 60) {
		memset(f + n, 0, 60 - n);
		n = 60;
	}
	return n;
}

/* An ICMPv6 message (checksum filled) as the upper layer at pl+off. */
static void icmp_sum(uint8_t *m, uint32_t len, const uint8_t src[16], const uint8_t dst[16])
{
	wr16(m + 2, 0);
	wr16(m + 2, c6(src, dst, 58, m, len));
}

static uint32_t echo_req(uint8_t *m, uint16_t id, uint32_t dlen)
{
	m[0] = 128; m[1] = 0; wr16(m + 2, 0); wr16(m + 4, id); wr16(m + 6, 1);
	for (uint32_t i = 0; i < dlen; i++)
		m[8 + i] = (uint8_t)(i * 7);
	return 8 + dlen;
}

/* Frame f: an echo request from src to dst. */
static uint32_t echo_frame(uint8_t *f, const uint8_t src[16], const uint8_t dst[16], uint16_t id)
{
	uint8_t m[64];
	uint32_t n = echo_req(m, id, 32);
	icmp_sum(m, n, src, dst);
	return f6(f, src, dst, 58, 64, m, n);
}

/* An NS for target from src to dst, with a source link-layer option
 * (the peer's MAC) when slla. */
static uint32_t ns_frame(uint8_t *f, const uint8_t src[16], const uint8_t dst[16], const uint8_t target[16],
			 int slla, uint8_t hlim)
{
	uint8_t m[32] = { 135, 0 };
	memcpy(m + 8, target, 16);
	uint32_t n = 24;
	if (slla) {
		m[24] = 1; m[25] = 1; memcpy(m + 26, T_MAC_PEER, 6);
		n = 32;
	}
	icmp_sum(m, n, src, dst);
	return f6(f, src, dst, 58, hlim, m, n);
}

static uint32_t na_frame(uint8_t *f, const uint8_t src[16], const uint8_t dst[16], const uint8_t target[16],
			 uint8_t flags, const uint8_t *tlla)
{
	uint8_t m[32] = { 136, 0 };
	m[4] = flags;
	memcpy(m + 8, target, 16);
	uint32_t n = 24;
	if (tlla) {
		m[24] = 2; m[25] = 1; memcpy(m + 26, tlla, 6);
		n = 32;
	}
	icmp_sum(m, n, src, dst);
	return f6(f, src, dst, 58, 255, m, n);
}

/* A captured IPv6 frame, read here. */
struct p6 {
	const uint8_t *eth_dst, *src, *dst, *l4;
	uint8_t nh, hlim, type, code;
	uint32_t plen;
	int csum_ok;
};

static int parse6(const struct tframe *fr, struct p6 *p)
{
	memset(p, 0, sizeof *p);
	if (fr->len < 14 + 40 || rd16(fr->d + 12) != 0x86dd)
		return -1;
	const uint8_t *ip = fr->d + 14;
	if ((ip[0] >> 4) != 6)
		return -1;
	p->eth_dst = fr->d;
	p->plen = rd16(ip + 4);
	if (14 + 40 + p->plen > fr->len)
		return -1;
	p->nh = ip[6];
	p->hlim = ip[7];
	p->src = ip + 8;
	p->dst = ip + 24;
	p->l4 = ip + 40;
	if (p->nh == 58 && p->plen >= 4) {
		p->type = p->l4[0];
		p->code = p->l4[1];
		p->csum_ok = c6(p->src, p->dst, 58, p->l4, p->plen) == 0;
	}
	return 0;
}

/* The next captured ICMPv6 message of this type (others skipped), or 0. */
static int next_icmp6(struct tenv *e, uint8_t type, struct p6 *p)
{
	struct tframe *fr;
	while ((fr = tnif_next(e->nif)))
		if (parse6(fr, p) == 0 && p->nh == 58 && p->type == type)
			return 1;
	return 0;
}

static unsigned count_icmp6(struct tenv *e, uint8_t type)
{
	struct p6 p;
	unsigned n = 0;
	while (next_icmp6(e, type, &p))
		n++;
	return n;
}

static struct usnet_stack_stats stats(struct tenv *e)
{
	struct usnet_stack_stats s;
	usnet_stack_stats(e->st, &s);
	return s;
}

/* The peer's NS teaches us its MAC (the entry goes STALE); drop our NA. */
static void learn_peer6(struct tenv *e, const uint8_t peer[16], const uint8_t ours[16])
{
	uint8_t f[128], g[16];
	sol_node(ours, g);
	tenv_input(e, f, ns_frame(f, peer, g, ours, 1, 255));
	tnif_clear(e->nif);
}

/* ---- MLD (RFC 3810; RFC 2710 for MLDv1) --------------------------------- */

static const uint8_t MLD_V2_ROUTERS[16] = { 0xff, 0x02, [15] = 0x16 };
static const uint8_t MLD_ALL_ROUTERS[16] = { 0xff, 0x02, [15] = 0x02 };

/* A captured MLD message (type 0: the frame was none). */
struct mld_rep {
	uint8_t  src[16], dst[16];
	uint8_t  type;           /* 143 (MLDv2 report), 131 (MLDv1 report), 132 (Done) */
	unsigned nrec;           /* MLDv2: records (MLDv1: 1, its group) */
	uint8_t  rtype[8];
	uint8_t  group[8][16];
};

/* Read fr as MLD, checked as RFC 3810 5 wants every message: hop limit 1,
 * a Hop-by-Hop header of 8 bytes holding Router Alert 0, from :: or our
 * link-local address, to its group's 33:33 MAC, checksum right; MLDv2
 * reports to ff02::16 with records of no sources, MLDv1 reports to their
 * group, Dones to ff02::2.  1 with t_why set when it is malformed. */
static int parse_mld(const struct tframe *fr, struct mld_rep *r)
{
	struct p6 p;
	memset(r, 0, sizeof *r);
	if (parse6(fr, &p) < 0 || p.nh != 0 || p.plen < 8 + 8 || p.l4[0] != 58)
		return 0;
	const uint8_t *m = p.l4 + 8;
	uint32_t len = p.plen - 8;
	if (m[0] != 143 && m[0] != 131 && m[0] != 132)
		return 0;
	CHECKF(p.l4[1] == 0, "Hop-by-Hop header of %u bytes", (p.l4[1] + 1) * 8);
	int ra = -1;
	for (unsigned i = 2; i < 8;) {
		if (p.l4[i] == 0) { i++; continue; }
		CHECK(i + 2u + p.l4[i + 1] <= 8);
		if (p.l4[i] == 5 && p.l4[i + 1] == 2)
			ra = rd16(p.l4 + i + 2);
		i += 2u + p.l4[i + 1];
	}
	CHECKF(ra == 0, "Router Alert %d", ra);
	CHECKF(p.hlim == 1, "hop limit %u", p.hlim);
	CHECK(p.eth_dst[0] == 0x33 && p.eth_dst[1] == 0x33 && memcmp(p.eth_dst + 2, p.dst + 12, 4) == 0);
	CHECK(memcmp(p.eth_dst + 6, T_MAC_US, 6) == 0);
	CHECK(memcmp(p.src, UNSPEC, 16) == 0 || memcmp(p.src, US_LL, 16) == 0);
	CHECK(c6(p.src, p.dst, 58, m, len) == 0);
	memcpy(r->src, p.src, 16);
	memcpy(r->dst, p.dst, 16);
	r->type = m[0];
	if (r->type == 143) {
		CHECK(memcmp(p.dst, MLD_V2_ROUTERS, 16) == 0);
		r->nrec = rd16(m + 6);
		CHECKF(r->nrec >= 1 && r->nrec <= 8 && len == 8 + 20 * r->nrec, "%u records in %u bytes", r->nrec, len);
		for (unsigned k = 0; k < r->nrec; k++) {
			const uint8_t *rec = m + 8 + 20 * k;
			CHECK(rec[1] == 0 && rd16(rec + 2) == 0);   /* no aux data, no sources */
			r->rtype[k] = rec[0];
			memcpy(r->group[k], rec + 4, 16);
		}
		return 0;
	}
	CHECK(len == 24);
	r->nrec = 1;
	memcpy(r->group[0], m + 8, 16);
	CHECK(memcmp(p.dst, r->type == 131 ? m + 8 : MLD_ALL_ROUTERS, 16) == 0);
	return 0;
}

/* The next captured MLD message (other frames skipped): 1, 0 when none
 * is left, -1 with t_why set for a malformed one. */
static int next_mld(struct tenv *e, struct mld_rep *r)
{
	struct tframe *fr;
	while ((fr = tnif_next(e->nif))) {
		if (parse_mld(fr, r))
			return -1;
		if (r->type)
			return 1;
	}
	return 0;
}
#define NEXT_MLD(e, r) ({ int k_ = next_mld(e, r); if (k_ < 0) return 1; k_; })

/* Does the report r hold a record of type rtype for group g? */
static int mld_has(const struct mld_rep *r, uint8_t rtype, const uint8_t g[16])
{
	for (unsigned k = 0; k < r->nrec; k++)
		if ((r->type != 143 || r->rtype[k] == rtype) && memcmp(r->group[k], g, 16) == 0)
			return 1;
	return 0;
}

/* An MLD query of len bytes (24: MLDv1; 28 and more: MLDv2, nsrc sources
 * said) from src to dst with hop limit hlim, Maximum Response Code code,
 * about group: behind a Hop-by-Hop header with Router Alert 0 (ra), or
 * PadN alone (!ra). */
static uint32_t mld_query(uint8_t *f, const uint8_t src[16], const uint8_t dst[16], uint8_t hlim, int ra,
			  const uint8_t group[16], uint16_t code, uint32_t len, uint16_t nsrc)
{
	uint8_t pl[8 + 64] = { 58, 0, 1, 4 };
	if (ra) {
		pl[2] = 5; pl[3] = 2; pl[4] = 0; pl[5] = 0; pl[6] = 1; pl[7] = 0;
	}
	uint8_t *m = pl + 8;
	m[0] = 130;
	wr16(m + 4, code);
	memcpy(m + 8, group, 16);
	if (len >= 28) {
		m[24] = 2;      /* QRV */
		m[25] = 125;    /* QQIC */
		wr16(m + 26, nsrc);
	}
	icmp_sum(m, len, src, dst);
	return f6(f, src, dst, 0, hlim, pl, 8 + len);
}

int test_ip6_config(void)
{
	struct usnet_stack_config cfg;
	ip6_cfg(&cfg, 0);
	struct tenv e; tenv_init(&e, &cfg);
	uint8_t a[16], pl = 0;
	CHECK(usnet_ip6_addr(e.st, 0, a, &pl) == USNET_IP6_ADDR_PREFERRED);
	CHECK(memcmp(a, US_LL, 16) == 0 && pl == 64);
	CHECK(usnet_ip6_addr(e.st, 1, a, &pl) == USNET_IP6_ADDR_PREFERRED);
	CHECK(memcmp(a, US_GL, 16) == 0 && pl == 64);
	CHECK(usnet_ip6_addr(e.st, 2, a, NULL) == USNET_IP6_ADDR_NONE);
	CHECK(usnet_ip6_addr(e.st, 1 + USNET_IP6_ADDRS, a, NULL) == -USNET_EINVAL);
	tenv_fini(&e);
	/* A multicast address or a prefix over 128 is refused. */
	ip6_cfg(&cfg, 0);
	cfg.ip6_prefix_len[1] = 129;
	CHECK(usnet_stack_mem_size(&cfg) == 0);
	ip6_cfg(&cfg, 0);
	cfg.ip6[1][0] = 0xff;
	CHECK(usnet_stack_mem_size(&cfg) == 0);
	/* The IPv4-only default: IPv6 frames are not ours, nor its groups. */
	tenv_init(&e, NULL);
	CHECK(usnet_ip6_addr(e.st, 0, a, NULL) == USNET_IP6_ADDR_NONE);
	uint8_t f[128];
	tenv_input(&e, f, echo_frame(f, PEER_LL, US_LL, 1));
	tenv_input(&e, f, echo_frame(f, PEER_LL, ALL_NODES, 1));
	struct usnet_stack_stats s = stats(&e);
	CHECK(s.ip6_rx == 1 && s.ip6_drop_not_ours == 1 && s.rx_drop_not_ours == 1);
	CHECK(tnif_next(e.nif) == NULL);
	tenv_fini(&e);
	return 0;
}

/* NS for each of our addresses: a solicited NA (S and O, not R) to the
 * asker's MAC from its link-layer option, with our MAC as the target's;
 * an NS from :: (someone's DAD) for a used address: an NA to all nodes
 * without S. */
int test_ip6_ns_na(void)
{
	struct usnet_stack_config cfg;
	ip6_cfg(&cfg, 0);
	struct tenv e; tenv_init(&e, &cfg);
	uint8_t f[128], g[16];
	const uint8_t *targets[2] = { US_LL, US_GL };
	const uint8_t *peers[2] = { PEER_LL, PEER_GL };
	for (int k = 0; k < 2; k++) {
		sol_node(targets[k], g);
		uint32_t n = ns_frame(f, peers[k], g, targets[k], 1, 255);
		CHECK(f[0] == 0x33 && f[1] == 0x33 && f[2] == 0xff);
		tenv_input(&e, f, n);
		struct p6 p;
		CHECK(next_icmp6(&e, 136, &p));
		CHECK(p.csum_ok && p.hlim == 255 && p.code == 0 && p.plen == 32);
		CHECK(memcmp(p.eth_dst, T_MAC_PEER, 6) == 0);
		CHECK(memcmp(p.src, targets[k], 16) == 0 && memcmp(p.dst, peers[k], 16) == 0);
		CHECKF(p.l4[4] == 0x60, "flags %02x", p.l4[4]);
		CHECK(memcmp(p.l4 + 8, targets[k], 16) == 0);
		CHECK(p.l4[24] == 2 && p.l4[25] == 1 && memcmp(p.l4 + 26, T_MAC_US, 6) == 0);
		CHECK(tnif_next(e.nif) == NULL);
	}
	/* Someone's DAD for our global address. */
	sol_node(US_GL, g);
	tenv_input(&e, f, ns_frame(f, UNSPEC, g, US_GL, 0, 255));
	struct p6 p;
	CHECK(next_icmp6(&e, 136, &p));
	CHECK(p.csum_ok && memcmp(p.dst, ALL_NODES, 16) == 0 && p.l4[4] == 0x20);
	static const uint8_t all_nodes_mac[6] = { 0x33, 0x33, 0, 0, 0, 1 };
	CHECK(memcmp(p.eth_dst, all_nodes_mac, 6) == 0);
	/* An NS for an address that is not ours (its group is not ours
	 * either: dropped at the link layer). */
	static const uint8_t other[16] = { 0xfe, 0x80, [15] = 0x99 };
	sol_node(other, g);
	tenv_input(&e, f, ns_frame(f, PEER_LL, g, other, 1, 255));
	CHECK(tnif_next(e.nif) == NULL);
	struct usnet_stack_stats s = stats(&e);
	CHECK(s.nd_rx == 3 && s.nd_tx == 3 && s.rx_drop_not_ours == 1);
	tenv_fini(&e);
	return 0;
}

/* Echo request -> reply (checksum, payload, addresses); to all nodes from
 * our link-local; a corrupted one dropped and counted. */
int test_ip6_echo(void)
{
	struct usnet_stack_config cfg;
	ip6_cfg(&cfg, 0);
	struct tenv e; tenv_init(&e, &cfg);
	learn_peer6(&e, PEER_GL, US_GL);
	uint8_t f[160];
	uint32_t n = echo_frame(f, PEER_GL, US_GL, 0x77);
	tenv_input(&e, f, n);
	struct p6 p;
	CHECK(next_icmp6(&e, 129, &p));
	CHECK(p.csum_ok && p.code == 0 && p.hlim == 64);
	CHECK(memcmp(p.src, US_GL, 16) == 0 && memcmp(p.dst, PEER_GL, 16) == 0);
	CHECK(memcmp(p.eth_dst, T_MAC_PEER, 6) == 0);
	CHECK(p.plen == 40 && memcmp(p.l4 + 4, f + 14 + 40 + 4, 36) == 0);
	/* To all nodes: answered from the link-local address. */
	learn_peer6(&e, PEER_LL, US_LL);
	tenv_input(&e, f, echo_frame(f, PEER_LL, ALL_NODES, 0x78));
	CHECK(next_icmp6(&e, 129, &p));
	CHECK(p.csum_ok && memcmp(p.src, US_LL, 16) == 0 && memcmp(p.dst, PEER_LL, 16) == 0);
	/* Corrupted. */
	n = echo_frame(f, PEER_GL, US_GL, 0x79);
	f[14 + 40 + 12] ^= 1;
	tenv_input(&e, f, n);
	CHECK(tnif_next(e.nif) == NULL);
	/* Truncated: the payload length says more than the frame has. */
	n = echo_frame(f, PEER_GL, US_GL, 0x7a);
	tenv_input(&e, f, 14 + 40 + 20);
	/* Not IPv6 inside. */
	n = echo_frame(f, PEER_GL, US_GL, 0x7b);
	f[14] = 0x45;
	tenv_input(&e, f, n);
	/* To an address that is not ours. */
	static const uint8_t other[16] = { 0x20, 0x01, 0x0d, 0xb8, [7] = 1, [15] = 0x09 };
	tenv_input(&e, f, echo_frame(f, PEER_GL, other, 0x7c));
	/* From a multicast source. */
	tenv_input(&e, f, echo_frame(f, ALL_NODES, US_GL, 0x7d));
	CHECK(tnif_next(e.nif) == NULL);
	struct usnet_stack_stats s = stats(&e);
	CHECK(s.icmp6_drop_csum == 1 && s.ip6_drop_len == 1 && s.ip6_drop_header == 2 && s.ip6_drop_not_ours == 1);
	CHECK(s.icmp6_tx == 4 && s.ip6_tx == 4);
	tenv_fini(&e);
	return 0;
}

/* A reply to an unknown neighbour waits for it: multicast NS to its
 * solicited-node group with our link-layer address, retries every second,
 * the queued frames sent on its NA; one that never answers is given up
 * after 3 solicitations and its frames dropped. */
int test_ip6_nd_resolve(void)
{
	struct usnet_stack_config cfg;
	ip6_cfg(&cfg, 0);
	struct tenv e; tenv_init(&e, &cfg);
	uint8_t f[160], g[16];
	tenv_input(&e, f, echo_frame(f, PEER_GL, US_GL, 1));
	tenv_input(&e, f, echo_frame(f, PEER_GL, US_GL, 2));
	struct p6 p;
	CHECK(next_icmp6(&e, 135, &p));
	sol_node(PEER_GL, g);
	CHECK(p.csum_ok && p.hlim == 255 && memcmp(p.dst, g, 16) == 0 && memcmp(p.src, US_GL, 16) == 0);
	CHECK(p.eth_dst[0] == 0x33 && p.eth_dst[1] == 0x33 && memcmp(p.eth_dst + 2, g + 12, 4) == 0);
	CHECK(memcmp(p.l4 + 8, PEER_GL, 16) == 0);
	CHECK(p.plen == 32 && p.l4[24] == 1 && p.l4[25] == 1 && memcmp(p.l4 + 26, T_MAC_US, 6) == 0);
	CHECK(tnif_next(e.nif) == NULL);   /* one NS for both */
	CHECK(stats(&e).nd_waiting == 2);
	tenv_advance(&e, e.now + 1100 * MS);
	CHECK(count_icmp6(&e, 135) == 1);   /* the retry */
	/* The answer releases both replies, in order. */
	tenv_input(&e, f, na_frame(f, PEER_GL, US_GL, PEER_GL, 0x60, T_MAC_PEER));
	CHECK(next_icmp6(&e, 129, &p) && memcmp(p.eth_dst, T_MAC_PEER, 6) == 0 && rd16(p.l4 + 4) == 1 && p.csum_ok);
	CHECK(next_icmp6(&e, 129, &p) && memcmp(p.eth_dst, T_MAC_PEER, 6) == 0 && rd16(p.l4 + 4) == 2);
	CHECK(tnif_next(e.nif) == NULL);
	struct usnet_stack_stats s = stats(&e);
	CHECK(s.nd_waiting == 0 && s.nd_queue_drop == 0);
	/* Now known: the next reply goes at once. */
	tenv_input(&e, f, echo_frame(f, PEER_GL, US_GL, 3));
	CHECK(next_icmp6(&e, 129, &p) && memcmp(p.eth_dst, T_MAC_PEER, 6) == 0);
	/* A neighbour that never answers: 3 solicitations, then its frames go. */
	static const uint8_t mute[16] = { 0x20, 0x01, 0x0d, 0xb8, [7] = 1, [15] = 0x33 };
	tnif_clear(e.nif);
	tenv_input(&e, f, echo_frame(f, mute, US_GL, 4));
	tenv_advance(&e, e.now + 10 * SEC);
	CHECK(count_icmp6(&e, 135) == 3);
	s = stats(&e);
	CHECK(s.nd_waiting == 0 && s.nd_queue_drop == 1 && s.buffers_in_use == 0);
	/* An NA nobody asked for creates no entry: the next reply still asks. */
	tenv_input(&e, f, na_frame(f, mute, ALL_NODES, mute, 0x20, T_MAC_PEER));
	tnif_clear(e.nif);
	tenv_input(&e, f, echo_frame(f, mute, US_GL, 5));
	CHECK(count_icmp6(&e, 135) == 1);
	tenv_fini(&e);
	return 0;
}

/* REACHABLE -> STALE after ReachableTime; a send makes it DELAY; 5 s on,
 * PROBE with unicast NS every second; 3 unanswered and it is gone (the
 * next send solicits by multicast again).  A solicited NA in PROBE makes
 * it REACHABLE again. */
int test_ip6_nd_states(void)
{
	struct usnet_stack_config cfg;
	ip6_cfg(&cfg, 0);
	struct tenv e; tenv_init(&e, &cfg);
	uint8_t f[160];
	struct p6 p;
	/* Resolve: REACHABLE. */
	tenv_input(&e, f, echo_frame(f, PEER_GL, US_GL, 1));
	tenv_input(&e, f, na_frame(f, PEER_GL, US_GL, PEER_GL, 0x60, T_MAC_PEER));
	tnif_clear(e.nif);
	/* REACHABLE for 30 s: sends go straight, nothing is probed. */
	tenv_advance(&e, e.now + 29 * SEC);
	tenv_input(&e, f, echo_frame(f, PEER_GL, US_GL, 2));
	CHECK(next_icmp6(&e, 129, &p) && tnif_next(e.nif) == NULL);
	tenv_advance(&e, e.now + 2 * SEC);   /* STALE now */
	CHECK(tnif_next(e.nif) == NULL);
	/* A send to STALE: goes at once (DELAY), no NS yet. */
	tenv_input(&e, f, echo_frame(f, PEER_GL, US_GL, 3));
	CHECK(next_icmp6(&e, 129, &p) && memcmp(p.eth_dst, T_MAC_PEER, 6) == 0);
	CHECK(tnif_next(e.nif) == NULL);
	tenv_advance(&e, e.now + 4900 * MS);
	CHECK(tnif_next(e.nif) == NULL);
	/* PROBE: a unicast NS to the neighbour itself. */
	tenv_advance(&e, e.now + 200 * MS);
	CHECK(next_icmp6(&e, 135, &p));
	CHECK(memcmp(p.eth_dst, T_MAC_PEER, 6) == 0 && memcmp(p.dst, PEER_GL, 16) == 0 && p.csum_ok);
	CHECK(memcmp(p.l4 + 8, PEER_GL, 16) == 0);
	/* Answered: REACHABLE again, no more probes for 30 s. */
	tenv_input(&e, f, na_frame(f, PEER_GL, US_GL, PEER_GL, 0x60, NULL));
	tenv_advance(&e, e.now + 20 * SEC);
	CHECK(tnif_next(e.nif) == NULL);
	/* Once more to PROBE, unanswered this time: 3 probes, then gone. */
	tenv_advance(&e, e.now + 15 * SEC);   /* STALE */
	tenv_input(&e, f, echo_frame(f, PEER_GL, US_GL, 4));   /* DELAY */
	tnif_clear(e.nif);
	tenv_advance(&e, e.now + 5 * SEC + 10 * SEC);
	unsigned probes = 0;
	struct tframe *fr;
	while ((fr = tnif_next(e.nif)))
		if (parse6(fr, &p) == 0 && p.type == 135) {
			CHECK(memcmp(p.eth_dst, T_MAC_PEER, 6) == 0);
			probes++;
		}
	CHECKF(probes == 3, "probes %u", probes);
	tenv_input(&e, f, echo_frame(f, PEER_GL, US_GL, 5));
	CHECK(next_icmp6(&e, 135, &p) && p.eth_dst[0] == 0x33);   /* INCOMPLETE: multicast */
	/* An unsolicited NA with another address and no Override: the entry
	 * keeps the address it has. */
	tenv_input(&e, f, na_frame(f, PEER_GL, US_GL, PEER_GL, 0x40, T_MAC_PEER));
	tnif_clear(e.nif);
	static const uint8_t mac2[6] = { 0x02, 0, 0, 0, 0, 0x22 };
	tenv_input(&e, f, na_frame(f, PEER_GL, ALL_NODES, PEER_GL, 0x00, mac2));
	tenv_input(&e, f, echo_frame(f, PEER_GL, US_GL, 6));
	CHECK(next_icmp6(&e, 129, &p) && memcmp(p.eth_dst, T_MAC_PEER, 6) == 0);
	/* With Override it takes the new one. */
	tenv_input(&e, f, na_frame(f, PEER_GL, ALL_NODES, PEER_GL, 0x20, mac2));
	tenv_input(&e, f, echo_frame(f, PEER_GL, US_GL, 7));
	CHECK(next_icmp6(&e, 129, &p) && memcmp(p.eth_dst, mac2, 6) == 0);
	tenv_fini(&e);
	return 0;
}

/* Build an echo request to US_GL behind extension headers ext[0..elen)
 * whose first has type first_nh; the last must name 58 (ICMPv6). */
static uint32_t ext_frame(uint8_t *f, uint8_t first_nh, const uint8_t *ext, uint32_t elen, const uint8_t dst[16])
{
	uint8_t pl[256];
	memcpy(pl, ext, elen);
	uint32_t n = echo_req(pl + elen, 9, 16);
	icmp_sum(pl + elen, n, PEER_GL, dst);
	return f6(f, PEER_GL, dst, first_nh, 64, pl, elen + n);
}

/* A Parameter Problem of this code and pointer quoting the frame f, or
 * -1 with the reason in t_why. */
static int expect_param(struct tenv *e, uint8_t code, uint32_t pointer, const uint8_t *f, uint32_t plen)
{
	struct p6 p;
	CHECK(next_icmp6(e, 4, &p));
	CHECK(p.csum_ok && p.code == code && memcmp(p.dst, PEER_GL, 16) == 0 && memcmp(p.src, US_GL, 16) == 0);
	CHECKF(rd32(p.l4 + 4) == pointer, "pointer %u, not %u", rd32(p.l4 + 4), pointer);
	CHECK(p.plen == 8 + 40 + plen && memcmp(p.l4 + 8, f + 14, 40 + plen) == 0);
	return 0;
}

int test_ip6_ext_headers(void)
{
	struct usnet_stack_config cfg;
	ip6_cfg(&cfg, 0);
	struct tenv e; tenv_init(&e, &cfg);
	learn_peer6(&e, PEER_GL, US_GL);
	uint8_t f[300];
	struct p6 p;
	/* Hop-by-Hop with PadN, then Destination Options with Pad1s and an
	 * unknown option of action 00: walked through, answered. */
	static const uint8_t hbh_ok[] = { 60, 0, 1, 4, 0, 0, 0, 0,  58, 0, 0, 0, 0x1e, 1, 0, 0 };
	tenv_input(&e, f, ext_frame(f, 0, hbh_ok, sizeof hbh_ok, US_GL));
	CHECK(next_icmp6(&e, 129, &p) && p.csum_ok && rd16(p.l4 + 4) == 9);
	/* A Routing header (type 0) with no segments left is skipped. */
	static const uint8_t rh0_done[] = { 58, 2, 0, 0, 0, 0, 0, 0,  0xfe, 0x80, [23] = 5 };
	tenv_input(&e, f, ext_frame(f, 43, rh0_done, sizeof rh0_done, US_GL));
	CHECK(next_icmp6(&e, 129, &p));
	/* An atomic fragment (offset 0, M clear) is a whole packet (RFC 6946). */
	static const uint8_t atomic[] = { 58, 0, 0, 0, 0, 0, 0, 42 };
	tenv_input(&e, f, ext_frame(f, 44, atomic, sizeof atomic, US_GL));
	CHECK(next_icmp6(&e, 129, &p));
	CHECK(tnif_next(e.nif) == NULL);
	/* Hop-by-Hop after Destination Options: code 1 at the field that named it. */
	static const uint8_t hbh_late[] = { 0, 0, 1, 4, 0, 0, 0, 0,  58, 0, 1, 4, 0, 0, 0, 0 };
	uint32_t n = ext_frame(f, 60, hbh_late, sizeof hbh_late, US_GL);
	tenv_input(&e, f, n);
	if (expect_param(&e, 1, 40, f, rd16(f + 18))) return 1;
	/* Routing type 0 with segments left (RFC 5095): code 0 at the type. */
	static const uint8_t rh0[] = { 58, 2, 0, 1, 0, 0, 0, 0,  0xfe, 0x80, [23] = 5 };
	n = ext_frame(f, 43, rh0, sizeof rh0, US_GL);
	tenv_input(&e, f, n);
	if (expect_param(&e, 0, 42, f, rd16(f + 18))) return 1;
	/* An unknown next header in the fixed header: code 1 at offset 6. */
	static const uint8_t junk[] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	n = f6(f, PEER_GL, US_GL, 253, 64, junk, sizeof junk);
	tenv_input(&e, f, n);
	if (expect_param(&e, 1, 6, f, 8)) return 1;
	/* ... and in an extension header: at that header's first byte. */
	static const uint8_t dst_to_junk[] = { 253, 0, 1, 4, 0, 0, 0, 0,  1, 2, 3, 4, 5, 6, 7, 8 };
	n = f6(f, PEER_GL, US_GL, 60, 64, dst_to_junk, sizeof dst_to_junk);
	tenv_input(&e, f, n);
	if (expect_param(&e, 1, 40, f, 16)) return 1;
	/* Options by action: 01 dropped silently. */
	static const uint8_t opt01[] = { 58, 0, 0x41, 4, 0, 0, 0, 0 };
	tenv_input(&e, f, ext_frame(f, 60, opt01, sizeof opt01, US_GL));
	CHECK(tnif_next(e.nif) == NULL);
	/* 10: code 2 at the option, to a multicast destination too. */
	static const uint8_t opt10[] = { 58, 0, 1, 0, 0x82, 2, 0, 0 };
	n = ext_frame(f, 60, opt10, sizeof opt10, US_GL);
	tenv_input(&e, f, n);
	if (expect_param(&e, 2, 44, f, rd16(f + 18))) return 1;
	n = ext_frame(f, 60, opt10, sizeof opt10, ALL_NODES);
	tenv_input(&e, f, n);
	CHECK(next_icmp6(&e, 4, &p) && p.code == 2 && rd32(p.l4 + 4) == 44);
	CHECK(memcmp(p.src, US_GL, 16) == 0 && p.csum_ok);
	/* 11: code 2 to a unicast destination, nothing to a multicast one. */
	static const uint8_t opt11[] = { 58, 0, 0xc3, 4, 0, 0, 0, 0 };
	n = ext_frame(f, 60, opt11, sizeof opt11, US_GL);
	tenv_input(&e, f, n);
	if (expect_param(&e, 2, 42, f, rd16(f + 18))) return 1;
	tenv_input(&e, f, ext_frame(f, 60, opt11, sizeof opt11, ALL_NODES));
	CHECK(tnif_next(e.nif) == NULL);
	/* An option running past its header, a header past the packet: dropped. */
	static const uint8_t opt_long[] = { 58, 0, 1, 9, 0, 0, 0, 0 };
	tenv_input(&e, f, ext_frame(f, 60, opt_long, sizeof opt_long, US_GL));
	static const uint8_t hdr_long[] = { 58, 3, 1, 4, 0, 0, 0, 0 };
	tenv_input(&e, f, f6(f, PEER_GL, US_GL, 60, 64, hdr_long, sizeof hdr_long));
	/* A first fragment (not atomic): held for reassembly, no answer yet. */
	static const uint8_t frag[] = { 58, 0, 0, 1, 0, 0, 0, 43 };
	tenv_input(&e, f, ext_frame(f, 44, frag, sizeof frag, US_GL));
	/* No Next Header: nothing to do. */
	tenv_input(&e, f, f6(f, PEER_GL, US_GL, 59, 64, junk, sizeof junk));
	CHECK(tnif_next(e.nif) == NULL);
	/* Never an error about an ICMPv6 error (a Destination Unreachable
	 * behind an option of action 10). */
	uint8_t pl[64] = { 58, 0, 1, 0, 0x82, 2, 0, 0 };
	uint8_t *m = pl + 8;
	memset(m, 0, 48);
	m[0] = 1; m[1] = 4;
	icmp_sum(m, 48, PEER_GL, US_GL);
	tenv_input(&e, f, f6(f, PEER_GL, US_GL, 60, 64, pl, 56));
	CHECK(tnif_next(e.nif) == NULL);
	struct usnet_stack_stats s = stats(&e);
	CHECK(s.ip6_drop_hbh_order == 1 && s.ip6_drop_routing == 1 && s.ip6_drop_next_header == 2);
	CHECK(s.ip6_frag_rx == 1 && s.ip6_frag_reassembled == 0);
	CHECKF(s.ip6_drop_option == 6 && s.ip6_drop_ext == 2 && s.ip6_drop_frag == 0,
	       "option %llu ext %llu frag %llu", (unsigned long long)s.ip6_drop_option,
	       (unsigned long long)s.ip6_drop_ext, (unsigned long long)s.ip6_drop_frag);
	CHECK(s.icmp6_err_tx == 7);
	tenv_fini(&e);
	return 0;
}

/* UDP to a closed port: port unreachable (not for one to all nodes);
 * errors are rate limited, and the bucket fills again with time. */
int test_ip6_errors(void)
{
	struct usnet_stack_config cfg;
	ip6_cfg(&cfg, 0);
	struct tenv e; tenv_init(&e, &cfg);
	learn_peer6(&e, PEER_GL, US_GL);
	uint8_t f[160], u[16] = { 0x13, 0x88, 0, 53, 0, 16, 0, 0, 'h', 'e', 'l', 'l', 'o', '!', '!', '!' };
	wr16(u + 6, c6(PEER_GL, US_GL, 17, u, 16));
	uint32_t n = f6(f, PEER_GL, US_GL, 17, 64, u, 16);
	tenv_input(&e, f, n);
	struct p6 p;
	CHECK(next_icmp6(&e, 1, &p) && p.code == 4 && p.csum_ok && p.plen == 8 + 40 + 16);
	CHECK(memcmp(p.l4 + 8, f + 14, 56) == 0);
	/* To all nodes: no error. */
	tenv_input(&e, f, f6(f, PEER_GL, ALL_NODES, 17, 64, u, 16));
	CHECK(tnif_next(e.nif) == NULL);
	/* A burst: 10 errors, then the limit. */
	n = f6(f, PEER_GL, US_GL, 17, 64, u, 16);
	for (int i = 0; i < 20; i++)
		tenv_input(&e, f, n);
	unsigned errs = count_icmp6(&e, 1);
	struct usnet_stack_stats s = stats(&e);
	CHECKF(errs == 9 && s.icmp6_err_ratelimit == 11, "errors %u limited %llu", errs,
	       (unsigned long long)s.icmp6_err_ratelimit);
	e.now += 300 * MS;
	for (int i = 0; i < 5; i++)
		tenv_input(&e, f, n);
	CHECK(count_icmp6(&e, 1) == 3);
	s = stats(&e);
	/* (the copy to all nodes kept the checksum summed for US_GL: dropped
	 * as a bad one) */
	CHECKF(s.udp_no_port == 26 && s.udp_drop_csum == 1 && s.icmp6_err_tx == 13 && s.ip6_no_transport == 0, "no_port %llu err_tx %llu", (unsigned long long)s.udp_no_port, (unsigned long long)s.icmp6_err_tx);
	tenv_fini(&e);
	return 0;
}

/* Invalid ND messages (RFC 4861 7.1.1, 7.1.2) are dropped and counted by
 * reason, and answer nothing. */
int test_ip6_nd_invalid(void)
{
	struct usnet_stack_config cfg;
	ip6_cfg(&cfg, 0);
	struct tenv e; tenv_init(&e, &cfg);
	uint8_t f[160], g[16];
	sol_node(US_GL, g);
	/* Through a router (hop limit 64). */
	tenv_input(&e, f, ns_frame(f, PEER_GL, g, US_GL, 1, 64));
	/* Code 1. */
	uint8_t m[48] = { 135, 1 };
	memcpy(m + 8, US_GL, 16);
	icmp_sum(m, 24, PEER_GL, g);
	tenv_input(&e, f, f6(f, PEER_GL, g, 58, 255, m, 24));
	/* Too short. */
	m[1] = 0;
	icmp_sum(m, 20, PEER_GL, g);
	tenv_input(&e, f, f6(f, PEER_GL, g, 58, 255, m, 20));
	/* An option of length 0. */
	memset(m + 24, 0, 8);
	m[24] = 1; m[25] = 0;
	icmp_sum(m, 32, PEER_GL, g);
	tenv_input(&e, f, f6(f, PEER_GL, g, 58, 255, m, 32));
	/* A multicast target. */
	uint8_t mt[24] = { 135, 0 };
	memcpy(mt + 8, ALL_NODES, 16);
	icmp_sum(mt, 24, PEER_GL, g);
	tenv_input(&e, f, f6(f, PEER_GL, g, 58, 255, mt, 24));
	/* DAD (from ::) to our unicast address, and with a link-layer option. */
	tenv_input(&e, f, ns_frame(f, UNSPEC, US_GL, US_GL, 0, 255));
	tenv_input(&e, f, ns_frame(f, UNSPEC, g, US_GL, 1, 255));
	/* An NA to all nodes with the Solicited flag. */
	tenv_input(&e, f, na_frame(f, PEER_GL, ALL_NODES, PEER_GL, 0x60, T_MAC_PEER));
	CHECK(tnif_next(e.nif) == NULL);
	struct usnet_stack_stats s = stats(&e);
	CHECK(s.nd_drop_hop_limit == 1 && s.nd_drop_code == 1 && s.nd_drop_len == 1 && s.nd_drop_option == 1);
	CHECK(s.nd_drop_target == 1 && s.nd_drop_source == 2 && s.nd_drop_solicited == 1);
	CHECK(s.nd_rx == 8 && s.nd_tx == 0);
	/* The same NS, valid, is answered. */
	tenv_input(&e, f, ns_frame(f, PEER_GL, g, US_GL, 1, 255));
	struct p6 p;
	CHECK(next_icmp6(&e, 136, &p));
	tenv_fini(&e);
	return 0;
}

/* DAD: addresses start tentative (not used, not answered for), probe with
 * an NS from :: to their solicited-node group, and are used after a quiet
 * second; an NA for a tentative address, or someone else's probe for it,
 * makes it a duplicate that is never used. */
int test_ip6_dad(void)
{
	struct usnet_stack_config cfg;
	ip6_cfg(&cfg, 1);
	struct tenv e; tenv_init(&e, &cfg);
	CHECK(usnet_ip6_addr(e.st, 0, NULL, NULL) == USNET_IP6_ADDR_TENTATIVE);
	CHECK(usnet_ip6_addr(e.st, 1, NULL, NULL) == USNET_IP6_ADDR_TENTATIVE);
	uint8_t f[160], g[16];
	/* Tentative: not answered for, not ours. */
	sol_node(US_GL, g);
	tenv_input(&e, f, ns_frame(f, PEER_GL, g, US_GL, 1, 255));
	tenv_input(&e, f, echo_frame(f, PEER_GL, US_GL, 1));
	CHECK(tnif_next(e.nif) == NULL);
	tenv_advance(&e, e.now + 1 * SEC);   /* the first probes go within a second */
	struct p6 p;
	int seen = 0;
	unsigned reports = 0;
	struct tframe *fr;
	while ((fr = tnif_next(e.nif))) {
		/* Each probe's group was joined before it (RFC 4862 5.4.2):
		 * an MLD report from :: (US_LL and US_GL share a group). */
		struct mld_rep r;
		if (parse_mld(fr, &r))
			return 1;
		if (r.type) {
			sol_node(US_GL, g);
			CHECK(r.type == 143 && r.nrec == 1 && mld_has(&r, 4, g) && memcmp(r.src, UNSPEC, 16) == 0);
			reports++;
			continue;
		}
		CHECK(parse6(fr, &p) == 0 && p.type == 135 && reports > 0);
		CHECK(p.csum_ok && p.hlim == 255 && memcmp(p.src, UNSPEC, 16) == 0 && p.plen == 24);
		sol_node(p.l4 + 8, g);
		CHECK(memcmp(p.dst, g, 16) == 0 && p.eth_dst[0] == 0x33 && p.eth_dst[2] == 0xff);
		if (memcmp(p.l4 + 8, US_LL, 16) == 0) seen |= 1;
		if (memcmp(p.l4 + 8, US_GL, 16) == 0) seen |= 2;
	}
	CHECK(seen == 3);
	CHECK(usnet_ip6_addr(e.st, 0, NULL, NULL) == USNET_IP6_ADDR_TENTATIVE);
	/* Someone else probes for our link-local address: a duplicate. */
	sol_node(US_LL, g);
	tenv_input(&e, f, ns_frame(f, UNSPEC, g, US_LL, 0, 255));
	CHECK(usnet_ip6_addr(e.st, 0, NULL, NULL) == USNET_IP6_ADDR_DUPLICATE);
	CHECK(tnif_next(e.nif) == NULL);
	tenv_advance(&e, e.now + 2 * SEC);
	CHECK(usnet_ip6_addr(e.st, 1, NULL, NULL) == USNET_IP6_ADDR_PREFERRED);
	CHECK(usnet_ip6_addr(e.st, 0, NULL, NULL) == USNET_IP6_ADDR_DUPLICATE);
	tnif_clear(e.nif);
	/* The global one is in use now; the link-local one never. */
	learn_peer6(&e, PEER_GL, US_GL);
	tenv_input(&e, f, echo_frame(f, PEER_GL, US_GL, 2));
	CHECK(next_icmp6(&e, 129, &p));
	learn_peer6(&e, PEER_LL, US_GL);
	tenv_input(&e, f, echo_frame(f, PEER_LL, US_LL, 3));
	CHECK(tnif_next(e.nif) == NULL);
	struct usnet_stack_stats s = stats(&e);
	CHECK(s.nd_dad_duplicate == 1);
	tenv_fini(&e);
	/* An NA for a tentative address: a duplicate. */
	tenv_init(&e, &cfg);
	tenv_advance(&e, e.now + 500 * MS);
	tenv_input(&e, f, na_frame(f, PEER_GL, ALL_NODES, US_GL, 0x20, T_MAC_PEER));
	CHECK(usnet_ip6_addr(e.st, 1, NULL, NULL) == USNET_IP6_ADDR_DUPLICATE);
	tenv_advance(&e, e.now + 3 * SEC);
	CHECK(usnet_ip6_addr(e.st, 0, NULL, NULL) == USNET_IP6_ADDR_PREFERRED);
	CHECK(usnet_ip6_addr(e.st, 1, NULL, NULL) == USNET_IP6_ADDR_DUPLICATE);
	tenv_fini(&e);
	/* The node holding the address answers the probe from that address
	 * (Linux does): a duplicate too, not a packet with our source. */
	tenv_init(&e, &cfg);
	tenv_advance(&e, e.now + 1 * SEC);
	tenv_input(&e, f, na_frame(f, US_GL, ALL_NODES, US_GL, 0x20, T_MAC_PEER));
	CHECK(usnet_ip6_addr(e.st, 1, NULL, NULL) == USNET_IP6_ADDR_DUPLICATE);
	CHECK(stats(&e).ip6_drop_header == 0);
	tenv_fini(&e);
	return 0;
}

/* ---- fragments (RFC 8200 4.5) and path MTU (RFC 8201) ------------------ */

/* A fragment from src to US_GL: a Fragment header (next header nh, offset
 * off, M when more, Identification id), then data[0..len). */
static uint32_t frag6(uint8_t *f, const uint8_t src[16], uint32_t id, uint32_t off, int more, uint8_t nh,
		      const uint8_t *data, uint32_t len)
{
	static uint8_t pl[2048];
	pl[0] = nh;
	pl[1] = 0;
	wr16(pl + 2, (uint16_t)(off | (more ? 1u : 0u)));
	wr32(pl + 4, id);
	memcpy(pl + 8, data, len);
	return f6(f, src, US_GL, 44, 64, pl, 8 + len);
}

/* An echo request of 8 + dlen bytes from PEER_GL to US_GL, checksum set. */
static uint32_t big_echo(uint8_t *m, uint16_t id, uint32_t dlen)
{
	uint32_t n = echo_req(m, id, dlen);
	icmp_sum(m, n, PEER_GL, US_GL);
	return n;
}

/* One ICMPv6 message from US_GL to PEER_GL as it left: whole, or put
 * together here from its fragments. */
struct reply6 {
	uint8_t  msg[65536];
	uint32_t len;
	unsigned nfrag;     /* 0: it went whole */
	uint32_t max_ip;    /* the largest IPv6 packet it took, header included */
	uint32_t id;        /* its fragments' Identification */
};

static int collect6(struct tenv *e, struct reply6 *r)
{
	struct tframe *fr;
	struct p6 p;
	uint32_t have = 0, total = 0;
	r->len = 0;
	r->nfrag = 0;
	r->max_ip = 0;
	while ((fr = tnif_next(e->nif))) {
		if (parse6(fr, &p) < 0 || (p.nh == 58 && p.type != 129))
			continue;   /* ND on the way */
		CHECK(memcmp(p.src, US_GL, 16) == 0 && memcmp(p.dst, PEER_GL, 16) == 0);
		CHECK(fr->len <= 14 + 1500);
		if (40 + p.plen > r->max_ip)
			r->max_ip = 40 + p.plen;
		if (p.nh == 58) {
			CHECK(r->nfrag == 0);
			memcpy(r->msg, p.l4, p.plen);
			r->len = p.plen;
			return 0;
		}
		CHECK(p.nh == 44 && p.plen > 8 && p.l4[0] == 58 && p.l4[1] == 0);
		uint32_t fo = rd16(p.l4 + 2), off = fo & 0xfff8, n = p.plen - 8;
		CHECK(!(fo & 6));
		CHECK(!(fo & 1) || n % 8 == 0);
		CHECK(off + n <= sizeof r->msg);
		if (r->nfrag++ == 0)
			r->id = rd32(p.l4 + 4);
		CHECK(rd32(p.l4 + 4) == r->id);
		memcpy(r->msg + off, p.l4 + 8, n);
		have += n;
		if (!(fo & 1))
			total = off + n;
		if (total && have == total) {
			r->len = total;
			return 0;
		}
	}
	CHECKF(0, "message incomplete: %u bytes of %u", have, total);
}

/* The echo reply to the request m[0..n): the same bytes after its type,
 * a checksum that holds. */
static int is_reply(const struct reply6 *r, const uint8_t *m, uint32_t n)
{
	CHECKF(r->len == n, "reply %u bytes, not %u", r->len, n);
	CHECK(r->msg[0] == 129 && r->msg[1] == 0 && memcmp(r->msg + 4, m + 4, n - 4) == 0);
	CHECK(c6(US_GL, PEER_GL, 58, r->msg, r->len) == 0);
	return 0;
}

/* A fragmented echo request, in order and out of order, gets its reply;
 * a reply larger than the link's MTU (1500) leaves in fragments of at most
 * 1500 bytes, each Identification new. */
int test_ip6_frag_echo(void)
{
	struct usnet_stack_config cfg;
	ip6_cfg(&cfg, 0);
	struct tenv e; tenv_init(&e, &cfg);
	learn_peer6(&e, PEER_GL, US_GL);
	static uint8_t m[4096], f[2048];
	static struct reply6 r;
	uint32_t n = big_echo(m, 0x51, 2992);
	tenv_input(&e, f, frag6(f, PEER_GL, 0x1234, 0, 1, 58, m, 1232));
	CHECK(tnif_next(e.nif) == NULL);
	CHECK(stats(&e).buffers_in_use == 2048);
	tenv_input(&e, f, frag6(f, PEER_GL, 0x1234, 1232, 1, 58, m + 1232, 1232));
	CHECK(tnif_next(e.nif) == NULL);
	tenv_input(&e, f, frag6(f, PEER_GL, 0x1234, 2464, 0, 58, m + 2464, n - 2464));
	CHECK(collect6(&e, &r) == 0);
	CHECK(is_reply(&r, m, n) == 0);
	CHECKF(r.nfrag == 3 && r.max_ip == 1496, "%u fragments, largest %u", r.nfrag, r.max_ip);
	CHECK(tnif_next(e.nif) == NULL);
	uint32_t id1 = r.id;
	/* Out of order: last, first, middle. */
	n = big_echo(m, 0x52, 2992);
	tenv_input(&e, f, frag6(f, PEER_GL, 0x1235, 2464, 0, 58, m + 2464, n - 2464));
	tenv_input(&e, f, frag6(f, PEER_GL, 0x1235, 0, 1, 58, m, 1232));
	CHECK(tnif_next(e.nif) == NULL);
	tenv_input(&e, f, frag6(f, PEER_GL, 0x1235, 1232, 1, 58, m + 1232, 1232));
	CHECK(collect6(&e, &r) == 0);
	CHECK(is_reply(&r, m, n) == 0);
	CHECK(r.nfrag == 3 && r.id != id1);
	/* A small request in two fragments: the reply goes whole. */
	n = big_echo(m, 0x53, 100);
	tenv_input(&e, f, frag6(f, PEER_GL, 0x1236, 56, 0, 58, m + 56, n - 56));
	tenv_input(&e, f, frag6(f, PEER_GL, 0x1236, 0, 1, 58, m, 56));
	CHECK(collect6(&e, &r) == 0);
	CHECK(is_reply(&r, m, n) == 0 && r.nfrag == 0);
	/* The largest datagram there is: 65535 bytes in 54 fragments (the
	 * reply in 46). */
	static uint8_t big[65536];
	n = big_echo(big, 0x54, 65535 - 8);
	for (uint32_t off = 0; off < n; off += 1232)
		tenv_input(&e, f, frag6(f, PEER_GL, 0x1237, off, off + 1232 < n, 58, big + off,
					off + 1232 < n ? 1232 : n - off));
	CHECK(collect6(&e, &r) == 0);
	CHECK(is_reply(&r, big, n) == 0 && r.nfrag == 46);
	CHECK(tnif_next(e.nif) == NULL);
	struct usnet_stack_stats s = stats(&e);
	CHECKF(s.ip6_frag_rx == 62 && s.ip6_frag_reassembled == 4 && s.ip6_frag_tx == 52,
	       "rx %llu reassembled %llu tx %llu", (unsigned long long)s.ip6_frag_rx,
	       (unsigned long long)s.ip6_frag_reassembled, (unsigned long long)s.ip6_frag_tx);
	CHECKF(s.buffers_in_use == 0 && s.ip6_drop_frag == 0 && s.icmp6_tx == 5 /* and learn_peer6's NA */, "in use %llu, drop %llu, tx %llu",
	       (unsigned long long)s.buffers_in_use, (unsigned long long)s.ip6_drop_frag,
	       (unsigned long long)s.icmp6_tx);
	tenv_fini(&e);
	return 0;
}

/* Exact duplicates are ignored; a fragment that overlaps another (tiny
 * ones too) drops the whole datagram silently, and the rest of it as it
 * comes, until its 60 s are over (RFC 5722, RFC 8200 4.5). */
int test_ip6_frag_overlap(void)
{
	struct usnet_stack_config cfg;
	ip6_cfg(&cfg, 0);
	struct tenv e; tenv_init(&e, &cfg);
	learn_peer6(&e, PEER_GL, US_GL);
	static uint8_t m[4096], f[2048];
	static struct reply6 r;
	uint32_t n = big_echo(m, 0x61, 2992);
	tenv_input(&e, f, frag6(f, PEER_GL, 0x2000, 0, 1, 58, m, 1232));
	tenv_input(&e, f, frag6(f, PEER_GL, 0x2000, 0, 1, 58, m, 1232));
	tenv_input(&e, f, frag6(f, PEER_GL, 0x2000, 1232, 1, 58, m + 1232, 1232));
	tenv_input(&e, f, frag6(f, PEER_GL, 0x2000, 1232, 1, 58, m + 1232, 1232));
	CHECK(stats(&e).buffers_in_use == 2 * 2048);
	tenv_input(&e, f, frag6(f, PEER_GL, 0x2000, 2464, 0, 58, m + 2464, n - 2464));
	CHECK(collect6(&e, &r) == 0 && is_reply(&r, m, n) == 0);
	CHECK(tnif_next(e.nif) == NULL);
	/* The second fragment starts 8 bytes inside the first. */
	uint64_t t0 = e.now;
	tenv_input(&e, f, frag6(f, PEER_GL, 0x2001, 0, 1, 58, m, 1232));
	tenv_input(&e, f, frag6(f, PEER_GL, 0x2001, 1224, 1, 58, m + 1224, 1232));
	struct usnet_stack_stats s = stats(&e);
	CHECK(s.ip6_frag_drop_overlap == 1 && s.buffers_in_use == 0);
	/* The rest of it, even what would have fit, is dropped. */
	tenv_input(&e, f, frag6(f, PEER_GL, 0x2001, 1232, 1, 58, m + 1232, 1232));
	tenv_input(&e, f, frag6(f, PEER_GL, 0x2001, 2464, 0, 58, m + 2464, n - 2464));
	/* Tiny ones: 16 bytes at 1232, then 8 at 1240. */
	tenv_input(&e, f, frag6(f, PEER_GL, 0x2002, 0, 1, 58, m, 1232));
	tenv_input(&e, f, frag6(f, PEER_GL, 0x2002, 1232, 1, 58, m + 1232, 16));
	tenv_input(&e, f, frag6(f, PEER_GL, 0x2002, 1240, 1, 58, m + 1240, 8));
	CHECK(tnif_next(e.nif) == NULL);
	s = stats(&e);
	CHECK(s.ip6_frag_drop_overlap == 2 && s.ip6_drop_frag == 2 && s.buffers_in_use == 0);
	CHECK(s.ip6_frag_reassembled == 1);
	/* Their 60 s over: gone without a Time Exceeded (nothing held), and
	 * the Identification is good again. */
	tenv_advance(&e, t0 + 61 * SEC);
	CHECK(count_icmp6(&e, 3) == 0 && stats(&e).ip6_frag_timeout == 0);
	learn_peer6(&e, PEER_GL, US_GL);   /* its entry was probed away meanwhile */
	tenv_input(&e, f, frag6(f, PEER_GL, 0x2001, 1232, 1, 58, m + 1232, 1232));
	tenv_input(&e, f, frag6(f, PEER_GL, 0x2001, 0, 1, 58, m, 1232));
	tenv_input(&e, f, frag6(f, PEER_GL, 0x2001, 2464, 0, 58, m + 2464, n - 2464));
	CHECK(collect6(&e, &r) == 0 && is_reply(&r, m, n) == 0);
	CHECK(stats(&e).ip6_frag_reassembled == 2 && stats(&e).buffers_in_use == 0);
	tenv_fini(&e);
	return 0;
}

/* A datagram not whole 60 s after its first fragment came is given up:
 * Time Exceeded code 1 to its source, quoting its offset-0 fragment,
 * when that one came; the pool back to idle. */
int test_ip6_frag_timeout(void)
{
	struct usnet_stack_config cfg;
	ip6_cfg(&cfg, 0);
	cfg.ip6_router_solicits = 0;   /* a quiet link: only the Time Exceeded goes out */
	struct tenv e; tenv_init(&e, &cfg);
	tenv_advance(&e, e.now + 1 * SEC);   /* past the MLD reports of the start */
	learn_peer6(&e, PEER_GL, US_GL);
	static uint8_t m[4096], f[2048];
	big_echo(m, 0x71, 2992);
	uint64_t t0 = e.now;
	tenv_input(&e, f, frag6(f, PEER_GL, 0x3001, 0, 1, 58, m, 1232));
	tenv_input(&e, f, frag6(f, PEER_GL, 0x3002, 1232, 1, 58, m + 1232, 1232));   /* no first */
	CHECK(stats(&e).buffers_in_use == 2 * 2048);
	tenv_advance(&e, t0 + 59 * SEC);
	CHECK(tnif_next(e.nif) == NULL && stats(&e).ip6_frag_timeout == 0);
	tenv_advance(&e, t0 + 61 * SEC);
	struct p6 p;
	CHECK(next_icmp6(&e, 3, &p));
	CHECK(p.csum_ok && p.code == 1 && rd32(p.l4 + 4) == 0);
	CHECK(memcmp(p.src, US_GL, 16) == 0 && memcmp(p.dst, PEER_GL, 16) == 0);
	/* The quote: as much as fits in 1280 bytes of the fragment. */
	const uint8_t *q = p.l4 + 8;
	CHECK(p.plen == 1280 - 40);
	CHECK(q[6] == 44 && memcmp(q + 8, PEER_GL, 16) == 0 && memcmp(q + 24, US_GL, 16) == 0);
	CHECK(rd16(q + 4) == 8 + 1232);
	CHECK(q[40] == 58 && rd16(q + 42) == 1 && rd32(q + 44) == 0x3001);
	CHECK(memcmp(q + 48, m, 1232 - 48) == 0);
	CHECK(tnif_next(e.nif) == NULL);   /* none for the datagram without a first fragment */
	struct usnet_stack_stats s = stats(&e);
	CHECK(s.ip6_frag_timeout == 2 && s.buffers_in_use == 0 && s.ip6_frag_reassembled == 0);
	tenv_fini(&e);
	return 0;
}

/* Fragments RFC 8200 answers with Parameter Problem: M set and a length
 * not a multiple of 8 (at the Payload Length), ending past 65535 (at the
 * Fragment Offset); a first fragment without the whole header chain (RFC
 * 7112, code 3); Neighbor Discovery in fragments dropped (RFC 6980). */
int test_ip6_frag_errors(void)
{
	struct usnet_stack_config cfg;
	ip6_cfg(&cfg, 0);
	struct tenv e; tenv_init(&e, &cfg);
	learn_peer6(&e, PEER_GL, US_GL);
	static uint8_t m[4096], f[2048];
	big_echo(m, 0x81, 2992);
	tenv_input(&e, f, frag6(f, PEER_GL, 0x4001, 0, 1, 58, m, 100));
	CHECK(expect_param(&e, 0, 4, f, 8 + 100) == 0);
	tenv_input(&e, f, frag6(f, PEER_GL, 0x4002, 65528, 0, 58, m, 16));
	CHECK(expect_param(&e, 0, 40 + 2, f, 8 + 16) == 0);
	/* Destination Options, then none of the ICMPv6 header. */
	static const uint8_t dst_opts[8] = { 58, 0, 1, 4, 0, 0, 0, 0 };
	tenv_input(&e, f, frag6(f, PEER_GL, 0x4003, 0, 1, 60, dst_opts, 8));
	CHECK(expect_param(&e, 3, 0, f, 8 + 8) == 0);
	/* With the first 8 bytes of ICMPv6 after them: the whole chain. */
	uint8_t two[16];
	memcpy(two, dst_opts, 8);
	memcpy(two + 8, m, 8);
	tenv_input(&e, f, frag6(f, PEER_GL, 0x4005, 0, 1, 60, two, 16));   /* held */
	CHECK(tnif_next(e.nif) == NULL);
	struct usnet_stack_stats s = stats(&e);
	CHECK(s.ip6_frag_drop_chain == 1 && s.ip6_drop_frag == 2 && s.buffers_in_use == 2048);
	/* An NS in two fragments: made whole, then dropped. */
	uint8_t ns[32] = { 135, 0 };
	memcpy(ns + 8, US_GL, 16);
	ns[24] = 1; ns[25] = 1; memcpy(ns + 26, T_MAC_PEER, 6);
	icmp_sum(ns, 32, PEER_GL, US_GL);
	tenv_input(&e, f, frag6(f, PEER_GL, 0x4006, 0, 1, 58, ns, 16));
	tenv_input(&e, f, frag6(f, PEER_GL, 0x4006, 16, 0, 58, ns + 16, 16));
	CHECK(tnif_next(e.nif) == NULL);
	s = stats(&e);
	CHECK(s.ip6_frag_reassembled == 1 && s.ip6_drop_frag == 3 && s.nd_rx == 1);   /* learn_peer6's */
	tenv_fini(&e);
	return 0;
}

/* A Packet Too Big from a router on the path, quoting a packet from us. */
static uint32_t ptb_frame(uint8_t *f, const uint8_t from[16], uint32_t mtu, const uint8_t qsrc[16],
			  const uint8_t qdst[16])
{
	uint8_t m[8 + 48] = { 2, 0 };
	wr32(m + 4, mtu);
	uint8_t *q = m + 8;
	wr32(q, 6u << 28);
	wr16(q + 4, 1452);
	q[6] = 58;
	q[7] = 64;
	memcpy(q + 8, qsrc, 16);
	memcpy(q + 24, qdst, 16);
	q[40] = 129;
	icmp_sum(m, sizeof m, from, US_GL);
	return f6(f, from, US_GL, 58, 64, m, sizeof m);
}

/* Packet Too Big lowers the path MTU of the destination it quotes (never
 * below 1280, never up), for 10 minutes: what is sent there is fragmented
 * to fit; one about a packet not from us is ignored. */
int test_ip6_packet_too_big(void)
{
	struct usnet_stack_config cfg;
	ip6_cfg(&cfg, 0);
	struct tenv e; tenv_init(&e, &cfg);
	learn_peer6(&e, PEER_GL, US_GL);
	static const uint8_t router[16] = { 0x20, 0x01, 0x0d, 0xb8, [7] = 1, [15] = 0xfe };
	static uint8_t m[4096], f[2048];
	static struct reply6 r;
	uint32_t n = big_echo(m, 0x91, 1432);   /* 1480 bytes of IPv6: one frame */
	tenv_input(&e, f, f6(f, PEER_GL, US_GL, 58, 64, m, n));
	CHECK(collect6(&e, &r) == 0 && is_reply(&r, m, n) == 0 && r.nfrag == 0);
	uint64_t t0 = e.now;
	tenv_input(&e, f, ptb_frame(f, router, 1400, US_GL, PEER_GL));
	CHECK(tnif_next(e.nif) == NULL);
	tenv_input(&e, f, f6(f, PEER_GL, US_GL, 58, 64, m, n));
	CHECK(collect6(&e, &r) == 0 && is_reply(&r, m, n) == 0);
	CHECKF(r.nfrag == 2 && r.max_ip == 1400, "%u fragments, largest %u", r.nfrag, r.max_ip);
	/* Not lowered: a larger MTU, one about another node's packet, one cut
	 * short. */
	tenv_input(&e, f, ptb_frame(f, router, 1450, US_GL, PEER_GL));
	tenv_input(&e, f, ptb_frame(f, router, 1300, router, PEER_GL));
	uint32_t fl = ptb_frame(f, router, 1300, US_GL, PEER_GL);
	wr16(f + 14 + 4, 8 + 20);   /* 20 bytes of the quoted header */
	uint8_t *msg = f + 14 + 40;
	icmp_sum(msg, 28, router, US_GL);
	tenv_input(&e, f, fl);
	struct usnet_stack_stats s = stats(&e);
	CHECK(s.ip6_pmtu_update == 1 && s.ip6_pmtu_ignored == 3);
	tenv_input(&e, f, f6(f, PEER_GL, US_GL, 58, 64, m, n));
	CHECK(collect6(&e, &r) == 0 && is_reply(&r, m, n) == 0 && r.max_ip == 1400);
	/* Below the minimum: taken as 1280. */
	tenv_input(&e, f, ptb_frame(f, router, 600, US_GL, PEER_GL));
	tenv_input(&e, f, f6(f, PEER_GL, US_GL, 58, 64, m, n));
	CHECK(collect6(&e, &r) == 0 && is_reply(&r, m, n) == 0);
	CHECKF(r.nfrag == 2 && r.max_ip == 1280, "%u fragments, largest %u", r.nfrag, r.max_ip);
	/* Other destinations keep the link's MTU. */
	learn_peer6(&e, PEER_LL, US_LL);
	uint8_t m2[2048];
	uint32_t n2 = echo_req(m2, 0x92, 1432);
	icmp_sum(m2, n2, PEER_LL, US_LL);
	tenv_input(&e, f, f6(f, PEER_LL, US_LL, 58, 64, m2, n2));
	struct p6 p;
	CHECK(next_icmp6(&e, 129, &p) && p.plen == n2 && memcmp(p.dst, PEER_LL, 16) == 0);
	/* Ten minutes on, the link's MTU again. */
	tenv_advance(&e, t0 + 601 * SEC);
	learn_peer6(&e, PEER_GL, US_GL);   /* its entry was probed away meanwhile */
	tenv_input(&e, f, f6(f, PEER_GL, US_GL, 58, 64, m, n));
	CHECK(collect6(&e, &r) == 0 && is_reply(&r, m, n) == 0 && r.nfrag == 0);
	s = stats(&e);
	CHECK(s.ip6_pmtu_update == 2 && s.ip6_pmtu_ignored == 3);
	tenv_fini(&e);
	return 0;
}

/* ---- TCP and UDP over IPv6 ------------------------------------------------ */

/* A TCP segment from PEER_GL:sport to US_GL:dport (options opt[olen]). */
static uint32_t tcp6_frame(uint8_t *f, uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags,
			   const uint8_t *opt, uint32_t olen, const uint8_t *data, uint32_t dlen)
{
	uint8_t t[256];
	memset(t, 0, 20);
	wr16(t, sport);
	wr16(t + 2, dport);
	wr32(t + 4, seq);
	wr32(t + 8, ack);
	t[12] = (uint8_t)(((20 + olen) / 4) << 4);
	t[13] = flags;
	wr16(t + 14, 65535);
	if (olen)
		memcpy(t + 20, opt, olen);
	if (dlen)
		memcpy(t + 20 + olen, data, dlen);
	uint32_t n = 20 + olen + dlen;
	wr16(t + 16, c6(PEER_GL, US_GL, 6, t, n));
	return f6(f, PEER_GL, US_GL, 6, 64, t, n);
}

/* The next captured TCP segment over IPv6, its checksum checked, or 0. */
static int next_tcp6(struct tenv *e, struct p6 *p)
{
	struct tframe *fr;
	while ((fr = tnif_next(e->nif)))
		if (parse6(fr, p) == 0 && p->nh == 6) {
			p->csum_ok = c6(p->src, p->dst, 6, p->l4, p->plen) == 0;
			return 1;
		}
	return 0;
}

static int listener6(struct tenv *e, uint16_t port, int v6only)
{
	int l = usnet_socket(e->st, USNET_SOCK_STREAM | USNET_SOCK_V6);
	struct usnet_addr a = { .port = port, .family = USNET_AF_INET6 };
	if (l < 0 || usnet_setsockopt(e->st, l, USNET_IPV6_V6ONLY, v6only) != 0 || usnet_bind(e->st, l, &a) != 0 ||
	    usnet_listen(e->st, l, 8) != 0)
		return -1;
	return l;
}

/* Passive open over IPv6 with MSS, SACK, timestamps and window scale;
 * data both ways; the peer's FIN and ours. */
int test_ip6_tcp_passive(void)
{
	struct usnet_stack_config cfg;
	ip6_cfg(&cfg, 0);
	struct tenv e; tenv_init(&e, &cfg);
	learn_peer6(&e, PEER_GL, US_GL);
	int l = listener6(&e, 80, 0);
	CHECK(l >= 0);
	CHECK(usnet_sock_family(e.st, l) == USNET_AF_INET6);
	uint8_t f[400], opt[20] = { 2, 4, 0x05, 0x8c, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7 };
	tenv_input(&e, f, tcp6_frame(f, 40000, 80, 1000, 0, 0x02, opt, 20, NULL, 0));
	struct p6 p;
	CHECK(next_tcp6(&e, &p) && p.csum_ok && memcmp(p.src, US_GL, 16) == 0 && memcmp(p.dst, PEER_GL, 16) == 0);
	CHECK(p.l4[13] == 0x12 && rd32(p.l4 + 8) == 1001 && p.hlim == 64);
	CHECK(p.l4[20] == 2 && rd16(p.l4 + 22) == 1500 - 60);   /* MSS = MTU - 60 */
	uint32_t iss = rd32(p.l4 + 4);
	uint8_t ts[12] = { 1, 1, 8, 10, 0, 0, 0, 2 };
	memcpy(ts + 8, p.l4 + 20 + 12, 4);   /* echo its TSval (after MSS and SACK-permitted) */
	tenv_input(&e, f, tcp6_frame(f, 40000, 80, 1001, iss + 1, 0x10, ts, 12, (const uint8_t *)"hello", 5));
	struct usnet_addr peer;
	int c = usnet_accept(e.st, &e.io, l, &peer, e.now);
	CHECK(c >= 0 && peer.family == USNET_AF_INET6 && memcmp(peer.ip6, PEER_GL, 16) == 0 && peer.port == 40000);
	CHECK(usnet_sock_family(e.st, c) == USNET_AF_INET6);
	struct usnet_addr me;
	CHECK(usnet_getsockname(e.st, c, &me) == 0 && me.family == USNET_AF_INET6 && memcmp(me.ip6, US_GL, 16) == 0);
	char buf[16];
	CHECK(usnet_recv(e.st, &e.io, c, buf, sizeof buf, 0, e.now) == 5 && memcmp(buf, "hello", 5) == 0);
	struct usnet_tcp_info ti;
	CHECK(usnet_tcp_info(e.st, c, &ti) == 0 && ti.options == 7 && ti.rcv_mss == 1440);
	tnif_clear(e.nif);
	CHECK(usnet_setsockopt(e.st, c, USNET_IPV6_UNICAST_HOPS, 9) == 0);
	CHECK(usnet_setsockopt(e.st, c, USNET_IPV6_TCLASS, 0x20) == 0);
	CHECK(usnet_send(e.st, &e.io, c, "world", 5, 0, e.now) == 5);
	CHECK(next_tcp6(&e, &p) && p.csum_ok && p.plen == 20 + 12 + 5 && memcmp(p.l4 + 32, "world", 5) == 0);
	CHECK(p.hlim == 9 && ((p.l4 - 40)[0] & 0x0f) == 0x2 && ((p.l4 - 40)[1] >> 4) == 0);
	/* a Packet Too Big (1280) about our full-sized segments: the MSS
	 * drops to 1220 and what was in flight goes again in smaller ones */
	static uint8_t big[1400];
	memset(big, 'b', sizeof big);
	tenv_input(&e, f, tcp6_frame(f, 40000, 80, 1006, iss + 6, 0x10, ts, 12, NULL, 0));
	CHECK(usnet_send(e.st, &e.io, c, big, sizeof big, 0, e.now) == (long)sizeof big);
	CHECKF(next_tcp6(&e, &p) && p.plen == 20 + 12 + 1400, "plen %u", p.plen);
	tnif_clear(e.nif);
	tenv_input(&e, f, ptb_frame(f, PEER_GL, 1280, US_GL, PEER_GL));
	CHECK(usnet_tcp_info(e.st, c, &ti) == 0 && ti.snd_mss == 1280 - 60);
	CHECKF(next_tcp6(&e, &p) && p.csum_ok && p.plen == 1280 - 40 && rd32(p.l4 + 4) == iss + 6,
	       "plen %u", p.plen);
	tenv_input(&e, f, tcp6_frame(f, 40000, 80, 1006, iss + 6 + 1208, 0x10, ts, 12, NULL, 0));
	CHECK(next_tcp6(&e, &p) && p.csum_ok && p.plen == 32 + 1400 - 1208);
	CHECK(usnet_close(e.st, &e.io, c, e.now) == 0);
	CHECK(next_tcp6(&e, &p) && (p.l4[13] & 0x01));   /* FIN */
	CHECK(usnet_stack_check(e.st, NULL, 0) == 0);
	tenv_fini(&e);
	return 0;
}

/* A SYN to a closed IPv6 port: RST over IPv6; a SYN cookie when the
 * listener's queue is full, and its ACK makes the connection. */
int test_ip6_tcp_rst_cookie(void)
{
	struct usnet_stack_config cfg;
	ip6_cfg(&cfg, 0);
	cfg.tcp_syncookies = 2;   /* always */
	struct tenv e; tenv_init(&e, &cfg);
	learn_peer6(&e, PEER_GL, US_GL);
	uint8_t f[400], mss[4] = { 2, 4, 0x05, 0xa0 };
	tenv_input(&e, f, tcp6_frame(f, 40001, 81, 5000, 0, 0x02, mss, 4, NULL, 0));
	struct p6 p;
	CHECK(next_tcp6(&e, &p) && p.csum_ok && p.l4[13] == 0x14 && rd32(p.l4 + 8) == 5001);
	CHECK(stats(&e).tcp_no_port == 1);
	int l = listener6(&e, 80, 1);
	CHECK(l >= 0);
	tenv_input(&e, f, tcp6_frame(f, 40002, 80, 7000, 0, 0x02, mss, 4, NULL, 0));
	CHECK(next_tcp6(&e, &p) && p.csum_ok && p.l4[13] == 0x12);
	CHECK(stats(&e).tcp_syncookies_sent == 1);
	uint32_t cookie = rd32(p.l4 + 4);
	/* a wrong cookie is refused; the right one makes a connection */
	tenv_input(&e, f, tcp6_frame(f, 40002, 80, 7001, cookie + 1 + 0x1000, 0x10, NULL, 0, NULL, 0));
	CHECK(usnet_accept(e.st, &e.io, l, NULL, e.now) == -USNET_EAGAIN);
	tenv_input(&e, f, tcp6_frame(f, 40002, 80, 7001, cookie + 1, 0x10, NULL, 0, NULL, 0));
	struct usnet_addr peer;
	int c = usnet_accept(e.st, &e.io, l, &peer, e.now);
	CHECK(c >= 0 && peer.family == USNET_AF_INET6 && peer.port == 40002);
	CHECK(stats(&e).tcp_syncookies_ok == 1);
	CHECK(usnet_stack_check(e.st, NULL, 0) == 0);
	tenv_fini(&e);
	return 0;
}

/* Active open to a neighbour not yet resolved: the SYN waits for the NA. */
int test_ip6_tcp_active(void)
{
	struct usnet_stack_config cfg;
	ip6_cfg(&cfg, 0);
	struct tenv e; tenv_init(&e, &cfg);
	int s = usnet_socket(e.st, USNET_SOCK_STREAM | USNET_SOCK_V6);
	struct usnet_addr to = { .port = 443, .family = USNET_AF_INET6 };
	memcpy(to.ip6, PEER_GL, 16);
	CHECK(usnet_connect(e.st, &e.io, s, &to, e.now) == -USNET_EINPROGRESS);
	struct p6 p;
	CHECK(next_icmp6(&e, 135, &p));   /* NS, the SYN queued */
	CHECK(tnif_next(e.nif) == NULL);
	uint8_t f[400];
	tenv_input(&e, f, na_frame(f, PEER_GL, US_GL, PEER_GL, 0x60, T_MAC_PEER));
	CHECK(next_tcp6(&e, &p) && p.csum_ok && p.l4[13] == 0x02 && rd16(p.l4 + 2) == 443);
	CHECK(memcmp(p.src, US_GL, 16) == 0 && rd16(p.l4 + 22) == 1440);
	uint32_t iss = rd32(p.l4 + 4);
	uint16_t lport = rd16(p.l4);
	uint8_t t[256];
	memset(t, 0, 20);
	wr16(t, 443); wr16(t + 2, lport); wr32(t + 4, 9000); wr32(t + 8, iss + 1);
	t[12] = 6 << 4; t[13] = 0x12; wr16(t + 14, 1000);
	t[20] = 2; t[21] = 4; wr16(t + 22, 1400);
	wr16(t + 16, c6(PEER_GL, US_GL, 6, t, 24));
	tenv_input(&e, f, f6(f, PEER_GL, US_GL, 6, 64, t, 24));
	CHECK(next_tcp6(&e, &p) && p.l4[13] == 0x10 && rd32(p.l4 + 8) == 9001);
	struct usnet_tcp_info ti;
	CHECK(usnet_tcp_info(e.st, s, &ti) == 0 && ti.state == USNET_TCP_ESTABLISHED && ti.snd_mss == 1400);
	struct usnet_addr pn;
	CHECK(usnet_getpeername(e.st, s, &pn) == 0 && pn.family == USNET_AF_INET6 && memcmp(pn.ip6, PEER_GL, 16) == 0);
	CHECK(usnet_stack_check(e.st, NULL, 0) == 0);
	tenv_fini(&e);
	return 0;
}

/* RSS over IPv6: connect() picks local ports whose replies (src = peer,
 * dst = us) usnet_io.flow_queue6 puts on this instance's queue; without
 * the callback, those the Toeplitz hash over the 36 bytes of addresses and
 * ports puts there. */
static unsigned fq6_asked;
static int fq6_queue(struct usnet_io *io, uint8_t proto, const uint8_t src[16], uint16_t sport,
		     const uint8_t dst[16], uint16_t dport)
{
	(void)io;
	fq6_asked++;
	return (int)(((unsigned)src[15] * 3u + dst[15] + (unsigned)sport * 7u + (unsigned)dport * 13u + proto) % 4u);
}

int test_ip6_rss_ports(void)
{
	for (int with_cb = 0; with_cb < 2; with_cb++) {
		struct usnet_stack_config cfg;
		ip6_cfg(&cfg, 0);
		cfg.rss_queues = 4;
		cfg.rss_queue = 1;
		for (int i = 0; i < 40; i++)
			cfg.rss_key[i] = (uint8_t)(i * 37 + 11);
		struct tenv e; tenv_init(&e, &cfg);
		if (with_cb)
			e.io.flow_queue6 = fq6_queue;
		fq6_asked = 0;
		for (int k = 0; k < 8; k++) {
			int s = usnet_socket(e.st, USNET_SOCK_STREAM | USNET_SOCK_V6);
			struct usnet_addr to = { .port = 443, .family = USNET_AF_INET6 };
			memcpy(to.ip6, PEER_GL, 16);
			CHECK(usnet_connect(e.st, &e.io, s, &to, e.now) == -USNET_EINPROGRESS);
			struct usnet_addr me;
			CHECK(usnet_getsockname(e.st, s, &me) == 0 && memcmp(me.ip6, US_GL, 16) == 0);
			int q;
			if (with_cb) {
				q = fq6_queue(NULL, 6, PEER_GL, 443, US_GL, me.port);
			} else {
				uint8_t in[36];
				memcpy(in, PEER_GL, 16);
				memcpy(in + 16, US_GL, 16);
				wr16(in + 32, 443);
				wr16(in + 34, me.port);
				q = (int)((ref_toeplitz(cfg.rss_key, in, 36) & 127u) % 4u);
			}
			CHECKF(q == 1, "port %u goes to queue %d (%s)", me.port, q, with_cb ? "flow_queue6" : "Toeplitz");
			usnet_close(e.st, &e.io, s, e.now);
		}
		CHECK(with_cb ? fq6_asked >= 8 : fq6_asked == 0);
		tenv_fini(&e);
	}
	return 0;
}

/* :: with V6ONLY 0 against 0.0.0.0 on one port, as Linux; V6ONLY 1 does
 * not conflict; an IPv4 socket takes no IPv6 address. */
int test_ip6_bind_conflicts(void)
{
	struct usnet_stack_config cfg;
	ip6_cfg(&cfg, 0);
	struct tenv e; tenv_init(&e, &cfg);
	struct usnet_addr any6 = { .port = 8080, .family = USNET_AF_INET6 }, any4 = { .ip = 0, .port = 8080 };
	int a = usnet_socket(e.st, USNET_SOCK_STREAM | USNET_SOCK_V6);
	int b = usnet_socket(e.st, USNET_SOCK_STREAM);
	CHECK(usnet_bind(e.st, a, &any6) == 0);
	CHECK(usnet_bind(e.st, b, &any4) == -USNET_EADDRINUSE);
	CHECK(usnet_setsockopt(e.st, a, USNET_IPV6_V6ONLY, 1) == -USNET_EINVAL);   /* bound */
	usnet_close(e.st, &e.io, a, e.now);
	CHECK(usnet_bind(e.st, b, &any4) == 0);
	a = usnet_socket(e.st, USNET_SOCK_STREAM | USNET_SOCK_V6);
	CHECK(usnet_bind(e.st, a, &any6) == -USNET_EADDRINUSE);
	CHECK(usnet_setsockopt(e.st, a, USNET_IPV6_V6ONLY, 1) == 0);
	CHECK(usnet_bind(e.st, a, &any6) == 0);
	int c = usnet_socket(e.st, USNET_SOCK_STREAM | USNET_SOCK_V6);
	struct usnet_addr gl = { .port = 8080, .family = USNET_AF_INET6 };
	memcpy(gl.ip6, US_GL, 16);
	CHECK(usnet_bind(e.st, c, &gl) == -USNET_EADDRINUSE);
	memcpy(gl.ip6, PEER_GL, 16);
	CHECK(usnet_bind(e.st, c, &gl) == -USNET_EADDRNOTAVAIL);
	CHECK(usnet_bind(e.st, b, &gl) == -USNET_EINVAL || usnet_bind(e.st, b, &gl) == -USNET_EAFNOSUPPORT);
	int d = usnet_socket(e.st, USNET_SOCK_DGRAM);
	CHECK(usnet_bind(e.st, d, &gl) == -USNET_EAFNOSUPPORT);
	CHECK(usnet_setsockopt(e.st, d, USNET_IPV6_V6ONLY, 1) == -USNET_ENOPROTOOPT);
	CHECK(usnet_stack_check(e.st, NULL, 0) == 0);
	tenv_fini(&e);
	return 0;
}

/* UDP over IPv6 both ways; a zero checksum is dropped; the datagram's
 * destination for IPV6_PKTINFO. */
int test_ip6_udp(void)
{
	struct usnet_stack_config cfg;
	ip6_cfg(&cfg, 0);
	struct tenv e; tenv_init(&e, &cfg);
	learn_peer6(&e, PEER_GL, US_GL);
	int u = usnet_socket(e.st, USNET_SOCK_DGRAM | USNET_SOCK_V6);
	struct usnet_addr a = { .port = 53, .family = USNET_AF_INET6 };
	CHECK(usnet_bind(e.st, u, &a) == 0);
	uint8_t f[160], d[13] = { 0x13, 0x88, 0, 53, 0, 13, 0, 0, 'q', 'u', 'e', 'r', 'y' };
	wr16(d + 6, c6(PEER_GL, US_GL, 17, d, 13));
	tenv_input(&e, f, f6(f, PEER_GL, US_GL, 17, 64, d, 13));
	struct usnet_addr to;
	uint64_t at;
	CHECK(usnet_udp_next_dst(e.st, u, &to, &at) == 0 && to.family == USNET_AF_INET6 &&
	      memcmp(to.ip6, US_GL, 16) == 0 && to.port == 53 && at == e.now);
	char buf[32];
	struct usnet_addr from;
	struct usnet_iovec iov = { buf, sizeof buf };
	CHECK(usnet_recvv(e.st, &e.io, u, &iov, 1, 0, &from, e.now) == 5 && memcmp(buf, "query", 5) == 0);
	CHECK(from.family == USNET_AF_INET6 && memcmp(from.ip6, PEER_GL, 16) == 0 && from.port == 5000);
	/* zero checksum: dropped */
	wr16(d + 6, 0);
	tenv_input(&e, f, f6(f, PEER_GL, US_GL, 17, 64, d, 13));
	CHECK(usnet_recv(e.st, &e.io, u, buf, sizeof buf, 0, e.now) == -USNET_EAGAIN);
	CHECK(stats(&e).udp_drop_csum == 1);
	tnif_clear(e.nif);
	struct usnet_iovec out = { (void *)"answer", 6 };
	CHECK(usnet_sendv(e.st, &e.io, u, &out, 1, 0, &from, e.now) == 6);
	struct p6 p;
	struct tframe *fr = tnif_next(e.nif);
	CHECK(fr && parse6(fr, &p) == 0 && p.nh == 17 && p.plen == 14 && c6(p.src, p.dst, 17, p.l4, 14) == 0);
	CHECK(memcmp(p.src, US_GL, 16) == 0 && memcmp(p.dst, PEER_GL, 16) == 0 && rd16(p.l4) == 53 &&
	      memcmp(p.l4 + 8, "answer", 6) == 0);
	/* larger than the MTU: in fragments (Linux without IPV6_DONTFRAG),
	 * which make the datagram whole with a checksum that holds */
	static uint8_t big[3000], whole[3008 + 8];
	for (uint32_t k = 0; k < sizeof big; k++)
		big[k] = (uint8_t)(k * 7);
	struct usnet_iovec bi = { big, sizeof big };
	tnif_clear(e.nif);
	CHECK(usnet_sendv(e.st, &e.io, u, &bi, 1, 0, &from, e.now) == (long)sizeof big);
	uint32_t got = 0, nfrag = 0, id = 0;
	while ((fr = tnif_next(e.nif))) {
		CHECK(parse6(fr, &p) == 0 && p.nh == 44 && p.l4[0] == 17 && fr->len <= 14 + 1500);
		uint32_t fo = rd16(p.l4 + 2), off = fo & 0xfff8, n = p.plen - 8;
		CHECK(off + n <= sizeof whole && (nfrag == 0 || rd32(p.l4 + 4) == id));
		id = rd32(p.l4 + 4);
		memcpy(whole + off, p.l4 + 8, n);
		got += n;
		nfrag++;
	}
	CHECKF(nfrag == 3 && got == 3008 && rd16(whole + 4) == 3008, "%u fragments, %u bytes", nfrag, got);
	CHECK(c6(US_GL, PEER_GL, 17, whole, 3008) == 0 && memcmp(whole + 8, big, sizeof big) == 0);
	/* past what a payload length holds: EMSGSIZE */
	static uint8_t huge[65536];
	struct usnet_iovec hi = { huge, sizeof huge };
	CHECK(usnet_sendv(e.st, &e.io, u, &hi, 1, 0, &from, e.now) == -USNET_EMSGSIZE);
	CHECK(usnet_stack_check(e.st, NULL, 0) == 0);
	tenv_fini(&e);
	return 0;
}

/* Host-address mode: a shared address (cfg.ip6_shared) is the kernel's.
 * It is in use at once, with no DAD probe, while an address of the stack's
 * own beside it still goes through DAD; the stack answers no solicitation
 * for it (multicast: its group is not joined; unicast: seen, not
 * answered).  Its neighbours come from outside: the stack says whom it
 * waits for, and a MAC set from outside releases the queued reply. */
int test_ip6_shared(void)
{
	static const uint8_t OWN[16] = { 0x20, 0x01, 0x0d, 0xb8, [7] = 2, [15] = 0x01 };   /* 2001:db8:0:2::1 */
	struct usnet_stack_config cfg;
	ip6_cfg(&cfg, 1);
	cfg.ip6_link_local = 0;
	cfg.ip6_shared[0] = 1;
	memcpy(cfg.ip6[1], OWN, 16);
	cfg.ip6_prefix_len[1] = 64;
	struct tenv e; tenv_init(&e, &cfg);
	CHECK(usnet_ip6_addr(e.st, 1, NULL, NULL) == USNET_IP6_ADDR_PREFERRED);
	CHECK(usnet_ip6_addr(e.st, 2, NULL, NULL) == USNET_IP6_ADDR_TENTATIVE);
	tenv_advance(&e, e.now + 1 * SEC);
	struct p6 p;
	int probes = 0;
	struct tframe *fr;
	uint8_t own_group[16];
	sol_node(OWN, own_group);
	while ((fr = tnif_next(e.nif))) {
		struct mld_rep r;   /* only the stack's own address's group is reported */
		if (parse_mld(fr, &r))
			return 1;
		if (r.type) {
			CHECK(r.type == 143 && r.nrec == 1 && mld_has(&r, 4, own_group));
			continue;
		}
		CHECK(parse6(fr, &p) == 0 && p.type == 135 && memcmp(p.src, UNSPEC, 16) == 0);
		CHECK(memcmp(p.l4 + 8, OWN, 16) == 0);   /* only the stack's own address is probed */
		probes++;
	}
	CHECK(probes == 1);
	tenv_advance(&e, e.now + 2 * SEC);
	CHECK(usnet_ip6_addr(e.st, 2, NULL, NULL) == USNET_IP6_ADDR_PREFERRED);
	tnif_clear(e.nif);
	/* Solicitations for the shared address: not answered. */
	uint8_t f[160], g[16];
	sol_node(US_GL, g);
	tenv_input(&e, f, ns_frame(f, PEER_GL, g, US_GL, 1, 255));
	CHECK(tnif_next(e.nif) == NULL);
	uint64_t nd_rx = stats(&e).nd_rx;
	tenv_input(&e, f, ns_frame(f, PEER_GL, US_GL, US_GL, 1, 255));
	CHECK(stats(&e).nd_rx == nd_rx + 1);
	CHECK(tnif_next(e.nif) == NULL);
	/* ... while the stack's own address is answered for. */
	sol_node(OWN, g);
	tenv_input(&e, f, ns_frame(f, PEER_GL, g, OWN, 1, 255));
	CHECK(next_icmp6(&e, 136, &p) && memcmp(p.l4 + 8, OWN, 16) == 0);
	tnif_clear(e.nif);
	/* A reply to an unknown neighbour: the stack waits for it ... */
	static const uint8_t peer2[16] = { 0x20, 0x01, 0x0d, 0xb8, [7] = 1, [15] = 0x22 };
	tenv_input(&e, f, echo_frame(f, peer2, US_GL, 7));
	uint8_t ips[4][16];
	CHECK(usnet_neigh6_waiting(e.st, ips, 4) == 1 && memcmp(ips[0], peer2, 16) == 0);
	tnif_clear(e.nif);
	/* ... and its MAC from outside releases the reply. */
	usnet_neigh6_set(e.st, &e.io, peer2, T_MAC_PEER, e.now);
	CHECK(next_icmp6(&e, 129, &p) && memcmp(p.eth_dst, T_MAC_PEER, 6) == 0 && rd16(p.l4 + 4) == 7);
	CHECK(memcmp(p.src, US_GL, 16) == 0 && memcmp(p.dst, peer2, 16) == 0);
	CHECK(usnet_neigh6_waiting(e.st, ips, 4) == 0);
	/* Set before any frame needs it: no solicitation leaves. */
	static const uint8_t peer3[16] = { 0x20, 0x01, 0x0d, 0xb8, [7] = 1, [15] = 0x33 };
	static const uint8_t mac3[6] = { 0x02, 0, 0, 0, 0, 0x33 };
	usnet_neigh6_set(e.st, &e.io, peer3, mac3, e.now);
	tnif_clear(e.nif);
	tenv_input(&e, f, echo_frame(f, peer3, US_GL, 8));
	fr = tnif_next(e.nif);
	CHECK(fr && parse6(fr, &p) == 0 && p.type == 129 && memcmp(p.eth_dst, mac3, 6) == 0);
	CHECK(tnif_next(e.nif) == NULL);
	/* A multicast MAC is no neighbour's; a multicast address no neighbour. */
	static const uint8_t peer4[16] = { 0x20, 0x01, 0x0d, 0xb8, [7] = 1, [15] = 0x44 };
	static const uint8_t mcast_mac[6] = { 0x33, 0x33, 0, 0, 0, 1 };
	usnet_neigh6_set(e.st, &e.io, peer4, mcast_mac, e.now);
	usnet_neigh6_set(e.st, &e.io, ALL_NODES, T_MAC_PEER, e.now);
	tenv_input(&e, f, echo_frame(f, peer4, US_GL, 9));
	CHECK(next_icmp6(&e, 135, &p) && memcmp(p.l4 + 8, peer4, 16) == 0);   /* still resolving */
	CHECK(usnet_neigh6_waiting(e.st, ips, 4) == 1 && memcmp(ips[0], peer4, 16) == 0);
	tenv_fini(&e);
	return 0;
}

/* ---- router discovery (RFC 4861 6.3) ------------------------------------ */

static const uint8_t ALL_ROUTERS[16] = { 0xff, 0x02, [15] = 2 };
static const uint8_t REMOTE[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0x99, [15] = 0x01 };   /* 2001:db8:99::1, off-link */

/* A Router Advertisement from PEER_LL to all nodes: Cur Hop Limit hops,
 * Router Lifetime lifetime_s, then the options opt[0..olen). */
static uint32_t ra_frame(uint8_t *f, uint8_t hops, uint16_t lifetime_s, const uint8_t *opt, uint32_t olen)
{
	uint8_t m[160] = { 134, 0 };
	m[4] = hops;
	wr16(m + 6, lifetime_s);
	if (olen)
		memcpy(m + 16, opt, olen);
	icmp_sum(m, 16 + olen, PEER_LL, ALL_NODES);
	return f6(f, PEER_LL, ALL_NODES, 58, 255, m, 16 + olen);
}

static uint32_t opt_slla(uint8_t *o)
{
	o[0] = 1; o[1] = 1;
	memcpy(o + 2, T_MAC_PEER, 6);
	return 8;
}

static uint32_t opt_mtu(uint8_t *o, uint32_t mtu)
{
	memset(o, 0, 8);
	o[0] = 5; o[1] = 1;
	wr32(o + 4, mtu);
	return 8;
}

static uint32_t opt_prefix(uint8_t *o, const uint8_t prefix[16], uint8_t len, uint8_t flags, uint32_t valid_s)
{
	memset(o, 0, 32);
	o[0] = 3; o[1] = 4; o[2] = len; o[3] = flags;
	wr32(o + 4, valid_s);
	wr32(o + 8, valid_s);
	memcpy(o + 16, prefix, 16);
	return 32;
}

/* The next hop the stack names for dst, or all 0xee when it has none. */
static const uint8_t *route_of(struct tenv *e, const uint8_t dst[16])
{
	static uint8_t nh[16];
	if (usnet_ip6_route(e->st, dst, nh) != 0)
		memset(nh, 0xee, 16);
	return nh;
}

/* Router Solicitations: none while the link-local address is tentative;
 * the first within a second of DAD's verdict, then two more 4 s apart
 * (MAX_RTR_SOLICITATIONS, RTR_SOLICITATION_INTERVAL), from the
 * link-local address to all routers with our link-layer address.  An RA
 * naming a router ends them (one before the first leaves the first); none with ip6_router_solicits 0, nor from an
 * instance that does not answer for the interface. */
int test_ip6_rs(void)
{
	struct usnet_stack_config cfg;
	ip6_cfg(&cfg, 1);
	struct tenv e; tenv_init(&e, &cfg);
	uint64_t rs_at[8], dad_done = 0, t0 = e.now;
	unsigned n = 0;
	for (uint64_t t = t0; t < t0 + 20 * SEC; t += 10 * MS) {
		tenv_advance(&e, t);
		if (!dad_done && usnet_ip6_addr(e.st, 0, NULL, NULL) == USNET_IP6_ADDR_PREFERRED)
			dad_done = t;
		struct tframe *fr;
		struct p6 p;
		while ((fr = tnif_next(e.nif))) {
			if (parse6(fr, &p) != 0 || p.type != 133)
				continue;
			CHECK(n < 8);
			rs_at[n++] = t;
			CHECK(dad_done && p.csum_ok && p.hlim == 255 && p.code == 0 && p.plen == 16);
			CHECK(memcmp(p.src, US_LL, 16) == 0 && memcmp(p.dst, ALL_ROUTERS, 16) == 0);
			static const uint8_t all_routers_mac[6] = { 0x33, 0x33, 0, 0, 0, 2 };
			CHECK(memcmp(p.eth_dst, all_routers_mac, 6) == 0);
			CHECK(rd32(p.l4 + 4) == 0 && p.l4[8] == 1 && p.l4[9] == 1 && memcmp(p.l4 + 10, T_MAC_US, 6) == 0);
		}
	}
	CHECKF(n == 3, "%u solicitations", n);
	CHECKF(rs_at[0] >= dad_done && rs_at[0] <= dad_done + 1 * SEC, "first %llu ms after DAD",
	       (unsigned long long)((rs_at[0] - dad_done) / MS));
	CHECK(rs_at[1] - rs_at[0] >= 3990 * MS && rs_at[1] - rs_at[0] <= 4010 * MS);
	CHECK(rs_at[2] - rs_at[1] >= 3990 * MS && rs_at[2] - rs_at[1] <= 4010 * MS);
	CHECK(stats(&e).nd_rs_tx == 3);
	tenv_fini(&e);

	/* Answered after the first: no more. */
	ip6_cfg(&cfg, 0);
	tenv_init(&e, &cfg);
	tenv_advance(&e, e.now + 1 * SEC);
	CHECK(count_icmp6(&e, 133) == 1);
	uint8_t f[200], o[64];
	tenv_input(&e, f, ra_frame(f, 0, 600, o, opt_slla(o)));
	tenv_advance(&e, e.now + 20 * SEC);
	CHECK(count_icmp6(&e, 133) == 0 && stats(&e).nd_rs_tx == 1);
	tenv_fini(&e);

	/* An RA before the first (while the address is tentative): the
	 * first goes all the same, as Linux's after DAD, and no more. */
	tenv_init(&e, &cfg);
	tenv_input(&e, f, ra_frame(f, 0, 600, o, opt_slla(o)));
	tenv_advance(&e, e.now + 20 * SEC);
	CHECK(count_icmp6(&e, 133) == 1 && stats(&e).nd_rs_tx == 1);
	tenv_fini(&e);

	/* An RA with Router Lifetime 0 names no router: they go on. */
	tenv_init(&e, &cfg);
	tenv_input(&e, f, ra_frame(f, 0, 0, o, opt_slla(o)));
	tenv_advance(&e, e.now + 20 * SEC);
	CHECK(count_icmp6(&e, 133) == 3);
	tenv_fini(&e);

	/* Not asked to. */
	cfg.ip6_router_solicits = 0;
	tenv_init(&e, &cfg);
	tenv_advance(&e, e.now + 20 * SEC);
	CHECK(count_icmp6(&e, 133) == 0);
	tenv_fini(&e);
	ip6_cfg(&cfg, 0);
	cfg.rss_queues = 2;
	cfg.rss_queue = 1;
	tenv_init(&e, &cfg);
	tenv_advance(&e, e.now + 20 * SEC);
	CHECK(count_icmp6(&e, 133) == 0);
	tenv_fini(&e);
	return 0;
}

/* The default router list: an RA makes its sender the next hop for what
 * is off-link (its link-layer address taken, no NS needed) until its
 * Router Lifetime ends or an RA with lifetime 0 says so; a configured
 * gateway wins.  Cur Hop Limit becomes the default hop limit. */
int test_ip6_ra_router(void)
{
	struct usnet_stack_config cfg;
	ip6_cfg(&cfg, 0);
	cfg.ip6_router_solicits = 0;
	struct tenv e; tenv_init(&e, &cfg);
	uint8_t f[200], o[64];
	struct p6 p;
	static const uint8_t none[16] = { 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee,
					  0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee };
	CHECK(memcmp(route_of(&e, REMOTE), none, 16) == 0);
	CHECK(memcmp(route_of(&e, PEER_GL), PEER_GL, 16) == 0);   /* on our prefix */
	tenv_input(&e, f, echo_frame(f, REMOTE, US_GL, 1));
	CHECK(tnif_next(e.nif) == NULL);   /* no way back */
	tenv_input(&e, f, ra_frame(f, 33, 30, o, opt_slla(o)));
	CHECK(tnif_next(e.nif) == NULL);
	CHECK(memcmp(route_of(&e, REMOTE), PEER_LL, 16) == 0);
	struct usnet_stack_stats s = stats(&e);
	CHECK(s.nd_ra_rx == 1 && s.nd_routers == 1 && s.nd_prefixes == 0);
	tenv_input(&e, f, echo_frame(f, REMOTE, US_GL, 2));
	CHECK(next_icmp6(&e, 129, &p) && p.csum_ok && memcmp(p.dst, REMOTE, 16) == 0);
	CHECK(memcmp(p.eth_dst, T_MAC_PEER, 6) == 0 && p.hlim == 33);
	CHECK(tnif_next(e.nif) == NULL);
	int u = usnet_socket(e.st, USNET_SOCK_DGRAM | USNET_SOCK_V6);
	int hops = 0;
	CHECK(u >= 0 && usnet_getsockopt(e.st, u, USNET_IPV6_UNICAST_HOPS, &hops) == 0 && hops == 33);
	usnet_close(e.st, &e.io, u, e.now);
	/* Lifetime 0: no longer a default router. */
	tenv_input(&e, f, ra_frame(f, 0, 0, o, opt_slla(o)));
	CHECK(memcmp(route_of(&e, REMOTE), none, 16) == 0 && stats(&e).nd_routers == 0);
	/* Listed again for 10 s, refreshed once: it lasts 10 s from then. */
	tenv_input(&e, f, ra_frame(f, 0, 10, o, opt_slla(o)));
	tenv_advance(&e, e.now + 5 * SEC);
	tenv_input(&e, f, ra_frame(f, 0, 10, o, 0));   /* no link-layer option this time */
	tenv_advance(&e, e.now + 9 * SEC);
	CHECK(memcmp(route_of(&e, REMOTE), PEER_LL, 16) == 0);
	tenv_advance(&e, e.now + 1 * SEC + 1);
	CHECK(memcmp(route_of(&e, REMOTE), none, 16) == 0 && stats(&e).nd_routers == 0);
	CHECK(usnet_stack_check(e.st, NULL, 0) == 0);
	tenv_fini(&e);

	/* A configured gateway wins over the routers learned. */
	static const uint8_t gw[16] = { 0xfe, 0x80, [15] = 0x77 };
	ip6_cfg(&cfg, 0);
	cfg.ip6_router_solicits = 0;
	memcpy(cfg.ip6_gateway, gw, 16);
	tenv_init(&e, &cfg);
	tenv_input(&e, f, ra_frame(f, 0, 600, o, opt_slla(o)));
	CHECK(memcmp(route_of(&e, REMOTE), gw, 16) == 0 && stats(&e).nd_routers == 1);
	tenv_fini(&e);
	return 0;
}

/* Prefix Information with L: on-link for its valid lifetime (0 ends it;
 * all ones is for good); without L, or the link-local prefix: nothing. */
int test_ip6_ra_prefix(void)
{
	struct usnet_stack_config cfg;
	ip6_cfg(&cfg, 0);
	cfg.ip6_router_solicits = 0;
	struct tenv e; tenv_init(&e, &cfg);
	static const uint8_t pfx5[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 5 }, in5[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 5, [15] = 7 };
	static const uint8_t pfx6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 6 }, in6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 6, [15] = 7 };
	static const uint8_t pfx7[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 7 }, in7[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 7, [15] = 7 };
	static const uint8_t ll[16] = { 0xfe, 0x80 };
	uint8_t f[300], o[160];
	uint32_t n = opt_prefix(o, pfx5, 64, 0x80, 20);
	n += opt_prefix(o + n, pfx6, 64, 0x40, 20);           /* A only: not on-link */
	n += opt_prefix(o + n, pfx7, 48, 0xc0, 0xffffffffu);  /* for good */
	n += opt_prefix(o + n, ll, 64, 0x80, 20);             /* the link-local prefix: ignored */
	tenv_input(&e, f, ra_frame(f, 0, 0, o, n));
	CHECK(memcmp(route_of(&e, in5), in5, 16) == 0);
	CHECK(usnet_ip6_route(e.st, in6, o) == -USNET_ENETUNREACH);
	CHECK(memcmp(route_of(&e, in7), in7, 16) == 0);
	CHECK(stats(&e).nd_prefixes == 2 && stats(&e).nd_routers == 0);
	/* On-link: the stack asks for the address itself. */
	tenv_input(&e, f, echo_frame(f, in5, US_GL, 1));
	struct p6 p;
	CHECK(next_icmp6(&e, 135, &p) && memcmp(p.l4 + 8, in5, 16) == 0);
	tnif_clear(e.nif);
	/* Valid lifetime 0: off-link at once. */
	tenv_input(&e, f, ra_frame(f, 0, 0, o, opt_prefix(o, pfx5, 64, 0x80, 0)));
	CHECK(usnet_ip6_route(e.st, in5, o) == -USNET_ENETUNREACH);
	tenv_input(&e, f, ra_frame(f, 0, 0, o, opt_prefix(o, pfx5, 64, 0x80, 20)));
	tenv_advance(&e, e.now + 19 * SEC);
	CHECK(memcmp(route_of(&e, in5), in5, 16) == 0);
	tenv_advance(&e, e.now + 2 * SEC);
	CHECK(usnet_ip6_route(e.st, in5, o) == -USNET_ENETUNREACH && stats(&e).nd_prefixes == 1);
	tenv_advance(&e, e.now + 100000 * SEC);
	CHECK(memcmp(route_of(&e, in7), in7, 16) == 0);
	CHECK(usnet_stack_check(e.st, NULL, 0) == 0);
	tenv_fini(&e);
	return 0;
}

/* The MTU option lowers the link's MTU for IPv6: the MSS of new
 * connections (1400 - 60), both ways, and of one made before; never below
 * 1280 (ignored), never above the configured MTU. */
int test_ip6_ra_mtu(void)
{
	struct usnet_stack_config cfg;
	ip6_cfg(&cfg, 0);
	cfg.ip6_router_solicits = 0;
	struct tenv e; tenv_init(&e, &cfg);
	learn_peer6(&e, PEER_GL, US_GL);
	int l = listener6(&e, 80, 0);
	CHECK(l >= 0);
	uint8_t f[400], o[16], mss[4] = { 2, 4, 0x05, 0xa0 };
	struct p6 p;
	tenv_input(&e, f, tcp6_frame(f, 39999, 80, 500, 0, 0x02, mss, 4, NULL, 0));
	CHECK(next_tcp6(&e, &p) && p.l4[13] == 0x12 && rd16(p.l4 + 22) == 1500 - 60);
	tenv_input(&e, f, tcp6_frame(f, 39999, 80, 501, rd32(p.l4 + 4) + 1, 0x10, NULL, 0, NULL, 0));
	int c0 = usnet_accept(e.st, &e.io, l, NULL, e.now);
	struct usnet_tcp_info ti;
	CHECK(c0 >= 0 && usnet_tcp_info(e.st, c0, &ti) == 0 && ti.snd_mss == 1440);
	tenv_input(&e, f, ra_frame(f, 0, 0, o, opt_mtu(o, 1400)));
	CHECK(usnet_tcp_info(e.st, c0, &ti) == 0 && ti.snd_mss == 1400 - 60);
	tenv_input(&e, f, tcp6_frame(f, 40000, 80, 1000, 0, 0x02, mss, 4, NULL, 0));
	CHECK(next_tcp6(&e, &p) && p.l4[13] == 0x12 && p.l4[20] == 2);
	CHECKF(rd16(p.l4 + 22) == 1400 - 60, "MSS %u", rd16(p.l4 + 22));
	int s = usnet_socket(e.st, USNET_SOCK_STREAM | USNET_SOCK_V6);
	struct usnet_addr to = { .port = 443, .family = USNET_AF_INET6 };
	memcpy(to.ip6, PEER_GL, 16);
	CHECK(usnet_connect(e.st, &e.io, s, &to, e.now) == -USNET_EINPROGRESS);
	CHECK(next_tcp6(&e, &p) && p.l4[13] == 0x02 && rd16(p.l4 + 22) == 1400 - 60);
	/* Below 1280: ignored.  Above ours: ours. */
	tenv_input(&e, f, ra_frame(f, 0, 0, o, opt_mtu(o, 1000)));
	tenv_input(&e, f, tcp6_frame(f, 40001, 80, 1000, 0, 0x02, mss, 4, NULL, 0));
	CHECK(next_tcp6(&e, &p) && p.l4[13] == 0x12 && rd16(p.l4 + 22) == 1400 - 60);
	tenv_input(&e, f, ra_frame(f, 0, 0, o, opt_mtu(o, 9000)));
	tenv_input(&e, f, tcp6_frame(f, 40002, 80, 1000, 0, 0x02, mss, 4, NULL, 0));
	CHECK(next_tcp6(&e, &p) && p.l4[13] == 0x12 && rd16(p.l4 + 22) == 1500 - 60);
	/* IPv4 keeps the configured MTU. */
	tenv_input(&e, f, ra_frame(f, 0, 0, o, opt_mtu(o, 1300)));
	int s4 = usnet_socket(e.st, USNET_SOCK_STREAM);
	struct usnet_addr to4 = { .ip = T_IP_PEER, .port = 443 };
	tenv_learn_peer(&e);
	CHECK(usnet_connect(e.st, &e.io, s4, &to4, e.now) == -USNET_EINPROGRESS);
	struct tpkt t;
	CHECK(t_next_tcp(&e, &t) && t.mss == 1460);
	CHECK(usnet_stack_check(e.st, NULL, 0) == 0);
	tenv_fini(&e);
	return 0;
}

/* ---- MLD: listener reports for the solicited-node groups -------------- */

/* 2001:db8:0:1::12:3456: a group of its own (US_LL and US_GL share
 * ff02::1:ff00:1). */
static const uint8_t US_GL2[16] = { 0x20, 0x01, 0x0d, 0xb8, [7] = 1, [13] = 0x12, 0x34, 0x56 };

static void mld_cfg(struct usnet_stack_config *cfg, int dad)
{
	ip6_cfg(cfg, dad);
	memcpy(cfg->ip6[1], US_GL2, 16);
	cfg->ip6_prefix_len[1] = 64;
	cfg->ip6_router_solicits = 0;   /* MLD's frames alone */
}

/* Addresses in use at once (no DAD) join their solicited-node groups at
 * the first poll: one report per group however many addresses share it,
 * CHANGE_TO_EXCLUDE with no sources, from the link-local address, sent
 * again within a second (Robustness 2), and nothing more after that. */
int test_mld6_reports(void)
{
	struct usnet_stack_config cfg;
	mld_cfg(&cfg, 0);
	struct tenv e; tenv_init(&e, &cfg);
	uint8_t ga[16], gb[16];
	sol_node(US_GL, ga);
	sol_node(US_GL2, gb);
	struct mld_rep r;
	for (int round = 0; round < 2; round++) {
		if (round == 0)
			tenv_poll(&e);
		else
			tenv_advance(&e, e.now + 1 * SEC);
		unsigned a = 0, b = 0;
		while (NEXT_MLD(&e, &r)) {
			CHECK(r.type == 143 && r.nrec == 1 && memcmp(r.src, US_LL, 16) == 0);
			a += mld_has(&r, 4, ga);
			b += mld_has(&r, 4, gb);
		}
		CHECKF(a == 1 && b == 1, "round %d: %u reports of ff02::1:ff00:1, %u of ff02::1:ff12:3456", round, a, b);
	}
	tenv_advance(&e, e.now + 300 * SEC);
	CHECK(NEXT_MLD(&e, &r) == 0);
	struct usnet_stack_stats s = stats(&e);
	CHECK(s.mld_tx == 4 && s.icmp6_tx == 4 && s.ip6_tx == 4);
	tenv_fini(&e);
	return 0;
}

/* With DAD, reports go from :: at the first probe; an address found
 * duplicate leaves its group (CHANGE_TO_INCLUDE, twice) unless another
 * address of ours still has it; later answers name only the groups kept,
 * from :: when the link-local address is the duplicate. */
int test_mld6_dad_leave(void)
{
	struct usnet_stack_config cfg;
	mld_cfg(&cfg, 1);
	struct tenv e; tenv_init(&e, &cfg);
	uint8_t ga[16], gb[16], f[200];
	sol_node(US_GL, ga);
	sol_node(US_GL2, gb);
	tenv_advance(&e, e.now + 1 * SEC);   /* every address probed once */
	struct mld_rep r;
	unsigned a = 0, b = 0;
	while (NEXT_MLD(&e, &r)) {
		CHECK(r.type == 143 && r.nrec == 1 && memcmp(r.src, UNSPEC, 16) == 0);
		a += mld_has(&r, 4, ga);
		b += mld_has(&r, 4, gb);
	}
	CHECK(a >= 1 && b >= 1);
	CHECK(usnet_ip6_addr(e.st, 0, NULL, NULL) == USNET_IP6_ADDR_TENTATIVE);
	/* US_GL2 is another node's (its NA), US_LL too (its probe): group B
	 * is left, A kept for US_GL. */
	tenv_input(&e, f, na_frame(f, PEER_GL, ALL_NODES, US_GL2, 0x20, T_MAC_PEER));
	tenv_input(&e, f, ns_frame(f, UNSPEC, ga, US_LL, 0, 255));
	CHECK(usnet_ip6_addr(e.st, 2, NULL, NULL) == USNET_IP6_ADDR_DUPLICATE);
	CHECK(usnet_ip6_addr(e.st, 0, NULL, NULL) == USNET_IP6_ADDR_DUPLICATE);
	tnif_clear(e.nif);
	unsigned left = 0;
	for (int round = 0; round < 2; round++) {
		if (round == 0)
			tenv_poll(&e);
		else
			tenv_advance(&e, e.now + 1 * SEC);
		while (NEXT_MLD(&e, &r)) {
			CHECK(!mld_has(&r, 4, gb) && !mld_has(&r, 3, ga));
			left += mld_has(&r, 3, gb);
		}
		CHECKF(left == (unsigned)round + 1, "round %d: %u reports leaving ff02::1:ff12:3456", round, left);
	}
	tenv_advance(&e, e.now + 3 * SEC);
	CHECK(usnet_ip6_addr(e.st, 1, NULL, NULL) == USNET_IP6_ADDR_PREFERRED);
	tnif_clear(e.nif);
	tenv_input(&e, f, mld_query(f, PEER_LL, ALL_NODES, 1, 1, UNSPEC, 1000, 28, 0));
	tenv_advance(&e, e.now + 1 * SEC);
	CHECK(NEXT_MLD(&e, &r) == 1 && r.nrec == 1 && mld_has(&r, 2, ga) && memcmp(r.src, UNSPEC, 16) == 0);
	CHECK(NEXT_MLD(&e, &r) == 0);
	tenv_fini(&e);
	return 0;
}

/* Queries are answered after a random delay within their Maximum
 * Response Delay: a general one (behind Hop-by-Hop, to all nodes) by one
 * report of every group, MODE_IS_EXCLUDE; a group-specific one (to the
 * group) by that group's record; a group-and-source-specific one the same
 * way; one about a group we are not in, not at all.  A Maximum Response
 * Code from 32768 up is a floating-point value (RFC 3810 5.1.3). */
int test_mld6_queries(void)
{
	struct usnet_stack_config cfg;
	mld_cfg(&cfg, 0);
	struct tenv e; tenv_init(&e, &cfg);
	uint8_t ga[16], gb[16], gx[16], f[200];
	sol_node(US_GL, ga);
	sol_node(US_GL2, gb);
	sol_node(PEER_GL, gx);
	tenv_advance(&e, e.now + 2 * SEC);   /* past the reports of the start */
	tnif_clear(e.nif);
	struct mld_rep r;
	tenv_input(&e, f, mld_query(f, PEER_LL, ALL_NODES, 1, 1, UNSPEC, 1000, 28, 0));
	tenv_advance(&e, e.now + 1 * SEC);
	CHECK(NEXT_MLD(&e, &r) == 1 && r.type == 143 && r.nrec == 2 && mld_has(&r, 2, ga) && mld_has(&r, 2, gb));
	CHECK(memcmp(r.src, US_LL, 16) == 0);
	CHECK(NEXT_MLD(&e, &r) == 0);
	tenv_input(&e, f, mld_query(f, PEER_LL, gb, 1, 1, gb, 500, 28, 0));
	tenv_advance(&e, e.now + 500 * MS);
	CHECK(NEXT_MLD(&e, &r) == 1 && r.nrec == 1 && mld_has(&r, 2, gb));
	CHECK(NEXT_MLD(&e, &r) == 0);
	tenv_input(&e, f, mld_query(f, PEER_LL, ga, 1, 1, ga, 500, 28 + 16, 1));
	tenv_advance(&e, e.now + 500 * MS);
	CHECK(NEXT_MLD(&e, &r) == 1 && r.nrec == 1 && mld_has(&r, 2, ga));
	CHECK(NEXT_MLD(&e, &r) == 0);
	/* About another group: to it (not even our MAC) or to all nodes. */
	tenv_input(&e, f, mld_query(f, PEER_LL, gx, 1, 1, gx, 500, 28, 0));
	tenv_input(&e, f, mld_query(f, PEER_LL, ALL_NODES, 1, 1, gx, 500, 28, 0));
	tenv_advance(&e, e.now + 2 * SEC);
	CHECK(NEXT_MLD(&e, &r) == 0);
	struct usnet_stack_stats s = stats(&e);
	CHECKF(s.mld_queries == 4 && s.mld_rx == 4 && s.mld_drop_invalid == 0, "queries %llu rx %llu invalid %llu",
	       (unsigned long long)s.mld_queries, (unsigned long long)s.mld_rx, (unsigned long long)s.mld_drop_invalid);
	/* 0xffff: (0x1fff << 10) ms, some 8389 s, not 65.5 s. */
	tenv_input(&e, f, mld_query(f, PEER_LL, ALL_NODES, 1, 1, UNSPEC, 0xffff, 28, 0));
	tenv_advance(&e, e.now + 66 * SEC);
	CHECK(NEXT_MLD(&e, &r) == 0);
	tenv_advance(&e, e.now + 8389 * SEC);
	CHECK(NEXT_MLD(&e, &r) == 1 && r.nrec == 2);
	CHECK(NEXT_MLD(&e, &r) == 0);
	tenv_fini(&e);
	return 0;
}

/* Queries RFC 3810 6.2 and 5.1 do not take are dropped and counted, and
 * get no answer: without Router Alert, without a Hop-by-Hop header, with
 * a hop limit other than 1, from an address not link-local, about an
 * address that is no group; of 20 or 26 bytes, or with sources past the
 * message; with a bad checksum. */
int test_mld6_invalid(void)
{
	struct usnet_stack_config cfg;
	mld_cfg(&cfg, 0);
	struct tenv e; tenv_init(&e, &cfg);
	tenv_advance(&e, e.now + 2 * SEC);
	tnif_clear(e.nif);
	uint8_t f[200];
	tenv_input(&e, f, mld_query(f, PEER_LL, ALL_NODES, 1, 0, UNSPEC, 100, 28, 0));
	tenv_input(&e, f, mld_query(f, PEER_LL, ALL_NODES, 255, 1, UNSPEC, 100, 28, 0));
	tenv_input(&e, f, mld_query(f, PEER_GL, ALL_NODES, 1, 1, UNSPEC, 100, 28, 0));
	tenv_input(&e, f, mld_query(f, PEER_LL, ALL_NODES, 1, 1, US_GL, 100, 28, 0));
	uint8_t m[28] = { 130 };
	wr16(m + 4, 100);
	icmp_sum(m, sizeof m, PEER_LL, ALL_NODES);
	tenv_input(&e, f, f6(f, PEER_LL, ALL_NODES, 58, 1, m, sizeof m));
	tenv_input(&e, f, mld_query(f, PEER_LL, ALL_NODES, 1, 1, UNSPEC, 100, 20, 0));
	tenv_input(&e, f, mld_query(f, PEER_LL, ALL_NODES, 1, 1, UNSPEC, 100, 26, 0));
	tenv_input(&e, f, mld_query(f, PEER_LL, ALL_NODES, 1, 1, UNSPEC, 100, 28, 2));
	uint32_t n = mld_query(f, PEER_LL, ALL_NODES, 1, 1, UNSPEC, 100, 28, 0);
	f[14 + 40 + 8 + 5] ^= 1;
	tenv_input(&e, f, n);
	tenv_advance(&e, e.now + 11 * SEC);
	struct mld_rep r;
	CHECK(NEXT_MLD(&e, &r) == 0);
	struct usnet_stack_stats s = stats(&e);
	CHECKF(s.mld_rx == 8 && s.mld_drop_invalid == 5 && s.mld_drop_len == 3 && s.mld_queries == 0,
	       "rx %llu invalid %llu len %llu queries %llu", (unsigned long long)s.mld_rx,
	       (unsigned long long)s.mld_drop_invalid, (unsigned long long)s.mld_drop_len,
	       (unsigned long long)s.mld_queries);
	CHECK(s.icmp6_drop_csum == 1);
	tenv_fini(&e);
	return 0;
}

/* An MLDv1 querier (a 24-byte query): answers are MLDv1 reports to each
 * group, and another listener's report for a group cancels ours (RFC
 * 2710 4); 260 s after the last MLDv1 query, MLDv2 again (RFC 3810
 * 8.2.1). */
int test_mld6_v1(void)
{
	struct usnet_stack_config cfg;
	mld_cfg(&cfg, 0);
	struct tenv e; tenv_init(&e, &cfg);
	uint8_t ga[16], gb[16], f[200];
	sol_node(US_GL, ga);
	sol_node(US_GL2, gb);
	tenv_advance(&e, e.now + 2 * SEC);
	tnif_clear(e.nif);
	struct mld_rep r;
	tenv_input(&e, f, mld_query(f, PEER_LL, ALL_NODES, 1, 1, UNSPEC, 1000, 24, 0));
	tenv_advance(&e, e.now + 1 * SEC);
	unsigned a = 0, b = 0;
	while (NEXT_MLD(&e, &r)) {
		CHECK(r.type == 131);
		a += mld_has(&r, 0, ga);
		b += mld_has(&r, 0, gb);
	}
	CHECK(a == 1 && b == 1);
	/* Another listener of ga reports first. */
	tenv_input(&e, f, mld_query(f, PEER_LL, ALL_NODES, 1, 1, UNSPEC, 1000, 24, 0));
	uint32_t n = mld_query(f, PEER_LL, ga, 1, 1, ga, 0, 24, 0);
	uint8_t *m = f + 14 + 40 + 8;
	m[0] = 131;
	icmp_sum(m, 24, PEER_LL, ga);
	tenv_input(&e, f, n);
	tenv_advance(&e, e.now + 1 * SEC);
	CHECK(NEXT_MLD(&e, &r) == 1 && r.type == 131 && mld_has(&r, 0, gb));
	CHECK(NEXT_MLD(&e, &r) == 0);
	tenv_advance(&e, e.now + 261 * SEC);
	tenv_input(&e, f, mld_query(f, PEER_LL, ALL_NODES, 1, 1, UNSPEC, 1000, 28, 0));
	tenv_advance(&e, e.now + 1 * SEC);
	CHECK(NEXT_MLD(&e, &r) == 1 && r.type == 143 && r.nrec == 2);
	CHECK(stats(&e).mld_queries == 3);
	tenv_fini(&e);
	return 0;
}

/* Of the instances serving the queues of one interface, queue 0's alone
 * reports the joins (as it alone probes); the others answer the queries
 * that reach them (a query reaches the one queue the device picks). */
int test_mld6_queues(void)
{
	struct usnet_stack_config cfg;
	mld_cfg(&cfg, 1);
	cfg.rss_queues = 2;
	cfg.rss_queue = 1;
	struct tenv e; tenv_init(&e, &cfg);
	uint8_t ga[16], gb[16], f[200];
	sol_node(US_GL, ga);
	sol_node(US_GL2, gb);
	tenv_advance(&e, e.now + 3 * SEC);
	CHECK(usnet_ip6_addr(e.st, 1, NULL, NULL) == USNET_IP6_ADDR_PREFERRED);
	CHECK(tnif_next(e.nif) == NULL);   /* neither probes nor reports */
	tenv_input(&e, f, mld_query(f, PEER_LL, ALL_NODES, 1, 1, UNSPEC, 1000, 28, 0));
	tenv_advance(&e, e.now + 1 * SEC);
	struct mld_rep r;
	CHECK(NEXT_MLD(&e, &r) == 1 && r.nrec == 2 && mld_has(&r, 2, ga) && mld_has(&r, 2, gb));
	CHECK(memcmp(r.src, US_LL, 16) == 0);
	CHECK(NEXT_MLD(&e, &r) == 0);
	tenv_fini(&e);
	return 0;
}

/* ---- IPv6 multicast for sockets (usnet_mc6_join) ----------------------- */

/* ff15::1:2 (scope 5, site-local) and ff02::1:2 (link-local scope). */
static const uint8_t G6[16] = { 0xff, 0x15, [13] = 1, [15] = 2 };
static const uint8_t G6L[16] = { 0xff, 0x02, [13] = 1, [15] = 2 };

static int udp6_sock(struct tenv *e, uint16_t port)
{
	int u = usnet_socket(e->st, USNET_SOCK_DGRAM | USNET_SOCK_V6);
	struct usnet_addr a = { .port = port, .family = USNET_AF_INET6 };
	return u >= 0 && usnet_setsockopt(e->st, u, USNET_SO_REUSEADDR, 1) == 0 && usnet_bind(e->st, u, &a) == 0 ? u : -1;
}

/* A datagram from the peer's link-local address to group:port. */
static uint32_t mc6_udp_frame(uint8_t *f, const uint8_t group[16], uint16_t dport, const char *data)
{
	uint8_t u[64];
	uint32_t n = 8 + (uint32_t)strlen(data);
	wr16(u, 4000); wr16(u + 2, dport); wr16(u + 4, (uint16_t)n); wr16(u + 6, 0);
	memcpy(u + 8, data, n - 8);
	wr16(u + 6, c6(PEER_LL, group, 17, u, n));
	return f6(f, PEER_LL, group, 17, 1, u, n);
}

/* Joins and leaves, and their errnos: the first join of a group sends an
 * MLDv2 CHANGE_TO_EXCLUDE({}) report and repeats it within a second, the
 * last leave CHANGE_TO_INCLUDE({}) twice, a close leaves as the last
 * leave does; a general query is answered with the sockets' groups beside
 * the solicited-node ones; all-nodes is joined but never reported. */
int test_mc6_join_leave(void)
{
	struct usnet_stack_config cfg;
	mld_cfg(&cfg, 0);
	struct tenv e; tenv_init(&e, &cfg);
	uint8_t ga[16], gb[16], f[200];
	sol_node(US_GL, ga);
	sol_node(US_GL2, gb);
	tenv_advance(&e, e.now + 2 * SEC);   /* past the reports of the start */
	tnif_clear(e.nif);
	int a = usnet_socket(e.st, USNET_SOCK_DGRAM | USNET_SOCK_V6), b = usnet_socket(e.st, USNET_SOCK_DGRAM | USNET_SOCK_V6);
	int t = usnet_socket(e.st, USNET_SOCK_STREAM | USNET_SOCK_V6), v4 = usnet_socket(e.st, USNET_SOCK_DGRAM);
	struct mld_rep r;
	CHECK(usnet_mc6_join(e.st, &e.io, t, G6, e.now) == -USNET_EPROTO);
	CHECK(usnet_mc6_join(e.st, &e.io, v4, G6, e.now) == -USNET_ENOPROTOOPT);
	CHECK(usnet_mc6_join(e.st, &e.io, a, US_GL, e.now) == -USNET_EINVAL);
	CHECK(usnet_mc6_leave(e.st, &e.io, a, G6, e.now) == -USNET_EADDRNOTAVAIL);
	CHECK(NEXT_MLD(&e, &r) == 0);
	CHECK(usnet_mc6_join(e.st, &e.io, a, G6, e.now) == 0 && usnet_mc6_joined(e.st, G6) == 1);
	CHECK(NEXT_MLD(&e, &r) == 1 && r.type == 143 && r.nrec == 1 && mld_has(&r, 4, G6) &&
	      memcmp(r.src, US_LL, 16) == 0 && memcmp(r.dst, MLD_V2_ROUTERS, 16) == 0);
	CHECK(usnet_mc6_join(e.st, &e.io, a, G6, e.now) == -USNET_EADDRINUSE);
	CHECK(usnet_mc6_join(e.st, &e.io, b, G6, e.now) == 0);   /* not the first: no report */
	CHECK(usnet_mc6_join(e.st, &e.io, b, ALL_NODES, e.now) == 0);   /* never reported */
	CHECK(NEXT_MLD(&e, &r) == 0);
	tenv_advance(&e, e.now + 1 * SEC);
	CHECK(NEXT_MLD(&e, &r) == 1 && r.nrec == 1 && mld_has(&r, 4, G6));
	tenv_advance(&e, e.now + 5 * SEC);
	CHECK(NEXT_MLD(&e, &r) == 0);
	uint8_t groups[4][16];
	CHECK(usnet_mc6_sock_groups(e.st, b, groups, 4) == 2 && memcmp(groups[0], G6, 16) == 0);
	CHECK(usnet_stack_check(e.st, NULL, 0) == 0);
	/* a general query: every group of the host, all-nodes never */
	tenv_input(&e, f, mld_query(f, PEER_LL, ALL_NODES, 1, 1, UNSPEC, 1000, 28, 0));
	tenv_advance(&e, e.now + 1 * SEC);
	CHECK(NEXT_MLD(&e, &r) == 1 && r.nrec == 3 && mld_has(&r, 2, ga) && mld_has(&r, 2, gb) && mld_has(&r, 2, G6));
	CHECK(NEXT_MLD(&e, &r) == 0);
	/* and one about G6 */
	tenv_input(&e, f, mld_query(f, PEER_LL, G6, 1, 1, G6, 500, 28, 0));
	tenv_advance(&e, e.now + 500 * MS);
	CHECK(NEXT_MLD(&e, &r) == 1 && r.nrec == 1 && mld_has(&r, 2, G6));
	/* the last leave: TO_IN, twice */
	CHECK(usnet_mc6_leave(e.st, &e.io, a, G6, e.now) == 0);
	CHECK(NEXT_MLD(&e, &r) == 0 && usnet_mc6_joined(e.st, G6) == 1);
	CHECK(usnet_mc6_leave(e.st, &e.io, b, G6, e.now) == 0 && usnet_mc6_joined(e.st, G6) == 0);
	CHECK(NEXT_MLD(&e, &r) == 1 && r.nrec == 1 && mld_has(&r, 3, G6));
	tenv_advance(&e, e.now + 1 * SEC);
	CHECK(NEXT_MLD(&e, &r) == 1 && r.nrec == 1 && mld_has(&r, 3, G6));
	tenv_advance(&e, e.now + 5 * SEC);
	CHECK(NEXT_MLD(&e, &r) == 0);
	CHECK(usnet_stack_check(e.st, NULL, 0) == 0);
	/* a close leaves: TO_IN at once */
	CHECK(usnet_mc6_join(e.st, &e.io, a, G6L, e.now) == 0);
	CHECK(NEXT_MLD(&e, &r) == 1 && mld_has(&r, 4, G6L));
	tenv_advance(&e, e.now + 2 * SEC);
	tnif_clear(e.nif);
	usnet_close(e.st, &e.io, a, e.now);
	CHECK(NEXT_MLD(&e, &r) == 1 && r.nrec == 1 && mld_has(&r, 3, G6L));
	CHECK(usnet_mc6_joined(e.st, G6L) == 0 && usnet_mc6_joined(e.st, ALL_NODES) == 1);
	usnet_close(e.st, &e.io, b, e.now);
	CHECK(usnet_mc6_joined(e.st, ALL_NODES) == 0);
	tenv_advance(&e, e.now + 5 * SEC);
	CHECK(usnet_stack_check(e.st, NULL, 0) == 0);
	struct usnet_stack_stats s = stats(&e);
	/* 4 at the start, 2 joins and 2 leaves of 2 each, 2 answers */
	CHECKF(s.mld_tx == 14, "mld_tx %llu", (unsigned long long)s.mld_tx);
	tenv_fini(&e);
	return 0;
}

/* A datagram to a group a socket joined goes to every IPv6 UDP socket on
 * its port bound to :: or to the group (members or not, as Linux with
 * IPV6_MULTICAST_ALL), not to one bound to another group, with the group
 * as its destination; to a group no socket joined, nowhere.  A UDP socket
 * may bind to a group (a TCP one may not), and sends from an address of
 * ours. */
int test_mc6_udp_delivery(void)
{
	struct usnet_stack_config cfg;
	mld_cfg(&cfg, 0);
	struct tenv e; tenv_init(&e, &cfg);
	int a = udp6_sock(&e, 5000), b = udp6_sock(&e, 5000), other = udp6_sock(&e, 5001);
	CHECK(a >= 0 && b >= 0 && other >= 0);
	int on_g = usnet_socket(e.st, USNET_SOCK_DGRAM | USNET_SOCK_V6), on_l = usnet_socket(e.st, USNET_SOCK_DGRAM | USNET_SOCK_V6);
	int t = usnet_socket(e.st, USNET_SOCK_STREAM | USNET_SOCK_V6);
	struct usnet_addr at = { .port = 5000, .family = USNET_AF_INET6 };
	memcpy(at.ip6, G6, 16);
	CHECK(usnet_setsockopt(e.st, on_g, USNET_SO_REUSEADDR, 1) == 0 && usnet_bind(e.st, on_g, &at) == 0);
	CHECK(usnet_bind(e.st, t, &at) == -USNET_EADDRNOTAVAIL);
	memcpy(at.ip6, G6L, 16);
	CHECK(usnet_setsockopt(e.st, on_l, USNET_SO_REUSEADDR, 1) == 0 && usnet_bind(e.st, on_l, &at) == 0);
	uint8_t f[200];
	char buf[32];
	tenv_input(&e, f, mc6_udp_frame(f, G6, 5000, "early"));   /* not joined yet */
	CHECK(usnet_recv(e.st, &e.io, a, buf, sizeof buf, 0, e.now) == -USNET_EAGAIN);
	CHECK(usnet_mc6_join(e.st, &e.io, a, G6, e.now) == 0);
	tenv_input(&e, f, mc6_udp_frame(f, G6, 5000, "hello"));
	struct usnet_addr to, from;
	CHECK(usnet_udp_next_dst(e.st, a, &to, NULL) == 0 && memcmp(to.ip6, G6, 16) == 0 && to.port == 5000);
	struct usnet_iovec iov = { buf, sizeof buf };
	CHECK(usnet_recvv(e.st, &e.io, a, &iov, 1, 0, &from, e.now) == 5 && memcmp(buf, "hello", 5) == 0);
	CHECK(from.family == USNET_AF_INET6 && memcmp(from.ip6, PEER_LL, 16) == 0 && from.port == 4000);
	CHECK(usnet_recv(e.st, &e.io, b, buf, sizeof buf, 0, e.now) == 5);
	CHECK(usnet_recv(e.st, &e.io, on_g, buf, sizeof buf, 0, e.now) == 5);
	CHECK(usnet_recv(e.st, &e.io, other, buf, sizeof buf, 0, e.now) == -USNET_EAGAIN);
	CHECK(usnet_recv(e.st, &e.io, on_l, buf, sizeof buf, 0, e.now) == -USNET_EAGAIN);
	tnif_clear(e.nif);
	struct usnet_iovec out = { (void *)"back", 4 };
	CHECK(usnet_setsockopt(e.st, on_g, USNET_IPV6_MULTICAST_LOOP, 0) == 0);   /* no copy to a, b, on_g */
	CHECK(usnet_sendv(e.st, &e.io, on_g, &out, 1, 0, &to, e.now) == 4);
	struct tframe *fr = tnif_next(e.nif);
	struct p6 p;
	CHECK(fr && parse6(fr, &p) == 0 && p.nh == 17 && memcmp(p.src, US_GL, 16) == 0 && memcmp(p.dst, G6, 16) == 0);
	struct usnet_stack_stats s = stats(&e);
	CHECK(s.udp_mcast_rx == 1 && s.icmp6_err_tx == 0);
	tenv_input(&e, f, mc6_udp_frame(f, G6, 5002, "nobody"));   /* no port: no error */
	CHECK(stats(&e).udp_no_port == 1 && stats(&e).icmp6_err_tx == 0);
	CHECK(usnet_stack_check(e.st, NULL, 0) == 0);
	tenv_fini(&e);
	return 0;
}

/* Sending to a group: its 33:33 MAC (the group's low 32 bits), hop limit
 * IPV6_MULTICAST_HOPS (1 by default, -1 sets it back, beyond 255
 * -USNET_EINVAL), from the address of the group's scope; a copy reaches
 * the stack's own members unless IPV6_MULTICAST_LOOP is 0; hop limit 0:
 * only that copy. */
int test_mc6_send(void)
{
	struct usnet_stack_config cfg;
	mld_cfg(&cfg, 0);
	struct tenv e; tenv_init(&e, &cfg);
	tenv_advance(&e, e.now + 2 * SEC);
	tnif_clear(e.nif);
	int tx = udp6_sock(&e, 4000), rx = udp6_sock(&e, 5000);
	int t = usnet_socket(e.st, USNET_SOCK_STREAM | USNET_SOCK_V6), v4 = usnet_socket(e.st, USNET_SOCK_DGRAM);
	CHECK(tx >= 0 && rx >= 0 && usnet_mc6_join(e.st, &e.io, rx, G6, e.now) == 0);
	tnif_clear(e.nif);
	int v = -2;
	CHECK(usnet_getsockopt(e.st, tx, USNET_IPV6_MULTICAST_HOPS, &v) == 0 && v == 1);
	CHECK(usnet_getsockopt(e.st, tx, USNET_IPV6_MULTICAST_LOOP, &v) == 0 && v == 1);
	CHECK(usnet_setsockopt(e.st, tx, USNET_IPV6_MULTICAST_HOPS, 256) == -USNET_EINVAL);
	CHECK(usnet_setsockopt(e.st, tx, USNET_IPV6_MULTICAST_HOPS, -2) == -USNET_EINVAL);
	CHECK(usnet_setsockopt(e.st, tx, USNET_IPV6_MULTICAST_LOOP, 2) == -USNET_EINVAL);
	CHECK(usnet_setsockopt(e.st, t, USNET_IPV6_MULTICAST_HOPS, 5) == -USNET_ENOPROTOOPT);
	CHECK(usnet_setsockopt(e.st, v4, USNET_IPV6_MULTICAST_HOPS, 5) == -USNET_ENOPROTOOPT);
	struct usnet_addr to = { .port = 5000, .family = USNET_AF_INET6 };
	memcpy(to.ip6, G6, 16);
	struct usnet_iovec out = { (void *)"ping", 4 };
	char buf[16];
	CHECK(usnet_sendv(e.st, &e.io, tx, &out, 1, 0, &to, e.now) == 4);
	struct tframe *fr = tnif_next(e.nif);
	struct p6 p;
	static const uint8_t mac[6] = { 0x33, 0x33, 0, 1, 0, 2 };
	CHECK(fr && parse6(fr, &p) == 0 && p.nh == 17 && memcmp(p.eth_dst, mac, 6) == 0 && p.hlim == 1);
	CHECK(memcmp(p.src, US_GL, 16) == 0 && memcmp(p.dst, G6, 16) == 0 && c6(p.src, p.dst, 17, p.l4, 12) == 0);
	tenv_poll(&e);
	CHECK(usnet_recv(e.st, &e.io, rx, buf, sizeof buf, 0, e.now) == 4 && memcmp(buf, "ping", 4) == 0);
	/* link-local scope: from the link-local address; hop limit 7 */
	CHECK(usnet_setsockopt(e.st, tx, USNET_IPV6_MULTICAST_HOPS, 7) == 0);
	memcpy(to.ip6, G6L, 16);
	CHECK(usnet_sendv(e.st, &e.io, tx, &out, 1, 0, &to, e.now) == 4);
	fr = tnif_next(e.nif);
	CHECK(fr && parse6(fr, &p) == 0 && p.hlim == 7 && memcmp(p.src, US_LL, 16) == 0 && p.eth_dst[5] == 2);
	CHECK(usnet_setsockopt(e.st, tx, USNET_IPV6_MULTICAST_HOPS, -1) == 0);
	CHECK(usnet_getsockopt(e.st, tx, USNET_IPV6_MULTICAST_HOPS, &v) == 0 && v == 1);
	/* no loop: the wire alone */
	memcpy(to.ip6, G6, 16);
	CHECK(usnet_setsockopt(e.st, tx, USNET_IPV6_MULTICAST_LOOP, 0) == 0);
	tnif_clear(e.nif);
	CHECK(usnet_sendv(e.st, &e.io, tx, &out, 1, 0, &to, e.now) == 4);
	CHECK(tnif_next(e.nif) != NULL);
	tenv_poll(&e);
	CHECK(usnet_recv(e.st, &e.io, rx, buf, sizeof buf, 0, e.now) == -USNET_EAGAIN);
	/* hop limit 0: the copy alone */
	CHECK(usnet_setsockopt(e.st, tx, USNET_IPV6_MULTICAST_LOOP, 1) == 0);
	CHECK(usnet_setsockopt(e.st, tx, USNET_IPV6_MULTICAST_HOPS, 0) == 0);
	tnif_clear(e.nif);
	CHECK(usnet_sendv(e.st, &e.io, tx, &out, 1, 0, &to, e.now) == 4);
	CHECK(tnif_next(e.nif) == NULL);
	tenv_poll(&e);
	CHECK(usnet_recv(e.st, &e.io, rx, buf, sizeof buf, 0, e.now) == 4);
	CHECK(usnet_stack_check(e.st, NULL, 0) == 0);
	tenv_fini(&e);
	return 0;
}
