/* ARP for IPv4 over Ethernet (RFC 826): a fixed 28-byte body. */
#ifndef USNET_WIRE_ARP_H
#define USNET_WIRE_ARP_H
#include "wire.h"

#define ARP_LEN     28
#define ARP_HTYPE    0   /* 1: Ethernet */
#define ARP_PTYPE    2   /* 0x0800 */
#define ARP_HLEN     4   /* 6 */
#define ARP_PLEN     5   /* 4 */
#define ARP_OP       6   /* 1 request, 2 reply */
#define ARP_SHA      8
#define ARP_SPA     14
#define ARP_THA     18
#define ARP_TPA     24
#define ARP_OP_REQUEST 1
#define ARP_OP_REPLY   2

/* Nonzero when the 28 bytes at p are a well-formed Ethernet/IPv4 ARP body. */
static inline int arp_valid(const uint8_t *p)
{
	return rd16(p + ARP_HTYPE) == 1 && rd16(p + ARP_PTYPE) == 0x0800 &&
	       p[ARP_HLEN] == 6 && p[ARP_PLEN] == 4 &&
	       (rd16(p + ARP_OP) == ARP_OP_REQUEST || rd16(p + ARP_OP) == ARP_OP_REPLY);
}
#endif
