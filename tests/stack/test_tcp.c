/* Tests: the TCP state machine driven by crafted segments. */
#include "harness.h"
#include "tests.h"

#define SYN 0x02
#define ACK 0x10
#define FIN 0x01
#define RST 0x04
#define PSH 0x08

static int get_state(struct tenv *e, int32_t s)
{
	struct usnet_tcp_info i;
	if (usnet_tcp_info(e->st, s, &i) < 0)
		return -1;
	return i.state;
}

int test_tcp_passive_open(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	int32_t l = usnet_socket(e.st, USNET_SOCK_STREAM);
	CHECK(usnet_bind(e.st, l, &(struct usnet_addr){ .ip = 0, .port = 80 }) == 0);
	CHECK(usnet_listen(e.st, l, 4) == 0);
	CHECK(usnet_accept(e.st, &e.io, l, NULL, e.now) == -USNET_EAGAIN);
	uint8_t f[200], o[] = { 2, 4, 0x05, 0xb4, 1, 3, 3, 7, 1, 1, 4, 2, 1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 0 };
	tenv_input(&e, f, t_tcp_frame(f, 40000, 80, 1000, 0, SYN, 65535, o, sizeof o, NULL, 0));
	struct tpkt p;
	CHECK(t_next_tcp(&e, &p));
	CHECK(p.flags == (SYN | ACK) && p.ack == 1001 && p.l4_csum_ok && p.ip_csum_ok);
	CHECK(p.mss == 1460 && p.ws >= 0 && p.sack_perm && p.has_ts && p.tsecr == 9);
	CHECK(p.sport == 80 && p.dport == 40000);
	uint32_t iss = p.seq;
	/* Our SYN-ACK is retransmitted if the ACK does not come. */
	tenv_advance(&e, e.now + 1100 * MS);
	CHECK(t_next_tcp(&e, &p) && p.flags == (SYN | ACK) && p.seq == iss);
	uint8_t ts[] = { 1, 1, 8, 10, 0, 0, 0, 10, 0, 0, 0, 0 };
	tenv_input(&e, f, t_tcp_frame(f, 40000, 80, 1001, iss + 1, ACK, 512, ts, sizeof ts, NULL, 0));
	CHECK(tenv_last_event(&e, l) & USNET_EV_IN);
	struct usnet_addr peer;
	int32_t s = usnet_accept(e.st, &e.io, l, &peer, e.now);
	CHECK(s >= 0 && peer.ip == T_IP_PEER && peer.port == 40000);
	CHECK(get_state(&e, s) == USNET_TCP_ESTABLISHED);
	struct usnet_tcp_info ti; usnet_tcp_info(e.st, s, &ti);
	CHECK(ti.snd_wnd == 512u << 7 && ti.options == 7 && ti.snd_wscale == 7);
	CHECK(usnet_sock_events(e.st, s) & USNET_EV_OUT);
	/* A data exchange. */
	tenv_input(&e, f, t_tcp_frame(f, 40000, 80, 1001, iss + 1, ACK | PSH, 512, ts, sizeof ts, (const uint8_t *)"ping", 4));
	CHECK(tenv_last_event(&e, s) & USNET_EV_IN);
	char buf[16];
	CHECK(usnet_recv(e.st, &e.io, s, buf, sizeof buf, 0, e.now) == 4 && memcmp(buf, "ping", 4) == 0);
	CHECK(usnet_send(e.st, &e.io, s, "pong", 4, 0, e.now) == 4);
	/* the connection's first data is acked at once (a quick ACK, as Linux) */
	CHECK(t_next_tcp(&e, &p) && p.dlen == 0 && p.ack == 1005);
	CHECK(t_next_tcp(&e, &p) && p.dlen == 4 && p.ack == 1005 && memcmp(p.data, "pong", 4) == 0);
	usnet_close(e.st, &e.io, s, e.now);
	usnet_close(e.st, &e.io, l, e.now);
	tenv_advance(&e, e.now + 200 * SEC);
	tenv_fini(&e);
	return 0;
}

int test_tcp_active_open(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	int32_t s = usnet_socket(e.st, USNET_SOCK_STREAM);
	CHECK(usnet_connect(e.st, &e.io, s, &(struct usnet_addr){ .ip = T_IP_PEER, .port = 80 }, e.now) == -USNET_EINPROGRESS);
	struct tpkt p;
	CHECK(t_next_tcp(&e, &p) && p.flags == SYN && p.mss == 1460 && p.sack_perm && p.has_ts && p.ws >= 0);
	CHECK(get_state(&e, s) == USNET_TCP_SYN_SENT);
	CHECK(!(usnet_sock_events(e.st, s) & USNET_EV_OUT));
	CHECK(usnet_send(e.st, &e.io, s, "x", 1, 0, e.now) == -USNET_EAGAIN);
	uint16_t lport = p.sport;
	uint8_t f[200], o[] = { 2, 4, 0x05, 0x78, 1, 1, 4, 2 };   /* MSS 1400, SACK, no TS, no WS */
	/* A bad ACK in SYN_SENT gets a RST and changes nothing. */
	tenv_input(&e, f, t_tcp_frame(f, 80, lport, 7000, p.seq + 5, SYN | ACK, 1000, o, sizeof o, NULL, 0));
	struct tpkt r;
	CHECK(t_next_tcp(&e, &r) && (r.flags & RST) && r.seq == p.seq + 5);
	CHECK(get_state(&e, s) == USNET_TCP_SYN_SENT);
	tenv_input(&e, f, t_tcp_frame(f, 80, lport, 7000, p.seq + 1, SYN | ACK, 1000, o, sizeof o, NULL, 0));
	CHECK(t_next_tcp(&e, &r) && r.flags == ACK && r.ack == 7001 && !r.has_ts);
	CHECK(get_state(&e, s) == USNET_TCP_ESTABLISHED);
	CHECK(tenv_last_event(&e, s) & USNET_EV_OUT);
	struct usnet_tcp_info ti; usnet_tcp_info(e.st, s, &ti);
	CHECK(ti.options == 2 && ti.snd_mss == 1400 && ti.snd_wnd == 1000);
	int v = -1;
	CHECK(usnet_getsockopt(e.st, s, USNET_SO_ERROR, &v) == 0 && v == 0);
	struct usnet_addr a;
	CHECK(usnet_getpeername(e.st, s, &a) == 0 && a.ip == T_IP_PEER && a.port == 80);
	CHECK(usnet_getsockname(e.st, s, &a) == 0 && a.ip == T_IP_US && a.port == lport);
	CHECK(lport >= 32768 && lport <= 60999);
	usnet_setsockopt(e.st, s, USNET_SO_LINGER, 0);
	usnet_close(e.st, &e.io, s, e.now);
	CHECK(t_next_tcp(&e, &r) && (r.flags & RST));
	tenv_fini(&e);
	return 0;
}

int test_tcp_connect_refused_and_timeout(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	int32_t s = usnet_socket(e.st, USNET_SOCK_STREAM);
	usnet_connect(e.st, &e.io, s, &(struct usnet_addr){ .ip = T_IP_PEER, .port = 81 }, e.now);
	struct tpkt p;
	CHECK(t_next_tcp(&e, &p));
	uint8_t f[200];
	tenv_input(&e, f, t_tcp_frame(f, 81, p.sport, 0, p.seq + 1, RST | ACK, 0, NULL, 0, NULL, 0));
	CHECK(get_state(&e, s) == USNET_TCP_CLOSED);
	uint32_t ev = tenv_last_event(&e, s);
	CHECK((ev & USNET_EV_ERR) && (ev & USNET_EV_HUP));
	int v = 0;
	CHECK(usnet_getsockopt(e.st, s, USNET_SO_ERROR, &v) == 0 && v == USNET_ECONNREFUSED);
	CHECK(usnet_getsockopt(e.st, s, USNET_SO_ERROR, &v) == 0 && v == 0);
	usnet_close(e.st, &e.io, s, e.now);
	/* No answer at all: SYN retransmitted with backoff, then ETIMEDOUT. */
	s = usnet_socket(e.st, USNET_SOCK_STREAM);
	tnif_clear(e.nif);
	usnet_connect(e.st, &e.io, s, &(struct usnet_addr){ .ip = T_IP_PEER, .port = 82 }, e.now);
	uint64_t t0 = e.now;
	uint64_t times[10]; int n = 0;
	for (uint64_t t = t0; t < t0 + 200 * SEC && n < 10; t += 10 * MS) {
		tenv_advance(&e, t);
		while (t_next_tcp(&e, &p)) if (p.flags == SYN && n < 10) times[n++] = e.now - t0;
	}
	CHECKF(n == 7, "syns %d", n);
	CHECK(times[1] >= 990 * MS && times[1] <= 1020 * MS);
	CHECK(times[2] >= 2990 * MS && times[2] <= 3030 * MS);   /* 1 + 2 */
	CHECK(times[3] >= 6990 * MS && times[3] <= 7040 * MS);   /* 1 + 2 + 4 */
	CHECK(get_state(&e, s) == USNET_TCP_CLOSED);
	CHECK(usnet_getsockopt(e.st, s, USNET_SO_ERROR, &v) == 0 && v == USNET_ETIMEDOUT);
	usnet_close(e.st, &e.io, s, e.now);
	tenv_fini(&e);
	return 0;
}

int test_tcp_rst_closed_port(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	uint8_t f[200];
	tenv_input(&e, f, t_tcp_frame(f, 40000, 9, 1234, 0, SYN, 1000, NULL, 0, NULL, 0));
	struct tpkt p;
	CHECK(t_next_tcp(&e, &p) && p.flags == (RST | ACK) && p.ack == 1235 && p.seq == 0 && p.l4_csum_ok);
	tenv_input(&e, f, t_tcp_frame(f, 40000, 9, 1234, 777, ACK, 1000, NULL, 0, (const uint8_t *)"ab", 2));
	CHECK(t_next_tcp(&e, &p) && p.flags == RST && p.seq == 777);
	tenv_input(&e, f, t_tcp_frame(f, 40000, 9, 1234, 777, RST, 1000, NULL, 0, NULL, 0));
	CHECK(!t_next_tcp(&e, &p));   /* never a RST for a RST */
	struct usnet_stack_stats s; usnet_stack_stats(e.st, &s);
	CHECK(s.tcp_no_port == 3 && s.tcp_rst_tx == 2);
	tenv_fini(&e);
	return 0;
}

int test_tcp_simultaneous_open(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	int32_t s = usnet_socket(e.st, USNET_SOCK_STREAM);
	CHECK(usnet_bind(e.st, s, &(struct usnet_addr){ .ip = 0, .port = 5000 }) == 0);
	usnet_connect(e.st, &e.io, s, &(struct usnet_addr){ .ip = T_IP_PEER, .port = 6000 }, e.now);
	struct tpkt p;
	CHECK(t_next_tcp(&e, &p) && p.flags == SYN && p.sport == 5000);
	uint32_t iss = p.seq;
	uint8_t f[200], o[] = { 2, 4, 0x05, 0xb4 };
	tenv_input(&e, f, t_tcp_frame(f, 6000, 5000, 9000, 0, SYN, 4000, o, sizeof o, NULL, 0));
	CHECK(t_next_tcp(&e, &p) && p.flags == (SYN | ACK) && p.seq == iss && p.ack == 9001);
	CHECK(get_state(&e, s) == USNET_TCP_SYN_RECEIVED);
	tenv_input(&e, f, t_tcp_frame(f, 6000, 5000, 9001, iss + 1, SYN | ACK, 4000, o, sizeof o, NULL, 0));
	/* SYN-ACK from the peer: its ACK completes our side. */
	tenv_input(&e, f, t_tcp_frame(f, 6000, 5000, 9001, iss + 1, ACK, 4000, NULL, 0, NULL, 0));
	CHECK(get_state(&e, s) == USNET_TCP_ESTABLISHED);
	CHECK(tenv_last_event(&e, s) & USNET_EV_OUT);
	usnet_setsockopt(e.st, s, USNET_SO_LINGER, 0);
	usnet_close(e.st, &e.io, s, e.now);
	tenv_fini(&e);
	return 0;
}

/* We close first: FIN_WAIT_1 -> FIN_WAIT_2 -> TIME_WAIT -> gone. */
int test_tcp_active_close(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	struct tconn c;
	CHECK(tconn_accept(&c, &e, 80, 1, 1, 7, 1460) == 0);
	CHECK(usnet_send(e.st, &e.io, c.s, "bye", 3, 0, e.now) == 3);
	CHECK(usnet_shutdown(e.st, &e.io, c.s, 1, e.now) == 0);
	struct tpkt p;
	int got_fin = 0;
	while (t_next_tcp(&e, &p)) if (p.flags & FIN) { got_fin = 1; CHECK(p.seq + p.dlen == c.pack + 3); }
	CHECK(got_fin);
	CHECK(get_state(&e, c.s) == USNET_TCP_FIN_WAIT_1);
	CHECK(usnet_send(e.st, &e.io, c.s, "x", 1, 0, e.now) == -USNET_EPIPE);
	c.pack += 4;
	tconn_send(&c, ACK, NULL, 0, 65535);
	CHECK(get_state(&e, c.s) == USNET_TCP_FIN_WAIT_2);
	/* Half-close: we can still receive. */
	tconn_send(&c, ACK | PSH, "more", 4, 65535);
	char buf[8];
	CHECK(usnet_recv(e.st, &e.io, c.s, buf, sizeof buf, 0, e.now) == 4);
	CHECK(t_next_tcp(&e, &p) && p.flags == ACK && p.ack == c.pseq);   /* a quick ACK */
	tconn_send(&c, FIN | ACK, NULL, 0, 65535);
	CHECK(get_state(&e, c.s) == USNET_TCP_TIME_WAIT);
	CHECK(t_next_tcp(&e, &p) && p.flags == ACK && p.ack == c.pseq);
	CHECK(usnet_recv(e.st, &e.io, c.s, buf, sizeof buf, 0, e.now) == 0);   /* EOF */
	CHECK(usnet_sock_events(e.st, c.s) & USNET_EV_RDHUP);
	/* A retransmitted FIN in TIME_WAIT is ACKed again. */
	tconn_send_seq(&c, c.pseq - 1, FIN | ACK, NULL, 0, 65535);
	CHECK(t_next_tcp(&e, &p) && p.flags == ACK && p.ack == c.pseq);
	usnet_close(e.st, &e.io, c.s, e.now);
	struct usnet_stack_stats s; usnet_stack_stats(e.st, &s);
	CHECK(s.sockets_in_use == 2);   /* listener + TIME_WAIT */
	tenv_advance(&e, e.now + 59 * SEC);
	usnet_stack_stats(e.st, &s);
	CHECK(s.sockets_in_use == 2);
	tenv_advance(&e, e.now + 2 * SEC);
	usnet_stack_stats(e.st, &s);
	CHECK(s.sockets_in_use == 1 && s.buffers_in_use == 0);
	tenv_fini(&e);
	return 0;
}

