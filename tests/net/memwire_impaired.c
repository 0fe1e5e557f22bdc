/*
 * Two stack instances joined by an in-process memwire whose second end is
 * wrapped in the impair netif (loss, reordering, duplication, corruption in
 * both directions) move a deterministic pseudo-random byte stream each way
 * over one TCP connection, then close it; every received byte is checked
 * against the stream the other side sent.
 *
 * One thread drives both stacks.  Time is the monotonic clock plus a skew:
 * when nothing moves (every frame in flight was lost and both sides wait for
 * a timer) the skew jumps to the earliest stack deadline, so retransmission
 * timeouts cost no wall-clock time.  Before jumping, the loop waits up to
 * 2 ms of real time for frames the impair wrapper holds back (reordering).
 *
 * Usage: memwire-impaired [MiB] [impair-spec]
 * MEMWIRE_PCAP=FILE in the environment captures the impaired end's frames.
 * Prints one line; exits 0 when both streams arrived intact and closed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "usnet/netif_memwire.h"
#include "usnet/netif_open.h"
#include "usnet/netif_wrap.h"
#include "usnet/stack.h"

#define CHUNK (256u * 1024u)
#define IDLE_REAL_NS 2000000ull                 /* wait for held frames */
#define VIRTUAL_LIMIT_NS (3600ull * 1000000000ull) /* give up after an hour of virtual time */

struct end {
	const char *name;
	struct usnet_netif *nif;
	struct usnet_stack *st;
	struct usnet_io io;
	uint64_t deadline;
	usnet_sock_t s;
	uint64_t tx_seed, rx_seed;       /* the stream sent and the one expected */
	uint64_t sent, received, total;
	uint8_t *tx, *rx, *expect;
	size_t tx_len, tx_off;
	uint64_t tx_base;                /* stream offset of tx[0] */
	int fin_sent, eof, failed;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Bytes [off, off+len) of the stream named by seed. */
static void stream_fill(uint64_t seed, uint64_t off, uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		uint64_t pos = off + i;
		buf[i] = (uint8_t)(splitmix64(seed ^ (pos >> 3) * 0x100000001b3ull) >> ((pos & 7) * 8));
	}
}

static int fail(const char *fmt, const char *a, long b)
{
	printf("FAIL memwire_tcp_impaired: ");
	printf(fmt, a, b);
	printf("\n");
	return 1;
}

static struct usnet_stack *make_stack(struct usnet_netif *nif, uint32_t ip, uint64_t secret)
{
	struct usnet_stack_config cfg;
	usnet_stack_config_init(&cfg);
	memcpy(cfg.mac, nif->info.mac, 6);
	cfg.ip = ip;
	cfg.prefix_len = 24;
	cfg.mtu = nif->info.mtu < 9000 ? nif->info.mtu : 9000;
	cfg.netif_caps = nif->info.caps;
	cfg.max_sockets = 8;
	cfg.sndbuf = 1u << 20;
	cfg.rcvbuf = 1u << 20;
	cfg.buffer_bytes = 16u << 20;
	cfg.secret[0] = secret;
	cfg.secret[1] = ~secret;
	size_t size = (usnet_stack_mem_size(&cfg) + 4095) & ~(size_t)4095;
	void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return NULL;
	return usnet_stack_create(mem, size, &cfg);
}

/* Frames in, timers.  Returns frames handled. */
static int pump(struct end *e, uint64_t now)
{
	struct usnet_pkt pkts[64];
	int total = 0, n;

	while ((n = usnet_netif_rx_burst(e->nif, 0, pkts, 64)) > 0) {
		usnet_stack_input(e->st, &e->io, pkts, (unsigned)n, now);
		usnet_netif_rx_release(e->nif, 0, pkts, (unsigned)n);
		total += n;
	}
	e->deadline = usnet_stack_poll(e->st, &e->io, now);
	usnet_netif_flush(e->nif, 0);
	return total;
}

