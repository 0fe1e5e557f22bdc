/*
 * IPv6 multicast listener as a host: MLDv2 (RFC 3810), or MLDv1 (RFC 2710)
 * for as long as an MLDv1 querier is heard (RFC 3810 8.2.1), so that a
 * switch or bridge that snoops MLD forwards us what is sent to our groups:
 * above all the Neighbor Solicitations to the solicited-node groups of our
 * addresses, without which no neighbour finds us.
 *
 * Groups: the solicited-node group of each address of the stack's own
 * (the link-local one and the configured ones; never a shared address's,
 * which is the kernel's), one slot per group however many addresses share
 * it (struct mld6_group in struct usnet_stack, no pointers), and the
 * groups the instance's UDP sockets joined (IPV6_JOIN_GROUP,
 * usnet_mc6_join: how many sockets in refs, which socket in the table
 * mc6_members, as igmp.c keeps IPv4's).  A group is the host's while an
 * address or a socket has it; a socket's group is reported by the
 * instance the socket lives on, whatever its queue.  All-nodes (ff02::1)
 * and groups of interface-local scope (ff01::/16) are never reported
 * (RFC 3810 6; Linux's MAF_NOREPORT).  An address joins its group
 * just before its first DAD probe (RFC 4862 5.4.2: the report goes after
 * the probe's random delay, from ::), or at start when it needs no DAD;
 * one found duplicate leaves it, unless another address still has it.
 * Whether an address has joined is read from its state: a member is in
 * use, or tentative with a probe sent (mld6_join comes just before the
 * first).
 *
 * Reports, as igmp.c's: a join sends a state-change report
 * (CHANGE_TO_EXCLUDE, no sources) at once and repeats it after a random
 * delay within the Unsolicited Report Interval (1 s; Linux's 10 s in
 * MLDv1), Robustness (2) in all; a leave sends CHANGE_TO_INCLUDE the same
 * way, or in MLDv1 one Done to all routers.  Queries that pass the checks
 * of RFC 3810 6.2 (a link-local source, hop limit 1, Router Alert with
 * MLD's value; MLDv1 reports too, but from :: as well) are answered after
 * a random delay within their Maximum Response Delay: a general one by
 * one report of every group (MODE_IS_EXCLUDE), a group-specific one for a
 * group we are in by its record (in MLDv1 a report per group, cancelled
 * when another listener reports it first); a group-and-source-specific
 * one as a group-specific one (the stack has no source filters: every
 * group is EXCLUDE({})).
 *
 * Every message goes from the link-local address (:: while it is
 * tentative, or when the stack has none: RFC 3810 5.2.13), hop limit 1,
 * behind a Hop-by-Hop header with Router Alert 0 (RFC 2711).  Of the
 * instances serving one interface's queues, each keeps the groups and
 * answers the queries that reach it (a query reaches one queue, the one
 * the device picks), and queue 0's alone reports the joins and leaves
 * (as it alone sends the DAD probes).
 */
#include "internal.h"
#include "wire_eth.h"
#include "wire_ipv6.h"
#include "wire_mld6.h"

#define MLD6_V2_UNSOLICITED_NS (1 * NS_PER_S)    /* RFC 3810 9.11; Linux: mldv2_unsolicited_report_interval */
#define MLD6_V1_UNSOLICITED_NS (10 * NS_PER_S)   /* RFC 2710 7.10; Linux: mldv1_unsolicited_report_interval */
/* RFC 3810 9.12, Older Version Querier Present Timeout: robustness x
 * query interval (125 s) + query response interval (10 s). */
#define MLD6_OLDER_QUERIER_NS ((uint64_t)MLD6_ROBUSTNESS * 125 * NS_PER_S + 10 * NS_PER_S)
#define MLD6_HBH_LEN 8
/* A report holds this many records at most (a frame of the minimum MTU
 * holds more; a group slot is one each). */
#define MLD6_RECORDS_MAX MLD6_GROUPS

static const uint8_t MLD_ALL_ROUTERS[16] = { 0xff, 0x02, [15] = 0x02 };   /* MLDv1 Done */
static const uint8_t MLD_V2_ROUTERS[16] = { 0xff, 0x02, [15] = 0x16 };    /* MLDv2 reports */

