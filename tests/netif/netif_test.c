/*
 * Test driver for the netif backends and wrappers.  Each subcommand runs one
 * check and exits 0 on success, non-zero with a reason on stderr:
 *
 *   pair                    memwire in one process: all sizes, order, ring
 *                           full, wake-ups (and none on the fast path)
 *   threads [N]             memwire between a sending and a sleeping thread
 *   fork                    memwire end used by a forked child, then the parent
 *   proc NAME SIDE COUNT    memwire across processes (run SIDE 0 and 1)
 *   impair-trace SPEC N     print a digest of what arrives through impair
 *   impair-rates            rates within tolerance over many frames
 *   impair-bad SPEC         exits 0 if SPEC is rejected with a message
 *   pcap FILE               write known frames through the pcap wrapper
 *   open-errors             usnet_netif_open() rejects bad configurations
 *   spec-fuzz [N]           random impair specs: accepted in range or rejected
 *   toeplitz                RSS hash against published values
 *   flowq BACKEND IFACE OPTS MYIP QUEUES COUNT
 *                           UDP flows land where usnet_netif_flow_queue() says
 *   burst BACKEND IFACE OPTS MYIP PEERIP COUNT
 *                           COUNT UDP frames in bursts of 64, one flush each
 *   ping BACKEND IFACE OPTS MYIP PEERIP
 *                           ARP + ICMP echo to a kernel at PEERIP
 *   fill-short afxdp IFACE OPTS MYIP PEERIP
 *                           every rx frame released while the fill ring
 *                           looks full: kept, then all back, none twice
 *   share BACKEND IFACE OPTS MYIP PEERIP COUNT
 *                           the netif shared with an exec'd process (below,
 *                           "attached"): both ping PEERIP (the kernel, or a
 *                           reflector on the other end of a memwire pair when
 *                           IFACE is "pair") on the same queue, taking turns
 *                           under a process-shared lock; then the owner goes
 *                           on alone, closes, and the device must be released
 *   share-errors            a share that does not fit is refused with one
 *                           line and its fds closed
 *   attached SOCK PAGE MYIP PEERIP PEERMAC COUNT
 *                           (run by share) receive the netif on fd SOCK,
 *                           attach, ping under the lock in the memfd PAGE
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <time.h>
#include <fcntl.h>
#include <net/if.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/if_xdp.h>

#include "usnet/netif.h"
#include "usnet/netif_memwire.h"
#include "usnet/netif_open.h"
#include "usnet/netif_share.h"
#include "usnet/netif_wrap.h"
#include "../../src/netif/impair_spec.h" /* white-box: the spec parser */

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A test frame: seq in bytes 14..17, length-dependent pattern after. */
static void fill_frame(uint8_t *p, uint32_t len, uint32_t seq)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seq * 31 + i * 7);
	if (len >= 18)
		memcpy(p + 14, &seq, 4);
}

static int check_frame(const uint8_t *p, uint32_t len, uint32_t seq)
{
	uint8_t expect[65536];
	fill_frame(expect, len, seq);
	return memcmp(p, expect, len) == 0;
}

static int send_one(struct usnet_netif *nif, uint32_t len, uint32_t seq, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	struct usnet_pkt p;
	while (usnet_netif_tx_alloc(nif, 0, &p, 1) != 1) {
		if (now_ms() > end)
			return -1;
		usleep(100);
	}
	fill_frame(p.data, len, seq);
	p.len = len;
	while (usnet_netif_tx_burst(nif, 0, &p, 1) != 1) {
		if (now_ms() > end) {
			usnet_netif_tx_free(nif, 0, &p, 1);
			return -1;
		}
		usleep(100);
	}
	usnet_netif_flush(nif, 0);
	return 0;
}

/* Frame length for sequence number i: every size from 18 to max, cycling. */
static uint32_t len_for(uint32_t i, uint32_t max)
{
	return 18 + i % (max - 18 + 1);
}

/* ---- memwire in one process ------------------------------------------- */

struct sleeper {
	struct usnet_netif *nif;
	int woke;      /* 1 woke with a frame, 0 timed out */
};

static void *sleeper_main(void *arg)
{
	struct sleeper *s = arg;
	struct usnet_pkt p;
	/* Empty poll arms the wake-up; then sleep on the fd. */
	if (usnet_netif_rx_burst(s->nif, 0, &p, 1) != 0)
		return NULL;
	struct pollfd pfd = { usnet_netif_wait_fd(s->nif, 0), POLLIN, 0 };
	if (poll(&pfd, 1, 3000) == 1 && usnet_netif_rx_burst(s->nif, 0, &p, 1) == 1) {
		s->woke = 1;
		usnet_netif_rx_release(s->nif, 0, &p, 1);
	}
	return NULL;
}

static void test_pair(const char *opts)
{
	struct usnet_netif *e[2];
	char err[256];
	if (usnet_memwire_pair(e, opts, err, sizeof err))
		die("pair: %s", err);
	uint32_t fs = e[0]->info.frame_size;
	if (e[0]->info.nqueues != 1 || !(e[0]->info.caps & USNET_NETIF_CAP_TX_CSUM) ||
	    !memcmp(e[0]->info.mac, e[1]->info.mac, 6))
		die("pair: bad info");

	/* Every size, in order, in batches of 32, both directions. */
	for (int dir = 0; dir < 2; dir++) {
		struct usnet_netif *tx = e[dir], *rx = e[1 - dir];
		/* Small frames: every size; big ones: 3000 sizes spread over
		 * the range, starting with the largest. */
		uint32_t total = fs <= 4096 ? fs - 18 + 1 + 100 : 3000, sent = 0, got = 0;
		uint32_t stride = fs <= 4096 ? 1 : 97;
		while (got < total) {
			struct usnet_pkt p[32];
			unsigned want = total - sent < 32 ? total - sent : 32;
			int a = usnet_netif_tx_alloc(tx, 0, p, want);
			for (int i = 0; i < a; i++) {
				p[i].len = len_for((sent + (uint32_t)i) * stride + (stride > 1 ? fs - 18 : 0), fs);
				fill_frame(p[i].data, p[i].len, sent + (uint32_t)i);
			}
			int t = a > 0 ? usnet_netif_tx_burst(tx, 0, p, (unsigned)a) : 0;
			if (t < 0)
				die("pair: tx_burst %d", t);
			if (t < a)
				usnet_netif_tx_free(tx, 0, p + t, (unsigned)(a - t));
			sent += (uint32_t)t;
			int r = usnet_netif_rx_burst(rx, 0, p, 32);
			for (int i = 0; i < r; i++, got++) {
				if (p[i].len != len_for(got * stride + (stride > 1 ? fs - 18 : 0), fs) ||
				    !check_frame(p[i].data, p[i].len, got))
					die("pair: frame %u (len %u) damaged or out of order", got, p[i].len);
			}
			if (r > 0)
				usnet_netif_rx_release(rx, 0, p, (unsigned)r);
		}
	}

	/* Ring full: without a receiver, tx_burst eventually takes fewer. */
	{
		struct usnet_pkt p[64];
		int total = 0, shorter = 0;
		for (int round = 0; round < 200 && !shorter; round++) {
			int a = usnet_netif_tx_alloc(e[0], 0, p, 64);
			if (a <= 0)
				break;
			for (int i = 0; i < a; i++)
				p[i].len = 60;
			int t = usnet_netif_tx_burst(e[0], 0, p, (unsigned)a);
			if (t < a) {
				shorter = 1;
				usnet_netif_tx_free(e[0], 0, p + t, (unsigned)(a - t));
			}
			total += t;
		}
		if (!shorter)
			die("pair: tx_burst never took fewer with a full ring (%d sent)", total);
		/* Drain: the wire works again afterwards. */
		int drained = 0, r;
		while ((r = usnet_netif_rx_burst(e[1], 0, p, 64)) > 0) {
			usnet_netif_rx_release(e[1], 0, p, (unsigned)r);
			drained += r;
		}
		if (drained != total)
			die("pair: sent %d into a full ring, received %d", total, drained);
		if (send_one(e[0], 100, 5, 1000))
			die("pair: cannot send after the ring drained");
		if (usnet_netif_rx_burst(e[1], 0, p, 1) != 1 || !check_frame(p[0].data, 100, 5))
			die("pair: frame after drain missing");
		usnet_netif_rx_release(e[1], 0, p, 1);
	}

	/* Bad frames are refused with an error, not taken. */
	{
		struct usnet_pkt p;
		if (usnet_netif_tx_alloc(e[0], 0, &p, 1) != 1)
			die("pair: no buffer");
		p.len = fs + 1;
		if (usnet_netif_tx_burst(e[0], 0, &p, 1) != -EMSGSIZE)
			die("pair: oversized frame not refused with EMSGSIZE");
		usnet_netif_tx_free(e[0], 0, &p, 1);
	}

	/* Checksum offload: PARTIAL in, RX_CSUM_OK out. */
	{
		struct usnet_pkt p;
		usnet_netif_tx_alloc(e[0], 0, &p, 1);
		fill_frame(p.data, 80, 9);
		p.len = 80;
		p.flags = USNET_PKT_TX_CSUM_PARTIAL;
		p.csum_start = 34;
		p.csum_offset = 16;
		usnet_netif_tx_burst(e[0], 0, &p, 1);
		if (usnet_netif_rx_burst(e[1], 0, &p, 1) != 1 || !(p.flags & USNET_PKT_RX_CSUM_OK) ||
		    p.csum_start != 34 || p.csum_offset != 16)
			die("pair: offloaded checksum not reported as RX_CSUM_OK");
		usnet_netif_rx_release(e[1], 0, &p, 1);
	}

	/* Fast path: a receiver that is busy (its last poll found frames) is
	 * not signalled. */
	{
		struct usnet_pkt p;
		send_one(e[0], 60, 1, 1000);
		if (usnet_netif_rx_burst(e[1], 0, &p, 1) != 1)
			die("pair: frame missing");
		usnet_netif_rx_release(e[1], 0, &p, 1);
		send_one(e[0], 60, 2, 1000);
		struct pollfd pfd = { usnet_netif_wait_fd(e[1], 0), POLLIN, 0 };
		if (poll(&pfd, 1, 0) != 0)
			die("pair: wait fd signalled although the receiver was not sleeping");
		if (usnet_netif_rx_burst(e[1], 0, &p, 1) != 1)
			die("pair: frame missing");
		usnet_netif_rx_release(e[1], 0, &p, 1);
	}

	/* A sleeper on the wait fd wakes when a frame comes. */
	{
		struct sleeper s = { e[1], 0 };
		pthread_t th;
		pthread_create(&th, NULL, sleeper_main, &s);
		usleep(100 * 1000);
		send_one(e[0], 64, 3, 1000);
		pthread_join(th, NULL);
		if (!s.woke)
			die("pair: sleeper did not wake");
	}
	usnet_netif_close(e[0]);
	usnet_netif_close(e[1]);
}

/* ---- memwire between two threads ---------------------------------------- */

struct thread_rx {
	struct usnet_netif *nif;
	uint32_t count, sleeps;
	const char *fail;
};

/* Receive count numbered frames, sleeping on the wait fd whenever the wire
 * is empty: a lost wake-up shows as a 5 s stall. */