/* The peer closes first: CLOSE_WAIT -> LAST_ACK -> closed. */
int test_tcp_passive_close(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	struct tconn c;
	CHECK(tconn_accept(&c, &e, 80, 1, 0, -1, 1460) == 0);
	tconn_send(&c, FIN | ACK, "last", 4, 65535);
	CHECK(get_state(&e, c.s) == USNET_TCP_CLOSE_WAIT);
	uint32_t ev = tenv_last_event(&e, c.s);
	CHECK((ev & USNET_EV_IN) && (ev & USNET_EV_RDHUP));
	struct tpkt p;
	CHECK(t_next_tcp(&e, &p) && p.ack == c.pseq);   /* FIN acked at once */
	char buf[8];
	CHECK(usnet_recv(e.st, &e.io, c.s, buf, sizeof buf, 0, e.now) == 4);
	CHECK(usnet_recv(e.st, &e.io, c.s, buf, sizeof buf, 0, e.now) == 0);
	CHECK(usnet_send(e.st, &e.io, c.s, "ok", 2, 0, e.now) == 2);   /* half-open sending */
	CHECK(usnet_close(e.st, &e.io, c.s, e.now) == 0);
	int fin = 0;
	while (t_next_tcp(&e, &p)) if (p.flags & FIN) fin = 1;
	CHECK(fin);
	c.pack += 3;
	tconn_send(&c, ACK, NULL, 0, 65535);
	struct usnet_stack_stats s; usnet_stack_stats(e.st, &s);
	CHECK(s.sockets_in_use == 1 && s.buffers_in_use == 0);
	tenv_fini(&e);
	return 0;
}

int test_tcp_simultaneous_close(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	struct tconn c;
	CHECK(tconn_accept(&c, &e, 80, 0, 0, -1, 1460) == 0);
	usnet_shutdown(e.st, &e.io, c.s, 1, e.now);
	CHECK(get_state(&e, c.s) == USNET_TCP_FIN_WAIT_1);
	/* Their FIN crosses ours (does not ACK our FIN). */
	tconn_send(&c, FIN | ACK, NULL, 0, 65535);
	CHECK(get_state(&e, c.s) == USNET_TCP_CLOSING);
	c.pack += 1;
	tconn_send_seq(&c, c.pseq, ACK, NULL, 0, 65535);
	CHECK(get_state(&e, c.s) == USNET_TCP_TIME_WAIT);
	usnet_close(e.st, &e.io, c.s, e.now);
	tenv_advance(&e, e.now + 61 * SEC);
	struct usnet_stack_stats s; usnet_stack_stats(e.st, &s);
	CHECK(s.sockets_in_use == 1);
	tenv_fini(&e);
	return 0;
}

/* RST handling: exact RST resets, in-window RST and SYN get a challenge
 * ACK (RFC 5961), out-of-window RST is ignored; RST in other states. */
int test_tcp_rst_cases(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	struct tconn c;
	CHECK(tconn_accept(&c, &e, 80, 1, 1, 7, 1460) == 0);
	struct tpkt p;
	tconn_send_seq(&c, c.pseq + 100, RST, NULL, 0, 65535);           /* in window, not exact */
	CHECK(t_next_tcp(&e, &p) && p.flags == ACK && p.ack == c.pseq);  /* challenge ACK */
	CHECK(get_state(&e, c.s) == USNET_TCP_ESTABLISHED);
	tconn_send_seq(&c, c.pseq + 10000000, RST, NULL, 0, 65535);      /* out of window */
	CHECK(!t_next_tcp(&e, &p) && get_state(&e, c.s) == USNET_TCP_ESTABLISHED);
	tconn_send_seq(&c, c.pseq + 5, SYN, NULL, 0, 65535);              /* SYN in window */
	CHECK(t_next_tcp(&e, &p) && p.flags == ACK && p.ack == c.pseq);
	CHECK(get_state(&e, c.s) == USNET_TCP_ESTABLISHED);
	struct usnet_stack_stats s; usnet_stack_stats(e.st, &s);
	CHECK(s.tcp_challenge_ack == 2);
	tconn_send_seq(&c, c.pseq, RST, NULL, 0, 65535);                  /* exact */
	CHECK(get_state(&e, c.s) == USNET_TCP_CLOSED);
	char buf[4];
	CHECK(usnet_recv(e.st, &e.io, c.s, buf, 4, 0, e.now) == -USNET_ECONNRESET);
	CHECK(usnet_recv(e.st, &e.io, c.s, buf, 4, 0, e.now) == 0);
	CHECK(usnet_send(e.st, &e.io, c.s, "x", 1, 0, e.now) == -USNET_EPIPE);
	CHECK(usnet_sock_events(e.st, c.s) & USNET_EV_HUP);
	usnet_close(e.st, &e.io, c.s, e.now);
	/* RST in SYN_RECEIVED removes the embryonic connection. */
	uint8_t f[200];
	tenv_input(&e, f, t_tcp_frame(f, 41000, 80, 500, 0, SYN, 1000, NULL, 0, NULL, 0));
	CHECK(t_next_tcp(&e, &p) && p.flags == (SYN | ACK));
	usnet_stack_stats(e.st, &s);
	uint32_t before = s.sockets_in_use;
	tenv_input(&e, f, t_tcp_frame(f, 41000, 80, 501, 0, RST, 1000, NULL, 0, NULL, 0));
	usnet_stack_stats(e.st, &s);
	CHECK(s.sockets_in_use == before - 1);
	/* Closing with unread data sends RST (data would be lost silently). */
	CHECK(tconn_accept(&c, &e, 81, 1, 1, 7, 1460) == 0);
	tconn_send(&c, ACK, "unread", 6, 65535);
	tnif_clear(e.nif);
	usnet_close(e.st, &e.io, c.s, e.now);
	CHECK(t_next_tcp(&e, &p) && (p.flags & RST));
	tenv_fini(&e);
	return 0;
}

/* Data not acknowledged: retransmitted at RTO, 2 RTO, 4 RTO ... */
int test_tcp_rto_backoff(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	struct tconn c;
	CHECK(tconn_accept(&c, &e, 80, 1, 1, 7, 1460) == 0);
	CHECK(usnet_send(e.st, &e.io, c.s, "data", 4, 0, e.now) == 4);
	struct tpkt p;
	CHECK(t_next_tcp(&e, &p) && p.dlen == 4);
	uint64_t t0 = e.now;
	uint64_t times[8]; int n = 0;
	for (uint64_t t = t0; t < t0 + 20 * SEC; t += 5 * MS) {
		tenv_advance(&e, t);
		while (t_next_tcp(&e, &p)) if (p.dlen == 4 && n < 8) times[n++] = e.now - t0;
	}
	CHECKF(n >= 4, "retransmissions %d", n);
	/* RTO after the handshake's (tiny) RTT sample is the 200 ms floor. */
	CHECKF(times[0] >= 195 * MS && times[0] <= 215 * MS, "first %llu", (unsigned long long)times[0]);
	CHECKF(times[1] - times[0] >= 395 * MS && times[1] - times[0] <= 415 * MS, "second gap %llu", (unsigned long long)(times[1] - times[0]));
	CHECK(times[2] - times[1] >= 795 * MS && times[2] - times[1] <= 815 * MS);
	struct usnet_tcp_info ti; usnet_tcp_info(e.st, c.s, &ti);
	CHECK(ti.total_retrans >= 4 && ti.retransmits >= 4 && ti.cwnd == ti.snd_mss);
	/* The ACK ends it: backoff reset. */
	c.pack += 4;
	tconn_send(&c, ACK, NULL, 0, 65535);
	usnet_tcp_info(e.st, c.s, &ti);
	CHECK(ti.retransmits == 0 && ti.unacked == 0);
	tenv_advance(&e, e.now + 10 * SEC);
	CHECK(!t_next_tcp(&e, &p));
	/* Give up after too many: ETIMEDOUT. */
	usnet_send(e.st, &e.io, c.s, "more", 4, 0, e.now);
	tenv_advance(&e, e.now + 3600 * SEC);
	CHECK(get_state(&e, c.s) == USNET_TCP_CLOSED);
	int v; usnet_getsockopt(e.st, c.s, USNET_SO_ERROR, &v);
	CHECK(v == USNET_ETIMEDOUT);
	usnet_close(e.st, &e.io, c.s, e.now);
	tenv_fini(&e);
	return 0;
}

/* Callers on several threads may each read the clock before they take the
 * stack's lock, so `now` can step back a little between calls: an ACK seen
 * at such an earlier time must not make a wrapped RTT sample (days, and an
 * RTO stuck at its 120 s maximum: a lost segment then waits two minutes). */
int test_tcp_rtt_clock_step_back(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	struct tconn c;
	CHECK(tconn_accept(&c, &e, 80, 0, 0, 7, 1460) == 0);   /* no timestamps: timed segments */
	e.now += 50 * MS;
	CHECK(usnet_send(e.st, &e.io, c.s, "data", 4, 0, e.now) == 4);   /* timed from here */
	struct tpkt p;
	CHECK(t_next_tcp(&e, &p) && p.dlen == 4);
	e.now -= 20 * MS;   /* the ACK comes in a call whose time was read earlier */
	c.pack += 4;
	tconn_send(&c, ACK, NULL, 0, 65535);
	struct usnet_tcp_info ti; usnet_tcp_info(e.st, c.s, &ti);
	CHECKF(ti.unacked == 0 && ti.rto_us <= 1000000, "rto %u us after the ACK", ti.rto_us);
	/* And a lost segment is sent again within a second, not two minutes. */
	CHECK(usnet_send(e.st, &e.io, c.s, "more", 4, 0, e.now) == 4);
	CHECK(t_next_tcp(&e, &p) && p.dlen == 4);
	int again = 0;
	for (uint64_t t = e.now; t < e.now + 1 * SEC && !again; t += 5 * MS) {
		tenv_advance(&e, t);
		while (t_next_tcp(&e, &p)) if (p.dlen == 4) again = 1;
	}
	CHECK(again);
	tenv_fini(&e);
	return 0;
}

static int send_segments(struct tenv *e, struct tconn *c, int nseg, uint32_t *first_seq)
{
	static uint8_t data[64 * 1460];
	for (unsigned i = 0; i < sizeof data; i++) data[i] = (uint8_t)i;
	long r = usnet_send(e->st, &e->io, c->s, data, (size_t)nseg * 1448, 0, e->now);
	struct tpkt p;
	int n = 0;
	*first_seq = 0;
	while (t_next_tcp(e, &p)) if (p.dlen) { if (!n) *first_seq = p.seq; n++; }
	return r < 0 ? -1 : n;
}

/* Three duplicate ACKs: the first unacknowledged segment is resent at once. */
int test_tcp_fast_retransmit(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	struct tconn c;
	CHECK(tconn_accept(&c, &e, 80, 0, 1, 7, 1460) == 0);   /* no SACK: NewReno */
	usnet_setsockopt(e.st, c.s, USNET_TCP_NODELAY, 1);
	uint32_t s0;
	int n = send_segments(&e, &c, 8, &s0);
	CHECKF(n == 8, "sent %d", n);
	/* Segment 1 lost: the peer ACKs segment 0 then repeats that ACK. */
	c.pack = s0 + 1448;
	tconn_send(&c, ACK, NULL, 0, 2000);
	struct tpkt p;
	for (int i = 0; i < 2; i++) tconn_send(&c, ACK, NULL, 0, 2000);
	CHECK(!t_next_tcp(&e, &p));
	tconn_send(&c, ACK, NULL, 0, 2000);   /* third duplicate */
	CHECK(t_next_tcp(&e, &p) && p.seq == s0 + 1448 && p.dlen == 1448);
	struct usnet_tcp_info ti; usnet_tcp_info(e.st, c.s, &ti);
	CHECK(ti.total_retrans == 1 && ti.ssthresh < 0x7fffffff);
	/* Partial ACK (NewReno): the next hole is resent. */
	c.pack = s0 + 3 * 1448;
	tconn_send(&c, ACK, NULL, 0, 2000);
	int found = 0;
	while (t_next_tcp(&e, &p)) if (p.seq == s0 + 3 * 1448 && p.dlen) found = 1;
	CHECK(found);
	/* Full ACK ends recovery. */
	c.pack = s0 + 8 * 1448;
	tconn_send(&c, ACK, NULL, 0, 2000);
	usnet_tcp_info(e.st, c.s, &ti);
	CHECK(ti.unacked == 0 && ti.cwnd <= ti.ssthresh);
	usnet_setsockopt(e.st, c.s, USNET_SO_LINGER, 0);
	usnet_close(e.st, &e.io, c.s, e.now);
	tenv_fini(&e);
	return 0;
}

/* SACK: only the holes are retransmitted. */
int test_tcp_sack_recovery(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	struct tconn c;
	CHECK(tconn_accept(&c, &e, 80, 1, 1, 7, 1460) == 0);
	usnet_setsockopt(e.st, c.s, USNET_TCP_NODELAY, 1);
	uint32_t s0;
	int n = send_segments(&e, &c, 10, &s0);
	CHECKF(n == 10, "sent %d", n);
	uint32_t M = 1448;
	/* Lost: segments 2 and 5.  SACKed: 3-4, 6-9. */
	c.pack = s0 + 2 * M;
	tconn_send(&c, ACK, NULL, 0, 2000);
	uint32_t b[2][2] = { { s0 + 3 * M, s0 + 5 * M }, { s0 + 6 * M, s0 + 10 * M } };
	tconn_send_sack(&c, s0 + 2 * M, (const uint32_t (*)[2])b, 2, 2000);
	struct tpkt p;
	uint32_t resent[8]; int k = 0;
	while (t_next_tcp(&e, &p)) if (p.dlen && k < 8) resent[k++] = p.seq;
	CHECKF(k == 2 && resent[0] == s0 + 2 * M && resent[1] == s0 + 5 * M, "k=%d", k);
	struct usnet_tcp_info ti; usnet_tcp_info(e.st, c.s, &ti);
	CHECK(ti.sacked == 6 * M && ti.total_retrans == 2);
	c.pack = s0 + 10 * M;
	tconn_send(&c, ACK, NULL, 0, 2000);
	usnet_tcp_info(e.st, c.s, &ti);
	CHECK(ti.unacked == 0 && ti.sacked == 0);
	usnet_setsockopt(e.st, c.s, USNET_SO_LINGER, 0);
	usnet_close(e.st, &e.io, c.s, e.now);
	tenv_fini(&e);
	return 0;
}

/* A data segment that also carries SACK blocks (a hole on the receive
 * side) never grows past the MTU: the option costs 4 + 8n bytes (two NOPs,
 * kind, length), and a block that does not fit is left out.  Payloads just
 * under a full segment leave 10 or 11 bytes, too few for one block. */
int test_tcp_sack_option_fits_mtu(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	struct tconn c;
	CHECK(tconn_accept(&c, &e, 80, 1, 1, 7, 1460) == 0);
	usnet_setsockopt(e.st, c.s, USNET_TCP_NODELAY, 1);
	struct tpkt p;
	/* A hole: bytes 10..14 arrive before 0..9. */
	tconn_send_seq(&c, c.pseq + 10, ACK, "KLMNO", 5, 65535);
	CHECK(t_next_tcp(&e, &p) && p.nsack == 1);
	static uint8_t data[1448];
	for (uint32_t len = 1420; len <= 1448; len++) {
		CHECK(usnet_send(e.st, &e.io, c.s, data, len, 0, e.now) == (long)len);
		uint32_t got = 0;
		while (t_next_tcp(&e, &p)) {
			CHECKF(p.iplen <= 1500, "payload %u: IP packet of %u bytes (%d SACK blocks)",
			       len, p.iplen, p.nsack);
			/* Room for a block (12 bytes) beside 12 of timestamps: sent. */
			if (p.dlen && 1460 - 12 - p.dlen >= 12)
				CHECKF(p.nsack == 1, "payload %u: SACK left out", p.dlen);
			got += p.dlen;
			c.pack = p.seq + p.dlen;
		}
		CHECKF(got == len, "payload %u: %u bytes sent", len, got);
		tconn_send(&c, ACK, NULL, 0, 65535);
		while (t_next_tcp(&e, &p))
			;
	}
	usnet_setsockopt(e.st, c.s, USNET_SO_LINGER, 0);
	usnet_close(e.st, &e.io, c.s, e.now);
	tenv_fini(&e);
	return 0;
}

