/* IPv6, extension-header, ICMPv6 and Neighbor Discovery views with bounds
 * checks (see wire_ipv6.h). */
#include "internal.h"
#include "wire_ipv6.h"

enum ipv6_verdict ipv6_parse(const uint8_t *p, uint32_t len, struct ipv6_view *v)
{
	if (len < IP6_HLEN)
		return IP6V_SHORT;
	if ((p[IP6_VTF] >> 4) != 6)
		return IP6V_VERSION;
	uint32_t plen = rd16(p + IP6_PLEN);
	if (plen > len - IP6_HLEN)
		return IP6V_LEN;
	v->plen = plen;
	v->next = p[IP6_NXT];
	v->hop_limit = p[IP6_HLIM];
	v->src = p + IP6_SRC;
	v->dst = p + IP6_DST;
	return IP6V_OK;
}

void ipv6_write(uint8_t *p, const uint8_t src[16], const uint8_t dst[16], uint8_t next,
		uint16_t plen, uint8_t hop_limit)
{
	wr32(p + IP6_VTF, 6u << 28);
	wr16(p + IP6_PLEN, plen);
	p[IP6_NXT] = next;
	p[IP6_HLIM] = hop_limit;
	memcpy(p + IP6_SRC, src, 16);
	memcpy(p + IP6_DST, dst, 16);
}

/* The options of a Hop-by-Hop or Destination Options header, p[i..end)
 * (RFC 8200 4.2).  Pad1 and PadN are the only ones this host acts on;
 * any other is skipped or not by the two high bits of its type (Router
 * Alert's are 00: a host skips it). */
static enum ip6_ext_verdict ip6_options(const uint8_t *p, uint32_t i, uint32_t end, struct ip6_ext_view *x)
{
	while (i < end) {
		uint8_t type = p[i];
		if (type == 0) {   /* Pad1 */
			i++;
			continue;
		}
		if (i + 2 > end)
			return IP6X_TRUNCATED;
		uint32_t olen = 2u + p[i + 1];
		if (i + olen > end)
			return IP6X_TRUNCATED;
		if (type != 1) {   /* not PadN */
			switch (type >> 6) {
			case 0:
				break;
			case 1:
				return IP6X_OPT_DISCARD;
			case 2:
				x->pointer = i;
				return IP6X_OPT_PARAM;
			default:
				x->pointer = i;
				return IP6X_OPT_PARAM_UNICAST;
			}
		}
		i += olen;
	}
	return IP6X_OK;
}

enum ip6_ext_verdict ip6_ext_walk(const uint8_t *p, uint32_t total, uint8_t next, struct ip6_ext_view *x)
{
	memset(x, 0, sizeof(*x));
	uint32_t off = IP6_HLEN;
	uint32_t nh_field = IP6_NXT;   /* where the current next-header value was read */
	int first = 1;
	/* Each header is at least 8 bytes and off only grows: the walk ends
	 * within total / 8 steps. */
	for (;;) {
		uint32_t hlen;
		switch (next) {
		case IP6_NH_HOPOPTS:
			if (!first) {
				x->pointer = nh_field;
				return IP6X_HBH_NOT_FIRST;
			}
			/* fall through */
		case IP6_NH_DSTOPTS: {
			if (off + 2 > total)
				return IP6X_TRUNCATED;
			hlen = ((uint32_t)p[off + 1] + 1) * 8;
			if (off + hlen > total)
				return IP6X_TRUNCATED;
			enum ip6_ext_verdict ov = ip6_options(p, off + 2, off + hlen, x);
			if (ov != IP6X_OK)
				return ov;
			break;
		}
		case IP6_NH_ROUTING:
			if (off + 8 > total)
				return IP6X_TRUNCATED;
			hlen = ((uint32_t)p[off + 1] + 1) * 8;
			if (off + hlen > total)
				return IP6X_TRUNCATED;
			/* A host forwards nothing, so a header with segments
			 * left is one it cannot act on, whatever its type (RFC
			 * 8200 4.4; type 0 is deprecated by RFC 5095 and gets
			 * the same answer).  With none left it is skipped. */
			if (p[off + 3] != 0) {
				x->pointer = off + 2;
				return IP6X_ROUTING;
			}
			break;
		case IP6_NH_FRAGMENT: {
			if (off + 8 > total)
				return IP6X_TRUNCATED;
			uint16_t fo = rd16(p + off + 2);
			x->frag = 1;
			x->frag_off = fo & 0xfff8;
			x->frag_more = fo & 1;
			x->frag_id = rd32(p + off + 4);
			x->frag_hdr_off = off;
			if (x->frag_off || x->frag_more) {
				x->proto = p[off];
				x->off = off + 8;
				return IP6X_FRAGMENT;
			}
			hlen = 8;   /* atomic (RFC 6946): the rest is a whole packet */
			break;
		}
		case IP6_NH_NONE:
			x->off = off;
			return IP6X_NONE;
		case IP6_NH_ICMP6:
		case IP6_NH_TCP:
		case IP6_NH_UDP:
			x->proto = next;
			x->off = off;
			return IP6X_OK;
		default:
			x->pointer = nh_field;
			return IP6X_UNKNOWN_NEXT;
		}
		nh_field = off;
		next = p[off];
		off += hlen;
		first = 0;
	}
}

