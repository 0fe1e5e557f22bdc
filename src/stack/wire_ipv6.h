/*
 * IPv6 views (RFC 8200, 4443, 4861): the fixed header, the chain of
 * extension headers, ICMPv6, and Neighbor Discovery messages with their
 * options.  Each is a parse-and-verdict function over bytes it is given a
 * length for; none reads past it (fuzz/fuzz_wire_ipv6.c feeds each one
 * alone).  What a verdict costs (a counter, an ICMPv6 error, nothing) is
 * the caller's business (ipv6.c, icmp6.c, nd6.c).
 */
#ifndef USNET_WIRE_IPV6_H
#define USNET_WIRE_IPV6_H
#include "wire.h"

#define IP6_HLEN   40
#define IP6_VTF     0   /* version (4 bits), traffic class (8), flow label (20) */
#define IP6_PLEN    4   /* payload length: what follows the fixed header */
#define IP6_NXT     6   /* next header */
#define IP6_HLIM    7   /* hop limit */
#define IP6_SRC     8
#define IP6_DST    24
#define IP6_MIN_MTU 1280u   /* RFC 8200 5: every link carries this much */
#define IP6_DEFAULT_HLIM 64

/* Next-header values. */
#define IP6_NH_HOPOPTS   0
#define IP6_NH_TCP       6
#define IP6_NH_UDP      17
#define IP6_NH_ROUTING  43
#define IP6_NH_FRAGMENT 44
#define IP6_NH_ESP      50
#define IP6_NH_AH       51
#define IP6_NH_ICMP6    58
#define IP6_NH_NONE     59
#define IP6_NH_DSTOPTS  60
#define IP6_OPT_ROUTER_ALERT 5   /* a Hop-by-Hop option (RFC 2711): type 5, length 2, a value */

/* ---- addresses --------------------------------------------------------- */

/* Addresses are compared eight bytes at a time: these run on every packet.
 * ip6_word is in host order, for equality and zero tests only. */
static inline uint64_t ip6_word(const uint8_t *p)
{
	uint64_t v;
	__builtin_memcpy(&v, p, sizeof v);
	return v;
}
static inline int ip6_eq(const uint8_t a[16], const uint8_t b[16])
{
	return ((ip6_word(a) ^ ip6_word(b)) | (ip6_word(a + 8) ^ ip6_word(b + 8))) == 0;
}
static inline int ip6_is_unspecified(const uint8_t a[16])
{
	return (ip6_word(a) | ip6_word(a + 8)) == 0;
}
static inline int ip6_is_multicast(const uint8_t a[16]) { return a[0] == 0xff; }
static inline int ip6_is_link_local(const uint8_t a[16]) { return a[0] == 0xfe && (a[1] & 0xc0) == 0x80; }
static inline int ip6_is_loopback(const uint8_t a[16])
{
	return ip6_word(a) == 0 && rd32(a + 8) == 0 && rd32(a + 12) == 1;
}
/* ff02::1, all nodes on the link. */
static inline int ip6_is_all_nodes(const uint8_t a[16])
{
	static const uint8_t all[16] = { 0xff, 0x02, [15] = 1 };
	return ip6_eq(a, all);
}
/* The solicited-node group of a (RFC 4291 2.7.1): ff02::1:ffXX:XXXX with
 * a's low 24 bits. */
static inline void ip6_solicited_node(const uint8_t a[16], uint8_t out[16])
{
	for (int i = 0; i < 16; i++)
		out[i] = 0;
	out[0] = 0xff; out[1] = 0x02; out[11] = 0x01; out[12] = 0xff;
	out[13] = a[13]; out[14] = a[14]; out[15] = a[15];
}
static inline int ip6_is_solicited_node(const uint8_t a[16])
{
	static const uint8_t pre[13] = { 0xff, 0x02, [11] = 0x01, [12] = 0xff };
	for (int i = 0; i < 13; i++)
		if (a[i] != pre[i])
			return 0;
	return 1;
}
/* The Ethernet address of a multicast group (RFC 2464 7): 33:33 and the
 * group's low 32 bits. */
static inline void ip6_mcast_mac(const uint8_t a[16], uint8_t mac[6])
{
	mac[0] = 0x33; mac[1] = 0x33;
	mac[2] = a[12]; mac[3] = a[13]; mac[4] = a[14]; mac[5] = a[15];
}
/* Do the first n bits of a and b agree? (n <= 128) */
static inline int ip6_prefix_eq(const uint8_t a[16], const uint8_t b[16], unsigned n)
{
	unsigned i = 0;
	for (; n >= 32; n -= 32, i += 4)
		if (rd32(a + i) != rd32(b + i))
			return 0;
	if (n == 0)
		return 1;
	uint32_t m = ~0u << (32 - n);
	return ((rd32(a + i) ^ rd32(b + i)) & m) == 0;
}

