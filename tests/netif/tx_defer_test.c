/*
 * Unit test of the tx defer netif wrapper (src/netif/tx_defer.c), which
 * the native runtime and usnet run's provider use, over a fake netif that counts what reaches it:
 * the stack's per-call flushes must not reach the real netif, the runtime's
 * flush must, and running out of buffers or queueing the bound must flush at
 * once so that nothing waits for ever.  Prints PASS/FAIL lines.
 */
#include <stdio.h>
#include <string.h>

#include "usnet/netif_wrap.h"

struct fake_netif {
	struct usnet_netif base;
	unsigned flushes;      /* flush() calls that reached us */
	unsigned sent;         /* frames taken by tx_burst() */
	unsigned free_bufs;    /* tx buffers left; a flush gives them all back */
	unsigned ring_room;    /* tx ring slots left; a flush empties the ring */
	uint8_t frame[2048];
};

static struct fake_netif *fake(struct usnet_netif *n) { return (struct fake_netif *)n; }

static int f_rx_burst(struct usnet_netif *n, uint16_t q, struct usnet_pkt *p, unsigned max)
{ (void)n; (void)q; (void)p; (void)max; return 0; }
static void f_rx_release(struct usnet_netif *n, uint16_t q, struct usnet_pkt *p, unsigned k)
{ (void)n; (void)q; (void)p; (void)k; }
static int f_tx_alloc(struct usnet_netif *n, uint16_t q, struct usnet_pkt *p, unsigned k)
{
	(void)q;
	unsigned got = k < fake(n)->free_bufs ? k : fake(n)->free_bufs;
	for (unsigned i = 0; i < got; i++)
		p[i] = (struct usnet_pkt){ .data = fake(n)->frame, .id = i };
	fake(n)->free_bufs -= got;
	return (int)got;
}
static int f_tx_burst(struct usnet_netif *n, uint16_t q, struct usnet_pkt *p, unsigned k)
{
	(void)q; (void)p;
	unsigned took = k < fake(n)->ring_room ? k : fake(n)->ring_room;
	fake(n)->ring_room -= took;
	fake(n)->sent += took;
	return (int)took;
}
static void f_tx_free(struct usnet_netif *n, uint16_t q, struct usnet_pkt *p, unsigned k)
{ (void)q; (void)p; fake(n)->free_bufs += k; }
static int f_flush(struct usnet_netif *n, uint16_t q)
{
	(void)q;
	fake(n)->flushes++;
	fake(n)->free_bufs = 8;
	fake(n)->ring_room = 8;
	return 0;
}
static int f_wait_fd(struct usnet_netif *n, uint16_t q) { (void)n; (void)q; return 42; }
static void f_close(struct usnet_netif *n) { (void)n; }

static const struct usnet_netif_ops fake_ops = {
	.rx_burst = f_rx_burst, .rx_release = f_rx_release, .tx_alloc = f_tx_alloc,
	.tx_burst = f_tx_burst, .tx_free = f_tx_free, .flush = f_flush,
	.wait_fd = f_wait_fd, .close = f_close,
};

static int failures;

static void check(const char *name, int ok, const char *why)
{
	if (ok) {
		printf("PASS %s\n", name);
	} else {
		printf("FAIL %s: %s\n", name, why);
		failures++;
	}
}

static void reset(struct fake_netif *f, struct usnet_tx_defer *d, unsigned max_queued)
{
	memset(f, 0, sizeof *f);
	f->base.ops = &fake_ops;
	f->base.info.frame_size = 2048;
	f->free_bufs = 8;
	f->ring_room = 8;
	usnet_tx_defer_init(d, &f->base, max_queued);
}

int main(void)
{
	struct fake_netif f;
	struct usnet_tx_defer d;
	struct usnet_pkt p[16];

	/* The stack's flush after a call only notes one is owed. */
	reset(&f, &d, 64);
	int n = usnet_netif_tx_alloc(&d.base, 0, p, 2);
	int sent = n == 2 ? usnet_netif_tx_burst(&d.base, 0, p, 2) : -1;
	usnet_netif_flush(&d.base, 0);
	check("tx_defer_stack_flush_deferred", sent == 2 && f.sent == 2 && f.flushes == 0,
	      "the stack's flush reached the netif (or the frames did not)");

	/* The runtime's flush reaches the netif, once. */
	usnet_tx_defer_flush(&d, 0);
	check("tx_defer_runtime_flush", f.flushes == 1 && d.queued == 0,
	      "the runtime's flush did not reach the netif exactly once");

	/* Out of buffers: flushed at once (sending gives them back). */
	reset(&f, &d, 64);
	n = usnet_netif_tx_alloc(&d.base, 0, p, 8);
	int more = usnet_netif_tx_alloc(&d.base, 0, p + 8, 4);
	check("tx_defer_alloc_flushes_when_empty", n == 8 && more == 4 && f.flushes == 1,
	      "an allocation that found no buffer did not flush and retry");

	/* Ring full: flushed, and the rest taken. */
	reset(&f, &d, 64);
	n = usnet_netif_tx_burst(&d.base, 0, p, 12);
	check("tx_defer_burst_flushes_when_full", n == 12 && f.sent == 12 && f.flushes == 1,
	      "a burst into a full ring did not flush and take the rest");

	/* The bound: that many queued frames leave without waiting. */
	reset(&f, &d, 3);
	usnet_netif_tx_burst(&d.base, 0, p, 2);
	unsigned before = f.flushes;
	usnet_netif_tx_burst(&d.base, 0, p, 1);
	check("tx_defer_bound_flushes", before == 0 && f.flushes == 1 && d.queued == 0,
	      "reaching max_queued did not flush");

	/* Everything else is the real netif's. */
	reset(&f, &d, 64);
	check("tx_defer_passes_through", usnet_netif_wait_fd(&d.base, 0) == 42 &&
	      d.base.info.frame_size == 2048 && usnet_netif_rx_burst(&d.base, 0, p, 4) == 0,
	      "wait fd, info or rx did not come from the real netif");
	return failures ? 1 : 0;
}
