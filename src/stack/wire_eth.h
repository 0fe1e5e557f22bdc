/* Ethernet II header view: dst[6] src[6] type[2] (14 bytes, no VLAN tags). */
#ifndef USNET_WIRE_ETH_H
#define USNET_WIRE_ETH_H
#include "wire.h"

#define ETH_DST   0
#define ETH_SRC   6
#define ETH_TYPE 12

static const uint8_t eth_broadcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static inline void eth_write(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], uint16_t type)
{
	for (int i = 0; i < 6; i++) { f[ETH_DST + i] = dst[i]; f[ETH_SRC + i] = src[i]; }
	wr16(f + ETH_TYPE, type);
}
#endif
