/*
 * Test harness for the stack core: a test double of the netif contract that
 * captures transmitted frames, an independent frame builder/parser (so the
 * tests do not trust the stack's own wire code), and a registry of named
 * tests.  Time is virtual: tests pass `now` explicitly.
 */
#ifndef USNET_TEST_HARNESS_H
#define USNET_TEST_HARNESS_H

#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include "usnet/stack.h"

#define MS 1000000ull
#define SEC 1000000000ull

/* ---- the capturing netif ---------------------------------------------- */
#define TNIF_BUFS 256
#define TNIF_FRAME 2048
#define TNIF_CAP 4096

struct tframe {
	uint8_t  d[TNIF_FRAME];
	uint32_t len, flags;
	uint16_t csum_start, csum_offset;
};

struct tnif {
	struct usnet_netif nif;
	uint8_t  bufs[TNIF_BUFS][TNIF_FRAME];
	uint8_t  busy[TNIF_BUFS];
	unsigned nbusy;
	struct tframe *out;    /* captured frames, oldest first */
	unsigned nout, rd;     /* count, next to read */
	unsigned alloc_fail;   /* make the next tx_alloc calls fail */
	unsigned flushes;
};

void tnif_init(struct tnif *t, const uint8_t mac[6]);
void tnif_fini(struct tnif *t);
/* Next captured frame, or NULL. */
struct tframe *tnif_next(struct tnif *t);
void tnif_clear(struct tnif *t);

/* ---- a stack under test ----------------------------------------------- */
#define EVLOG 256
struct tenv {
	struct usnet_stack *st;
	void *mem;
	size_t mem_size;       /* bytes at mem (the arena, rounded up to 64) */
	struct tnif *nif;
	struct usnet_io io;
	uint64_t now;
	struct { int32_t s; uint32_t ev; } evlog[EVLOG];
	unsigned nev;
};

extern const uint8_t T_MAC_US[6], T_MAC_PEER[6];
#define T_IP_US   0x0a000001u   /* 10.0.0.1 */
#define T_IP_PEER 0x0a000002u   /* 10.0.0.2 */

/* Create a stack (cfg may be NULL for defaults with our address). */
void tenv_init(struct tenv *e, const struct usnet_stack_config *cfg);
void tenv_fini(struct tenv *e);
void tenv_default_cfg(struct usnet_stack_config *cfg);
/* Move the arena to a new buffer at another address (as a process that
 * maps the same shared memory elsewhere sees it): copy it, then fill the
 * old buffer with garbage and free it, so anything still pointing there
 * reads garbage, or is caught by ASan as a use after free. */
void tenv_move_arena(struct tenv *e);
/* With STACK_TEST_CHECK set in the environment: usnet_stack_check() after
 * every input and poll the harness makes, aborting with its reason when an
 * invariant is broken. */
void tenv_verify(struct usnet_stack *st, const char *after);
void tenv_input(struct tenv *e, const uint8_t *frame, uint32_t len);
void tenv_input_flags(struct tenv *e, const uint8_t *frame, uint32_t len, uint32_t flags);
uint64_t tenv_poll(struct tenv *e);
/* Advance the clock to t, running every timer due on the way. */
void tenv_advance(struct tenv *e, uint64_t t);
/* Teach the stack the peer's MAC (an ARP request from the peer) and drop
 * the reply from the capture. */
void tenv_learn_peer(struct tenv *e);
/* Last event mask reported for s (0 if none). */
uint32_t tenv_last_event(struct tenv *e, int32_t s);
int tenv_event_count(struct tenv *e, int32_t s);

/* ---- frames ------------------------------------------------------------ */
uint16_t t_csum(const uint8_t *p, size_t len, uint32_t initial);
uint32_t t_pseudo(uint32_t src, uint32_t dst, uint8_t proto, uint32_t len);

/* Build Ethernet+IPv4 around an L4 payload; returns frame length. */
uint32_t t_ip_frame(uint8_t *f, const uint8_t dmac[6], const uint8_t smac[6], uint32_t src, uint32_t dst,
		    uint8_t proto, uint16_t id, uint16_t frag, const uint8_t *l4, uint32_t l4len);