/* The receiver: out-of-order segments are held, SACKed, then delivered. */
int test_tcp_ooo_reassembly(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	struct tconn c;
	CHECK(tconn_accept(&c, &e, 80, 1, 1, 7, 1460) == 0);
	uint32_t base = c.pseq;
	struct tpkt p;
	tconn_send_seq(&c, base + 10, ACK, "KLMNO", 5, 65535);
	CHECK(t_next_tcp(&e, &p) && p.ack == base && p.nsack == 1 && p.sack[0][0] == base + 10 && p.sack[0][1] == base + 15);
	tconn_send_seq(&c, base + 20, ACK, "UVWXY", 5, 65535);
	CHECK(t_next_tcp(&e, &p) && p.nsack == 2 && p.sack[0][0] == base + 20 && p.sack[1][0] == base + 10);
	tconn_send_seq(&c, base + 8, ACK, "IJKLMNOPQ", 9, 65535);   /* overlaps the first */
	CHECK(t_next_tcp(&e, &p) && p.sack[0][0] == base + 8 && p.sack[0][1] == base + 17);
	CHECK(usnet_sock_readable_bytes(e.st, c.s) == 0);
	tconn_send_seq(&c, base, ACK, "ABCDEFGH", 8, 65535);
	CHECK(t_next_tcp(&e, &p) && p.ack == base + 17 && p.nsack == 1);
	tconn_send_seq(&c, base + 17, ACK, "RST", 3, 65535);
	CHECK(t_next_tcp(&e, &p) && p.ack == base + 25 && p.nsack == 0);
	char buf[32];
	CHECK(usnet_recv(e.st, &e.io, c.s, buf, sizeof buf, 0, e.now) == 25);
	CHECK(memcmp(buf, "ABCDEFGHIJKLMNOPQRSTUVWXY", 25) == 0);
	/* An out-of-order FIN is held until the hole fills. */
	c.pseq = base + 25;
	tconn_send_seq(&c, c.pseq + 3, FIN | ACK, "def", 3, 65535);
	CHECK(get_state(&e, c.s) == USNET_TCP_ESTABLISHED);
	tconn_send_seq(&c, c.pseq, ACK, "abc", 3, 65535);
	CHECK(get_state(&e, c.s) == USNET_TCP_CLOSE_WAIT);
	CHECK(usnet_recv(e.st, &e.io, c.s, buf, sizeof buf, 0, e.now) == 6 && memcmp(buf, "abcdef", 6) == 0);
	CHECK(usnet_recv(e.st, &e.io, c.s, buf, sizeof buf, 0, e.now) == 0);
	usnet_close(e.st, &e.io, c.s, e.now);
	tenv_fini(&e);
	return 0;
}

/* The window scale offered as Linux chooses it: from tcp_rmem's limit
 * (6 MiB by default: 7), or from SO_RCVBUF when the program set it; and
 * listen()'s backlog capped at somaxconn. */
int test_tcp_wscale_linux(void)
{
	struct usnet_stack_config cfg;
	tenv_default_cfg(&cfg);
	cfg.somaxconn = 2;
	struct tenv e; tenv_init(&e, &cfg);
	tenv_learn_peer(&e);
	int32_t l = usnet_socket(e.st, USNET_SOCK_STREAM);
	usnet_bind(e.st, l, &(struct usnet_addr){ .ip = 0, .port = 80 });
	CHECK(usnet_listen(e.st, l, 128) == 0);
	uint8_t f[2000], o[] = { 2, 4, 0x05, 0xb4, 1, 3, 3, 2 };   /* WS 2 */
	struct tpkt p;
	tenv_input(&e, f, t_tcp_frame(f, 40000, 80, 100, 0, SYN, 1000, o, sizeof o, NULL, 0));
	CHECKF(t_next_tcp(&e, &p) && p.ws == 7, "ws %d", p.ws);
	/* a listener with SO_RCVBUF 256 KiB: 3 */
	int32_t l2 = usnet_socket(e.st, USNET_SOCK_STREAM);
	usnet_bind(e.st, l2, &(struct usnet_addr){ .ip = 0, .port = 81 });
	usnet_setsockopt(e.st, l2, USNET_SO_RCVBUF, 256 * 1024);
	usnet_listen(e.st, l2, 4);
	tenv_input(&e, f, t_tcp_frame(f, 40001, 81, 100, 0, SYN, 1000, o, sizeof o, NULL, 0));
	CHECKF(t_next_tcp(&e, &p) && p.ws == 3, "ws %d", p.ws);
	/* the backlog of 128 became somaxconn's 2: a third SYN on port 80
	 * gets a cookie, not a queued connection */
	tenv_input(&e, f, t_tcp_frame(f, 40002, 80, 100, 0, SYN, 1000, o, sizeof o, NULL, 0));
	CHECK(t_next_tcp(&e, &p));
	tenv_input(&e, f, t_tcp_frame(f, 40003, 80, 100, 0, SYN, 1000, o, sizeof o, NULL, 0));
	CHECK(t_next_tcp(&e, &p));
	struct usnet_stack_stats st; usnet_stack_stats(e.st, &st);
	CHECKF(st.tcp_syncookies_sent == 1, "cookies %llu", (unsigned long long)st.tcp_syncookies_sent);
	usnet_close(e.st, &e.io, l, e.now);
	usnet_close(e.st, &e.io, l2, e.now);
	tenv_advance(&e, e.now + 100 * SEC);
	tenv_fini(&e);
	return 0;
}

/* TCP_DEFER_ACCEPT (3 s: two SYN-ACK timeouts, read back as 3): the
 * handshake's ACK alone completes nothing; no SYN-ACK goes again until the
 * deferral's last timeout, and the ACK to that one completes it.  A client
 * that sends data is acceptable at once. */
int test_tcp_defer_accept(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	int32_t l = usnet_socket(e.st, USNET_SOCK_STREAM);
	usnet_bind(e.st, l, &(struct usnet_addr){ .ip = 0, .port = 80 });
	usnet_listen(e.st, l, 8);
	int v = 0;
	CHECK(usnet_setsockopt(e.st, l, USNET_TCP_DEFER_ACCEPT, 3) == 0);
	CHECK(usnet_getsockopt(e.st, l, USNET_TCP_DEFER_ACCEPT, &v) == 0 && v == 3);
	uint8_t f[2000];
	struct tpkt p;
	tenv_input(&e, f, t_tcp_frame(f, 40000, 80, 100, 0, SYN, 65535, NULL, 0, NULL, 0));
	CHECK(t_next_tcp(&e, &p) && (p.flags & SYN));
	uint32_t iss = p.seq;
	tenv_input(&e, f, t_tcp_frame(f, 40000, 80, 101, iss + 1, ACK, 65535, NULL, 0, NULL, 0));
	CHECK(usnet_accept(e.st, &e.io, l, NULL, e.now) == -USNET_EAGAIN);
	/* the first timeout sends nothing (the ACK came) */
	tenv_advance(&e, e.now + 1100 * MS);
	CHECK(!t_next_tcp(&e, &p));
	CHECK(usnet_accept(e.st, &e.io, l, NULL, e.now) == -USNET_EAGAIN);
	/* the last one sends the SYN-ACK again; the ACK to it completes */
	tenv_advance(&e, e.now + 2100 * MS);
	CHECK(t_next_tcp(&e, &p) && (p.flags & SYN) && p.seq == iss);
	tenv_input(&e, f, t_tcp_frame(f, 40000, 80, 101, iss + 1, ACK, 65535, NULL, 0, NULL, 0));
	int32_t a = usnet_accept(e.st, &e.io, l, NULL, e.now);
	CHECK(a >= 0);
	/* data with the handshake's ACK: acceptable at once */
	tenv_input(&e, f, t_tcp_frame(f, 40001, 80, 500, 0, SYN, 65535, NULL, 0, NULL, 0));
	CHECK(t_next_tcp(&e, &p) && (p.flags & SYN));
	iss = p.seq;
	tenv_input(&e, f, t_tcp_frame(f, 40001, 80, 501, iss + 1, ACK, 65535, NULL, 0, (const uint8_t *)"hi", 2));
	int32_t b = usnet_accept(e.st, &e.io, l, NULL, e.now);
	CHECK(b >= 0);
	char buf[4];
	CHECK(usnet_recv(e.st, &e.io, b, buf, sizeof buf, 0, e.now) == 2 && memcmp(buf, "hi", 2) == 0);
	usnet_setsockopt(e.st, a, USNET_SO_LINGER, 0);
	usnet_setsockopt(e.st, b, USNET_SO_LINGER, 0);
	usnet_close(e.st, &e.io, a, e.now);
	usnet_close(e.st, &e.io, b, e.now);
	usnet_close(e.st, &e.io, l, e.now);
	tenv_advance(&e, e.now + 100 * SEC);
	tenv_fini(&e);
	return 0;
}

/* Window scaling both ways, and the receive window honoured. */
int test_tcp_window_scaling(void)
{
	struct usnet_stack_config cfg;
	tenv_default_cfg(&cfg);
	cfg.rcvbuf = 1 << 20;
	cfg.tcp_rmem_max = 1 << 20;   /* the scale follows the buffer's limit */
	struct tenv e; tenv_init(&e, &cfg);
	tenv_learn_peer(&e);
	int32_t l = usnet_socket(e.st, USNET_SOCK_STREAM);
	usnet_bind(e.st, l, &(struct usnet_addr){ .ip = 0, .port = 80 });
	usnet_listen(e.st, l, 4);
	uint8_t f[2000], o[] = { 2, 4, 0x05, 0xb4, 1, 3, 3, 2 };   /* WS 2 */
	tenv_input(&e, f, t_tcp_frame(f, 40000, 80, 100, 0, SYN, 1000, o, sizeof o, NULL, 0));
	struct tpkt p;
	CHECK(t_next_tcp(&e, &p) && p.ws == 5 && p.win == 65535);   /* 1 MiB needs shift 5 */
	uint32_t iss = p.seq;
	tenv_input(&e, f, t_tcp_frame(f, 40000, 80, 101, iss + 1, ACK, 1000, NULL, 0, NULL, 0));
	int32_t s = usnet_accept(e.st, &e.io, l, NULL, e.now);
	CHECK(s >= 0);
	struct usnet_tcp_info ti; usnet_tcp_info(e.st, s, &ti);
	CHECK(ti.snd_wnd == 4000 && ti.rcv_wscale == 5 && ti.snd_wscale == 2);
	/* Our window advertisement is scaled: 1 MiB >> 5. */
	tenv_input(&e, f, t_tcp_frame(f, 40000, 80, 101, iss + 1, ACK, 1000, NULL, 0, (const uint8_t *)"x", 1));
	tenv_advance(&e, e.now + 100 * MS);
	CHECK(t_next_tcp(&e, &p) && p.ack == 102);
	CHECKF(p.win >= ((1u << 20) - 2048) >> 5 && p.win <= (1u << 20) >> 5, "win %u", p.win);
	/* We send no more than the peer's 4000-byte window. */
	static uint8_t big[20000];
	usnet_setsockopt(e.st, s, USNET_TCP_NODELAY, 1);
	CHECK(usnet_send(e.st, &e.io, s, big, sizeof big, 0, e.now) > 0);
	uint32_t sent = 0;
	while (t_next_tcp(&e, &p)) sent += p.dlen;
	CHECKF(sent == 4000 || sent == 2 * 1460, "sent %u", sent);
	usnet_setsockopt(e.st, s, USNET_SO_LINGER, 0);
	usnet_close(e.st, &e.io, s, e.now);
	usnet_close(e.st, &e.io, l, e.now);
	tenv_fini(&e);
	return 0;
}

/* Zero window: probes with backoff, data resumes when the window opens. */
int test_tcp_zero_window(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	struct tconn c;
	CHECK(tconn_accept(&c, &e, 80, 1, 1, -1, 1460) == 0);
	tconn_send(&c, ACK, NULL, 0, 0);   /* window closed */
	CHECK(usnet_send(e.st, &e.io, c.s, "hello", 5, 0, e.now) == 5);
	struct tpkt p;
	CHECK(!t_next_tcp(&e, &p));
	uint64_t t0 = e.now;
	int probes = 0;
	for (uint64_t t = t0; t < t0 + 5 * SEC; t += 10 * MS) {
		tenv_advance(&e, t);
		while (t_next_tcp(&e, &p)) {
			CHECK(p.dlen == 0 && p.seq == c.pack - 1);   /* probe: old seq */
			probes++;
			tconn_send(&c, ACK, NULL, 0, 0);             /* still closed */
		}
	}
	CHECKF(probes >= 2 && probes <= 6, "probes %d", probes);
	tconn_send(&c, ACK, NULL, 0, 1000);
	CHECK(t_next_tcp(&e, &p) && p.dlen == 5 && memcmp(p.data, "hello", 5) == 0);
	/* Our own receive window closes when the application does not read. */
	static uint8_t chunk[1000];
	struct usnet_tcp_info ti;
	for (int i = 0; i < 80; i++) tconn_send(&c, ACK, chunk, 1000, 65535);
	usnet_tcp_info(e.st, c.s, &ti);
	CHECKF(ti.rcv_wnd < 1000, "rcv_wnd %u", ti.rcv_wnd);
	CHECK(usnet_sock_readable_bytes(e.st, c.s) <= 65536 + 1000);
	/* A probe gets an ACK with the (zero) window. */
	tnif_clear(e.nif);
	tconn_send_seq(&c, c.pseq - 1, ACK, NULL, 0, 65535);
	CHECK(t_next_tcp(&e, &p) && p.flags == ACK);
	/* Reading opens it, and a window update is sent. */
	static char sink[70000];
	tnif_clear(e.nif);
	CHECK(usnet_recv(e.st, &e.io, c.s, sink, sizeof sink, 0, e.now) > 60000);
	CHECK(t_next_tcp(&e, &p) && p.win > 100);
	usnet_setsockopt(e.st, c.s, USNET_SO_LINGER, 0);
	usnet_close(e.st, &e.io, c.s, e.now);
	tenv_fini(&e);
	return 0;
}

