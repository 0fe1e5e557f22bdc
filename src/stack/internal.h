/*
 * usnet stack core — internal definitions shared by the files of src/stack/.
 *
 * Memory model: one arena (struct usnet_stack at its start, then the tables
 * and pools) holds all state, and nothing in it is a pointer: tables are
 * found by their byte offset from the start of the arena (st_socks() and
 * the other accessors below), and everything inside them refers to other
 * entries by index.  So an arena may be mapped at any address in any
 * process (a forked child, an exec'd image, an unrelated program sharing
 * the memory) and used there as it is.  Pointers exist only for the length
 * of one API call: the struct net_ctx on the C stack holds everything that
 * is process-local (the netif, the event callback, frames lent by the
 * netif), and a pointer into the arena computed during a call is never
 * stored back into it.
 *
 * Freestanding: only <stddef.h>/<stdint.h> and memcpy/memset/memmove/memcmp.
 */
#ifndef USNET_STACK_INTERNAL_H
#define USNET_STACK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "usnet/stack.h"
#include "wire_ipv6.h"   /* ip6_word, for ip6_fold */

/* The C library functions the core uses (declared here: no <string.h>). */
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
/* -ffreestanding turns off the compiler's knowledge of these; the builtins
 * give it back (small fixed-size copies are inlined, the rest are calls). */
#define memcpy(d, s, n)  __builtin_memcpy((d), (s), (n))
#define memmove(d, s, n) __builtin_memmove((d), (s), (n))
#define memset(d, c, n)  __builtin_memset((d), (c), (n))
#define memcmp(a, b, n)  __builtin_memcmp((a), (b), (n))

#define USNET_STACK_MAGIC 0x75736e74u  /* "usnt" */

/* A compiler barrier: the stores before it are in memory before any store
 * after it.  The arena is shared by processes that may die at any
 * instruction (SIGKILL), and usnet_stack_repair() rebuilds what such a
 * death leaves; where a structure is unlinked and then freed, the barrier
 * keeps that order, so a death between the two leaves an unreachable
 * chunk (which repair gives back to the pool), never a freed chunk still
 * linked from a queue. */
#define order_barrier() __asm__ __volatile__("" ::: "memory")

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define NS_PER_MS 1000000ull
#define NS_PER_US 1000ull
#define NS_PER_S  1000000000ull

static inline uint32_t min_u32(uint32_t a, uint32_t b) { return a < b ? a : b; }
static inline uint32_t max_u32(uint32_t a, uint32_t b) { return a > b ? a : b; }
static inline uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* Sequence-number comparisons (mod 2^32). */
static inline int seq_lt(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }
static inline int seq_le(uint32_t a, uint32_t b) { return (int32_t)(a - b) <= 0; }
static inline int seq_gt(uint32_t a, uint32_t b) { return (int32_t)(a - b) > 0; }
static inline int seq_ge(uint32_t a, uint32_t b) { return (int32_t)(a - b) >= 0; }
static inline uint32_t seq_max(uint32_t a, uint32_t b) { return seq_gt(a, b) ? a : b; }
static inline uint32_t seq_min(uint32_t a, uint32_t b) { return seq_lt(a, b) ? a : b; }

/* ---- buffer pool: fixed-size chunks shared by every socket --------------- */

#define CHUNK_SIZE 2048u
#define NIL (-1)

/* Metadata of one chunk (the bytes live in a separate array, so a chain of
 * chunks can be walked without touching payload cache lines).  A "record"
 * (a TCP segment waiting out of order, a datagram, a queued frame, an IP
 * fragment) is a chain of chunks linked by `next`; records form lists
 * linked by the first chunk's `link`. */
struct chunk {
	int32_t  next;  /* next chunk of the same record / byte queue, or NIL */
	int32_t  link;  /* next record in a list (first chunk only), or NIL */
	uint32_t seq;   /* record position: TCP seq, fragment offset, source IP */
	uint32_t aux;   /* record length, or other per-record value */
	union {
		struct {
			uint16_t off;   /* first valid byte in this chunk */
			uint16_t len;   /* valid bytes in this chunk */
		};
		/* Both at once: trimming the front of a chunk that stays in
		 * its queue changes them in one store, so a process killed
		 * there leaves the chunk naming its old bytes or its new ones,
		 * never a mix (see chunk_trim_front). */
		uint32_t span;
	};
};

/* Drop n bytes from the front of a chunk (n < its len) in one store. */
static inline void chunk_trim_front(struct chunk *ch, uint32_t n)
{
	union { struct { uint16_t off, len; } f; uint32_t span; } v;
	v.f.off = (uint16_t)(ch->off + n);
	v.f.len = (uint16_t)(ch->len - n);
	ch->span = v.span;
}

/* A FIFO of bytes in a chain of chunks.  `cur` caches a chunk and the
 * queue offset where its bytes start, so reading at increasing offsets (the
 * sender walking its queue segment by segment) does not rescan the chain. */
struct byteq {
	int32_t  head, tail;
	uint32_t bytes;
	int32_t  cur;
	uint32_t cur_pos;
};

/* ---- sockets ------------------------------------------------------------ */

/* Socket flags (struct sock.flags). */
enum {
	SF_REUSEADDR  = 1u << 0,
	SF_REUSEPORT  = 1u << 1,
	SF_KEEPALIVE  = 1u << 2,
	SF_NODELAY    = 1u << 3,
	/* 1u << 4 is free */
	SF_BOUND      = 1u << 5,  /* in the port table */
	SF_HASHED     = 1u << 6,  /* in the connection table */
	SF_ORPHAN     = 1u << 7,  /* closed by the user, finishing in the background */
	SF_SHUT_RD    = 1u << 8,  /* user shut the read side */
	SF_SHUT_WR    = 1u << 9,  /* user shut the write side: FIN after the data */
	SF_FIN_RCVD   = 1u << 10, /* peer's FIN consumed (EOF) */
	SF_FIN_SENT   = 1u << 11, /* our FIN has a sequence number */
	SF_ACK_NOW    = 1u << 12, /* send an ACK at the next output */
	SF_CONNECTED  = 1u << 13, /* UDP default destination set */
	SF_RESET      = 1u << 14, /* the connection was reset / failed */
	SF_EV_EDGE    = 1u << 15, /* report readiness even if the mask is unchanged */
	SF_IN_RECOVERY= 1u << 16, /* fast recovery (NewReno or SACK) */
	SF_PERSIST    = 1u << 17, /* zero-window probing instead of RTO */
	SF_RTT_TIMING = 1u << 18, /* a segment is being timed (no timestamps) */
	SF_CORK       = 1u << 19, /* MSG_MORE: hold a partial segment */
	SF_WAS_FULL   = 1u << 20, /* a send found no room: report writability */
	SF_DELACK_ONE = 1u << 21, /* one full segment received and not yet ACKed */
	SF_LINGER0    = 1u << 22,
	SF_TS_OK      = 1u << 23, /* timestamps negotiated */
	SF_SACK_OK    = 1u << 24, /* SACK permitted by both */
	SF_WS_OK      = 1u << 25, /* window scaling negotiated */
	SF_ACTIVE     = 1u << 26, /* opened by connect() */
	SF_FIN_OOO    = 1u << 27, /* a FIN arrived out of order at fin_seq */
	SF_CORK_OPT   = 1u << 28, /* TCP_CORK: hold partial segments until cleared */
	SF_TLP_ARMED  = 1u << 29, /* the RTO slot holds a tail-loss probe timeout */
	SF_TLP_SENT   = 1u << 30, /* a probe went out; no other until new data is acked */
	SF_ACK_BATCH  = 1u << 31, /* ACK due at the end of this input batch */
};

/* struct sock.buf_lock: SO_RCVBUF / SO_SNDBUF set, no autotuning. */
enum { BUF_LOCK_RCV = 1u << 0, BUF_LOCK_SND = 1u << 1 };