static void mld6_schedule(struct usnet_stack *st, uint64_t at)
{
	if (at < st->misc_at)
		st->misc_at = at;
}

/* Queue 0's instance reports the joins and leaves (as nd6_answers). */
static int mld6_speaks(const struct usnet_stack *st)
{
	return st->cfg.rss_queues <= 1 || st->cfg.rss_queue == 0;
}

static int mld6_v1(const struct usnet_stack *st, uint64_t now)
{
	return st->mld6_v1_until > now;
}

/* Whether the host listens to g (an address or a socket has it); a slot
 * that does not, and is not free, is reporting its leave. */
static int listening(const struct mld6_group *g)
{
	return g->member || g->refs;
}

/* Whether group is ever reported (see the top). */
static int reportable(const uint8_t group[16])
{
	return !ip6_is_all_nodes(group) && (group[1] & 0x0f) >= 2;
}

/* Whether address a has joined its solicited-node group (see the top). */
static int addr_member(const struct ip6_addr_slot *a)
{
	return !a->shared && (a->state == USNET_IP6_ADDR_PREFERRED ||
			      (a->state == USNET_IP6_ADDR_TENTATIVE && a->dad_sent));
}

static struct mld6_group *mld6_slot(struct usnet_stack *st, const uint8_t group[16])
{
	for (uint32_t i = 0; i < MLD6_GROUPS; i++)
		if (ip6_eq(st->mld6_groups[i].addr, group))
			return &st->mld6_groups[i];
	return NULL;
}

static void mld6_free(struct mld6_group *g)
{
	memset(g, 0, sizeof(*g));
	g->report_at = g->answer_at = UINT64_MAX;
}

/* ---- sending ------------------------------------------------------------ */

/* One MLD message msg[0..len) (its checksum not yet set) to dst. */
static void mld6_send(struct net_ctx *c, const uint8_t dst[16], uint8_t *msg, uint32_t len)
{
	static const uint8_t hbh[MLD6_HBH_LEN] = {
		IP6_NH_ICMP6, 0,                  /* next header, length 8 */
		IP6_OPT_ROUTER_ALERT, 2, 0, IP6_RA_MLD,
		1, 0,                             /* PadN of 2 bytes */
	};
	struct usnet_stack *st = c->st;
	if (c->frame_size < ETH_HLEN + IP6_HLEN + MLD6_HBH_LEN + len)
		return;
	struct usnet_pkt *p = tx_get(c);
	if (!p) {
		st->stats.tx_no_buffer++;
		return;
	}
	uint8_t src[16] = { 0 };
	if (st->ip6[0].state == USNET_IP6_ADDR_PREFERRED)
		memcpy(src, st->ip6[0].addr, 16);
	wr16(msg + ICMP6_CSUM, 0);
	wr16(msg + ICMP6_CSUM, icmp6_checksum(msg, len, src, dst));
	uint8_t mac[6];
	ip6_mcast_mac(dst, mac);
	eth_write(p->data, mac, st->cfg.mac, ETHERTYPE_IPV6);
	uint8_t *ip = p->data + ETH_HLEN;
	ipv6_write(ip, src, dst, IP6_NH_HOPOPTS, (uint16_t)(MLD6_HBH_LEN + len), MLD_HOP_LIMIT);
	memcpy(ip + IP6_HLEN, hbh, MLD6_HBH_LEN);
	memcpy(ip + IP6_HLEN + MLD6_HBH_LEN, msg, len);
	p->len = ETH_HLEN + IP6_HLEN + MLD6_HBH_LEN + len;
	tx_put(c, p);
	st->stats.ip6_tx++;
	st->stats.icmp6_tx++;
	st->stats.mld_tx++;
}

/* An MLDv1 report (to the group) or Done (to all routers). */
static void mld6_send_v1(struct net_ctx *c, uint8_t type, const uint8_t group[16])
{
	uint8_t m[MLD_V1_LEN] = { type };
	memcpy(m + MLD_GROUP, group, 16);
	mld6_send(c, type == MLD_V1_DONE ? MLD_ALL_ROUTERS : group, m, sizeof m);
}