int test_tcp_keepalive(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	struct tconn c;
	CHECK(tconn_accept(&c, &e, 80, 1, 1, -1, 1460) == 0);
	CHECK(usnet_setsockopt(e.st, c.s, USNET_TCP_KEEPIDLE, 10) == 0);
	CHECK(usnet_setsockopt(e.st, c.s, USNET_TCP_KEEPINTVL, 2) == 0);
	CHECK(usnet_setsockopt(e.st, c.s, USNET_TCP_KEEPCNT, 3) == 0);
	CHECK(usnet_setsockopt(e.st, c.s, USNET_SO_KEEPALIVE, 1) == 0);
	uint64_t t0 = e.now;
	struct tpkt p;
	tenv_advance(&e, t0 + 9 * SEC);
	CHECK(!t_next_tcp(&e, &p));
	tenv_advance(&e, t0 + 11 * SEC);
	CHECK(t_next_tcp(&e, &p) && p.dlen == 0 && p.seq == c.pack - 1);
	tconn_send(&c, ACK, NULL, 0, 65535);   /* answered: idle again */
	tenv_advance(&e, e.now + 9 * SEC);
	CHECK(!t_next_tcp(&e, &p));
	/* Unanswered: 3 probes then the connection is dropped. */
	tenv_advance(&e, e.now + 30 * SEC);
	int probes = 0;
	while (t_next_tcp(&e, &p)) if (!(p.flags & RST)) probes++;
	CHECKF(probes == 3, "probes %d", probes);
	CHECK(get_state(&e, c.s) == USNET_TCP_CLOSED);
	int v; usnet_getsockopt(e.st, c.s, USNET_SO_ERROR, &v);
	CHECK(v == USNET_ETIMEDOUT);
	usnet_close(e.st, &e.io, c.s, e.now);
	tenv_fini(&e);
	return 0;
}

/* ACK timing as Linux: the first data of a connection starts a run of
 * quick ACKs (each segment acked at once); an answer within the
 * delayed-ACK time makes the connection interactive (pingpong), whose ACKs
 * then wait up to 40 ms to go with the answer, every second full segment
 * acked at once; a delayed ACK that had to go alone ends that.
 * TCP_QUICKACK reads and sets the opposite of pingpong.  Quick ACKs used
 * up, a lone segment waits; after an idle longer than the RTO, quick ACKs
 * start again. */
int test_tcp_delayed_ack(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	struct tconn c;
	CHECK(tconn_accept(&c, &e, 80, 1, 1, 7, 1460) == 0);
	static uint8_t d[1448];
	char buf[4096];
	struct tpkt p;
	int v = -1;
	CHECK(usnet_getsockopt(e.st, c.s, USNET_TCP_QUICKACK, &v) == 0 && v == 1);
	tconn_send(&c, ACK, "a", 1, 65535);
	CHECK(t_next_tcp(&e, &p) && p.dlen == 0 && p.ack == c.pseq);   /* quick */
	/* an answer at once: interactive from now */
	tconn_send(&c, ACK, "q", 1, 65535);
	CHECK(t_next_tcp(&e, &p) && p.dlen == 0 && p.ack == c.pseq);
	usnet_send(e.st, &e.io, c.s, "r", 1, 0, e.now);
	CHECK(t_next_tcp(&e, &p) && p.dlen == 1);
	c.pack += 1;
	tconn_send(&c, ACK, NULL, 0, 65535);
	CHECK(usnet_getsockopt(e.st, c.s, USNET_TCP_QUICKACK, &v) == 0 && v == 0);
	/* interactive: a request's ACK goes with its answer */
	tconn_send(&c, ACK, "s", 1, 65535);
	CHECK(!t_next_tcp(&e, &p));
	usnet_send(e.st, &e.io, c.s, "t", 1, 0, e.now);
	CHECK(t_next_tcp(&e, &p) && p.dlen == 1 && p.ack == c.pseq);
	CHECK(!t_next_tcp(&e, &p));
	c.pack += 1;
	tconn_send(&c, ACK, NULL, 0, 65535);
	/* every second full segment is acked at once */
	tconn_send(&c, ACK, d, sizeof d, 65535);
	CHECK(!t_next_tcp(&e, &p));
	tconn_send(&c, ACK, d, sizeof d, 65535);
	CHECK(t_next_tcp(&e, &p) && p.ack == c.pseq);
	/* one with no answer waits 40 ms, and ends the interactive mode */
	tconn_send(&c, ACK, "u", 1, 65535);
	CHECK(!t_next_tcp(&e, &p));
	tenv_advance(&e, e.now + 39 * MS);
	CHECK(!t_next_tcp(&e, &p));
	tenv_advance(&e, e.now + 2 * MS);
	CHECK(t_next_tcp(&e, &p) && p.ack == c.pseq);
	CHECK(usnet_getsockopt(e.st, c.s, USNET_TCP_QUICKACK, &v) == 0 && v == 1);
	/* TCP_QUICKACK 0 makes it interactive again */
	CHECK(usnet_setsockopt(e.st, c.s, USNET_TCP_QUICKACK, 0) == 0);
	tconn_send(&c, ACK, "v", 1, 65535);
	CHECK(!t_next_tcp(&e, &p));
	CHECK(usnet_setsockopt(e.st, c.s, USNET_TCP_QUICKACK, 1) == 0);
	tenv_advance(&e, e.now + 41 * MS);
	tnif_clear(e.nif);
	/* the quick ACKs run out: then a lone segment waits */
	int waited = 0;
	for (int i = 0; i < 20 && !waited; i++) {
		tconn_send(&c, ACK, "w", 1, 65535);
		waited = !t_next_tcp(&e, &p);
	}
	CHECK(waited);
	usnet_recv(e.st, &e.io, c.s, buf, sizeof buf, 0, e.now);
	/* after an idle longer than the RTO, quick ACKs again */
	tenv_advance(&e, e.now + 2 * SEC);
	tnif_clear(e.nif);
	tconn_send(&c, ACK, "x", 1, 65535);
	CHECK(t_next_tcp(&e, &p) && p.dlen == 0 && p.ack == c.pseq);
	usnet_setsockopt(e.st, c.s, USNET_SO_LINGER, 0);
	usnet_close(e.st, &e.io, c.s, e.now);
	tenv_fini(&e);
	return 0;
}

/* Nagle: a second small segment waits for the ACK of the first, unless
 * TCP_NODELAY. */
int test_tcp_nagle(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	struct tconn c;
	CHECK(tconn_accept(&c, &e, 80, 1, 1, 7, 1460) == 0);
	struct tpkt p;
	usnet_send(e.st, &e.io, c.s, "a", 1, 0, e.now);
	CHECK(t_next_tcp(&e, &p) && p.dlen == 1);
	usnet_send(e.st, &e.io, c.s, "b", 1, 0, e.now);
	usnet_send(e.st, &e.io, c.s, "c", 1, 0, e.now);
	CHECK(!t_next_tcp(&e, &p));
	c.pack += 1;
	tconn_send(&c, ACK, NULL, 0, 65535);
	CHECK(t_next_tcp(&e, &p) && p.dlen == 2 && memcmp(p.data, "bc", 2) == 0);
	c.pack += 2;
	tconn_send(&c, ACK, NULL, 0, 65535);
	usnet_setsockopt(e.st, c.s, USNET_TCP_NODELAY, 1);
	usnet_send(e.st, &e.io, c.s, "d", 1, 0, e.now);
	usnet_send(e.st, &e.io, c.s, "e", 1, 0, e.now);
	CHECK(t_count_tcp(&e) == 2);
	usnet_setsockopt(e.st, c.s, USNET_SO_LINGER, 0);
	usnet_close(e.st, &e.io, c.s, e.now);
	tenv_fini(&e);
	return 0;
}

/* TCP_CORK: small writes wait, even with nothing in flight, until the
 * option is cleared (usnet_push sends them as one segment) or its 200 ms
 * ceiling; the same pieces then leave at once after TCP_NODELAY + push. */
int test_tcp_cork(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	struct tconn c;
	CHECK(tconn_accept(&c, &e, 80, 1, 1, 7, 1460) == 0);
	struct tpkt p;
	int v = -1;
	CHECK(usnet_setsockopt(e.st, c.s, USNET_TCP_CORK, 1) == 0);
	CHECK(usnet_getsockopt(e.st, c.s, USNET_TCP_CORK, &v) == 0 && v == 1);
	usnet_send(e.st, &e.io, c.s, "head", 4, 0, e.now);
	usnet_send(e.st, &e.io, c.s, "body", 4, 0, e.now);
	CHECK(!t_next_tcp(&e, &p));
	CHECK(usnet_setsockopt(e.st, c.s, USNET_TCP_CORK, 0) == 0);
	CHECK(!t_next_tcp(&e, &p));   /* setsockopt alone has no io: the push sends */
	CHECK(usnet_push(e.st, &e.io, c.s, e.now) == 0);
	CHECK(t_next_tcp(&e, &p) && p.dlen == 8 && memcmp(p.data, "headbody", 8) == 0);
	c.pack += 8;
	tconn_send(&c, ACK, NULL, 0, 65535);
	/* Corked and never cleared: the ceiling sends it. */
	usnet_setsockopt(e.st, c.s, USNET_TCP_CORK, 1);
	usnet_send(e.st, &e.io, c.s, "late", 4, 0, e.now);
	tenv_advance(&e, e.now + 100 * MS);
	CHECK(!t_next_tcp(&e, &p));
	tenv_advance(&e, e.now + 150 * MS);
	CHECK(t_next_tcp(&e, &p) && p.dlen == 4 && memcmp(p.data, "late", 4) == 0);
	c.pack += 4;
	tconn_send(&c, ACK, NULL, 0, 65535);
	/* Nagle holds the second piece while the first is unacknowledged;
	 * setting TCP_NODELAY and pushing sends it, as Linux does. */
	usnet_setsockopt(e.st, c.s, USNET_TCP_CORK, 0);
	usnet_send(e.st, &e.io, c.s, "a", 1, 0, e.now);
	CHECK(t_next_tcp(&e, &p) && p.dlen == 1);
	usnet_send(e.st, &e.io, c.s, "b", 1, 0, e.now);
	CHECK(!t_next_tcp(&e, &p));
	usnet_setsockopt(e.st, c.s, USNET_TCP_NODELAY, 1);
	usnet_push(e.st, &e.io, c.s, e.now);
	CHECK(t_next_tcp(&e, &p) && p.dlen == 1 && p.data[0] == 'b');
	/* Closing sends corked data with the FIN. */
	c.pack += 2;
	tconn_send(&c, ACK, NULL, 0, 65535);
	usnet_setsockopt(e.st, c.s, USNET_TCP_CORK, 1);
	usnet_send(e.st, &e.io, c.s, "bye", 3, 0, e.now);
	CHECK(!t_next_tcp(&e, &p));
	usnet_shutdown(e.st, &e.io, c.s, 1, e.now);
	CHECK(t_next_tcp(&e, &p) && p.dlen == 3 && (p.flags & FIN));
	usnet_setsockopt(e.st, c.s, USNET_SO_LINGER, 0);
	usnet_close(e.st, &e.io, c.s, e.now);
	tenv_fini(&e);
	return 0;
}

/* PAWS: a segment with an old timestamp is dropped (and ACKed). */
int test_tcp_paws(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	struct tconn c;
	CHECK(tconn_accept(&c, &e, 80, 1, 1, 7, 1460) == 0);
	tconn_send(&c, ACK, "new", 3, 65535);
	c.ts_val -= 100;   /* the peer's clock "goes back": an old duplicate */
	tconn_send(&c, ACK, "old", 3, 65535);
	CHECK(usnet_sock_readable_bytes(e.st, c.s) == 3);
	usnet_setsockopt(e.st, c.s, USNET_SO_LINGER, 0);
	usnet_close(e.st, &e.io, c.s, e.now);
	tenv_fini(&e);
	return 0;
}

/* ICMP fragmentation-needed lowers the MSS and resends smaller. */
int test_tcp_pmtu(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	struct tconn c;
	CHECK(tconn_accept(&c, &e, 80, 1, 0, 7, 1460) == 0);
	usnet_setsockopt(e.st, c.s, USNET_TCP_NODELAY, 1);
	static uint8_t d[3000];
	usnet_send(e.st, &e.io, c.s, d, sizeof d, 0, e.now);
	struct tpkt p;
	CHECK(t_next_tcp(&e, &p) && p.dlen == 1460);
	struct tframe *orig = &e.nif->out[e.nif->rd - 1];
	uint8_t icmp[8 + 28], f[200];
	memset(icmp, 0, sizeof icmp);
	icmp[0] = 3; icmp[1] = 4; icmp[6] = 1000 >> 8; icmp[7] = 1000 & 0xff;
	memcpy(icmp + 8, orig->d + 14, 28);
	uint16_t cs = t_csum(icmp, sizeof icmp, 0);
	icmp[2] = (uint8_t)(cs >> 8); icmp[3] = (uint8_t)cs;
	tnif_clear(e.nif);
	tenv_input(&e, f, t_ip_frame(f, T_MAC_US, T_MAC_PEER, 0x0a000005, T_IP_US, 1, 1, 0, icmp, sizeof icmp));
	int small = 0, seen = 0;
	while (t_next_tcp(&e, &p)) if (p.dlen) { seen++; if (p.dlen <= 960) small++; }
	CHECKF(seen > 0 && small == seen, "seen %d small %d", seen, small);
	usnet_setsockopt(e.st, c.s, USNET_SO_LINGER, 0);
	usnet_close(e.st, &e.io, c.s, e.now);
	tenv_fini(&e);
	return 0;
}

/* The listen backlog bounds the SYN queue; past it, SYN cookies answer
 * (Linux's default), or with cookies off the SYNs are dropped. */
int test_tcp_backlog(void)
{
	for (int cookies = 0; cookies <= 1; cookies++) {
		struct usnet_stack_config cfg;
		tenv_default_cfg(&cfg);
		cfg.tcp_syncookies = (uint8_t)cookies;
		struct tenv e; tenv_init(&e, &cfg);
		tenv_learn_peer(&e);
		int32_t l = usnet_socket(e.st, USNET_SOCK_STREAM);
		usnet_bind(e.st, l, &(struct usnet_addr){ .ip = 0, .port = 80 });
		usnet_listen(e.st, l, 2);
		uint8_t f[200];
		for (int i = 0; i < 4; i++)
			tenv_input(&e, f, t_tcp_frame(f, (uint16_t)(40000 + i), 80, 100, 0, SYN, 1000, NULL, 0, NULL, 0));
		CHECKF(t_count_tcp(&e) == (cookies ? 4u : 2u), "cookies %d", cookies);
		struct usnet_stack_stats s; usnet_stack_stats(e.st, &s);
		CHECK(s.sockets_in_use == 3);   /* the cookies keep nothing */
		CHECK(s.tcp_syncookies_sent == (cookies ? 2u : 0u) && s.tcp_listen_drop == (cookies ? 0u : 2u));
		/* Closing the listener resets the embryonic ones. */
		usnet_close(e.st, &e.io, l, e.now);
		usnet_stack_stats(e.st, &s);
		CHECK(s.sockets_in_use == 0);
		tenv_fini(&e);
	}
	return 0;
}

/* A SYN's options: MSS 1460, SACK permitted, timestamps, window scale 7. */
static uint32_t syn_opts(uint8_t *o, int ts, uint32_t tsval)
{
	uint32_t n = 0;
	o[n++] = 2; o[n++] = 4; o[n++] = 1460 >> 8; o[n++] = 1460 & 0xff;
	o[n++] = 4; o[n++] = 2;
	if (ts) {
		o[n++] = 8; o[n++] = 10;
		o[n++] = (uint8_t)(tsval >> 24); o[n++] = (uint8_t)(tsval >> 16); o[n++] = (uint8_t)(tsval >> 8); o[n++] = (uint8_t)tsval;
		o[n++] = 0; o[n++] = 0; o[n++] = 0; o[n++] = 0;
	}
	o[n++] = 1; o[n++] = 3; o[n++] = 3; o[n++] = 7;
	return n;
}