/* ECN state of a TCP connection (struct sock.ecn). */
enum {
	SE_OK         = 1u << 0, /* negotiated (asked for, on SYN_SENT) */
	SE_DEMAND_CWR = 1u << 1, /* CE seen: ECE on what we send until the peer's CWR */
	SE_QUEUE_CWR  = 1u << 2, /* we reduced: CWR on the next new data */
	SE_CWR        = 1u << 3, /* reduced for an ECE: no other until beyond ecn_cwr_end is acked */
};

/* Indices of the per-socket timers (struct sock.timer_at[]). */
enum { TMR_RTO = 0, TMR_DELACK, TMR_KEEP, TMR_COUNT };

#define SB_MAX 4   /* SACK scoreboard blocks kept by a sender */

struct sack_block { uint32_t start, end; };

struct sock {
	uint8_t  type;        /* 0 free, USNET_SOCK_STREAM, USNET_SOCK_DGRAM */
	uint8_t  state;       /* enum usnet_tcp_state */
	uint8_t  cc;          /* enum usnet_cc */
	uint8_t  backoff;     /* consecutive RTO/persist backoffs */
	uint32_t flags;       /* SF_* */
	uint32_t lip, rip;    /* host order */
	uint16_t lport, rport;
	int32_t  hnext;       /* connection-table chain */
	int32_t  pnext;       /* port-table chain, or free-list link */
	int32_t  heap_pos;    /* position in the timer heap, or NIL */
	uint64_t heap_at;     /* its key there: <= the earliest timer_at[] */
	uint32_t ev_last;     /* events last reported */
	uint64_t user;
	uint16_t err;         /* pending error (positive errno) */
	int16_t  linger;
	uint32_t sndbuf, rcvbuf;
	struct byteq sndq;    /* TCP: bytes from snd_una; UDP: unused */
	struct byteq rcvq;    /* TCP: in-order bytes; UDP: head/tail are datagram records */
	int32_t  ooo;         /* TCP: out-of-order segment records, sorted */
	uint32_t ooo_bytes;
	uint64_t timer_at[TMR_COUNT];

	/* listener / accept queue */
	int32_t  parent;      /* listener of an embryonic or unaccepted child */
	int32_t  acc_next;    /* accept-queue link */
	int32_t  acc_head, acc_tail;
	uint16_t backlog, acc_count, syn_count;

	/* TCP sequence space */
	uint32_t iss, irs;
	uint32_t snd_una, snd_nxt, snd_max, snd_wnd, snd_wl1, snd_wl2, max_sndwnd;
	uint32_t rcv_nxt, rcv_adv;     /* rcv_adv: right edge we advertised */
	uint32_t fin_seq;              /* peer FIN seen out of order */
	uint16_t mss;                  /* effective send MSS (payload bytes) */
	uint16_t rcv_mss;              /* largest segment seen / our MSS option */
	uint16_t user_mss;             /* TCP_MAXSEG, 0 = none */
	uint8_t  snd_wscale, rcv_wscale;
	uint8_t  dupacks, keep_probes, keepcnt, syn_retries;
	uint32_t keepidle_s, keepintvl_s;

	/* timestamps (RFC 7323) */
	uint32_t ts_recent, ts_offset;
	uint32_t ts_recent_age;        /* ms clock when ts_recent was set */

	/* RTT (RFC 6298), microseconds */
	uint32_t srtt_us, rttvar_us, rto_us;
	uint32_t rtt_seq;              /* timed segment when no timestamps */
	uint64_t rtt_start;

	/* congestion control */
	uint32_t cwnd, ssthresh;
	uint32_t recover;              /* snd_max when recovery began */
	uint32_t high_rxt;             /* highest retransmitted seq in recovery */
	uint32_t rxt_round;            /* snd_max when the holes were last retransmitted */
	uint32_t rxt_tick;             /* ~ms clock (now >> 20) of that round */
	uint32_t cwnd_acc;             /* bytes acked toward a cwnd increment */
	/* CUBIC (RFC 9438) */
	uint32_t cub_wmax, cub_k_ms, cub_epoch_ms, cub_west, cub_origin;

	/* SACK scoreboard: blocks the peer reported above snd_una */
	struct sack_block sb[SB_MAX];
	uint8_t  sb_n;
	uint8_t  syncnt;               /* TCP_SYNCNT, 0 = the default */
	uint8_t  defer_retrans;        /* TCP_DEFER_ACCEPT (a listener's), in SYN-ACK timeouts */
	uint8_t  defer_acked;          /* SYN_RECEIVED under it: the handshake's ACK came, no data */
	uint16_t ooo_n;                /* out-of-order records held */
	uint32_t sacked_bytes, high_sacked;
	uint32_t last_ooo_seq;         /* start of the last out-of-order segment */

	/* options (0: Linux's default) */
	uint8_t  ip_ttl, ip_tos;       /* IP_TTL, IP_TOS of what it sends */
	uint8_t  mc_ttl;               /* IP_MULTICAST_TTL (Linux's default 1, set by sock_alloc) */
	uint8_t  mc_opts;              /* MCO_*: IP_MULTICAST_LOOP and _ALL off */
	uint8_t  mc_n;                 /* groups it joined (entries of the member table) */
	uint8_t  mc6_n;                /* IPv6 groups it joined (entries of mc6_members) */
	uint8_t  mc6_hops;             /* IPV6_MULTICAST_HOPS (Linux's default 1, set by sock_alloc) */
	uint32_t mc_if;                /* IP_MULTICAST_IF: the source of its multicast (0: the stack's) */
	int16_t  linger2_s;            /* TCP_LINGER2: FIN_WAIT2 time; -1 none */
	uint32_t user_timeout_ms;      /* TCP_USER_TIMEOUT */
	uint32_t window_clamp;         /* TCP_WINDOW_CLAMP: largest window offered */
	uint32_t rcvlowat;             /* SO_RCVLOWAT: readable from these many bytes (0 = 1) */
	uint32_t notsent_lowat;        /* TCP_NOTSENT_LOWAT: writable below these unsent bytes */
	uint64_t unacked_since;        /* when data went unacknowledged (TCP_USER_TIMEOUT) */

	/* IPv6: the family it was made with (USNET_AF_*: the API's, which
	 * options it takes); whether its addresses are IPv6 (net6: lip and
	 * rip are then ip6_fold()s of the full addresses, which live in the
	 * socket's struct sock6, and :: is the wildcard whatever lip says);
	 * IPV6_V6ONLY; IPV6_TCLASS; IPV6_UNICAST_HOPS (-1: the default) */
	uint8_t  af;
	uint8_t  net6;
	uint8_t  v6only;
	uint8_t  ip6_tclass;
	int16_t  ip6_hops;

	/* ACK timing, as Linux: quick ACKs left (each segment acked at once
	 * while some are left, unless the connection is interactive), and
	 * whether it is (pingpong: we answered within the delayed-ACK time;
	 * TCP_QUICKACK reads its opposite); when data last came */
	uint8_t  quick, pingpong, rcv_started;
	uint64_t data_rx_at;

	/* Buffer autotuning: BUF_LOCK_* (the program set the size), and the
	 * receive side's measurement (Linux's rcvq_space): bytes read in the
	 * last round, from which sequence number, since when */
	uint8_t  buf_lock;
	uint32_t rcv_space, rcv_space_seq;
	uint64_t rcv_space_at;

	/* ECN (RFC 3168): SE_* state, and where a reduction's window ends */
	uint8_t  ecn;
	uint32_t ecn_cwr_end;          /* snd_max at the last reduction: one a window */

	/* statistics */
	uint32_t total_retrans_lo;
	uint64_t bytes_sent, bytes_acked, bytes_received;
	uint32_t segs_out, segs_in;
	uint64_t last_rx;              /* when a segment last arrived (keepalive idle) */
};

/* The IPv6 addresses of socket i (the region st_sock6(), parallel to the
 * socket table, so that IPv4 sockets do not carry them): meaningful while
 * its net6 is set; laddr :: is bound to the wildcard, raddr :: none. */
struct sock6 {
	uint8_t laddr[16], raddr[16];
};