struct tseg_out {
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t win;
	const uint8_t *opts; uint32_t optlen;
	const uint8_t *data; uint32_t dlen;
};
/* A TCP segment from the peer to us. */
uint32_t t_tcp_frame(uint8_t *f, uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack,
		     uint8_t flags, uint16_t win, const uint8_t *opts, uint32_t optlen,
		     const uint8_t *data, uint32_t dlen);
/* Set the DS field (ECN codepoint included) of a frame t_ip_frame built. */
void t_set_tos(uint8_t *f, uint8_t tos);
uint32_t t_udp_frame(uint8_t *f, uint16_t sport, uint16_t dport, const uint8_t *data, uint32_t dlen);

/* Parsed view of a captured frame. */
struct tpkt {
	int is_arp, is_ip;
	uint16_t arp_op; uint32_t arp_spa, arp_tpa;
	const uint8_t *eth_dst;
	uint32_t src, dst; uint8_t proto, tos; uint16_t ipid, frag; uint32_t iplen;
	int ip_csum_ok, l4_csum_ok;
	const uint8_t *l4; uint32_t l4len;
	/* TCP */
	uint16_t sport, dport;
	uint32_t seq, ack; uint8_t flags; uint16_t win;
	uint16_t mss; int ws, sack_perm, has_ts; uint32_t tsval, tsecr;
	int nsack; uint32_t sack[4][2];
	const uint8_t *data; uint32_t dlen;
	/* ICMP */
	uint8_t icmp_type, icmp_code;
};
int t_parse(const struct tframe *f, struct tpkt *p);
/* Next captured TCP segment (skipping other frames), or 0. */
int t_next_tcp(struct tenv *e, struct tpkt *p);
int t_next_proto(struct tenv *e, uint8_t proto, struct tpkt *p);
unsigned t_count_tcp(struct tenv *e);

/* ---- test registry & checks ------------------------------------------- */
typedef int (*test_fn)(void);
struct test_case { const char *name; test_fn fn; };
extern const struct test_case stack_tests[];
extern char t_why[256];

#define CHECK(cond) do { if (!(cond)) { snprintf(t_why, sizeof t_why, "%s:%d: %s", __FILE__, __LINE__, #cond); return 1; } } while (0)
#define CHECKF(cond, ...) do { if (!(cond)) { int _n = snprintf(t_why, sizeof t_why, "%s:%d: ", __FILE__, __LINE__); snprintf(t_why + _n, sizeof t_why - _n, __VA_ARGS__); return 1; } } while (0)

/* A TCP connection to drive by hand: peer port 40000 <-> our port. */
struct tconn {
	struct tenv *e;
	int32_t s;          /* our socket (accepted or connected) */
	uint16_t pport, uport;
	uint32_t pseq;      /* peer's next sequence number */
	uint32_t pack;      /* what the peer acknowledges (our seq) */
	int ts, sack, ws;
	uint32_t ts_val;
};
/* Passive open on port uport with the given peer options; returns 0. */
int tconn_accept(struct tconn *c, struct tenv *e, uint16_t uport, int sack, int ts, int ws, uint16_t mss);
/* Peer sends a segment with the connection's addresses and options. */
void tconn_send(struct tconn *c, uint8_t flags, const void *data, uint32_t dlen, uint16_t win);
void tconn_send_seq(struct tconn *c, uint32_t seq, uint8_t flags, const void *data, uint32_t dlen, uint16_t win);
void tconn_send_sack(struct tconn *c, uint32_t ack, const uint32_t (*blocks)[2], int n, uint16_t win);

/* Independent Toeplitz hash for the RSS checks. */
static inline uint32_t ref_toeplitz(const uint8_t *key, const uint8_t *in, int n)
{
	uint32_t h = 0;
	for (int i = 0; i < n * 8; i++) {
		if (in[i / 8] & (0x80 >> (i % 8))) {
			uint32_t w = 0;
			for (int b = 0; b < 32; b++)
				w = (w << 1) | ((key[(i + b) / 8] >> (7 - (i + b) % 8)) & 1);
			h ^= w;
		}
	}
	return h;
}

#endif
