/* TCP header view (RFC 9293) and its options (MSS, window scale, SACK,
 * timestamps). */
#ifndef USNET_WIRE_TCP_H
#define USNET_WIRE_TCP_H
#include "wire.h"

#define TCP_HLEN   20
#define TCP_SPORT   0
#define TCP_DPORT   2
#define TCP_SEQ     4
#define TCP_ACK     8
#define TCP_OFF    12   /* data offset << 4 */
#define TCP_FLAGS  13
#define TCP_WIN    14
#define TCP_CSUM   16
#define TCP_URP    18

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10
#define TH_URG 0x20
#define TH_ECE 0x40   /* ECN-Echo (RFC 3168) */
#define TH_CWR 0x80   /* Congestion Window Reduced */

#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_MSS 2
#define TCPOPT_WS  3
#define TCPOPT_SACK_PERM 4
#define TCPOPT_SACK 5
#define TCPOPT_TS  8

#define TCP_MAX_SACK_RX 4

/* Options found in a segment. */
struct tcp_opts {
	uint8_t  has_mss, has_ws, sack_perm, has_ts;
	uint16_t mss;
	uint8_t  ws;
	uint8_t  nsack;
	uint32_t tsval, tsecr;
	uint32_t sack[TCP_MAX_SACK_RX][2];
};

/* Parse the options in p[0..len); returns 0, or -1 when malformed (an
 * option running past the end, a bad length for a known kind). */
int tcp_parse_options(const uint8_t *p, uint32_t len, struct tcp_opts *o);
#endif
