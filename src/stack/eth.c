/* Ethernet input: check the frame is for us (our address, broadcast, the
 * IPv6 groups we are in) and dispatch by EtherType. */
#include "internal.h"
#include "wire_eth.h"

void eth_input(struct net_ctx *c, struct usnet_pkt *p)
{
	struct usnet_stack *st = c->st;
	if (!p->data || p->len < ETH_HLEN) {
		st->stats.rx_drop_short++;
		return;
	}
	const uint8_t *f = p->data;
	int bcast = memcmp(f + ETH_DST, eth_broadcast, 6) == 0;
	int mcast6 = !bcast && nd6_mac_wanted(st, f + ETH_DST);   /* IPv6 groups we are in */
	/* IPv4 multicast (01:00:5e:...): ipv4_input keeps the groups joined */
	int mcast = f[ETH_DST] == 0x01 && f[ETH_DST + 1] == 0x00 && f[ETH_DST + 2] == 0x5e;
	if (!bcast && !mcast6 && !mcast && memcmp(f + ETH_DST, st->cfg.mac, 6) != 0) {
		st->stats.rx_drop_not_ours++;
		return;
	}
	uint16_t type = rd16(f + ETH_TYPE);
	switch (type) {
	case ETHERTYPE_IPV4:
		ipv4_input(c, p, f + ETH_HLEN, p->len - ETH_HLEN);
		break;
	case ETHERTYPE_ARP:
		arp_input(c, f + ETH_HLEN, p->len - ETH_HLEN);
		break;
	case ETHERTYPE_IPV6:
		ipv6_input(c, p, f + ETH_HLEN, p->len - ETH_HLEN, bcast || mcast6);
		break;
	default:
		st->stats.rx_drop_bad_eth++;
		break;
	}
}
