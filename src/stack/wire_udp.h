/* UDP header view (RFC 768): 8 bytes. */
#ifndef USNET_WIRE_UDP_H
#define USNET_WIRE_UDP_H
#include "wire.h"
#define UDP_HLEN  8
#define UDP_SPORT 0
#define UDP_DPORT 2
#define UDP_LEN   4
#define UDP_CSUM  6
#endif