static void *thread_rx_main(void *arg)
{
	struct thread_rx *t = arg;
	uint32_t got = 0;
	while (got < t->count) {
		struct usnet_pkt p[64];
		int r = usnet_netif_rx_burst(t->nif, 0, p, 64);
		for (int i = 0; i < r; i++, got++) {
			uint32_t seq;
			memcpy(&seq, p[i].data + 14, 4);
			if (seq != got || p[i].len != 60 + got % 200) {
				t->fail = "frame damaged or out of order";
				return NULL;
			}
		}
		if (r > 0) {
			usnet_netif_rx_release(t->nif, 0, p, (unsigned)r);
			continue;
		}
		struct pollfd pfd = { usnet_netif_wait_fd(t->nif, 0), POLLIN, 0 };
		if (poll(&pfd, 1, 5000) == 0) {
			t->fail = "receiver slept 5 s with frames on the way (lost wake-up)";
			return NULL;
		}
		t->sleeps++;
	}
	return NULL;
}

static void test_threads(uint32_t count)
{
	struct usnet_netif *e[2];
	char err[256];
	if (usnet_memwire_pair(e, NULL, err, sizeof err))
		die("threads: %s", err);
	struct thread_rx t = { e[1], count, 0, NULL };
	pthread_t th;
	pthread_create(&th, NULL, thread_rx_main, &t);
	uint32_t sent = 0;
	uint64_t end = now_ms() + 20000;
	while (sent < count && !t.fail && now_ms() < end) {
		struct usnet_pkt p[32];
		unsigned want = count - sent < 32 ? count - sent : 32;
		int a = usnet_netif_tx_alloc(e[0], 0, p, want);
		for (int i = 0; i < a; i++) {
			uint32_t seq = sent + (uint32_t)i;
			p[i].len = 60 + seq % 200;
			memcpy(p[i].data + 14, &seq, 4);
		}
		int k = a > 0 ? usnet_netif_tx_burst(e[0], 0, p, (unsigned)a) : 0;
		if (k < a)
			usnet_netif_tx_free(e[0], 0, p + k, (unsigned)(a - k));
		sent += (uint32_t)(k > 0 ? k : 0);
	}
	pthread_join(th, NULL);
	if (t.fail)
		die("threads: %s", t.fail);
	if (sent < count)
		die("threads: sender stuck at %u of %u", sent, count);
	printf("threads: %u frames, receiver slept %u times\n", count, t.sleeps);
	usnet_netif_close(e[0]);
	usnet_netif_close(e[1]);
}

/* ---- memwire shared with a forked child -------------------------------- */

/* Send count frames through tx and receive them on rx, checking each. */
static void pump(struct usnet_netif *tx, struct usnet_netif *rx, uint32_t count, uint32_t base)
{
	uint32_t got = 0;
	uint64_t end = now_ms() + 10000;
	for (uint32_t i = 0; i < count || got < count;) {
		if (i < count && send_one(tx, 60 + i % 500, base + i, 1000) == 0)
			i++;
		struct usnet_pkt p[32];
		int r = usnet_netif_rx_burst(rx, 0, p, 32);
		for (int k = 0; k < r; k++, got++)
			if (p[k].len != 60 + got % 500 || !check_frame(p[k].data, p[k].len, base + got))
				die("fork: frame %u damaged", got);
		if (r > 0)
			usnet_netif_rx_release(rx, 0, p, (unsigned)r);
		if (now_ms() > end)
			die("fork: stuck at %u/%u", got, count);
	}
}

static void test_fork(void)
{
	struct usnet_netif *e[2];
	char err[256];
	if (usnet_memwire_pair(e, NULL, err, sizeof err))
		die("fork: %s", err);
	if (!(e[0]->info.caps & USNET_NETIF_CAP_SHARED))
		die("fork: memwire does not claim CAP_SHARED");
	/* The child transmits on end 0 (more frames than buffers), the parent
	 * receives; then the parent transmits on the same end: its view of
	 * end 0 must include what the child did. */
	pid_t pid = fork();
	if (pid == 0) {
		for (uint32_t i = 0; i < 5000; i++)
			if (send_one(e[0], 60 + i % 500, i, 5000))
				_exit(2);
		_exit(0);
	}
	uint32_t got = 0;
	uint64_t end = now_ms() + 10000;
	while (got < 5000 && now_ms() < end) {
		struct usnet_pkt p[32];
		int r = usnet_netif_rx_burst(e[1], 0, p, 32);
		for (int k = 0; k < r; k++, got++)
			if (p[k].len != 60 + got % 500 || !check_frame(p[k].data, p[k].len, got))
				die("fork: frame %u from the child damaged", got);
		if (r > 0)
			usnet_netif_rx_release(e[1], 0, p, (unsigned)r);
	}
	int st;
	waitpid(pid, &st, 0);
	if (got != 5000 || !WIFEXITED(st) || WEXITSTATUS(st))
		die("fork: received %u of 5000 from the child (status %d)", got, st);
	pump(e[0], e[1], 5000, 7);
	usnet_netif_close(e[0]);
	usnet_netif_close(e[1]);
}

/* ---- memwire across processes ----------------------------------------- */

static void test_proc(const char *name, int side, uint32_t count, const char *opts)
{
	char iface[128], err[256];
	snprintf(iface, sizeof iface, "%s:%d", name, side);
	struct usnet_netif_config cfg = { .backend = "memwire", .iface = iface, .options = opts };
	struct usnet_netif *nif;
	if (usnet_netif_open(&cfg, &nif, err, sizeof err))
		die("proc side %d: %s", side, err);
	uint32_t fs = nif->info.frame_size;
	uint64_t end = now_ms() + 20000;
	if (side == 0) {
		for (uint32_t i = 0; i < count; i++)
			if (send_one(nif, len_for(i * 13, fs), i, 10000))
				die("proc: sender stuck at frame %u", i);
		/* Wait for the receiver's answer, sleeping on the wait fd. */
		for (;;) {
			struct usnet_pkt p;
			int r = usnet_netif_rx_burst(nif, 0, &p, 1);
			if (r == 1) {
				if (p.len != 64 || !check_frame(p.data, 64, count))
					die("proc: bad answer");
				usnet_netif_rx_release(nif, 0, &p, 1);
				break;
			}
			struct pollfd pfd = { usnet_netif_wait_fd(nif, 0), POLLIN, 0 };
			poll(&pfd, 1, 100);
			if (now_ms() > end)
				die("proc: no answer");
		}
	} else {
		uint32_t got = 0;
		unsigned sleeps = 0;
		while (got < count) {
			struct usnet_pkt p[32];
			int r = usnet_netif_rx_burst(nif, 0, p, 32);
			if (r < 0)
				die("proc: rx_burst %d", r);
			for (int i = 0; i < r; i++, got++)
				if (p[i].len != len_for(got * 13, fs) || !check_frame(p[i].data, p[i].len, got))
					die("proc: frame %u damaged or out of order", got);
			if (r > 0) {
				usnet_netif_rx_release(nif, 0, p, (unsigned)r);
				continue;
			}
			/* Sleep with a long timeout: only a wake-up gets us out
			 * in time. */
			struct pollfd pfd = { usnet_netif_wait_fd(nif, 0), POLLIN, 0 };
			poll(&pfd, 1, 5000);
			sleeps++;
			if (now_ms() > end)
				die("proc: stuck after %u of %u frames", got, count);
		}
		if (send_one(nif, 64, count, 5000))
			die("proc: cannot answer");
		fprintf(stderr, "proc: %u frames, %u sleeps\n", got, sleeps);
		usleep(200 * 1000); /* let the sender read the answer before the wire goes */
	}
	usnet_netif_close(nif);
}

/* ---- impair ------------------------------------------------------------ */

/* Send n numbered frames from a through impair (spec on side b's rx and a's
 * tx as given), collect what b receives, and print a digest of the
 * multiset of arrivals plus the stats. */
static void impair_run(const char *spec, uint32_t n, int quiet, struct usnet_impair_stats st[2],
		       uint32_t *arrived, uint32_t *distinct, uint32_t *damaged)
{
	struct usnet_netif *e[2], *w;
	char err[256];
	if (usnet_memwire_pair(e, "nowake", err, sizeof err))
		die("impair: %s", err);
	if (usnet_impair_wrap(e[1], spec, &w, err, sizeof err))
		die("impair: %s", err);
	uint64_t h = 1469598103934665603ull;
	uint8_t *seen = calloc(n, 1);
	uint32_t got = 0, uniq = 0, bad = 0;
	uint64_t end = now_ms() + 20000;
	for (uint32_t i = 0; i < n || now_ms() < end;) {
		if (i < n) {
			struct usnet_pkt p[16];
			unsigned want = n - i < 16 ? n - i : 16;
			int a = usnet_netif_tx_alloc(e[0], 0, p, want);
			for (int k = 0; k < a; k++) {
				p[k].len = 60 + (i + (uint32_t)k) % 200;
				fill_frame(p[k].data, p[k].len, i + (uint32_t)k);
			}
			int t = a > 0 ? usnet_netif_tx_burst(e[0], 0, p, (unsigned)a) : 0;
			if (t < a)
				usnet_netif_tx_free(e[0], 0, p + t, (unsigned)(a - t));
			i += (uint32_t)(t > 0 ? t : 0);
		}
		struct usnet_pkt p[32];
		int r = usnet_netif_rx_burst(w, 0, p, 32);
		for (int k = 0; k < r; k++) {
			uint32_t seq;
			memcpy(&seq, p[k].data + 14, 4);
			got++;
			if (seq >= n || p[k].len != 60 + seq % 200 || !check_frame(p[k].data, p[k].len, seq)) {
				bad++;
				seq = 0xffffffff;
			} else if (!seen[seq]) {
				seen[seq] = 1;
				uniq++;
			}
			/* Order-independent: reordering releases on time too, so
			 * arrival order may vary; which frames arrive may not. */
			uint64_t x = (seq + 1) * 0x9e3779b97f4a7c15ull;
			h += x ^ (x >> 29);
		}
		if (r > 0)
			usnet_netif_rx_release(w, 0, p, (unsigned)r);
		if (i >= n && r == 0) {
			/* Held frames fall due within ~1 ms plus any delay. */
			struct pollfd pfd = { usnet_netif_wait_fd(w, 0), POLLIN, 0 };
			if (poll(&pfd, 1, 50) == 0)
				break;
		}
	}
	usnet_impair_stats(w, st);
	if (!quiet)
		printf("digest %016" PRIx64 " arrived %u distinct %u damaged %u lost %" PRIu64
		       " dup %" PRIu64 " reorder %" PRIu64 " corrupt %" PRIu64 "\n",
		       h, got, uniq, bad, st[0].lost, st[0].duplicated, st[0].reordered, st[0].corrupted);
	*arrived = got;
	*distinct = uniq;
	*damaged = bad;
	free(seen);
	usnet_netif_close(w);
	usnet_netif_close(e[0]);
}