/* SYN cookies: the queue full, a SYN is answered with a cookie; the ACK
 * that brings it back makes the connection (with the window scale and SACK
 * the SYN offered, carried in our timestamp), data flows; an ACK with a
 * forged cookie gets a RST. */
int test_tcp_syncookie(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	int32_t l = usnet_socket(e.st, USNET_SOCK_STREAM);
	usnet_bind(e.st, l, &(struct usnet_addr){ .ip = 0, .port = 80 });
	usnet_listen(e.st, l, 1);
	uint8_t f[300], o[40];
	tenv_input(&e, f, t_tcp_frame(f, 41000, 80, 500, 0, SYN, 1000, NULL, 0, NULL, 0));   /* fills the queue */
	tnif_clear(e.nif);
	uint32_t n = syn_opts(o, 1, 777);
	tenv_input(&e, f, t_tcp_frame(f, 41001, 80, 9000, 0, SYN, 1000, o, n, NULL, 0));
	struct tpkt p;
	CHECK(t_next_tcp(&e, &p) && p.flags == (SYN | ACK) && p.ack == 9001 && p.has_ts && p.tsecr == 777);
	CHECKF(p.mss == 1460 && p.sack_perm && p.ws > 0, "mss %u sack %d ws %d", p.mss, p.sack_perm, p.ws);
	uint32_t cookie = p.seq, ts = p.tsval;
	struct usnet_stack_stats s; usnet_stack_stats(e.st, &s);
	CHECK(s.tcp_syncookies_sent == 1 && s.sockets_in_use == 2);
	/* A forged cookie: a RST, no connection. */
	uint8_t ao[12] = { 1, 1, 8, 10, 0, 0, 0, 1, (uint8_t)(ts >> 24), (uint8_t)(ts >> 16), (uint8_t)(ts >> 8), (uint8_t)ts };
	tnif_clear(e.nif);
	tenv_input(&e, f, t_tcp_frame(f, 41001, 80, 9001, cookie + 2, ACK, 1000, ao, sizeof ao, NULL, 0));
	CHECK(t_next_tcp(&e, &p) && (p.flags & RST));
	usnet_stack_stats(e.st, &s);
	CHECK(s.tcp_syncookies_failed == 1 && s.sockets_in_use == 2);
	/* The real one, with data: accepted, SACK and window scale on. */
	tnif_clear(e.nif);
	tenv_input(&e, f, t_tcp_frame(f, 41001, 80, 9001, cookie + 1, ACK | PSH, 1000, ao, sizeof ao,
				      (const uint8_t *)"hello", 5));
	usnet_stack_stats(e.st, &s);
	CHECK(s.tcp_syncookies_ok == 1);
	struct usnet_addr peer;
	int32_t c = -1;
	for (int k = 0; k < 2 && c < 0; k++) {   /* the first connection, then the cookie's */
		int32_t a = usnet_accept(e.st, &e.io, l, &peer, e.now);
		if (a >= 0 && peer.port == 41001)
			c = a;
	}
	CHECK(c >= 0);
	char buf[16];
	long got = usnet_recv(e.st, &e.io, c, buf, sizeof buf, 0, e.now);
	CHECKF(got == 5 && !memcmp(buf, "hello", 5), "recv %ld", got);
	struct usnet_tcp_info ti;
	CHECK(usnet_tcp_info(e.st, c, &ti) == 0 && ti.state == USNET_TCP_ESTABLISHED);
	CHECKF((ti.options & 7) == 7 && ti.snd_wscale == 7 && ti.snd_mss == 1460, "options %u wscale %u mss %u",
	       ti.options, ti.snd_wscale, ti.snd_mss);
	/* Our timestamps never go back from the cookie's. */
	usnet_send(e.st, &e.io, c, "x", 1, 0, e.now);
	CHECK(t_next_tcp(&e, &p) && p.has_ts && (int32_t)(p.tsval - ts) >= 0);
	tenv_fini(&e);
	return 0;
}

/* SYN-ACK options as Linux lays them out: nothing for an option the SYN
 * did not offer (no timestamp slot of NOPs). */
int test_tcp_synack_layout(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	int32_t l = usnet_socket(e.st, USNET_SOCK_STREAM);
	usnet_bind(e.st, l, &(struct usnet_addr){ .ip = 0, .port = 80 });
	usnet_listen(e.st, l, 8);
	uint8_t f[300], o[40];
	uint32_t n = syn_opts(o, 0, 0);   /* MSS, SACK permitted, window scale */
	tenv_input(&e, f, t_tcp_frame(f, 42000, 80, 100, 0, SYN, 1000, o, n, NULL, 0));
	struct tpkt p;
	CHECK(t_next_tcp(&e, &p) && p.flags == (SYN | ACK));
	static const uint8_t want[] = { 2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3 };
	uint32_t optlen = (uint32_t)(p.l4[12] >> 4) * 4 - 20;
	CHECKF(optlen == 12 && !memcmp(p.l4 + 20, want, sizeof want), "optlen %u", optlen);
	tenv_fini(&e);
	return 0;
}

/* Zero-copy receive. */
int test_tcp_recv_peek_consume(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	struct tconn c;
	CHECK(tconn_accept(&c, &e, 80, 1, 1, 7, 1460) == 0);
	static uint8_t d[1400];
	for (int i = 0; i < 3; i++) {
		memset(d, 'a' + i, sizeof d);
		tconn_send(&c, ACK, d, sizeof d, 65535);
	}
	struct usnet_iovec v[8];
	int n = usnet_recv_peek(e.st, c.s, v, 8);
	CHECK(n >= 2);
	size_t tot = 0;
	for (int i = 0; i < n; i++) tot += v[i].len;
	CHECK(tot == 4200 && ((uint8_t *)v[0].base)[0] == 'a');
	CHECK(usnet_recv_consume(e.st, &e.io, c.s, 1500, e.now) == 0);
	n = usnet_recv_peek(e.st, c.s, v, 8);
	CHECK(n >= 1 && ((uint8_t *)v[0].base)[0] == 'b' && usnet_sock_readable_bytes(e.st, c.s) == 2700);
	CHECK(usnet_recv_consume(e.st, &e.io, c.s, 99999, e.now) == -USNET_EINVAL);
	CHECK(usnet_recv_consume(e.st, &e.io, c.s, 2700, e.now) == 0);
	CHECK(usnet_recv_peek(e.st, c.s, v, 8) == 0);
	usnet_close(e.st, &e.io, c.s, e.now);
	tenv_fini(&e);
	return 0;
}

/* A new SYN for a connection in TIME_WAIT (higher sequence) starts a new
 * connection (RFC 6191). */
int test_tcp_time_wait_reuse(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	struct tconn c;
	CHECK(tconn_accept(&c, &e, 80, 1, 1, 7, 1460) == 0);
	usnet_shutdown(e.st, &e.io, c.s, 1, e.now);
	c.pack += 1;
	tconn_send(&c, FIN | ACK, NULL, 0, 65535);
	CHECK(get_state(&e, c.s) == USNET_TCP_TIME_WAIT);
	usnet_close(e.st, &e.io, c.s, e.now);
	tnif_clear(e.nif);
	uint8_t f[200];
	tenv_input(&e, f, t_tcp_frame(f, c.pport, 80, c.pseq + 100000, 0, SYN, 1000, NULL, 0, NULL, 0));
	struct tpkt p;
	CHECK(t_next_tcp(&e, &p) && p.flags == (SYN | ACK) && p.ack == c.pseq + 100001);
	/* An old SYN (lower sequence) in TIME_WAIT only gets an ACK. */
	struct tconn d;
	CHECK(tconn_accept(&d, &e, 81, 1, 0, 7, 1460) == 0);
	usnet_shutdown(e.st, &e.io, d.s, 1, e.now);
	d.pack += 1;
	tconn_send(&d, FIN | ACK, NULL, 0, 65535);
	CHECK(get_state(&e, d.s) == USNET_TCP_TIME_WAIT);
	tnif_clear(e.nif);
	tenv_input(&e, f, t_tcp_frame(f, d.pport, 81, d.pseq - 1000, 0, SYN, 1000, NULL, 0, NULL, 0));
	CHECK(t_next_tcp(&e, &p) && p.flags == ACK);
	CHECK(get_state(&e, d.s) == USNET_TCP_TIME_WAIT);
	usnet_close(e.st, &e.io, d.s, e.now);
	tenv_advance(&e, e.now + 200 * SEC);
	tenv_fini(&e);
	return 0;
}

/* A SYN finding the socket table full of TIME_WAIT orphans (a server
 * closing first, one connection per request) takes one of them rather than
 * going unanswered. */
int test_tcp_syn_reclaims_time_wait(void)
{
	struct usnet_stack_config cfg;
	tenv_default_cfg(&cfg);
	cfg.max_sockets = 4;
	struct tenv e; tenv_init(&e, &cfg);
	tenv_learn_peer(&e);
	int32_t l = usnet_socket(e.st, USNET_SOCK_STREAM);
	CHECK(l >= 0 && usnet_bind(e.st, l, &(struct usnet_addr){ .ip = 0, .port = 80 }) == 0 && usnet_listen(e.st, l, 8) == 0);
	uint8_t f[200];
	struct tpkt p;
	for (uint16_t port = 41000; port < 41004; port++) {
		tnif_clear(e.nif);
		tenv_input(&e, f, t_tcp_frame(f, port, 80, 7000, 0, SYN, 65535, NULL, 0, NULL, 0));
		CHECKF(t_next_tcp(&e, &p) && p.flags == (SYN | ACK), "port %u: no SYN-ACK", port);
		if (port == 41003)
			break;   /* the table was full of TIME_WAIT: this one took a slot */
		struct tconn c = { .e = &e, .pport = port, .uport = 80, .pseq = 7001, .pack = p.seq + 1 };
		tconn_send(&c, ACK, NULL, 0, 65535);
		struct usnet_addr peer;
		c.s = usnet_accept(e.st, &e.io, l, &peer, e.now);
		CHECK(c.s >= 0);
		usnet_shutdown(e.st, &e.io, c.s, 1, e.now);
		c.pack += 1;
		tconn_send(&c, FIN | ACK, NULL, 0, 65535);
		CHECK(get_state(&e, c.s) == USNET_TCP_TIME_WAIT);
		usnet_close(e.st, &e.io, c.s, e.now);
	}
	tenv_advance(&e, e.now + 200 * SEC);
	tenv_fini(&e);
	return 0;
}

/* Malformed segments are counted and dropped. */
int test_tcp_malformed(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	int32_t l = usnet_socket(e.st, USNET_SOCK_STREAM);
	usnet_bind(e.st, l, &(struct usnet_addr){ .ip = 0, .port = 80 });
	usnet_listen(e.st, l, 4);
	uint8_t f[200];
	struct usnet_stack_stats s0, s;
	usnet_stack_stats(e.st, &s0);
	uint32_t n = t_tcp_frame(f, 40000, 80, 1, 0, SYN, 1000, NULL, 0, NULL, 0);
	f[14 + 20 + 16] ^= 0x11;                         /* checksum */
	tenv_input(&e, f, n);
	uint8_t bad_opt[] = { 2, 4, 5, 0xb4, 8, 30, 1, 1 };   /* TS length runs past the header */
	tenv_input(&e, f, t_tcp_frame(f, 40000, 80, 1, 0, SYN, 1000, bad_opt, sizeof bad_opt, NULL, 0));
	uint8_t bad_mss[] = { 2, 3, 5, 1 };
	tenv_input(&e, f, t_tcp_frame(f, 40000, 80, 1, 0, SYN, 1000, bad_mss, sizeof bad_mss, NULL, 0));
	n = t_tcp_frame(f, 40000, 80, 1, 0, SYN, 1000, NULL, 0, NULL, 0);
	f[14 + 20 + 12] = 0xf0;                           /* data offset past the segment */
	tenv_input(&e, f, n);
	n = t_tcp_frame(f, 40000, 80, 1, 0, SYN | FIN, 1000, NULL, 0, NULL, 0);
	tenv_input(&e, f, n);
	usnet_stack_stats(e.st, &s);
	CHECK(s.tcp_drop_csum - s0.tcp_drop_csum == 1);
	CHECK(s.tcp_drop_options - s0.tcp_drop_options == 2);
	CHECK(s.tcp_drop_header - s0.tcp_drop_header == 2);
	struct tpkt p;
	CHECK(!t_next_tcp(&e, &p));
	CHECK(s.sockets_in_use == 1);
	usnet_close(e.st, &e.io, l, e.now);
	tenv_fini(&e);
	return 0;
}

/* Readiness callbacks: changes and new-data edges are reported. */
int test_tcp_events(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	struct tconn c;
	CHECK(tconn_accept(&c, &e, 80, 1, 1, 7, 1460) == 0);
	CHECK(usnet_sock_set_user(e.st, c.s, 42) == 0 && usnet_sock_get_user(e.st, c.s) == 42);
	int n0 = tenv_event_count(&e, c.s);
	tconn_send(&c, ACK, "a", 1, 65535);
	CHECK(tenv_event_count(&e, c.s) == n0 + 1 && (tenv_last_event(&e, c.s) & USNET_EV_IN));
	tconn_send(&c, ACK, "b", 1, 65535);   /* mask unchanged, still an edge */
	CHECK(tenv_event_count(&e, c.s) == n0 + 2);
	char buf[4];
	CHECK(usnet_recv(e.st, &e.io, c.s, buf, sizeof buf, 0, e.now) == 2);
	CHECK(tenv_event_count(&e, c.s) == n0 + 3 && !(tenv_last_event(&e, c.s) & USNET_EV_IN));
	/* Filling the send buffer clears OUT; ACKs bring it back. */
	static uint8_t big[70000];
	long sent = usnet_send(e.st, &e.io, c.s, big, sizeof big, 0, e.now);
	CHECK(sent == 65536);
	CHECK(usnet_send(e.st, &e.io, c.s, big, 1, 0, e.now) == -USNET_EAGAIN);
	CHECK(!(usnet_sock_events(e.st, c.s) & USNET_EV_OUT));
	struct usnet_tcp_info ti;
	int rounds = 0;
	while (!(tenv_last_event(&e, c.s) & USNET_EV_OUT) && rounds++ < 10) {
		usnet_tcp_info(e.st, c.s, &ti);
		CHECK(ti.unacked > 0);
		c.pack += ti.unacked;   /* everything in flight */
		tconn_send(&c, ACK, NULL, 0, 65535);
	}
	/* Writable again once half the buffer is free (Linux's rule). */
	CHECK(rounds >= 2 && rounds < 10 && (tenv_last_event(&e, c.s) & USNET_EV_OUT));
	usnet_setsockopt(e.st, c.s, USNET_SO_LINGER, 0);
	usnet_close(e.st, &e.io, c.s, e.now);
	tenv_fini(&e);
	return 0;
}

/* Open a TCP connection to the peer's port 443 (SYN sent) and give its
 * local port; 0 when connect() fails. */
