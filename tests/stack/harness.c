/* Test harness implementation (see harness.h). */
#include "harness.h"

const uint8_t T_MAC_US[6] = { 0x02, 0, 0, 0, 0, 0x01 };
const uint8_t T_MAC_PEER[6] = { 0x02, 0, 0, 0, 0, 0x02 };
char t_why[256];

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void wr32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }

/* ---- netif double ------------------------------------------------------ */

static struct tnif *T(struct usnet_netif *n) { return (struct tnif *)n; }

static int t_rx_burst(struct usnet_netif *n, uint16_t q, struct usnet_pkt *p, unsigned max)
{ (void)n; (void)q; (void)p; (void)max; return 0; }
static void t_rx_release(struct usnet_netif *n, uint16_t q, struct usnet_pkt *p, unsigned k)
{ (void)n; (void)q; (void)p; (void)k; }

static int t_tx_alloc(struct usnet_netif *n, uint16_t q, struct usnet_pkt *p, unsigned k)
{
	struct tnif *t = T(n);
	(void)q;
	if (t->alloc_fail) {
		t->alloc_fail--;
		return 0;
	}
	unsigned got = 0;
	for (unsigned i = 0; i < TNIF_BUFS && got < k; i++) {
		if (t->busy[i])
			continue;
		t->busy[i] = 1;
		t->nbusy++;
		memset(&p[got], 0, sizeof(p[got]));
		p[got].data = t->bufs[i];
		p[got].id = i;
		got++;
	}
	return (int)got;
}

static void t_release(struct tnif *t, struct usnet_pkt *p)
{
	if (p->id >= TNIF_BUFS || !t->busy[p->id] || p->data != t->bufs[p->id]) {
		fprintf(stderr, "harness: bad buffer returned\n");
		abort();
	}
	t->busy[p->id] = 0;
	t->nbusy--;
}

static int t_tx_burst(struct usnet_netif *n, uint16_t q, struct usnet_pkt *p, unsigned k)
{
	struct tnif *t = T(n);
	(void)q;
	for (unsigned i = 0; i < k; i++) {
		if (p[i].len > TNIF_FRAME || p[i].len < 14) {
			fprintf(stderr, "harness: bad frame length %u\n", p[i].len);
			abort();
		}
		if (t->nout < TNIF_CAP) {
			struct tframe *f = &t->out[t->nout++];
			memcpy(f->d, p[i].data, p[i].len);
			f->len = p[i].len;
			f->flags = p[i].flags;
			f->csum_start = p[i].csum_start;
			f->csum_offset = p[i].csum_offset;
		}
		t_release(t, &p[i]);
	}
	return (int)k;
}

static void t_tx_free(struct usnet_netif *n, uint16_t q, struct usnet_pkt *p, unsigned k)
{
	(void)q;
	for (unsigned i = 0; i < k; i++)
		t_release(T(n), &p[i]);
}

static int t_flush(struct usnet_netif *n, uint16_t q) { (void)q; T(n)->flushes++; return 0; }

static const struct usnet_netif_ops tnif_ops = {
	.rx_burst = t_rx_burst, .rx_release = t_rx_release, .tx_alloc = t_tx_alloc,
	.tx_burst = t_tx_burst, .tx_free = t_tx_free, .flush = t_flush,
};

void tnif_init(struct tnif *t, const uint8_t mac[6])
{
	memset(t, 0, sizeof(*t));
	t->nif.ops = &tnif_ops;
	strcpy(t->nif.info.backend, "test");
	memcpy(t->nif.info.mac, mac, 6);
	t->nif.info.nqueues = 1;
	t->nif.info.mtu = 1500;
	t->nif.info.frame_size = TNIF_FRAME;
	t->out = calloc(TNIF_CAP, sizeof(struct tframe));
}

void tnif_fini(struct tnif *t) { free(t->out); }

struct tframe *tnif_next(struct tnif *t)
{
	if (t->rd >= t->nout)
		return NULL;
	return &t->out[t->rd++];
}

void tnif_clear(struct tnif *t) { t->nout = t->rd = 0; }

/* ---- environment ------------------------------------------------------- */

static void t_on_event(struct usnet_io *io, usnet_sock_t s, uint32_t ev, uint64_t user)
{
	struct tenv *e = io->ctx;
	(void)user;
	if (e->nev < EVLOG) {
		e->evlog[e->nev].s = s;
		e->evlog[e->nev].ev = ev;
		e->nev++;
	}
}

