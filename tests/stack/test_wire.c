/*
 * Two stacks joined by an in-test wire that loses, reorders, duplicates and
 * corrupts frames (seeded), moving data both ways at once on a virtual
 * clock; the bytes must arrive exactly.
 */
#include "harness.h"
#include "tests.h"
#ifdef WIRE_DEBUG
#include "../../src/stack/internal.h"
#endif

struct wire_frame { uint8_t d[TNIF_FRAME]; uint32_t len; uint64_t due; };

struct wire {
	struct wire_frame *q;
	unsigned n, cap;
	uint64_t rng;
	unsigned loss_pm, reorder_pm, dup_pm, corrupt_pm;   /* per mille */
};

static uint32_t rnd(struct wire *w)
{
	w->rng ^= w->rng << 13; w->rng ^= w->rng >> 7; w->rng ^= w->rng << 17;
	return (uint32_t)(w->rng >> 16);
}

static void wire_put(struct wire *w, const struct tframe *f, uint64_t now)
{
	if (rnd(w) % 1000 < w->loss_pm)
		return;
	int copies = rnd(w) % 1000 < w->dup_pm ? 2 : 1;
	for (int k = 0; k < copies && w->n < w->cap; k++) {
		struct wire_frame *x = &w->q[w->n++];
		memcpy(x->d, f->d, f->len);
		x->len = f->len;
		x->due = now + 50000;   /* 50 us one way */
		if (rnd(w) % 1000 < w->reorder_pm)
			x->due += 200000 + rnd(w) % 500000;
		if (rnd(w) % 1000 < w->corrupt_pm)
			x->d[14 + rnd(w) % (f->len - 14)] ^= (uint8_t)(1u << (rnd(w) % 8));
	}
}

/* Deliver every frame due by now into e, in batches of up to 32 frames
 * per usnet_stack_input() call (as a netif's rx_burst would). */
static void wire_deliver(struct wire *w, struct tenv *e)
{
	static uint8_t bufs[32][TNIF_FRAME];
	struct usnet_pkt pk[32];
	unsigned nb = 0, j = 0;
	for (unsigned i = 0; i < w->n; i++) {
		if (w->q[i].due > e->now) {
			w->q[j++] = w->q[i];
			continue;
		}
		memcpy(bufs[nb], w->q[i].d, w->q[i].len);
		memset(&pk[nb], 0, sizeof pk[nb]);
		pk[nb].data = bufs[nb];
		pk[nb].len = w->q[i].len;
		if (++nb == 32) {
			usnet_stack_input(e->st, &e->io, pk, nb, e->now);
			nb = 0;
		}
	}
	if (nb)
		usnet_stack_input(e->st, &e->io, pk, nb, e->now);
	w->n = j;
	tenv_verify(e->st, "wire delivery");
}

static uint8_t pattern(uint64_t pos, uint32_t seed)
{
	uint64_t x = pos * 0x9e3779b97f4a7c15ull + seed;
	return (uint8_t)(x >> 56 ^ x >> 21);
}

struct endpoint {
	int32_t s;
	uint8_t out[16384];
	uint64_t out_pos;    /* stream position of out[0] */
	uint32_t out_len;
	uint64_t sent, recvd, total;
	uint32_t seed_out, seed_in;
	int bad, eof, closed;
};

static void pump(struct tenv *e, struct endpoint *p)
{
	static uint8_t buf[65536];
	while (p->sent < p->total) {
		if (p->sent >= p->out_pos + p->out_len) {
			/* Generate the next piece of the stream only when it is needed. */
			p->out_pos = p->sent;
			p->out_len = p->total - p->sent > sizeof p->out ? sizeof p->out : (uint32_t)(p->total - p->sent);
			for (uint32_t i = 0; i < p->out_len; i++) p->out[i] = pattern(p->out_pos + i, p->seed_out);
		}
		uint32_t off = (uint32_t)(p->sent - p->out_pos);
		long r = usnet_send(e->st, &e->io, p->s, p->out + off, p->out_len - off, 0, e->now);
		if (r <= 0)
			break;
		p->sent += (uint64_t)r;
	}
	if (p->sent == p->total && !p->closed) {
		usnet_shutdown(e->st, &e->io, p->s, 1, e->now);
		p->closed = 1;
	}
	for (;;) {
		long r = usnet_recv(e->st, &e->io, p->s, buf, sizeof buf, 0, e->now);
		if (r == 0) { p->eof = 1; break; }
		if (r < 0) break;
		for (long i = 0; i < r; i++)
			if (buf[i] != pattern(p->recvd + (uint64_t)i, p->seed_in)) p->bad++;
		p->recvd += (uint64_t)r;
	}
}