static void test_impair_rates(void)
{
	const uint32_t n = 40000;
	struct usnet_impair_stats st[2];
	uint32_t got, uniq, bad;
	impair_run("rx:loss=0.05,rx:dup=0.03,rx:corrupt=0.02,rx:reorder=0.04,seed=11", n, 1, st,
		   &got, &uniq, &bad);
	double f = n;
	struct { const char *what; double rate, want; } r[] = {
		{ "loss", st[0].lost / f, 0.05 },
		{ "dup", st[0].duplicated / f, 0.03 * 0.95 },
		{ "corrupt", st[0].corrupted / f, 0.02 * 0.95 },
		{ "reorder", st[0].reordered / f, 0.04 * 0.95 },
	};
	for (unsigned i = 0; i < sizeof r / sizeof r[0]; i++)
		if (r[i].rate < r[i].want * 0.85 || r[i].rate > r[i].want * 1.15)
			die("impair: %s rate %.4f, want about %.4f", r[i].what, r[i].rate, r[i].want);
	/* What arrives matches what impair says it did. */
	uint32_t expect = n - (uint32_t)st[0].lost + (uint32_t)st[0].duplicated;
	if (got != expect)
		die("impair: %u frames arrived, expected %u", got, expect);
	if (bad < st[0].corrupted * 0.9 || bad > st[0].corrupted * 1.1 + 5)
		die("impair: %u damaged frames arrived, %" PRIu64 " corrupted", bad, st[0].corrupted);
	if (uniq + st[0].lost < n * 0.97)
		die("impair: only %u distinct frames arrived", uniq);
	/* tx side too, with delay: everything arrives, late. */
	impair_run("rx:delay=20ms", 200, 1, st, &got, &uniq, &bad);
	if (got != 200 || uniq != 200 || bad)
		die("impair: delay lost frames (%u arrived)", got);
	printf("rates ok: loss %.4f dup %.4f corrupt %.4f reorder %.4f\n", r[0].rate, r[1].rate,
	       r[2].rate, r[3].rate);
}

/* Random specs from the grammar's pieces: every one is either accepted with
 * values in range or rejected with a message, never a crash (run under
 * ASan/UBSan). */
static void test_spec_fuzz(uint32_t n)
{
	static const char *const piece[] = {
		"loss", "reorder", "dup", "corrupt", "delay", "seed", "rx:", "tx:", "xx:", "=", ",", ":",
		"0", "1", "0.5", "2", "-1", "1e308", "nan", "inf", "%", "ms", "us", "s", "ns", "0x10",
		"", " ", "=,", ",,", "99999999999999999999", "1.0000001", "0.02", "5%",
	};
	uint64_t x = 88172645463325252ull;
	uint32_t ok = 0;
	for (uint32_t i = 0; i < n; i++) {
		char spec[256] = "";
		const size_t np = sizeof piece / sizeof piece[0];
		if (i & 1) {
			/* Free-form: any pieces in any order. */
			int parts = 1 + (int)(i % 9);
			for (int k = 0; k < parts; k++) {
				x ^= x << 13; x ^= x >> 7; x ^= x << 17;
				strncat(spec, piece[x % np], sizeof spec - strlen(spec) - 1);
			}
		} else {
			/* Shaped like the grammar: [DIR]KEY=VALUE[UNIT], ... */
			int items = 1 + (int)(i % 5);
			for (int k = 0; k < items; k++) {
				x ^= x << 13; x ^= x >> 7; x ^= x << 17;
				char item[64];
				snprintf(item, sizeof item, "%s%s%s=%s%s", k ? "," : "", x % 3 == 0 ? piece[6 + x % 2] : "",
					 piece[(x >> 8) % 6], piece[12 + (x >> 16) % 14], (x >> 24) % 4 ? "" : piece[20 + (x >> 28) % 5]);
				strncat(spec, item, sizeof spec - strlen(spec) - 1);
			}
		}
		struct impair_spec sp;
		char err[256] = "";
		int r = impair_spec_parse(spec, &sp, err, sizeof err);
		if (r == 0) {
			ok++;
			for (int d = 0; d < 2; d++) {
				const struct impair_dir_spec *ds = &sp.dir[d];
				if (!(ds->loss >= 0 && ds->loss <= 1 && ds->dup >= 0 && ds->dup <= 1 &&
				      ds->reorder >= 0 && ds->reorder <= 1 && ds->corrupt >= 0 && ds->corrupt <= 1 &&
				      ds->delay_ns <= 60000000000ull))
					die("spec '%s' accepted with a value out of range", spec);
			}
		} else if (r != -EINVAL || !err[0] || strchr(err, '\n')) {
			die("spec '%s': got %d '%s'", spec, r, err);
		}
	}
	printf("spec fuzz: %u specs, %u accepted\n", n, ok);
}

/* Delay: a frame sent through tx:delay=30ms arrives no sooner, and a sleeper
 * on the wait fd wakes for it. */
static void test_impair_delay(void)
{
	struct usnet_netif *e[2], *w;
	char err[256];
	if (usnet_memwire_pair(e, NULL, err, sizeof err))
		die("delay: %s", err);
	if (usnet_impair_wrap(e[0], "tx:delay=30ms", &w, err, sizeof err))
		die("delay: %s", err);
	struct usnet_pkt p;
	uint64_t t0 = now_ms();
	if (send_one(w, 100, 1, 1000))
		die("delay: send failed");
	/* The frame waits in the wrapper.  Sleep on the sender's wait fd (its
	 * timer) and drive the sender when it wakes; on a slow machine the
	 * frame may have fallen due, and left, before we looked. */
	while (usnet_netif_rx_burst(e[1], 0, &p, 1) != 1) {
		if (now_ms() - t0 > 3000)
			die("delay: frame did not arrive");
		struct pollfd pfd = { usnet_netif_wait_fd(w, 0), POLLIN, 0 };
		if (poll(&pfd, 1, 2000) != 1) {
			if (usnet_netif_rx_burst(e[1], 0, &p, 1) == 1)
				break;
			die("delay: sender's wait fd did not wake for the held frame");
		}
		struct usnet_pkt none;
		if (usnet_netif_rx_burst(w, 0, &none, 1) == 1)
			usnet_netif_rx_release(w, 0, &none, 1);
		usnet_netif_flush(w, 0);
	}
	uint64_t dt = now_ms() - t0;
	if (dt < 29)
		die("delay: arrived after %" PRIu64 " ms, want >= 30", dt);
	usnet_netif_rx_release(e[1], 0, &p, 1);
	usnet_netif_close(w);
	usnet_netif_close(e[1]);
	printf("delay ok: %" PRIu64 " ms\n", dt);
}

/* A wrapped netif without a wait fd (as dpdk): impair must not offer one
 * that only covers its own timer, or a caller sleeping on it never wakes
 * for received frames.  The netif here is memwire with its wait fd hidden. */
struct nowait_netif {
	struct usnet_netif base;
	struct usnet_netif *lower;
};
#define NW_LOWER(n) (((struct nowait_netif *)(n))->lower)
static int nw_rx_burst(struct usnet_netif *n, uint16_t q, struct usnet_pkt *p, unsigned m)
{ return usnet_netif_rx_burst(NW_LOWER(n), q, p, m); }
static void nw_rx_release(struct usnet_netif *n, uint16_t q, struct usnet_pkt *p, unsigned c)
{ usnet_netif_rx_release(NW_LOWER(n), q, p, c); }
static int nw_tx_alloc(struct usnet_netif *n, uint16_t q, struct usnet_pkt *p, unsigned c)
{ return usnet_netif_tx_alloc(NW_LOWER(n), q, p, c); }
static int nw_tx_burst(struct usnet_netif *n, uint16_t q, struct usnet_pkt *p, unsigned c)
{ return usnet_netif_tx_burst(NW_LOWER(n), q, p, c); }
static void nw_tx_free(struct usnet_netif *n, uint16_t q, struct usnet_pkt *p, unsigned c)
{ usnet_netif_tx_free(NW_LOWER(n), q, p, c); }
static int nw_flush(struct usnet_netif *n, uint16_t q) { return usnet_netif_flush(NW_LOWER(n), q); }
static int nw_wait_fd(struct usnet_netif *n, uint16_t q) { (void)n; (void)q; return -1; }
static void nw_close(struct usnet_netif *n) { usnet_netif_close(NW_LOWER(n)); free(n); }
static const struct usnet_netif_ops nw_ops = {
	.rx_burst = nw_rx_burst, .rx_release = nw_rx_release, .tx_alloc = nw_tx_alloc,
	.tx_burst = nw_tx_burst, .tx_free = nw_tx_free, .flush = nw_flush,
	.wait_fd = nw_wait_fd, .close = nw_close,
};

static void test_impair_no_wait_fd(void)
{
	struct usnet_netif *e[2], *w;
	char err[256];
	if (usnet_memwire_pair(e, NULL, err, sizeof err))
		die("no-wait-fd: %s", err);
	struct nowait_netif *nw = calloc(1, sizeof *nw);
	if (!nw)
		die("no-wait-fd: out of memory");
	nw->base.ops = &nw_ops;
	nw->base.info = e[1]->info;
	nw->lower = e[1];
	if (usnet_impair_wrap(&nw->base, "rx:reorder=0.01,seed=3", &w, err, sizeof err))
		die("no-wait-fd: %s", err);
	struct usnet_pkt p;
	if (usnet_netif_rx_burst(w, 0, &p, 1) != 0)
		die("no-wait-fd: a frame before any was sent");
	int fd = usnet_netif_wait_fd(w, 0);
	if (send_one(e[0], 100, 1, 1000))
		die("no-wait-fd: send failed");
	if (fd >= 0) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		if (poll(&pfd, 1, 500) != 1)
			die("no-wait-fd: impair's wait fd (wrapped netif has none) did not wake for a received frame");
	}
	/* No wait fd: the caller polls. */
	uint64_t t0 = now_ms();
	while (usnet_netif_rx_burst(w, 0, &p, 1) != 1) {
		if (now_ms() - t0 > 3000)
			die("no-wait-fd: frame did not arrive");
		usleep(100);
	}
	if (!check_frame(p.data, p.len, 1))
		die("no-wait-fd: damaged frame");
	usnet_netif_rx_release(w, 0, &p, 1);
	usnet_netif_close(w);
	usnet_netif_close(e[0]);
	printf("no-wait-fd ok: wait fd %d\n", fd);
}

/* ---- pcap -------------------------------------------------------------- */

static uint16_t csum16(const uint8_t *p, size_t n, uint32_t sum)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint32_t build_arp_request(uint8_t *f, const uint8_t mac[6], uint32_t myip, uint32_t peer)
{
	memset(f, 0xff, 6);
	memcpy(f + 6, mac, 6);
	f[12] = 0x08; f[13] = 0x06;
	uint8_t *a = f + 14;
	a[0] = 0; a[1] = 1; a[2] = 0x08; a[3] = 0; a[4] = 6; a[5] = 4; a[6] = 0; a[7] = 1;
	memcpy(a + 8, mac, 6);
	memcpy(a + 14, &myip, 4);
	memset(a + 18, 0, 6);
	memcpy(a + 24, &peer, 4);
	memset(f + 42, 0, 18);
	return 60;
}

/* IPv4 + ICMP echo request (or UDP when udp), 64 bytes of payload. */
static uint32_t build_ip(uint8_t *f, const uint8_t src_mac[6], const uint8_t dst_mac[6], uint32_t src,
			 uint32_t dst, int udp, uint16_t seq)
{
	memcpy(f, dst_mac, 6);
	memcpy(f + 6, src_mac, 6);
	f[12] = 0x08; f[13] = 0x00;
	uint8_t *ip = f + 14;
	uint16_t l4len = udp ? 8 + 64 : 8 + 64;
	uint16_t tot = (uint16_t)(20 + l4len);
	memset(ip, 0, 20);
	ip[0] = 0x45; ip[2] = (uint8_t)(tot >> 8); ip[3] = (uint8_t)tot;
	ip[4] = 0x12; ip[5] = 0x34; ip[8] = 64; ip[9] = udp ? 17 : 1;
	memcpy(ip + 12, &src, 4);
	memcpy(ip + 16, &dst, 4);
	uint16_t c = csum16(ip, 20, 0);
	ip[10] = (uint8_t)(c >> 8); ip[11] = (uint8_t)c;
	uint8_t *l4 = ip + 20;
	memset(l4, 0, l4len);
	for (int i = 0; i < 64; i++)
		l4[8 + i] = (uint8_t)i;
	if (udp) {
		l4[0] = 0x30; l4[1] = 0x39; l4[2] = 0x00; l4[3] = 0x35; /* 12345 -> 53 */
		l4[4] = (uint8_t)(l4len >> 8); l4[5] = (uint8_t)l4len;
		uint32_t ps = 0;
		const uint8_t *s = ip + 12;
		for (int i = 0; i < 8; i += 2)
			ps += (uint32_t)s[i] << 8 | s[i + 1];
		ps += 17 + l4len;
		c = csum16(l4, l4len, ps);
		if (!c)
			c = 0xffff;
	} else {
		l4[0] = 8; l4[4] = 0x42; l4[5] = 0x42;
		l4[6] = (uint8_t)(seq >> 8); l4[7] = (uint8_t)seq;
		c = csum16(l4, l4len, 0);
	}
	l4[udp ? 6 : 2] = (uint8_t)(c >> 8);
	l4[udp ? 7 : 3] = (uint8_t)c;
	return 14u + tot;
}

