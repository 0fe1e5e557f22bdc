/*
 * Traffic to the stack's own addresses (IPv4 and IPv6, and 127.0.0.0/8, ::1): a program that connects to a server
 * on the same stack (a proxy in front of its backend, a health check, a
 * client on the same host).  Such a frame never reaches the wire: the
 * stack copies it into its buffer pool as a record (a chain of chunks,
 * linked by `link` from loop_head), and delivers it to itself at the end of
 * the API call that sent it, as if it had been received -- after the call's
 * own work, never from inside it, so no protocol handler runs re-entered.
 * A delivery may send more frames to itself (a SYN answered by a SYN-ACK):
 * they are delivered in the same pass, up to LOOP_BUDGET frames per call;
 * the rest wait for the next call (usnet_stack_poll asks for one at once).
 *
 * The frames' checksums are not computed again (the device would fill a
 * TX_CSUM_PARTIAL one, and no device saw these): they are delivered as
 * verified.
 */
#include "internal.h"

#define LOOP_BUDGET 256u

void loop_put(struct net_ctx *c, struct usnet_pkt *p)
{
	loop_copy(c, p);
	tx_unget(c, p);
}

void loop_copy(struct net_ctx *c, struct usnet_pkt *p)
{
	struct usnet_stack *st = c->st;
	uint8_t *f = p->data;
	memcpy(f, st->cfg.mac, 6);        /* to us, from us */
	memcpy(f + 6, st->cfg.mac, 6);
	uint16_t type = (f[ETH_HLEN] >> 4) == 6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4;
	f[12] = (uint8_t)(type >> 8);
	f[13] = (uint8_t)type;
	int32_t head = chain_from_bytes(st, f, p->len);
	uint32_t len = p->len;
	if (head == NIL) {
		st->stats.tx_no_buffer++;   /* as a full device queue: lost, retransmitted */
		return;
	}
	struct chunk *chunks = st_chunks(st);
	chunks[head].aux = len;
	if (st->loop_tail == NIL)
		st->loop_head = head;
	else
		chunks[st->loop_tail].link = head;
	st->loop_tail = head;
}

void loop_deliver(struct net_ctx *c)
{
	struct usnet_stack *st = c->st;
	uint8_t *buf = st_loop_buf(st);
	c->looping = 1;
	for (unsigned n = 0; n < LOOP_BUDGET && st->loop_head != NIL; n++) {
		struct chunk *chunks = st_chunks(st);
		int32_t rec = st->loop_head;
		st->loop_head = chunks[rec].link;
		if (st->loop_head == NIL)
			st->loop_tail = NIL;
		uint32_t len = 0;
		for (int32_t k = rec; k != NIL; k = chunks[k].next) {
			memcpy(buf + len, chunk_ptr(st, k) + chunks[k].off, chunks[k].len);
			len += chunks[k].len;
		}
		chunk_free_chain(st, rec);
		struct usnet_pkt pkt = { .data = buf, .len = len, .flags = USNET_PKT_RX_CSUM_OK };
		eth_input(c, &pkt);
	}
	c->looping = 0;
}
