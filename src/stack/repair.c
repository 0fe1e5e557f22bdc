/*
 * usnet_stack_repair(): bring an instance back to a consistent state after
 * a process died inside a call on it (SIGKILL while holding its lock).
 *
 * What a call changes is of two kinds.  The primary facts: each socket's
 * type, state, addresses, flags, sequence numbers and timer deadlines; the
 * chains of chunks its queues, the ARP and neighbour entries, the reassembly slots and
 * the loop queue hold; a child's listener.  And what is derived from them:
 * the free lists of sockets and chunks and their counts, the connection and
 * port tables, the timer heap, the accept queues' lengths and tails, every
 * byte and record count.  A death can leave any derived structure half
 * updated, so repair rebuilds all of them from the facts, in this order:
 *
 *  1. sockets whose own facts are impossible (an unknown type or state, a
 *     child of no listener) are reset or freed;
 *  2. every holder claims the chunks it links (own.c); a queue that does
 *     not hold together (an index out of range, a chunk another holder
 *     has, a cycle, a record of the wrong length) is dropped, and a TCP
 *     connection that loses a stream queue that way is reset: its peer
 *     must not get a stream with a hole; a connection inside a sequence
 *     step (an ACK freeing its send queue, data joining its receive
 *     queue) has the step finished from the journal the step wrote
 *     before it began (struct seq_journal);
 *  3. the chunk free list is every chunk nobody claimed (a chunk taken
 *     from the pool and not yet linked, or unlinked and not yet freed,
 *     comes back), the socket free list every free socket;
 *  4. the accept queues, connection and port tables and timer heap are
 *     rebuilt from the sockets, and each connection gets the timer its
 *     state needs (a death between a state change and its timer would
 *     leave it to hang forever).
 *
 * The stack's own code keeps one order that makes this possible: a chunk is
 * unlinked from its holder before it is freed (order_barrier, internal.h),
 * so no holder is left linking a freed chunk.
 *
 * Repair transmits nothing and reports no readiness (it has no usnet_io):
 * a reset connection's peer learns it from the RST its next segment draws,
 * and the socket's user from usnet_sock_events().  It also does not know
 * which sockets the dead process held: closing those is its caller's
 * business.
 */
#include "internal.h"
#include "wire_ipv6.h"

static int in_range(const struct usnet_stack *st, int32_t i)
{
	return i >= 0 && (uint32_t)i < st->nsocks;
}

/* A TCP connection found broken: reset once the walks are done (the fix
 * is counted there). */
static void damage(struct usnet_stack *st, int32_t i)
{
	own_set(st, own_damaged_bit(st, i));
}

/* Forget a socket: its chunks go back with the pool's rebuild. */
static void forget(struct sock *s)
{
	s->type = 0;
	s->flags = 0;
}

/* An orphan is what tcp_close() makes of a connection its user closed in
 * order (an abortive close frees the socket at once): a death inside that
 * close leaves the flag without the state it goes with.  Finish it: the
 * FIN goes out when the retransmission timer (rebuild_timers) fires. */
static void finish_close(struct sock *s, unsigned *fixes)
{
	switch (s->state) {
	case USNET_TCP_SYN_RECEIVED: case USNET_TCP_ESTABLISHED:
		s->state = USNET_TCP_FIN_WAIT_1;
		break;
	case USNET_TCP_CLOSE_WAIT:
		s->state = USNET_TCP_LAST_ACK;
		break;
	case USNET_TCP_CLOSED: case USNET_TCP_LISTEN: case USNET_TCP_SYN_SENT:
		forget(s);   /* closes that free the socket, cut short */
		(*fixes)++;
		return;
	default:
		if (s->rcvq.head == NIL)
			return;   /* on its way, as it should be */
		break;
	}
	s->flags |= SF_SHUT_RD | SF_SHUT_WR;
	byteq_init(&s->rcvq);   /* nobody reads it: its chunks go back */
	(*fixes)++;
}

/* 1. Facts a socket cannot have. */
/* A datagram's fragments in reassembly (IPv4's or IPv6's): a list that
 * does not hold together loses the datagram (its sender retries: 0, the
 * caller frees the slot); otherwise what it holds is counted again (1). */