static void send_raw(struct usnet_netif *nif, const uint8_t *frame, uint32_t len)
{
	struct usnet_pkt p;
	if (usnet_netif_tx_alloc(nif, 0, &p, 1) != 1)
		die("no tx buffer");
	memcpy(p.data, frame, len);
	p.len = len;
	if (usnet_netif_tx_burst(nif, 0, &p, 1) != 1)
		die("tx_burst refused a frame");
	usnet_netif_flush(nif, 0);
}

static void test_pcap(const char *file)
{
	struct usnet_netif *e[2], *w;
	char err[256];
	if (usnet_memwire_pair(e, NULL, err, sizeof err))
		die("pcap: %s", err);
	if (usnet_pcap_wrap(e[0], file, &w, err, sizeof err))
		die("pcap: %s", err);
	uint8_t f[256];
	uint32_t a = inet_addr("10.0.0.1"), b = inet_addr("10.0.0.2");
	/* 3 ARP + 2 ICMP + 1 UDP sent, 2 UDP received: 8 frames. */
	for (int i = 0; i < 3; i++)
		send_raw(w, f, build_arp_request(f, e[0]->info.mac, a, b));
	for (int i = 0; i < 2; i++)
		send_raw(w, f, build_ip(f, e[0]->info.mac, e[1]->info.mac, a, b, 0, (uint16_t)i));
	send_raw(w, f, build_ip(f, e[0]->info.mac, e[1]->info.mac, a, b, 1, 0));
	for (int i = 0; i < 2; i++)
		send_raw(e[1], f, build_ip(f, e[1]->info.mac, e[0]->info.mac, b, a, 1, 0));
	struct usnet_pkt p[8];
	int r = usnet_netif_rx_burst(w, 0, p, 8);
	if (r != 2)
		die("pcap: received %d frames, want 2", r);
	usnet_netif_rx_release(w, 0, p, 2);
	/* Leave the file as a killed process would: no close. */
	_exit(0);
}

/* ---- usnet_netif_open() errors ----------------------------------------- */

static void expect_open_error(struct usnet_netif_config cfg, int want, const char *needle)
{
	struct usnet_netif *nif = NULL;
	char err[256] = "";
	int r = usnet_netif_open(&cfg, &nif, err, sizeof err);
	if (r == 0) {
		usnet_netif_close(nif);
		die("open: %s/%s with options '%s' did not fail", cfg.backend ? cfg.backend : "(null)",
		    cfg.iface ? cfg.iface : "(null)", cfg.options ? cfg.options : "");
	}
	if ((want && r != -want) || !err[0] || strchr(err, '\n') || (needle && !strstr(err, needle)))
		die("open: want -%d mentioning '%s', got %d '%s'", want, needle ? needle : "", r, err);
	printf("  rejected: %s\n", err);
}

static void test_open_errors(void)
{
	struct usnet_netif_config c = { 0 };
	expect_open_error(c, EINVAL, "backend");
	c.backend = "nosuch"; c.iface = "x";
	expect_open_error(c, ENOENT, "nosuch");
	c.backend = "memwire"; c.iface = "wire";
	expect_open_error(c, EINVAL, "NAME:0");
	c.iface = "bad/name:0";
	expect_open_error(c, EINVAL, "wire name");
	c.iface = "ok:0"; c.options = "frame=12";
	expect_open_error(c, EINVAL, "frame");
	c.options = "ring=100";
	expect_open_error(c, EINVAL, "power of two");
	c.options = "bogus=1";
	expect_open_error(c, EINVAL, "bogus");
	c.options = NULL; c.impair = "loss=2";
	expect_open_error(c, EINVAL, "loss");
	c.impair = NULL; c.pcap = "/nonexistent-dir/x.pcap";
	expect_open_error(c, ENOENT, "/nonexistent-dir");
	c.pcap = NULL; c.backend = "tap"; c.iface = "averyveryverylongname0";
	expect_open_error(c, ENAMETOOLONG, "longer");
	c.backend = "afpacket"; c.iface = "nosuchif0";
	expect_open_error(c, ENODEV, "not found");
	c.options = "rx=v9";
	expect_open_error(c, EINVAL, "rx=v2");
	c.options = NULL;
	if (strstr(usnet_netif_backends(), "afxdp")) {
		c.backend = "afxdp";
		expect_open_error(c, ENODEV, "not found");
		c.iface = "lo"; c.options = "mode=turbo";
		expect_open_error(c, EINVAL, "mode=native");
		c.options = "ip=1.2.3";
		expect_open_error(c, EINVAL, "IPv4");
		c.options = "copy,zerocopy";
		expect_open_error(c, EINVAL, "exclude");
		c.options = NULL;
	}
	/* The failed opens left nothing behind. */
	if (access("/dev/shm/usnet-memwire-ok", F_OK) == 0)
		die("open: failed open left /dev/shm/usnet-memwire-ok behind");
	printf("backends: %s\n", usnet_netif_backends());
}

/* ---- ARP + ping against a kernel --------------------------------------- */

static int wait_frame(struct usnet_netif *nif, int (*match)(const uint8_t *, uint32_t, void *), void *arg,
		      int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	while (now_ms() < end) {
		struct usnet_pkt p[16];
		int r = 0, found = 0;
		for (uint16_t q = 0; q < nif->info.nqueues && !found; q++) {
			int k = usnet_netif_rx_burst(nif, q, p, 16);
			if (k < 0)
				die("rx_burst: %s", strerror(-k));
			for (int i = 0; i < k; i++)
				if (!found && match(p[i].data, p[i].len, arg))
					found = 1;
			if (k > 0)
				usnet_netif_rx_release(nif, q, p, (unsigned)k);
			r += k;
		}
		if (found)
			return 0;
		if (r == 0 && nif->info.nqueues > 1) {
			usleep(200);
		} else if (r == 0) {
			struct pollfd pfd = { usnet_netif_wait_fd(nif, 0), POLLIN, 0 };
			if (pfd.fd >= 0)
				poll(&pfd, 1, 20);
			else
				usleep(1000);
		}
	}
	return -1;
}

struct arp_match { uint32_t peer; uint8_t mac[6]; const uint8_t *mymac; };

static int match_arp_reply(const uint8_t *f, uint32_t len, void *arg)
{
	struct arp_match *m = arg;
	if (len < 42 || f[12] != 0x08 || f[13] != 0x06 || f[21] != 2 || memcmp(f, m->mymac, 6))
		return 0;
	if (memcmp(f + 28, &m->peer, 4))
		return 0;
	memcpy(m->mac, f + 22, 6);
	return 1;
}

static int match_echo_reply(const uint8_t *f, uint32_t len, void *arg)
{
	uint32_t peer = *(uint32_t *)arg;
	return len >= 42 && f[12] == 0x08 && f[13] == 0 && f[23] == 1 && !memcmp(f + 26, &peer, 4) &&
	       f[34] == 0 && f[38] == 0x42 && f[39] == 0x42;
}

/* ARP for the peer, then one echo exchange, answering the kernel's own ARP
 * request for us on the way: afterwards each side knows the other's MAC
 * (am->mac is the peer's). */
static void ping_handshake(struct usnet_netif *nif, const char *backend, uint32_t me, uint32_t peer,
			   struct arp_match *am)
{
	char peerip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &peer, peerip, sizeof peerip);
	uint8_t f[256];
	uint16_t rxq = 0;
	int ok = -1;
	for (int tries = 0; tries < 5 && ok; tries++) {
		send_raw(nif, f, build_arp_request(f, nif->info.mac, me, peer));
		ok = wait_frame(nif, match_arp_reply, am, 400);
	}
	if (ok)
		die("%s: no ARP reply from %s", backend, peerip);
	/* The kernel also asks for our MAC before answering: answer it. */
	ok = -1;
	for (int tries = 0; tries < 5 && ok; tries++) {
		send_raw(nif, f, build_ip(f, nif->info.mac, am->mac, me, peer, 0, (uint16_t)tries));
		uint64_t end = now_ms() + 400;
		while (ok && now_ms() < end) {
			struct usnet_pkt p[16];
			int r = 0;
			for (uint16_t q = 0; q < nif->info.nqueues && r <= 0; q++)
				if ((r = usnet_netif_rx_burst(nif, q, p, 16)) > 0)
					rxq = q;
			for (int i = 0; i < r; i++) {
				const uint8_t *d = p[i].data;
				if (p[i].len >= 42 && d[12] == 8 && d[13] == 6 && d[21] == 1 &&
				    !memcmp(d + 38, &me, 4)) {
					uint8_t rep[60];
					memcpy(rep, d + 6, 6);
					memcpy(rep + 6, nif->info.mac, 6);
					rep[12] = 8; rep[13] = 6;
					memcpy(rep + 14, d + 14, 6);
					rep[20] = 0; rep[21] = 2;
					memcpy(rep + 22, nif->info.mac, 6);
					memcpy(rep + 28, &me, 4);
					memcpy(rep + 32, d + 22, 10);
					memset(rep + 42, 0, 18);
					send_raw(nif, rep, 60);
				} else if (match_echo_reply(d, p[i].len, &peer)) {
					ok = 0;
				}
			}
			if (r > 0)
				usnet_netif_rx_release(nif, rxq, p, (unsigned)r);
			else
				usleep(1000);
		}
	}
	if (ok)
		die("%s: no ICMP echo reply from %s", backend, peerip);
}

