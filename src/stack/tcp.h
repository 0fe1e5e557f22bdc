/*
 * TCP internals shared by tcp_*.c (included from internal.h).
 *
 *   tcp_input.c    segment arrival (RFC 9293 3.10.7), RFC 5961 checks
 *   tcp_output.c   what to send and building segments
 *   tcp_timer.c    RTO / persist, delayed ACK, keepalive, TIME_WAIT
 *   tcp_cc.c       the congestion-control ops table; tcp_cc_newreno.c, tcp_cc_cubic.c
 *   tcp_sack.c     the sender's SACK scoreboard (RFC 2018 / RFC 6675)
 *   tcp_reass.c    out-of-order queue of the receiver
 *   tcp_socket.c   the socket API for TCP
 */
#ifndef USNET_TCP_H
#define USNET_TCP_H

#define TCP_MSS_DEFAULT   536u   /* when the peer sends no MSS option */
#define TCP_MSS_MIN        88u
#define TCP_RTO_INIT_US  1000000u
#define TCP_RTO_MIN_US    200000u
#define TCP_RTO_MAX_US  120000000u
#define TCP_DELACK_NS    (40 * NS_PER_MS)
#define TCP_MAX_QUICKACKS 16u
/* The round trip receive autotuning measures over while the connection has
 * no RTT sample (a receiver that never sent data). */
#define TCP_RCV_RTT_DEFAULT_US 1000u
#define TCP_TIME_WAIT_NS (60 * NS_PER_S)
#define TCP_SYN_RETRIES   6
#define TCP_SYNACK_RETRIES 5
#define TCP_SYNACK_RETRIES_BUSY 2   /* with the SYN queue half full, or flooded */
#define TCP_SYNFLOOD_RECENT_NS (120 * NS_PER_S)   /* "flooded": SYN cookies sent this recently */
#define TCP_MAX_BACKOFF  15
#define TCP_PERSIST_MIN_US 200000u
#define TCP_INIT_CWND_SEGS 10u
#define TCP_DUPTHRESH      3u
#define TCP_OPT_SPACE     40u
#define TCP_CHALLENGE_PER_S 1000u
#define TCP_TX_RETRY_NS  (1 * NS_PER_MS)   /* retry after the netif had no buffer */
#define TCP_CORK_CEILING_NS (200 * NS_PER_MS) /* TCP_CORK holds a partial segment at most this long (Linux's) */
/* Out-of-order records a connection may hold (each takes >= one chunk). */
#define TCP_OOO_MAX_RECORDS(s) (16u + (s)->rcvbuf / 1024u)

/* ---- congestion control ops (indexed by enum usnet_cc: no code pointers
 * are stored in the arena, only the index). */
struct tcp_cc_ops {
	const char *name;
	void (*init)(struct sock *s, uint64_t now);
	/* New data acknowledged outside recovery. */
	void (*on_ack)(struct sock *s, uint32_t acked, uint64_t now);
	/* Loss detected by duplicate ACKs/SACK: set ssthresh (cwnd is then set
	 * by the recovery code). */
	void (*on_loss)(struct sock *s, uint64_t now);
	/* Retransmission timeout. */
	void (*on_rto)(struct sock *s, uint64_t now);
};
extern const struct tcp_cc_ops tcp_cc_newreno_ops, tcp_cc_cubic_ops;
const struct tcp_cc_ops *tcp_cc(const struct sock *s);
/* Slow start / congestion avoidance increase shared by the algorithms. */
uint32_t tcp_slow_start(struct sock *s, uint32_t acked);
uint32_t tcp_flight(const struct sock *s);

/* tcp_input.c */
void tcp_input(struct net_ctx *c, uint32_t src, uint32_t dst, const uint8_t *p, uint32_t len,
	       uint32_t rx_flags);
void tcp_set_state(struct net_ctx *c, struct sock *s, uint8_t state);
void tcp_established_init(struct sock *s);
/* Tear down after a reset or fatal error: err is a positive errno or 0. */
void tcp_drop(struct net_ctx *c, struct sock *s, int err);
void tcp_enter_time_wait(struct net_ctx *c, struct sock *s);
void tcp_mtu_reduced(struct net_ctx *c, uint32_t lip, uint16_t lport, uint32_t rip, uint16_t rport,
		     uint32_t mtu);
/* IPv6: the connections to dst (NULL: every one) take the MTU mtu. */
void tcp_mtu_reduced6(struct net_ctx *c, const uint8_t dst[16], uint32_t mtu);

/* How long an orphan stays in FIN_WAIT2: TCP_LINGER2, else the stack's
 * tcp_fin_timeout. */
static inline uint64_t tcp_fin_wait2_ns(const struct usnet_stack *st, const struct sock *s)
{
	return s->linger2_s < 0 ? 0 : s->linger2_s ? (uint64_t)s->linger2_s * NS_PER_S
						   : (uint64_t)st->cfg.tcp_fin_timeout_s * NS_PER_S;
}