/* The 32 bits an IPv6 address stands for in struct sock's lip/rip (hash
 * keys only: lookups compare the full addresses): the XOR of its four
 * big-endian words.  XOR commutes with the byte order, so the words are
 * loaded as they lie and the sum turned once. */
static inline uint32_t ip6_fold(const uint8_t a[16])
{
	uint64_t w = ip6_word(a) ^ ip6_word(a + 8);
	uint32_t x = (uint32_t)w ^ (uint32_t)(w >> 32);
	uint8_t b[4];
	__builtin_memcpy(b, &x, sizeof b);
	return rd32(b);
}

/* A step of a TCP connection that moves a sequence number and a queue
 * together (an ACK freeing the front of the send queue, then snd_una; in-
 * order data joining the receive queue, then rcv_nxt): noted before it
 * starts and cleared when it is done, so that usnet_stack_repair() can tell
 * a queue the step changed from the sequence number it did not get to, and
 * finish the step (repair.c).  One per instance: steps never nest. */
struct seq_journal {
	int32_t  sock;          /* the connection in the step, or NIL */
	uint32_t snd_una, snd_bytes;   /* before the step */
	uint32_t rcv_nxt, rcv_bytes;
};

/* ---- neighbour (ARP) cache --------------------------------------------- */
enum { ARP_FREE = 0, ARP_INCOMPLETE, ARP_REACHABLE, ARP_PROBE };
struct arp_entry {
	uint32_t ip;
	uint8_t  mac[6];
	uint8_t  state, tries;
	uint64_t expires;       /* REACHABLE: until; INCOMPLETE/PROBE: next try */
	int32_t  queue;         /* frames waiting for resolution (records) */
	uint8_t  qlen;
	uint8_t  pad[3];
};
#define ARP_TABLE 256u
#define ARP_QUEUE_MAX 8
#define ARP_RETRIES 3
#define ARP_RETRY_NS (1000 * NS_PER_MS)
#define ARP_REACHABLE_NS (60 * NS_PER_S)

/* ---- IPv4 reassembly --------------------------------------------------- */
struct reasm {
	uint32_t src, dst;
	uint16_t id;
	uint8_t  proto, used;
	uint32_t total;          /* payload length once the last fragment came, else 0 */
	uint32_t have;           /* payload bytes held */
	uint32_t truesize;       /* pool bytes held (whole chunks) */
	int32_t  frags;          /* fragment records sorted by offset */
	uint32_t rx_flags;       /* AND of the fragments' USNET_PKT_RX_* flags */
	uint64_t expires;
};
#define REASM_SLOTS 16u
#define REASM_TIMEOUT_NS (30 * NS_PER_S)
#define REASM_MAX 65535u

/* ---- IPv6 reassembly (ip6_reass.c) -------------------------------------
 * A datagram in reassembly, keyed by (src, dst, id) as RFC 8200 4.5 says;
 * its fragments are records sorted by offset, as IPv4's, and both draw on
 * the same budget (reasm_bytes).  A slot whose datagram had overlapping
 * fragments stays `dead` until it expires, its fragments freed, so that
 * the rest of that datagram is dropped too (RFC 5722, RFC 8200 4.5). */
struct reasm6 {
	uint8_t  src[16], dst[16];
	uint32_t id;
	uint8_t  used, dead;
	uint8_t  first;          /* the fragment at offset 0 is held: next, hop_limit, vtf are its */
	uint8_t  l2_mcast;       /* the first fragment came to a multicast MAC */
	uint8_t  next;           /* its Fragment header's next header */
	uint8_t  hop_limit;
	uint16_t pad;
	uint32_t vtf;            /* its version, traffic class and flow label */
	uint32_t total;          /* fragmentable part's length once the last fragment came, else 0 */
	uint32_t have;           /* payload bytes held */
	uint32_t truesize;       /* pool bytes held (whole chunks) */
	int32_t  frags;          /* fragment records sorted by offset (REC_FRAGMENT) */
	uint32_t pad2;
	uint64_t expires;
};
#define REASM6_SLOTS 16u
#define REASM6_TIMEOUT_NS (60 * NS_PER_S)   /* RFC 8200 4.5 */

/* ---- IPv6 path MTU (ip6_pmtu.c, RFC 8201) ------------------------------
 * What Packet Too Big messages taught about a destination, for a while
 * (Linux's ip6_rt_mtu_expires: 10 minutes).  mtu 0: a free entry. */
struct pmtu6 {
	uint8_t  dst[16];
	uint32_t mtu;            /* IP6_MIN_MTU .. cfg.mtu */
	uint32_t pad;
	uint64_t expires;
};
#define PMTU6_TABLE 32u
#define PMTU6_EXPIRES_NS (600 * NS_PER_S)

struct route { uint32_t dst, mask, gw; uint8_t prefix, used; };

/* ---- IPv4 multicast (igmp.c) -------------------------------------------- */
/* struct sock.mc_opts: 0 is Linux's default for each. */
enum { MCO_NOLOOP = 1u << 0, MCO_NOALL = 1u << 1, MCO_NOLOOP6 = 1u << 2 /* IPV6_MULTICAST_LOOP */ };
#define MC_GROUPS 64u        /* groups an instance is a member of, or leaving */
#define MC_MEMBERS 256u      /* socket memberships of an instance */
#define MC_SOCK_MAX 20u      /* per socket: Linux's net.ipv4.igmp_max_memberships */
/* A group of the instance (the host's membership, RFC 3376 "interface
 * state").  A slot is free when addr is 0. */
struct mc_group {
	uint32_t addr;          /* the group, host order */
	uint16_t refs;          /* sockets that joined it; 0 while leaving */
	uint8_t  reports_left;  /* unsolicited state-change reports still to send */
	uint8_t  pad;
	uint64_t report_at;     /* the next of them (UINT64_MAX: none) */
	uint64_t answer_at;     /* the answer to a query about it (UINT64_MAX: none) */
};
/* One socket's membership of one group (sock NIL: a free entry). */
struct mc_member { int32_t sock; uint32_t group; };
#define IGMP_ROBUSTNESS 2u          /* Linux's net.ipv4.igmp_qrv */
/* IPv6 groups of the instance (mld6.c): the solicited-node groups of its
 * own addresses, one slot each at most (twice the address slots: a group
 * still reporting its leave keeps its slot a while), and the groups its
 * sockets joined (IPV6_JOIN_GROUP), MLD6_SOCK_GROUPS slots at most that no
 * address holds.  A slot is free when addr is all zero. */
#define MLD6_SOCK_GROUPS 32u
#define MLD6_GROUPS (2u * (1u + USNET_IP6_ADDRS) + MLD6_SOCK_GROUPS)
#define MC6_MEMBERS 128u     /* IPv6 socket memberships of an instance */
struct mld6_group {
	uint8_t  addr[16];      /* the group */
	uint8_t  member;        /* 1: an address of ours has it (its solicited-node group) */
	uint8_t  reports_left;  /* unsolicited state-change reports still to send */
	uint16_t refs;          /* sockets that joined it; with member 0 and refs 0: its leave being reported */
	uint8_t  pad[4];
	uint64_t report_at;     /* the next of them (UINT64_MAX: none) */
	uint64_t answer_at;     /* the answer to a query about it (UINT64_MAX: none) */
};
/* One socket's membership of one IPv6 group (sock NIL: a free entry). */
struct mc6_member { int32_t sock; uint8_t group[16]; };
#define MLD6_ROBUSTNESS 2u          /* RFC 3810 9.1; Linux's net.ipv6.mld_qrv */
#define ROUTE_MAX 16u