/* MLDv2 reports with one record of rtype for each of the n groups (as
 * many as fit the MTU in each). */
static void mld6_send_v2(struct net_ctx *c, uint8_t rtype, const struct mld6_group *const *groups, uint32_t n)
{
	uint8_t m[MLD_V2R_HLEN + MLD_V2R_RECORD * MLD6_RECORDS_MAX];
	uint32_t fit = (c->st->cfg.mtu - IP6_HLEN - MLD6_HBH_LEN - MLD_V2R_HLEN) / MLD_V2R_RECORD;
	if (fit > MLD6_RECORDS_MAX)
		fit = MLD6_RECORDS_MAX;
	for (uint32_t at = 0; at < n; at += fit) {
		uint32_t k = min_u32(fit, n - at);
		memset(m, 0, MLD_V2R_HLEN);
		m[ICMP6_TYPE] = MLD_V2_REPORT;
		wr16(m + MLD_V2R_NREC, (uint16_t)k);
		for (uint32_t j = 0; j < k; j++) {
			uint8_t *r = m + MLD_V2R_HLEN + MLD_V2R_RECORD * j;
			r[0] = rtype;
			r[1] = 0;        /* aux data */
			wr16(r + 2, 0);  /* sources */
			memcpy(r + 4, groups[at + j]->addr, 16);
		}
		mld6_send(c, MLD_V2_ROUTERS, m, MLD_V2R_HLEN + MLD_V2R_RECORD * k);
	}
}

/* The state-change report of g that is due: a join's (member) or a
 * leave's, in the version the querier speaks.  Frees a left group's slot
 * after its last one. */
static void mld6_report(struct net_ctx *c, struct mld6_group *g)
{
	struct usnet_stack *st = c->st;
	int v1 = mld6_v1(st, c->now);
	g->report_at = UINT64_MAX;
	if (!listening(g) && v1) {
		mld6_send_v1(c, MLD_V1_DONE, g->addr);
		mld6_free(g);
		return;
	}
	if (g->reports_left) {
		if (v1)
			mld6_send_v1(c, MLD_V1_REPORT, g->addr);
		else
			mld6_send_v2(c, listening(g) ? MLD_TO_EXCLUDE : MLD_TO_INCLUDE,
				     (const struct mld6_group *const[]){ g }, 1);
		g->reports_left--;
	}
	if (g->reports_left) {
		g->report_at = c->now + mc_random_delay(st, v1 ? MLD6_V1_UNSOLICITED_NS : MLD6_V2_UNSOLICITED_NS);
		mld6_schedule(st, g->report_at);
	} else if (!listening(g)) {
		mld6_free(g);
	}
}

/* The answer to a query about g alone. */
static void mld6_answer(struct net_ctx *c, struct mld6_group *g)
{
	g->answer_at = UINT64_MAX;
	if (mld6_v1(c->st, c->now))
		mld6_send_v1(c, MLD_V1_REPORT, g->addr);
	else
		mld6_send_v2(c, MLD_MODE_IS_EXCLUDE, (const struct mld6_group *const[]){ g }, 1);
}

uint64_t mld6_timers(struct net_ctx *c)
{
	struct usnet_stack *st = c->st;
	if (st->mld6_general_at <= c->now) {
		st->mld6_general_at = UINT64_MAX;
		const struct mld6_group *all[MLD6_GROUPS];
		uint32_t n = 0;
		int v1 = mld6_v1(st, c->now);
		for (uint32_t i = 0; i < MLD6_GROUPS; i++) {
			struct mld6_group *g = &st->mld6_groups[i];
			if (!listening(g) || !reportable(g->addr))
				continue;
			if (v1)
				mld6_answer(c, g);   /* an MLDv1 querier came in between */
			else
				all[n++] = g;
		}
		if (n)
			mld6_send_v2(c, MLD_MODE_IS_EXCLUDE, all, n);
	}
	uint64_t next = st->mld6_general_at;
	for (uint32_t i = 0; i < MLD6_GROUPS; i++) {
		struct mld6_group *g = &st->mld6_groups[i];
		if (ip6_is_unspecified(g->addr))
			continue;
		if (g->report_at <= c->now)
			mld6_report(c, g);
		if (listening(g) && g->answer_at <= c->now)
			mld6_answer(c, g);
		next = min_u64(next, min_u64(g->report_at, g->answer_at));
	}
	return next;
}