static int repair_frag_list(struct usnet_stack *st, int32_t *frags, uint32_t *have, uint32_t *total,
			    uint32_t *truesize, unsigned *fixes)
{
	struct own_list o;
	if (own_records(st, *frags, REC_FRAGMENT, &o) < 0) {
		*frags = NIL;
		*have = *total = *truesize = 0;
		(*fixes)++;
		return 0;
	}
	if (*have != o.bytes || *truesize != o.chunks * CHUNK_SIZE) {
		*have = o.bytes;
		*truesize = o.chunks * CHUNK_SIZE;
		(*fixes)++;
	}
	return 1;
}

/* A neighbour's queue of frames (ARP's or ND's): a list that does not hold
 * together is dropped, and its length is what it holds. */
static void repair_neigh_queue(struct usnet_stack *st, int32_t *queue, uint8_t *qlen, unsigned *fixes)
{
	struct own_list o;
	if (own_records(st, *queue, REC_FRAME, &o) < 0) {
		*queue = NIL;
		o.records = 0;
		(*fixes)++;
	}
	if (*qlen != o.records) {
		*qlen = (uint8_t)o.records;
		(*fixes)++;
	}
}

static void scrub_sockets(struct usnet_stack *st, unsigned *fixes)
{
	struct sock *socks = st_socks(st);
	for (uint32_t k = 0; k < st->nsocks; k++) {
		int32_t i = (int32_t)k;
		struct sock *s = &socks[i];
		if (s->type > USNET_SOCK_DGRAM) {
			forget(s);
			(*fixes)++;
		}
		if (s->type == 0)
			continue;
		if (s->type == USNET_SOCK_DGRAM) {
			if (s->flags & (SF_HASHED | SF_ORPHAN) || s->parent != NIL || s->ooo != NIL ||
			    s->sndq.head != NIL) {
				/* TCP's state on a UDP socket: it is not what it was. */
				s->flags &= ~(SF_HASHED | SF_ORPHAN);
				s->parent = NIL;
				s->ooo = NIL;
				byteq_init(&s->sndq);
				(*fixes)++;
			}
			continue;
		}
		if (s->state > USNET_TCP_TIME_WAIT) {
			s->state = USNET_TCP_CLOSED;
			damage(st, i);
		}
		if (s->state != USNET_TCP_LISTEN && (s->acc_head != NIL || s->acc_count || s->syn_count)) {
			s->acc_head = s->acc_tail = NIL;
			s->acc_count = s->syn_count = 0;
			(*fixes)++;
		}
		if (s->flags & SF_ORPHAN)
			finish_close(s, fixes);
	}
	/* Children, once every listener that stays is known. */
	for (uint32_t k = 0; k < st->nsocks; k++) {
		struct sock *s = &socks[k];
		if (s->type != USNET_SOCK_STREAM || s->parent == NIL)
			continue;
		int ok = in_range(st, s->parent) && socks[s->parent].type == USNET_SOCK_STREAM &&
			 socks[s->parent].state == USNET_TCP_LISTEN && !(s->flags & SF_ORPHAN) &&
			 s->state >= USNET_TCP_SYN_RECEIVED;
		if (!ok) {
			/* Nobody can accept it: as tcp_drop() does with a child. */
			forget(s);
			(*fixes)++;
		}
	}
}

/* A byte queue: its chain, or nothing.  Returns -1 when it was broken. */
static int repair_byteq(struct usnet_stack *st, struct byteq *q, unsigned *fixes)
{
	struct own_list o;
	if (own_byteq(st, q, &o) < 0) {
		byteq_init(q);
		(*fixes)++;
		return -1;
	}
	if (q->tail != o.last || q->bytes != o.bytes) {
		/* A death inside an append or a consume: the chain is the truth
		 * (a half-done send stays sent, as a write() cut short). */
		q->tail = o.last;
		q->bytes = o.bytes;
		(*fixes)++;
	}
	if (o.bytes == 0 && o.chunks) {
		/* A chunk linked before its bytes were written: an empty queue
		 * holds no chunk (an idle socket holds no buffer). */
		own_release_chain(st, q->head);
		byteq_init(q);
		(*fixes)++;
	}
	q->cur = NIL;   /* a cache: found again from the head */
	q->cur_pos = 0;
	return 0;
}

