/*
 * A process killed inside a stack call: two stack instances (10.0.0.1 and
 * 10.0.0.2) live in MAP_SHARED memory, each guarded by a robust process-
 * shared mutex, as the provider keeps them.  A forked child drives them
 * (connections from one to the other and to its own address, bulk and
 * small sends, receives, shutdowns, closes, UDP datagrams large enough to
 * be fragmented, datagrams to a neighbour that never answers ARP, timers
 * on a shared virtual clock) and is SIGKILLed at a random instant, or
 * kills itself at a random point inside a call, hundreds of times.  After each kill the parent takes both locks; where
 * the holder died (EOWNERDEAD) it runs usnet_stack_repair(), and then
 * usnet_stack_check() must pass on both.  The parent drives them a while
 * itself, then forks the next child, which takes over every socket.  At
 * the end everything is closed, the clock runs past TIME_WAIT, and both
 * instances must be back to no socket and no buffer in use; a last
 * connection must carry data intact.
 *
 * The frames between the two instances travel in the driving process's
 * own memory (the harness's capturing netif): a kill loses those in
 * flight, as a wire would, and TCP sends them again.
 *
 *   kill_repair [--kills N] [--seed S] [--steps N] [--no-repair]
 * --steps N first runs N operations in this process alone, checking every
 * invariant after each.
 * --no-repair marks the locks consistent without repairing: the check must
 * then find what the dead child left broken (the test's own proof that it
 * can fail); it exits 0 when it does.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define NINST 2
#define PORT_REMOTE 80    /* listener on B, connected to from A */
#define PORT_SELF 81      /* listener on A, connected to from A itself */
#define PORT_UDP 53       /* UDP socket on B */
#define PORT_CHECKED 82    /* listener on B for the checked stream */
#define T_IP_SILENT 0x0a000009u   /* 10.0.0.9: never answers ARP */
#define CHECKED_TAG 0xc0ffeeull   /* user value of the checked stream's sockets */

struct shared {
	pthread_mutex_t lock[NINST];
	_Atomic uint64_t now;          /* virtual clock, ns */
	_Atomic uint64_t ops;          /* operations completed, all processes */
	size_t arena_off[NINST];
};

static struct shared *sh;
static struct usnet_stack *st[NINST];
static struct tnif nif[NINST];
static struct usnet_io io[NINST];
static uint64_t rng;
static const char *prefix = "stack/";
static uint8_t payload[16384];

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 11);
}

static uint64_t now_get(void) { return atomic_load(&sh->now); }

/*
 * Deaths at chosen points inside calls: a child may be given a countdown of
 * netif operations (the stack borrowing, sending or returning a frame
 * buffer, always from inside a call), and kills itself when it runs out.
 * Those points fall in the middle of building a reply, of flushing an ARP
 * queue, of delivering looped-back frames: places a kill from outside
 * rarely hits.
 */
static long netif_countdown = -1;   /* -1: off */
static struct usnet_netif_ops counted_ops;
static const struct usnet_netif_ops *plain_ops;

static void count_netif_op(void)
{
	if (netif_countdown > 0 && --netif_countdown == 0)
		raise(SIGKILL);
}

static int counted_tx_alloc(struct usnet_netif *n, uint16_t q, struct usnet_pkt *p, unsigned k)
{
	count_netif_op();
	return plain_ops->tx_alloc(n, q, p, k);
}

static int counted_tx_burst(struct usnet_netif *n, uint16_t q, struct usnet_pkt *p, unsigned k)
{
	count_netif_op();
	return plain_ops->tx_burst(n, q, p, k);
}

static void counted_tx_free(struct usnet_netif *n, uint16_t q, struct usnet_pkt *p, unsigned k)
{
	count_netif_op();
	plain_ops->tx_free(n, q, p, k);
}

static void lock(int i) { pthread_mutex_lock(&sh->lock[i]); }
static void unlock(int i) { pthread_mutex_unlock(&sh->lock[i]); }

