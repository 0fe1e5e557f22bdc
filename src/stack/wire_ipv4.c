/* IPv4 header parsing and emission with bounds checks (see wire_ipv4.h). */
#include "internal.h"
#include "wire_ipv4.h"

enum ipv4_verdict ipv4_parse(const uint8_t *p, uint32_t len, struct ipv4_view *v)
{
	if (len < 20)
		return IP4_BAD_LEN;
	if ((p[IP4_VHL] >> 4) != 4)
		return IP4_BAD_HEADER;
	uint32_t hlen = (uint32_t)(p[IP4_VHL] & 0x0f) * 4;
	if (hlen < 20)
		return IP4_BAD_HEADER;
	uint32_t tot = rd16(p + IP4_LEN);
	if (tot < hlen || tot > len || hlen > len)
		return IP4_BAD_LEN;
	if (csum_fold(csum_add(0, p, hlen)) != 0xffff)
		return IP4_BAD_CSUM;
	v->hlen = hlen;
	v->tot = tot;
	v->src = rd32(p + IP4_SRC);
	v->dst = rd32(p + IP4_DST);
	v->frag = rd16(p + IP4_FRAG);
	v->proto = p[IP4_PROTO];
	return IP4_OK;
}

void ipv4_write(uint8_t *p, uint32_t src, uint32_t dst, uint8_t proto,
		uint16_t total, uint16_t id, uint16_t frag, uint8_t ttl, uint8_t tos)
{
	p[IP4_VHL] = 0x45;
	p[IP4_TOS] = tos;
	wr16(p + IP4_LEN, total);
	wr16(p + IP4_ID, id);
	wr16(p + IP4_FRAG, frag);
	p[IP4_TTL] = ttl;
	p[IP4_PROTO] = proto;
	wr16(p + IP4_CSUM, 0);
	wr32(p + IP4_SRC, src);
	wr32(p + IP4_DST, dst);
	wr16(p + IP4_CSUM, (uint16_t)~csum_fold(csum_add(0, p, 20)));
}