static uint16_t rss_connect_port(struct tenv *e, int32_t *sock)
{
	int32_t s = usnet_socket(e->st, USNET_SOCK_STREAM);
	struct usnet_addr a = { 0 };
	if (usnet_connect(e->st, &e->io, s, &(struct usnet_addr){ .ip = T_IP_PEER, .port = 443 }, e->now) != -USNET_EINPROGRESS ||
	    usnet_getsockname(e->st, s, &a) != 0)
		a.port = 0;
	*sock = s;
	return a.port;
}

/* Drop a connection rss_connect_port() opened (RST, nothing lingers). */
static void rss_drop(struct tenv *e, int32_t s)
{
	usnet_setsockopt(e->st, s, USNET_SO_LINGER, 0);
	usnet_close(e->st, &e->io, s, e->now);
}

/* With RSS, connect() picks local ports whose replies hash to our queue. */
int test_tcp_rss_ports(void)
{
	struct usnet_stack_config cfg;
	tenv_default_cfg(&cfg);
	cfg.rss_queues = 4;
	cfg.rss_queue = 3;
	for (int i = 0; i < 40; i++) cfg.rss_key[i] = (uint8_t)(i * 37 + 11);
	struct tenv e; tenv_init(&e, &cfg);
	tenv_learn_peer(&e);
	for (int k = 0; k < 8; k++) {
		int32_t s;
		uint16_t port = rss_connect_port(&e, &s);
		CHECK(port != 0);
		uint8_t in[12] = { 10, 0, 0, 2, 10, 0, 0, 1, 443 >> 8, 443 & 0xff, (uint8_t)(port >> 8), (uint8_t)port };
		uint32_t h = ref_toeplitz(cfg.rss_key, in, 12);
		CHECKF((h & 127) % 4 == 3, "port %u hash %08x", port, h);
		rss_drop(&e, s);
	}
	tenv_fini(&e);
	return 0;
}

/* The netif's own steering, as usnet_io.flow_queue reports it: here a
 * port-only hash the stack cannot guess, and "unknown" (-1) for one peer
 * port.  Counts the questions. */
static unsigned fake_flow_asked;
static int fake_flow_queue(struct usnet_io *io, uint8_t proto, uint32_t src_ip, uint16_t src_port,
			   uint32_t dst_ip, uint16_t dst_port)
{
	(void)io;
	fake_flow_asked++;
	(void)src_ip;
	(void)dst_ip;
	if (src_port == 9999)
		return -1;
	return (int)(((unsigned)src_port * 7u + (unsigned)dst_port * 13u + proto) % 4u);
}

/* With usnet_io.flow_queue set, connect() and an unbound UDP sendto() pick
 * local ports whose replies (src = peer, dst = us) the netif puts on our
 * queue. */
int test_tcp_rss_flow_queue(void)
{
	struct usnet_stack_config cfg;
	tenv_default_cfg(&cfg);
	cfg.rss_queues = 4;
	cfg.rss_queue = 2;
	struct tenv e; tenv_init(&e, &cfg);
	e.io.flow_queue = fake_flow_queue;
	fake_flow_asked = 0;
	tenv_learn_peer(&e);
	for (int k = 0; k < 8; k++) {
		int32_t s;
		uint16_t port = rss_connect_port(&e, &s);
		CHECK(port != 0);
		CHECKF(fake_flow_queue(NULL, 6, T_IP_PEER, 443, T_IP_US, port) == 2, "tcp port %u", port);
		rss_drop(&e, s);
	}
	for (int k = 0; k < 4; k++) {
		int32_t u = usnet_socket(e.st, USNET_SOCK_DGRAM);
		char x = 1;
		struct usnet_iovec iov = { &x, 1 };
		CHECK(usnet_sendv(e.st, &e.io, u, &iov, 1, 0, &(struct usnet_addr){ .ip = T_IP_PEER, .port = 53 }, e.now) == 1);
		struct usnet_addr a;
		CHECK(usnet_getsockname(e.st, u, &a) == 0);
		CHECKF(fake_flow_queue(NULL, 17, T_IP_PEER, 53, T_IP_US, a.port) == 2, "udp port %u", a.port);
		usnet_close(e.st, &e.io, u, e.now);
	}
	/* the netif cannot tell: any free port will do */
	int32_t s = usnet_socket(e.st, USNET_SOCK_STREAM);
	CHECK(usnet_connect(e.st, &e.io, s, &(struct usnet_addr){ .ip = T_IP_PEER, .port = 9999 }, e.now) == -USNET_EINPROGRESS);
	CHECK(fake_flow_asked > 12);
	rss_drop(&e, s);
	tenv_fini(&e);
	return 0;
}

/* Timers: an idle stack has no deadline; a connection's timers show up. */
int test_poll_deadlines(void)
{
	struct tenv e; tenv_init(&e, NULL);
	CHECK(tenv_poll(&e) == UINT64_MAX);
	tenv_learn_peer(&e);
	int32_t s = usnet_socket(e.st, USNET_SOCK_STREAM);
	usnet_connect(e.st, &e.io, s, &(struct usnet_addr){ .ip = T_IP_PEER, .port = 80 }, e.now);
	uint64_t d = tenv_poll(&e);
	CHECKF(d > e.now && d <= e.now + 1000 * MS, "deadline in %lld ns", (long long)(d - e.now));
	usnet_close(e.st, &e.io, s, e.now);
	CHECK(tenv_poll(&e) == UINT64_MAX);
	tenv_fini(&e);
	return 0;
}

/* An exact RST in every synchronized state ends the connection. */
int test_tcp_rst_each_state(void)
{
	static const uint8_t targets[] = { USNET_TCP_ESTABLISHED, USNET_TCP_FIN_WAIT_1, USNET_TCP_FIN_WAIT_2,
					   USNET_TCP_CLOSE_WAIT, USNET_TCP_CLOSING, USNET_TCP_LAST_ACK,
					   USNET_TCP_TIME_WAIT };
	for (unsigned k = 0; k < sizeof targets; k++) {
		struct tenv e; tenv_init(&e, NULL);
		tenv_learn_peer(&e);
		struct tconn c;
		CHECK(tconn_accept(&c, &e, 80, 1, 1, 7, 1460) == 0);
		switch (targets[k]) {
		case USNET_TCP_FIN_WAIT_1:
			usnet_shutdown(e.st, &e.io, c.s, 1, e.now);
			break;
		case USNET_TCP_FIN_WAIT_2:
			usnet_shutdown(e.st, &e.io, c.s, 1, e.now);
			c.pack += 1;
			tconn_send(&c, ACK, NULL, 0, 65535);
			break;
		case USNET_TCP_CLOSE_WAIT:
			tconn_send(&c, FIN | ACK, NULL, 0, 65535);
			break;
		case USNET_TCP_CLOSING:
			usnet_shutdown(e.st, &e.io, c.s, 1, e.now);
			tconn_send(&c, FIN | ACK, NULL, 0, 65535);
			break;
		case USNET_TCP_LAST_ACK:
			tconn_send(&c, FIN | ACK, NULL, 0, 65535);
			usnet_shutdown(e.st, &e.io, c.s, 1, e.now);
			break;
		case USNET_TCP_TIME_WAIT:
			usnet_shutdown(e.st, &e.io, c.s, 1, e.now);
			c.pack += 1;
			tconn_send(&c, FIN | ACK, NULL, 0, 65535);
			break;
		default:
			break;
		}
		CHECKF(get_state(&e, c.s) == targets[k], "state %d want %d", get_state(&e, c.s), targets[k]);
		tnif_clear(e.nif);
		tconn_send_seq(&c, c.pseq, RST, NULL, 0, 65535);
		CHECKF(get_state(&e, c.s) == USNET_TCP_CLOSED, "after RST in %d: %d", targets[k], get_state(&e, c.s));
		struct tpkt p;
		CHECK(!t_next_tcp(&e, &p));   /* never answered */
		CHECK(usnet_sock_events(e.st, c.s) & USNET_EV_HUP);
		usnet_close(e.st, &e.io, c.s, e.now);
		struct usnet_stack_stats s; usnet_stack_stats(e.st, &s);
		CHECK(s.sockets_in_use == 1 && s.buffers_in_use == 0);
		tenv_advance(&e, e.now + 100 * SEC);
		tenv_fini(&e);
	}
	return 0;
}

/* MSG_MORE holds a partial segment, with nothing in flight too (as Linux
 * does, checked against it in tests/apps options_wire); a send without it
 * releases the queue; data a program never completes leaves at the cork's
 * 200 ms ceiling. */
int test_tcp_msg_more(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	struct tconn c;
	CHECK(tconn_accept(&c, &e, 80, 1, 1, 7, 1460) == 0);
	usnet_setsockopt(e.st, c.s, USNET_TCP_NODELAY, 1);
	struct tpkt p;
	CHECK(usnet_send(e.st, &e.io, c.s, "head", 4, USNET_MSG_MORE, e.now) == 4);
	CHECK(!t_next_tcp(&e, &p));                 /* held, nothing in flight */
	CHECK(usnet_send(e.st, &e.io, c.s, "body", 4, USNET_MSG_MORE, e.now) == 4);
	CHECK(!t_next_tcp(&e, &p));
	CHECK(usnet_send(e.st, &e.io, c.s, "tail", 4, 0, e.now) == 4);
	CHECK(t_next_tcp(&e, &p) && p.dlen == 12 && memcmp(p.data, "headbodytail", 12) == 0);
	/* acknowledged; a lone MSG_MORE send waits for the ceiling */
	c.pack += 12;
	tconn_send(&c, ACK, NULL, 0, 65535);
	tnif_clear(e.nif);
	CHECK(usnet_send(e.st, &e.io, c.s, "more", 4, USNET_MSG_MORE, e.now) == 4);
	CHECK(!t_next_tcp(&e, &p));
	tenv_advance(&e, e.now + 150 * SEC / 1000);
	CHECK(!t_next_tcp(&e, &p));
	tenv_advance(&e, e.now + 100 * SEC / 1000);
	CHECK(t_next_tcp(&e, &p) && p.dlen == 4 && memcmp(p.data, "more", 4) == 0);
	usnet_setsockopt(e.st, c.s, USNET_SO_LINGER, 0);
	usnet_close(e.st, &e.io, c.s, e.now);
	tenv_fini(&e);
	return 0;
}

/* Tail-loss probe: with SACK and several segments unacknowledged, the last
 * one is sent again after ~2 RTT (2 ms floor), long before the RTO. */
int test_tcp_tail_loss_probe(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	struct tconn c;
	CHECK(tconn_accept(&c, &e, 80, 1, 1, 7, 1460) == 0);
	usnet_setsockopt(e.st, c.s, USNET_TCP_NODELAY, 1);
	uint32_t s0;
	int n = send_segments(&e, &c, 4, &s0);
	CHECK(n == 4);
	uint64_t t0 = e.now;
	struct tpkt p;
	uint64_t when = 0;
	uint32_t seq = 0;
	for (uint64_t t = t0; t < t0 + 150 * MS && !when; t += MS) {
		tenv_advance(&e, t);
		if (t_next_tcp(&e, &p) && p.dlen) {
			when = e.now - t0;
			seq = p.seq;
		}
	}
	CHECKF(when >= 2 * MS && when <= 3 * MS, "probe after %llu ns", (unsigned long long)when);
	CHECK(seq == s0 + 3 * 1448);   /* the last segment */
	struct usnet_stack_stats s; usnet_stack_stats(e.st, &s);
	CHECK(s.tcp_tlp == 1 && s.tcp_rto == 0);
	/* The probe's SACK reveals the loss: fast recovery, not a timeout. */
	uint32_t b[1][2] = { { s0 + 3 * 1448, s0 + 4 * 1448 } };
	tconn_send_sack(&c, s0, (const uint32_t (*)[2])b, 1, 65535);
	int resent_first = 0;
	while (t_next_tcp(&e, &p)) if (p.dlen && p.seq == s0) resent_first = 1;
	CHECK(resent_first);
	usnet_stack_stats(e.st, &s);
	CHECK(s.tcp_recovery == 1 && s.tcp_rto == 0);
	usnet_setsockopt(e.st, c.s, USNET_SO_LINGER, 0);
	usnet_close(e.st, &e.io, c.s, e.now);
	tenv_fini(&e);
	return 0;
}

/* The netif has no buffer for a while: the data goes out later by itself. */
int test_tcp_tx_buffer_shortage(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	struct tconn c;
	CHECK(tconn_accept(&c, &e, 80, 1, 1, 7, 1460) == 0);
	e.nif->alloc_fail = 3;
	CHECK(usnet_send(e.st, &e.io, c.s, "late", 4, 0, e.now) == 4);
	struct tpkt p;
	CHECK(!t_next_tcp(&e, &p));
	tenv_advance(&e, e.now + 10 * MS);
	CHECK(t_next_tcp(&e, &p) && p.dlen == 4 && memcmp(p.data, "late", 4) == 0);
	struct usnet_stack_stats s; usnet_stack_stats(e.st, &s);
	CHECK(s.tx_no_buffer >= 1 && s.tcp_rto == 0);
	usnet_setsockopt(e.st, c.s, USNET_SO_LINGER, 0);
	usnet_close(e.st, &e.io, c.s, e.now);
	tenv_fini(&e);
	return 0;
}

/* IP_TTL and IP_TOS reach the wire; TCP_WINDOW_CLAMP bounds the window;
 * a connection takes them from its listener. */
int test_tcp_ip_options(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	int32_t l = usnet_socket(e.st, USNET_SOCK_STREAM);
	CHECK(usnet_setsockopt(e.st, l, USNET_IP_TTL, 0) == -USNET_EINVAL);
	CHECK(usnet_setsockopt(e.st, l, USNET_IP_TTL, 7) == 0 && usnet_setsockopt(e.st, l, USNET_IP_TOS, 0xb8 | 3) == 0);
	int v = 0;
	CHECK(usnet_getsockopt(e.st, l, USNET_IP_TOS, &v) == 0 && v == 0xb8);   /* ECN bits are the stack's */
	CHECK(usnet_setsockopt(e.st, l, USNET_TCP_WINDOW_CLAMP, 4000) == 0);
	usnet_bind(e.st, l, &(struct usnet_addr){ .ip = 0, .port = 80 });
	usnet_listen(e.st, l, 8);
	uint8_t f[200];
	tenv_input(&e, f, t_tcp_frame(f, 43000, 80, 100, 0, SYN, 65535, NULL, 0, NULL, 0));
	struct tpkt p;
	CHECK(t_next_tcp(&e, &p) && p.flags == (SYN | ACK));
	const uint8_t *ip = p.l4 - 20;
	CHECKF(ip[8] == 7 && ip[1] == 0xb8 && p.win <= 4000, "ttl %u tos %#x window %u", ip[8], ip[1], p.win);
	CHECK(usnet_setsockopt(e.st, l, USNET_IP_TTL, -1) == 0 && usnet_getsockopt(e.st, l, USNET_IP_TTL, &v) == 0 && v == 64);
	usnet_close(e.st, &e.io, l, e.now);
	tenv_fini(&e);
	return 0;
}

/* TCP_USER_TIMEOUT: data nobody acknowledges aborts the connection with
 * ETIMEDOUT once the time has passed, not after the whole backoff. */
