/*
 * Stream integrity under threads (tests/stress/run.sh).
 *
 *   stress-streams peer ADDR PORT EXPECT_SRC CHURN_ADDR CHURN_PORT SECONDS
 *       the kernel side, run natively in the peer namespace: an echo server
 *       on ADDR:PORT that checks every stream it receives against its
 *       pattern before echoing it, and a connector that keeps opening (and
 *       dropping) connections to CHURN_ADDR:CHURN_PORT, the client's
 *       listener.  Every connection must come from EXPECT_SRC (usnet's
 *       address: the proof that the client's traffic went through usnet).
 *   stress-streams client PEER_ADDR PORT CHURN_PORT SECONDS [STREAM_THREADS [CHURN_THREADS]]
 *       the program run under `usnet run`: STREAM_THREADS threads (half
 *       blocking, half non-blocking with epoll, several connections each)
 *       carry patterned streams to the echo server and check what comes
 *       back, while CHURN_THREADS threads open, accept, shut down and close
 *       other sockets at random, and close sockets other threads are
 *       receiving on.
 *
 * A stream is a 24-byte header (magic, connection number, seed, length)
 * then `length` bytes; byte `o` is a function of (seed, o) only.  The echo
 * server returns the bytes after the header.  Any byte that differs is
 * reported with the connection, the direction and the offset, and with
 * where the bytes came from when they can be found (this stream at another
 * offset: reordered or duplicated; another connection's stream: crossed).
 * A stream that ends early or stalls is reported as lost bytes.  Both sides
 * end with one summary line and exit 1 after any failure.  Every wait is
 * bounded: the client's connections stop starting at SECONDS, and a
 * watchdog ends either side SECONDS + 20 s after it started.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAGIC_STREAM 0x55535452u   /* checked by the echo server */
#define MAGIC_CHURN 0x55534348u    /* echoed but not checked (partial on purpose) */
#define MAGIC_DONE 0x5553444eu     /* the client's last connection: the peer may end */
#define HDR_LEN 24
#define WINDOW (96 * 1024)         /* bytes a stream has in flight at most */
#define IO_TIMEOUT_S 10            /* a stalled stream: its bytes are lost */
#define MAX_FAIL_LINES 20
#define SEED_RING 256            /* recent streams searched for crossed bytes */
#define EPOLL_CONNS 4

/* ---- the pattern ---------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint8_t pattern_byte(uint64_t seed, uint64_t off)
{
	return (uint8_t)(mix64(seed + (off >> 3)) >> ((off & 7) * 8));
}

static void pattern_fill(uint64_t seed, uint64_t off, uint8_t *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint64_t w = mix64(seed + ((off + i) >> 3));
		for (unsigned b = (unsigned)((off + i) & 7); b < 8 && i < n; b++, i++)
			p[i] = (uint8_t)(w >> (b * 8));
	}
}

/* Index of the first byte that differs from the pattern, or -1. */
static long pattern_check(uint64_t seed, uint64_t off, const uint8_t *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint64_t w = mix64(seed + ((off + i) >> 3));
		for (unsigned b = (unsigned)((off + i) & 7); b < 8 && i < n; b++, i++)
			if (p[i] != (uint8_t)(w >> (b * 8)))
				return (long)i;
	}
	return -1;
}

/* Streams seen lately (seed, connection, length), to say whose bytes a
 * corrupted stream carries. */
static struct { _Atomic uint64_t seed; _Atomic uint32_t conn; _Atomic uint64_t len; } seeds[SEED_RING];
static _Atomic unsigned seed_next;

static void seed_note(uint64_t seed, uint32_t conn, uint64_t len)
{
	unsigned k = atomic_fetch_add(&seed_next, 1) % SEED_RING;
	atomic_store(&seeds[k].seed, 0);
	atomic_store(&seeds[k].conn, conn);
	atomic_store(&seeds[k].len, len);
	atomic_store(&seeds[k].seed, seed);
}

static bool window_matches(uint64_t seed, uint64_t off, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (pattern_byte(seed, off + i) != p[i])
			return false;
	return true;
}