static void test_ping(const char *backend, const char *iface, const char *opts, const char *myip,
		      const char *peerip)
{
	struct usnet_netif_config cfg = { .backend = backend, .iface = iface,
					  .options = opts && opts[0] ? opts : NULL };
	if (getenv("NETIF_TEST_QUEUES"))
		cfg.queues = (uint16_t)atoi(getenv("NETIF_TEST_QUEUES"));
	struct usnet_netif *nif;
	char err[256];
	if (usnet_netif_open(&cfg, &nif, err, sizeof err))
		die("%s", err);
	uint32_t me = inet_addr(myip), peer = inet_addr(peerip);
	uint8_t f[256];
	struct arp_match am = { .peer = peer, .mymac = nif->info.mac };
	ping_handshake(nif, backend, me, peer, &am);
	int ok;
	/* Round trips one at a time: what the backend adds to latency. */
	uint64_t rtt[50];
	int nr = 0;
	for (int i = 0; i < 50; i++) {
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		send_raw(nif, f, build_ip(f, nif->info.mac, am.mac, me, peer, 0, (uint16_t)(100 + i)));
		if (wait_frame(nif, match_echo_reply, &peer, 1000))
			continue;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		rtt[nr++] = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000ull + (uint64_t)t1.tv_nsec - (uint64_t)t0.tv_nsec;
	}
	if (nr < 45)
		die("%s: only %d of 50 pings answered", backend, nr);
	for (int i = 1; i < nr; i++)
		for (int j = i; j > 0 && rtt[j - 1] > rtt[j]; j--) {
			uint64_t t = rtt[j]; rtt[j] = rtt[j - 1]; rtt[j - 1] = t;
		}
	printf("%s: ARP and ping answered by %s; rtt median %" PRIu64 " us, max %" PRIu64 " us\n",
	       backend, peerip, rtt[nr / 2] / 1000, rtt[nr - 1] / 1000);
	const char *lim = getenv("NETIF_TEST_MAX_MEDIAN_US");
	if (lim && rtt[nr / 2] / 1000 > strtoull(lim, NULL, 10))
		die("%s: median round trip %" PRIu64 " us exceeds %s us", backend, rtt[nr / 2] / 1000, lim);
	/* A backend with CAP_SHARED serves a forked child: the child does an
	 * ARP exchange of its own on the inherited netif and closes its copy;
	 * the parent's keeps working afterwards. */
	if (getenv("NETIF_TEST_FORK_SHARED")) {
		if (!(nif->info.caps & USNET_NETIF_CAP_SHARED))
			die("%s: does not claim CAP_SHARED", backend);
		fflush(stdout);
		pid_t c = fork();
		if (c < 0)
			die("fork: %s", strerror(errno));
		if (c == 0) {
			int cok = -1;
			for (int tries = 0; tries < 5 && cok; tries++) {
				send_raw(nif, f, build_arp_request(f, nif->info.mac, me, peer));
				cok = wait_frame(nif, match_arp_reply, &am, 400);
			}
			usnet_netif_close(nif);
			_exit(cok ? 1 : 0);
		}
		int st = 0;
		waitpid(c, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			die("%s: a forked child got no ARP reply through the inherited netif", backend);
		ok = -1;
		for (int tries = 0; tries < 5 && ok; tries++) {
			send_raw(nif, f, build_arp_request(f, nif->info.mac, me, peer));
			ok = wait_frame(nif, match_arp_reply, &am, 400);
		}
		if (ok)
			die("%s: no ARP reply after a forked child closed its copy", backend);
		printf("%s: a forked child used the netif, the parent still works\n", backend);
	}
	/* Stay attached a while (for tests of what else the interface does
	 * meanwhile), draining whatever comes to us. */
	const char *hold = getenv("NETIF_TEST_HOLD_MS");
	if (hold) {
		uint64_t end = now_ms() + strtoull(hold, NULL, 10);
		while (now_ms() < end) {
			struct usnet_pkt p[16];
			for (uint16_t q = 0; q < nif->info.nqueues; q++) {
				int r = usnet_netif_rx_burst(nif, q, p, 16);
				if (r > 0)
					usnet_netif_rx_release(nif, q, p, (unsigned)r);
			}
			usleep(1000);
		}
	}
	usnet_netif_close(nif);
}

/* ---- ARP on every queue ------------------------------------------------ */

/* From each queue in turn, ask the peer for its MAC; the reply must reach
 * that queue (the device hands it to one queue only: the backend must share
 * it).  Every queue is drained meanwhile. */
static void test_arp_queues(const char *backend, const char *iface, const char *opts, const char *myip,
			    const char *peerip, uint16_t nq)
{
	struct usnet_netif_config cfg = { .backend = backend, .iface = iface, .queues = nq,
					  .options = opts && opts[0] ? opts : NULL };
	struct usnet_netif *nif;
	char err[256];
	if (usnet_netif_open(&cfg, &nif, err, sizeof err))
		die("%s", err);
	uint32_t me = inet_addr(myip), peer = inet_addr(peerip);
	struct arp_match am = { .peer = peer, .mymac = nif->info.mac };
	for (uint16_t q = 0; q < nq; q++) {
		int got = 0;
		for (int tries = 0; tries < 3 && !got; tries++) {
			struct usnet_pkt t;
			if (usnet_netif_tx_alloc(nif, q, &t, 1) != 1)
				die("queue %u: no tx buffer", q);
			t.len = build_arp_request(t.data, nif->info.mac, me, peer);
			if (usnet_netif_tx_burst(nif, q, &t, 1) != 1)
				die("queue %u: tx_burst refused a frame", q);
			usnet_netif_flush(nif, q);
			uint64_t end = now_ms() + 500;
			while (!got && now_ms() < end) {
				for (uint16_t r = 0; r < nq; r++) {
					struct usnet_pkt p[16];
					int n = usnet_netif_rx_burst(nif, r, p, 16);
					for (int i = 0; i < n; i++)
						if (r == q && match_arp_reply(p[i].data, p[i].len, &am))
							got = 1;
					if (n > 0)
						usnet_netif_rx_release(nif, r, p, (unsigned)n);
				}
				usleep(200);
			}
		}
		if (!got)
			die("%s: queue %u of %u never saw an ARP reply from %s", backend, q, nq, peerip);
	}
	printf("%s: every one of %u queues saw its ARP reply\n", backend, nq);
	usnet_netif_close(nif);
}

/* ---- bursts: many frames per flush ------------------------------------- */

/* Send count UDP frames (broadcast MAC, to peerip) in bursts of 64 with one
 * flush each; the caller counts what arrived at the other end. */
static void test_burst(const char *backend, const char *iface, const char *opts, const char *myip,
		       const char *peerip, uint32_t count)
{
	struct usnet_netif_config cfg = { .backend = backend, .iface = iface,
					  .options = opts && opts[0] ? opts : NULL };
	struct usnet_netif *nif;
	char err[256];
	if (usnet_netif_open(&cfg, &nif, err, sizeof err))
		die("%s", err);
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	uint8_t f[256];
	uint32_t len = build_ip(f, nif->info.mac, bcast, inet_addr(myip), inet_addr(peerip), 1, 0);
	uint32_t sent = 0;
	uint64_t end = now_ms() + 10000;
	while (sent < count) {
		struct usnet_pkt p[64];
		unsigned want = count - sent < 64 ? count - sent : 64;
		int a = usnet_netif_tx_alloc(nif, 0, p, want);
		for (int i = 0; i < a; i++) {
			memcpy(p[i].data, f, len);
			p[i].len = len;
		}
		int t = a > 0 ? usnet_netif_tx_burst(nif, 0, p, (unsigned)a) : 0;
		if (t < 0)
			die("%s: tx_burst: %s", backend, strerror(-t));
		if (t < a)
			usnet_netif_tx_free(nif, 0, p + t, (unsigned)(a - t));
		sent += (uint32_t)t;
		usnet_netif_flush(nif, 0);
		/* Drain receive so nothing backs up. */
		int r = usnet_netif_rx_burst(nif, 0, p, 64);
		if (r > 0)
			usnet_netif_rx_release(nif, 0, p, (unsigned)r);
		if (now_ms() > end)
			die("%s: sent only %u of %u frames in 10 s", backend, sent, count);
	}
	usleep(100 * 1000); /* let the last frames leave before the socket goes */
	usnet_netif_flush(nif, 0);
	printf("%s: sent %u frames\n", backend, sent);
	usnet_netif_close(nif);
}

/* ---- afxdp: released frames while the fill ring looks full ------------- */

/*
 * The kernel publishes a batch of AF_XDP rx descriptors a moment before the
 * fill ring's consumer index that says it took their chunks, so a receiver
 * can release frames while the fill ring still looks fuller than it is.
 * This test makes that moment as bad as it gets, through the kernel's own
 * interface: it finds the socket's fill ring in its own mappings, lends
 * itself every rx frame, sets the consumer index so the ring looks full,
 * and releases them all.  The backend must keep them (no overflow), put on
 * the ring no more than it has room for, and, once the index is true again,
 * give every frame back: the ring then holds the same chunks as before, none
 * twice.
 */
struct fill_ring_view {
	uint32_t *prod, *cons;
	const uint64_t *desc;
	uint32_t size;
};

/* The fill ring of AF_XDP socket fd as mapped in this process (by the
 * backend): the mapping of the socket at XDP_UMEM_PGOFF_FILL_RING.  Its size
 * is not reported anywhere else: the mapping holds the header and size
 * descriptors, rounded up to pages, which names a power of two uniquely when
 * the descriptors fill a page or more. */
static struct fill_ring_view fill_ring_find(int fd)
{
	struct xdp_mmap_offsets off;
	socklen_t olen = sizeof off;
	struct stat st;
	if (fd < 0 || fstat(fd, &st) || getsockopt(fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &olen))
		die("fill-short: the wait fd is not an AF_XDP socket: %s", strerror(errno));
	FILE *maps = fopen("/proc/self/maps", "r");
	if (!maps)
		die("fill-short: /proc/self/maps: %s", strerror(errno));
	char line[512];
	unsigned long lo = 0, hi = 0;
	int found = 0;
	while (!found && fgets(line, sizeof line, maps)) {
		unsigned long a, b, ino;
		unsigned long long pgoff;
		if (sscanf(line, "%lx-%lx %*s %llx %*s %lu", &a, &b, &pgoff, &ino) == 4 &&
		    pgoff == XDP_UMEM_PGOFF_FILL_RING && ino == (unsigned long)st.st_ino) {
			lo = a;
			hi = b;
			found = 1;
		}
	}
	fclose(maps);
	if (!found)
		die("fill-short: no mapping of the fill ring of socket inode %lu", (unsigned long)st.st_ino);
	uint64_t slots = (hi - lo - off.fr.desc) / sizeof(uint64_t);
	uint32_t size = 1;
	while ((uint64_t)size * 2 <= slots)
		size *= 2;
	if ((uint64_t)size * sizeof(uint64_t) < (uint64_t)sysconf(_SC_PAGESIZE))
		die("fill-short: a fill ring of %u entries cannot be sized from its mapping: use more frames", size);
	uint8_t *base = (uint8_t *)lo;
	return (struct fill_ring_view){ .prod = (uint32_t *)(base + off.fr.producer),
					.cons = (uint32_t *)(base + off.fr.consumer),
					.desc = (const uint64_t *)(base + off.fr.desc), .size = size };
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* What the fill ring holds, sorted, into out (room for v->size); returns
 * how many. */
static uint32_t fill_ring_snapshot(const struct fill_ring_view *v, uint64_t *out)
{
	uint32_t cons = __atomic_load_n(v->cons, __ATOMIC_ACQUIRE);
	uint32_t prod = __atomic_load_n(v->prod, __ATOMIC_ACQUIRE);
	uint32_t n = prod - cons;
	if (n > v->size)
		die("fill-short: the fill ring holds %u entries, more than its %u", n, v->size);
	for (uint32_t i = 0; i < n; i++)
		out[i] = v->desc[(cons + i) & (v->size - 1)];
	qsort(out, n, sizeof *out, cmp_u64);
	return n;
}

/* Receive and release until the queue is idle (an empty rx_burst, which
 * also flushes what the backend keeps), then snapshot the fill ring. */
static uint32_t fill_ring_settle(struct usnet_netif *nif, const struct fill_ring_view *v, uint64_t *out)
{
	struct usnet_pkt p[32];
	int r;
	while ((r = usnet_netif_rx_burst(nif, 0, p, 32)) > 0)
		usnet_netif_rx_release(nif, 0, p, (unsigned)r);
	if (r < 0)
		die("fill-short: rx_burst: %s", strerror(-r));
	return fill_ring_snapshot(v, out);
}

static void test_fill_short(const char *backend, const char *iface, const char *opts, const char *myip,
			    const char *peerip)
{
	struct usnet_netif_config cfg = { .backend = backend, .iface = iface,
					  .options = opts && opts[0] ? opts : NULL };
	struct usnet_netif *nif;
	char err[256];
	if (usnet_netif_open(&cfg, &nif, err, sizeof err))
		die("%s", err);
	uint32_t me = inet_addr(myip), peer = inet_addr(peerip);
	struct arp_match am = { .peer = peer, .mymac = nif->info.mac };
	ping_handshake(nif, backend, me, peer, &am);
	struct fill_ring_view v = fill_ring_find(usnet_netif_wait_fd(nif, 0));
	uint64_t *before = calloc(v.size, sizeof *before), *after = calloc(v.size, sizeof *after);
	if (!before || !after)
		die("fill-short: out of memory");

	/* Idle, every rx frame is on the fill ring: these are all of them. */
	uint32_t nrx = fill_ring_settle(nif, &v, before);
	for (uint32_t i = 1; i < nrx; i++)
		if (before[i] == before[i - 1])
			die("fill-short: chunk %#" PRIx64 " is on the fill ring twice at the start", before[i]);
	if (nrx < 64)
		die("fill-short: only %u rx frames on the fill ring at the start", nrx);

	/* Lend all of them to us: echo requests until every one came back
	 * with a reply (the kernel drops the replies it has no frame for). */
	struct usnet_pkt *held = calloc(nrx, sizeof *held);
	if (!held)
		die("fill-short: out of memory");
	uint32_t nheld = 0, sent = 0;
	uint64_t end = now_ms() + 5000;
	while (nheld < nrx) {
		if (now_ms() > end)
			die("fill-short: %u of %u rx frames lent after %u echo requests", nheld, nrx, sent);
		if (sent < nheld + 64) {
			struct usnet_pkt t[16];
			int a = usnet_netif_tx_alloc(nif, 0, t, 16);
			for (int i = 0; i < a; i++)
				t[i].len = build_ip(t[i].data, nif->info.mac, am.mac, me, peer, 0, (uint16_t)(sent + (uint32_t)i));
			int k = a > 0 ? usnet_netif_tx_burst(nif, 0, t, (unsigned)a) : 0;
			if (k < 0)
				die("fill-short: tx_burst: %s", strerror(-k));
			if (k < a)
				usnet_netif_tx_free(nif, 0, t + k, (unsigned)(a - k));
			sent += (uint32_t)k;
			usnet_netif_flush(nif, 0);
		}
		int r = usnet_netif_rx_burst(nif, 0, held + nheld, nrx - nheld);
		if (r < 0)
			die("fill-short: rx_burst: %s", strerror(-r));
		nheld += (uint32_t)r;
	}
	usleep(50 * 1000); /* the replies the kernel had no frame for are dropped by now */
	uint32_t prod = __atomic_load_n(v.prod, __ATOMIC_ACQUIRE), cons = __atomic_load_n(v.cons, __ATOMIC_ACQUIRE);
	if (prod != cons)
		die("fill-short: %u entries left on the fill ring with every rx frame lent", prod - cons);

	/* Release them all (in batches, as a stack does) while the ring looks
	 * full: before each batch the consumer index is set one ring behind
	 * the producer.  The backend may still use room it saw before (an
	 * index only moves forward), but not more than it holds, and once it
	 * reads the index it must keep the rest. */
	static const unsigned batches[] = { 1, 7, 16, 32, 32 };
	uint32_t done = 0, stale = 0;
	for (unsigned b = 0; done < nheld; b++) {
		unsigned n = b < sizeof batches / sizeof batches[0] ? batches[b] : 32;
		if (n > nheld - done)
			n = nheld - done;
		stale = __atomic_load_n(v.prod, __ATOMIC_ACQUIRE) - v.size;
		__atomic_store_n(v.cons, stale, __ATOMIC_RELEASE);
		usnet_netif_rx_release(nif, 0, held + done, n);
		done += n;
		if (__atomic_load_n(v.cons, __ATOMIC_ACQUIRE) != stale)
			die("fill-short: the kernel moved the fill ring's consumer index meanwhile: run again");
	}
	uint32_t went = __atomic_load_n(v.prod, __ATOMIC_ACQUIRE) - prod, kept = nheld - went;
	if (went > nheld || kept < 2)
		die("fill-short: %u of %u released frames went on a fill ring that looked full", went, nheld);
	/* Room for half of what the backend kept: a flush takes what fits and
	 * keeps the rest. */
	const uint32_t room = kept / 2;
	uint32_t before_room = __atomic_load_n(v.prod, __ATOMIC_ACQUIRE);
	stale = before_room - v.size + room;
	__atomic_store_n(v.cons, stale, __ATOMIC_RELEASE);
	struct usnet_pkt p[32];
	if (usnet_netif_rx_burst(nif, 0, p, 32) != 0)
		die("fill-short: a frame arrived while the fill ring was empty");
	uint32_t took = __atomic_load_n(v.prod, __ATOMIC_ACQUIRE) - before_room;
	if (took == 0 || took > room)
		die("fill-short: a flush with room for %u put %u frames on the fill ring", room, took);
	/* The true index again: the kernel took everything up to prod (unless
	 * it has published its own meanwhile). */
	uint32_t expect = stale;
	__atomic_compare_exchange_n(v.cons, &expect, prod, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);

	/* Every frame comes back, none twice. */
	uint32_t n = 0;
	end = now_ms() + 2000;
	do {
		n = fill_ring_settle(nif, &v, after);
		if (n == nrx && !memcmp(before, after, nrx * sizeof *after))
			break;
		usleep(1000);
	} while (now_ms() < end);
	if (n != nrx || memcmp(before, after, nrx * sizeof *after)) {
		uint32_t dup = 0;
		for (uint32_t i = 1; i < n; i++)
			dup += after[i] == after[i - 1];
		die("fill-short: after the release %u frames are on the fill ring (%u twice), want the %u from the start",
		    n, dup, nrx);
	}
	/* And the queue still receives. */
	uint8_t f[256];
	int ok = -1;
	for (int tries = 0; tries < 5 && ok; tries++) {
		send_raw(nif, f, build_ip(f, nif->info.mac, am.mac, me, peer, 0, (uint16_t)(9000 + tries)));
		ok = wait_frame(nif, match_echo_reply, &peer, 400);
	}
	if (ok)
		die("fill-short: no echo reply after the frames came back");
	printf("%s: fill ring of %u entries looked full: of %u rx frames released %u went on (room seen "
	       "before) and %u stayed; room for %u: %u went on; then all %u back, none twice\n",
	       backend, v.size, nheld, went, kept, room, took, nrx);
	free(held);
	free(before);
	free(after);
	usnet_netif_close(nif);
}

/* ---- RSS awareness ------------------------------------------------------ */

/* Internal to the library, tested here against Microsoft's published RSS
 * verification values. */
uint32_t netif_toeplitz(const uint8_t *key, size_t keylen, const uint8_t *in, size_t len);

static void test_toeplitz(void)
{
	static const uint8_t key[40] = {
		0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
		0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
		0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
	};
	/* 66.9.149.187:2794 -> 161.142.100.80:1766 */
	static const uint8_t in[12] = { 66, 9, 149, 187, 161, 142, 100, 80, 0x0a, 0xea, 0x06, 0xe6 };
	uint32_t ip = netif_toeplitz(key, sizeof key, in, 8), l4 = netif_toeplitz(key, sizeof key, in, 12);
	if (ip != 0x323e8fc2 || l4 != 0x51ccc178)
		die("toeplitz: got %08x/%08x, want 323e8fc2/51ccc178", ip, l4);
	/* One queue: always 0; a pair answers through wrappers. */
	struct usnet_netif *e[2], *w;
	char err[256];
	if (usnet_memwire_pair(e, NULL, err, sizeof err) || usnet_impair_wrap(e[0], "loss=0.1", &w, err, sizeof err))
		die("toeplitz: %s", err);
	if (usnet_netif_flow_queue(w, 6, 1, 2, 3, 4) != 0)
		die("flow_queue on one queue is not 0");
	usnet_netif_close(w);
	usnet_netif_close(e[1]);
	printf("toeplitz ok\n");
}

/* Collect UDP frames to myip for up to 5 s (until `count`) on every queue and
 * check each arrived on the queue usnet_netif_flow_queue() names. */
static void test_flowq(const char *backend, const char *iface, const char *opts, const char *myip,
		       uint16_t queues, uint32_t count)
{
	struct usnet_netif_config cfg = { .backend = backend, .iface = iface, .queues = queues,
					  .options = opts && opts[0] ? opts : NULL };
	struct usnet_netif *nif;
	char err[256];
	if (usnet_netif_open(&cfg, &nif, err, sizeof err))
		die("%s", err);
	uint32_t me = inet_addr(myip);
	printf("ready\n");
	uint32_t seen = 0, wrong = 0, per_q[64] = { 0 };
	uint64_t end = now_ms() + 5000;
	while (seen < count && now_ms() < end) {
		int any = 0;
		for (uint16_t q = 0; q < nif->info.nqueues; q++) {
			struct usnet_pkt p[32];
			int r = usnet_netif_rx_burst(nif, q, p, 32);
			for (int i = 0; i < r; i++) {
				const uint8_t *f = p[i].data;
				if (p[i].len < 42 || f[12] != 8 || f[13] != 0 || f[23] != 17 || memcmp(f + 30, &me, 4))
					continue;
				uint32_t src, dst;
				memcpy(&src, f + 26, 4);
				memcpy(&dst, f + 30, 4);
				const uint8_t *u = f + 14 + (f[14] & 15) * 4;
				int want = usnet_netif_flow_queue(nif, 17, ntohl(src), (uint16_t)(u[0] << 8 | u[1]),
								  ntohl(dst), (uint16_t)(u[2] << 8 | u[3]));
				if (want != q)
					wrong++;
				per_q[q]++;
				seen++;
			}
			if (r > 0) {
				usnet_netif_rx_release(nif, q, p, (unsigned)r);
				any = 1;
			}
		}
		if (!any)
			usleep(500);
	}
	unsigned used = 0;
	for (uint16_t q = 0; q < nif->info.nqueues; q++)
		used += per_q[q] > 0;
	printf("%s: %u flows, %u on the wrong queue, %u queues used\n", backend, seen, wrong, used);
	if (seen < count)
		die("%s: only %u of %u UDP frames arrived", backend, seen, count);
	if (wrong)
		die("%s: %u frames arrived on another queue than usnet_netif_flow_queue() said", backend, wrong);
	if (nif->info.nqueues > 1 && used < 2)
		die("%s: all flows on one queue", backend);
	usnet_netif_close(nif);
}

/* ---- one netif, two processes that did not fork (netif_share.h) ------- */

/* What the owner and the attached process share besides the netif: the
 * queue's turn (as the stack's process-shared instance lock) and counts. */
struct share_page {
	pthread_mutex_t lock;
	uint32_t got[2];    /* intact echo replies to the owner's (0) and the attacher's (1) requests */
	uint32_t rx_by[2];  /* of those, how many the owner (0) and the attacher (1) received */
	uint32_t bad;       /* damaged or unexpected replies */
};

#define SHARE_ICMP_ID(who) ((uint16_t)(0x5100 + (who)))

static void share_lock(struct share_page *pg)
{
	int r = pthread_mutex_lock(&pg->lock);
	if (r == EOWNERDEAD)
		pthread_mutex_consistent(&pg->lock); /* the other one died holding it */
	else if (r)
		die("share: lock: %s", strerror(r));
}

static uint32_t share_paylen(uint16_t seq)
{
	return 16 + (uint32_t)seq * 37 % 1000;
}

/* ICMP echo request (or reply) id/seq with a payload that depends on both. */
static uint32_t build_echo(uint8_t *f, const uint8_t src_mac[6], const uint8_t dst_mac[6], uint32_t src,
			   uint32_t dst, uint16_t id, uint16_t seq, int reply)
{
	uint32_t pay = share_paylen(seq), l4len = 8 + pay;
	uint16_t tot = (uint16_t)(20 + l4len);
	memcpy(f, dst_mac, 6);
	memcpy(f + 6, src_mac, 6);
	f[12] = 0x08; f[13] = 0x00;
	uint8_t *ip = f + 14;
	memset(ip, 0, 20);
	ip[0] = 0x45; ip[2] = (uint8_t)(tot >> 8); ip[3] = (uint8_t)tot;
	ip[8] = 64; ip[9] = 1;
	memcpy(ip + 12, &src, 4);
	memcpy(ip + 16, &dst, 4);
	uint16_t c = csum16(ip, 20, 0);
	ip[10] = (uint8_t)(c >> 8); ip[11] = (uint8_t)c;
	uint8_t *l4 = ip + 20;
	memset(l4, 0, 8);
	l4[0] = reply ? 0 : 8;
	l4[4] = (uint8_t)(id >> 8); l4[5] = (uint8_t)id;
	l4[6] = (uint8_t)(seq >> 8); l4[7] = (uint8_t)seq;
	for (uint32_t i = 0; i < pay; i++)
		l4[8 + i] = (uint8_t)(id * 7 + seq * 13 + i);
	c = csum16(l4, l4len, 0);
	l4[2] = (uint8_t)(c >> 8); l4[3] = (uint8_t)c;
	return 14 + tot;
}

/* An echo reply from peer to me: which side asked (0 owner, 1 attacher),
 * -1 for anything else, -2 for a reply of ours that arrived damaged. */
static int share_classify(const uint8_t *f, uint32_t len, uint32_t me, uint32_t peer)
{
	if (len < 42 || f[12] != 8 || f[13] != 0 || f[23] != 1 || f[34] != 0 || memcmp(f + 26, &peer, 4) ||
	    memcmp(f + 30, &me, 4))
		return -1;
	uint16_t id = (uint16_t)(f[38] << 8 | f[39]), seq = (uint16_t)(f[40] << 8 | f[41]);
	if (id != SHARE_ICMP_ID(0) && id != SHARE_ICMP_ID(1))
		return -1;
	uint8_t want[2048];
	uint32_t wl = build_echo(want, f + 6, f, peer, me, id, seq, 1);
	/* The IP header is the peer's (its id, TTL); the ICMP message must
	 * come back whole. */
	uint32_t tot = (uint32_t)(f[16] << 8 | f[17]);
	if (len < 14 + tot || tot != wl - 14 || memcmp(f + 34, want + 34, wl - 34))
		return -2;
	return id - SHARE_ICMP_ID(0);
}

struct share_side {
	struct usnet_netif *nif;
	struct share_page *pg;
	int who;                  /* 0 the owner, 1 the attached process */
	uint32_t me, peer;
	uint8_t peer_mac[6];
	struct usnet_netif *reflector; /* memwire: the other end, answering echo (owner only) */
};

/* Drain every queue once, under the lock: count echo replies, answer ARP
 * requests for our address.  Returns how many frames came. */
static int share_service(struct share_side *sd)
{
	struct usnet_netif *nif = sd->nif;
	int total = 0;
	for (uint16_t q = 0; q < nif->info.nqueues; q++) {
		struct usnet_pkt p[32];
		int r = usnet_netif_rx_burst(nif, q, p, 32);
		if (r < 0)
			die("share %d: rx_burst: %s", sd->who, strerror(-r));
		for (int i = 0; i < r; i++) {
			const uint8_t *d = p[i].data;
			if (p[i].len >= 42 && d[12] == 8 && d[13] == 6 && d[21] == 1 && !memcmp(d + 38, &sd->me, 4)) {
				uint8_t rep[60];
				memcpy(rep, d + 6, 6);
				memcpy(rep + 6, nif->info.mac, 6);
				rep[12] = 8; rep[13] = 6;
				memcpy(rep + 14, d + 14, 6);
				rep[20] = 0; rep[21] = 2;
				memcpy(rep + 22, nif->info.mac, 6);
				memcpy(rep + 28, &sd->me, 4);
				memcpy(rep + 32, d + 22, 10);
				memset(rep + 42, 0, 18);
				send_raw(nif, rep, 60);
				continue;
			}
			int c = share_classify(d, p[i].len, sd->me, sd->peer);
			if (c >= 0) {
				sd->pg->got[c]++;
				sd->pg->rx_by[sd->who]++;
			} else if (c == -2) {
				sd->pg->bad++;
			}
		}
		if (r > 0)
			usnet_netif_rx_release(nif, q, p, (unsigned)r);
		total += r > 0 ? r : 0;
	}
	return total;
}

/* memwire: the other end answers each echo request as a kernel would. */
static void share_reflect(struct usnet_netif *rf)
{
	struct usnet_pkt p[32];
	int r = usnet_netif_rx_burst(rf, 0, p, 32);
	for (int i = 0; i < r; i++) {
		const uint8_t *d = p[i].data;
		if (p[i].len < 42 || d[12] != 8 || d[13] != 0 || d[23] != 1 || d[34] != 8)
			continue;
		uint32_t src, dst;
		memcpy(&src, d + 26, 4);
		memcpy(&dst, d + 30, 4);
		uint16_t id = (uint16_t)(d[38] << 8 | d[39]), seq = (uint16_t)(d[40] << 8 | d[41]);
		uint8_t f[2048];
		uint32_t len = build_echo(f, d, d + 6, dst, src, id, seq, 1);
		/* Answer with what came, not with what should have: the
		 * requester checks the payload. */
		uint32_t tot = (uint32_t)(d[16] << 8 | d[17]);
		if (14 + tot == len && p[i].len >= len) {
			memcpy(f + 42, d + 42, len - 42);
			f[36] = f[37] = 0;
			uint16_t c = csum16(f + 34, len - 34, 0);
			f[36] = (uint8_t)(c >> 8); f[37] = (uint8_t)c;
		}
		send_raw(rf, f, len);
	}
	if (r > 0)
		usnet_netif_rx_release(rf, 0, p, (unsigned)r);
}

/* Ping `count` times (sequence numbers from seq0), one request in flight,
 * taking turns on the netif under the page's lock; a reply may be received
 * by either process. */
static void share_ping(struct share_side *sd, uint16_t seq0, uint32_t count)
{
	struct share_page *pg = sd->pg;
	share_lock(pg);
	uint32_t base = pg->got[sd->who];
	pthread_mutex_unlock(&pg->lock);
	for (uint32_t i = 0; i < count; i++) {
		uint8_t f[2048];
		share_lock(pg);
		send_raw(sd->nif, f, build_echo(f, sd->nif->info.mac, sd->peer_mac, sd->me, sd->peer,
						SHARE_ICMP_ID(sd->who), (uint16_t)(seq0 + i), 0));
		pthread_mutex_unlock(&pg->lock);
		uint64_t end = now_ms() + 3000;
		for (;;) {
			share_lock(pg);
			int n = share_service(sd);
			uint32_t got = pg->got[sd->who];
			pthread_mutex_unlock(&pg->lock);
			if (sd->reflector)
				share_reflect(sd->reflector);
			if (got > base + i)
				break;
			if (now_ms() > end)
				die("share %d: echo %u got no reply (%u replies so far)", sd->who, i, got - base);
			if (n == 0 && !sd->reflector) {
				struct pollfd pfd = { usnet_netif_wait_fd(sd->nif, 0), POLLIN, 0 };
				if (pfd.fd >= 0)
					poll(&pfd, 1, 1);
				else
					usleep(200);
			}
		}
	}
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned m[6];
	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6)
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)m[i];
	return 0;
}

