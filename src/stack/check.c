/*
 * usnet_stack_check(): every invariant of an instance, verified from the
 * facts up (for tests, debugging, and after usnet_stack_repair()).  It
 * changes nothing but the scratch bitmap (own.c), and trusts no link: each
 * walk is bounded and each index checked before it is followed.
 *
 * The invariants, holding whenever no call is inside the instance:
 *  - the socket table: the free list holds exactly the free sockets, once
 *    each; socks_used counts the others;
 *  - every chunk has exactly one holder or is on the free list, which
 *    chunks_free counts; each holder's counts (bytes, records, qlen,
 *    reassembly bytes) are what its chunks hold;
 *  - the connection table holds exactly the sockets flagged SF_HASHED, each
 *    in the bucket of its 4-tuple, once, no two with the same 4-tuple; a TCP
 *    socket is there exactly while its state is SYN_SENT..TIME_WAIT;
 *  - the port table holds exactly the sockets flagged SF_BOUND, each in its
 *    port's bucket, once; a listener is bound;
 *  - the timer heap holds each socket at most once, at heap_pos, in heap
 *    order; a socket with a deadline is there with a key no later than it;
 *  - a listener's accept queue holds its established children, in a list
 *    that ends at acc_tail, acc_count long; syn_count counts its children
 *    in SYN_RECEIVED; a child's parent is a listener;
 *  - a TCP connection's send sequence is ordered (snd_una <= snd_nxt <=
 *    snd_max) and what is in flight is in the send queue (plus SYN, FIN);
 *    its out-of-order records are sorted and apart;
 *  - a socket the user closed (an orphan) is a TCP connection finishing
 *    with a timer that will end it; TIME_WAIT has its timer; a connection
 *    with anything to send or resend (data in flight, a SYN or FIN not yet
 *    acknowledged) has its retransmission timer;
 *  - no sequence step is in progress (struct seq_journal);
 *  - ARP entries, neighbour entries with a timer, tentative IPv6
 *    addresses and reassembly slots in use have deadlines no earlier
 *    than misc_at, the time usnet_stack_poll() next looks at them; only
 *    an unresolved neighbour has frames waiting;
 *  - multicast: each membership names a UDP socket and a group the
 *    instance is a member of, once; a socket's mc_n and a group's refs
 *    count them; a group no socket holds is leaving (reports to send);
 *    no group twice; the IGMP deadlines are no earlier than misc_at;
 *  - IPv6 groups (MLD): solicited-node groups, each once, a left one
 *    with reports still to send, deadlines no earlier than misc_at.
 */
#include "internal.h"
#include "wire_ipv6.h"

struct why {
	char *buf;
	size_t len;
};

static size_t put_str(char *b, size_t at, size_t len, const char *s)
{
	while (*s && at + 1 < len)
		b[at++] = *s++;
	return at;
}