/* Where the n (>= 8) bytes at p come from, in words. */
static void explain(uint64_t seed, uint32_t conn, uint64_t off, const uint8_t *p, size_t n, char *out, size_t len)
{
	if (n < 8) {
		snprintf(out, len, "too few bytes to say where they come from");
		return;
	}
	uint64_t lo = off > (1u << 20) ? off - (1u << 20) : 0;
	for (uint64_t o = lo; o < off + (1u << 20); o++) {
		if (o != off && window_matches(seed, o, p, 8)) {
			snprintf(out, len, "they are this stream's bytes at offset %llu (%s by %lld)",
				 (unsigned long long)o, o < off ? "repeated or late" : "early",
				 (long long)(o - off));
			return;
		}
	}
	for (unsigned k = 0; k < SEED_RING; k++) {
		uint64_t s = atomic_load(&seeds[k].seed);
		if (!s || s == seed)
			continue;
		uint64_t l = atomic_load(&seeds[k].len);
		for (uint64_t o = 0; o < l && o < (8u << 20); o++) {
			if (window_matches(s, o, p, 8)) {
				snprintf(out, len, "they are connection %u's bytes at offset %llu (streams crossed)",
					 atomic_load(&seeds[k].conn), (unsigned long long)o);
				return;
			}
		}
	}
	(void)conn;
	snprintf(out, len, "they match no stream (corrupted)");
}

/* ---- reporting ------------------------------------------------------------- */

static _Atomic unsigned failures;
static const char *side = "stress";

static void failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void failf(const char *fmt, ...)
{
	unsigned n = atomic_fetch_add(&failures, 1);
	if (n >= MAX_FAIL_LINES)
		return;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: FAIL %s\n", side, line);
}

static void report_mismatch(const char *dir, uint32_t conn, uint64_t seed, uint64_t off, const uint8_t *p,
			    size_t n)
{
	char why[160];
	explain(seed, conn, off, p, n > 64 ? 64 : n, why, sizeof why);
	failf("%s conn %u offset %llu: got %02x want %02x; %s", dir, conn, (unsigned long long)off, p[0],
	      pattern_byte(seed, off), why);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t rnd(uint64_t *state)
{
	*state = mix64(*state);
	return *state;
}

static void set_timeouts(int fd, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static void header(uint8_t *h, uint32_t magic, uint32_t conn, uint64_t seed, uint64_t len)
{
	put32(h, magic);
	put32(h + 4, conn);
	put64(h + 8, seed);
	put64(h + 16, len);
}

static bool write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

static void abort_close(int fd)
{
	struct linger lg = { 1, 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(fd);
}

/* The socket's TCP state in words, for a stream that stalled. */
static void tcp_state(int fd, char *out, size_t len);

/* ---- the kernel peer ------------------------------------------------------- */

static struct in_addr expect_src;
static _Atomic unsigned peer_streams, peer_churns, peer_foreign, peer_threads, peer_connects;
static _Atomic uint64_t peer_bytes;
static uint64_t peer_deadline_ms;
static _Atomic bool peer_done;

static bool peer_running(void)
{
	return !atomic_load(&peer_done) && now_ms() < peer_deadline_ms;
}

static void *echo_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	uint8_t h[HDR_LEN], buf[65536];
	size_t got = 0;
	set_timeouts(fd, IO_TIMEOUT_S * 1000);
	while (got < HDR_LEN) {
		ssize_t r = read(fd, h + got, HDR_LEN - got);
		if (r <= 0)
			goto out;
		got += (size_t)r;
	}
	uint32_t magic = get32(h), conn = get32(h + 4);
	uint64_t seed = get64(h + 8), len = get64(h + 16), off = 0;
	bool check = magic == MAGIC_STREAM;
	if (check) {
		atomic_fetch_add(&peer_streams, 1);
		seed_note(seed, conn, len);
	}
	else if (magic == MAGIC_CHURN)
		atomic_fetch_add(&peer_churns, 1);
	else {
		if (magic == MAGIC_DONE)
			atomic_store(&peer_done, true);
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, buf, sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && check) {
			int e = errno;
			char st[160];
			tcp_state(fd, st, sizeof st);
			failf("usnet->kernel conn %u: read failed at offset %llu of %llu: %s (%s)", conn,
			      (unsigned long long)off, (unsigned long long)len, strerror(e), st);
		}
		if (r <= 0)
			break;
		if (check) {
			long bad = pattern_check(seed, off, buf, (size_t)r);
			if (bad >= 0) {
				report_mismatch("usnet->kernel", conn, seed, off + (uint64_t)bad, buf + bad,
						(size_t)(r - bad));
				check = false;   /* one line per stream; the client sees the echo too */
			}
			atomic_fetch_add(&peer_bytes, (uint64_t)r);
		}
		off += (uint64_t)r;
		if (!write_all(fd, buf, (size_t)r))
			break;   /* the client may drop a stream after a failure it reports */
	}
	if (check && off != len)
		failf("usnet->kernel conn %u: stream ended at offset %llu of %llu (lost bytes)", conn,
		      (unsigned long long)off, (unsigned long long)len);
out:
	close(fd);
	atomic_fetch_sub(&peer_threads, 1);
	return NULL;
}

static void *echo_server(void *arg)
{
	int ls = (int)(intptr_t)arg;
	while (peer_running()) {
		struct pollfd pf = { ls, POLLIN, 0 };
		if (poll(&pf, 1, 100) <= 0)
			continue;
		struct sockaddr_in from;
		socklen_t fl = sizeof from;
		int fd = accept(ls, (struct sockaddr *)&from, &fl);
		if (fd < 0)
			continue;
		if (from.sin_addr.s_addr != expect_src.s_addr) {
			atomic_fetch_add(&peer_foreign, 1);
			failf("a connection came from %s, not from usnet's address", inet_ntoa(from.sin_addr));
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		pthread_t t;
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&a, 256 * 1024);
		atomic_fetch_add(&peer_threads, 1);
		if (pthread_create(&t, &a, echo_conn, (void *)(intptr_t)fd) != 0) {
			atomic_fetch_sub(&peer_threads, 1);
			close(fd);
		}
		pthread_attr_destroy(&a);
	}
	return NULL;
}

/* Connections to the client's listener, for its accepting churn threads:
 * some send a little, some read until the client closes, some reset. */
static void *connector(void *arg)
{
	struct sockaddr_in *to = arg;
	uint64_t r = 0x1234 ^ now_ms();
	uint8_t buf[4096];
	while (peer_running()) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0)
			break;
		set_timeouts(fd, 500);
		if (connect(fd, (struct sockaddr *)to, sizeof *to) == 0) {
			atomic_fetch_add(&peer_connects, 1);
			size_t n = (size_t)(rnd(&r) % sizeof buf);
			pattern_fill(r, 0, buf, n);
			if (write(fd, buf, n) < 0) {
				/* the client may already have closed it */
			}
			switch (rnd(&r) % 3) {
			case 0:
				close(fd);
				break;
			case 1:
				while (read(fd, buf, sizeof buf) > 0)
					;
				close(fd);
				break;
			default:
				abort_close(fd);
				break;
			}
		} else {
			close(fd);
			usleep(20000);   /* the listener is not up yet */
		}
		usleep((useconds_t)(rnd(&r) % 3000));
	}
	return NULL;
}