/* Sockets of AF_PACKET bound to ifindex, from /proc/net/packet. */
static int packet_sockets_on(int ifindex)
{
	FILE *f = fopen("/proc/net/packet", "r");
	if (!f)
		return -1;
	char line[512];
	int n = 0;
	if (!fgets(line, sizeof line, f)) {
		fclose(f);
		return -1;
	}
	while (fgets(line, sizeof line, f)) {
		unsigned long long sk;
		int ref, type, proto, iface;
		if (sscanf(line, "%llx %d %d %x %d", &sk, &ref, &type, &proto, &iface) == 5 && iface == ifindex)
			n++;
	}
	fclose(f);
	return n;
}

static void test_share(const char *self, const char *backend, const char *iface, const char *opts, const char *myip,
		       const char *peerip, uint32_t count)
{
	char err[256];
	struct usnet_netif *nif, *pair[2] = { NULL, NULL };
	int is_pair = !strcmp(backend, "memwire") && !strcmp(iface, "pair");
	int tap_created = !strcmp(backend, "tap") && if_nametoindex(iface) == 0;
	if (is_pair) {
		if (usnet_memwire_pair(pair, opts && opts[0] ? opts : NULL, err, sizeof err))
			die("%s", err);
		nif = pair[0];
	} else {
		struct usnet_netif_config cfg = { .backend = backend, .iface = iface,
						  .options = opts && opts[0] ? opts : NULL };
		if (getenv("NETIF_TEST_QUEUES"))
			cfg.queues = (uint16_t)atoi(getenv("NETIF_TEST_QUEUES"));
		if (usnet_netif_open(&cfg, &nif, err, sizeof err))
			die("%s", err);
	}
	int ifindex = is_pair ? 0 : (int)if_nametoindex(nif->info.ifname);
	if (tap_created) {
		/* The kernel's side of the device this open created. */
		char cmd[256];
		snprintf(cmd, sizeof cmd, "ip addr add %s/24 dev %s && ip link set %s up", peerip, iface, iface);
		if (system(cmd) != 0)
			die("share: cannot configure %s", iface);
	}
	struct share_side sd = { .nif = nif, .who = 0, .me = inet_addr(myip), .peer = inet_addr(peerip) };
	if (is_pair) {
		memcpy(sd.peer_mac, pair[1]->info.mac, 6);
		sd.reflector = pair[1];
	} else {
		struct arp_match am = { .peer = sd.peer, .mymac = nif->info.mac };
		uint8_t f[256];
		int ok = -1;
		for (int tries = 0; tries < 5 && ok; tries++) {
			send_raw(nif, f, build_arp_request(f, nif->info.mac, sd.me, sd.peer));
			ok = wait_frame(nif, match_arp_reply, &am, 400);
		}
		if (ok)
			die("%s: no ARP reply from %s", backend, peerip);
		memcpy(sd.peer_mac, am.mac, 6);
	}
	/* The lock and the counts: a memfd the exec'd process inherits. */
	int pgfd = memfd_create("netif-test-share", 0);
	if (pgfd < 0 || ftruncate(pgfd, sizeof(struct share_page)) < 0)
		die("share: memfd: %s", strerror(errno));
	struct share_page *pg = mmap(NULL, sizeof *pg, PROT_READ | PROT_WRITE, MAP_SHARED, pgfd, 0);
	if (pg == MAP_FAILED)
		die("share: mmap: %s", strerror(errno));
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&pg->lock, &ma);
	sd.pg = pg;

	struct usnet_netif_share sh;
	if (usnet_netif_share(nif, &sh, err, sizeof err))
		die("%s", err);
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		die("socketpair: %s", strerror(errno));
	char a_sock[16], a_pg[16], a_mac[32], a_count[16];
	snprintf(a_sock, sizeof a_sock, "%d", sp[1]);
	snprintf(a_pg, sizeof a_pg, "%d", pgfd);
	snprintf(a_mac, sizeof a_mac, "%02x:%02x:%02x:%02x:%02x:%02x", sd.peer_mac[0], sd.peer_mac[1],
		 sd.peer_mac[2], sd.peer_mac[3], sd.peer_mac[4], sd.peer_mac[5]);
	snprintf(a_count, sizeof a_count, "%u", count);
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		/* A fresh image: the netif's fds (close-on-exec) do not survive,
		 * only the socket and the page. */
		fcntl(sp[1], F_SETFD, 0);
		execl(self, self, "attached", a_sock, a_pg, myip, peerip, a_mac, a_count, (char *)NULL);
		_exit(127);
	}
	close(sp[1]);
	int r = usnet_netif_share_send(sp[0], &sh);
	if (r)
		die("share: send: %s", strerror(-r));
	share_ping(&sd, 0, count);
	/* Keep serving the queue (and the reflector) until the other is done. */
	int st = 0;
	uint64_t end = now_ms() + 30000;
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			break;
		if (now_ms() > end) {
			kill(pid, SIGKILL);
			die("share: the attached process did not finish");
		}
		share_lock(pg);
		int n = share_service(&sd);
		pthread_mutex_unlock(&pg->lock);
		if (sd.reflector)
			share_reflect(sd.reflector);
		if (n == 0)
			usleep(200);
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		die("share: the attached process failed (status %d)", st);
	if (pg->got[0] != count || pg->got[1] != count || pg->bad)
		die("share: replies owner %u attacher %u of %u each, %u damaged", pg->got[0], pg->got[1], count, pg->bad);
	if (!pg->rx_by[0] || !pg->rx_by[1])
		die("share: received by the owner %u, by the attacher %u: both should", pg->rx_by[0], pg->rx_by[1]);
	printf("%s: owner and an exec'd attacher, %u echo replies each, intact; %u received by the owner, %u by the attacher\n",
	       backend, count, pg->rx_by[0], pg->rx_by[1]);
	/* The attacher has closed its netif and gone: the owner carries on. */
	share_ping(&sd, (uint16_t)count, 50);
	printf("%s: the owner carries on alone after the attacher left\n", backend);
	close(sp[0]);
	/* Hold a copy of the device fd past close (as a live attacher would):
	 * the device must go all the same. */
	int held = tap_created ? dup(sh.fds[1]) : -1;
	usnet_netif_close(nif);
	if (pair[1])
		usnet_netif_close(pair[1]);
	if (tap_created) {
		if (if_nametoindex(iface) != 0)
			die("tap: %s is still there after the owner closed (it created it)", iface);
		printf("tap: the owner's close removed %s while another fd held it\n", iface);
	}
	if (held >= 0)
		close(held);
	if (!strcmp(backend, "afpacket")) {
		int n = packet_sockets_on(ifindex);
		if (n != 0)
			die("afpacket: %d packet sockets left on %s after close", n, iface);
		printf("afpacket: no packet socket left on %s\n", iface);
	}
	munmap(pg, sizeof *pg);
	close(pgfd);
}