static int run_pair(unsigned loss, unsigned reorder, unsigned dup, unsigned corrupt, uint64_t bytes, int cc,
		    uint64_t max_virtual_s, char *why, size_t whylen)
{
	struct usnet_stack_config ca, cb;
	tenv_default_cfg(&ca);
	tenv_default_cfg(&cb);
	memcpy(cb.mac, T_MAC_PEER, 6);
	cb.ip = T_IP_PEER;
	ca.cc = cb.cc = (uint8_t)cc;
	ca.sndbuf = cb.sndbuf = 256 << 10;
	ca.rcvbuf = cb.rcvbuf = 256 << 10;
	struct tenv A, B;
	tenv_init(&A, &ca);
	tenv_init(&B, &cb);
	struct wire ab = { .cap = 8192, .rng = 0x1234567, .loss_pm = loss, .reorder_pm = reorder, .dup_pm = dup, .corrupt_pm = corrupt };
	struct wire ba = ab;
	ba.rng = 0x7654321;
	ab.q = malloc(sizeof(struct wire_frame) * ab.cap);
	ba.q = malloc(sizeof(struct wire_frame) * ba.cap);
	int32_t l = usnet_socket(B.st, USNET_SOCK_STREAM);
	usnet_bind(B.st, l, &(struct usnet_addr){ .ip = 0, .port = 5001 });
	usnet_listen(B.st, l, 4);
	static struct endpoint pa, pb;
	memset(&pa, 0, sizeof pa);
	memset(&pb, 0, sizeof pb);
	pa.total = pb.total = bytes;
	pa.seed_out = pb.seed_in = 1;
	pa.seed_in = pb.seed_out = 2;
	pb.s = -1;
	pa.s = usnet_socket(A.st, USNET_SOCK_STREAM);
	usnet_connect(A.st, &A.io, pa.s, &(struct usnet_addr){ .ip = T_IP_PEER, .port = 5001 }, A.now);
	int rc = 1;
	uint64_t end = A.now + max_virtual_s * SEC;
	while (A.now < end) {
		/* 20 us steps while frames are on the wire; otherwise jump to the
		 * next timer (retransmission timeouts are long in wire time). */
		uint64_t t = A.now + 20000;
		if (ab.n == 0 && ba.n == 0) {
			uint64_t na = usnet_stack_poll(A.st, &A.io, A.now), nb = usnet_stack_poll(B.st, &B.io, B.now);
			uint64_t nx = na < nb ? na : nb;
			if (nx > t && nx != UINT64_MAX && tnif_next(A.nif) == NULL && tnif_next(B.nif) == NULL)
				t = nx;
			A.nif->rd = B.nif->rd = 0;
		}
		A.now = B.now = t;
		wire_deliver(&ba, &A);
		wire_deliver(&ab, &B);
		usnet_stack_poll(A.st, &A.io, t);
		usnet_stack_poll(B.st, &B.io, t);
		if (pb.s < 0) {
			pb.s = usnet_accept(B.st, &B.io, l, NULL, t);
			if (pb.s < 0) pb.s = -1;
		}
		if (usnet_sock_events(A.st, pa.s) & USNET_EV_OUT || pa.recvd < pa.total)
			pump(&A, &pa);
		if (pb.s >= 0)
			pump(&B, &pb);
		struct tframe *f;
		while ((f = tnif_next(A.nif))) wire_put(&ab, f, t);
		while ((f = tnif_next(B.nif))) wire_put(&ba, f, t);
		tnif_clear(A.nif);
		tnif_clear(B.nif);
		if (pa.eof && pb.eof && pa.sent == bytes && pb.sent == bytes) {
			rc = 0;
			break;
		}
	}
	if (getenv("WIRE_VERBOSE")) {
		struct usnet_tcp_info ia, ib;
		usnet_tcp_info(A.st, pa.s, &ia);
		usnet_tcp_info(B.st, pb.s, &ib);
		struct usnet_stack_stats xa, xb;
		usnet_stack_stats(A.st, &xa);
		usnet_stack_stats(B.st, &xb);
		fprintf(stderr, "virtual %.3f s; A retrans %llu rto %u cwnd %u srtt %u; B retrans %llu cwnd %u; timeouts %llu/%llu recoveries %llu/%llu tlp %llu/%llu\n",
			(double)(A.now - (end - max_virtual_s * SEC)) / 1e9, (unsigned long long)ia.total_retrans, ia.rto_us, ia.cwnd, ia.rtt_us,
			(unsigned long long)ib.total_retrans, ib.cwnd, (unsigned long long)xa.tcp_rto, (unsigned long long)xb.tcp_rto,
			(unsigned long long)xa.tcp_recovery, (unsigned long long)xb.tcp_recovery, (unsigned long long)xa.tcp_tlp, (unsigned long long)xb.tcp_tlp);
	}
	if (rc || pa.bad || pb.bad || pa.recvd != bytes || pb.recvd != bytes) {
		struct usnet_tcp_info ia, ib;
		usnet_tcp_info(A.st, pa.s, &ia);
		if (pb.s >= 0) usnet_tcp_info(B.st, pb.s, &ib); else memset(&ib, 0, sizeof ib);
		snprintf(why, whylen, "A sent %llu recvd %llu bad %d eof %d st %u cwnd %u; B sent %llu recvd %llu bad %d eof %d st %u",
			 (unsigned long long)pa.sent, (unsigned long long)pa.recvd, pa.bad, pa.eof, ia.state, ia.cwnd,
			 (unsigned long long)pb.sent, (unsigned long long)pb.recvd, pb.bad, pb.eof, ib.state);
		rc = 1;
	}
	usnet_close(A.st, &A.io, pa.s, A.now);
	if (pb.s >= 0) usnet_close(B.st, &B.io, pb.s, B.now);
	usnet_close(B.st, &B.io, l, B.now);
	/* Let the closes finish (TIME_WAIT and all); everything is freed. */
	for (int i = 0; i < 100000 && (ab.n || ba.n || 1); i++) {
		uint64_t t = A.now + SEC;
		A.now = B.now = t;
		wire_deliver(&ba, &A);
		wire_deliver(&ab, &B);
		usnet_stack_poll(A.st, &A.io, t);
		usnet_stack_poll(B.st, &B.io, t);
		struct tframe *f;
		while ((f = tnif_next(A.nif))) wire_put(&ab, f, t);
		while ((f = tnif_next(B.nif))) wire_put(&ba, f, t);
		tnif_clear(A.nif);
		tnif_clear(B.nif);
		if (i > 200) break;   /* 200 virtual seconds */
	}
	struct usnet_stack_stats sa, sb;
	usnet_stack_stats(A.st, &sa);
	usnet_stack_stats(B.st, &sb);
	if (!rc && (sa.sockets_in_use || sb.sockets_in_use || sa.buffers_in_use || sb.buffers_in_use)) {
		int ia = usnet_sock_next(A.st, 0), ib = usnet_sock_next(B.st, 0);
		struct usnet_tcp_info ta = { 0 }, tb = { 0 };
#ifdef WIRE_DEBUG
		if (ia >= 0) { struct sock *k = sk(A.st, ia); fprintf(stderr, "A state %u flags %x timers %llu %llu %llu heap %d now %llu\n", k->state, k->flags, (unsigned long long)k->timer_at[0], (unsigned long long)k->timer_at[1], (unsigned long long)k->timer_at[2], k->heap_pos, (unsigned long long)A.now); }
		if (ib >= 0) { struct sock *k = sk(B.st, ib); fprintf(stderr, "B state %u flags %x timers %llu %llu %llu heap %d\n", k->state, k->flags, (unsigned long long)k->timer_at[0], (unsigned long long)k->timer_at[1], (unsigned long long)k->timer_at[2], k->heap_pos); }
#endif
		if (ia >= 0) usnet_tcp_info(A.st, ia, &ta);
		if (ib >= 0) usnet_tcp_info(B.st, ib, &tb);
		snprintf(why, whylen, "leak: sockets %u/%u buffers %llu/%llu (A #%d st %u B #%d st %u)", sa.sockets_in_use, sb.sockets_in_use,
			 (unsigned long long)sa.buffers_in_use, (unsigned long long)sb.buffers_in_use, ia, ta.state, ib, tb.state);
		rc = 1;
	}
	free(ab.q);
	free(ba.q);
	tenv_fini(&A);
	tenv_fini(&B);
	return rc;
}

