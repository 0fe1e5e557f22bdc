/* IGMP view (RFC 1112 v1, RFC 2236 v2, RFC 3376 v3): what a host reads --
 * queries, and the v1/v2 reports of other members (report suppression). */
#ifndef USNET_WIRE_IGMP_H
#define USNET_WIRE_IGMP_H
#include "wire.h"

#define IGMP_HLEN      8     /* type, max resp code, checksum, group */
#define IGMP_V3Q_HLEN  12    /* + resv/S/QRV, QQIC, number of sources */
#define IGMP_TYPE      0
#define IGMP_CODE      1     /* max resp time (v2: 1/10 s; v3: code) */
#define IGMP_CSUM      2
#define IGMP_GROUP     4
#define IGMP_V3Q_NSRC  10

#define IGMP_QUERY        0x11
#define IGMP_V1_REPORT    0x12
#define IGMP_V2_REPORT    0x16
#define IGMP_V2_LEAVE     0x17
#define IGMP_V3_REPORT    0x22

/* IGMPv3 group record types (RFC 3376 4.2.12). */
#define IGMP_MODE_IS_EXCLUDE  2
#define IGMP_TO_INCLUDE       3
#define IGMP_TO_EXCLUDE       4

#define IGMP_ALL_HOSTS    0xe0000001u   /* 224.0.0.1 */
#define IGMP_ALL_ROUTERS  0xe0000002u   /* 224.0.0.2: v2 leaves */
#define IGMP_V3_ROUTERS   0xe0000016u   /* 224.0.0.22: v3 reports */

static inline int ip4_is_multicast(uint32_t ip) { return (ip >> 28) == 0xe; }

/* What igmp_parse() found. */
struct igmp_view {
	uint8_t  type;
	uint8_t  version;      /* queries: 1, 2 or 3 (from length and code) */
	uint32_t group;        /* host order; 0 in a general query */
	uint32_t max_resp_ds;  /* queries: the longest delay of an answer, 1/10 s */
};

enum igmp_verdict { IGMP_OK = 0, IGMP_BAD_LEN, IGMP_BAD_CSUM };

/* Validate a message of len bytes: at least 8 bytes; a query of 8 bytes
 * is v1 (code 0) or v2, of 12 bytes and more v3 with its source list
 * inside len, anything between is malformed (RFC 3376 7.1).  The checksum
 * covers the whole message; sum is the folded, uncomplemented one's
 * complement sum of those len bytes (the caller's csum), 0xffff when right. */
static inline enum igmp_verdict igmp_parse(const uint8_t *p, uint32_t len, uint16_t sum, struct igmp_view *v)
{
	if (len < IGMP_HLEN)
		return IGMP_BAD_LEN;
	if (sum != 0xffff)
		return IGMP_BAD_CSUM;
	v->type = p[IGMP_TYPE];
	v->group = rd32(p + IGMP_GROUP);
	v->version = 0;
	v->max_resp_ds = 0;
	if (v->type != IGMP_QUERY)
		return IGMP_OK;
	uint8_t code = p[IGMP_CODE];
	if (len == IGMP_HLEN) {
		v->version = code == 0 ? 1 : 2;
		v->max_resp_ds = code == 0 ? 100 : code;   /* v1: 10 s (RFC 2236 4) */
		return IGMP_OK;
	}
	if (len < IGMP_V3Q_HLEN || len < IGMP_V3Q_HLEN + 4u * rd16(p + IGMP_V3Q_NSRC))
		return IGMP_BAD_LEN;
	v->version = 3;
	/* RFC 3376 4.1.1: from 128 on, a floating-point value */
	v->max_resp_ds = code < 128 ? code : (uint32_t)((code & 0x0f) | 0x10) << (((code >> 4) & 0x07) + 3);
	return IGMP_OK;
}

/* The Ethernet address of an IPv4 multicast group (RFC 1112 6.4): 01:00:5e
 * and the group's low 23 bits. */
static inline void ip4_multicast_mac(uint32_t group, uint8_t mac[6])
{
	mac[0] = 0x01; mac[1] = 0x00; mac[2] = 0x5e;
	mac[3] = (uint8_t)(group >> 16) & 0x7f;
	mac[4] = (uint8_t)(group >> 8);
	mac[5] = (uint8_t)group;
}
#endif