/* 2. Every holder claims its chunks. */
static void claim_chunks(struct usnet_stack *st, unsigned *fixes)
{
	struct sock *socks = st_socks(st);
	struct own_list o;
	own_clear_range(st, 0, st->nchunks);   /* the socket bits stay */
	for (uint32_t k = 0; k < st->nsocks; k++) {
		int32_t i = (int32_t)k;
		struct sock *s = &socks[i];
		if (s->type == 0)
			continue;
		if (repair_byteq(st, &s->sndq, fixes) < 0 && s->type == USNET_SOCK_STREAM)
			damage(st, i);
		if (s->type == USNET_SOCK_DGRAM) {
			if (own_records(st, s->rcvq.head, REC_DGRAM, &o) < 0) {
				byteq_init(&s->rcvq);   /* datagrams may be lost */
				(*fixes)++;
			} else if (s->rcvq.tail != o.last || s->rcvq.bytes != o.charge) {
				s->rcvq.tail = o.last;
				s->rcvq.bytes = o.charge;
				(*fixes)++;
			}
			continue;
		}
		if (repair_byteq(st, &s->rcvq, fixes) < 0)
			damage(st, i);
		if (own_records(st, s->ooo, REC_SEGMENT, &o) < 0) {
			/* Out-of-order data the peer will send again (reneging,
			 * which RFC 2018 allows a receiver). */
			s->ooo = NIL;
			o.records = o.bytes = 0;
			(*fixes)++;
		}
		if (s->ooo_n != o.records || s->ooo_bytes != o.bytes) {
			s->ooo_n = (uint16_t)o.records;
			s->ooo_bytes = o.bytes;
			(*fixes)++;
		}
	}
	if (own_records(st, st->loop_head, REC_FRAME, &o) < 0) {
		st->loop_head = st->loop_tail = NIL;   /* frames lost, as on a wire */
		(*fixes)++;
	} else if (st->loop_tail != o.last) {
		st->loop_tail = o.last;
		(*fixes)++;
	}
	struct arp_entry *arp = st_arp(st);
	for (uint32_t k = 0; k < ARP_TABLE; k++) {
		struct arp_entry *e = &arp[k];
		if (e->state > ARP_PROBE) {
			e->state = ARP_FREE;
			(*fixes)++;
		}
		if (e->state == ARP_FREE) {
			if (e->queue != NIL || e->qlen) {
				e->queue = NIL;
				e->qlen = 0;
				(*fixes)++;
			}
			continue;
		}
		repair_neigh_queue(st, &e->queue, &e->qlen, fixes);
	}
	struct nd6_entry *nd6 = st_nd6(st);
	for (uint32_t k = 0; k < ND6_TABLE; k++) {
		struct nd6_entry *e = &nd6[k];
		if (e->state > ND6_PROBE) {
			e->state = ND6_FREE;
			(*fixes)++;
		}
		if (e->state == ND6_FREE) {
			if (e->queue != NIL || e->qlen) {
				e->queue = NIL;
				e->qlen = 0;
				(*fixes)++;
			}
			continue;
		}
		if (e->state != ND6_INCOMPLETE && e->queue != NIL) {
			/* A death between the answer and the flush: nothing
			 * would send these any more (they are lost). */
			e->queue = NIL;
			(*fixes)++;
		}
		repair_neigh_queue(st, &e->queue, &e->qlen, fixes);
	}
	uint32_t reasm_bytes = 0;
	for (uint32_t k = 0; k < REASM_SLOTS; k++) {
		struct reasm *r = &st->reasm[k];
		if (!r->used) {
			if (r->frags != NIL) {
				r->frags = NIL;
				(*fixes)++;
			}
			continue;
		}
		if (!repair_frag_list(st, &r->frags, &r->have, &r->total, &r->truesize, fixes)) {
			r->used = 0;
			continue;
		}
		reasm_bytes += r->truesize;
	}
	for (uint32_t k = 0; k < REASM6_SLOTS; k++) {
		struct reasm6 *r = &st->reasm6[k];
		if (!r->used || r->dead) {
			if (r->frags != NIL || r->truesize || r->have) {
				r->frags = NIL;   /* what it held goes back to the pool */
				r->truesize = r->have = 0;
				(*fixes)++;
			}
			continue;
		}
		if (!repair_frag_list(st, &r->frags, &r->have, &r->total, &r->truesize, fixes)) {
			r->used = 0;
			continue;
		}
		if (r->total && (r->have >= r->total || frag_list_end(st, r->frags) > r->total)) {
			/* Whole but not delivered, or past its length: lost. */
			for (int32_t f = r->frags; f != NIL; f = st_chunks(st)[f].link)
				own_release_chain(st, f);
			r->used = 0;
			r->frags = NIL;
			r->have = r->total = r->truesize = 0;
			(*fixes)++;
			continue;
		}
		reasm_bytes += r->truesize;
	}
	for (uint32_t k = 0; k < PMTU6_TABLE; k++) {
		struct pmtu6 *e = &st->pmtu6[k];
		if (e->mtu && (e->mtu < IP6_MIN_MTU || e->mtu >= st->cfg.mtu)) {
			e->mtu = 0;
			(*fixes)++;
		}
	}
	if (st->reasm_bytes != reasm_bytes) {
		st->reasm_bytes = reasm_bytes;
		(*fixes)++;
	}
}

