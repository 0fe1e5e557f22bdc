/* IPv4 header view (RFC 791). */
#ifndef USNET_WIRE_IPV4_H
#define USNET_WIRE_IPV4_H
#include "wire.h"

#define IP4_VHL    0
#define IP4_TOS    1
#define IP4_LEN    2
#define IP4_ID     4
#define IP4_FRAG   6   /* flags (3 bits) + offset in 8-byte units */
#define IP4_TTL    8
#define IP4_PROTO  9
#define IP4_CSUM  10
#define IP4_SRC   12
#define IP4_DST   16
#define IP4_DF    0x4000
#define IP4_MF    0x2000
#define IP4_OFFMASK 0x1fff
#define IP4_DEFAULT_TTL 64
/* The ECN field, the DS field's low two bits (RFC 3168 section 5). */
#define IP_ECN_MASK 0x3
#define IP_ECN_ECT1 0x1
#define IP_ECN_ECT0 0x2
#define IP_ECN_CE   0x3

/* What ipv4_parse() found. */
struct ipv4_view {
	uint32_t hlen;   /* header bytes, options included */
	uint32_t tot;    /* total length from the header (<= frame) */
	uint32_t src, dst;
	uint16_t frag;
	uint8_t  proto;
};

enum ipv4_verdict { IP4_OK = 0, IP4_BAD_HEADER, IP4_BAD_LEN, IP4_BAD_CSUM };

/* Validate version, IHL, total length against the len bytes present, and the
 * header checksum; options are skipped (their bytes are covered by hlen). */
enum ipv4_verdict ipv4_parse(const uint8_t *p, uint32_t len, struct ipv4_view *v);
/* Write a 20-byte header with a correct checksum. */
void ipv4_write(uint8_t *p, uint32_t src, uint32_t dst, uint8_t proto,
		uint16_t total, uint16_t id, uint16_t frag, uint8_t ttl, uint8_t tos);
#endif
