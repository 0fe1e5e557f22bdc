/* ICMPv4 header view (RFC 792): type, code, checksum, 4 bytes of rest. */
#ifndef USNET_WIRE_ICMP_H
#define USNET_WIRE_ICMP_H
#include "wire.h"
#define ICMP_HLEN 8
#define ICMP_TYPE 0
#define ICMP_CODE 1
#define ICMP_CSUM 2
#define ICMP_MTU  6   /* next-hop MTU in "fragmentation needed" */
#define ICMP_ECHO_REPLY   0
#define ICMP_UNREACH      3
#define ICMP_ECHO_REQUEST 8
#define ICMP_UNREACH_PORT 3
#define ICMP_UNREACH_NEEDFRAG 4
#endif