/* ---- IPv6 addresses and neighbours (ipv6.c, nd6.c) --------------------- */
/* The instance's addresses: slot 0 the link-local one, 1.. cfg.ip6[]. */
#define IP6_ADDRS (1u + USNET_IP6_ADDRS)
struct ip6_addr_slot {
	uint8_t  addr[16];
	uint8_t  prefix_len;
	uint8_t  state;         /* enum usnet_ip6_addr_state */
	uint8_t  dad_sent;      /* DAD probes sent (RFC 4862 5.4.2) */
	uint8_t  shared;        /* the host kernel's address (cfg.ip6_shared): it answers ND for it */
	uint64_t dad_at;        /* TENTATIVE: next probe, or the verdict; 0: not started */
};
/* Neighbour cache states (RFC 4861 7.3.2). */
enum { ND6_FREE = 0, ND6_INCOMPLETE, ND6_REACHABLE, ND6_STALE, ND6_DELAY, ND6_PROBE };
struct nd6_entry {
	uint8_t  ip[16];
	uint8_t  mac[6];
	uint8_t  state, tries;  /* tries: solicitations sent in INCOMPLETE or PROBE */
	uint8_t  router;        /* the last NA said IsRouter */
	uint8_t  qlen;
	uint8_t  pad[2];
	uint64_t expires;       /* INCOMPLETE, PROBE: next solicitation; REACHABLE: until; DELAY: first probe */
	uint64_t updated;       /* last state change (eviction picks the oldest) */
	int32_t  queue;         /* frames waiting for resolution (records) */
	uint32_t pad2;
};
#define ND6_TABLE 64u                       /* a power of two */
#define ND6_QUEUE_MAX 8
#define ND6_MAX_MULTICAST_SOLICIT 3         /* RFC 4861 10 */
#define ND6_MAX_UNICAST_SOLICIT 3
#define ND6_RETRANS_NS (1000 * NS_PER_MS)   /* RetransTimer */
#define ND6_REACHABLE_NS (30 * NS_PER_S)    /* REACHABLE_TIME */
#define ND6_DELAY_NS (5 * NS_PER_S)         /* DELAY_FIRST_PROBE_TIME */
#define ND6_DAD_DELAY_NS (1000 * NS_PER_MS) /* MAX_RTR_SOLICITATION_DELAY: before the first DAD probe */
/* Router discovery (RFC 4861 6.3): what Router Advertisements taught.  A
 * default router (expires 0: a free entry) until its Router Lifetime ends;
 * an on-link prefix (len 0: a free entry) until its valid lifetime ends
 * (UINT64_MAX: for good). */
struct nd6_router {
	uint8_t  ip[16];         /* its link-local address */
	uint64_t expires;
};
struct nd6_prefix {
	uint8_t  prefix[16];
	uint8_t  len;
	uint8_t  pad[7];
	uint64_t expires;
};
#define ND6_ROUTERS 4u
#define ND6_PREFIXES 8u
#define ND6_RS_DELAY_NS (1000 * NS_PER_MS)     /* MAX_RTR_SOLICITATION_DELAY */
#define ND6_RS_INTERVAL_NS (4000 * NS_PER_MS)  /* RTR_SOLICITATION_INTERVAL */
/* ICMPv6 error rate limit (RFC 4443 2.4(f)): a bucket of this many, one
 * more every ICMP6_ERR_EVERY_NS. */
#define ICMP6_ERR_BURST 10u
#define ICMP6_ERR_EVERY_NS (100 * NS_PER_MS)

/* ---- the instance ------------------------------------------------------ */
struct usnet_stack {
	uint32_t magic;
	uint32_t netmask;
	struct usnet_stack_config cfg;
	struct usnet_stack_stats stats;

	/* The tables after this struct, as byte offsets from its start (never
	 * pointers: see the memory model above); reached through st_socks()
	 * and the other accessors below. */
	size_t socks_off;                 /* struct sock[nsocks] */
	size_t conn_hash_off;             /* int32_t[conn_mask + 1]: connection-table heads */
	size_t port_hash_off;             /* int32_t[port_mask + 1]: port-table heads */
	size_t heap_off;                  /* int32_t[nsocks]: timer min-heap of socket indices */
	size_t chunks_off;                /* struct chunk[nchunks] */
	size_t chunk_data_off;            /* nchunks * CHUNK_SIZE bytes */
	size_t arp_off;                   /* struct arp_entry[ARP_TABLE] */
	size_t reasm_buf_off;             /* REASM_MAX + 20 bytes: assembled datagram */
	size_t loop_buf_off;              /* one looped-back frame being delivered (loop.c) */
	size_t marks_off;                 /* scratch bitmap of usnet_stack_check/repair (own.c) */
	size_t nd6_off;                   /* struct nd6_entry[ND6_TABLE] */
	size_t sock6_off;                 /* struct sock6[nsocks]: IPv6 sockets' addresses */
	int32_t loop_head, loop_tail;     /* frames to the stack's own address, as records */

	uint32_t nsocks, socks_used;
	int32_t  sock_free;
	uint32_t reclaim_next;   /* where sock_alloc_reclaim looks for a TIME_WAIT orphan next */
	uint32_t conn_mask, port_mask;
	uint32_t heap_n;
	uint32_t nchunks, chunks_free;
	int32_t  chunk_free;

	struct reasm reasm[REASM_SLOTS];
	uint32_t reasm_bytes;             /* pool bytes held by IPv4 and IPv6 reassembly together */
	struct reasm6 reasm6[REASM6_SLOTS];
	struct pmtu6 pmtu6[PMTU6_TABLE];
	uint32_t ip6_frag_seq;            /* counter behind the Identification of what we fragment */

	struct route routes[ROUTE_MAX];

	struct seq_journal journal;       /* the sequence step in progress (repair.c) */

	struct ip6_addr_slot ip6[IP6_ADDRS];  /* IPv6 addresses (nd6.c) */
	/* Router discovery (nd6.c): the default router list, the on-link
	 * prefixes, and what RAs set for the link: its MTU (0: cfg.mtu) and
	 * the default hop limit (0: IP6_DEFAULT_HLIM). */
	struct nd6_router nd6_routers[ND6_ROUTERS];
	struct nd6_prefix nd6_prefixes[ND6_PREFIXES];
	uint32_t ip6_ra_mtu;
	uint8_t  ip6_ra_hop_limit;
	uint8_t  rs_sent;                 /* Router Solicitations sent */
	uint8_t  ra_router_seen;          /* an RA named a router: the first RS is the last */
	uint64_t rs_at;                   /* the next one; 0: not started, UINT64_MAX: no more */
	uint64_t icmp6_err_at;            /* ICMPv6 error bucket: when it was last filled */
	uint32_t icmp6_err_tokens;
	struct mc_group mc_groups[MC_GROUPS];
	struct mc_member mc_members[MC_MEMBERS];
	uint64_t igmp_v1_until, igmp_v2_until;  /* an older querier was heard: answer in its version until */
	uint64_t igmp_general_at;         /* v3: the answer to a general query (UINT64_MAX: none) */
	uint64_t mc_rand;                 /* counter of IGMP's and MLD's random delays */
	struct mld6_group mld6_groups[MLD6_GROUPS];
	struct mc6_member mc6_members[MC6_MEMBERS];
	uint64_t mld6_v1_until;           /* an MLDv1 querier was heard: speak MLDv1 until */
	uint64_t mld6_general_at;         /* MLDv2: the answer to a general query (UINT64_MAX: none) */

	uint64_t misc_at;                 /* next ARP, ND, DAD, IGMP, MLD or reassembly deadline */
	uint64_t syncookie_last;          /* when a SYN cookie was last sent (0: never) */
	uint64_t challenge_window;        /* RFC 5961 rate limit: second of the count */
	uint32_t challenge_count;
	uint16_t ip_id;
	uint16_t port_cursor;
};

/* The tables of an instance, located from wherever this process mapped its
 * arena.  The results are valid for the current call only: never store one
 * in the arena. */