int test_tcp_user_timeout(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	struct tconn c;
	CHECK(tconn_accept(&c, &e, 80, 1, 1, 7, 1460) == 0);
	CHECK(usnet_setsockopt(e.st, c.s, USNET_TCP_USER_TIMEOUT, 3000) == 0);
	uint64_t t0 = e.now;
	usnet_send(e.st, &e.io, c.s, "data", 4, 0, e.now);
	tenv_advance(&e, t0 + 2900 * MS);
	CHECK(usnet_sock_events(e.st, c.s) == USNET_EV_OUT);
	tenv_advance(&e, t0 + 3100 * MS);
	char b[8];
	long r = usnet_recv(e.st, &e.io, c.s, b, sizeof b, 0, e.now);
	CHECKF(r == -USNET_ETIMEDOUT, "recv %ld", r);
	usnet_close(e.st, &e.io, c.s, e.now);
	tenv_fini(&e);
	return 0;
}

/* SO_RCVLOWAT and TCP_NOTSENT_LOWAT move readiness as on Linux. */
int test_tcp_lowat(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	struct tconn c;
	CHECK(tconn_accept(&c, &e, 80, 1, 1, 7, 1460) == 0);
	CHECK(usnet_setsockopt(e.st, c.s, USNET_SO_RCVLOWAT, 10) == 0);
	tconn_send(&c, ACK, "12345", 5, 65535);
	CHECK(!(usnet_sock_events(e.st, c.s) & USNET_EV_IN));
	tconn_send(&c, ACK, "67890", 5, 65535);
	CHECK(usnet_sock_events(e.st, c.s) & USNET_EV_IN);
	char b[16];
	CHECK(usnet_recv(e.st, &e.io, c.s, b, sizeof b, 0, e.now) == 10);
	/* The peer's window shut: what is sent stays unsent. */
	CHECK(usnet_setsockopt(e.st, c.s, USNET_TCP_NOTSENT_LOWAT, 100) == 0);
	tconn_send(&c, ACK, NULL, 0, 0);
	CHECK(usnet_sock_events(e.st, c.s) & USNET_EV_OUT);
	static uint8_t big[200];
	CHECK(usnet_send(e.st, &e.io, c.s, big, sizeof big, 0, e.now) == (long)sizeof big);
	CHECK(!(usnet_sock_events(e.st, c.s) & USNET_EV_OUT));
	usnet_setsockopt(e.st, c.s, USNET_SO_LINGER, 0);
	usnet_close(e.st, &e.io, c.s, e.now);
	tenv_fini(&e);
	return 0;
}

/* A connect to 127.0.0.1 reaches the stack's wildcard listener without a
 * frame on the wire, from 127.0.0.1; a loopback address arriving from the
 * wire is a martian. */
int test_tcp_loopback_connect(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	int32_t l = usnet_socket(e.st, USNET_SOCK_STREAM);
	CHECK(usnet_bind(e.st, l, &(struct usnet_addr){ .ip = 0, .port = 80 }) == 0);
	CHECK(usnet_listen(e.st, l, 4) == 0);
	const uint32_t lo = 0x7f000001u;
	CHECK(usnet_local_taker(e.st, USNET_SOCK_STREAM, &(struct usnet_addr){ .ip = lo, .port = 80 }) == 1);
	CHECK(usnet_local_taker(e.st, USNET_SOCK_STREAM, &(struct usnet_addr){ .ip = 0x7f000002u, .port = 80 }) == 1);
	CHECK(usnet_local_taker(e.st, USNET_SOCK_STREAM, &(struct usnet_addr){ .ip = lo, .port = 81 }) == 0);
	int32_t c = usnet_socket(e.st, USNET_SOCK_STREAM);
	int r = usnet_connect(e.st, &e.io, c, &(struct usnet_addr){ .ip = lo, .port = 80 }, e.now);
	CHECK(r == 0 || r == -USNET_EINPROGRESS);
	tenv_poll(&e);
	CHECK(get_state(&e, c) == USNET_TCP_ESTABLISHED);
	struct usnet_addr peer, me;
	int32_t s = usnet_accept(e.st, &e.io, l, &peer, e.now);
	CHECK(s >= 0 && peer.ip == lo);
	CHECK(usnet_getsockname(e.st, s, &me) == 0 && me.ip == lo && me.port == 80);
	CHECK(usnet_getsockname(e.st, c, &me) == 0 && me.ip == lo && me.port == peer.port);
	CHECK(usnet_send(e.st, &e.io, c, "lo", 2, 0, e.now) == 2);
	tenv_poll(&e);
	char buf[4];
	CHECK(usnet_recv(e.st, &e.io, s, buf, sizeof buf, 0, e.now) == 2 && memcmp(buf, "lo", 2) == 0);
	CHECK(t_count_tcp(&e) == 0);   /* nothing left the stack */
	/* A SYN from the wire with a loopback source or destination is dropped. */
	uint8_t f[200], l4[20] = { 0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, SYN, 0xff, 0xff, 0, 0, 0, 0 };
	const uint32_t wire[][2] = { { lo, T_IP_US }, { T_IP_PEER, lo }, { T_IP_PEER, T_IP_US } };
	for (int i = 0; i < 3; i++) {
		l4[16] = l4[17] = 0;
		uint16_t sum = t_csum(l4, sizeof l4, t_pseudo(wire[i][0], wire[i][1], 6, sizeof l4));
		l4[16] = (uint8_t)(sum >> 8);
		l4[17] = (uint8_t)sum;
		tenv_input(&e, f, t_ip_frame(f, T_MAC_US, T_MAC_PEER, wire[i][0], wire[i][1], 6, (uint16_t)(i + 1), 0,
					     l4, sizeof l4));
		/* Only the last, from the peer to our address, is answered. */
		CHECK(t_count_tcp(&e) == (i == 2 ? 1u : 0u));
	}
	usnet_close(e.st, &e.io, c, e.now);
	usnet_close(e.st, &e.io, s, e.now);
	usnet_close(e.st, &e.io, l, e.now);
	tenv_advance(&e, e.now + 200 * SEC);
	tenv_fini(&e);
	return 0;
}

/* ---- ECN (RFC 3168) ------------------------------------------------------ */

#define ECE 0x40
#define CWR 0x80

/* As Linux's default tcp_ecn=2: an ECN-setup SYN is granted (ECE on the
 * SYN-ACK), one that is itself ECN-capable is not, and with tcp_ecn=0
 * none is.  On the connection: new data goes out ECT(0); a CE mark makes
 * every ACK carry ECE until the peer's CWR; an ECE from the peer halves
 * the window once and our next new data carries CWR. */
int test_tcp_ecn_passive(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	int32_t l = usnet_socket(e.st, USNET_SOCK_STREAM);
	usnet_bind(e.st, l, &(struct usnet_addr){ .ip = 0, .port = 80 });
	usnet_listen(e.st, l, 8);
	uint8_t f[2000], data[1000];
	memset(data, 'e', sizeof data);
	struct tpkt p;
	/* ECT SYN: not granted */
	uint32_t n = t_tcp_frame(f, 40001, 80, 100, 0, SYN | ECE | CWR, 65535, NULL, 0, NULL, 0);
	t_set_tos(f, 0x02);
	tenv_input(&e, f, n);
	CHECKF(t_next_tcp(&e, &p) && p.flags == (SYN | ACK), "flags %#x", p.flags);
	/* ECE alone is no ECN-setup SYN */
	tenv_input(&e, f, t_tcp_frame(f, 40002, 80, 100, 0, SYN | ECE, 65535, NULL, 0, NULL, 0));
	CHECKF(t_next_tcp(&e, &p) && p.flags == (SYN | ACK), "flags %#x", p.flags);
	/* granted */
	tenv_input(&e, f, t_tcp_frame(f, 40000, 80, 100, 0, SYN | ECE | CWR, 65535, NULL, 0, NULL, 0));
	CHECKF(t_next_tcp(&e, &p) && p.flags == (SYN | ACK | ECE) && (p.tos & 3) == 0, "flags %#x tos %#x", p.flags, p.tos);
	uint32_t iss = p.seq;
	tenv_input(&e, f, t_tcp_frame(f, 40000, 80, 101, iss + 1, ACK, 65535, NULL, 0, NULL, 0));
	int32_t s = usnet_accept(e.st, &e.io, l, NULL, e.now);
	CHECK(s >= 0);
	/* our data: ECT(0); the pure ACK of theirs: not ECT */
	CHECK(usnet_send(e.st, &e.io, s, data, 100, 0, e.now) == 100);
	CHECKF(t_next_tcp(&e, &p) && p.dlen == 100 && (p.tos & 3) == 2 && !(p.flags & (ECE | CWR)),
	       "tos %#x flags %#x", p.tos, p.flags);
	/* a CE-marked segment: an ACK with ECE at once */
	n = t_tcp_frame(f, 40000, 80, 101, iss + 101, ACK | PSH, 65535, NULL, 0, data, 10);
	t_set_tos(f, 0x03);
	tenv_input(&e, f, n);
	CHECKF(t_next_tcp(&e, &p) && (p.flags & ECE) && p.ack == 111 && (p.tos & 3) == 0, "flags %#x tos %#x", p.flags, p.tos);
	struct usnet_stack_stats st; usnet_stack_stats(e.st, &st);
	CHECK(st.tcp_ecn_ce == 1);
	/* ECE stays on what we send until CWR comes; our data carries it too */
	CHECK(usnet_send(e.st, &e.io, s, data, 100, 0, e.now) == 100);
	CHECKF(t_next_tcp(&e, &p) && (p.flags & ECE) && p.dlen == 100, "flags %#x", p.flags);
	tenv_input(&e, f, t_tcp_frame(f, 40000, 80, 111, iss + 201, ACK | PSH, 65535, NULL, 0, data, 10));
	tenv_advance(&e, e.now + 100 * MS);
	CHECKF(t_next_tcp(&e, &p) && (p.flags & ECE) && p.ack == 121, "flags %#x", p.flags);
	tenv_input(&e, f, t_tcp_frame(f, 40000, 80, 121, iss + 201, ACK | PSH | CWR, 65535, NULL, 0, data, 10));
	CHECKF(t_next_tcp(&e, &p) && !(p.flags & ECE) && p.ack == 131, "flags %#x", p.flags);
	/* their ECE for our data: one reduction, CWR on our next new data */
	struct usnet_tcp_info ti; usnet_tcp_info(e.st, s, &ti);
	uint32_t cwnd = ti.cwnd;
	CHECK(usnet_send(e.st, &e.io, s, data, 500, 0, e.now) == 500);
	CHECKF(t_next_tcp(&e, &p) && p.dlen == 500 && !(p.flags & CWR), "dlen %u flags %#x", p.dlen, p.flags);
	uint32_t at = p.seq;
	tenv_input(&e, f, t_tcp_frame(f, 40000, 80, 131, at + 200, ACK | ECE, 65535, NULL, 0, NULL, 0));
	tenv_input(&e, f, t_tcp_frame(f, 40000, 80, 131, at + 500, ACK | ECE, 65535, NULL, 0, NULL, 0));
	usnet_stack_stats(e.st, &st);
	CHECKF(st.tcp_ecn_reduced == 1, "reduced %llu", (unsigned long long)st.tcp_ecn_reduced);
	usnet_tcp_info(e.st, s, &ti);
	CHECKF(ti.cwnd < cwnd, "cwnd %u -> %u", cwnd, ti.cwnd);
	CHECK(usnet_send(e.st, &e.io, s, data, 100, 0, e.now) == 100);
	CHECKF(t_next_tcp(&e, &p) && p.dlen == 100 && (p.flags & CWR) && (p.tos & 3) == 2, "flags %#x", p.flags);
	tenv_input(&e, f, t_tcp_frame(f, 40000, 80, 131, p.seq + 100, ACK, 65535, NULL, 0, NULL, 0));
	CHECK(usnet_send(e.st, &e.io, s, data, 100, 0, e.now) == 100);
	CHECKF(t_next_tcp(&e, &p) && p.dlen == 100 && !(p.flags & CWR), "flags %#x", p.flags);
	usnet_close(e.st, &e.io, s, e.now);
	usnet_close(e.st, &e.io, l, e.now);
	tenv_fini(&e);

	/* tcp_ecn=0: no ECN-setup SYN is granted */
	struct usnet_stack_config cfg;
	tenv_default_cfg(&cfg);
	cfg.tcp_ecn = 0;
	tenv_init(&e, &cfg);
	tenv_learn_peer(&e);
	l = usnet_socket(e.st, USNET_SOCK_STREAM);
	usnet_bind(e.st, l, &(struct usnet_addr){ .ip = 0, .port = 80 });
	usnet_listen(e.st, l, 8);
	tenv_input(&e, f, t_tcp_frame(f, 40000, 80, 100, 0, SYN | ECE | CWR, 65535, NULL, 0, NULL, 0));
	CHECKF(t_next_tcp(&e, &p) && p.flags == (SYN | ACK), "flags %#x", p.flags);
	usnet_close(e.st, &e.io, l, e.now);
	tenv_fini(&e);
	return 0;
}

/* tcp_ecn=1: the SYN asks (ECE and CWR), a retransmitted one does not; a
 * SYN-ACK with ECE grants it, one without (or with CWR too) does not. */
int test_tcp_ecn_active(void)
{
	struct usnet_stack_config cfg;
	tenv_default_cfg(&cfg);
	cfg.tcp_ecn = 1;
	struct tenv e; tenv_init(&e, &cfg);
	tenv_learn_peer(&e);
	uint8_t f[2000], data[100];
	memset(data, 'a', sizeof data);
	struct tpkt p;
	for (int grant = 0; grant < 3; grant++) {
		int32_t s = usnet_socket(e.st, USNET_SOCK_STREAM);
		CHECK(usnet_connect(e.st, &e.io, s, &(struct usnet_addr){ .ip = T_IP_PEER, .port = 80 }, e.now) == -USNET_EINPROGRESS);
		CHECKF(t_next_tcp(&e, &p) && p.flags == (SYN | ECE | CWR) && (p.tos & 3) == 0, "flags %#x", p.flags);
		if (grant == 2) {
			tenv_advance(&e, e.now + 1100 * MS);
			CHECKF(t_next_tcp(&e, &p) && p.flags == SYN, "retransmitted SYN flags %#x", p.flags);
		}
		uint8_t sa = grant == 0 ? (SYN | ACK | ECE) : grant == 1 ? (SYN | ACK | ECE | CWR) : (SYN | ACK);
		tenv_input(&e, f, t_tcp_frame(f, 80, p.sport, 7000, p.seq + 1, sa, 65535, NULL, 0, NULL, 0));
		CHECK(t_next_tcp(&e, &p) && p.flags == ACK);
		CHECK(usnet_send(e.st, &e.io, s, data, sizeof data, 0, e.now) == (int)sizeof data);
		CHECK(t_next_tcp(&e, &p) && p.dlen == sizeof data);
		CHECKF((p.tos & 3) == (grant == 0 ? 2 : 0), "case %d: tos %#x", grant, p.tos);
		usnet_setsockopt(e.st, s, USNET_SO_LINGER, 0);
		usnet_close(e.st, &e.io, s, e.now);
		tnif_clear(e.nif);
	}
	tenv_fini(&e);
	/* the default (2) asks for nothing */
	tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	int32_t s = usnet_socket(e.st, USNET_SOCK_STREAM);
	usnet_connect(e.st, &e.io, s, &(struct usnet_addr){ .ip = T_IP_PEER, .port = 80 }, e.now);
	CHECKF(t_next_tcp(&e, &p) && p.flags == SYN, "flags %#x", p.flags);
	usnet_close(e.st, &e.io, s, e.now);
	tenv_fini(&e);
	return 0;
}