/* ---- receiving ---------------------------------------------------------- */

static void mld6_query(struct net_ctx *c, const struct mld_view *m)
{
	struct usnet_stack *st = c->st;
	st->stats.mld_queries++;
	if (m->version == 1)
		st->mld6_v1_until = c->now + MLD6_OLDER_QUERIER_NS;
	uint64_t max_ns = (uint64_t)m->max_resp_ms * NS_PER_MS;
	if (max_ns == 0)
		max_ns = NS_PER_MS;
	int general = ip6_is_unspecified(m->group);
	if (general && !mld6_v1(st, c->now)) {
		/* One answer for every group; one already due sooner
		 * stands (RFC 3810 6.2, rule 1). */
		uint64_t at = c->now + mc_random_delay(st, max_ns);
		if (at < st->mld6_general_at) {
			st->mld6_general_at = at;
			mld6_schedule(st, at);
		}
		return;
	}
	for (uint32_t i = 0; i < MLD6_GROUPS; i++) {
		struct mld6_group *g = &st->mld6_groups[i];
		if (!listening(g) || !reportable(g->addr) || (!general && !ip6_eq(g->addr, m->group)))
			continue;
		uint64_t at = c->now + mc_random_delay(st, max_ns);
		if (at < g->answer_at) {
			g->answer_at = at;
			mld6_schedule(st, at);
		}
	}
}

void mld6_input(struct net_ctx *c, const uint8_t *ip, const struct ipv6_view *v, const uint8_t *p,
		uint32_t len)
{
	struct usnet_stack *st = c->st;
	struct mld_view m;
	st->stats.mld_rx++;
	switch (mld_parse(p, len, &m)) {
	case MLDV_OK: break;
	case MLDV_LEN: st->stats.mld_drop_len++; return;
	case MLDV_GROUP: st->stats.mld_drop_invalid++; return;
	case MLDV_NOT_MLD: return;
	}
	/* RFC 3810 6.2 for queries (Linux checks the same); reports may come
	 * from :: during DAD (5.2.13). */
	int source_ok = ip6_is_link_local(v->src) || (m.type != MLD_QUERY && ip6_is_unspecified(v->src));
	if (!source_ok || v->hop_limit != MLD_HOP_LIMIT || ip6_router_alert(ip, IP6_HLEN + v->plen) != IP6_RA_MLD) {
		st->stats.mld_drop_invalid++;
		return;
	}
	if (m.type == MLD_QUERY) {
		mld6_query(c, &m);
	} else if (m.type == MLD_V1_REPORT && mld6_v1(st, c->now)) {
		/* another listener answered for the group: ours is not
		 * needed (RFC 2710 4) */
		struct mld6_group *g = mld6_slot(st, m.group);
		if (g && listening(g))
			g->answer_at = UINT64_MAX;
	}
	/* MLDv2 reports and Dones are for routers */
}

/* ---- membership --------------------------------------------------------- */

/* addr's group joined, its first report due at `at` (none but on queue
 * 0's instance); NULL when it was joined already (another address of ours
 * or a socket has it) or no slot is free. */
static struct mld6_group *mld6_group_join(struct usnet_stack *st, const uint8_t addr[16], uint64_t at)
{
	uint8_t group[16];
	ip6_solicited_node(addr, group);
	struct mld6_group *g = mld6_slot(st, group);
	if (g && listening(g)) {
		g->member = 1;   /* reported already */
		return NULL;
	}
	if (!g)   /* else rejoined while its leave was still being reported */
		g = mld6_slot(st, (const uint8_t[16]){ 0 });
	if (!g)
		return NULL;
	memcpy(g->addr, group, 16);
	g->member = 1;
	g->answer_at = UINT64_MAX;
	if (!mld6_speaks(st)) {
		g->reports_left = 0;
		g->report_at = UINT64_MAX;
		return g;
	}
	g->reports_left = MLD6_ROBUSTNESS;
	g->report_at = at;
	mld6_schedule(st, at);
	return g;
}

