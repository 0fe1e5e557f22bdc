/*
 * Frames waiting for a neighbour's link-layer address, for ARP (arp.c) and
 * Neighbor Discovery (nd6.c) alike: a short list of records, each a copy of
 * a whole frame (its length in the head chunk's aux, its checksum-offload
 * request in seq), sent in order once the address is known.
 */
#include "internal.h"
#include "wire_eth.h"

unsigned neigh_queue_put(struct usnet_stack *st, int32_t *queue, uint8_t *qlen, unsigned max,
			 const struct usnet_pkt *p)
{
	struct chunk *chunks = st_chunks(st);
	unsigned dropped = 0;
	if (*qlen >= max) {
		/* Drop the oldest to make room: the newest is likelier to matter. */
		int32_t old = *queue;
		*queue = chunks[old].link;
		order_barrier();
		chunk_free_chain(st, old);
		(*qlen)--;
		dropped++;
	}
	int32_t rec = chain_from_bytes(st, p->data, p->len);
	if (rec == NIL)
		return dropped + 1;
	chunks[rec].aux = p->len;
	chunks[rec].seq = (p->flags & USNET_PKT_TX_CSUM_PARTIAL) ?
		(USNET_PKT_TX_CSUM_PARTIAL | (uint32_t)p->csum_start << 16 | (uint32_t)(p->csum_offset & 0xff) << 8) : 0;
	int32_t *pp = queue;
	while (*pp != NIL)
		pp = &chunks[*pp].link;
	*pp = rec;
	(*qlen)++;
	return dropped;
}

void neigh_queue_flush(struct net_ctx *c, int32_t *queue, uint8_t *qlen, const uint8_t mac[6])
{
	struct usnet_stack *st = c->st;
	struct chunk *chunks = st_chunks(st);
	int32_t rec = *queue;
	*queue = NIL;
	*qlen = 0;
	while (rec != NIL) {
		int32_t next = chunks[rec].link;
		uint32_t flen = chunks[rec].aux;
		uint32_t pflags = chunks[rec].seq;
		struct usnet_pkt *p = tx_get(c);
		if (p && flen <= c->frame_size) {
			uint32_t off = 0;
			for (int32_t k = rec; k != NIL; k = chunks[k].next) {
				memcpy(p->data + off, chunk_ptr(st, k), chunks[k].len);
				off += chunks[k].len;
			}
			memcpy(p->data + ETH_DST, mac, 6);
			p->len = flen;
			if (pflags & USNET_PKT_TX_CSUM_PARTIAL) {
				p->flags = USNET_PKT_TX_CSUM_PARTIAL;
				p->csum_start = (uint16_t)(pflags >> 16);
				p->csum_offset = (uint16_t)((pflags >> 8) & 0xff);
			}
			tx_put(c, p);
		} else if (p) {
			tx_unget(c, p);
		}
		chunk_free_chain(st, rec);
		rec = next;
	}
}