/* A TCP connection whose stream cannot be trusted: reset, as tcp_drop()
 * does (without the RST, which needs a netif: the peer's next segment
 * draws one).  A child or an orphan has no user to tell: it goes. */
static void reset_connection(struct sock *s)
{
	if (s->parent != NIL || (s->flags & SF_ORPHAN)) {
		forget(s);
		return;
	}
	s->err = USNET_ECONNRESET;
	s->flags |= SF_RESET | SF_EV_EDGE;
	s->flags &= ~SF_HASHED;
	s->state = USNET_TCP_CLOSED;
	for (int t = 0; t < TMR_COUNT; t++)
		s->timer_at[t] = UINT64_MAX;
	byteq_init(&s->sndq);
	s->ooo = NIL;
	s->ooo_n = 0;
	s->ooo_bytes = 0;
}

/* Sequence facts that would make the sender read past its queue. */
static int sequence_broken(const struct sock *s)
{
	if (s->state < USNET_TCP_SYN_SENT || s->state > USNET_TCP_LAST_ACK)
		return 0;
	return !seq_le(s->snd_una, s->snd_nxt) || !seq_le(s->snd_nxt, s->snd_max) ||
	       s->snd_max - s->snd_una > s->sndq.bytes + 2;
}

/* 2b. The sequence step a death cut short (struct seq_journal): the
 * queues are what claim_chunks() found in their chains; the step's
 * sequence number catches up with them.  Chunks leave the front of the
 * send queue only as far as the peer acknowledged, and the receive queue
 * grows only by in-order bytes from rcv_nxt on, so moving snd_una by what
 * was freed, and rcv_nxt by what was added, finishes the step as it would
 * have ended.  Anything else is damage. */
static void finish_step(struct usnet_stack *st, unsigned *fixes)
{
	struct seq_journal *j = &st->journal;
	int32_t i = j->sock;
	j->sock = NIL;
	if (i == NIL)
		return;
	struct sock *socks = st_socks(st);
	if (!in_range(st, i) || socks[i].type != USNET_SOCK_STREAM || own_test(st, own_damaged_bit(st, i)))
		return;
	struct sock *s = &socks[i];
	uint32_t freed = j->snd_bytes - s->sndq.bytes, moved = s->snd_una - j->snd_una;
	if (s->sndq.bytes > j->snd_bytes) {
		damage(st, i);
	} else if (moved != freed && !(moved == freed + 1 && (s->flags & SF_FIN_SENT))) {
		if (moved != 0) {
			damage(st, i);
		} else {
			s->snd_una += freed;
			if (seq_lt(s->snd_nxt, s->snd_una))
				s->snd_nxt = s->snd_una;
			if (seq_lt(s->high_rxt, s->snd_una))
				s->high_rxt = s->snd_una;
			tcp_sack_clean(s);
			(*fixes)++;
		}
	}
	uint32_t added = s->rcvq.bytes - j->rcv_bytes, advanced = s->rcv_nxt - j->rcv_nxt;
	if (s->rcvq.bytes < j->rcv_bytes || advanced > added) {
		damage(st, i);
	} else if (advanced != added) {
		s->rcv_nxt = j->rcv_nxt + added;
		if (seq_lt(s->rcv_adv, s->rcv_nxt))
			s->rcv_adv = s->rcv_nxt;
		(*fixes)++;
	}
}