void tenv_default_cfg(struct usnet_stack_config *cfg)
{
	usnet_stack_config_init(cfg);
	memcpy(cfg->mac, T_MAC_US, 6);
	cfg->ip = T_IP_US;
	cfg->prefix_len = 24;
	cfg->max_sockets = 64;
	cfg->buffer_bytes = 4u << 20;
	cfg->secret[0] = 0x1234;
	cfg->secret[1] = 0x5678;
}

void tenv_init(struct tenv *e, const struct usnet_stack_config *cfg)
{
	struct usnet_stack_config c;
	if (!cfg) {
		tenv_default_cfg(&c);
		cfg = &c;
	}
	memset(e, 0, sizeof(*e));
	size_t sz = usnet_stack_mem_size(cfg);
	if (!sz) {
		fprintf(stderr, "harness: bad config\n");
		abort();
	}
	e->mem_size = (sz + 63) & ~(size_t)63;
	e->mem = aligned_alloc(64, e->mem_size);
	e->st = usnet_stack_create(e->mem, sz, cfg);
	if (!e->st) {
		fprintf(stderr, "harness: create failed\n");
		abort();
	}
	e->nif = malloc(sizeof(struct tnif));
	tnif_init(e->nif, cfg->mac);
	e->io.netif = &e->nif->nif;
	e->io.queue = 0;
	e->io.on_event = t_on_event;
	e->io.ctx = e;
	e->now = 1 * SEC;
}

void tenv_fini(struct tenv *e)
{
	if (e->nif && e->nif->nbusy) {
		fprintf(stderr, "harness: %u tx buffers never returned\n", e->nif->nbusy);
		abort();
	}
	tnif_fini(e->nif);
	free(e->nif);
	free(e->mem);
}

void tenv_move_arena(struct tenv *e)
{
	/* Allocated before the old buffer is freed: never the same address. */
	void *to = aligned_alloc(64, e->mem_size);
	if (!to) {
		fprintf(stderr, "harness: no memory for the moved arena\n");
		abort();
	}
	memcpy(to, e->mem, e->mem_size);
	memset(e->mem, 0xa5, e->mem_size);
	free(e->mem);
	e->mem = to;
	e->st = (struct usnet_stack *)to;
}

void tenv_verify(struct usnet_stack *st, const char *after)
{
	static int on = -1;
	if (on < 0)
		on = getenv("STACK_TEST_CHECK") != NULL;
	if (!on)
		return;
	char why[200];
	if (usnet_stack_check(st, why, sizeof why) != 0) {
		fprintf(stderr, "harness: invariant broken after %s: %s\n", after, why);
		abort();
	}
}

void tenv_input_flags(struct tenv *e, const uint8_t *frame, uint32_t len, uint32_t flags)
{
	/* A private copy, so reads past len are caught by ASan. */
	uint8_t *copy = malloc(len ? len : 1);
	memcpy(copy, frame, len);
	struct usnet_pkt p = { .data = copy, .len = len, .flags = flags };
	usnet_stack_input(e->st, &e->io, &p, 1, e->now);
	free(copy);
	tenv_verify(e->st, "input");
}

void tenv_input(struct tenv *e, const uint8_t *frame, uint32_t len) { tenv_input_flags(e, frame, len, 0); }

uint64_t tenv_poll(struct tenv *e)
{
	uint64_t next = usnet_stack_poll(e->st, &e->io, e->now);
	tenv_verify(e->st, "poll");
	return next;
}

void tenv_advance(struct tenv *e, uint64_t t)
{
	for (int guard = 0; guard < 100000; guard++) {
		uint64_t next = tenv_poll(e);
		if (next > t)
			break;
		if (next > e->now)
			e->now = next;
	}
	e->now = t;
	tenv_poll(e);
}

void tenv_learn_peer(struct tenv *e)
{
	uint8_t f[64];
	memset(f, 0, sizeof f);
	memset(f, 0xff, 6);
	memcpy(f + 6, T_MAC_PEER, 6);
	wr16(f + 12, 0x0806);
	uint8_t *a = f + 14;
	wr16(a, 1); wr16(a + 2, 0x0800); a[4] = 6; a[5] = 4; wr16(a + 6, 1);
	memcpy(a + 8, T_MAC_PEER, 6); wr32(a + 14, T_IP_PEER);
	wr32(a + 24, T_IP_US);
	tenv_input(e, f, 60);
	tnif_clear(e->nif);
}