static inline void *st_at(struct usnet_stack *st, size_t off) { return (char *)st + off; }
static inline struct sock *st_socks(struct usnet_stack *st) { return st_at(st, st->socks_off); }
static inline int32_t *st_conn_hash(struct usnet_stack *st) { return st_at(st, st->conn_hash_off); }
static inline int32_t *st_port_hash(struct usnet_stack *st) { return st_at(st, st->port_hash_off); }
static inline int32_t *st_heap(struct usnet_stack *st) { return st_at(st, st->heap_off); }
static inline struct chunk *st_chunks(struct usnet_stack *st) { return st_at(st, st->chunks_off); }
static inline uint8_t *st_chunk_data(struct usnet_stack *st) { return st_at(st, st->chunk_data_off); }
static inline struct arp_entry *st_arp(struct usnet_stack *st) { return st_at(st, st->arp_off); }
static inline uint8_t *st_reasm_buf(struct usnet_stack *st) { return st_at(st, st->reasm_buf_off); }
static inline uint8_t *st_loop_buf(struct usnet_stack *st) { return st_at(st, st->loop_buf_off); }
static inline uint64_t *st_marks(struct usnet_stack *st) { return st_at(st, st->marks_off); }
static inline struct nd6_entry *st_nd6(struct usnet_stack *st) { return st_at(st, st->nd6_off); }
static inline struct sock6 *st_sock6(struct usnet_stack *st) { return st_at(st, st->sock6_off); }

/* The MTU of the link the stack sends on: cfg.mtu, or for IPv6 what a
 * Router Advertisement's MTU option set (never above cfg.mtu, RFC 4861
 * 6.3.4).  What the MSS and the path MTU start from. */
static inline uint32_t link_mtu(const struct usnet_stack *st, int net6)
{
	return net6 && st->ip6_ra_mtu ? st->ip6_ra_mtu : st->cfg.mtu;
}
/* The hop limit of IPv6 packets whose socket chose none: a Router
 * Advertisement's Cur Hop Limit when it had one, else IP6_DEFAULT_HLIM
 * (wire_ipv6.h, where this is used). */
#define ip6_default_hops(st) ((st)->ip6_ra_hop_limit ? (st)->ip6_ra_hop_limit : IP6_DEFAULT_HLIM)

/* Note the sequence step about to change s (struct seq_journal): the
 * values first, then (a release store: after them) the socket that makes
 * them count.  The step's first change is a call into another file
 * (byteq_consume, byteq_append), which the compiler cannot move above it. */
static inline void journal_begin(struct usnet_stack *st, int32_t i, const struct sock *s)
{
	st->journal.snd_una = s->snd_una;
	st->journal.snd_bytes = s->sndq.bytes;
	st->journal.rcv_nxt = s->rcv_nxt;
	st->journal.rcv_bytes = s->rcvq.bytes;
	__atomic_store_n(&st->journal.sock, i, __ATOMIC_RELEASE);
}

/* The step is done: after every change it made. */
static inline void journal_end(struct usnet_stack *st)
{
	__atomic_store_n(&st->journal.sock, NIL, __ATOMIC_RELEASE);
}

/* ---- per-call context (on the caller's C stack) ----------------------- */
#define TX_BATCH 32u
struct net_ctx {
	struct usnet_stack *st;
	struct usnet_io *io;
	uint64_t now;
	uint32_t frame_size;
	unsigned ntx, nspare;
	uint64_t tx_frames_at_start;
	/* Sockets owing an ACK at the end of an input batch: one ACK for all
	 * the segments of a connection in the batch (as GRO does). */
	int batching;
	int looping;          /* delivering a frame the stack sent to itself */
	/* TTL (0: the default) and DS field of what ipv4_output sends now:
	 * the sending socket's IP_TTL and IP_TOS, set around its output. */
	uint8_t ip_ttl, ip_tos;
	/* The DS field of the IP packet being delivered to TCP now (its ECN
	 * codepoint is what tcp_input reads). */
	uint8_t rx_tos;
	/* The addresses of the IPv6 packet being delivered to TCP now (its
	 * header's; NULL while an IPv4 one is): tcp_input's src and dst are
	 * their ip6_fold()s then. */
	const uint8_t *rx_src6, *rx_dst6;
	/* Multicast destinations: the sending socket's IP_MULTICAST_TTL, and
	 * whether a copy goes to the stack's own members (IP_MULTICAST_LOOP). */
	uint8_t mc_ttl, mc_loop;
	unsigned nack;
	int32_t ack_later[TX_BATCH];
	struct usnet_pkt tx[TX_BATCH];
	struct usnet_pkt spare[TX_BATCH];
};

/* The earliest of a socket's timers (UINT64_MAX: none armed). */
static inline uint64_t sock_deadline(const struct sock *s)
{
	uint64_t d = UINT64_MAX;
	for (int t = 0; t < TMR_COUNT; t++)
		if (s->timer_at[t] < d)
			d = s->timer_at[t];
	return d;
}

/* ctx.c */
void ctx_init(struct net_ctx *c, struct usnet_stack *st, struct usnet_io *io, uint64_t now);
/* Borrow an empty frame buffer (NULL when the netif has none). */
struct usnet_pkt *tx_get(struct net_ctx *c);
/* Queue a filled frame (from tx_get) for transmission. */
void tx_put(struct net_ctx *c, struct usnet_pkt *p);
/* Give back a frame from tx_get unsent. */
void tx_unget(struct net_ctx *c, struct usnet_pkt *p);
/* Transmit what is queued and return unused buffers. */
void ctx_flush(struct net_ctx *c);

/* neigh_queue.c — frames waiting for a neighbour's address (ARP, ND).
 * Put a copy of p at the end of the list at *queue (dropping its oldest
 * when *qlen reached max); returns how many frames were dropped (0-2: the
 * oldest, and p itself when the pool is empty).  Flush sends them all
 * to mac and empties the list. */
unsigned neigh_queue_put(struct usnet_stack *st, int32_t *queue, uint8_t *qlen, unsigned max,
			 const struct usnet_pkt *p);
void neigh_queue_flush(struct net_ctx *c, int32_t *queue, uint8_t *qlen, const uint8_t mac[6]);

/* buf.c — chunk pool and byte queues */
int32_t chunk_alloc(struct usnet_stack *st);
void chunk_free(struct usnet_stack *st, int32_t i);
void chunk_free_chain(struct usnet_stack *st, int32_t i);
void chunk_free_records(struct usnet_stack *st, int32_t rec);
/* Unlink the record list at *head (set it to NIL), then free its records. */
void chunk_free_list(struct usnet_stack *st, int32_t *head);
static inline uint8_t *chunk_ptr(struct usnet_stack *st, int32_t i)
{ return st_chunk_data(st) + (size_t)i * CHUNK_SIZE; }
/* Copy len bytes into a new chain; returns its head or NIL (pool empty). */
int32_t chain_from_bytes(struct usnet_stack *st, const uint8_t *p, uint32_t len);
/* The same with hlen bytes of hdr kept in the first chunk before the data
 * (its off starts after them): a record's own metadata. */
int32_t chain_from_bytes_hdr(struct usnet_stack *st, const void *hdr, uint32_t hlen, const uint8_t *p,
			     uint32_t len);
void byteq_init(struct byteq *q);
/* Append up to len bytes (stops when the pool runs dry); returns bytes taken. */
uint32_t byteq_append(struct usnet_stack *st, struct byteq *q, const uint8_t *p, uint32_t len);
/* Copy len bytes starting off bytes into the queue. */
void byteq_copy_out(struct usnet_stack *st, struct byteq *q, uint32_t off, uint8_t *dst, uint32_t len);
/* Drop the first n bytes. */
void byteq_consume(struct usnet_stack *st, struct byteq *q, uint32_t n);
void byteq_clear(struct usnet_stack *st, struct byteq *q);
/* Append up to len bytes that fill() writes straight into the queue's free
 * room (the tail chunk's, then up to BYTEQ_FILL_IOV - 1 new chunks; fewer
 * when the pool runs dry), with no copy through another buffer.  Returns
 * the bytes appended (what fill() returned, at most len), or fill()'s
 * negative result when it wrote nothing; *drained says fill() wrote less
 * than it was offered (its source has no more now). */
#define BYTEQ_FILL_IOV 64
long byteq_fill(struct usnet_stack *st, struct byteq *q, uint32_t len, usnet_fill_fn fill, void *arg,
		int *drained);
/* Append a chain (its chunks' off/len already set) holding `bytes`. */
void byteq_append_chain(struct usnet_stack *st, struct byteq *q, int32_t head, uint32_t bytes);