/* Frames one instance sent go to the other (ARP for 10.0.0.9 is lost). */
static void pump(void)
{
	static uint8_t bufs[32][TNIF_FRAME];
	for (int round = 0; round < 16; round++) {
		int moved = 0;
		for (int from = 0; from < NINST; from++) {
			int to = 1 - from;
			struct usnet_pkt pk[32];
			unsigned n = 0;
			struct tframe *f;
			while ((f = tnif_next(&nif[from])) != NULL) {
				memcpy(bufs[n], f->d, f->len);
				memset(&pk[n], 0, sizeof pk[n]);
				pk[n].data = bufs[n];
				pk[n].len = f->len;
				/* Offloaded checksums are as good as verified here. */
				pk[n].flags = f->flags ? USNET_PKT_RX_CSUM_OK : 0;
				if (++n == 32) {
					lock(to);
					usnet_stack_input(st[to], &io[to], pk, n, now_get());
					unlock(to);
					n = 0;
				}
				moved = 1;
			}
			tnif_clear(&nif[from]);
			if (n) {
				lock(to);
				usnet_stack_input(st[to], &io[to], pk, n, now_get());
				unlock(to);
			}
		}
		if (!moved)
			break;
	}
}

/* A socket of instance i its user holds (not an orphan or an unaccepted
 * child), picked at random, or -1. */
static int pick_socket(int i, int type)
{
	int n = 0, pick = -1;
	for (int s = usnet_sock_next(st[i], 0); s >= 0; s = usnet_sock_next(st[i], s + 1)) {
		int t;
		if (usnet_getsockopt(st[i], s, USNET_SO_TYPE, &t) != 0 || (type && t != type) ||
		    usnet_sock_get_user(st[i], s) == CHECKED_TAG)
			continue;
		if (rnd() % (uint32_t)++n == 0)
			pick = s;
	}
	return pick;
}

static int listening(int i, int s)
{
	int v = 0;
	return usnet_getsockopt(st[i], s, USNET_SO_ACCEPTCONN, &v) == 0 && v;
}

static void ensure_listener(int i, uint16_t port)
{
	for (int s = usnet_sock_next(st[i], 0); s >= 0; s = usnet_sock_next(st[i], s + 1)) {
		struct usnet_addr a;
		if (listening(i, s) && usnet_getsockname(st[i], s, &a) == 0 && a.port == port)
			return;
	}
	int s = usnet_socket(st[i], USNET_SOCK_STREAM);
	if (s < 0)
		return;
	usnet_setsockopt(st[i], s, USNET_SO_REUSEADDR, 1);
	if (usnet_bind(st[i], s, &(struct usnet_addr){ .ip = 0, .port = port }) < 0 || usnet_listen(st[i], s, 16) < 0)
		usnet_close(st[i], &io[i], s, now_get());
}