uint32_t tenv_last_event(struct tenv *e, int32_t s)
{
	for (unsigned i = e->nev; i-- > 0;)
		if (e->evlog[i].s == s)
			return e->evlog[i].ev;
	return 0;
}

int tenv_event_count(struct tenv *e, int32_t s)
{
	int n = 0;
	for (unsigned i = 0; i < e->nev; i++)
		if (e->evlog[i].s == s)
			n++;
	return n;
}

/* ---- frames ------------------------------------------------------------ */

/* A deliberately simple byte-wise checksum, independent of the stack's. */
uint16_t t_csum(const uint8_t *p, size_t len, uint32_t initial)
{
	uint64_t sum = initial;
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

uint32_t t_pseudo(uint32_t src, uint32_t dst, uint8_t proto, uint32_t len)
{
	return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + len;
}

uint32_t t_ip_frame(uint8_t *f, const uint8_t dmac[6], const uint8_t smac[6], uint32_t src, uint32_t dst,
		    uint8_t proto, uint16_t id, uint16_t frag, const uint8_t *l4, uint32_t l4len)
{
	memcpy(f, dmac, 6);
	memcpy(f + 6, smac, 6);
	wr16(f + 12, 0x0800);
	uint8_t *ip = f + 14;
	ip[0] = 0x45; ip[1] = 0;
	wr16(ip + 2, (uint16_t)(20 + l4len));
	wr16(ip + 4, id);
	wr16(ip + 6, frag);
	ip[8] = 64; ip[9] = proto;
	wr16(ip + 10, 0);
	wr32(ip + 12, src);
	wr32(ip + 16, dst);
	wr16(ip + 10, t_csum(ip, 20, 0));
	memcpy(ip + 20, l4, l4len);
	uint32_t len = 14 + 20 + l4len;
	while (len < 60)
		f[len++] = 0;
	return len;
}

uint32_t t_tcp_frame(uint8_t *f, uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack,
		     uint8_t flags, uint16_t win, const uint8_t *opts, uint32_t optlen,
		     const uint8_t *data, uint32_t dlen)
{
	uint8_t seg[2048];
	uint32_t hl = 20 + ((optlen + 3) & ~3u);
	memset(seg, 0, hl);
	wr16(seg, sport); wr16(seg + 2, dport);
	wr32(seg + 4, seq); wr32(seg + 8, ack);
	seg[12] = (uint8_t)((hl / 4) << 4);
	seg[13] = flags;
	wr16(seg + 14, win);
	if (optlen)
		memcpy(seg + 20, opts, optlen);
	for (uint32_t i = 20 + optlen; i < hl; i++)
		seg[i] = 1;   /* NOP padding */
	if (dlen)
		memcpy(seg + hl, data, dlen);
	wr16(seg + 16, t_csum(seg, hl + dlen, t_pseudo(T_IP_PEER, T_IP_US, 6, hl + dlen)));
	return t_ip_frame(f, T_MAC_US, T_MAC_PEER, T_IP_PEER, T_IP_US, 6, 0, 0x4000, seg, hl + dlen);
}

void t_set_tos(uint8_t *f, uint8_t tos)
{
	uint8_t *ip = f + 14;
	ip[1] = tos;
	wr16(ip + 10, 0);
	wr16(ip + 10, t_csum(ip, (ip[0] & 15) * 4u, 0));
}

uint32_t t_udp_frame(uint8_t *f, uint16_t sport, uint16_t dport, const uint8_t *data, uint32_t dlen)
{
	uint8_t seg[2048];
	wr16(seg, sport); wr16(seg + 2, dport);
	wr16(seg + 4, (uint16_t)(8 + dlen)); wr16(seg + 6, 0);
	memcpy(seg + 8, data, dlen);
	uint16_t c = t_csum(seg, 8 + dlen, t_pseudo(T_IP_PEER, T_IP_US, 17, 8 + dlen));
	wr16(seg + 6, c ? c : 0xffff);
	return t_ip_frame(f, T_MAC_US, T_MAC_PEER, T_IP_PEER, T_IP_US, 17, 7, 0, seg, 8 + dlen);
}

int t_parse(const struct tframe *f, struct tpkt *p)
{
	memset(p, 0, sizeof(*p));
	if (f->len < 14)
		return -1;
	p->eth_dst = f->d;
	uint16_t type = rd16(f->d + 12);
	if (type == 0x0806) {
		p->is_arp = 1;
		p->arp_op = rd16(f->d + 14 + 6);
		p->arp_spa = rd32(f->d + 14 + 14);
		p->arp_tpa = rd32(f->d + 14 + 24);
		return 0;
	}
	if (type != 0x0800 || f->len < 34)
		return -1;
	const uint8_t *ip = f->d + 14;
	p->is_ip = 1;
	uint32_t hl = (ip[0] & 15) * 4u;
	p->iplen = rd16(ip + 2);
	if (p->iplen + 14 > f->len)
		return -1;
	p->ip_csum_ok = t_csum(ip, hl, 0) == 0;
	p->ipid = rd16(ip + 4);
	p->frag = rd16(ip + 6);
	p->proto = ip[9];
	p->tos = ip[1];
	p->src = rd32(ip + 12);
	p->dst = rd32(ip + 16);
	p->l4 = ip + hl;
	p->l4len = p->iplen - hl;
	if (f->flags & USNET_PKT_TX_CSUM_PARTIAL) {
		/* What the device would do: sum from csum_start to the end. */
		uint8_t tmp[2048];
		memcpy(tmp, f->d, f->len);
		uint32_t end = 14 + p->iplen;
		uint16_t s = t_csum(tmp + f->csum_start, end - f->csum_start, 0);
		/* The field holds the folded pseudo sum; the device result is
		 * the complement of (pseudo + rest), which t_csum already did. */
		wr16(tmp + f->csum_start + f->csum_offset, s);
		p->l4_csum_ok = t_csum(tmp + 14 + hl, p->l4len, t_pseudo(p->src, p->dst, p->proto, p->l4len)) == 0;
	} else if (!(p->frag & 0x3fff)) {
		p->l4_csum_ok = t_csum(p->l4, p->l4len, t_pseudo(p->src, p->dst, p->proto, p->l4len)) == 0;
		if (p->proto == 17 && p->l4len >= 8 && rd16(p->l4 + 6) == 0)
			p->l4_csum_ok = 1;
	} else {
		p->l4_csum_ok = 1;
	}
	if (p->proto == 6 && p->l4len >= 20 && !(p->frag & 0x3fff)) {
		const uint8_t *t = p->l4;
		p->sport = rd16(t); p->dport = rd16(t + 2);
		p->seq = rd32(t + 4); p->ack = rd32(t + 8);
		uint32_t doff = (t[12] >> 4) * 4u;
		p->flags = t[13];
		p->win = rd16(t + 14);
		p->ws = -1;
		for (uint32_t i = 20; i < doff;) {
			uint8_t k = t[i];
			if (k == 0) break;
			if (k == 1) { i++; continue; }
			uint8_t l = t[i + 1];
			if (l < 2) break;
			if (k == 2) p->mss = rd16(t + i + 2);
			if (k == 3) p->ws = t[i + 2];
			if (k == 4) p->sack_perm = 1;
			if (k == 8) { p->has_ts = 1; p->tsval = rd32(t + i + 2); p->tsecr = rd32(t + i + 6); }
			if (k == 5) for (int b = 0; b < (l - 2) / 8 && b < 4; b++) {
				p->sack[b][0] = rd32(t + i + 2 + 8 * b);
				p->sack[b][1] = rd32(t + i + 6 + 8 * b);
				p->nsack++;
			}
			i += l;
		}
		p->data = t + doff;
		p->dlen = p->l4len - doff;
	}
	if (p->proto == 17 && p->l4len >= 8) {
		p->sport = rd16(p->l4); p->dport = rd16(p->l4 + 2);
		p->data = p->l4 + 8;
		p->dlen = p->l4len - 8;
	}
	if (p->proto == 1 && p->l4len >= 8) {
		p->icmp_type = p->l4[0];
		p->icmp_code = p->l4[1];
		p->l4_csum_ok = t_csum(p->l4, p->l4len, 0) == 0;
	}
	return 0;
}

int t_next_proto(struct tenv *e, uint8_t proto, struct tpkt *p)
{
	struct tframe *f;
	while ((f = tnif_next(e->nif))) {
		if (t_parse(f, p) == 0 && p->is_ip && p->proto == proto)
			return 1;
	}
	return 0;
}

int t_next_tcp(struct tenv *e, struct tpkt *p) { return t_next_proto(e, 6, p); }

unsigned t_count_tcp(struct tenv *e)
{
	unsigned n = 0;
	struct tpkt p;
	while (t_next_tcp(e, &p))
		n++;
	return n;
}

/* ---- hand-driven connections ------------------------------------------ */

static uint32_t build_opts(uint8_t *o, int syn, int sack, int ts, int ws, uint16_t mss, uint32_t tsval, uint32_t tsecr)
{
	uint32_t n = 0;
	if (syn) {
		o[n++] = 2; o[n++] = 4; wr16(o + n, mss); n += 2;
		if (ws >= 0) { o[n++] = 1; o[n++] = 3; o[n++] = 3; o[n++] = (uint8_t)ws; }
		if (sack) { o[n++] = 1; o[n++] = 1; o[n++] = 4; o[n++] = 2; }
	}
	if (ts) { o[n++] = 1; o[n++] = 1; o[n++] = 8; o[n++] = 10; wr32(o + n, tsval); wr32(o + n + 4, tsecr); n += 8; }
	return n;
}

int tconn_accept(struct tconn *c, struct tenv *e, uint16_t uport, int sack, int ts, int ws, uint16_t mss)
{
	memset(c, 0, sizeof(*c));
	c->e = e;
	c->pport = 40000;
	c->uport = uport;
	c->sack = sack; c->ts = ts; c->ws = ws;
	c->ts_val = 1000;
	int32_t l = usnet_socket(e->st, USNET_SOCK_STREAM);
	struct usnet_addr a = { .ip = 0, .port = uport };
	if (l < 0 || usnet_bind(e->st, l, &a) || usnet_listen(e->st, l, 8))
		return -1;
	uint8_t f[2048], o[40];
	uint32_t iss = 5000;
	uint32_t ol = build_opts(o, 1, sack, ts, ws, mss, c->ts_val, 0);
	uint32_t n = t_tcp_frame(f, c->pport, uport, iss, 0, 0x02, 65535, o, ol, NULL, 0);
	tenv_input(e, f, n);
	struct tpkt p;
	if (!t_next_tcp(e, &p) || p.flags != 0x12 || p.ack != iss + 1)
		return -2;
	c->pseq = iss + 1;
	c->pack = p.seq + 1;
	tconn_send(c, 0x10, NULL, 0, 65535);
	struct usnet_addr peer;
	c->s = usnet_accept(e->st, &e->io, l, &peer, e->now);
	if (c->s < 0 || peer.ip != T_IP_PEER || peer.port != c->pport)
		return -3;
	tnif_clear(e->nif);
	return 0;
}

void tconn_send_seq(struct tconn *c, uint32_t seq, uint8_t flags, const void *data, uint32_t dlen, uint16_t win)
{
	uint8_t f[2048], o[40];
	uint32_t ol = build_opts(o, 0, 0, c->ts, -1, 0, ++c->ts_val, 0);
	uint32_t n = t_tcp_frame(f, c->pport, c->uport, seq, c->pack, flags, win, o, ol, data, dlen);
	tenv_input(c->e, f, n);
}

void tconn_send(struct tconn *c, uint8_t flags, const void *data, uint32_t dlen, uint16_t win)
{
	tconn_send_seq(c, c->pseq, flags, data, dlen, win);
	c->pseq += dlen + ((flags & 0x01) ? 1 : 0);
}

void tconn_send_sack(struct tconn *c, uint32_t ack, const uint32_t (*blocks)[2], int n, uint16_t win)
{
	uint8_t f[2048], o[40];
	uint32_t ol = build_opts(o, 0, 0, c->ts, -1, 0, ++c->ts_val, 0);
	if (n) {
		o[ol++] = 1; o[ol++] = 1; o[ol++] = 5; o[ol++] = (uint8_t)(2 + 8 * n);
		for (int i = 0; i < n; i++) {
			wr32(o + ol, blocks[i][0]); wr32(o + ol + 4, blocks[i][1]);
			ol += 8;
		}
	}
	uint32_t len = t_tcp_frame(f, c->pport, c->uport, c->pseq, ack, 0x10, win, o, ol, NULL, 0);
	tenv_input(c->e, f, len);
}
