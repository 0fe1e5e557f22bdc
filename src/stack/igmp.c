/*
 * IPv4 multicast as a host: the groups the instance's UDP sockets joined
 * (IP_ADD_MEMBERSHIP), and IGMP to tell the routers -- IGMPv3 (RFC 3376),
 * falling back to v2 (RFC 2236) or v1 (RFC 1112) for as long as an older
 * querier is heard (RFC 3376 7.2.1), as Linux does.
 *
 * State: a bounded table of the instance's groups (struct mc_group, the
 * host's membership: how many sockets joined, which reports are still to
 * go) and one of memberships (socket index, group), both in struct
 * usnet_stack, indices only.  The group 224.0.0.1 is never reported.
 *
 * Reports: the first join of a group sends a state-change report at once
 * and repeats it after a random delay (robustness 2, within 1 s for v3 and
 * 10 s for v2, Linux's unsolicited report intervals); the last leave sends
 * v3 TO_IN({}) reports the same way, a v2 leave to 224.0.0.2 once, nothing
 * in v1.  A query is answered after a random delay within its Max Resp
 * Time: a v3 general query by one current-state report of every group, a
 * group-specific one (or any query in v1/v2) per group; in v1/v2 another
 * member's report for the group cancels ours (RFC 2236 3).  A
 * group-and-source-specific v3 query is answered as a group-specific one
 * (the stack has no source filters: every group is EXCLUDE({})).
 * The IP header carries Router Alert, TTL 1, DS 0xc0 (as Linux's).
 */
#include "internal.h"
#include "wire_ipv4.h"
#include "wire_igmp.h"
#include "wire_eth.h"

#define IGMP_V3_UNSOLICITED_NS (1 * NS_PER_S)   /* Linux's igmp_v3_unsolicited_report_interval */
#define IGMP_V2_UNSOLICITED_NS (10 * NS_PER_S)  /* and igmp_v2_unsolicited_report_interval */
/* RFC 3376 8.12, Older Version Querier Present Timeout: robustness x
 * query interval (125 s) + query response interval (10 s). */
#define IGMP_OLDER_QUERIER_NS ((uint64_t)IGMP_ROBUSTNESS * 125 * NS_PER_S + 10 * NS_PER_S)
#define IGMP_IP_HLEN 24   /* with Router Alert (RFC 2113) */

static void mc_schedule(struct usnet_stack *st, uint64_t at)
{
	if (at < st->misc_at)
		st->misc_at = at;
}

/* SipHash of a counter under the instance's secret (the core has no other
 * source of randomness). */
uint64_t mc_random_delay(struct usnet_stack *st, uint64_t max_ns)
{
	if (max_ns == 0)
		return 0;
	uint64_t n = ++st->mc_rand;
	return siphash24(st->cfg.secret, &n, sizeof n) % max_ns;
}

static int igmp_version(const struct usnet_stack *st, uint64_t now)
{
	if (st->igmp_v1_until > now)
		return 1;
	if (st->igmp_v2_until > now)
		return 2;
	return 3;
}

/* The slot of group, a member or leaving, or NULL. */
static struct mc_group *mc_slot(struct usnet_stack *st, uint32_t group)
{
	for (uint32_t i = 0; i < MC_GROUPS; i++)
		if (st->mc_groups[i].addr == group)
			return &st->mc_groups[i];
	return NULL;
}

struct mc_group *mc_group_find(struct usnet_stack *st, uint32_t group)
{
	struct mc_group *g = group ? mc_slot(st, group) : NULL;
	return g && g->refs ? g : NULL;
}

int mc_host_member(struct usnet_stack *st, uint32_t group)
{
	return group == IGMP_ALL_HOSTS || mc_group_find(st, group) != NULL;
}

static struct mc_member *mc_entry(struct usnet_stack *st, int32_t i, uint32_t group)
{
	for (uint32_t k = 0; k < MC_MEMBERS; k++)
		if (st->mc_members[k].sock == i && st->mc_members[k].group == group)
			return &st->mc_members[k];
	return NULL;
}

static struct mc_member *mc_free_entry(struct usnet_stack *st)
{
	for (uint32_t k = 0; k < MC_MEMBERS; k++)
		if (st->mc_members[k].sock == NIL)
			return &st->mc_members[k];
	return NULL;
}

int mc_sock_member(struct usnet_stack *st, int32_t i, uint32_t group)
{
	return sk(st, i)->mc_n && mc_entry(st, i, group) != NULL;
}