/* One random operation; the instances' locks are taken around each call. */
static void step(void)
{
	uint64_t now = atomic_fetch_add(&sh->now, (uint64_t)(rnd() % 4000) * 1000);
	int i = (int)(rnd() % NINST);
	uint32_t op = rnd() % 100;
	if (op < 8) {
		lock(0);
		ensure_listener(0, PORT_SELF);
		unlock(0);
		lock(1);
		ensure_listener(1, PORT_REMOTE);
		int u = pick_socket(1, USNET_SOCK_DGRAM);
		if (u < 0 && (u = usnet_socket(st[1], USNET_SOCK_DGRAM)) >= 0 &&
		    usnet_bind(st[1], u, &(struct usnet_addr){ .ip = 0, .port = PORT_UDP }) < 0)
			usnet_close(st[1], &io[1], u, now);
		unlock(1);
	} else if (op < 22) {
		/* A connects to B, or to itself. */
		lock(0);
		int s = usnet_socket(st[0], USNET_SOCK_STREAM);
		if (s >= 0) {
			struct usnet_addr to = rnd() % 4 ? (struct usnet_addr){ .ip = T_IP_PEER, .port = PORT_REMOTE } :
							   (struct usnet_addr){ .ip = T_IP_US, .port = PORT_SELF };
			usnet_connect(st[0], &io[0], s, &to, now);
		}
		unlock(0);
	} else if (op < 30) {
		/* Accept what is waiting. */
		lock(i);
		for (int l = usnet_sock_next(st[i], 0); l >= 0; l = usnet_sock_next(st[i], l + 1))
			if (listening(i, l) && usnet_sock_get_user(st[i], l) != CHECKED_TAG)
				while (usnet_accept(st[i], &io[i], l, NULL, now) >= 0)
					;
		unlock(i);
	} else if (op < 50) {
		lock(i);
		int s = pick_socket(i, USNET_SOCK_STREAM);
		if (s >= 0 && !listening(i, s)) {
			size_t len = rnd() % 4 ? 1 + rnd() % 1400 : 1 + rnd() % sizeof payload;
			usnet_send(st[i], &io[i], s, payload, len, rnd() % 8 ? 0 : USNET_MSG_MORE, now);
		}
		unlock(i);
	} else if (op < 68) {
		lock(i);
		int s = pick_socket(i, 0);
		if (s >= 0) {
			static uint8_t buf[32768];
			usnet_recv(st[i], &io[i], s, buf, 1 + rnd() % sizeof buf, 0, now);
		}
		unlock(i);
	} else if (op < 76) {
		lock(i);
		int s = pick_socket(i, 0);
		if (s >= 0 && (!listening(i, s) || rnd() % 8 == 0)) {
			if (rnd() % 4 == 0)
				usnet_setsockopt(st[i], s, USNET_SO_LINGER, 0);
			usnet_close(st[i], &io[i], s, now);
		}
		unlock(i);
	} else if (op < 80) {
		lock(i);
		int s = pick_socket(i, USNET_SOCK_STREAM);
		if (s >= 0)
			usnet_shutdown(st[i], &io[i], s, 1, now);
		unlock(i);
	} else if (op < 88) {
		/* UDP from A: to B (fragmented when large), or to a neighbour
		 * that never answers (the datagram waits on ARP). */
		lock(0);
		int u = pick_socket(0, USNET_SOCK_DGRAM);
		if (u < 0)
			u = usnet_socket(st[0], USNET_SOCK_DGRAM);
		if (u >= 0) {
			struct usnet_addr to = rnd() % 5 ? (struct usnet_addr){ .ip = T_IP_PEER, .port = PORT_UDP } :
							   (struct usnet_addr){ .ip = T_IP_SILENT, .port = 9 };
			usnet_sendv(st[0], &io[0], u, &(struct usnet_iovec){ payload, 1 + rnd() % 4000 }, 1, 0, &to,
				    now);
		}
		unlock(0);
	} else {
		/* Timers; now and then a long pause. */
		if (rnd() % 16 == 0)
			atomic_fetch_add(&sh->now, (uint64_t)(rnd() % 3000) * MS);
		lock(i);
		usnet_stack_poll(st[i], &io[i], now_get());
		unlock(i);
	}
	pump();
	atomic_fetch_add(&sh->ops, 1);
}

static void child_run(uint64_t seed)
{
	rng = seed | 1;
	for (;;)
		step();
}

/*
 * The checked stream: a connection from A to B that only the parent sends
 * on and reads (its sockets carry CHECKED_TAG, which the driver leaves
 * alone), so the parent, which is never killed, knows every byte's place
 * and checks each one.  The children still run its input: the parent
 * leaves segments unsent on its wire when it forks (the child inherits and
 * delivers them), and the children's timers and deliveries carry its ACKs,
 * so the steps of its sequence numbers (struct seq_journal) are cut short
 * by kills too.  A reset (a repair that could not make the connection
 * whole) starts a new one; a byte out of place fails the test.
 */
static struct {
	int a, b;              /* sockets on A and B, -1 while none */
	uint64_t sent, got;    /* stream positions */
	unsigned resets, streams;
	uint64_t checked;      /* bytes received and checked, all streams */
} chk = { -1, -1, 0, 0, 0, 0, 0 };

static uint8_t checked_byte(uint64_t pos, unsigned stream)
{
	uint64_t x = (pos + 1) * 0x9e3779b97f4a7c15ull ^ stream;
	return (uint8_t)(x >> 56);
}