static int peer_main(char **av)
{
	side = "peer";
	signal(SIGPIPE, SIG_IGN);   /* a client that dropped a stream resets it */
	struct sockaddr_in me = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(av[1])) };
	static struct sockaddr_in churn = { .sin_family = AF_INET };
	churn.sin_port = htons((uint16_t)atoi(av[4]));
	if (inet_pton(AF_INET, av[0], &me.sin_addr) != 1 || inet_pton(AF_INET, av[2], &expect_src) != 1 ||
	    inet_pton(AF_INET, av[3], &churn.sin_addr) != 1) {
		fprintf(stderr, "peer: bad address\n");
		return 2;
	}
	int seconds = atoi(av[5]);
	peer_deadline_ms = now_ms() + (uint64_t)seconds * 1000 + 15000;
	int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(ls, (struct sockaddr *)&me, sizeof me) || listen(ls, 1024)) {
		fprintf(stderr, "peer: cannot listen on %s:%s: %s\n", av[0], av[1], strerror(errno));
		return 2;
	}
	printf("peer: listening\n");
	fflush(stdout);
	pthread_t es, cn;
	pthread_create(&es, NULL, echo_server, (void *)(intptr_t)ls);
	pthread_create(&cn, NULL, connector, &churn);
	pthread_join(cn, NULL);
	pthread_join(es, NULL);
	for (int i = 0; i < 50 && atomic_load(&peer_threads); i++)
		usleep(100000);
	printf("peer: %u streams checked (%llu bytes), %u churn connections, %u connects to the client, "
	       "all from %s; %u failures\n",
	       atomic_load(&peer_streams), (unsigned long long)atomic_load(&peer_bytes), atomic_load(&peer_churns),
	       atomic_load(&peer_connects), av[2], atomic_load(&failures));
	return atomic_load(&failures) || atomic_load(&peer_foreign) ? 1 : 0;
}