/* csum.c */
uint64_t csum_add(uint64_t sum, const void *p, size_t len);
uint16_t csum_fold(uint64_t sum);          /* folded, not complemented */
uint64_t csum_pseudo(uint32_t src, uint32_t dst, uint8_t proto, uint32_t len);
/* The IPv6 pseudo-header (RFC 8200 8.1), unfolded, for next header `next`
 * and an upper-layer length of len bytes. */
uint64_t csum_pseudo6(const uint8_t src[16], const uint8_t dst[16], uint8_t next, uint32_t len);

/* hash.c */
uint64_t siphash24(const uint64_t key[2], const void *data, size_t len);
uint32_t toeplitz_hash(const uint8_t key[40], const uint8_t *in, unsigned len);

/* timer.c — per-socket deadlines in a min-heap */
void timer_set(struct usnet_stack *st, int32_t s, int which, uint64_t at);
void timer_clear(struct usnet_stack *st, int32_t s, int which);
void timer_clear_all(struct usnet_stack *st, int32_t s);
uint64_t timer_next(struct usnet_stack *st);
/* A socket with a timer due at `now`, or NIL. */
int32_t timer_pop_due(struct usnet_stack *st, uint64_t now);
/* Re-key a socket after its timers ran (its heap key may be stale). */
void timer_refresh(struct usnet_stack *st, int32_t s);

/* sock.c */
static inline struct sock *sk(struct usnet_stack *st, int32_t i) { return &st_socks(st)[i]; }
static inline int32_t sk_index(struct usnet_stack *st, struct sock *s) { return (int32_t)(s - st_socks(st)); }
int32_t sock_alloc(struct usnet_stack *st, int type);
/* sock_alloc, giving up a TIME_WAIT orphan when the table is full. */
int32_t sock_alloc_reclaim(struct usnet_stack *st, int type);
void sock_free(struct usnet_stack *st, int32_t i);
int sock_check(struct usnet_stack *st, usnet_sock_t s, struct sock **out);
uint32_t sock_events(struct usnet_stack *st, struct sock *s);
void sock_notify(struct net_ctx *c, struct sock *s);
uint32_t conn_hashfn(struct usnet_stack *st, uint32_t lip, uint16_t lport, uint32_t rip, uint16_t rport);
uint32_t port_hashfn(struct usnet_stack *st, uint16_t lport);
void port_insert(struct usnet_stack *st, int32_t i);
void port_remove(struct usnet_stack *st, int32_t i);
int32_t port_lookup(struct usnet_stack *st, int type, uint32_t lip, uint16_t lport);
int32_t udp_port_lookup(struct usnet_stack *st, uint32_t lip, uint16_t lport, uint32_t rip, uint16_t rport);
int port_in_use(struct usnet_stack *st, int type, uint32_t lip, uint16_t lport, uint32_t want_flags);
void conn_insert(struct usnet_stack *st, int32_t i);
void conn_remove(struct usnet_stack *st, int32_t i);
int32_t conn_lookup(struct usnet_stack *st, uint32_t lip, uint16_t lport, uint32_t rip, uint16_t rport);
/* IPv6: the same lookups over full addresses (net6 sockets; an IPv4
 * packet's reach the dual-stack ones through the IPv4 lookups above). */
int32_t conn_lookup6(struct usnet_stack *st, const uint8_t lip[16], uint16_t lport, const uint8_t rip[16],
		     uint16_t rport);
int32_t port_lookup6(struct usnet_stack *st, int type, const uint8_t lip[16], uint16_t lport);
int32_t udp_port_lookup6(struct usnet_stack *st, const uint8_t lip[16], uint16_t lport, const uint8_t rip[16],
			 uint16_t rport);
/* Binding IPv6 lip (:: the wildcard) on lport: conflicts with net6
 * sockets as port_in_use, and, when dual (:: with V6ONLY 0), with any
 * IPv4 one. */
int port_in_use6(struct usnet_stack *st, int type, const uint8_t lip[16], int dual, uint16_t lport,
		 uint32_t want_flags);
int choose_ephemeral6(struct usnet_stack *st, struct usnet_io *io, int type, const uint8_t lip[16], int dual,
		      const uint8_t *rip, uint16_t rport, uint16_t *out);
/* Make socket i an IPv6 one on (lip, lport) and put it in the port
 * table (lport 0: an ephemeral port); 0 or -errno. */
int sock_bind6(struct usnet_stack *st, int32_t i, const uint8_t lip[16], uint16_t lport);
/* Set socket i's IPv6 addresses (and the folds in lip/rip). */
void sock_set_addr6(struct usnet_stack *st, int32_t i, const uint8_t *lip, const uint8_t *rip);
/* Socket i's own 4-tuple in the connection table (either family): the
 * first connection with it, or NIL (check.c, repair.c). */
int32_t conn_lookup_sock(struct usnet_stack *st, int32_t i);
/* A net6 socket bound to :: that takes IPv4 too (V6ONLY 0). */
int sock_dual_any(struct usnet_stack *st, int32_t i);
/* io: the calling process's, for RSS (io->flow_queue); may be NULL. */
int choose_ephemeral(struct usnet_stack *st, struct usnet_io *io, int type, uint32_t lip, uint32_t rip,
		     uint16_t rport, uint16_t *out);

/* eth.c / arp.c */
#define ETH_HLEN 14
#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_ARP  0x0806
void eth_input(struct net_ctx *c, struct usnet_pkt *p);
/* Record ip's MAC as an ARP answer would (create: make an entry when
 * there is none); sends the frames waiting on it.  The entry, or NULL. */
struct arp_entry *arp_learn(struct net_ctx *c, uint32_t ip, const uint8_t mac[6], int create);
void arp_input(struct net_ctx *c, const uint8_t *p, uint32_t len);
/* Address the frame p (IP packet at p->data+14) to next hop nh and send or
 * queue it while resolving. */
void arp_output(struct net_ctx *c, struct usnet_pkt *p, uint32_t nh);
uint64_t arp_timers(struct net_ctx *c);

/* loop.c — traffic to the stack's own address */
/* Queue the IPv4 frame p (header written) for delivery to this stack, and
 * give its buffer back. */
void loop_put(struct net_ctx *c, struct usnet_pkt *p);
/* The same, keeping the frame (the caller still sends or gives it back):
 * a multicast datagram's copy for the stack's own members. */
void loop_copy(struct net_ctx *c, struct usnet_pkt *p);
/* Deliver what loop_put() queued, and what that delivery queues in turn
 * (bounded per call; the rest waits for the next). */
void loop_deliver(struct net_ctx *c);
static inline int loop_pending(const struct usnet_stack *st) { return st->loop_head != NIL; }
/* 127.0.0.0/8: the stack's own as well, for connections among its sockets
 * (never on the wire, as on Linux's lo). */
static inline int ip4_is_loopback(uint32_t ip) { return (ip >> 24) == 127; }
#define IP4_LOOPBACK 0x7f000001u   /* 127.0.0.1: the source for any loopback destination */

/* ipv6.c — IPv6 input (validation, extension headers) and output */
#define ETHERTYPE_IPV6 0x86dd
struct ipv6_view;
struct ip6_ext_view;
/* l2_mcast: the frame came to a broadcast or multicast Ethernet address. */
void ipv6_input(struct net_ctx *c, struct usnet_pkt *p, const uint8_t *ip, uint32_t len, int l2_mcast);
/* Fill the IPv6 header at p->data+14 for a payload of plen bytes already
 * in place after it, find the next hop and send it (multicast at once,
 * unicast through the neighbour cache).  Returns 0 or -errno. */
int ipv6_output(struct net_ctx *c, struct usnet_pkt *p, const uint8_t src[16], const uint8_t dst[16],
		uint8_t next, uint32_t plen, uint8_t hop_limit);
/* Deliver a packet whose extension headers were walked (x) to its upper
 * layer, x->proto at x->off: the one place unfragmented and reassembled
 * packets reach their protocol (rx_flags: the checksums the netif
 * checked; 0 for a reassembled one). */
