/*
 * libFuzzer target for the IPv6 views alone (src/stack/wire_ipv6.c and
 * wire_mld6.h): an input is an IPv6 packet; it goes through ipv6_parse,
 * then the extension-header walk, ip6_find_upper, ip6_router_alert,
 * icmp6_parse, nd_parse and mld_parse on whatever upper layer the walk
 * found (and on the bytes after the fixed header, whatever they are).  The input is copied to a buffer of exactly its size, so ASan
 * catches any read past it; each answer is checked to stay inside what
 * the view was given.
 */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "wire_ipv6.h"
#include "wire_mld6.h"

#define INSIDE(ptr, base, len) ((ptr) >= (base) && (ptr) <= (base) + (len))

static void check_nd(const uint8_t *m, uint32_t len, uint8_t hlim, const uint8_t *src, const uint8_t *dst)
{
	struct nd_view nv;
	if (nd_parse(m, len, hlim, src, dst, &nv) != NDV_OK)
		return;
	if (nv.target && !INSIDE(nv.target + 16, m, len))
		abort();
	if (nv.lladdr && !INSIDE(nv.lladdr + 6, m, len))
		abort();
	if (nv.nprefix > ND_PREFIX_MAX)
		abort();
	for (unsigned i = 0; i < nv.nprefix; i++)
		if (!INSIDE(nv.prefix[i].prefix + 16, m, len))
			abort();
}

static void check_mld(const uint8_t *m, uint32_t len)
{
	struct mld_view mv;
	if (mld_parse(m, len, &mv) != MLDV_OK)
		return;
	if (mv.group && !INSIDE(mv.group + 16, m, len))
		abort();
	if (mv.type == MLD_QUERY && mv.version != 1 && mv.version != 2)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65535 + IP6_HLEN)
		return 0;
	uint32_t len = (uint32_t)size;
	uint8_t *p = malloc(len ? len : 1);
	memcpy(p, data, len);
	struct ipv6_view v;
	if (ipv6_parse(p, len, &v) == IP6V_OK) {
		uint32_t total = IP6_HLEN + v.plen;
		if (total > len)
			abort();
		struct ip6_ext_view x;
		enum ip6_ext_verdict xv = ip6_ext_walk(p, total, v.next, &x);
		switch (xv) {
		case IP6X_OK:
		case IP6X_FRAGMENT:
			if (x.off > total)
				abort();
			break;
		case IP6X_HBH_NOT_FIRST:
		case IP6X_UNKNOWN_NEXT:
		case IP6X_OPT_PARAM:
		case IP6X_OPT_PARAM_UNICAST:
		case IP6X_ROUTING:
			if (x.pointer >= total)
				abort();
			break;
		default:
			break;
		}
		uint8_t proto;
		uint32_t off;
		if (ip6_find_upper(p, total, &proto, &off) && off > total)
			abort();
		if (xv == IP6X_OK && x.proto == IP6_NH_ICMP6) {
			const uint8_t *m = p + x.off;
			uint32_t mlen = total - x.off;
			(void)icmp6_parse(m, mlen, v.src, v.dst);
			check_nd(m, mlen, v.hop_limit, v.src, v.dst);
			check_mld(m, mlen);
		}
		int ra = ip6_router_alert(p, total);
		if (ra < -1 || ra > 0xffff)
			abort();
		/* The bytes after the fixed header as ICMPv6/ND whatever the
		 * next header said: more of the ND parser's paths. */
		(void)icmp6_parse(p + IP6_HLEN, v.plen, v.src, v.dst);
		check_nd(p + IP6_HLEN, v.plen, v.hop_limit, v.src, v.dst);
		check_mld(p + IP6_HLEN, v.plen);
	}
	free(p);
	return 0;
}