/* ---- the client under usnet ------------------------------------------------- */

static struct sockaddr_in peer_addr;
static uint64_t client_stop_ms;     /* no new stream or churn after this */
static _Atomic uint32_t conn_counter;
static _Atomic unsigned streams_done, churn_ops, stolen_checks;
static _Atomic uint64_t bytes_done;
static _Atomic bool churn_stop;
static int listen_fd = -1;

struct stream {
	int fd;
	uint32_t conn;
	uint64_t seed, len;
	uint64_t sent, recvd;
	bool connected, shut;
	bool failed;
	uint64_t rs;                 /* this stream's random state */
	uint8_t hdr[HDR_LEN];
	unsigned hdr_sent;
};

static bool stream_open(struct stream *s, uint64_t *rs, bool nonblock)
{
	memset(s, 0, sizeof *s);
	s->conn = atomic_fetch_add(&conn_counter, 1) + 1;
	s->seed = rnd(rs) | 1;
	/* Mostly up to 1 MiB, now and then a few bytes only. */
	s->len = rnd(rs) % 8 == 0 ? rnd(rs) % 64 : 4096 + rnd(rs) % (1u << 20);
	s->rs = rnd(rs);
	header(s->hdr, MAGIC_STREAM, s->conn, s->seed, s->len);
	seed_note(s->seed, s->conn, s->len);
	s->fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (s->fd < 0) {
		failf("conn %u: socket: %s", s->conn, strerror(errno));
		return false;
	}
	set_timeouts(s->fd, IO_TIMEOUT_S * 1000);
	if (connect(s->fd, (struct sockaddr *)&peer_addr, sizeof peer_addr) == 0) {
		s->connected = true;
	} else if (!(nonblock && errno == EINPROGRESS)) {
		failf("conn %u: connect: %s", s->conn, strerror(errno));
		close(s->fd);
		return false;
	}
	return true;
}

/* Send the next piece (the header first), with one of the send calls. */
static ssize_t stream_send(struct stream *s)
{
	uint8_t buf[32768 + HDR_LEN];
	size_t h = HDR_LEN - s->hdr_sent;
	memcpy(buf, s->hdr + s->hdr_sent, h);
	uint64_t room = WINDOW - (s->sent - s->recvd), left = s->len - s->sent;
	size_t n = (size_t)(1 + rnd(&s->rs) % 32768);
	if (n > room)
		n = (size_t)room;
	if (n > left)
		n = (size_t)left;
	pattern_fill(s->seed, s->sent, buf + h, n);
	size_t total = h + n, cut = total > 1 ? (size_t)(rnd(&s->rs) % total) : 0;
	ssize_t w;
	switch (rnd(&s->rs) % 4) {
	case 0:
		w = write(s->fd, buf, total);
		break;
	case 1:
		w = send(s->fd, buf, total, MSG_NOSIGNAL);
		break;
	case 2: {
		struct iovec iov[2] = { { buf, cut }, { buf + cut, total - cut } };
		w = writev(s->fd, iov, 2);
		break;
	}
	default: {
		struct iovec iov[3] = { { buf, cut / 2 }, { buf + cut / 2, cut - cut / 2 }, { buf + cut, total - cut } };
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = 3 };
		w = sendmsg(s->fd, &m, MSG_NOSIGNAL);
		break;
	}
	}
	if (w <= 0)
		return w;
	size_t hw = (size_t)w < h ? (size_t)w : h;
	s->hdr_sent += (unsigned)hw;
	s->sent += (uint64_t)w - hw;
	return w;
}

/* Receive what is there (blocking sockets: at least one byte) with one of
 * the receive calls, and check it.  0: the peer closed; -1: error or a
 * failure (reported). */