static size_t put_num(char *b, size_t at, size_t len, uint64_t v)
{
	char d[24];
	int n = 0;
	do {
		d[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n && at + 1 < len)
		b[at++] = d[--n];
	return at;
}

/* "WHAT A: DETAIL B" into the caller's buffer; returns -USNET_EIO. */
static int bad(struct why *w, const char *what, uint64_t a, const char *detail, uint64_t b)
{
	if (!w->buf || !w->len)
		return -USNET_EIO;
	size_t at = put_str(w->buf, 0, w->len, what);
	at = put_str(w->buf, at, w->len, " ");
	at = put_num(w->buf, at, w->len, a);
	at = put_str(w->buf, at, w->len, ": ");
	at = put_str(w->buf, at, w->len, detail);
	at = put_str(w->buf, at, w->len, " ");
	at = put_num(w->buf, at, w->len, b);
	w->buf[at] = 0;
	return -USNET_EIO;
}

static int tcp_hashed_state(uint8_t state)
{
	return state >= USNET_TCP_SYN_SENT && state <= USNET_TCP_TIME_WAIT;
}

/* Something is in flight, or a SYN or FIN is still to be acknowledged:
 * the retransmission slot (RTO, persist, a probe, a retry) must be set. */
int needs_rto(const struct sock *s)
{
	switch (s->state) {
	case USNET_TCP_SYN_SENT: case USNET_TCP_SYN_RECEIVED: case USNET_TCP_FIN_WAIT_1:
	case USNET_TCP_CLOSING: case USNET_TCP_LAST_ACK:
		return 1;
	case USNET_TCP_ESTABLISHED: case USNET_TCP_CLOSE_WAIT:
		return s->snd_una != s->snd_max;
	default:
		return 0;
	}
}

static void clear_seen(struct usnet_stack *st)
{
	/* The seen bits only: the chunk bits stay. */
	uint64_t *m = st_marks(st);
	for (uint32_t s = 0; s < st->nsocks; s++) {
		uint32_t bit = own_seen_bit(st, (int32_t)s);
		m[bit / 64] &= ~(1ull << (bit % 64));
	}
}

static int check_socket_lists(struct usnet_stack *st, struct why *w)
{
	struct sock *socks = st_socks(st);
	uint32_t used = 0, nfree = 0;
	for (uint32_t i = 0; i < st->nsocks; i++) {
		if (socks[i].type > USNET_SOCK_DGRAM)
			return bad(w, "socket", i, "type", socks[i].type);
		used += socks[i].type != 0;
	}
	if (used != st->socks_used)
		return bad(w, "socket table", used, "in use, socks_used", st->socks_used);
	clear_seen(st);
	for (int32_t i = st->sock_free; i != NIL; i = socks[i].pnext) {
		if (i < 0 || (uint32_t)i >= st->nsocks)
			return bad(w, "socket free list", nfree, "entry out of range", (uint32_t)i);
		if (socks[i].type != 0)
			return bad(w, "socket free list", nfree, "holds socket in use", (uint32_t)i);
		if (own_test(st, own_seen_bit(st, i)))
			return bad(w, "socket free list", nfree, "loops at", (uint32_t)i);
		own_set(st, own_seen_bit(st, i));
		nfree++;
	}
	if (nfree + used != st->nsocks)
		return bad(w, "socket free list", nfree, "entries, free sockets", st->nsocks - used);
	return 0;
}

/* The connection table (conn != 0) or the port table. */
static int check_table(struct usnet_stack *st, int conn, struct why *w)
{
	struct sock *socks = st_socks(st);
	uint32_t flag = conn ? SF_HASHED : SF_BOUND;
	uint32_t buckets = (conn ? st->conn_mask : st->port_mask) + 1;
	int32_t *heads = conn ? st_conn_hash(st) : st_port_hash(st);
	const char *name = conn ? "connection table bucket" : "port table bucket";
	uint32_t members = 0, flagged = 0;
	clear_seen(st);
	for (uint32_t b = 0; b < buckets; b++) {
		for (int32_t i = heads[b]; i != NIL; i = conn ? socks[i].hnext : socks[i].pnext) {
			if (i < 0 || (uint32_t)i >= st->nsocks)
				return bad(w, name, b, "entry out of range", (uint32_t)i);
			struct sock *s = &socks[i];
			if (s->type == 0 || !(s->flags & flag))
				return bad(w, name, b, "holds a socket not flagged for it", (uint32_t)i);
			if (own_test(st, own_seen_bit(st, i)))
				return bad(w, name, b, "holds twice, or loops at, socket", (uint32_t)i);
			own_set(st, own_seen_bit(st, i));
			uint32_t want = conn ? conn_hashfn(st, s->lip, s->lport, s->rip, s->rport) :
					       port_hashfn(st, s->lport);
			if (want != b)
				return bad(w, name, b, "holds a socket of another bucket", (uint32_t)i);
			if (s->net6 && (s->lip != ip6_fold(st_sock6(st)[i].laddr) ||
					s->rip != ip6_fold(st_sock6(st)[i].raddr)))
				return bad(w, name, b, "holds an IPv6 socket whose folded addresses are stale:", (uint32_t)i);
			if (conn && conn_lookup_sock(st, i) != i)
				return bad(w, name, b, "has two connections with the 4-tuple of", (uint32_t)i);
			members++;
		}
	}
	for (uint32_t i = 0; i < st->nsocks; i++)
		flagged += socks[i].type != 0 && (socks[i].flags & flag);
	if (members != flagged)
		return bad(w, name, buckets, "chains hold sockets, flagged", flagged);
	return 0;
}

static int check_heap(struct usnet_stack *st, struct why *w)
{
	struct sock *socks = st_socks(st);
	int32_t *heap = st_heap(st);
	if (st->heap_n > st->nsocks)
		return bad(w, "timer heap", st->heap_n, "entries, sockets", st->nsocks);
	for (uint32_t pos = 0; pos < st->heap_n; pos++) {
		int32_t i = heap[pos];
		if (i < 0 || (uint32_t)i >= st->nsocks || socks[i].type == 0)
			return bad(w, "timer heap position", pos, "holds no socket in use:", (uint32_t)i);
		if (socks[i].heap_pos != (int32_t)pos)
			return bad(w, "timer heap position", pos, "holds a socket placed elsewhere:", (uint32_t)i);
		if (pos && socks[heap[(pos - 1) / 2]].heap_at > socks[i].heap_at)
			return bad(w, "timer heap position", pos, "is earlier than its parent, socket", (uint32_t)i);
	}
	for (uint32_t i = 0; i < st->nsocks; i++) {
		struct sock *s = &socks[i];
		if (s->type == 0)
			continue;
		if (s->heap_pos != NIL && (s->heap_pos < 0 || (uint32_t)s->heap_pos >= st->heap_n ||
					   heap[s->heap_pos] != (int32_t)i))
			return bad(w, "socket", i, "names a heap position not its own:", (uint32_t)s->heap_pos);
		uint64_t d = sock_deadline(s);
		if (d != UINT64_MAX && (s->heap_pos == NIL || s->heap_at > d))
			return bad(w, "socket", i, "has a deadline the timer heap does not keep, heap position",
				   (uint32_t)s->heap_pos);
	}
	return 0;
}

/* The chunks of every holder, each once; then the free list. */
static int check_chunks(struct usnet_stack *st, struct why *w)
{
	struct sock *socks = st_socks(st);
	struct chunk *chunks = st_chunks(st);
	struct own_list o;
	own_clear(st);
	uint32_t held = 0;
	for (uint32_t i = 0; i < st->nsocks; i++) {
		struct sock *s = &socks[i];
		if (s->type == 0)
			continue;
		if (own_byteq(st, &s->sndq, &o) < 0)
			return bad(w, "socket", i, "send queue broken, head", (uint32_t)s->sndq.head);
		held += o.chunks;
		if (o.last != s->sndq.tail || o.bytes != s->sndq.bytes || (o.bytes == 0) != (o.chunks == 0))
			return bad(w, "socket", i, "send queue counts wrong, bytes", s->sndq.bytes);
		if (s->type == USNET_SOCK_DGRAM) {
			if (o.chunks)
				return bad(w, "socket", i, "UDP with a send queue, chunks", o.chunks);
			if (own_records(st, s->rcvq.head, REC_DGRAM, &o) < 0)
				return bad(w, "socket", i, "datagram queue broken, head", (uint32_t)s->rcvq.head);
			if (o.last != s->rcvq.tail || o.charge != s->rcvq.bytes)
				return bad(w, "socket", i, "datagram queue counts wrong, bytes", s->rcvq.bytes);
		} else {
			if (own_byteq(st, &s->rcvq, &o) < 0)
				return bad(w, "socket", i, "receive queue broken, head", (uint32_t)s->rcvq.head);
			if (o.last != s->rcvq.tail || o.bytes != s->rcvq.bytes || (o.bytes == 0) != (o.chunks == 0))
				return bad(w, "socket", i, "receive queue counts wrong, bytes", s->rcvq.bytes);
		}
		held += o.chunks;
		if (own_records(st, s->ooo, REC_SEGMENT, &o) < 0)
			return bad(w, "socket", i, "out-of-order records broken or unsorted, head", (uint32_t)s->ooo);
		if (o.records != s->ooo_n || o.bytes != s->ooo_bytes)
			return bad(w, "socket", i, "out-of-order counts wrong, records", s->ooo_n);
		held += o.chunks;
	}
	if (own_records(st, st->loop_head, REC_FRAME, &o) < 0 || o.last != st->loop_tail)
		return bad(w, "loop queue", 0, "broken, head", (uint32_t)st->loop_head);
	held += o.chunks;
	struct arp_entry *arp = st_arp(st);
	for (uint32_t i = 0; i < ARP_TABLE; i++) {
		struct arp_entry *e = &arp[i];
		if (e->state > ARP_PROBE)
			return bad(w, "ARP entry", i, "state", e->state);
		if (e->state == ARP_FREE) {
			if (e->queue != NIL)
				return bad(w, "ARP entry", i, "free with a queue, head", (uint32_t)e->queue);
			continue;
		}
		if (own_records(st, e->queue, REC_FRAME, &o) < 0 || o.records != e->qlen)
			return bad(w, "ARP entry", i, "queue broken or miscounted, qlen", e->qlen);
		held += o.chunks;
		if (e->state != ARP_REACHABLE && e->expires < st->misc_at)
			return bad(w, "ARP entry", i, "retry due before misc_at, at", e->expires);
	}
	struct nd6_entry *nd6 = st_nd6(st);
	for (uint32_t i = 0; i < ND6_TABLE; i++) {
		struct nd6_entry *e = &nd6[i];
		if (e->state > ND6_PROBE)
			return bad(w, "neighbour entry", i, "state", e->state);
		if (e->state == ND6_FREE) {
			if (e->queue != NIL)
				return bad(w, "neighbour entry", i, "free with a queue, head", (uint32_t)e->queue);
			continue;
		}
		if (own_records(st, e->queue, REC_FRAME, &o) < 0 || o.records != e->qlen)
			return bad(w, "neighbour entry", i, "queue broken or miscounted, qlen", e->qlen);
		if (e->qlen && e->state != ND6_INCOMPLETE)
			return bad(w, "neighbour entry", i, "resolved with frames waiting, state", e->state);
		held += o.chunks;
		if (e->state != ND6_STALE && e->expires < st->misc_at)
			return bad(w, "neighbour entry", i, "timer due before misc_at, at", e->expires);
	}
	for (uint32_t i = 0; i < IP6_ADDRS; i++)
		if (st->ip6[i].state == USNET_IP6_ADDR_TENTATIVE && st->ip6[i].dad_at < st->misc_at)
			return bad(w, "IPv6 address", i, "DAD due before misc_at, at", st->ip6[i].dad_at);
	uint32_t reasm_bytes = 0;
	for (uint32_t i = 0; i < REASM_SLOTS; i++) {
		struct reasm *r = &st->reasm[i];
		if (!r->used) {
			if (r->frags != NIL)
				return bad(w, "reassembly slot", i, "unused with fragments, head", (uint32_t)r->frags);
			continue;
		}
		if (own_records(st, r->frags, REC_FRAGMENT, &o) < 0)
			return bad(w, "reassembly slot", i, "fragments broken or overlapping, head", (uint32_t)r->frags);
		if (o.bytes != r->have || o.chunks * CHUNK_SIZE != r->truesize)
			return bad(w, "reassembly slot", i, "counts wrong, have", r->have);
		if (r->expires < st->misc_at)
			return bad(w, "reassembly slot", i, "expires before misc_at, at", r->expires);
		reasm_bytes += r->truesize;
		held += o.chunks;
	}
	for (uint32_t i = 0; i < REASM6_SLOTS; i++) {
		struct reasm6 *r = &st->reasm6[i];
		if (!r->used || r->dead) {
			if (r->frags != NIL || r->truesize)
				return bad(w, "IPv6 reassembly slot", i, "unused or dead with fragments, head",
					   (uint32_t)r->frags);
			if (r->used && r->expires < st->misc_at)
				return bad(w, "IPv6 reassembly slot", i, "expires before misc_at, at", r->expires);
			continue;
		}
		if (own_records(st, r->frags, REC_FRAGMENT, &o) < 0)
			return bad(w, "IPv6 reassembly slot", i, "fragments broken or overlapping, head",
				   (uint32_t)r->frags);
		if (o.bytes != r->have || o.chunks * CHUNK_SIZE != r->truesize)
			return bad(w, "IPv6 reassembly slot", i, "counts wrong, have", r->have);
		if (r->total && (r->have >= r->total || frag_list_end(st, r->frags) > r->total))
			return bad(w, "IPv6 reassembly slot", i, "fragments past its length or whole, total", r->total);
		if (r->expires < st->misc_at)
			return bad(w, "IPv6 reassembly slot", i, "expires before misc_at, at", r->expires);
		reasm_bytes += r->truesize;
		held += o.chunks;
	}
	if (reasm_bytes != st->reasm_bytes)
		return bad(w, "reassembly", reasm_bytes, "bytes held, reasm_bytes", st->reasm_bytes);
	for (uint32_t i = 0; i < PMTU6_TABLE; i++) {
		const struct pmtu6 *e = &st->pmtu6[i];
		if (e->mtu && (e->mtu < IP6_MIN_MTU || e->mtu >= st->cfg.mtu))
			return bad(w, "path MTU entry", i, "MTU out of range", e->mtu);
	}
	uint32_t nfree = 0;
	for (int32_t c = st->chunk_free; c != NIL; c = chunks[c].next) {
		if (c < 0 || (uint32_t)c >= st->nchunks)
			return bad(w, "chunk free list", nfree, "entry out of range", (uint32_t)c);
		if (own_test(st, (uint32_t)c))
			return bad(w, "chunk free list", nfree, "holds a chunk in use, or loops at", (uint32_t)c);
		own_set(st, (uint32_t)c);
		nfree++;
	}
	if (nfree != st->chunks_free)
		return bad(w, "chunk free list", nfree, "entries, chunks_free", st->chunks_free);
	if (held + nfree != st->nchunks)
		return bad(w, "buffer pool", held, "chunks held, lost", st->nchunks - held - nfree);
	return 0;
}

static int check_tcp(struct usnet_stack *st, int32_t i, struct why *w)
{
	struct sock *socks = st_socks(st), *s = &socks[i];
	if (s->state > USNET_TCP_TIME_WAIT)
		return bad(w, "socket", (uint32_t)i, "state", s->state);
	if (!!(s->flags & SF_HASHED) != tcp_hashed_state(s->state))
		return bad(w, "socket", (uint32_t)i, "in the connection table or not against its state", s->state);
	if (s->state == USNET_TCP_LISTEN) {
		if (!(s->flags & SF_BOUND) || s->parent != NIL || (s->flags & SF_ORPHAN))
			return bad(w, "listener", (uint32_t)i, "unbound, orphaned or a child, flags", s->flags);
		/* Its accept queue, and its children. */
		clear_seen(st);
		uint32_t n = 0;
		int32_t last = NIL;
		for (int32_t c = s->acc_head; c != NIL; c = socks[c].acc_next) {
			if (c < 0 || (uint32_t)c >= st->nsocks || own_test(st, own_seen_bit(st, c)))
				return bad(w, "listener", (uint32_t)i, "accept queue broken at", (uint32_t)c);
			own_set(st, own_seen_bit(st, c));
			if (socks[c].type != USNET_SOCK_STREAM || socks[c].parent != i ||
			    socks[c].state < USNET_TCP_ESTABLISHED)
				return bad(w, "listener", (uint32_t)i, "accept queue holds a stranger:", (uint32_t)c);
			last = c;
			n++;
		}
		if (n != s->acc_count || last != s->acc_tail)
			return bad(w, "listener", (uint32_t)i, "accept queue miscounted, acc_count", s->acc_count);
		uint32_t syn = 0;
		for (uint32_t c = 0; c < st->nsocks; c++) {
			struct sock *ch = &socks[c];
			if (ch->type != USNET_SOCK_STREAM || ch->parent != i)
				continue;
			if (ch->state == USNET_TCP_SYN_RECEIVED)
				syn++;
			else if (!own_test(st, own_seen_bit(st, (int32_t)c)))
				return bad(w, "listener", (uint32_t)i, "has an established child outside its queue:", c);
		}
		if (syn != s->syn_count)
			return bad(w, "listener", (uint32_t)i, "syn_count wrong, children in SYN_RECEIVED", syn);
		return 0;
	}
	if (s->acc_head != NIL || s->acc_count || s->syn_count)
		return bad(w, "socket", (uint32_t)i, "has an accept queue but does not listen, state", s->state);
	if (s->parent != NIL) {
		if (s->parent < 0 || (uint32_t)s->parent >= st->nsocks || socks[s->parent].type != USNET_SOCK_STREAM ||
		    socks[s->parent].state != USNET_TCP_LISTEN)
			return bad(w, "socket", (uint32_t)i, "is the child of no listener:", (uint32_t)s->parent);
		if (s->flags & SF_ORPHAN)
			return bad(w, "socket", (uint32_t)i, "an unaccepted orphan, flags", s->flags);
	}
	uint64_t d = sock_deadline(s);
	if (s->flags & SF_ORPHAN) {
		if (s->state < USNET_TCP_FIN_WAIT_1 || s->state == USNET_TCP_CLOSE_WAIT)
			return bad(w, "orphan", (uint32_t)i, "in state", s->state);
		if (d == UINT64_MAX ||
		    (s->state == USNET_TCP_FIN_WAIT_2 && s->timer_at[TMR_KEEP] == UINT64_MAX))
			return bad(w, "orphan", (uint32_t)i, "without a timer to end it, state", s->state);
	}
	if (s->state == USNET_TCP_TIME_WAIT && s->timer_at[TMR_KEEP] == UINT64_MAX)
		return bad(w, "socket", (uint32_t)i, "in TIME_WAIT without its timer, state", s->state);
	if (s->state >= USNET_TCP_SYN_SENT && s->state <= USNET_TCP_LAST_ACK) {
		if (!seq_le(s->snd_una, s->snd_nxt) || !seq_le(s->snd_nxt, s->snd_max))
			return bad(w, "socket", (uint32_t)i, "send sequence out of order, snd_nxt - snd_una",
				   s->snd_nxt - s->snd_una);
		if (s->snd_max - s->snd_una > s->sndq.bytes + 2)
			return bad(w, "socket", (uint32_t)i, "sent more than its send queue holds, in flight",
				   s->snd_max - s->snd_una);
		if (needs_rto(s) && s->timer_at[TMR_RTO] == UINT64_MAX)
			return bad(w, "socket", (uint32_t)i, "has something to send or resend and no timer, state",
				   s->state);
	}
	return 0;
}

static int check_multicast(struct usnet_stack *st, struct why *w)
{
	if (st->igmp_general_at < st->misc_at)
		return bad(w, "IGMP general answer", 0, "due before misc_at, at", st->igmp_general_at);
	for (uint32_t i = 0; i < MC_GROUPS; i++) {
		const struct mc_group *g = &st->mc_groups[i];
		if (!g->addr)
			continue;
		if ((g->addr >> 28) != 0xe)
			return bad(w, "multicast group", i, "not a multicast address", g->addr);
		for (uint32_t j = i + 1; j < MC_GROUPS; j++)
			if (st->mc_groups[j].addr == g->addr)
				return bad(w, "multicast group", i, "also in slot", j);
		if (!g->refs && !g->reports_left)
			return bad(w, "multicast group", i, "left with no report to send", g->addr);
		if (g->report_at < st->misc_at || g->answer_at < st->misc_at)
			return bad(w, "multicast group", i, "report due before misc_at", g->addr);
		uint32_t n = 0;
		for (uint32_t k = 0; k < MC_MEMBERS; k++)
			if (st->mc_members[k].sock != NIL && st->mc_members[k].group == g->addr)
				n++;
		if (n != g->refs)
			return bad(w, "multicast group", i, "memberships, refs", g->refs);
	}
	for (uint32_t k = 0; k < MC_MEMBERS; k++) {
		const struct mc_member *m = &st->mc_members[k];
		if (m->sock == NIL)
			continue;
		if (m->sock < 0 || (uint32_t)m->sock >= st->nsocks || sk(st, m->sock)->type != USNET_SOCK_DGRAM)
			return bad(w, "multicast membership", k, "names no UDP socket:", (uint32_t)m->sock);
		if (!mc_group_find(st, m->group))
			return bad(w, "multicast membership", k, "of a group the instance left", m->group);
		for (uint32_t j = k + 1; j < MC_MEMBERS; j++)
			if (st->mc_members[j].sock == m->sock && st->mc_members[j].group == m->group)
				return bad(w, "multicast membership", k, "also in entry", j);
	}
	struct sock *socks = st_socks(st);
	for (uint32_t i = 0; i < st->nsocks; i++) {
		if (!socks[i].type || !socks[i].mc_n)   /* a free socket's fields mean nothing */
			continue;
		uint32_t n = 0;
		for (uint32_t k = 0; k < MC_MEMBERS; k++)
			if (st->mc_members[k].sock == (int32_t)i)
				n++;
		if (n != socks[i].mc_n || socks[i].type != USNET_SOCK_DGRAM)
			return bad(w, "socket", i, "memberships miscounted, mc_n", socks[i].mc_n);
	}
	return 0;
}

/* The IPv6 groups (mld6.c): groups, each once; solicited-node ones or
 * sockets' (refs: the memberships naming them); one no address nor
 * socket has is leaving (reports to send); deadlines no earlier than
 * misc_at; every membership names a UDP socket (each socket's count
 * right) and a group with members. */
static int check_mld6(struct usnet_stack *st, struct why *w)
{
	if (st->mld6_general_at < st->misc_at)
		return bad(w, "MLD general answer", 0, "due before misc_at, at", st->mld6_general_at);
	for (uint32_t i = 0; i < MLD6_GROUPS; i++) {
		const struct mld6_group *g = &st->mld6_groups[i];
		if (ip6_is_unspecified(g->addr))
			continue;
		if (!ip6_is_multicast(g->addr) || (g->member && !ip6_is_solicited_node(g->addr)))
			return bad(w, "IPv6 group", i, "not a solicited-node group, its last byte", g->addr[15]);
		for (uint32_t j = i + 1; j < MLD6_GROUPS; j++)
			if (ip6_eq(st->mld6_groups[j].addr, g->addr))
				return bad(w, "IPv6 group", i, "also in slot", j);
		uint32_t n = 0;
		for (uint32_t k = 0; k < MC6_MEMBERS; k++)
			n += st->mc6_members[k].sock != NIL && ip6_eq(st->mc6_members[k].group, g->addr);
		if (n != g->refs)
			return bad(w, "IPv6 group", i, "memberships, refs", g->refs);
		if (!g->member && !g->refs && !g->reports_left)
			return bad(w, "IPv6 group", i, "left with no report to send, its last byte", g->addr[15]);
		if (g->report_at < st->misc_at || g->answer_at < st->misc_at)
			return bad(w, "IPv6 group", i, "report due before misc_at, its last byte", g->addr[15]);
	}
	for (uint32_t k = 0; k < MC6_MEMBERS; k++) {
		const struct mc6_member *m = &st->mc6_members[k];
		if (m->sock == NIL)
			continue;
		if (m->sock < 0 || (uint32_t)m->sock >= st->nsocks || sk(st, m->sock)->type != USNET_SOCK_DGRAM)
			return bad(w, "IPv6 membership", k, "names no UDP socket:", (uint32_t)m->sock);
		if (!mc6_host_member(st, m->group))
			return bad(w, "IPv6 membership", k, "of a group the instance left, its last byte", m->group[15]);
		for (uint32_t j = k + 1; j < MC6_MEMBERS; j++)
			if (st->mc6_members[j].sock == m->sock && ip6_eq(st->mc6_members[j].group, m->group))
				return bad(w, "IPv6 membership", k, "also in entry", j);
	}
	struct sock *socks = st_socks(st);
	for (uint32_t i = 0; i < st->nsocks; i++) {
		if (!socks[i].type || !socks[i].mc6_n)
			continue;
		uint32_t n = 0;
		for (uint32_t k = 0; k < MC6_MEMBERS; k++)
			n += st->mc6_members[k].sock == (int32_t)i;
		if (n != socks[i].mc6_n || socks[i].type != USNET_SOCK_DGRAM)
			return bad(w, "socket", i, "IPv6 memberships miscounted, mc6_n", socks[i].mc6_n);
	}
	return 0;
}

int usnet_stack_check(struct usnet_stack *st, char *why, size_t len)
{
	struct why w = { why, len };
	if (why && len)
		why[0] = 0;
	if (!st || st->magic != USNET_STACK_MAGIC)
		return bad(&w, "instance", 0, "bad magic", st ? st->magic : 0);
	if (st->journal.sock != NIL)
		return bad(&w, "journal", 0, "names a sequence step in progress, socket", (uint32_t)st->journal.sock);
	int r;
	if ((r = check_socket_lists(st, &w)) < 0 || (r = check_chunks(st, &w)) < 0 ||
	    (r = check_table(st, 1, &w)) < 0 || (r = check_table(st, 0, &w)) < 0 || (r = check_heap(st, &w)) < 0 ||
	    (r = check_multicast(st, &w)) < 0 || (r = check_mld6(st, &w)) < 0)
		return r;
	struct sock *socks = st_socks(st);
	for (uint32_t i = 0; i < st->nsocks; i++) {
		struct sock *s = &socks[i];
		if (s->type == 0)
			continue;
		if (s->type == USNET_SOCK_STREAM) {
			if ((r = check_tcp(st, (int32_t)i, &w)) < 0)
				return r;
		} else if (s->flags & (SF_HASHED | SF_ORPHAN) || s->parent != NIL || s->ooo != NIL ||
			   sock_deadline(s) != UINT64_MAX) {
			return bad(&w, "UDP socket", i, "has TCP state, flags", s->flags);
		}
	}
	return 0;
}