void ip6_deliver(struct net_ctx *c, const uint8_t *ip, uint32_t total, const struct ipv6_view *v,
		 const struct ip6_ext_view *x, int mcast, uint32_t rx_flags);
/* A datagram ip6_reass_input made whole (its fixed header rebuilt, the
 * Fragment header gone): its headers walked, then delivered. */
void ip6_input_reassembled(struct net_ctx *c, const uint8_t *ip, uint32_t total, int mcast);
/* The next hop for dst (itself when on-link, else the configured gateway,
 * else a default router an RA named): 0 or -USNET_ENETUNREACH. */
int route6_lookup(const struct usnet_stack *st, const uint8_t dst[16], uint8_t nh[16]);
/* The slot of our address a (any state), or -1. */
int ip6_addr_find(const struct usnet_stack *st, const uint8_t a[16]);
/* Is a one of our addresses in use (not tentative, not duplicate)? */
int ip6_addr_usable(const struct usnet_stack *st, const uint8_t a[16]);
/* A source address for dst (RFC 6724, simplified: the link-local one for
 * link-local and link-scope multicast destinations, else a global one of
 * dst's prefix, else any global, else the link-local).  0 or -1: none. */
int ip6_select_src(const struct usnet_stack *st, const uint8_t dst[16], uint8_t out[16]);

/* icmp6.c */
void icmp6_input(struct net_ctx *c, const uint8_t *ip, const struct ipv6_view *v, const uint8_t *p,
		 uint32_t len, int l2_mcast);
/* An ICMPv6 error about the packet ip[0..total) (RFC 4443 2.4): rate
 * limited, never about an error or from an unspecified or multicast
 * source; about a packet to a multicast address (IP or link layer) only
 * when mcast_ok (Packet Too Big, Parameter Problem code 2 for an option
 * of action 10). */
void icmp6_send_error(struct net_ctx *c, const uint8_t *ip, uint32_t total, uint8_t type, uint8_t code,
		      uint32_t param, int l2_mcast, int mcast_ok);

/* nd6.c — Neighbor Discovery (RFC 4861) and DAD (RFC 4862) */
void nd6_input(struct net_ctx *c, const uint8_t *ip, const struct ipv6_view *v, const uint8_t *p,
	       uint32_t len);
/* Address the frame p (IPv6 packet at p->data+14) to the on-link next hop
 * nh and send it, or queue it while nh is resolved. */
void nd6_output(struct net_ctx *c, struct usnet_pkt *p, const uint8_t nh[16]);
uint64_t nd6_timers(struct net_ctx *c);
/* Is mac a multicast Ethernet address of a group we are in (all-nodes,
 * the solicited-node group of one of our addresses)? */
int nd6_mac_wanted(const struct usnet_stack *st, const uint8_t mac[6]);
/* Is dst on a prefix a Router Advertisement said is on-link? */
int nd6_onlink(const struct usnet_stack *st, const uint8_t dst[16]);
/* A default router Router Advertisements named (RFC 4861 6.3.6): 0 and
 * its address in out, or -1 when none is listed. */
int nd6_router(const struct usnet_stack *st, uint8_t out[16]);
/* Fill st->ip6[] from the configuration (usnet_stack_create). */
void ip6_addrs_init(struct usnet_stack *st);

/* ipv4.c */
#define IP_HLEN 20
#define IPPROTO_ICMP_ 1
#define IPPROTO_IGMP_ 2
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
void ipv4_input(struct net_ctx *c, struct usnet_pkt *p, const uint8_t *ip, uint32_t len);
/* Fill the IPv4 header at p->data+14 for an L4 payload of l4len bytes
 * already in place after it, route it and send it. Returns 0 or -errno. */
int ipv4_output(struct net_ctx *c, struct usnet_pkt *p, uint32_t src, uint32_t dst,
		uint8_t proto, uint32_t l4len, uint16_t frag_field, uint16_t id);
int route_lookup(struct usnet_stack *st, uint32_t dst, uint32_t *nexthop);
/* Copy bytes [off, off+n) of the concatenation (hdr, iov...) into dst. */
void ipv4_gather(uint8_t *dst, const uint8_t *hdr, uint32_t hlen,
		 const struct usnet_iovec *iov, int iovcnt, uint32_t off, uint32_t n);
/* Send an L4 message (hdr then iov, l4len bytes, checksum already in hdr)
 * as IPv4 fragments.  Returns 0 or -errno. */
int ipv4_output_fragments(struct net_ctx *c, uint32_t src, uint32_t dst, uint8_t proto,
			  const uint8_t *hdr, uint32_t hlen, const struct usnet_iovec *iov, int iovcnt,
			  uint32_t l4len);
/* Deliver an assembled datagram to its protocol. */
void ipv4_deliver(struct net_ctx *c, uint32_t src, uint32_t dst, uint8_t proto,
		  const uint8_t *ip_hdr, const uint8_t *l4, uint32_t l4len, uint32_t rx_flags);
/* ip_reass.c */
void ip_reass_input(struct net_ctx *c, const uint8_t *ip, uint32_t hlen, uint32_t plen, uint32_t rx_flags);
uint64_t ip_reass_timers(struct net_ctx *c);
/* The machinery IPv4 and IPv6 reassembly share.  What both together may
 * hold of the pool: a quarter of it, at most 256 KiB. */
uint32_t reasm_budget(const struct usnet_stack *st);
enum frag_verdict {
	FRAG_ADDED,      /* kept: *truesize pool bytes charged to reasm_bytes */
	FRAG_DUP,        /* the same offset and length as one held: ignored */
	FRAG_OVERLAP,    /* overlaps one held (the caller drops the datagram) */
	FRAG_NOMEM,      /* over the budget, or the pool is empty */
};
/* Put the fragment p[0..len) at offset off into the sorted record list
 * *head (seq = offset, aux = length). */
enum frag_verdict frag_insert(struct usnet_stack *st, int32_t *head, uint32_t off, const uint8_t *p,
			      uint32_t len, uint32_t *truesize);
/* Where the last fragment of the list ends (0 for none). */
uint32_t frag_list_end(struct usnet_stack *st, int32_t head);
/* Copy the fragments of the list, which must cover [0, total) without a
 * gap, into buf: 0, or -1 when they do not. */
int frag_copy(struct usnet_stack *st, int32_t head, uint8_t *buf, uint32_t total);

/* ip6_reass.c — IPv6 fragments (RFC 8200 4.5, RFC 5722, RFC 7112).
 * Take the fragment ip[0..total) whose headers ipv6_input walked to its
 * Fragment header (x); a datagram made whole goes through
 * ip6_input_reassembled. */
void ip6_reass_input(struct net_ctx *c, const uint8_t *ip, uint32_t total, const struct ipv6_view *v,
		     const struct ip6_ext_view *x, int l2_mcast);
/* Give up datagrams past their 60 s (Time Exceeded to the source of a
 * first fragment); returns the next deadline. */
uint64_t ip6_reass_timers(struct net_ctx *c);

/* ip6_pmtu.c — path MTU (RFC 8201) and fragmenting output (RFC 8200 4.5) */
/* The path MTU towards dst: what a Packet Too Big taught in the last 10
 * minutes, else the link's (cfg.mtu). */
uint32_t ip6_path_mtu(struct usnet_stack *st, const uint8_t dst[16], uint64_t now);
/* A Packet Too Big about a packet we sent to dst said mtu (clamped to
 * 1280): lower the path MTU of dst.  1 when it was lowered. */
int ip6_pmtu_update(struct usnet_stack *st, const uint8_t dst[16], uint32_t mtu, uint64_t now);
/* Send an upper-layer message (hdr, then iov: len bytes, its checksum
 * already set) from src to dst: one packet when it fits the path MTU and
 * the netif's frames, else fragments of it.  0 or -errno. */
int ipv6_output_l4(struct net_ctx *c, const uint8_t src[16], const uint8_t dst[16], uint8_t next,
		   const uint8_t *hdr, uint32_t hlen, const struct usnet_iovec *iov, int iovcnt, uint32_t len,
		   uint8_t hop_limit);