/* Window scale that lets rcvbuf be advertised. */
uint8_t tcp_wscale_for(uint32_t rcvbuf);
/* The window scale s offers, as Linux chooses it: from the stack's
 * tcp_rmem_max (the buffer may grow there), or from the buffer the program
 * set with SO_RCVBUF. */
uint8_t tcp_rcv_wscale(const struct usnet_stack *st, const struct sock *s);

/* Send-buffer autotuning: twice the congestion window (at least ten
 * segments' worth), up to cfg.sndbuf_max, unless the program set SO_SNDBUF. */
static inline void tcp_sndbuf_expand(const struct usnet_stack *st, struct sock *s)
{
	if (!st->cfg.sndbuf_max || (s->buf_lock & BUF_LOCK_SND))
		return;
	uint64_t want = 2ull * (s->cwnd > TCP_INIT_CWND_SEGS * (uint32_t)s->mss ? s->cwnd
									 : TCP_INIT_CWND_SEGS * (uint32_t)s->mss);
	if (want > st->cfg.sndbuf_max)
		want = st->cfg.sndbuf_max;
	if (want > s->sndbuf)
		s->sndbuf = (uint32_t)want;
}

/* tcp_syncookie.c (RFC 4987): answer a SYN from listener l with a cookie
 * SYN-ACK, keeping nothing; and check an ACK that matches no connection:
 * 1 when it carries a valid cookie, with the SYN's options rebuilt in *syn
 * and in *ecn whether its ECN-setup was granted. */
struct tcp_opts;
void tcp_syncookie_send(struct net_ctx *c, struct sock *l, uint32_t src, uint32_t dst, uint16_t sport,
			uint16_t dport, uint32_t sseq, const struct tcp_opts *o, int ecn_setup);
int tcp_syncookie_check(struct net_ctx *c, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport,
			uint32_t seq, uint32_t ack, const struct tcp_opts *ack_opts, struct tcp_opts *syn,
			int *ecn);

/* tcp_output.c */
void tcp_output(struct net_ctx *c, struct sock *s);
/* tcp_output as if TCP_CORK and MSG_MORE were clear (the cork's ceiling elapsed). */
void tcp_output_uncorked(struct net_ctx *c, struct sock *s);
void tcp_send_ack(struct net_ctx *c, struct sock *s);
void tcp_send_syn(struct net_ctx *c, struct sock *s);
void tcp_send_rst_for(struct net_ctx *c, uint32_t src, uint32_t dst, const uint8_t *th,
		      uint32_t seglen, uint8_t flags);
void tcp_send_rst(struct net_ctx *c, struct sock *s);
void tcp_send_rst_at(struct net_ctx *c, struct sock *s, uint32_t seq);
void tcp_send_keepalive(struct net_ctx *c, struct sock *s);
void tcp_send_window_probe(struct net_ctx *c, struct sock *s);
/* Retransmit one segment starting at seq (in recovery / after PMTU drop). */
uint32_t tcp_retransmit_at(struct net_ctx *c, struct sock *s, uint32_t seq, uint32_t maxlen);
uint32_t tcp_rcv_window(const struct sock *s);
uint32_t tcp_ts_now(const struct net_ctx *c, const struct sock *s);
uint32_t tcp_isn(struct usnet_stack *st, const struct sock *s, uint64_t now);
void tcp_arm_rto(struct net_ctx *c, struct sock *s);
void tcp_send_tlp(struct net_ctx *c, struct sock *s);

/* tcp_timer.c */
void tcp_timers(struct net_ctx *c, struct sock *s);
void tcp_keepalive_reset(struct net_ctx *c, struct sock *s);
void tcp_delack_schedule(struct net_ctx *c, struct sock *s);

/* tcp_sack.c */
void tcp_sack_update(struct sock *s, const uint32_t (*blocks)[2], unsigned n);
void tcp_sack_clean(struct sock *s);
/* First byte >= from not covered by the scoreboard, and how many bytes of
 * it are uncovered (until the next block or `to`). */
uint32_t tcp_sack_next_hole(const struct sock *s, uint32_t from, uint32_t to, uint32_t *len);
int tcp_sack_covered(const struct sock *s, uint32_t seq);
/* RFC 6675 pipe estimate. */
uint32_t tcp_pipe(const struct sock *s);

/* tcp_reass.c */
/* Queue an out-of-order segment; returns 0 or -1 (no buffer). */
int tcp_reass_insert(struct usnet_stack *st, struct sock *s, uint32_t seq, const uint8_t *p, uint32_t len);
/* Move segments now in order onto the receive queue; returns bytes moved. */
uint32_t tcp_reass_pull(struct usnet_stack *st, struct sock *s);
/* SACK blocks to report (most recent first); returns the count. */
unsigned tcp_reass_sack_blocks(struct usnet_stack *st, const struct sock *s, uint32_t (*out)[2], unsigned max);

/* tcp_socket.c */
int tcp_close(struct net_ctx *c, struct sock *s);
void tcp_free_orphan(struct net_ctx *c, struct sock *s);

#endif