/* ---- sending ------------------------------------------------------------ */

/* One IGMP message of len bytes (its checksum not yet set) to dst. */
static void igmp_send(struct net_ctx *c, uint32_t dst, uint8_t *msg, uint32_t len)
{
	struct usnet_stack *st = c->st;
	struct usnet_pkt *p = tx_get(c);
	if (!p) {
		st->stats.tx_no_buffer++;
		return;
	}
	wr16(msg + IGMP_CSUM, 0);
	wr16(msg + IGMP_CSUM, (uint16_t)~csum_fold(csum_add(0, msg, len)));
	uint8_t mac[6];
	ip4_multicast_mac(dst, mac);
	eth_write(p->data, mac, st->cfg.mac, ETHERTYPE_IPV4);
	uint8_t *ip = p->data + ETH_HLEN;
	ip[IP4_VHL] = 0x40 | IGMP_IP_HLEN / 4;
	ip[IP4_TOS] = 0xc0;
	wr16(ip + IP4_LEN, (uint16_t)(IGMP_IP_HLEN + len));
	wr16(ip + IP4_ID, 0);
	wr16(ip + IP4_FRAG, IP4_DF);
	ip[IP4_TTL] = 1;
	ip[IP4_PROTO] = IPPROTO_IGMP_;
	wr16(ip + IP4_CSUM, 0);
	wr32(ip + IP4_SRC, st->cfg.ip);
	wr32(ip + IP4_DST, dst);
	ip[20] = 0x94;   /* Router Alert: copied, option 20, length 4, value 0 */
	ip[21] = 4;
	ip[22] = ip[23] = 0;
	wr16(ip + IP4_CSUM, (uint16_t)~csum_fold(csum_add(0, ip, IGMP_IP_HLEN)));
	memcpy(ip + IGMP_IP_HLEN, msg, len);
	p->len = ETH_HLEN + IGMP_IP_HLEN + len;
	if (p->len < 60) {
		memset(p->data + p->len, 0, 60 - p->len);
		p->len = 60;
	}
	tx_put(c, p);
	st->stats.igmp_tx++;
}

/* A v1 or v2 report, or a v2 leave. */
static void igmp_send_v12(struct net_ctx *c, uint8_t type, uint32_t group)
{
	uint8_t m[IGMP_HLEN] = { type, 0, 0, 0 };
	wr32(m + IGMP_GROUP, group);
	igmp_send(c, type == IGMP_V2_LEAVE ? IGMP_ALL_ROUTERS : group, m, sizeof m);
}

/* v3 reports with one record of rtype per group (as many as fit a frame
 * in each). */
static void igmp_send_v3(struct net_ctx *c, uint8_t rtype, const uint32_t *groups, uint32_t n)
{
	uint8_t m[8 + 8 * MC_GROUPS];
	uint32_t fit = (c->st->cfg.mtu - IGMP_IP_HLEN - 8) / 8;
	if (fit > MC_GROUPS)
		fit = MC_GROUPS;
	for (uint32_t at = 0; at < n; at += fit) {
		uint32_t k = min_u32(fit, n - at);
		memset(m, 0, 8);
		m[IGMP_TYPE] = IGMP_V3_REPORT;
		wr16(m + 6, (uint16_t)k);
		for (uint32_t j = 0; j < k; j++) {
			uint8_t *r = m + 8 + 8 * j;
			r[0] = rtype;
			r[1] = 0;        /* aux data */
			wr16(r + 2, 0);  /* sources */
			wr32(r + 4, groups[at + j]);
		}
		igmp_send(c, IGMP_V3_ROUTERS, m, 8 + 8 * k);
	}
}

/* The state-change report of g that is due: a join's (refs > 0) or a
 * leave's, in the version the querier speaks.  Frees a left group's slot
 * after its last one. */
static void mc_report(struct net_ctx *c, struct mc_group *g)
{
	struct usnet_stack *st = c->st;
	int v = igmp_version(st, c->now);
	g->report_at = UINT64_MAX;
	if (g->refs == 0 && v < 3) {
		if (v == 2)
			igmp_send_v12(c, IGMP_V2_LEAVE, g->addr);
		g->addr = 0;   /* v1 has no leave message */
		return;
	}
	if (g->reports_left) {
		if (v == 3)
			igmp_send_v3(c, g->refs ? IGMP_TO_EXCLUDE : IGMP_TO_INCLUDE, &g->addr, 1);
		else
			igmp_send_v12(c, v == 2 ? IGMP_V2_REPORT : IGMP_V1_REPORT, g->addr);
		g->reports_left--;
	}
	if (g->reports_left) {
		g->report_at = c->now + mc_random_delay(st, v == 3 ? IGMP_V3_UNSOLICITED_NS : IGMP_V2_UNSOLICITED_NS);
		mc_schedule(st, g->report_at);
	} else if (g->refs == 0) {
		g->addr = 0;
	}
}