static ssize_t stream_recv(struct stream *s)
{
	uint8_t buf[40000];
	uint64_t want = s->sent - s->recvd;
	size_t n = (size_t)(1 + rnd(&s->rs) % sizeof buf);
	if (want && n > want && rnd(&s->rs) % 2)
		n = (size_t)want;   /* exactly what is outstanding, sometimes with MSG_WAITALL */
	ssize_t r;
	switch (rnd(&s->rs) % 4) {
	case 0:
		r = read(s->fd, buf, n);
		break;
	case 1:
		r = recv(s->fd, buf, n, n <= want && rnd(&s->rs) % 4 == 0 ? MSG_WAITALL : 0);
		break;
	case 2: {
		size_t cut = (size_t)(rnd(&s->rs) % n);
		struct iovec iov[2] = { { buf, cut }, { buf + cut, n - cut } };
		r = readv(s->fd, iov, 2);
		break;
	}
	default: {
		size_t cut = (size_t)(rnd(&s->rs) % n);
		struct iovec iov[2] = { { buf, cut }, { buf + cut, n - cut } };
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
		r = recvmsg(s->fd, &m, 0);
		break;
	}
	}
	if (r <= 0)
		return r;
	if (s->recvd + (uint64_t)r > s->sent) {
		failf("kernel->usnet conn %u: %zd bytes at offset %llu, but only %llu were sent (extra bytes)",
		      s->conn, r, (unsigned long long)s->recvd, (unsigned long long)s->sent);
		s->failed = true;
		return -1;
	}
	long bad = pattern_check(s->seed, s->recvd, buf, (size_t)r);
	if (bad >= 0) {
		report_mismatch("kernel->usnet", s->conn, s->seed, s->recvd + (uint64_t)bad, buf + bad,
				(size_t)(r - bad));
		s->failed = true;
		return -1;
	}
	s->recvd += (uint64_t)r;
	return r;
}

static void tcp_state(int fd, char *out, size_t len)
{
	struct tcp_info ti;
	socklen_t tl = sizeof ti;
	memset(&ti, 0, sizeof ti);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) != 0) {
		snprintf(out, len, "no TCP_INFO");
		return;
	}
	snprintf(out, len, "state %u unacked %u lost %u retransmits %u total_retrans %u rto %u us cwnd %u",
		 ti.tcpi_state, ti.tcpi_unacked, ti.tcpi_lost, ti.tcpi_retransmits, ti.tcpi_total_retrans,
		 ti.tcpi_rto, ti.tcpi_snd_cwnd);
}

static void stream_lost(struct stream *s, const char *what, int err)
{
	char st[160];
	tcp_state(s->fd, st, sizeof st);
	failf("kernel->usnet conn %u: %s at offset %llu of %llu (sent %llu): %s (lost bytes; %s)", s->conn, what,
	      (unsigned long long)s->recvd, (unsigned long long)s->len, (unsigned long long)s->sent,
	      err ? strerror(err) : "end of stream", st);
	s->failed = true;
}

static void stream_done(struct stream *s)
{
	if (!s->failed) {
		atomic_fetch_add(&streams_done, 1);
		atomic_fetch_add(&bytes_done, s->len);
	}
	close(s->fd);
}

/* One stream at a time on a blocking socket; at most WINDOW bytes in
 * flight, so neither side can block the other for good. */
static void *blocking_streams(void *arg)
{
	uint64_t rs = (uint64_t)(uintptr_t)arg * 7919 + now_ms();
	while (now_ms() < client_stop_ms) {
		struct stream s;
		if (!stream_open(&s, &rs, false))
			break;
		while (!s.failed) {
			bool can_send = s.sent < s.len || s.hdr_sent < HDR_LEN;
			bool must_recv = s.sent - s.recvd >= WINDOW || !can_send;
			if (can_send && !must_recv && (s.sent == s.recvd || rnd(&rs) % 2)) {
				if (stream_send(&s) < 0)
					stream_lost(&s, "send failed", errno);
				continue;
			}
			if (!can_send && !s.shut) {
				s.shut = true;
				if (rnd(&rs) % 2)
					shutdown(s.fd, SHUT_WR);   /* else the peer's EOF comes at close */
			}
			if (!can_send && s.recvd == s.len)
				break;
			ssize_t r = stream_recv(&s);
			if (r == 0)
				stream_lost(&s, "the peer closed", 0);
			else if (r < 0 && !s.failed)
				stream_lost(&s, "recv failed", errno);
		}
		stream_done(&s);
	}
	return NULL;
}

/* Several non-blocking streams in one epoll set, level-triggered; EPOLLOUT
 * is asked for only while a stream has bytes to send and room for them. */