/* A SYN cookie keeps ECN's grant in our timestamp, as Linux: the
 * connection its ACK makes sends ECT(0). */
int test_tcp_ecn_syncookie(void)
{
	struct usnet_stack_config cfg;
	tenv_default_cfg(&cfg);
	cfg.tcp_syncookies = 2;
	struct tenv e; tenv_init(&e, &cfg);
	tenv_learn_peer(&e);
	int32_t l = usnet_socket(e.st, USNET_SOCK_STREAM);
	usnet_bind(e.st, l, &(struct usnet_addr){ .ip = 0, .port = 80 });
	usnet_listen(e.st, l, 8);
	uint8_t f[2000], o[12] = { 1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 0 };
	struct tpkt p;
	tenv_input(&e, f, t_tcp_frame(f, 40000, 80, 100, 0, SYN | ECE | CWR, 65535, o, sizeof o, NULL, 0));
	CHECKF(t_next_tcp(&e, &p) && p.flags == (SYN | ACK | ECE) && p.has_ts, "flags %#x", p.flags);
	uint8_t a[12] = { 1, 1, 8, 10, 0, 0, 0, 10 };
	a[8] = (uint8_t)(p.tsval >> 24); a[9] = (uint8_t)(p.tsval >> 16); a[10] = (uint8_t)(p.tsval >> 8); a[11] = (uint8_t)p.tsval;
	tenv_input(&e, f, t_tcp_frame(f, 40000, 80, 101, p.seq + 1, ACK, 65535, a, sizeof a, NULL, 0));
	int32_t s = usnet_accept(e.st, &e.io, l, NULL, e.now);
	CHECK(s >= 0);
	struct usnet_stack_stats st; usnet_stack_stats(e.st, &st);
	CHECK(st.tcp_syncookies_ok == 1);
	CHECK(usnet_send(e.st, &e.io, s, "x", 1, 0, e.now) == 1);
	CHECKF(t_next_tcp(&e, &p) && p.dlen == 1 && (p.tos & 3) == 2, "tos %#x", p.tos);
	/* without the ECN-setup SYN: the cookie's connection is not ECN */
	tenv_input(&e, f, t_tcp_frame(f, 40001, 80, 100, 0, SYN, 65535, o, sizeof o, NULL, 0));
	CHECKF(t_next_tcp(&e, &p) && p.flags == (SYN | ACK), "flags %#x", p.flags);
	a[8] = (uint8_t)(p.tsval >> 24); a[9] = (uint8_t)(p.tsval >> 16); a[10] = (uint8_t)(p.tsval >> 8); a[11] = (uint8_t)p.tsval;
	tenv_input(&e, f, t_tcp_frame(f, 40001, 80, 101, p.seq + 1, ACK, 65535, a, sizeof a, NULL, 0));
	int32_t s2 = usnet_accept(e.st, &e.io, l, NULL, e.now);
	CHECK(s2 >= 0);
	CHECK(usnet_send(e.st, &e.io, s2, "x", 1, 0, e.now) == 1);
	CHECKF(t_next_tcp(&e, &p) && p.dlen == 1 && (p.tos & 3) == 0, "tos %#x", p.tos);
	tenv_fini(&e);
	return 0;
}

/* Without SYN cookies, a listener takes SYNs until its SYN queue is within
 * a quarter of tcp_max_syn_backlog (Linux's rule for peers it has no
 * history of); with cookies the bound is the backlog. */
int test_tcp_max_syn_backlog(void)
{
	struct usnet_stack_config cfg;
	tenv_default_cfg(&cfg);
	cfg.tcp_syncookies = 0;
	cfg.tcp_max_syn_backlog = 8;
	struct tenv e; tenv_init(&e, &cfg);
	tenv_learn_peer(&e);
	int32_t l = usnet_socket(e.st, USNET_SOCK_STREAM);
	usnet_bind(e.st, l, &(struct usnet_addr){ .ip = 0, .port = 80 });
	usnet_listen(e.st, l, 100);
	uint8_t f[2000];
	struct tpkt p;
	unsigned answered = 0;
	for (uint16_t i = 0; i < 10; i++) {
		tenv_input(&e, f, t_tcp_frame(f, (uint16_t)(40000 + i), 80, 100, 0, SYN, 65535, NULL, 0, NULL, 0));
		answered += (unsigned)t_next_tcp(&e, &p);
	}
	CHECKF(answered == 7, "answered %u", answered);
	struct usnet_stack_stats st; usnet_stack_stats(e.st, &st);
	CHECK(st.tcp_listen_drop == 3);
	usnet_close(e.st, &e.io, l, e.now);
	tenv_fini(&e);
	return 0;
}

/* Buffer autotuning as Linux's: the send buffer is twice the congestion
 * window (at least ten segments' worth) and grows with it; the receive
 * buffer grows to twice what the program read in a round trip; neither
 * past its cap, and neither once the program set SO_SNDBUF / SO_RCVBUF
 * (which a listener's connections inherit). */
int test_tcp_buffer_autotuning(void)
{
	struct usnet_stack_config cfg;
	tenv_default_cfg(&cfg);
	cfg.rcvbuf = 16384;
	cfg.sndbuf = 8192;
	cfg.rcvbuf_max = 512 * 1024;
	cfg.sndbuf_max = 256 * 1024;
	struct tenv e; tenv_init(&e, &cfg);
	tenv_learn_peer(&e);
	struct tconn c;
	CHECK(tconn_accept(&c, &e, 80, 1, 1, 7, 1460) == 0);
	int v = 0;
	CHECK(usnet_getsockopt(e.st, c.s, USNET_SO_SNDBUF, &v) == 0 && v == 2 * 10 * 1460);
	/* the window grows: the peer fills it each round, the program reads all */
	static uint8_t d[1448], buf[1 << 20];
	CHECK(usnet_getsockopt(e.st, c.s, USNET_SO_RCVBUF, &v) == 0 && v == 16384);
	int grew = 0;
	for (int round = 0; round < 8; round++) {
		int rv = 0;
		usnet_getsockopt(e.st, c.s, USNET_SO_RCVBUF, &rv);
		for (int k = 0; k < rv / 1448; k++)
			tconn_send(&c, ACK, d, sizeof d, 65535);
		CHECK(usnet_recv(e.st, &e.io, c.s, buf, sizeof buf, 0, e.now) > 0);
		tenv_advance(&e, e.now + 2 * MS);
		usnet_recv(e.st, &e.io, c.s, buf, sizeof buf, 0, e.now);
		tnif_clear(e.nif);
		usnet_getsockopt(e.st, c.s, USNET_SO_RCVBUF, &v);
		grew += v > rv;
		CHECK(v <= 512 * 1024);
	}
	CHECKF(grew >= 1 && v > 4 * 16384, "receive buffer %d after %d growths", v, grew);
	/* the send buffer follows the congestion window */
	int before = 0;
	usnet_getsockopt(e.st, c.s, USNET_SO_SNDBUF, &before);
	for (int round = 0; round < 6; round++) {
		while (usnet_send(e.st, &e.io, c.s, buf, 65536, 0, e.now) > 0)
			;
		struct tpkt p;
		uint32_t top = 0;
		while (t_next_tcp(&e, &p))
			if (p.dlen && p.seq + p.dlen - c.pack < 0x80000000u)
				top = p.seq + p.dlen;
		if (top) {
			c.pack = top;
			tconn_send(&c, ACK, NULL, 0, 65535);
		}
	}
	usnet_getsockopt(e.st, c.s, USNET_SO_SNDBUF, &v);
	CHECKF(v > before && v <= 256 * 1024, "send buffer %d -> %d", before, v);
	usnet_setsockopt(e.st, c.s, USNET_SO_LINGER, 0);
	usnet_close(e.st, &e.io, c.s, e.now);
	tnif_clear(e.nif);

	/* a listener with SO_RCVBUF and SO_SNDBUF: its connections keep them */
	int32_t l = usnet_socket(e.st, USNET_SOCK_STREAM);
	usnet_bind(e.st, l, &(struct usnet_addr){ .ip = 0, .port = 81 });
	usnet_setsockopt(e.st, l, USNET_SO_RCVBUF, 20000);
	usnet_setsockopt(e.st, l, USNET_SO_SNDBUF, 10000);
	usnet_listen(e.st, l, 8);
	uint8_t f[2000];
	struct tpkt p;
	tenv_input(&e, f, t_tcp_frame(f, 40001, 81, 100, 0, SYN, 65535, NULL, 0, NULL, 0));
	CHECK(t_next_tcp(&e, &p));
	tenv_input(&e, f, t_tcp_frame(f, 40001, 81, 101, p.seq + 1, ACK, 65535, NULL, 0, NULL, 0));
	int32_t s = usnet_accept(e.st, &e.io, l, NULL, e.now);
	CHECK(s >= 0);
	uint32_t seq = 101;
	for (int round = 0; round < 4; round++) {
		for (int k = 0; k < 10; k++, seq += 536)
			tenv_input(&e, f, t_tcp_frame(f, 40001, 81, seq, p.seq + 1, ACK, 65535, NULL, 0, d, 536));
		usnet_recv(e.st, &e.io, s, buf, sizeof buf, 0, e.now);
		tenv_advance(&e, e.now + 2 * MS);
		usnet_recv(e.st, &e.io, s, buf, sizeof buf, 0, e.now);
	}
	CHECK(usnet_getsockopt(e.st, s, USNET_SO_RCVBUF, &v) == 0 && v == 20000);
	CHECK(usnet_getsockopt(e.st, s, USNET_SO_SNDBUF, &v) == 0 && v == 10000);
	usnet_setsockopt(e.st, s, USNET_SO_LINGER, 0);
	usnet_close(e.st, &e.io, s, e.now);
	usnet_close(e.st, &e.io, l, e.now);
	tenv_fini(&e);
	return 0;
}

/* usnet_send_fill's source: bytes of a pattern from pos, at most `left`
 * of them (then its end), or the error `fail` when set. */
struct fill_src { const uint8_t *data; uint32_t pos, left; long fail; int calls, max_iov; };

static long fill_from(void *arg, const struct usnet_iovec *iov, int n)
{
	struct fill_src *f = arg;
	f->calls++;
	if (n > f->max_iov)
		f->max_iov = n;
	if (f->fail)
		return f->fail;
	long done = 0;
	for (int i = 0; i < n && f->left; i++) {
		uint32_t k = (uint32_t)(iov[i].len < f->left ? iov[i].len : f->left);
		memcpy(iov[i].base, f->data + f->pos, k);
		f->pos += k;
		f->left -= k;
		done += k;
	}
	return done;
}

/* Everything c's socket sends from seq `from` until `want` bytes came,
 * acknowledged as it comes (as a peer reading at once would), into out. */
static uint32_t collect_acked(struct tenv *e, struct tconn *c, uint32_t from, uint8_t *out, uint32_t want)
{
	uint32_t got = 0;
	for (int round = 0; round < 1000 && got < want; round++) {
		struct tpkt p;
		int any = 0;
		while (t_next_tcp(e, &p)) {
			if (!p.dlen || p.seq - from != got || got + p.dlen > want)
				continue;
			memcpy(out + got, p.data, p.dlen);
			got += p.dlen;
			any = 1;
		}
		if (!any)
			tenv_advance(e, e->now + MS);
		c->pack = from + got;
		tconn_send(c, ACK, NULL, 0, 65535);
	}
	return got;
}

/* usnet_send_fill: the source writes straight into the send buffer, after
 * bytes a send left in its last chunk, past one fill's chunk count, and
 * the bytes leave in order; a short fill ends the call, an empty one is
 * the source's end (0), a failing one returns its error and takes nothing;
 * a datagram socket has none. */
int test_tcp_send_fill(void)
{
	struct tenv e; tenv_init(&e, NULL);
	tenv_learn_peer(&e);
	struct tconn c;
	CHECK(tconn_accept(&c, &e, 80, 1, 1, 7, 1460) == 0);
	usnet_setsockopt(e.st, c.s, USNET_TCP_NODELAY, 1);
	static uint8_t data[300000], want[300003], out[300003];
	for (unsigned i = 0; i < sizeof data; i++)
		data[i] = (uint8_t)(i * 7 + i / 251);
	struct tpkt p;
	uint32_t from = c.pack;   /* all acknowledged so far */
	CHECK(usnet_send(e.st, &e.io, c.s, "abc", 3, USNET_MSG_MORE, e.now) == 3);
	CHECK(!t_next_tcp(&e, &p));   /* corked: the first seq comes with the data */
	struct fill_src f = { data, 0, sizeof data, 0, 0, 0 };
	int v = 0;
	usnet_setsockopt(e.st, c.s, USNET_SO_SNDBUF, 1 << 20);
	CHECK(usnet_getsockopt(e.st, c.s, USNET_SO_SNDBUF, &v) == 0 && v > 140000);
	long r = usnet_send_fill(e.st, &e.io, c.s, 200000, fill_from, &f, 0, e.now);
	long expect = v - 3 < 200000 ? v - 3 : 200000;
	CHECKF(r == expect, "took %ld of 200000 (buffer %d)", r, v);
	CHECKF(f.calls >= 2 && f.max_iov <= 64, "%d fills, up to %d entries", f.calls, f.max_iov);
	memcpy(want, "abc", 3);
	memcpy(want + 3, data, (size_t)r);
	uint32_t got = collect_acked(&e, &c, from, out, (uint32_t)r + 3);
	CHECKF(got == (uint32_t)r + 3 && !memcmp(out, want, got), "%u of %ld bytes back", got, r + 3);
	from += got;
	/* a source with 100 bytes left: 100, then its end */
	f.left = 100;
	uint32_t at = f.pos;
	CHECK(usnet_send_fill(e.st, &e.io, c.s, 1000, fill_from, &f, 0, e.now) == 100);
	CHECK(usnet_send_fill(e.st, &e.io, c.s, 1000, fill_from, &f, 0, e.now) == 0);
	got = collect_acked(&e, &c, from, out, 100);
	CHECK(got == 100 && !memcmp(out, data + at, 100));
	from += got;
	/* a failing source: its error, nothing queued; a send after it is whole */
	f.fail = -5;
	CHECK(usnet_send_fill(e.st, &e.io, c.s, 1000, fill_from, &f, 0, e.now) == -5);
	CHECK(usnet_send(e.st, &e.io, c.s, "after", 5, 0, e.now) == 5);
	got = collect_acked(&e, &c, from, out, 5);
	CHECK(got == 5 && !memcmp(out, "after", 5));
	int32_t u = usnet_socket(e.st, USNET_SOCK_DGRAM);
	CHECK(usnet_send_fill(e.st, &e.io, u, 10, fill_from, &f, 0, e.now) == -USNET_EOPNOTSUPP);
	usnet_close(e.st, &e.io, u, e.now);
	usnet_setsockopt(e.st, c.s, USNET_SO_LINGER, 0);
	usnet_close(e.st, &e.io, c.s, e.now);
	tenv_fini(&e);
	return 0;
}