/* The answer to a query about g alone. */
static void mc_answer(struct net_ctx *c, struct mc_group *g)
{
	int v = igmp_version(c->st, c->now);
	g->answer_at = UINT64_MAX;
	if (v == 3)
		igmp_send_v3(c, IGMP_MODE_IS_EXCLUDE, &g->addr, 1);
	else
		igmp_send_v12(c, v == 2 ? IGMP_V2_REPORT : IGMP_V1_REPORT, g->addr);
}

uint64_t igmp_timers(struct net_ctx *c)
{
	struct usnet_stack *st = c->st;
	uint64_t next = UINT64_MAX;
	if (st->igmp_general_at <= c->now) {
		st->igmp_general_at = UINT64_MAX;
		int v = igmp_version(st, c->now);
		uint32_t all[MC_GROUPS], n = 0;
		for (uint32_t i = 0; i < MC_GROUPS; i++) {
			struct mc_group *g = &st->mc_groups[i];
			if (!g->addr || !g->refs || g->addr == IGMP_ALL_HOSTS)
				continue;
			if (v == 3)
				all[n++] = g->addr;
			else
				mc_answer(c, g);
		}
		if (n)
			igmp_send_v3(c, IGMP_MODE_IS_EXCLUDE, all, n);
	}
	next = st->igmp_general_at;
	for (uint32_t i = 0; i < MC_GROUPS; i++) {
		struct mc_group *g = &st->mc_groups[i];
		if (!g->addr)
			continue;
		if (g->report_at <= c->now)
			mc_report(c, g);
		if (g->addr && g->refs && g->answer_at <= c->now)
			mc_answer(c, g);
		if (!g->addr)
			continue;
		next = min_u64(next, min_u64(g->report_at, g->answer_at));
	}
	return next;
}

/* ---- receiving ---------------------------------------------------------- */

static void igmp_query(struct net_ctx *c, const struct igmp_view *v)
{
	struct usnet_stack *st = c->st;
	st->stats.igmp_queries++;
	if (v->version == 1)
		st->igmp_v1_until = c->now + IGMP_OLDER_QUERIER_NS;
	else if (v->version == 2)
		st->igmp_v2_until = c->now + IGMP_OLDER_QUERIER_NS;
	uint64_t max_ns = (uint64_t)v->max_resp_ds * 100 * NS_PER_MS;
	if (max_ns == 0)
		max_ns = NS_PER_MS;
	if (v->group == 0 && igmp_version(st, c->now) == 3) {
		uint64_t at = c->now + mc_random_delay(st, max_ns);
		if (at < st->igmp_general_at) {
			st->igmp_general_at = at;
			mc_schedule(st, at);
		}
		return;
	}
	for (uint32_t i = 0; i < MC_GROUPS; i++) {
		struct mc_group *g = &st->mc_groups[i];
		if (!g->addr || !g->refs || g->addr == IGMP_ALL_HOSTS || (v->group && g->addr != v->group))
			continue;
		uint64_t at = c->now + mc_random_delay(st, max_ns);
		if (at < g->answer_at) {
			g->answer_at = at;
			mc_schedule(st, at);
		}
	}
}

void igmp_input(struct net_ctx *c, uint32_t src, uint32_t dst, const uint8_t *p, uint32_t len)
{
	struct usnet_stack *st = c->st;
	(void)src;
	(void)dst;
	st->stats.igmp_rx++;
	struct igmp_view v;
	uint16_t sum = c->looping ? 0xffff : csum_fold(csum_add(0, p, len));
	switch (igmp_parse(p, len, sum, &v)) {
	case IGMP_OK: break;
	case IGMP_BAD_LEN: st->stats.igmp_drop_len++; return;
	case IGMP_BAD_CSUM: st->stats.igmp_drop_csum++; return;
	}
	if (v.type == IGMP_QUERY) {
		igmp_query(c, &v);
	} else if ((v.type == IGMP_V1_REPORT || v.type == IGMP_V2_REPORT) && igmp_version(st, c->now) < 3) {
		/* another member answered for the group: ours is not needed */
		struct mc_group *g = mc_group_find(st, v.group);
		if (g)
			g->answer_at = UINT64_MAX;
	}
	/* v3 reports and v2 leaves are for routers */
}