/* 3. The free lists. */
static void rebuild_free_lists(struct usnet_stack *st)
{
	struct chunk *chunks = st_chunks(st);
	st->chunk_free = NIL;
	st->chunks_free = 0;
	for (int32_t c = (int32_t)st->nchunks - 1; c >= 0; c--) {
		if (own_test(st, (uint32_t)c))
			continue;
		chunks[c].next = st->chunk_free;
		st->chunk_free = c;
		st->chunks_free++;
	}
	struct sock *socks = st_socks(st);
	st->sock_free = NIL;
	st->socks_used = 0;
	for (int32_t i = (int32_t)st->nsocks - 1; i >= 0; i--) {
		if (socks[i].type != 0) {
			st->socks_used++;
			continue;
		}
		socks[i].flags = 0;
		socks[i].pnext = st->sock_free;
		st->sock_free = i;
	}
}

/* 4a. Each listener's accept queue: the part of its list that holds
 * together, in its order, then its other established children; the SYN
 * queue's count. */
static void rebuild_accept_queues(struct usnet_stack *st, unsigned *fixes)
{
	struct sock *socks = st_socks(st);
	for (uint32_t k = 0; k < st->nsocks; k++) {
		int32_t li = (int32_t)k;
		struct sock *l = &socks[li];
		if (l->type != USNET_SOCK_STREAM || l->state != USNET_TCP_LISTEN)
			continue;
		uint32_t n = 0, syn = 0;
		int32_t last = NIL;
		for (int32_t c = l->acc_head; c != NIL; c = socks[c].acc_next) {
			if (!in_range(st, c) || own_test(st, own_seen_bit(st, c)) || socks[c].type != USNET_SOCK_STREAM ||
			    socks[c].parent != li || socks[c].state < USNET_TCP_ESTABLISHED)
				break;
			own_set(st, own_seen_bit(st, c));
			last = c;
			n++;
		}
		if (last == NIL)
			l->acc_head = NIL;
		for (uint32_t j = 0; j < st->nsocks; j++) {
			struct sock *ch = &socks[j];
			if (ch->type != USNET_SOCK_STREAM || ch->parent != li)
				continue;
			if (ch->state == USNET_TCP_SYN_RECEIVED) {
				syn++;
				continue;
			}
			if (own_test(st, own_seen_bit(st, (int32_t)j)))
				continue;
			/* Established but in no queue (a death inside the hand-
			 * over or an accept): it waits at the end. */
			own_set(st, own_seen_bit(st, (int32_t)j));
			if (last == NIL) l->acc_head = (int32_t)j; else socks[last].acc_next = (int32_t)j;
			last = (int32_t)j;
			n++;
			(*fixes)++;
		}
		if (last != NIL)
			socks[last].acc_next = NIL;
		if (l->acc_tail != last || l->acc_count != n || l->syn_count != syn)
			(*fixes)++;
		l->acc_tail = last;
		l->acc_count = (uint16_t)n;
		l->syn_count = (uint16_t)syn;
	}
}

/* 4b. The connection and port tables, from the sockets' facts: a TCP
 * socket is in the connection table while its state is SYN_SENT..TIME_WAIT
 * (a death can fall between a state change and the table's update).  Of
 * two connections with one 4-tuple the later is marked damaged. */
static void rebuild_tables(struct usnet_stack *st, unsigned *fixes)
{
	struct sock *socks = st_socks(st);
	memset(st_conn_hash(st), 0xff, (size_t)(st->conn_mask + 1) * sizeof(int32_t));
	memset(st_port_hash(st), 0xff, (size_t)(st->port_mask + 1) * sizeof(int32_t));
	for (int32_t i = (int32_t)st->nsocks - 1; i >= 0; i--) {
		struct sock *s = &socks[i];
		if (s->type == 0)
			continue;
		/* an IPv6 socket's lip/rip are derived from its struct sock6
		 * (the buckets hash them): a death between the two stores */
		if (s->net6 && (s->lip != ip6_fold(st_sock6(st)[i].laddr) || s->rip != ip6_fold(st_sock6(st)[i].raddr))) {
			s->lip = ip6_fold(st_sock6(st)[i].laddr);
			s->rip = ip6_fold(st_sock6(st)[i].raddr);
			(*fixes)++;
		}
		if (s->flags & SF_BOUND)
			port_insert(st, i);
		if (s->type != USNET_SOCK_STREAM)
			continue;
		int hashed = s->state >= USNET_TCP_SYN_SENT && s->state <= USNET_TCP_TIME_WAIT;
		if (!!(s->flags & SF_HASHED) != hashed)
			(*fixes)++;
		s->flags &= ~SF_HASHED;
		if (!hashed)
			continue;
		if (conn_lookup_sock(st, i) != NIL) {
			damage(st, i);
			continue;
		}
		conn_insert(st, i);
	}
}