static void *epoll_streams(void *arg)
{
	uint64_t rs = (uint64_t)(uintptr_t)arg * 104729 + now_ms();
	int ep = epoll_create1(0);
	struct stream s[EPOLL_CONNS];
	bool live[EPOLL_CONNS] = { false };
	uint32_t want[EPOLL_CONNS] = { 0 };
	int nlive = 0;
	for (;;) {
		for (int i = 0; i < EPOLL_CONNS; i++) {
			if (live[i] || now_ms() >= client_stop_ms)
				continue;
			if (!stream_open(&s[i], &rs, true)) {
				usleep(10000);   /* reported; not again at once */
				continue;
			}
			want[i] = EPOLLIN | EPOLLOUT;
			struct epoll_event ev = { .events = want[i], .data.u32 = (uint32_t)i };
			epoll_ctl(ep, EPOLL_CTL_ADD, s[i].fd, &ev);
			live[i] = true;
			nlive++;
		}
		if (nlive == 0)
			break;
		struct epoll_event evs[EPOLL_CONNS];
		int n = epoll_wait(ep, evs, EPOLL_CONNS, IO_TIMEOUT_S * 1000);
		if (n == 0) {
			for (int i = 0; i < EPOLL_CONNS; i++)
				if (live[i]) {
					stream_lost(&s[i], "no event for 10 s", 0);
					epoll_ctl(ep, EPOLL_CTL_DEL, s[i].fd, NULL);
					stream_done(&s[i]);
					live[i] = false;
					nlive--;
				}
			continue;
		}
		for (int k = 0; k < n; k++) {
			int i = (int)evs[k].data.u32;
			struct stream *t = &s[i];
			if (!live[i])
				continue;
			if (!t->connected) {
				int err = 0;
				socklen_t el = sizeof err;
				getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &err, &el);
				if (err)
					stream_lost(t, "connect failed", err);
				t->connected = true;
			}
			while (!t->failed && (t->sent < t->len || t->hdr_sent < HDR_LEN) &&
			       t->sent - t->recvd < WINDOW) {
				if (stream_send(t) < 0) {
					if (errno != EAGAIN)
						stream_lost(t, "send failed", errno);
					break;
				}
			}
			bool all_sent = t->sent == t->len && t->hdr_sent == HDR_LEN;
			if (all_sent && !t->shut && !t->failed) {
				t->shut = true;
				shutdown(t->fd, SHUT_WR);
			}
			while (!t->failed && t->recvd < t->sent) {
				ssize_t r = stream_recv(t);
				if (r == 0)
					stream_lost(t, "the peer closed", 0);
				else if (r < 0 && errno != EAGAIN && !t->failed)
					stream_lost(t, "recv failed", errno);
				if (r <= 0)
					break;
			}
			if (t->failed || (all_sent && t->recvd == t->len)) {
				epoll_ctl(ep, EPOLL_CTL_DEL, t->fd, NULL);
				stream_done(t);
				live[i] = false;
				nlive--;
				continue;
			}
			uint32_t w = EPOLLIN | (!all_sent && t->sent - t->recvd < WINDOW ? EPOLLOUT : 0);
			if (w != want[i]) {
				want[i] = w;
				struct epoll_event ev = { .events = w, .data.u32 = (uint32_t)i };
				epoll_ctl(ep, EPOLL_CTL_MOD, t->fd, &ev);
			}
		}
	}
	close(ep);
	return NULL;
}