static void checked_restart(void)
{
	for (int side = 0; side < 2; side++) {
		int s = side ? chk.b : chk.a;
		if (s >= 0) {
			lock(side);
			usnet_setsockopt(st[side], s, USNET_SO_LINGER, 0);
			usnet_close(st[side], &io[side], s, now_get());
			unlock(side);
		}
	}
	chk.a = chk.b = -1;
	chk.sent = chk.got = 0;
	chk.streams++;
	lock(0);
	int c = usnet_socket(st[0], USNET_SOCK_STREAM);
	if (c >= 0) {
		usnet_sock_set_user(st[0], c, CHECKED_TAG);
		usnet_connect(st[0], &io[0], c, &(struct usnet_addr){ .ip = T_IP_PEER, .port = PORT_CHECKED }, now_get());
		chk.a = c;
	}
	unlock(0);
}

/* One round of the checked stream: accept, send, receive and check.
 * Returns -1 (and why) on a byte out of place. */
static int checked_step(int pump_after, char *why, size_t len)
{
	if (chk.a < 0) {
		checked_restart();
		return 0;
	}
	lock(1);
	if (chk.b < 0) {
		for (int l = usnet_sock_next(st[1], 0); l >= 0 && chk.b < 0; l = usnet_sock_next(st[1], l + 1))
			if (listening(1, l) && usnet_sock_get_user(st[1], l) == CHECKED_TAG) {
				int b = usnet_accept(st[1], &io[1], l, NULL, now_get());
				if (b >= 0) {
					usnet_sock_set_user(st[1], b, CHECKED_TAG);
					chk.b = b;
				}
			}
	}
	int failed = 0;
	if (chk.b >= 0) {
		uint8_t in[8192];
		long n;
		while ((n = usnet_recv(st[1], &io[1], chk.b, in, sizeof in, 0, now_get())) > 0) {
			for (long k = 0; k < n; k++)
				if (in[k] != checked_byte(chk.got + (uint64_t)k, chk.streams)) {
					snprintf(why, len, "checked stream %u: byte %llu out of place", chk.streams,
						 (unsigned long long)(chk.got + (uint64_t)k));
					unlock(1);
					return -1;
				}
			chk.got += (uint64_t)n;
			chk.checked += (uint64_t)n;
		}
		failed = n < 0 && n != -USNET_EAGAIN;
	}
	unlock(1);
	lock(0);
	uint8_t out[3000];
	uint32_t want = 1 + rnd() % sizeof out;
	for (uint32_t k = 0; k < want; k++)
		out[k] = checked_byte(chk.sent + k, chk.streams);
	long w = usnet_send(st[0], &io[0], chk.a, out, want, 0, now_get());
	if (w > 0)
		chk.sent += (uint64_t)w;
	else if (w != -USNET_EAGAIN)
		failed = 1;
	unlock(0);
	if (failed) {
		/* Reset (by a repair, or a timeout while frames were lost):
		 * not corruption; a new stream. */
		chk.resets++;
		checked_restart();
	}
	if (pump_after)
		pump();
	return 0;
}

/* Take every lock; repair where the holder died.  Returns the repairs. */
static int take_over(int repair, unsigned *fixes)
{
	int died = 0;
	for (int i = 0; i < NINST; i++) {
		int r = pthread_mutex_lock(&sh->lock[i]);
		if (r == EOWNERDEAD) {
			died++;
			if (repair) {
				int n = usnet_stack_repair(st[i], now_get());
				if (n < 0) {
					fprintf(stderr, "repair failed: %d\n", n);
					exit(2);
				}
				*fixes += (unsigned)n;
			}
			pthread_mutex_consistent(&sh->lock[i]);
		} else if (r != 0) {
			fprintf(stderr, "lock: %d\n", r);
			exit(2);
		}
	}
	return died;
}

static int check_all(char *why, size_t len)
{
	for (int i = 0; i < NINST; i++) {
		char w[200];
		if (usnet_stack_check(st[i], w, sizeof w) != 0) {
			snprintf(why, len, "instance %d: %s", i, w);
			return -1;
		}
	}
	return 0;
}

static void unlock_all(void)
{
	for (int i = 0; i < NINST; i++)
		pthread_mutex_unlock(&sh->lock[i]);
}

/* Close every socket a user holds, then run the clock (and the wire)
 * until nothing is pending. */
