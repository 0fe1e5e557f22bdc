/*
 * libFuzzer harness for the receive path: a stack with a TCP listener, an
 * established TCP connection (SACK, timestamps, window scaling), a bound
 * UDP socket and two IPv6 addresses (link-local and 2001:db8::1) takes
 * arbitrary frames.
 *
 * Input format: the data is split into frames at the 4-byte marker "FRM|"
 * (so a corpus entry can hold a sequence: e.g. fragments, or segments that
 * move the connection through several states).  Before each frame, one
 * byte of the clock advances time, and the connection's well-known
 * sequence numbers are patched in when the frame asks for it (the byte
 * after the marker: bit 0 = use the expected seq/ack), letting the fuzzer
 * reach deep TCP states.  Malformed frames must be counted and dropped,
 * never crash or read out of bounds (ASan/UBSan check that).
 */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "usnet/stack.h"

#define FRAME_MAX 2048

static const uint8_t MAC_US[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static const uint8_t MAC_PEER[6] = { 0x02, 0, 0, 0, 0, 0x02 };
#define IP_US   0x0a000001u
#define IP_PEER 0x0a000002u

struct fnif {
	struct usnet_netif nif;
	uint8_t bufs[64][FRAME_MAX];
	uint8_t busy[64];
	uint8_t last[FRAME_MAX];
	uint32_t last_len;
};

static int f_rx(struct usnet_netif *n, uint16_t q, struct usnet_pkt *p, unsigned m) { (void)n; (void)q; (void)p; (void)m; return 0; }
static void f_rel(struct usnet_netif *n, uint16_t q, struct usnet_pkt *p, unsigned k) { (void)n; (void)q; (void)p; (void)k; }
static int f_alloc(struct usnet_netif *n, uint16_t q, struct usnet_pkt *p, unsigned k)
{
	struct fnif *f = (struct fnif *)n;
	unsigned got = 0;
	(void)q;
	for (unsigned i = 0; i < 64 && got < k; i++) {
		if (f->busy[i]) continue;
		f->busy[i] = 1;
		memset(&p[got], 0, sizeof p[got]);
		p[got].data = f->bufs[i];
		p[got].id = i;
		got++;
	}
	return (int)got;
}
static int f_burst(struct usnet_netif *n, uint16_t q, struct usnet_pkt *p, unsigned k)
{
	struct fnif *f = (struct fnif *)n;
	(void)q;
	for (unsigned i = 0; i < k; i++) {
		if (p[i].len > FRAME_MAX) abort();
		memcpy(f->last, p[i].data, p[i].len);
		f->last_len = p[i].len;
		f->busy[p[i].id] = 0;
	}
	return (int)k;
}
static void f_free(struct usnet_netif *n, uint16_t q, struct usnet_pkt *p, unsigned k)
{
	(void)q;
	for (unsigned i = 0; i < k; i++) ((struct fnif *)n)->busy[p[i].id] = 0;
}
static const struct usnet_netif_ops f_ops = { f_rx, f_rel, f_alloc, f_burst, f_free, NULL, NULL, NULL, NULL };

static void on_event(struct usnet_io *io, usnet_sock_t s, uint32_t ev, uint64_t user)
{
	(void)io; (void)s; (void)ev; (void)user;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void wr32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }

static uint16_t csum(const uint8_t *p, size_t len, uint32_t init)
{
	uint64_t s = init;
	for (size_t i = 0; i + 1 < len; i += 2) s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1) s += (uint32_t)p[len - 1] << 8;
	while (s >> 16) s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* A SYN/ACK exchange from the peer side, built directly. */
static uint32_t tcp_frame(uint8_t *f, uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags,
			  const uint8_t *opt, uint32_t optlen)
{
	memcpy(f, MAC_US, 6); memcpy(f + 6, MAC_PEER, 6); wr16(f + 12, 0x0800);
	uint8_t *ip = f + 14, *t = ip + 20;
	uint32_t tl = 20 + optlen;
	memset(t, 0, 20);
	wr16(t, sport); wr16(t + 2, dport); wr32(t + 4, seq); wr32(t + 8, ack);
	t[12] = (uint8_t)((tl / 4) << 4); t[13] = flags; wr16(t + 14, 65535);
	memcpy(t + 20, opt, optlen);
	uint32_t ps = (IP_PEER >> 16) + (IP_PEER & 0xffff) + (IP_US >> 16) + (IP_US & 0xffff) + 6 + tl;
	wr16(t + 16, csum(t, tl, ps));
	memset(ip, 0, 20);
	ip[0] = 0x45; wr16(ip + 2, (uint16_t)(20 + tl)); wr16(ip + 6, 0x4000); ip[8] = 64; ip[9] = 6;
	wr32(ip + 12, IP_PEER); wr32(ip + 16, IP_US);
	wr16(ip + 10, csum(ip, 20, 0));
	return 14 + 20 + tl;
}

struct world {
	void *mem;
	struct usnet_stack *st;
	struct fnif nif;
	struct usnet_io io;
	uint64_t now;
	int32_t conn;
	uint32_t peer_seq, our_seq;
};

static void input(struct world *w, uint8_t *d, uint32_t len, uint32_t flags)
{
	struct usnet_pkt p = { .data = d, .len = len, .flags = flags };
	usnet_stack_input(w->st, &w->io, &p, 1, w->now);
}

static void world_init(struct world *w)
{
	struct usnet_stack_config cfg;
	usnet_stack_config_init(&cfg);
	memcpy(cfg.mac, MAC_US, 6);
	cfg.ip = IP_US;
	cfg.prefix_len = 24;
	cfg.max_sockets = 32;
	cfg.buffer_bytes = 1u << 20;
	cfg.secret[0] = 1; cfg.secret[1] = 2;
	/* IPv6: fe80::ff:fe00:1 from the MAC and 2001:db8::1/64, used at once. */
	cfg.ip6_link_local = 1;
	cfg.ip6_dad_transmits = 0;
	static const uint8_t gl[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
	memcpy(cfg.ip6[0], gl, 16);
	cfg.ip6_prefix_len[0] = 64;
	size_t sz = usnet_stack_mem_size(&cfg);
	/* One arena for the whole run: each input re-creates the instance in it. */
	if (!w->mem)
		w->mem = aligned_alloc(64, (sz + 63) & ~(size_t)63);
	w->st = usnet_stack_create(w->mem, sz, &cfg);
	memset(&w->nif, 0, sizeof w->nif);
	w->nif.last_len = 0;
	w->nif.nif.ops = &f_ops;
	w->nif.nif.info.frame_size = FRAME_MAX;
	w->nif.nif.info.mtu = 1500;
	w->io.netif = &w->nif.nif;
	w->io.on_event = on_event;
	w->now = 1000000000ull;
	/* Learn the peer (ARP request from it). */
	uint8_t f[64] = { 0 };
	memset(f, 0xff, 6); memcpy(f + 6, MAC_PEER, 6); wr16(f + 12, 0x0806);
	uint8_t *a = f + 14;
	wr16(a, 1); wr16(a + 2, 0x0800); a[4] = 6; a[5] = 4; wr16(a + 6, 1);
	memcpy(a + 8, MAC_PEER, 6); wr32(a + 14, IP_PEER); wr32(a + 24, IP_US);
	input(w, f, 60, 0);
	/* Listener on 80, UDP on 53 (a member of 239.1.2.3), and an
	 * established connection on 81. */
	int32_t l = usnet_socket(w->st, USNET_SOCK_STREAM);
	usnet_bind(w->st, l, &(struct usnet_addr){ .ip = 0, .port = 80 });
	usnet_listen(w->st, l, 4);
	int32_t u = usnet_socket(w->st, USNET_SOCK_DGRAM);
	usnet_bind(w->st, u, &(struct usnet_addr){ .ip = 0, .port = 53 });
	usnet_mc_join(w->st, &w->io, u, 0xef010203u, w->now);
	int32_t l2 = usnet_socket(w->st, USNET_SOCK_STREAM);
	usnet_bind(w->st, l2, &(struct usnet_addr){ .ip = 0, .port = 81 });
	usnet_listen(w->st, l2, 4);
	static const uint8_t synopt[] = { 2, 4, 5, 0xb4, 1, 3, 3, 7, 1, 1, 4, 2, 1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0 };
	uint8_t fr[200];
	w->peer_seq = 1000;
	input(w, fr, tcp_frame(fr, 40000, 81, w->peer_seq, 0, 0x02, synopt, sizeof synopt), 0);
	w->our_seq = rd32(w->nif.last + 14 + 20 + 4) + 1;
	w->peer_seq++;
	static const uint8_t tsopt[] = { 1, 1, 8, 10, 0, 0, 0, 2, 0, 0, 0, 0 };
	input(w, fr, tcp_frame(fr, 40000, 81, w->peer_seq, w->our_seq, 0x10, tsopt, sizeof tsopt), 0);
	w->conn = usnet_accept(w->st, &w->io, l2, NULL, w->now);
	static const char msg[3000] = "some data to send";
	usnet_send(w->st, &w->io, w->conn, msg, sizeof msg, 0, w->now);
}

/* Patch a TCP frame to the connection's expected numbers and fix its
 * checksums (when the frame is long enough to be one). */
static void patch_tcp(struct world *w, uint8_t *d, uint32_t len)
{
	if (len < 14 + 20 + 20 || rd16(d + 12) != 0x0800 || (d[14] & 0xf) != 5 || d[14 + 9] != 6)
		return;
	uint8_t *ip = d + 14, *t = ip + 20;
	uint32_t tot = rd16(ip + 2);
	if (tot < 40 || tot + 14 > len)
		return;
	wr32(ip + 12, IP_PEER); wr32(ip + 16, IP_US);
	wr16(t, 40000); wr16(t + 2, 81);
	wr32(t + 4, w->peer_seq + (rd32(t + 4) & 0xff));
	wr32(t + 8, w->our_seq + (rd32(t + 8) & 0xfff));
	wr16(ip + 10, 0); wr16(ip + 10, csum(ip, 20, 0));
	uint32_t tl = tot - 20;
	uint32_t ps = (IP_PEER >> 16) + (IP_PEER & 0xffff) + (IP_US >> 16) + (IP_US & 0xffff) + 6 + tl;
	wr16(t + 16, 0); wr16(t + 16, csum(t, tl, ps));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct world w;
	world_init(&w);
	/* Frames with control bit 6 wait and go in one batch with the next
	 * frame (the batch path defers ACKs to its end). */
	struct usnet_pkt batch[8];
	unsigned nbatch = 0;
	size_t pos = 0;
	while (pos < size) {
		size_t end = pos;
		while (end + 4 <= size && memcmp(data + end, "FRM|", 4) != 0)
			end++;
		if (end + 4 > size)
			end = size;
		size_t n = end - pos;
		if (n >= 2) {
			uint8_t ctl = data[pos], dt = data[pos + 1];
			w.now += (uint64_t)dt * 10000000ull;   /* up to 2.5 s per frame */
			uint32_t len = (uint32_t)(n - 2 > FRAME_MAX ? FRAME_MAX : n - 2);
			uint8_t *copy = malloc(len ? len : 1);
			memcpy(copy, data + pos + 2, len);
			if (ctl & 1)
				patch_tcp(&w, copy, len);
			uint32_t flags = (ctl >> 1) & 3;   /* RX_CSUM_OK / RX_CSUM_PARTIAL */
			batch[nbatch++] = (struct usnet_pkt){ .data = copy, .len = len, .flags = flags };
			if (!(ctl & 0x40) || nbatch == 8) {
				usnet_stack_input(w.st, &w.io, batch, nbatch, w.now);
				for (unsigned k = 0; k < nbatch; k++)
					free(batch[k].data);
				nbatch = 0;
			}
			usnet_stack_poll(w.st, &w.io, w.now);
			if (ctl & 0x10) {
				char buf[4096];
				usnet_recv(w.st, &w.io, w.conn, buf, sizeof buf, 0, w.now);
			}
			if (ctl & 0x20)
				usnet_send(w.st, &w.io, w.conn, "xyz", 3, 0, w.now);
		}
		pos = end + 4;
	}
	if (nbatch) {
		usnet_stack_input(w.st, &w.io, batch, nbatch, w.now);
		for (unsigned k = 0; k < nbatch; k++)
			free(batch[k].data);
	}
	usnet_stack_poll(w.st, &w.io, w.now + 3600ull * 1000000000ull);
	for (int i = 0; i < 64; i++)
		if (w.nif.busy[i]) abort();   /* a leaked tx buffer */
	return 0;
}