/* 4c. Each connection's timers, and the heap of them. */
static void rebuild_timers(struct usnet_stack *st, uint64_t now, unsigned *fixes)
{
	struct sock *socks = st_socks(st);
	st->heap_n = 0;
	for (uint32_t k = 0; k < st->nsocks; k++) {
		struct sock *s = &socks[k];
		if (s->type == 0)
			continue;
		s->heap_pos = NIL;
		if (s->type != USNET_SOCK_STREAM || s->state == USNET_TCP_LISTEN || s->state == USNET_TCP_CLOSED) {
			for (int t = 0; t < TMR_COUNT; t++)
				s->timer_at[t] = UINT64_MAX;
			continue;
		}
		uint64_t d = sock_deadline(s);
		if (s->state == USNET_TCP_TIME_WAIT && s->timer_at[TMR_KEEP] == UINT64_MAX) {
			s->timer_at[TMR_KEEP] = now + TCP_TIME_WAIT_NS;
			(*fixes)++;
		} else if (s->state == USNET_TCP_FIN_WAIT_2 && (s->flags & SF_ORPHAN) &&
			   s->timer_at[TMR_KEEP] == UINT64_MAX) {
			/* Nobody will read or close it: its FIN_WAIT_2 timeout ends it. */
			s->timer_at[TMR_KEEP] = now + tcp_fin_wait2_ns(st, s);
			(*fixes)++;
		} else if (s->timer_at[TMR_RTO] == UINT64_MAX && (needs_rto(s) || ((s->flags & SF_ORPHAN) && d == UINT64_MAX))) {
			/* Something unacknowledged (or unsent: a death between a
			 * close and its FIN) and nothing to send it: the
			 * retransmission timer takes it from here. */
			s->timer_at[TMR_RTO] = now;
			(*fixes)++;
		}
	}
	for (uint32_t k = 0; k < st->nsocks; k++)
		if (socks[k].type != 0)
			timer_refresh(st, (int32_t)k);
}

/* Memberships of sockets that are gone or not UDP are dropped, the
 * counts of sockets and groups recounted; a group that lost its last
 * member this way reports its leave at once; a slot that is no group is
 * freed. */
