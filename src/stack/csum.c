/*
 * The Internet checksum (RFC 1071), summed 32 bits at a time into a 64-bit
 * accumulator so that carries are folded only once at the end.
 */
#include "internal.h"

uint64_t csum_add(uint64_t sum, const void *data, size_t len)
{
	const uint8_t *p = data;
	/* One's-complement sums do not depend on the word size as long as
	 * carries wrap around: 64-bit words with an explicit carry count sum
	 * eight bytes per addition.  Words are loaded in host order; the sum
	 * is byte-swapped at the end on little-endian hosts (RFC 1071 2(B)). */
	uint64_t acc = 0, carry = 0;
	while (len >= 32) {
		uint64_t w[4];
		memcpy(w, p, 32);
		carry += __builtin_add_overflow(acc, w[0], &acc);
		carry += __builtin_add_overflow(acc, w[1], &acc);
		carry += __builtin_add_overflow(acc, w[2], &acc);
		carry += __builtin_add_overflow(acc, w[3], &acc);
		p += 32;
		len -= 32;
	}
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		carry += __builtin_add_overflow(acc, w, &acc);
		p += 8;
		len -= 8;
	}
	uint64_t tail = 0;
	if (len) {
		uint8_t last[8] = { 0 };
		for (size_t i = 0; i < len; i++)
			last[i] = p[i];
		memcpy(&tail, last, 8);
	}
	carry += __builtin_add_overflow(acc, tail, &acc);
	/* Fold 64 bits (plus the carries) to 16, in host order. */
	uint64_t f = (acc & 0xffffffffu) + (acc >> 32) + carry;
	f = (f & 0xffffffffu) + (f >> 32);
	f = (f & 0xffff) + (f >> 16);
	f = (f & 0xffff) + (f >> 16);
	f = (f & 0xffff) + (f >> 16);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	f = ((f & 0xff) << 8) | (f >> 8);
#endif
	return sum + f;
}

uint16_t csum_fold(uint64_t sum)
{
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

uint64_t csum_pseudo(uint32_t src, uint32_t dst, uint8_t proto, uint32_t len)
{
	return (uint64_t)(src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + len;
}

uint64_t csum_pseudo6(const uint8_t src[16], const uint8_t dst[16], uint8_t next, uint32_t len)
{
	/* RFC 8200 8.1: both addresses, the upper-layer length as 32 bits,
	 * three zero bytes and the next header. */
	return csum_add(csum_add(0, src, 16), dst, 16) + (len >> 16) + (len & 0xffff) + next;
}