/* Set the L4 checksum of a frame (software or offload). */
void l4_csum_finish(struct net_ctx *c, struct usnet_pkt *p, uint8_t proto,
		    uint32_t src, uint32_t dst, uint32_t l4len);
/* The same over IPv6 (the L4 header at p->data+14+40). */
void l4_csum_finish6(struct net_ctx *c, struct usnet_pkt *p, uint8_t proto,
		     const uint8_t src[16], const uint8_t dst[16], uint32_t l4len);

/* icmp.c */
void icmp_input(struct net_ctx *c, uint32_t src, uint32_t dst, const uint8_t *ip_hdr,
		const uint8_t *p, uint32_t len, uint32_t rx_flags);
void icmp_send_unreach(struct net_ctx *c, const uint8_t *ip_hdr, uint32_t ip_len, uint8_t code);

/* igmp.c — group memberships (IP_ADD_MEMBERSHIP) and IGMP as a host */
/* The group's slot, or NULL when the instance is not a member (a group it
 * is leaving is not one). */
struct mc_group *mc_group_find(struct usnet_stack *st, uint32_t group);
/* Whether the instance takes datagrams to group: a member, or 224.0.0.1. */
int mc_host_member(struct usnet_stack *st, uint32_t group);
/* Whether socket i joined group. */
int mc_sock_member(struct usnet_stack *st, int32_t i, uint32_t group);
/* A closing socket leaves its groups (the last member's leave is reported
 * by the next igmp_timers). */
void mc_sock_drop(struct usnet_stack *st, int32_t i);
void igmp_input(struct net_ctx *c, uint32_t src, uint32_t dst, const uint8_t *p, uint32_t len);
/* Send the reports and answers due; returns the next deadline. */
uint64_t igmp_timers(struct net_ctx *c);
/* A random delay in [0, max_ns), for IGMP's and MLD's reports. */
uint64_t mc_random_delay(struct usnet_stack *st, uint64_t max_ns);

/* mld6.c — IPv6 multicast listener reports (MLDv2, RFC 3810; MLDv1, RFC
 * 2710) for the solicited-node groups of the instance's addresses and the
 * groups its sockets joined (usnet_mc6_join) */
/* Set the groups up at usnet_stack_create (after ip6_addrs_init): the
 * addresses in use at once (no DAD) join theirs, reported at the first
 * poll. */
void mld6_init(struct usnet_stack *st);
/* The address addr (of ours, not shared) joins its solicited-node group,
 * reported at once (by queue 0's instance) unless another address has
 * it: called before its first DAD probe (RFC 4862 5.4.2). */
void mld6_join(struct net_ctx *c, const uint8_t addr[16]);
/* addr stopped being ours (DAD found it duplicate; its state says so
 * already): its group is left, reported from the next poll, unless
 * another address still has it. */
void mld6_leave(struct usnet_stack *st, const uint8_t addr[16]);
/* An MLD message p[0..len) (checksum checked) in the packet ip. */
void mld6_input(struct net_ctx *c, const uint8_t *ip, const struct ipv6_view *v, const uint8_t *p,
		uint32_t len);
/* Send the reports and answers due; returns the next deadline. */
uint64_t mld6_timers(struct net_ctx *c);
/* Whether a socket of the instance joined group (1 or 0). */
int mc6_host_member(const struct usnet_stack *st, const uint8_t group[16]);
/* Whether socket i joined group. */
int mc6_sock_member(struct usnet_stack *st, int32_t i, const uint8_t group[16]);
/* Socket i closes: it leaves its IPv6 groups (the last member's leave
 * reported by the next mld6_timers). */
void mc6_sock_drop(struct usnet_stack *st, int32_t i);

/* udp.c */
#define UDP_DGRAM_OVERHEAD 256u   /* receive-buffer charge per datagram */
/* Kept in a datagram's first chunk before its data (udp.c). */
struct udp_rec_meta {
	uint32_t dst;      /* the destination address it was sent to (IPv4) */
	uint8_t  v6;       /* 1: an IPv6 datagram, from src6 to dst6 (the record's seq: 0) */
	uint8_t  pad[3];
	uint64_t at_ns;    /* the stack's clock when it arrived */
	uint8_t  src6[16], dst6[16];
};
void udp_input(struct net_ctx *c, uint32_t src, uint32_t dst, const uint8_t *ip_hdr,
	       const uint8_t *p, uint32_t len, uint32_t rx_flags, uint32_t ip_len);
/* A UDP datagram over IPv6 (ip: its IPv6 header, total bytes; mcast: to
 * a group or a link-layer multicast). */
void udp_input6(struct net_ctx *c, const uint8_t *ip, uint32_t total, const uint8_t *src, const uint8_t *dst,
		const uint8_t *p, uint32_t len, uint32_t rx_flags, int mcast);
long udp_sendv(struct net_ctx *c, struct sock *s, const struct usnet_iovec *iov, int iovcnt,
	       const struct usnet_addr *to);
long udp_recvv(struct net_ctx *c, struct sock *s, const struct usnet_iovec *iov, int iovcnt,
	       unsigned flags, struct usnet_addr *from);
void udp_close(struct usnet_stack *st, struct sock *s);
/* The next datagram's struct udp_rec_meta: 0, or -USNET_EAGAIN when none waits. */
int udp_next_meta(struct usnet_stack *st, const struct sock *s, uint32_t *dst, uint64_t *at_ns);
/* The same as a usnet_addr of its family, with the socket's port. */
int udp_next_dst(struct usnet_stack *st, const struct sock *s, struct usnet_addr *dst, uint64_t *at_ns);

/* tcp_*.c */
#include "tcp.h"

/* own.c — which structure holds each chunk, for check.c and repair.c.
 * The scratch bitmap (st_marks) has a bit per chunk ("held"), then a bit
 * per socket ("seen", for walks of socket lists), then a bit per socket
 * ("damaged", repair's verdicts). */
enum rec_kind {
	REC_FRAME,     /* a queued frame (ARP, loop): aux = its length */
	REC_DGRAM,     /* a UDP datagram: aux & 0xffff = its length */
	REC_SEGMENT,   /* an out-of-order TCP segment: seq, aux = length; sorted, apart */
	REC_FRAGMENT,  /* an IPv4 fragment: seq = offset, aux = length; sorted, apart */
};
struct own_list {
	uint32_t records, chunks;
	uint32_t bytes;      /* sum of the chunks' lengths */
	uint32_t charge;     /* what the owner counts: bytes, or per datagram its length + overhead */
	int32_t last;        /* last chunk (a byte queue) or last record (a list), or NIL */
};
void own_clear(struct usnet_stack *st);
void own_clear_range(struct usnet_stack *st, uint32_t from, uint32_t n);
/* Give up the claim on a chain own_byteq() claimed. */
void own_release_chain(struct usnet_stack *st, int32_t head);
int own_test(struct usnet_stack *st, uint32_t bit);
void own_set(struct usnet_stack *st, uint32_t bit);
static inline uint32_t own_seen_bit(const struct usnet_stack *st, int32_t s) { return st->nchunks + (uint32_t)s; }
static inline uint32_t own_damaged_bit(const struct usnet_stack *st, int32_t s)
{ return st->nchunks + st->nsocks + (uint32_t)s; }
/* Claim the chunks of a byte queue's chain (from q->head by next) or of a
 * list of records (by link, each a chain): every index in range, no chunk
 * held already, no cycle, each chunk's bytes within it, each record's
 * length what its kind says.  0 with the chunks held and *out filled, or
 * -1 with nothing held (the caller decides what a broken queue costs). */
int own_byteq(struct usnet_stack *st, const struct byteq *q, struct own_list *out);
int own_records(struct usnet_stack *st, int32_t head, enum rec_kind kind, struct own_list *out);
/* check.c: a TCP socket whose retransmission timer must be set (something
 * in flight, or a SYN or FIN to be acknowledged). */
int needs_rto(const struct sock *s);
/* Bytes of the scratch bitmap for nchunks chunks and nsocks sockets. */
size_t own_marks_size(uint32_t nchunks, uint32_t nsocks);

#endif