static void rebuild_multicast(struct usnet_stack *st, uint64_t now, unsigned *fixes)
{
	struct sock *socks = st_socks(st);
	for (uint32_t k = 0; k < MC_MEMBERS; k++) {
		struct mc_member *m = &st->mc_members[k];
		if (m->sock == NIL)
			continue;
		if (!in_range(st, m->sock) || socks[m->sock].type != USNET_SOCK_DGRAM || (m->group >> 28) != 0xe) {
			m->sock = NIL;
			(*fixes)++;
			continue;
		}
		for (uint32_t j = 0; j < k; j++)
			if (st->mc_members[j].sock == m->sock && st->mc_members[j].group == m->group) {
				m->sock = NIL;
				(*fixes)++;
				break;
			}
	}
	for (uint32_t i = 0; i < MC_GROUPS; i++) {
		struct mc_group *g = &st->mc_groups[i];
		int dup = 0;
		for (uint32_t j = 0; j < i; j++)
			dup |= g->addr && st->mc_groups[j].addr == g->addr;
		if (g->addr && ((g->addr >> 28) != 0xe || dup)) {
			g->addr = 0;
			(*fixes)++;
		}
	}
	for (uint32_t k = 0; k < MC_MEMBERS; k++) {
		struct mc_member *m = &st->mc_members[k];
		if (m->sock == NIL)
			continue;
		struct mc_group *g = NULL;
		for (uint32_t i = 0; i < MC_GROUPS && !g; i++)
			if (st->mc_groups[i].addr == m->group)
				g = &st->mc_groups[i];
		if (!g) {   /* the join died before its group was noted */
			m->sock = NIL;
			(*fixes)++;
			continue;
		}
	}
	/* each socket's count, from its entries */
	for (uint32_t i = 0; i < st->nsocks; i++) {
		uint8_t n = 0;
		if (!socks[i].type)
			continue;
		if (socks[i].mc_n)
			for (uint32_t k = 0; k < MC_MEMBERS; k++)
				n += st->mc_members[k].sock == (int32_t)i;
		if (n != socks[i].mc_n) {
			socks[i].mc_n = n;
			(*fixes)++;
		}
	}
	for (uint32_t k = 0; k < MC_MEMBERS; k++) {
		int32_t i = st->mc_members[k].sock;
		if (i == NIL || socks[i].mc_n)
			continue;
		for (uint32_t j = k; j < MC_MEMBERS; j++)
			socks[i].mc_n += st->mc_members[j].sock == i;
		(*fixes)++;
	}
	for (uint32_t i = 0; i < MC_GROUPS; i++) {
		struct mc_group *g = &st->mc_groups[i];
		if (!g->addr)
			continue;
		uint16_t n = 0;
		for (uint32_t k = 0; k < MC_MEMBERS; k++)
			n += st->mc_members[k].sock != NIL && st->mc_members[k].group == g->addr;
		if (n != g->refs) {
			(*fixes)++;
			if (n == 0 && g->addr != 0xe0000001u) {
				g->reports_left = IGMP_ROBUSTNESS;
				g->report_at = now;
			}
			g->refs = n;
		}
		if (!g->refs && !g->reports_left)
			g->addr = 0;
		if (!g->refs)
			g->answer_at = UINT64_MAX;
	}
}

/* IPv6 groups (mld6.c), as rebuild_multicast: memberships of sockets
 * that are gone or not UDP, or of no group, are dropped; a slot that is
 * no group (an address's: no solicited-node group), or the same group
 * again, is freed; counts are recounted; a group that lost its last
 * member this way reports its leave at once, and a left one with no
 * report left to send is freed. */
static void rebuild_mld6(struct usnet_stack *st, uint64_t now, unsigned *fixes)
{
	struct sock *socks = st_socks(st);
	for (uint32_t i = 0; i < MLD6_GROUPS; i++) {
		struct mld6_group *g = &st->mld6_groups[i];
		if (ip6_is_unspecified(g->addr))
			continue;
		int dup = 0;
		for (uint32_t j = 0; j < i; j++)
			dup |= ip6_eq(st->mld6_groups[j].addr, g->addr);
		if (dup || !ip6_is_multicast(g->addr) || (g->member && !ip6_is_solicited_node(g->addr))) {
			memset(g, 0, sizeof(*g));
			g->report_at = g->answer_at = UINT64_MAX;
			(*fixes)++;
		}
	}
	for (uint32_t k = 0; k < MC6_MEMBERS; k++) {
		struct mc6_member *m = &st->mc6_members[k];
		if (m->sock == NIL)
			continue;
		int drop = !in_range(st, m->sock) || socks[m->sock].type != USNET_SOCK_DGRAM;
		for (uint32_t j = 0; j < k && !drop; j++)
			drop = st->mc6_members[j].sock == m->sock && ip6_eq(st->mc6_members[j].group, m->group);
		int found = 0;
		for (uint32_t i = 0; i < MLD6_GROUPS && !drop && !found; i++)
			found = ip6_eq(st->mld6_groups[i].addr, m->group);
		if (drop || !found) {   /* (not found: the join died before its group was noted) */
			m->sock = NIL;
			(*fixes)++;
		}
	}
	for (uint32_t i = 0; i < st->nsocks; i++) {
		uint8_t n = 0;
		if (!socks[i].type)
			continue;
		for (uint32_t k = 0; k < MC6_MEMBERS; k++)
			n += st->mc6_members[k].sock == (int32_t)i;
		if (n != socks[i].mc6_n) {
			socks[i].mc6_n = n;
			(*fixes)++;
		}
	}
	for (uint32_t i = 0; i < MLD6_GROUPS; i++) {
		struct mld6_group *g = &st->mld6_groups[i];
		if (ip6_is_unspecified(g->addr))
			continue;
		uint16_t n = 0;
		for (uint32_t k = 0; k < MC6_MEMBERS; k++)
			n += st->mc6_members[k].sock != NIL && ip6_eq(st->mc6_members[k].group, g->addr);
		if (n != g->refs) {
			(*fixes)++;
			if (n == 0 && !g->member && !ip6_is_all_nodes(g->addr) && (g->addr[1] & 0x0f) >= 2) {
				g->reports_left = MLD6_ROBUSTNESS;
				g->report_at = now;
			}
			g->refs = n;
		}
		if (!g->member && !g->refs && !g->reports_left) {
			memset(g, 0, sizeof(*g));
			g->report_at = g->answer_at = UINT64_MAX;
			(*fixes)++;
		}
		if (!g->member && !g->refs)
			g->answer_at = UINT64_MAX;
	}
}