void mld6_init(struct usnet_stack *st)
{
	st->mld6_v1_until = 0;
	st->mld6_general_at = UINT64_MAX;
	for (uint32_t i = 0; i < MLD6_GROUPS; i++)
		mld6_free(&st->mld6_groups[i]);
	for (uint32_t i = 0; i < IP6_ADDRS; i++)
		if (!st->ip6[i].shared && st->ip6[i].state == USNET_IP6_ADDR_PREFERRED)
			mld6_group_join(st, st->ip6[i].addr, 0);
}

void mld6_join(struct net_ctx *c, const uint8_t addr[16])
{
	struct mld6_group *g = mld6_group_join(c->st, addr, c->now);
	if (g && g->reports_left)
		mld6_report(c, g);
}

void mld6_leave(struct usnet_stack *st, const uint8_t addr[16])
{
	uint8_t group[16];
	ip6_solicited_node(addr, group);
	struct mld6_group *g = mld6_slot(st, group);
	if (!g || !g->member)
		return;
	for (uint32_t i = 0; i < IP6_ADDRS; i++)
		if (addr_member(&st->ip6[i]) && memcmp(st->ip6[i].addr + 13, group + 13, 3) == 0)
			return;   /* another address of ours has it */
	if (g->refs) {   /* a socket has it: still the host's */
		g->member = 0;
		return;
	}
	if (!mld6_speaks(st)) {
		mld6_free(g);
		return;
	}
	g->member = 0;
	g->answer_at = UINT64_MAX;
	g->reports_left = MLD6_ROBUSTNESS;
	g->report_at = 0;   /* the next poll */
	mld6_schedule(st, 0);
}

/* ---- sockets' memberships ---------------------------------------------- */

static struct mc6_member *mc6_entry(struct usnet_stack *st, int32_t i, const uint8_t group[16])
{
	for (uint32_t k = 0; k < MC6_MEMBERS; k++)
		if (st->mc6_members[k].sock == i && ip6_eq(st->mc6_members[k].group, group))
			return &st->mc6_members[k];
	return NULL;
}

int mc6_sock_member(struct usnet_stack *st, int32_t i, const uint8_t group[16])
{
	return sk(st, i)->mc6_n && mc6_entry(st, i, group) != NULL;
}

int mc6_host_member(const struct usnet_stack *st, const uint8_t group[16])
{
	for (uint32_t i = 0; i < MLD6_GROUPS; i++)
		if (st->mld6_groups[i].refs && ip6_eq(st->mld6_groups[i].addr, group))
			return 1;
	return 0;
}

/* A slot for a group no socket nor address has: a free one, while fewer
 * than MLD6_SOCK_GROUPS are held by groups no address has (the rest are
 * the addresses'). */
static struct mld6_group *mc6_new_slot(struct usnet_stack *st)
{
	uint32_t held = 0;
	struct mld6_group *free = NULL;
	for (uint32_t i = 0; i < MLD6_GROUPS; i++) {
		struct mld6_group *g = &st->mld6_groups[i];
		if (ip6_is_unspecified(g->addr))
			free = free ? free : g;
		else if (!g->member)
			held++;
	}
	return held < MLD6_SOCK_GROUPS ? free : NULL;
}

/* The last socket left g, which no address has: its leave reports start
 * at `at` (a closing socket's at 0: the next mld6_timers). */
static void mc6_group_left(struct usnet_stack *st, struct mld6_group *g, uint64_t at)
{
	g->answer_at = UINT64_MAX;
	if (!reportable(g->addr)) {
		mld6_free(g);
		return;
	}
	g->reports_left = MLD6_ROBUSTNESS;
	g->report_at = at;
	mld6_schedule(st, at);
}