/* ---- the fixed header ---------------------------------------------------- */

struct ipv6_view {
	uint32_t plen;          /* payload length (<= the bytes present after the header) */
	uint8_t  next, hop_limit;
	const uint8_t *src, *dst;
};

enum ipv6_verdict {
	IP6V_OK = 0,
	IP6V_SHORT,        /* fewer than 40 bytes */
	IP6V_VERSION,      /* version is not 6 */
	IP6V_LEN,          /* payload length runs past the frame, or is 0 (a jumbogram: RFC 2675, not taken) */
};
/* Validate the fixed header in p[0..len): version, payload length against
 * the bytes present (an Ethernet frame may carry padding after it). */
enum ipv6_verdict ipv6_parse(const uint8_t *p, uint32_t len, struct ipv6_view *v);
/* Write a fixed header (traffic class and flow label 0). */
void ipv6_write(uint8_t *p, const uint8_t src[16], const uint8_t dst[16], uint8_t next,
		uint16_t plen, uint8_t hop_limit);

/* ---- the extension-header chain (RFC 8200 4) -------------------------- */

struct ip6_ext_view {
	uint8_t  proto;       /* the upper-layer next header where the walk stopped */
	uint32_t off;         /* its offset from the start of the IPv6 header */
	uint32_t pointer;     /* for a verdict that answers with Parameter Problem: the offending octet */
	uint8_t  frag;        /* a Fragment header was seen (RFC 6946: atomic ones pass) */
	uint8_t  frag_more;   /* its M flag */
	uint16_t frag_off;    /* its offset, in bytes */
	uint32_t frag_id;
	uint32_t frag_hdr_off;   /* where the Fragment header is */
};

enum ip6_ext_verdict {
	IP6X_OK = 0,          /* reached proto at off */
	IP6X_NONE,            /* No Next Header (59): nothing to deliver */
	IP6X_TRUNCATED,       /* a header runs past the payload, or options past their header */
	IP6X_HBH_NOT_FIRST,   /* Hop-by-Hop options after another header: Parameter Problem code 1 */
	IP6X_UNKNOWN_NEXT,    /* a next header this stack does not know: Parameter Problem code 1 */
	IP6X_OPT_DISCARD,     /* an unknown option with action 01: drop silently */
	IP6X_OPT_PARAM,       /* action 10: drop, Parameter Problem code 2 (even to a multicast destination) */
	IP6X_OPT_PARAM_UNICAST,  /* action 11: drop, Parameter Problem code 2 unless the destination was multicast */
	IP6X_ROUTING,         /* a Routing header with segments left (type 0: RFC 5095): Parameter Problem code 0 */
	IP6X_FRAGMENT,        /* a fragment of a larger datagram (frag_* say which) */
};
/* Walk the headers after the fixed header of the packet p (IPv6 header
 * included, total bytes), starting with next header `next`, until an
 * upper-layer protocol (ICMPv6, TCP, UDP) or a verdict.  Hop-by-Hop and
 * Destination options are processed as RFC 8200 4.2 says (Pad1, PadN,
 * Router Alert known; others by the two high bits of their type); a
 * Routing header with no segments left is skipped; an atomic fragment
 * (offset 0, M clear) is walked through as RFC 6946 asks.  Sets x->pointer
 * (an offset from the IPv6 header) for the verdicts that answer with a
 * Parameter Problem. */
enum ip6_ext_verdict ip6_ext_walk(const uint8_t *p, uint32_t total, uint8_t next, struct ip6_ext_view *x);
/* Skip the extension headers of the packet p[0..total) without acting on
 * them, to find its upper-layer header (RFC 4443 2.4(e) asks whether a
 * packet is an ICMPv6 error).  1 with *proto and *off set; 0 when the
 * chain is cut short, ends in No Next Header or a header it does not
 * know, or the packet is a fragment other than the first. */
int ip6_find_upper(const uint8_t *p, uint32_t total, uint8_t *proto, uint32_t *off);

/* The value of the Router Alert option (RFC 2711) in the Hop-by-Hop
 * Options header of the packet p[0..total), or -1 when it has none (no
 * Hop-by-Hop header, or none of that option in it, or one cut short).
 * MLD messages must carry it (RFC 3810 6.2). */
int ip6_router_alert(const uint8_t *p, uint32_t total);

/* ---- ICMPv6 (RFC 4443) ------------------------------------------------- */