int usnet_stack_repair(struct usnet_stack *st, uint64_t now)
{
	if (!st || st->magic != USNET_STACK_MAGIC)
		return -USNET_EINVAL;
	unsigned fixes = 0;
	struct sock *socks = st_socks(st);
	own_clear(st);
	scrub_sockets(st, &fixes);
	rebuild_tables(st, &fixes);   /* finds connections sharing a 4-tuple */
	claim_chunks(st, &fixes);
	finish_step(st, &fixes);
	int resets = 0;
	for (uint32_t k = 0; k < st->nsocks; k++) {
		struct sock *s = &socks[k];
		if (s->type != USNET_SOCK_STREAM)
			continue;
		if (!own_test(st, own_damaged_bit(st, (int32_t)k)) && !sequence_broken(s))
			continue;
		reset_connection(s);
		fixes++;
		resets++;
	}
	/* The resets dropped queues whose chunks were claimed: claim again
	 * from what is linked now, so the pool gets back exactly the rest. */
	if (resets)
		claim_chunks(st, &fixes);
	rebuild_free_lists(st);
	rebuild_tables(st, &fixes);   /* without the reset connections */
	own_clear_range(st, st->nchunks, st->nsocks);
	rebuild_accept_queues(st, &fixes);
	rebuild_timers(st, now, &fixes);
	rebuild_multicast(st, now, &fixes);
	rebuild_mld6(st, now, &fixes);
	/* The earliest ARP or neighbour timer, DAD step, IGMP or MLD report or
	 * reassembly expiry (a death may fall between setting one and noting
	 * it here). */
	uint64_t misc = UINT64_MAX;
	const struct arp_entry *arp = st_arp(st);
	for (uint32_t k = 0; k < ARP_TABLE; k++)
		if ((arp[k].state == ARP_INCOMPLETE || arp[k].state == ARP_PROBE) && arp[k].expires < misc)
			misc = arp[k].expires;
	for (uint32_t k = 0; k < REASM_SLOTS; k++)
		if (st->reasm[k].used && st->reasm[k].expires < misc)
			misc = st->reasm[k].expires;
	for (uint32_t k = 0; k < REASM6_SLOTS; k++)
		if (st->reasm6[k].used && st->reasm6[k].expires < misc)
			misc = st->reasm6[k].expires;
	const struct nd6_entry *nd6 = st_nd6(st);
	for (uint32_t k = 0; k < ND6_TABLE; k++)
		if (nd6[k].state != ND6_FREE && nd6[k].state != ND6_STALE && nd6[k].expires < misc)
			misc = nd6[k].expires;
	for (uint32_t k = 0; k < IP6_ADDRS; k++)
		if (st->ip6[k].state == USNET_IP6_ADDR_TENTATIVE && st->ip6[k].dad_at < misc)
			misc = st->ip6[k].dad_at;
	misc = min_u64(misc, st->igmp_general_at);
	for (uint32_t k = 0; k < MC_GROUPS; k++)
		if (st->mc_groups[k].addr)
			misc = min_u64(misc, min_u64(st->mc_groups[k].report_at, st->mc_groups[k].answer_at));
	misc = min_u64(misc, st->mld6_general_at);
	for (uint32_t k = 0; k < MLD6_GROUPS; k++)
		misc = min_u64(misc, min_u64(st->mld6_groups[k].report_at, st->mld6_groups[k].answer_at));
	if (st->misc_at > misc)
		fixes++;
	st->misc_at = misc;
	return (int)fixes;
}