int ip6_router_alert(const uint8_t *p, uint32_t total)
{
	if (total < IP6_HLEN + 8 || p[IP6_NXT] != IP6_NH_HOPOPTS)
		return -1;
	uint32_t end = IP6_HLEN + ((uint32_t)p[IP6_HLEN + 1] + 1) * 8;
	if (end > total)
		return -1;
	for (uint32_t i = IP6_HLEN + 2; i < end;) {
		if (p[i] == 0) {   /* Pad1 */
			i++;
			continue;
		}
		if (i + 2 > end || i + 2u + p[i + 1] > end)
			return -1;
		if (p[i] == IP6_OPT_ROUTER_ALERT && p[i + 1] == 2)
			return rd16(p + i + 2);
		i += 2u + p[i + 1];
	}
	return -1;
}

uint16_t icmp6_checksum(const uint8_t *p, uint32_t len, const uint8_t src[16], const uint8_t dst[16])
{
	return (uint16_t)~csum_fold(csum_add(csum_pseudo6(src, dst, IP6_NH_ICMP6, len), p, len));
}

enum icmp6_verdict icmp6_parse(const uint8_t *p, uint32_t len, const uint8_t src[16], const uint8_t dst[16])
{
	if (len < 4)
		return ICMP6V_SHORT;
	if (csum_fold(csum_add(csum_pseudo6(src, dst, IP6_NH_ICMP6, len), p, len)) != 0xffff)
		return ICMP6V_CSUM;
	return ICMP6V_OK;
}