static void close_everything(void)
{
	for (int i = 0; i < NINST; i++) {
		lock(i);
		for (int s = usnet_sock_next(st[i], 0); s >= 0; s = usnet_sock_next(st[i], s + 1))
			usnet_close(st[i], &io[i], s, now_get());
		unlock(i);
		pump();
	}
	uint64_t end = now_get() + 900 * SEC;
	while (now_get() < end) {
		uint64_t next = UINT64_MAX;
		for (int i = 0; i < NINST; i++) {
			lock(i);
			uint64_t d = usnet_stack_poll(st[i], &io[i], now_get());
			unlock(i);
			if (d < next)
				next = d;
		}
		pump();
		if (next == UINT64_MAX)
			break;
		uint64_t t = next > now_get() ? next : now_get() + MS;
		atomic_store(&sh->now, t < end ? t : end);
	}
}

/* A new connection from A to B carries 200 KB each way, intact. */
static int transfer_ok(char *why, size_t len)
{
	lock(1);
	ensure_listener(1, PORT_REMOTE);
	unlock(1);
	lock(0);
	int c = usnet_socket(st[0], USNET_SOCK_STREAM);
	int r = usnet_connect(st[0], &io[0], c, &(struct usnet_addr){ .ip = T_IP_PEER, .port = PORT_REMOTE }, now_get());
	unlock(0);
	if (c < 0 || r != -USNET_EINPROGRESS) {
		snprintf(why, len, "connect: socket %d, %d", c, r);
		return -1;
	}
	int a = -1;
	enum { TOTAL = 200000 };
	uint64_t sent[2] = { 0, 0 }, got[2] = { 0, 0 };
	for (int round = 0; round < 20000 && (got[0] < TOTAL || got[1] < TOTAL); round++) {
		atomic_fetch_add(&sh->now, 100 * 1000);
		lock(1);
		if (a < 0)
			for (int l = usnet_sock_next(st[1], 0); l >= 0 && a < 0; l = usnet_sock_next(st[1], l + 1))
				if (listening(1, l))
					a = usnet_accept(st[1], &io[1], l, NULL, now_get());
		unlock(1);
		for (int side = 0; side < 2; side++) {
			int i = side, s = side ? a : c;
			if (s < 0)
				continue;
			lock(i);
			while (sent[side] < TOTAL) {
				uint8_t out[4096];
				uint32_t n = TOTAL - sent[side] < sizeof out ? (uint32_t)(TOTAL - sent[side]) : sizeof out;
				for (uint32_t k = 0; k < n; k++)
					out[k] = (uint8_t)((sent[side] + k) * 7 + side);
				long w = usnet_send(st[i], &io[i], s, out, n, 0, now_get());
				if (w <= 0)
					break;
				sent[side] += (uint64_t)w;
			}
			uint8_t in[8192];
			long n;
			while ((n = usnet_recv(st[i], &io[i], s, in, sizeof in, 0, now_get())) > 0) {
				for (long k = 0; k < n; k++)
					if (in[k] != (uint8_t)((got[side] + (uint64_t)k) * 7 + (1 - side))) {
						unlock(i);
						snprintf(why, len, "byte %llu received corrupt", (unsigned long long)(got[side] + (uint64_t)k));
						return -1;
					}
				got[side] += (uint64_t)n;
			}
			usnet_stack_poll(st[i], &io[i], now_get());
			unlock(i);
		}
		pump();
	}
	if (got[0] < TOTAL || got[1] < TOTAL) {
		snprintf(why, len, "transfer stalled: %llu and %llu of %d bytes", (unsigned long long)got[0],
			 (unsigned long long)got[1], TOTAL);
		return -1;
	}
	return 0;
}