#define ICMP6_HLEN        8   /* type, code, checksum, 4 bytes of body */
#define ICMP6_TYPE        0
#define ICMP6_CODE        1
#define ICMP6_CSUM        2
#define ICMP6_DST_UNREACH 1
#define ICMP6_PKT_TOO_BIG 2
#define ICMP6_TIME_EXCEEDED 3
#define ICMP6_PARAM_PROB  4
#define ICMP6_ECHO_REQUEST 128
#define ICMP6_ECHO_REPLY   129
#define ICMP6_UNREACH_PORT 4
#define ICMP6_PARAM_HEADER 0    /* erroneous header field */
#define ICMP6_PARAM_NEXT   1    /* unrecognized next header */
#define ICMP6_PARAM_OPTION 2    /* unrecognized IPv6 option */
#define ICMP6_PARAM_INCOMPLETE_CHAIN 3   /* IPv6 first fragment has incomplete header chain (RFC 7112) */
#define ICMP6_TIME_REASSEMBLY 1 /* Time Exceeded: fragment reassembly time exceeded */
/* Error messages have types 0-127 (RFC 4443 2.1). */
static inline int icmp6_is_error(uint8_t type) { return type < 128; }

enum icmp6_verdict { ICMP6V_OK = 0, ICMP6V_SHORT, ICMP6V_CSUM };
/* Check an ICMPv6 message p[0..len) from src to dst: at least its 4-byte
 * header (echo and ND check their own lengths), and its checksum over the
 * IPv6 pseudo-header (RFC 4443 2.3). */
enum icmp6_verdict icmp6_parse(const uint8_t *p, uint32_t len, const uint8_t src[16], const uint8_t dst[16]);
/* The checksum to put in an ICMPv6 message whose checksum field is zero. */
uint16_t icmp6_checksum(const uint8_t *p, uint32_t len, const uint8_t src[16], const uint8_t dst[16]);

/* ---- Neighbor Discovery (RFC 4861) ----------------------------------- */

#define ND_RS       133
#define ND_RA       134
#define ND_NS       135
#define ND_NA       136
#define ND_REDIRECT 137
#define ND_HOP_LIMIT 255
/* Offsets in an NS/NA: the 4 reserved/flag bytes, then the target. */
#define ND_FLAGS     4
#define ND_TARGET    8
#define ND_RS_LEN    8
#define ND_RA_LEN   16
#define ND_NS_LEN   24
#define ND_NA_LEN   24
#define ND_NA_ROUTER    0x80
#define ND_NA_SOLICITED 0x40
#define ND_NA_OVERRIDE  0x20
/* Options (RFC 4861 4.6), lengths in units of 8 bytes. */
#define ND_OPT_SLLA   1
#define ND_OPT_TLLA   2
#define ND_OPT_PREFIX 3
#define ND_OPT_REDIRECTED 4
#define ND_OPT_MTU    5

struct nd_prefix {
	uint8_t  len;           /* prefix length */
	uint8_t  flags;         /* L (ND_PREFIX_ONLINK), A (0x40) */
	uint32_t valid_s, preferred_s;
	const uint8_t *prefix;
};
#define ND_PREFIX_MAX 4
#define ND_PREFIX_ONLINK 0x80
#define ND_LIFETIME_INFINITE 0xffffffffu   /* a prefix's valid lifetime for good (4.6.2) */

struct nd_view {
	uint8_t  type;
	uint8_t  flags;         /* NA: R, S, O; RA: M, O */
	const uint8_t *target;  /* NS, NA, Redirect */
	const uint8_t *lladdr;  /* the source (NS, RS, RA, Redirect) or target (NA) link-layer address option, or NULL */
	/* RA */
	uint8_t  cur_hop_limit;
	uint16_t router_lifetime_s;
	uint32_t reachable_ms, retrans_ms;
	uint32_t mtu;           /* the MTU option (RA), 0 if none */
	uint8_t  nprefix;       /* prefix options kept (at most ND_PREFIX_MAX; more are ignored) */
	struct nd_prefix prefix[ND_PREFIX_MAX];
};

enum nd_verdict {
	NDV_OK = 0,
	NDV_HOP_LIMIT,    /* not 255: it came through a router (7.1.1, 7.1.2, 6.1.1, 6.1.2, 8.1) */
	NDV_CODE,         /* code not 0 */
	NDV_LEN,          /* shorter than the message's fixed part */
	NDV_OPTION,       /* an option of length 0, running past the message, or of the wrong length for its type */
	NDV_TARGET,       /* a multicast target (NS, NA) */
	NDV_SOURCE,       /* source rules: NS or RS from :: with a link-layer option, NS from :: not to a
			     solicited-node group, RA or Redirect not from a link-local address */
	NDV_SOLICITED_MCAST,  /* an NA to a multicast destination with the Solicited flag */
	NDV_NOT_ND,       /* not an ND message type */
};
/* Validate the ND message p[0..len) (ICMPv6 header included; its checksum
 * already checked by icmp6_parse) that arrived from src to dst with
 * hop_limit, and gather its options. */
enum nd_verdict nd_parse(const uint8_t *p, uint32_t len, uint8_t hop_limit, const uint8_t src[16],
			 const uint8_t dst[16], struct nd_view *v);
#endif