enum nd_verdict nd_parse(const uint8_t *p, uint32_t len, uint8_t hop_limit, const uint8_t src[16],
			 const uint8_t dst[16], struct nd_view *v)
{
	memset(v, 0, sizeof(*v));
	if (len < 1)
		return NDV_LEN;
	uint32_t fixed;
	switch (p[ICMP6_TYPE]) {
	case ND_RS: fixed = ND_RS_LEN; break;
	case ND_RA: fixed = ND_RA_LEN; break;
	case ND_NS: fixed = ND_NS_LEN; break;
	case ND_NA: fixed = ND_NA_LEN; break;
	case ND_REDIRECT: fixed = 40; break;
	default: return NDV_NOT_ND;
	}
	v->type = p[ICMP6_TYPE];
	if (hop_limit != ND_HOP_LIMIT)
		return NDV_HOP_LIMIT;
	if (len < 2 || p[ICMP6_CODE] != 0)
		return len < 2 ? NDV_LEN : NDV_CODE;
	if (len < fixed)
		return NDV_LEN;
	switch (v->type) {
	case ND_NS:
	case ND_NA:
		v->target = p + ND_TARGET;
		if (ip6_is_multicast(v->target))
			return NDV_TARGET;
		v->flags = p[ND_FLAGS] & (ND_NA_ROUTER | ND_NA_SOLICITED | ND_NA_OVERRIDE);
		if (v->type == ND_NS)
			v->flags = 0;
		break;
	case ND_RA:
		v->cur_hop_limit = p[4];
		v->flags = p[5] & 0xc0;
		v->router_lifetime_s = rd16(p + 6);
		v->reachable_ms = rd32(p + 8);
		v->retrans_ms = rd32(p + 12);
		break;
	case ND_REDIRECT:
		v->target = p + ND_TARGET;
		break;
	default:
		break;
	}
	/* Options: each at least 8 bytes, within the message (4.6). */
	int lladdr_type = v->type == ND_NA ? ND_OPT_TLLA : ND_OPT_SLLA;
	for (uint32_t i = fixed; i < len;) {
		if (i + 2 > len)
			return NDV_OPTION;
		uint32_t olen = (uint32_t)p[i + 1] * 8;
		if (olen == 0 || i + olen > len)
			return NDV_OPTION;
		switch (p[i]) {
		case ND_OPT_SLLA:
		case ND_OPT_TLLA:
			if (olen != 8)   /* Ethernet: 6 bytes in one unit (RFC 2464 8) */
				return NDV_OPTION;
			if (p[i] == lladdr_type && !v->lladdr)
				v->lladdr = p + i + 2;
			break;
		case ND_OPT_PREFIX:
			if (olen != 32)
				return NDV_OPTION;
			if (v->type == ND_RA && v->nprefix < ND_PREFIX_MAX) {
				struct nd_prefix *pr = &v->prefix[v->nprefix++];
				pr->len = p[i + 2];
				pr->flags = p[i + 3] & 0xc0;
				pr->valid_s = rd32(p + i + 4);
				pr->preferred_s = rd32(p + i + 8);
				pr->prefix = p + i + 16;
			}
			break;
		case ND_OPT_MTU:
			if (olen != 8)
				return NDV_OPTION;
			if (v->type == ND_RA)
				v->mtu = rd32(p + i + 4);
			break;
		default:
			break;   /* unknown options are skipped (4.6) */
		}
		i += olen;
	}
	/* Source and destination rules (7.1.1, 7.1.2, 6.1.1, 6.1.2, 8.1). */
	switch (v->type) {
	case ND_NS:
		if (ip6_is_unspecified(src) && (!ip6_is_solicited_node(dst) || v->lladdr))
			return NDV_SOURCE;
		break;
	case ND_NA:
		if (ip6_is_multicast(dst) && (v->flags & ND_NA_SOLICITED))
			return NDV_SOLICITED_MCAST;
		break;
	case ND_RS:
		if (ip6_is_unspecified(src) && v->lladdr)
			return NDV_SOURCE;
		break;
	case ND_RA:
	case ND_REDIRECT:
		if (!ip6_is_link_local(src))
			return NDV_SOURCE;
		break;
	default:
		break;
	}
	return NDV_OK;
}

int ip6_find_upper(const uint8_t *p, uint32_t total, uint8_t *proto, uint32_t *off)
{
	if (total < IP6_HLEN)
		return 0;
	uint8_t next = p[IP6_NXT];
	uint32_t at = IP6_HLEN;
	for (;;) {   /* at grows by >= 8 each step */
		switch (next) {
		case IP6_NH_HOPOPTS:
		case IP6_NH_DSTOPTS:
		case IP6_NH_ROUTING:
			if (at + 2 > total)
				return 0;
			next = p[at];
			at += ((uint32_t)p[at + 1] + 1) * 8;
			break;
		case IP6_NH_FRAGMENT:
			if (at + 8 > total || (rd16(p + at + 2) & 0xfff8))
				return 0;
			next = p[at];
			at += 8;
			break;
		case IP6_NH_ICMP6:
		case IP6_NH_TCP:
		case IP6_NH_UDP:
			if (at > total)
				return 0;
			*proto = next;
			*off = at;
			return 1;
		default:
			return 0;
		}
	}
}