/* A connection to the echo server that carries a few churn bytes. */
static int churn_connect(uint64_t *rs, bool nonblock, size_t payload)
{
	int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0)
		return -1;
	set_timeouts(fd, 2000);
	if (connect(fd, (struct sockaddr *)&peer_addr, sizeof peer_addr) != 0) {
		if (!(nonblock && errno == EINPROGRESS)) {
			close(fd);
			return -1;
		}
		return fd;
	}
	uint8_t buf[HDR_LEN + 4096];
	uint64_t seed = rnd(rs) | 1;
	header(buf, MAGIC_CHURN, 0, seed, payload);
	if (payload > 4096)
		payload = 4096;
	pattern_fill(seed, 0, buf + HDR_LEN, payload);
	if (!write_all(fd, buf, HDR_LEN + payload)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A thread that receives on a socket another thread closes (or shuts
 * down) meanwhile.  The socket's peer sends nothing, so every byte such a
 * receive returns belongs to another connection. */
struct stale_recv {
	int fd;
	int ms;
	pthread_t t;
	_Atomic bool inside;
	ssize_t got;
	int err;
};

static void *stale_recv_main(void *arg)
{
	struct stale_recv *sr = arg;
	uint8_t buf[4096];
	uint64_t end = now_ms() + (uint64_t)sr->ms;
	sr->got = 0;
	atomic_store(&sr->inside, true);
	while (now_ms() < end) {
		ssize_t r = recv(sr->fd, buf, sizeof buf, 0);
		if (r > 0) {
			sr->got += r;
			continue;
		}
		sr->err = r < 0 ? errno : 0;
		if (r == 0 || (errno != EAGAIN && errno != EINTR))
			break;
	}
	return NULL;
}

static void stale_recv_start(struct stale_recv *sr, int fd, int ms)
{
	sr->fd = fd;
	sr->ms = ms;
	atomic_store(&sr->inside, false);
	set_timeouts(fd, 20);
	pthread_create(&sr->t, NULL, stale_recv_main, sr);
	for (int i = 0; i < 1000 && !atomic_load(&sr->inside); i++)
		usleep(100);
	usleep(2000);   /* into the receive call */
}

static void stale_recv_end(struct stale_recv *sr, const char *what)
{
	pthread_join(sr->t, NULL);
	atomic_fetch_add(&stolen_checks, 1);
	if (sr->got > 0)
		failf("%s: a recv that nothing was sent to returned %zd bytes (another connection's)", what, sr->got);
}

/* Each churn thread owns a high fd number for "close while another thread
 * receives on it": no other call of the program can get that number, so a
 * receive that starts after the close gets EBADF, never another socket. */
#define CHURN_FD_BASE 900

static void *churn(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	uint64_t rs = id * 31337ull + now_ms();
	uint8_t buf[8192];
	while (!atomic_load(&churn_stop) && now_ms() < client_stop_ms) {
		atomic_fetch_add(&churn_ops, 1);
		int fd;
		switch (rnd(&rs) % 8) {
		case 0:   /* connect, send, close with the echo unread (a reset) */
			fd = churn_connect(&rs, false, (size_t)(rnd(&rs) % 4096));
			if (fd >= 0)
				close(fd);
			break;
		case 1:   /* a socket that never connects */
			fd = socket(AF_INET, SOCK_STREAM, 0);
			if (fd >= 0)
				close(fd);
			break;
		case 2:   /* closed while connecting */
			fd = churn_connect(&rs, true, 0);
			if (fd >= 0)
				close(fd);
			break;
		case 3: { /* accept a connection of the peer's connector and drop it */
			struct pollfd pf = { listen_fd, POLLIN, 0 };
			if (poll(&pf, 1, 20) <= 0)
				break;
			fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK);
			if (fd < 0)
				break;
			switch (rnd(&rs) % 3) {
			case 0:
				close(fd);
				break;
			case 1:
				shutdown(fd, SHUT_RDWR);
				close(fd);
				break;
			default:
				usleep(500);
				while (read(fd, buf, sizeof buf) > 0)
					;
				abort_close(fd);
				break;
			}
			break;
		}
		case 4: { /* send, shut down, read the echo to its end */
			size_t n = (size_t)(rnd(&rs) % 4096);
			fd = churn_connect(&rs, false, n);
			if (fd < 0)
				break;
			shutdown(fd, SHUT_WR);
			while (read(fd, buf, sizeof buf) > 0)
				;
			close(fd);
			break;
		}
		case 5: { /* close one fd while another thread receives on its dup */
			fd = churn_connect(&rs, false, 0);
			if (fd < 0)
				break;
			int d = dup(fd);
			if (d < 0) {
				close(fd);
				break;
			}
			struct stale_recv sr;
			stale_recv_start(&sr, d, 30);
			close(fd);
			usleep((useconds_t)(rnd(&rs) % 3000));
			shutdown(d, SHUT_RDWR);
			stale_recv_end(&sr, "recv on a dup of a closed socket");
			close(d);
			break;
		}
		case 6: { /* close the fd another thread is receiving on */
			fd = churn_connect(&rs, false, 0);
			if (fd < 0)
				break;
			int hi = fcntl(fd, F_DUPFD, CHURN_FD_BASE + (int)id);
			close(fd);
			if (hi < 0)
				break;
			struct stale_recv sr;
			stale_recv_start(&sr, hi, 40);
			if (rnd(&rs) % 2) {
				struct linger lg = { 1, 0 };   /* reset: the stack frees the socket at once */
				setsockopt(hi, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
			}
			close(hi);
			stale_recv_end(&sr, "recv on a socket another thread closed");
			break;
		}
		default: /* a short exchange, closed with a reset */
			fd = churn_connect(&rs, false, (size_t)(rnd(&rs) % 2048));
			if (fd >= 0) {
				if (read(fd, buf, sizeof buf) < 0) {
					/* a timeout or reset: nothing to check here */
				}
				abort_close(fd);
			}
			break;
		}
	}
	return NULL;
}

static int client_main(int ac, char **av)
{
	side = "client";
	peer_addr.sin_family = AF_INET;
	peer_addr.sin_port = htons((uint16_t)atoi(av[1]));
	if (inet_pton(AF_INET, av[0], &peer_addr.sin_addr) != 1) {
		fprintf(stderr, "client: bad address %s\n", av[0]);
		return 2;
	}
	int seconds = atoi(av[3]);
	int nstream = ac > 4 ? atoi(av[4]) : 8;
	int nchurn = ac > 5 ? atoi(av[5]) : 3;
	client_stop_ms = now_ms() + (uint64_t)seconds * 1000;
	signal(SIGPIPE, SIG_IGN);
	struct sockaddr_in me = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(av[2])) };
	listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int one = 1;
	setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&me, sizeof me) || listen(listen_fd, 256)) {
		fprintf(stderr, "client: cannot listen on port %s: %s\n", av[2], strerror(errno));
		return 2;
	}
	pthread_t t[64];
	int nt = 0;
	for (int i = 0; i < nstream && nt < 48; i++)
		pthread_create(&t[nt++], NULL, i % 2 ? epoll_streams : blocking_streams, (void *)(uintptr_t)(i + 1));
	pthread_t c[16];
	int nc = 0;
	for (int i = 0; i < nchurn && nc < 16; i++)
		pthread_create(&c[nc++], NULL, churn, (void *)(uintptr_t)i);
	for (int i = 0; i < nt; i++)
		pthread_join(t[i], NULL);
	atomic_store(&churn_stop, true);
	for (int i = 0; i < nc; i++)
		pthread_join(c[i], NULL);
	close(listen_fd);
	/* Tell the peer it may end (it would otherwise wait for its deadline). */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint8_t h[HDR_LEN];
	header(h, MAGIC_DONE, 0, 0, 0);
	set_timeouts(fd, 2000);
	if (fd < 0 || connect(fd, (struct sockaddr *)&peer_addr, sizeof peer_addr) || !write_all(fd, h, sizeof h))
		failf("cannot tell the peer that the client is done: %s", strerror(errno));
	close(fd);
	printf("client: %u streams echoed intact (%llu bytes each way), %u churn operations, "
	       "%u receives on closed sockets checked; %u failures\n",
	       atomic_load(&streams_done), (unsigned long long)atomic_load(&bytes_done), atomic_load(&churn_ops),
	       atomic_load(&stolen_checks), atomic_load(&failures));
	return atomic_load(&failures) ? 1 : 0;
}

static void *watchdog(void *arg)
{
	unsigned s = (unsigned)(uintptr_t)arg;
	sleep(s);
	fprintf(stderr, "%s: FAIL did not finish within %u s (a stream stalled)\n", side, s);
	fflush(stderr);
	_exit(1);
	return NULL;
}

int main(int argc, char **argv)
{
	int seconds = 0;
	if (argc >= 8 && !strcmp(argv[1], "peer"))
		seconds = atoi(argv[7]);
	else if (argc >= 6 && !strcmp(argv[1], "client"))
		seconds = atoi(argv[5]);
	if (seconds <= 0 || seconds > 3600) {
		fprintf(stderr, "usage: %s peer ADDR PORT EXPECT_SRC CHURN_ADDR CHURN_PORT SECONDS\n"
				"       %s client PEER_ADDR PORT CHURN_PORT SECONDS [STREAM_THREADS [CHURN_THREADS]]\n",
			argv[0], argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	pthread_t w;
	pthread_create(&w, NULL, watchdog, (void *)(uintptr_t)(seconds + 20));
	pthread_detach(w);
	if (!strcmp(argv[1], "peer"))
		return peer_main(argv + 2);
	return client_main(argc - 2, argv + 2);
}