void mc6_sock_drop(struct usnet_stack *st, int32_t i)
{
	struct sock *s = sk(st, i);
	for (uint32_t k = 0; k < MC6_MEMBERS && s->mc6_n; k++) {
		struct mc6_member *m = &st->mc6_members[k];
		if (m->sock != i)
			continue;
		struct mld6_group *g = mld6_slot(st, m->group);
		m->sock = NIL;
		s->mc6_n--;
		if (g && g->refs && --g->refs == 0 && !g->member)
			mc6_group_left(st, g, 0);
	}
	s->mc6_n = 0;
}

/* What a join and a leave ask of the socket and the group: an IPv6
 * datagram socket, a multicast address. */
static int mc6_sock_check(struct usnet_stack *st, usnet_sock_t sd, const uint8_t group[16], struct sock **out)
{
	struct sock *s;
	int r = sock_check(st, sd, &s);
	if (r < 0)
		return r;
	if (s->type != USNET_SOCK_DGRAM)
		return -USNET_EPROTO;
	if (s->af != USNET_AF_INET6)
		return -USNET_ENOPROTOOPT;
	if (!ip6_is_multicast(group))
		return -USNET_EINVAL;
	*out = s;
	return 0;
}

int usnet_mc6_join(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t sd, const uint8_t group[16],
		   uint64_t now)
{
	struct sock *s;
	int r = mc6_sock_check(st, sd, group, &s);
	if (r < 0)
		return r;
	if (mc6_sock_member(st, sd, group))
		return -USNET_EADDRINUSE;
	if (s->mc6_n >= MC_SOCK_MAX)
		return -USNET_ENOBUFS;
	struct mc6_member *m = NULL;
	for (uint32_t k = 0; k < MC6_MEMBERS && !m; k++)
		if (st->mc6_members[k].sock == NIL)
			m = &st->mc6_members[k];
	struct mld6_group *g = mld6_slot(st, group);
	if (!g)
		g = mc6_new_slot(st);
	if (!m || !g)
		return -USNET_ENOBUFS;
	memcpy(m->group, group, 16);
	m->sock = sd;
	s->mc6_n++;
	if (listening(g)) {
		g->refs++;
		return 0;
	}
	/* new, or rejoined while its leave was still being reported */
	memcpy(g->addr, group, 16);
	g->refs = 1;
	g->answer_at = UINT64_MAX;
	g->reports_left = reportable(group) ? MLD6_ROBUSTNESS : 0;
	g->report_at = UINT64_MAX;
	if (g->reports_left) {
		struct net_ctx c;
		ctx_init(&c, st, io, now);
		mld6_report(&c, g);
		ctx_flush(&c);
	}
	return 0;
}

int usnet_mc6_leave(struct usnet_stack *st, struct usnet_io *io, usnet_sock_t sd, const uint8_t group[16],
		    uint64_t now)
{
	struct sock *s;
	int r = mc6_sock_check(st, sd, group, &s);
	if (r < 0)
		return r;
	struct mc6_member *m = s->mc6_n ? mc6_entry(st, sd, group) : NULL;
	if (!m)
		return -USNET_EADDRNOTAVAIL;
	struct mld6_group *g = mld6_slot(st, group);
	m->sock = NIL;
	s->mc6_n--;
	if (g && g->refs && --g->refs == 0 && !g->member) {
		mc6_group_left(st, g, now);
		if (g->reports_left) {
			struct net_ctx c;
			ctx_init(&c, st, io, now);
			mld6_report(&c, g);
			ctx_flush(&c);
		}
	}
	return 0;
}

int usnet_mc6_joined(struct usnet_stack *st, const uint8_t group[16])
{
	if (!st || st->magic != USNET_STACK_MAGIC)
		return 0;
	return mc6_host_member(st, group);
}

int usnet_mc6_sock_groups(struct usnet_stack *st, usnet_sock_t sd, uint8_t (*out)[16], unsigned max)
{
	struct sock *s;
	int r = sock_check(st, sd, &s);
	if (r < 0)
		return r;
	unsigned n = 0;
	for (uint32_t k = 0; k < MC6_MEMBERS; k++)
		if (st->mc6_members[k].sock == sd) {
			if (n < max)
				memcpy(out[n], st->mc6_members[k].group, 16);
			n++;
		}
	return (int)n;
}