/* Both instances back to their idle counts, every invariant holding. */
static int idle_now(const struct usnet_stack_stats *idle, char *why, size_t len)
{
	int r = 0;
	why[0] = 0;
	for (int i = 0; i < NINST; i++) {
		struct usnet_stack_stats s;
		usnet_stack_stats(st[i], &s);
		char w[200] = "";
		if (s.sockets_in_use != idle[i].sockets_in_use || s.buffers_in_use != idle[i].buffers_in_use ||
		    s.arp_waiting != 0 || usnet_stack_check(st[i], w, sizeof w) != 0) {
			size_t at = strlen(why);
			snprintf(why + at, len - at, "instance %d: sockets %u (idle %u), buffer bytes %llu %s; ", i,
				 s.sockets_in_use, idle[i].sockets_in_use, (unsigned long long)s.buffers_in_use, w);
			r = -1;
		}
	}
	return r;
}

static void result(int ok, const char *name, const char *why)
{
	if (ok)
		printf("PASS %s%s\n", prefix, name);
	else
		printf("FAIL %s%s: %s\n", prefix, name, why);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	int kills = 300, repair = 1, steps = 0;
	uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	for (int k = 1; k < argc; k++) {
		if (!strcmp(argv[k], "--kills") && k + 1 < argc)
			kills = atoi(argv[++k]);
		else if (!strcmp(argv[k], "--seed") && k + 1 < argc)
			seed = strtoull(argv[++k], NULL, 0);
		else if (!strcmp(argv[k], "--steps") && k + 1 < argc)
			steps = atoi(argv[++k]);
		else if (!strcmp(argv[k], "--no-repair"))
			repair = 0;
		else {
			fprintf(stderr, "usage: %s [--kills N] [--seed S] [--steps N] [--no-repair]\n", argv[0]);
			return 2;
		}
	}
	if (getenv("STACK_TEST_PREFIX"))
		prefix = getenv("STACK_TEST_PREFIX");
	rng = seed | 1;
	for (size_t k = 0; k < sizeof payload; k++)
		payload[k] = (uint8_t)(k * 31 + 7);

	struct usnet_stack_config cfg[NINST];
	size_t off = (sizeof(struct shared) + 4095) & ~(size_t)4095, total = off;
	for (int i = 0; i < NINST; i++) {
		tenv_default_cfg(&cfg[i]);
		cfg[i].max_sockets = 128;
		cfg[i].buffer_bytes = 4u << 20;
		cfg[i].secret[0] = seed;
		if (i == 1) {
			memcpy(cfg[i].mac, T_MAC_PEER, 6);
			cfg[i].ip = T_IP_PEER;
		}
		total += (usnet_stack_mem_size(&cfg[i]) + 4095) & ~(size_t)4095;
	}
	void *m = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	sh = m;
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	for (int i = 0; i < NINST; i++) {
		pthread_mutex_init(&sh->lock[i], &ma);
		sh->arena_off[i] = off;
		size_t sz = (usnet_stack_mem_size(&cfg[i]) + 4095) & ~(size_t)4095;
		st[i] = usnet_stack_create((char *)m + off, sz, &cfg[i]);
		off += sz;
		tnif_init(&nif[i], cfg[i].mac);
		plain_ops = nif[i].nif.ops;
		counted_ops = *plain_ops;
		counted_ops.tx_alloc = counted_tx_alloc;
		counted_ops.tx_burst = counted_tx_burst;
		counted_ops.tx_free = counted_tx_free;
		nif[i].nif.ops = &counted_ops;
		io[i].netif = &nif[i].nif;
	}
	atomic_store(&sh->now, 1 * SEC);
	struct usnet_stack_stats idle[NINST];
	for (int i = 0; i < NINST; i++)
		usnet_stack_stats(st[i], &idle[i]);
	lock(1);
	int cl = usnet_socket(st[1], USNET_SOCK_STREAM);
	usnet_sock_set_user(st[1], cl, CHECKED_TAG);
	if (cl < 0 || usnet_bind(st[1], cl, &(struct usnet_addr){ .ip = 0, .port = PORT_CHECKED }) < 0 || usnet_listen(st[1], cl, 4) < 0) {
		fprintf(stderr, "cannot listen for the checked stream\n");
		return 2;
	}
	unlock(1);

	char why[300] = "";
	/* --steps N: the same operations in this process alone, the check
	 * after each (the invariants hold between calls without any death). */
	for (int n = 0; n < steps; n++) {
		step();
		if (check_all(why, sizeof why) != 0) {
			fprintf(stderr, "after step %d: %s\n", n, why);
			return 1;
		}
	}
	if (steps && !kills) {
		printf("PASS %skill-repair-steps-checked\n", prefix);
		return 0;
	}
	int ok = 1, in_call = 0;
	unsigned fixes = 0;
	int k;
	for (k = 0; k < kills && ok; k++) {
		uint64_t child_seed = ((uint64_t)rnd() << 32 | rnd()) ^ (uint64_t)k;
		/* Every other child dies by its own countdown (unless the
		 * parent's kill comes first). */
		long countdown = k % 2 ? 1 + (long)(rnd() % 20000) : -1;
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 2;
		}
		if (pid == 0) {
			netif_countdown = countdown;
			child_run(child_seed);
		}
		/* A random instant: mostly inside a call, sometimes between. */
		struct timespec d = { 0, (long)(200 + rnd() % 3000) * 1000 };
		nanosleep(&d, NULL);
		kill(pid, SIGKILL);
		int status;
		waitpid(pid, &status, 0);
		if (!WIFSIGNALED(status)) {
			snprintf(why, sizeof why, "child %d ended by itself (status %d)", k, status);
			ok = 0;
			break;
		}
		in_call += take_over(repair, &fixes);
		if (check_all(why, sizeof why) != 0) {
			char w[300];
			snprintf(w, sizeof w, "after kill %d (%d inside a call): %s", k + 1, in_call, why);
			memcpy(why, w, sizeof why);
			ok = 0;
			unlock_all();
			break;
		}
		unlock_all();
		/* The parent goes on with the same sockets (and new ones). */
		for (int n = 0; n < 20 && ok; n++) {
			step();
			if (checked_step(1, why, sizeof why) != 0)
				ok = 0;
		}
		/* Segments of the checked stream left on the wire for the
		 * next child to deliver. */
		if (ok && checked_step(0, why, sizeof why) != 0)
			ok = 0;
	}
	if (!repair) {
		/* Without repair the check must have caught the damage. */
		fprintf(stderr, "kill_repair --no-repair: %s\n", why);
		result(!ok, "kill-without-repair-is-caught",
		       ok ? "every check passed without repair: the test cannot tell" : why);
		return ok ? 1 : 0;
	}
	if (!ok) {
		size_t at = strlen(why);
		snprintf(why + at, sizeof why - at, " (--seed %#llx)", (unsigned long long)seed);
	}
	result(ok, "kill-repair-check", why);
	if (!ok)
		return 1;
	/* On a loaded machine the parent's kill often lands before a child
	 * got far; a twentieth inside a call still proves the point. */
	if (in_call < kills / 20) {
		snprintf(why, sizeof why, "only %d of %d kills landed inside a call", in_call, kills);
		result(0, "kill-repair-inside-calls", why);
		return 1;
	}
	result(1, "kill-repair-inside-calls", "");
	/* The checked stream carried data through the kills (and no byte
	 * came out of place, or the loop above stopped). */
	if (chk.checked < 100000) {
		snprintf(why, sizeof why, "only %llu bytes checked", (unsigned long long)chk.checked);
		result(0, "kill-repair-stream-intact", why);
		return 1;
	}
	result(1, "kill-repair-stream-intact", "");

	/* Everything closed and the clock past TIME_WAIT: idle again; then a
	 * new connection works, and closing it leaves the instances idle. */
	close_everything();
	int idle_again = idle_now(idle, why, sizeof why) == 0;
	result(idle_again, "kill-repair-idle-after", why);
	int fine = transfer_ok(why, sizeof why) == 0;
	close_everything();
	if (fine && idle_now(idle, why, sizeof why) != 0)
		fine = 0;
	result(fine, "kill-repair-transfer-after", why);
	fprintf(stderr,
		"kill_repair: seed %#llx, %d kills, %d inside a call, %u repairs, %llu operations; "
		"checked stream: %llu bytes in %u streams, %u reset\n",
		(unsigned long long)seed, kills, in_call, fixes, (unsigned long long)atomic_load(&sh->ops),
		(unsigned long long)chk.checked, chk.streams, chk.resets);
	return fine && idle_again ? 0 : 1;
}