static int open_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

/* Attach what `sh` describes, on copies of its fds (as a receiver would own
 * them): must fail with -want and one line, leaving no fd behind. */
static void expect_attach_error(const struct usnet_netif_share *orig, void (*spoil)(struct usnet_netif_share *),
				int want, const char *needle)
{
	struct usnet_netif_share sh = *orig;
	int before = open_fds();
	for (uint32_t i = 0; i < sh.nfds; i++)
		sh.fds[i] = fcntl(orig->fds[i], F_DUPFD_CLOEXEC, 0);
	spoil(&sh);
	struct usnet_netif *nif = NULL;
	char err[256] = "";
	int r = usnet_netif_attach(&sh, &nif, err, sizeof err);
	if (r == 0)
		die("share-errors: a spoilt share was attached");
	if (r != -want || !err[0] || strchr(err, '\n') || !strstr(err, needle))
		die("share-errors: want -%d mentioning '%s', got %d '%s'", want, needle, r, err);
	if (open_fds() != before)
		die("share-errors: %d fds left open after a failed attach ('%s')", open_fds() - before, err);
	printf("  refused: %s\n", err);
}

static void spoil_magic(struct usnet_netif_share *sh) { sh->blob[0] ^= 0xff; }
static void spoil_nfds(struct usnet_netif_share *sh) { close(sh->fds[--sh->nfds]); }
static void spoil_region(struct usnet_netif_share *sh)
{
	/* Another memfd of the same size: right shape, wrong contents. */
	struct stat st;
	fstat(sh->fds[0], &st);
	int fd = memfd_create("netif-test-bogus", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, st.st_size) < 0)
		die("memfd: %s", strerror(errno));
	close(sh->fds[0]);
	sh->fds[0] = fd;
}
static void spoil_backend(struct usnet_netif_share *sh) { snprintf(sh->backend, sizeof sh->backend, "dpdk"); }