/* Move application data both ways.  Returns 1 when something moved. */
static int step(struct end *e, uint64_t now)
{
	int moved = 0;

	for (;;) {
		long n = usnet_recv(e->st, &e->io, e->s, e->rx, CHUNK, 0, now);
		if (n == -USNET_EAGAIN)
			break;
		if (n < 0) {
			struct usnet_tcp_info ti = { 0 };
			usnet_tcp_info(e->st, e->s, &ti);
			fail("%s: receive: error %ld", e->name, -n);
			printf("  %s: sent %llu received %llu; state %u unacked %u cwnd %u snd_wnd %u rto %u us "
			       "backoffs %u retransmitted %llu\n", e->name,
			       (unsigned long long)e->sent, (unsigned long long)e->received, ti.state,
			       ti.unacked, ti.cwnd, ti.snd_wnd, ti.rto_us, ti.retransmits,
			       (unsigned long long)ti.total_retrans);
			struct usnet_stack_stats ss;
			usnet_stack_stats(e->st, &ss);
			printf("  %s: stack rx %llu tx %llu frames, tx_no_buffer %llu, tcp csum drops %llu, "
			       "tcp no buffer %llu, buffers in use %llu of %llu\n", e->name,
			       (unsigned long long)ss.rx_frames, (unsigned long long)ss.tx_frames,
			       (unsigned long long)ss.tx_no_buffer, (unsigned long long)ss.tcp_drop_csum,
			       (unsigned long long)ss.tcp_drop_nobuf, (unsigned long long)ss.buffers_in_use,
			       (unsigned long long)ss.buffers_total);
			e->failed = 1;
			return 0;
		}
		if (n == 0) {
			e->eof = 1;
			moved = 1;
			break;
		}
		stream_fill(e->rx_seed, e->received, e->expect, (size_t)n);
		if (memcmp(e->rx, e->expect, (size_t)n)) {
			fail("%s: received bytes differ from those sent, near offset %ld", e->name, (long)e->received);
			e->failed = 1;
			return 0;
		}
		e->received += (uint64_t)n;
		moved = 1;
	}
	while (e->sent < e->total) {
		if (e->tx_off == e->tx_len) {
			e->tx_base = e->sent;
			e->tx_len = e->total - e->sent < CHUNK ? (size_t)(e->total - e->sent) : CHUNK;
			e->tx_off = 0;
			stream_fill(e->tx_seed, e->tx_base, e->tx, e->tx_len);
		}
		long n = usnet_send(e->st, &e->io, e->s, e->tx + e->tx_off, e->tx_len - e->tx_off, 0, now);
		if (n == -USNET_EAGAIN)
			break;
		if (n < 0) {
			fail("%s: send: error %ld", e->name, -n);
			e->failed = 1;
			return 0;
		}
		e->tx_off += (size_t)n;
		e->sent += (uint64_t)n;
		moved = 1;
	}
	if (e->sent == e->total && !e->fin_sent) {
		usnet_shutdown(e->st, &e->io, e->s, 1, now);
		e->fin_sent = 1;
		moved = 1;
	}
	return moved;
}

static int closed_state(struct end *e)
{
	struct usnet_tcp_info ti;
	if (usnet_tcp_info(e->st, e->s, &ti) < 0)
		return 1;
	return ti.state == USNET_TCP_TIME_WAIT || ti.state == USNET_TCP_CLOSED;
}