/* ---- memberships -------------------------------------------------------- */

/* The last member of g left: its leave reports start at `at` (a closing
 * socket's at 0: the next igmp_timers). */
static void mc_group_left(struct usnet_stack *st, struct mc_group *g, uint64_t at)
{
	g->answer_at = UINT64_MAX;
	if (g->addr == IGMP_ALL_HOSTS) {
		g->addr = 0;
		return;
	}
	g->reports_left = IGMP_ROBUSTNESS;
	g->report_at = at;
	mc_schedule(st, at);
}

void mc_sock_drop(struct usnet_stack *st, int32_t i)
{
	struct sock *s = sk(st, i);
	for (uint32_t k = 0; k < MC_MEMBERS && s->mc_n; k++) {
		struct mc_member *m = &st->mc_members[k];
		if (m->sock != i)
			continue;
		struct mc_group *g = mc_group_find(st, m->group);
		m->sock = NIL;
		s->mc_n--;
		if (g && --g->refs == 0)
			mc_group_left(st, g, 0);
	}
	s->mc_n = 0;
}

int usnet_mc_join(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t sd, uint32_t group, uint64_t now)
{
	struct sock *s;
	int r = sock_check(st, sd, &s);
	if (r < 0)
		return r;
	if (s->type != USNET_SOCK_DGRAM)
		return -USNET_EPROTO;
	if (!ip4_is_multicast(group))
		return -USNET_EINVAL;
	if (mc_sock_member(st, sd, group))
		return -USNET_EADDRINUSE;
	if (s->mc_n >= MC_SOCK_MAX)
		return -USNET_ENOBUFS;
	struct mc_member *m = mc_free_entry(st);
	struct mc_group *g = mc_slot(st, group);
	if (!g)
		g = mc_slot(st, 0);
	if (!m || !g)
		return -USNET_ENOBUFS;
	m->group = group;
	m->sock = sd;
	s->mc_n++;
	if (g->addr == group && g->refs) {
		g->refs++;
		return 0;
	}
	/* new, or rejoined while its leave was still being reported */
	g->refs = 1;
	g->answer_at = UINT64_MAX;
	g->reports_left = group == IGMP_ALL_HOSTS ? 0 : IGMP_ROBUSTNESS;
	g->report_at = g->reports_left ? now : UINT64_MAX;
	g->addr = group;
	if (g->reports_left) {
		struct net_ctx c;
		ctx_init(&c, st, io, now);
		mc_report(&c, g);
		ctx_flush(&c);
	}
	return 0;
}

int usnet_mc_leave(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t sd, uint32_t group, uint64_t now)
{
	struct sock *s;
	int r = sock_check(st, sd, &s);
	if (r < 0)
		return r;
	if (s->type != USNET_SOCK_DGRAM)
		return -USNET_EPROTO;
	struct mc_member *m = s->mc_n ? mc_entry(st, sd, group) : NULL;
	if (!m)
		return -USNET_EADDRNOTAVAIL;
	struct mc_group *g = mc_group_find(st, group);
	m->sock = NIL;
	s->mc_n--;
	if (g && --g->refs == 0) {
		mc_group_left(st, g, now);
		if (g->addr) {
			struct net_ctx c;
			ctx_init(&c, st, io, now);
			mc_report(&c, g);
			ctx_flush(&c);
		}
	}
	return 0;
}

int usnet_mc_joined(struct usnet_stack *st, uint32_t group)
{
	if (!st || st->magic != USNET_STACK_MAGIC)
		return 0;
	return mc_group_find(st, group) != NULL;
}

int usnet_mc_sock_groups(struct usnet_stack *st, usnet_sock_t sd, uint32_t *out, unsigned max)
{
	struct sock *s;
	int r = sock_check(st, sd, &s);
	if (r < 0)
		return r;
	unsigned n = 0;
	for (uint32_t k = 0; k < MC_MEMBERS; k++)
		if (st->mc_members[k].sock == sd) {
			if (n < max)
				out[n] = st->mc_members[k].group;
			n++;
		}
	return (int)n;
}