static void test_share_errors(void)
{
	struct usnet_netif *e[2], *w;
	char err[256];
	if (usnet_memwire_pair(e, NULL, err, sizeof err) || usnet_impair_wrap(e[0], "loss=0.1", &w, err, sizeof err))
		die("share-errors: %s", err);
	/* A wrapper shares the backend under it. */
	struct usnet_netif_share sh;
	if (usnet_netif_share(w, &sh, err, sizeof err) || strcmp(sh.backend, "memwire") || sh.nfds != 4)
		die("share-errors: sharing through a wrapper: %s", err);
	expect_attach_error(&sh, spoil_magic, EPROTO, "another version");
	expect_attach_error(&sh, spoil_nfds, EPROTO, "not a memwire's");
	expect_attach_error(&sh, spoil_region, EPROTO, "does not hold side 0");
	expect_attach_error(&sh, spoil_backend, EOPNOTSUPP, "cannot be shared");
	/* The good one still attaches, and works, after all that. */
	struct usnet_netif_share ok = sh;
	for (uint32_t i = 0; i < ok.nfds; i++)
		ok.fds[i] = fcntl(sh.fds[i], F_DUPFD_CLOEXEC, 0);
	struct usnet_netif *a;
	if (usnet_netif_attach(&ok, &a, err, sizeof err))
		die("share-errors: %s", err);
	pump(a, e[1], 3000, 11);
	usnet_netif_close(a);
	pump(e[0], e[1], 3000, 17);
	usnet_netif_close(w);
	usnet_netif_close(e[1]);
	printf("share-errors ok\n");
}

/* The exec'd side of test_share(). */
static void test_attached(int sock, int pgfd, const char *myip, const char *peerip, const char *peermac,
			  uint32_t count)
{
	struct usnet_netif_share sh;
	int r = usnet_netif_share_recv(sock, &sh);
	if (r)
		die("attached: receiving the share: %s", strerror(-r));
	struct usnet_netif *nif;
	char err[256];
	if (usnet_netif_attach(&sh, &nif, err, sizeof err))
		die("attached: %s", err);
	struct share_page *pg = mmap(NULL, sizeof *pg, PROT_READ | PROT_WRITE, MAP_SHARED, pgfd, 0);
	if (pg == MAP_FAILED)
		die("attached: mmap: %s", strerror(errno));
	struct share_side sd = { .nif = nif, .pg = pg, .who = 1, .me = inet_addr(myip), .peer = inet_addr(peerip) };
	if (parse_mac(peermac, sd.peer_mac))
		die("attached: bad MAC %s", peermac);
	share_ping(&sd, 1000, count);
	usnet_netif_close(nif);
	munmap(pg, sizeof *pg);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc < 2)
		die("usage: netif_test pair|proc|impair-trace|impair-rates|impair-bad|pcap|open-errors|ping ...");
	const char *cmd = argv[1];
	if (!strcmp(cmd, "pair")) {
		test_pair(argc > 2 ? argv[2] : NULL);
	} else if (!strcmp(cmd, "threads")) {
		test_threads(argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 0) : 200000);
	} else if (!strcmp(cmd, "fork")) {
		test_fork();
	} else if (!strcmp(cmd, "proc") && argc >= 5) {
		test_proc(argv[2], atoi(argv[3]), (uint32_t)strtoul(argv[4], NULL, 0), argc > 5 ? argv[5] : NULL);
	} else if (!strcmp(cmd, "impair-trace") && argc >= 4) {
		struct usnet_impair_stats st[2];
		uint32_t a, u, b;
		impair_run(argv[2], (uint32_t)strtoul(argv[3], NULL, 0), 0, st, &a, &u, &b);
	} else if (!strcmp(cmd, "impair-rates")) {
		test_impair_rates();
		test_impair_delay();
		test_impair_no_wait_fd();
	} else if (!strcmp(cmd, "impair-bad") && argc >= 3) {
		struct usnet_netif *e[2], *w;
		char err[256] = "";
		if (usnet_memwire_pair(e, NULL, err, sizeof err))
			die("%s", err);
		int r = usnet_impair_wrap(e[0], argv[2], &w, err, sizeof err);
		if (r == 0)
			die("spec '%s' accepted", argv[2]);
		if (r != -EINVAL || !err[0])
			die("spec '%s': got %d '%s'", argv[2], r, err);
		printf("%s\n", err);
		usnet_netif_close(e[0]);
		usnet_netif_close(e[1]);
	} else if (!strcmp(cmd, "pcap") && argc >= 3) {
		test_pcap(argv[2]);
	} else if (!strcmp(cmd, "open-errors")) {
		test_open_errors();
	} else if (!strcmp(cmd, "spec-fuzz")) {
		test_spec_fuzz(argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 0) : 100000);
	} else if (!strcmp(cmd, "toeplitz")) {
		test_toeplitz();
	} else if (!strcmp(cmd, "flowq") && argc >= 8) {
		test_flowq(argv[2], argv[3], argv[4], argv[5], (uint16_t)atoi(argv[6]), (uint32_t)strtoul(argv[7], NULL, 0));
	} else if (!strcmp(cmd, "burst") && argc >= 8) {
		test_burst(argv[2], argv[3], argv[4], argv[5], argv[6], (uint32_t)strtoul(argv[7], NULL, 0));
	} else if (!strcmp(cmd, "arp-queues") && argc >= 8) {
		test_arp_queues(argv[2], argv[3], argv[4], argv[5], argv[6], (uint16_t)atoi(argv[7]));
	} else if (!strcmp(cmd, "share") && argc >= 8) {
		test_share("/proc/self/exe", argv[2], argv[3], argv[4], argv[5], argv[6], (uint32_t)strtoul(argv[7], NULL, 0));
	} else if (!strcmp(cmd, "share-errors")) {
		test_share_errors();
	} else if (!strcmp(cmd, "attached") && argc >= 8) {
		test_attached(atoi(argv[2]), atoi(argv[3]), argv[4], argv[5], argv[6], (uint32_t)strtoul(argv[7], NULL, 0));
	} else if (!strcmp(cmd, "fill-short") && argc >= 7) {
		test_fill_short(argv[2], argv[3], argv[4], argv[5], argv[6]);
	} else if (!strcmp(cmd, "ping") && argc >= 7) {
		test_ping(argv[2], argv[3], argv[4], argv[5], argv[6]);
	} else {
		die("netif_test: unknown or incomplete command '%s'", cmd);
	}
	return 0;
}