int test_wire_clean(void)
{
	return run_pair(0, 0, 0, 0, 8u << 20, USNET_CC_CUBIC, 60, t_why, sizeof t_why);
}

int test_wire_impaired_cubic(void)
{
	return run_pair(50, 10, 10, 1, 64u << 20, USNET_CC_CUBIC, 600, t_why, sizeof t_why);
}

int test_wire_impaired_newreno(void)
{
	return run_pair(20, 20, 10, 1, 8u << 20, USNET_CC_NEWRENO, 600, t_why, sizeof t_why);
}

/* Many connections at once between two stacks (with some loss): each moves
 * a little data both ways, then closes; nothing is left behind. */
int test_wire_many_connections(void)
{
	enum { N = 200, BYTES = 20000 };
	struct usnet_stack_config ca, cb;
	tenv_default_cfg(&ca);
	tenv_default_cfg(&cb);
	ca.max_sockets = cb.max_sockets = N + 8;
	memcpy(cb.mac, T_MAC_PEER, 6);
	cb.ip = T_IP_PEER;
	struct tenv A, B;
	tenv_init(&A, &ca);
	tenv_init(&B, &cb);
	struct wire ab = { .cap = 8192, .rng = 99, .loss_pm = 10, .reorder_pm = 5 };
	struct wire ba = ab;
	ba.rng = 77;
	ab.q = malloc(sizeof(struct wire_frame) * ab.cap);
	ba.q = malloc(sizeof(struct wire_frame) * ba.cap);
	int32_t l = usnet_socket(B.st, USNET_SOCK_STREAM);
	usnet_bind(B.st, l, &(struct usnet_addr){ .ip = 0, .port = 7000 });
	usnet_listen(B.st, l, N);
	static struct endpoint ea[N], eb[N];
	for (int i = 0; i < N; i++) {
		memset(&ea[i], 0, sizeof ea[i]);
		memset(&eb[i], 0, sizeof eb[i]);
		ea[i].total = eb[i].total = BYTES;
		ea[i].seed_out = eb[i].seed_in = 100 + (uint32_t)i;
		ea[i].seed_in = eb[i].seed_out = 900 + (uint32_t)i;
		eb[i].s = -1;
		ea[i].s = usnet_socket(A.st, USNET_SOCK_STREAM);
		CHECK(ea[i].s >= 0);
		usnet_connect(A.st, &A.io, ea[i].s, &(struct usnet_addr){ .ip = T_IP_PEER, .port = 7000 }, A.now);
	}
	int accepted = 0, done = 0;
	for (int step = 0; step < 2000000 && done < N; step++) {
		uint64_t t = A.now + 20000;
		if (ab.n == 0 && ba.n == 0) {
			uint64_t na = usnet_stack_poll(A.st, &A.io, A.now), nb = usnet_stack_poll(B.st, &B.io, B.now);
			uint64_t nx = na < nb ? na : nb;
			if (nx > t && nx != UINT64_MAX && tnif_next(A.nif) == NULL && tnif_next(B.nif) == NULL)
				t = nx;
			A.nif->rd = B.nif->rd = 0;
		}
		A.now = B.now = t;
		wire_deliver(&ba, &A);
		wire_deliver(&ab, &B);
		usnet_stack_poll(A.st, &A.io, t);
		usnet_stack_poll(B.st, &B.io, t);
		int32_t s;
		struct usnet_addr peer;
		while (accepted < N && (s = usnet_accept(B.st, &B.io, l, &peer, t)) >= 0) {
			/* Match the accepted socket to its client by port. */
			for (int i = 0; i < N; i++) {
				struct usnet_addr a;
				usnet_getsockname(A.st, ea[i].s, &a);
				if (a.port == peer.port) { eb[i].s = s; break; }
			}
			accepted++;
		}
		done = 0;
		for (int i = 0; i < N; i++) {
			pump(&A, &ea[i]);
			if (eb[i].s >= 0)
				pump(&B, &eb[i]);
			if (ea[i].eof && eb[i].eof && ea[i].recvd == BYTES && eb[i].recvd == BYTES)
				done++;
		}
		struct tframe *f;
		while ((f = tnif_next(A.nif))) wire_put(&ab, f, t);
		while ((f = tnif_next(B.nif))) wire_put(&ba, f, t);
		tnif_clear(A.nif);
		tnif_clear(B.nif);
	}
	int bad = 0;
	for (int i = 0; i < N; i++)
		bad += ea[i].bad + eb[i].bad;
	CHECKF(done == N && bad == 0 && accepted == N, "done %d accepted %d bad %d", done, accepted, bad);
	for (int i = 0; i < N; i++) {
		usnet_close(A.st, &A.io, ea[i].s, A.now);
		usnet_close(B.st, &B.io, eb[i].s, B.now);
	}
	usnet_close(B.st, &B.io, l, B.now);
	for (int i = 0; i < 200; i++) {
		uint64_t t = A.now + SEC;
		A.now = B.now = t;
		wire_deliver(&ba, &A);
		wire_deliver(&ab, &B);
		usnet_stack_poll(A.st, &A.io, t);
		usnet_stack_poll(B.st, &B.io, t);
		struct tframe *f;
		while ((f = tnif_next(A.nif))) wire_put(&ab, f, t);
		while ((f = tnif_next(B.nif))) wire_put(&ba, f, t);
		tnif_clear(A.nif);
		tnif_clear(B.nif);
	}
	struct usnet_stack_stats sa, sb;
	usnet_stack_stats(A.st, &sa);
	usnet_stack_stats(B.st, &sb);
	CHECKF(sa.sockets_in_use == 0 && sb.sockets_in_use == 0 && sa.buffers_in_use == 0 && sb.buffers_in_use == 0,
	       "left: sockets %u/%u buffers %llu/%llu", sa.sockets_in_use, sb.sockets_in_use,
	       (unsigned long long)sa.buffers_in_use, (unsigned long long)sb.buffers_in_use);
	free(ab.q);
	free(ba.q);
	tenv_fini(&A);
	tenv_fini(&B);
	return 0;
}