int main(int argc, char **argv)
{
	uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 64;
	const char *spec = argc > 2 ? argv[2] : "loss=0.05,reorder=0.05,dup=0.02,corrupt=0.01,seed=11";
	struct usnet_netif *ends[2], *impaired;
	char err[256];
	struct end a = { .name = "server", .tx_seed = 0xa, .rx_seed = 0xb },
		   b = { .name = "client", .tx_seed = 0xb, .rx_seed = 0xa };

	if (mib == 0 || mib > 4096)
		return fail("bad size %s%ld MiB", "", (long)mib);
	if (usnet_memwire_pair(ends, "nowake", err, sizeof err) < 0)
		return fail("memwire: %s%.0ld", err, 0);
	if (usnet_impair_wrap(ends[1], spec, &impaired, err, sizeof err) < 0)
		return fail("impair: %s%.0ld", err, 0);
	a.nif = ends[0];
	b.nif = impaired;
	/* MEMWIRE_PCAP=FILE: capture the impaired end (what its stack sees). */
	if (getenv("MEMWIRE_PCAP") &&
	    usnet_pcap_wrap(impaired, getenv("MEMWIRE_PCAP"), &b.nif, err, sizeof err) < 0)
		return fail("pcap: %s%.0ld", err, 0);
	a.st = make_stack(a.nif, 0x0a3dc901u, 0x1234);   /* 10.61.201.1 */
	b.st = make_stack(b.nif, 0x0a3dc902u, 0x5678);   /* 10.61.201.2 */
	if (!a.st || !b.st)
		return fail("cannot create the stacks%s%.0ld", "", 0);
	a.io.netif = a.nif;
	b.io.netif = b.nif;
	a.total = b.total = mib << 20;
	a.tx = malloc(CHUNK); a.rx = malloc(CHUNK); a.expect = malloc(CHUNK);
	b.tx = malloc(CHUNK); b.rx = malloc(CHUNK); b.expect = malloc(CHUNK);
	if (!a.tx || !a.rx || !a.expect || !b.tx || !b.rx || !b.expect)
		return fail("out of memory%s%.0ld", "", 0);

	uint64_t skew = 0, start = mono_ns(), now = start;
	usnet_sock_t ls = usnet_socket(a.st, USNET_SOCK_STREAM);
	struct usnet_addr srv = { .ip = 0x0a3dc901u, .port = 5000 };
	long r;
	if (ls < 0 || (r = usnet_bind(a.st, ls, &srv)) < 0 || (r = usnet_listen(a.st, ls, 1)) < 0)
		return fail("listen%s: error %ld", "", ls < 0 ? -ls : -r);
	b.s = usnet_socket(b.st, USNET_SOCK_STREAM);
	r = usnet_connect(b.st, &b.io, b.s, &srv, now);
	if (b.s < 0 || (r < 0 && r != -USNET_EINPROGRESS))
		return fail("connect%s: error %ld", "", -r);

	a.s = -1;
	uint64_t idle_since = 0;
	int connected = 0;
	for (;;) {
		now = mono_ns() + skew;
		int moved = pump(&a, now) + pump(&b, now);
		if (!connected) {
			struct usnet_addr peer;
			int s = usnet_accept(a.st, &a.io, ls, &peer, now);
			if (s >= 0 && (usnet_sock_events(b.st, b.s) & USNET_EV_OUT)) {
				a.s = s;
				connected = 1;
			} else if (s >= 0) {
				a.s = s;
			}
			if (a.s >= 0 && (usnet_sock_events(b.st, b.s) & USNET_EV_OUT))
				connected = 1;
			if (usnet_sock_events(b.st, b.s) & USNET_EV_ERR)
				return fail("connect failed%s (events %ld)", "", (long)usnet_sock_events(b.st, b.s));
		}
		if (connected) {
			moved += step(&a, now) + step(&b, now);
			if (a.failed || b.failed)
				return 1;
			if (a.eof && b.eof && a.fin_sent && b.fin_sent && closed_state(&a) && closed_state(&b))
				break;
		}
		usnet_netif_flush(a.nif, 0);
		usnet_netif_flush(b.nif, 0);
		if (now - start > VIRTUAL_LIMIT_NS)
			return fail("no progress: %s received %ld bytes after an hour of virtual time",
				    "server", (long)a.received);
		if (moved) {
			idle_since = 0;
			continue;
		}
		uint64_t real = mono_ns();
		if (!idle_since)
			idle_since = real;
		if (real - idle_since < IDLE_REAL_NS)
			continue;
		/* Nothing in flight and nothing held: skip to the next timer. */
		uint64_t next = a.deadline < b.deadline ? a.deadline : b.deadline;
		if (next == UINT64_MAX)
			return fail("stalled: no timer pending, %s got %ld bytes", "server", (long)a.received);
		if (next > now)
			skew += next - now;
		idle_since = 0;
	}

	struct usnet_tcp_info ia, ib;
	struct usnet_impair_stats is[2];
	usnet_tcp_info(a.st, a.s, &ia);
	usnet_tcp_info(b.st, b.s, &ib);
	usnet_impair_stats(impaired, is);
	if (a.received != b.total || b.received != a.total)
		return fail("short transfer%s: %ld bytes", "", (long)(a.received + b.received));
	if (is[0].lost + is[1].lost == 0 || is[0].corrupted + is[1].corrupted == 0 ||
	    is[0].duplicated + is[1].duplicated == 0 || is[0].reordered + is[1].reordered == 0)
		return fail("the impair wrapper did not impair (%s) %ld frames lost", spec,
			    (long)(is[0].lost + is[1].lost));
	printf("PASS memwire_tcp_%lluMiB_each_way_impaired (%s: %llu lost, %llu reordered, %llu duplicated, "
	       "%llu corrupted; %llu+%llu segments retransmitted; %.1f s real, %.1f s virtual)\n",
	       (unsigned long long)mib, spec,
	       (unsigned long long)(is[0].lost + is[1].lost),
	       (unsigned long long)(is[0].reordered + is[1].reordered),
	       (unsigned long long)(is[0].duplicated + is[1].duplicated),
	       (unsigned long long)(is[0].corrupted + is[1].corrupted),
	       (unsigned long long)ia.total_retrans, (unsigned long long)ib.total_retrans,
	       (double)(mono_ns() - start) / 1e9, (double)(now - start) / 1e9);
	usnet_netif_close(b.nif);
	usnet_netif_close(a.nif);
	free(a.tx); free(a.rx); free(a.expect);
	free(b.tx); free(b.rx); free(b.expect);
	return 0;
}
