/* MLD view (RFC 2710 MLDv1, RFC 3810 MLDv2): what a host reads -- queries,
 * and the MLDv1 reports of other listeners (report suppression while an
 * MLDv1 querier is heard) -- and the layout of what it sends.  The ICMPv6
 * checksum is checked before (icmp6_parse); the rules about the packet
 * around the message (a link-local source, hop limit 1, Router Alert:
 * RFC 3810 6.2) are the caller's (mld6.c). */
#ifndef USNET_WIRE_MLD6_H
#define USNET_WIRE_MLD6_H
#include "wire.h"

#define MLD_QUERY       130
#define MLD_V1_REPORT   131
#define MLD_V1_DONE     132
#define MLD_V2_REPORT   143

/* Queries, MLDv1 reports and Dones: type, code, checksum, Maximum
 * Response Code (2), reserved (2), the multicast address; an MLDv2 query
 * goes on with S/QRV, QQIC and the number of sources, then the sources. */
#define MLD_MAX_RESP     4
#define MLD_GROUP        8
#define MLD_V1_LEN      24
#define MLD_V2Q_NSRC    26
#define MLD_V2Q_LEN     28
/* An MLDv2 report: type, reserved, checksum, reserved (2), the number of
 * records (2), then the records; one with no sources and no auxiliary
 * data is its type, aux data length, number of sources (2) and the
 * multicast address. */
#define MLD_V2R_NREC     6
#define MLD_V2R_HLEN     8
#define MLD_V2R_RECORD  20

/* MLDv2 record types (RFC 3810 5.2.12). */
#define MLD_MODE_IS_EXCLUDE  2
#define MLD_TO_INCLUDE       3
#define MLD_TO_EXCLUDE       4

#define MLD_HOP_LIMIT   1
#define IP6_RA_MLD      0   /* the Router Alert value of MLD (RFC 2711) */

/* What mld_parse() found. */
struct mld_view {
	uint8_t  type;
	uint8_t  version;        /* queries: 1 (24 bytes) or 2 */
	const uint8_t *group;    /* the multicast address field: :: in a general query */
	uint32_t max_resp_ms;    /* queries: the longest delay of an answer */
};

enum mld_verdict {
	MLDV_OK = 0,
	MLDV_LEN,         /* shorter than its type's fixed part; a query of 25 to 27 bytes, or with
			     sources past the message (RFC 3810 8.1) */
	MLDV_GROUP,       /* a query's address neither :: nor multicast; a v1 report's or Done's not multicast */
	MLDV_NOT_MLD,     /* not an MLD type */
};

/* Validate the MLD message p[0..len) (ICMPv6 header included).  A query
 * of 24 bytes is MLDv1 (its Maximum Response Delay in ms), of 28 and more
 * MLDv2 (the Maximum Response Code: ms below 32768, else a floating-point
 * value, RFC 3810 5.1.3).  MLDv2 reports are taken as they are (for
 * routers: nothing in them is read). */
static inline enum mld_verdict mld_parse(const uint8_t *p, uint32_t len, struct mld_view *v)
{
	if (len < 1)
		return MLDV_LEN;
	v->type = p[0];
	v->version = 0;
	v->group = 0;
	v->max_resp_ms = 0;
	switch (v->type) {
	case MLD_V2_REPORT:
		return len < MLD_V2R_HLEN ? MLDV_LEN : MLDV_OK;
	case MLD_V1_REPORT:
	case MLD_V1_DONE:
	case MLD_QUERY:
		break;
	default:
		return MLDV_NOT_MLD;
	}
	if (len < MLD_V1_LEN)
		return MLDV_LEN;
	v->group = p + MLD_GROUP;
	int unspecified = 1;
	for (int i = 0; i < 16; i++)
		unspecified &= v->group[i] == 0;
	int multicast = v->group[0] == 0xff;
	if (v->type != MLD_QUERY)
		return multicast ? MLDV_OK : MLDV_GROUP;
	uint32_t code = rd16(p + MLD_MAX_RESP);
	if (len == MLD_V1_LEN) {
		v->version = 1;
		v->max_resp_ms = code;
	} else {
		if (len < MLD_V2Q_LEN || len < MLD_V2Q_LEN + 16u * rd16(p + MLD_V2Q_NSRC))
			return MLDV_LEN;
		v->version = 2;
		v->max_resp_ms = code < 0x8000 ? code : ((code & 0x0fff) | 0x1000) << (((code >> 12) & 7) + 3);
	}
	return unspecified || multicast ? MLDV_OK : MLDV_GROUP;
}
#endif
