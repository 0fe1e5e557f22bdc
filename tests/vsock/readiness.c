/*
 * The readiness suite's program: socket and readiness behaviour that must
 * be identical on the kernel and under usnet.  Each case prints one line
 * "NAME: RESULT"; tests/vsock/run.sh runs it natively and under `usnet run`
 * and compares the lines.  Results avoid anything that differs between runs
 * (ports, fd numbers, times: times are printed as "ok" when in bounds).
 *
 * usage: readiness [CASE...]   (no argument: every case)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char result[512];
#define SAY(...) snprintf(result + strlen(result), sizeof result - strlen(result), __VA_ARGS__)

static void die(const char *what)
{
	printf("error: %s: %s\n", what, strerror(errno));
	exit(1);
}

static const char *loop_addr(void)
{
	const char *a = getenv("READINESS_ADDR");
	return a ? a : "127.0.0.1";
}

static int listener(struct sockaddr_in *where)
{
	int l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0)
		die("socket");
	int one = 1;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = { .sin_family = AF_INET };
	inet_pton(AF_INET, loop_addr(), &a.sin_addr);
	if (bind(l, (struct sockaddr *)&a, sizeof a) < 0)
		die("bind");
	if (listen(l, 16) < 0)
		die("listen");
	socklen_t len = sizeof *where;
	getsockname(l, (struct sockaddr *)where, &len);
	return l;
}

/* A connected pair: *c client, *s server side, through a listener. */
static void pair(int *c, int *s)
{
	struct sockaddr_in a;
	int l = listener(&a);
	*c = socket(AF_INET, SOCK_STREAM, 0);
	if (*c < 0)
		die("socket");
	if (connect(*c, (struct sockaddr *)&a, sizeof a) < 0)
		die("connect");
	*s = accept(l, NULL, NULL);
	if (*s < 0)
		die("accept");
	close(l);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static const char *err_name(int e)
{
	switch (e) {
	case 0: return "0";
	case EAGAIN: return "EAGAIN";
	case EINTR: return "EINTR";
	case EPIPE: return "EPIPE";
	case EINVAL: return "EINVAL";
	case EEXIST: return "EEXIST";
	case ENOENT: return "ENOENT";
	case EBADF: return "EBADF";
	case ENOTCONN: return "ENOTCONN";
	case ECONNREFUSED: return "ECONNREFUSED";
	case EINPROGRESS: return "EINPROGRESS";
	case ESPIPE: return "ESPIPE";
	case EMFILE: return "EMFILE";
	case EBUSY: return "EBUSY";
	case EISCONN: return "EISCONN";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EAFNOSUPPORT: return "EAFNOSUPPORT";
	case EDESTADDRREQ: return "EDESTADDRREQ";
	case EFAULT: return "EFAULT";
	case EPROTO: return "EPROTO";
	case ENOPROTOOPT: return "ENOPROTOOPT";
	default: return "other";
	}
}

static void settle(void)
{
	usleep(20000);   /* let loopback deliver */
}

/* ---- cases --------------------------------------------------------------- */

static void t_basic(void)
{
	int c, s;
	pair(&c, &s);
	send(c, "hello", 5, 0);
	char b[16] = "";
	ssize_t n = recv(s, b, sizeof b - 1, 0);
	send(s, b, (size_t)n, 0);
	char r[16] = "";
	ssize_t m = recv(c, r, sizeof r - 1, 0);
	struct sockaddr_in pa, la;
	socklen_t pl = sizeof pa, ll = sizeof la;
	getpeername(s, (struct sockaddr *)&pa, &pl);
	getsockname(c, (struct sockaddr *)&la, &ll);
	SAY("%zd %s %zd %s names=%s", n, b, m, r, pa.sin_port == la.sin_port ? "match" : "differ");
	close(c);
	close(s);
}

static void t_poll_mixed(void)
{
	int c, s, p[2];
	pair(&c, &s);
	if (pipe(p) < 0)
		die("pipe");
	int ev = eventfd(0, 0);
	struct pollfd pf[4] = {
		{ .fd = s, .events = POLLIN | POLLOUT }, { .fd = p[0], .events = POLLIN },
		{ .fd = ev, .events = POLLIN }, { .fd = -1, .events = POLLIN },
	};
	int n = poll(pf, 4, 0);
	SAY("idle=%d[%x %x %x %x]", n, pf[0].revents, pf[1].revents, pf[2].revents, pf[3].revents);
	pf[0].events = POLLIN;
	send(c, "x", 1, 0);
	if (write(p[1], "y", 1) != 1)
		die("write");
	settle();
	n = poll(pf, 4, 1000);
	SAY(" ready=%d[%x %x %x]", n, pf[0].revents, pf[1].revents, pf[2].revents);
	uint64_t one = 1;
	if (write(ev, &one, sizeof one) != sizeof one)
		die("write");
	char b[4];
	recv(s, b, 1, 0);
	if (read(p[0], b, 1) != 1)
		die("read");
	n = poll(pf, 3, 1000);
	SAY(" after=%d[%x %x %x]", n, pf[0].revents, pf[1].revents, pf[2].revents);
	close(c); close(s); close(p[0]); close(p[1]); close(ev);
}

static void t_select_mixed(void)
{
	int c, s, p[2];
	pair(&c, &s);
	if (pipe(p) < 0)
		die("pipe");
	fd_set r, w;
	FD_ZERO(&r); FD_ZERO(&w);
	FD_SET(s, &r); FD_SET(p[0], &r); FD_SET(c, &w);
	int max = s > p[0] ? s : p[0];
	max = max > c ? max : c;
	struct timeval tv = { 0, 0 };
	int n = select(max + 1, &r, &w, NULL, &tv);
	SAY("idle=%d r=%d%d w=%d", n, FD_ISSET(s, &r), FD_ISSET(p[0], &r), FD_ISSET(c, &w));
	send(c, "x", 1, 0);
	settle();
	FD_ZERO(&r); FD_ZERO(&w);
	FD_SET(s, &r); FD_SET(p[0], &r);
	tv = (struct timeval){ 1, 0 };
	n = select(max + 1, &r, NULL, NULL, &tv);
	SAY(" sock=%d r=%d%d", n, FD_ISSET(s, &r), FD_ISSET(p[0], &r));
	/* pselect with a timeout and nothing ready */
	FD_ZERO(&r);
	FD_SET(c, &r);
	struct timespec ts = { 0, 40 * 1000000 };
	sigset_t mask;
	sigemptyset(&mask);
	int64_t t0 = now_ms();
	n = pselect(c + 1, &r, NULL, NULL, &ts, &mask);
	int64_t dt = now_ms() - t0;
	SAY(" pselect=%d %s", n, dt >= 35 && dt < 1000 ? "timed" : "badtime");
	close(c); close(s); close(p[0]); close(p[1]);
}

static void t_ppoll_timeout(void)
{
	int c, s;
	pair(&c, &s);
	struct pollfd pf = { .fd = s, .events = POLLIN };
	struct timespec ts = { 0, 40 * 1000000 };
	int64_t t0 = now_ms();
	int n = ppoll(&pf, 1, &ts, NULL);
	int64_t dt = now_ms() - t0;
	SAY("%d %s", n, dt >= 35 && dt < 1000 ? "timed" : "badtime");
	close(c); close(s);
}

static int ep_wait_one(int ep, int ms, struct epoll_event *e)
{
	return epoll_wait(ep, e, 1, ms);
}

static void t_epoll_lt(void)
{
	int c, s;
	pair(&c, &s);
	int ep = epoll_create1(0);
	struct epoll_event e = { .events = EPOLLIN, .data.u64 = 77 };
	epoll_ctl(ep, EPOLL_CTL_ADD, s, &e);
	int n0 = ep_wait_one(ep, 0, &e);
	send(c, "abc", 3, 0);
	settle();
	int n1 = ep_wait_one(ep, 1000, &e);
	uint64_t d = e.data.u64;
	int n2 = ep_wait_one(ep, 0, &e);
	SAY("%d %d data=%llu again=%d ev=%x", n0, n1, (unsigned long long)d, n2, e.events);
	close(ep); close(c); close(s);
}

static void t_epoll_et(void)
{
	int c, s;
	pair(&c, &s);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event e = { .events = EPOLLIN | EPOLLET, .data.u64 = 5 };
	epoll_ctl(ep, EPOLL_CTL_ADD, s, &e);
	send(c, "abc", 3, 0);
	settle();
	int n1 = ep_wait_one(ep, 1000, &e);
	int n2 = ep_wait_one(ep, 0, &e);
	send(c, "d", 1, 0);
	settle();
	int n3 = ep_wait_one(ep, 1000, &e);
	char b[8];
	ssize_t r = recv(s, b, sizeof b, 0);
	int n4 = ep_wait_one(ep, 0, &e);
	SAY("%d %d %d read=%zd %d", n1, n2, n3, r, n4);
	close(ep); close(c); close(s);
}

static void t_epoll_oneshot(void)
{
	int c, s;
	pair(&c, &s);
	int ep = epoll_create1(0);
	struct epoll_event e = { .events = EPOLLIN | EPOLLONESHOT, .data.u64 = 9 };
	epoll_ctl(ep, EPOLL_CTL_ADD, s, &e);
	send(c, "abc", 3, 0);
	settle();
	int n1 = ep_wait_one(ep, 1000, &e);
	int n2 = ep_wait_one(ep, 0, &e);
	e.events = EPOLLIN | EPOLLONESHOT;
	int m = epoll_ctl(ep, EPOLL_CTL_MOD, s, &e);
	int n3 = ep_wait_one(ep, 0, &e);
	int a = epoll_ctl(ep, EPOLL_CTL_ADD, s, &e);
	int ae = errno;
	int d = epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL);
	int d2 = epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL);
	int de = errno;
	SAY("%d %d mod=%d %d add=%d/%s del=%d del2=%d/%s", n1, n2, m, n3, a, err_name(ae), d, d2, err_name(de));
	close(ep); close(c); close(s);
}

static void t_epoll_rdhup(void)
{
	int c, s;
	pair(&c, &s);
	int ep = epoll_create1(0);
	struct epoll_event e = { .events = EPOLLIN | EPOLLRDHUP, .data.u64 = 1 };
	epoll_ctl(ep, EPOLL_CTL_ADD, s, &e);
	shutdown(c, SHUT_WR);
	settle();
	int n = ep_wait_one(ep, 1000, &e);
	SAY("%d in=%d rdhup=%d hup=%d", n, !!(e.events & EPOLLIN), !!(e.events & EPOLLRDHUP),
	    !!(e.events & EPOLLHUP));
	close(c);
	settle();
	close(ep); close(s);
}

static void t_epoll_exclusive(void)
{
	int c, s;
	pair(&c, &s);
	int ep = epoll_create1(0);
	struct epoll_event e = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.u64 = 3 };
	int a = epoll_ctl(ep, EPOLL_CTL_ADD, s, &e);
	send(c, "z", 1, 0);
	settle();
	int n = ep_wait_one(ep, 1000, &e);
	int m = epoll_ctl(ep, EPOLL_CTL_MOD, s, &e);
	SAY("add=%d %d mod=%d/%s", a, n, m, err_name(errno));
	close(ep); close(c); close(s);
}

static void t_epoll_nested(void)
{
	int c, s;
	pair(&c, &s);
	int inner = epoll_create1(0), outer = epoll_create1(0);
	struct epoll_event e = { .events = EPOLLIN, .data.u64 = 11 };
	epoll_ctl(inner, EPOLL_CTL_ADD, s, &e);
	e.data.u64 = 22;
	epoll_ctl(outer, EPOLL_CTL_ADD, inner, &e);
	int n0 = ep_wait_one(outer, 0, &e);
	send(c, "q", 1, 0);
	settle();
	int n1 = ep_wait_one(outer, 1000, &e);
	uint64_t d1 = e.data.u64;
	int n2 = ep_wait_one(inner, 0, &e);
	SAY("%d %d outer=%llu %d inner=%llu", n0, n1, (unsigned long long)d1, n2, (unsigned long long)e.data.u64);
	close(outer); close(inner); close(c); close(s);
}

/* The inner epoll fd joins the outer one while it is still empty: the
 * socket added to it afterwards must still wake the outer one. */
static void t_epoll_nested_late(void)
{
	int c, s;
	pair(&c, &s);
	int inner = epoll_create1(0), outer = epoll_create1(0), mid = epoll_create1(0);
	struct epoll_event e = { .events = EPOLLIN, .data.u64 = 22 };
	int a1 = epoll_ctl(outer, EPOLL_CTL_ADD, mid, &e);
	e.data.u64 = 33;
	int a2 = epoll_ctl(mid, EPOLL_CTL_ADD, inner, &e);
	e.data.u64 = 11;
	int a3 = epoll_ctl(inner, EPOLL_CTL_ADD, s, &e);
	int n0 = ep_wait_one(outer, 0, &e);
	send(c, "q", 1, 0);
	settle();
	int n1 = ep_wait_one(outer, 1000, &e);
	uint64_t d1 = e.data.u64;
	int n2 = ep_wait_one(mid, 0, &e);
	uint64_t d2 = e.data.u64;
	char b;
	recv(s, &b, 1, 0);
	int n3 = ep_wait_one(outer, 0, &e);
	/* Taken out again: a new byte no longer reaches the outer fd. */
	int d = epoll_ctl(mid, EPOLL_CTL_DEL, inner, NULL);
	send(c, "r", 1, 0);
	settle();
	int n4 = ep_wait_one(outer, 100, &e);
	SAY("add=%d%d%d %d %d outer=%llu %d mid=%llu %d del=%d %d", a1, a2, a3, n0, n1, (unsigned long long)d1,
	    n2, (unsigned long long)d2, n3, d, n4);
	close(outer); close(mid); close(inner); close(c); close(s);
}

static int64_t thread_cpu_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

struct write_later { int fd; int delay_ms; };
static void *write_later(void *arg)
{
	struct write_later *w = arg;
	usleep((useconds_t)w->delay_ms * 1000);
	if (write(w->fd, "k", 1) != 1)
		die("write");
	return NULL;
}

/* An edge-triggered set holding a user socket that is writable (an edge
 * already reported) and a pipe that becomes readable later, from another
 * thread: the wait must sleep until then -- the socket has nothing new --
 * and return the pipe's event (nginx in front of php-fpm or a 127.0.0.1
 * upstream: the client connection is writable, the upstream fd is the
 * kernel's).  The waiting thread's CPU time tells a sleep from a spin. */
static void t_epoll_et_kernel_fd(void)
{
	int c, s, p[2];
	pair(&c, &s);
	if (pipe(p) < 0)
		die("pipe");
	settle();
	int ep = epoll_create1(0);
	struct epoll_event e = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u64 = 1 };
	epoll_ctl(ep, EPOLL_CTL_ADD, s, &e);
	e = (struct epoll_event){ .events = EPOLLIN | EPOLLET, .data.u64 = 2 };
	epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e);
	struct epoll_event out[4];
	int n1 = epoll_wait(ep, out, 4, 1000);
	SAY("first=%d[%llu %s]", n1, n1 > 0 ? (unsigned long long)out[0].data.u64 : 0ull,
	    n1 > 0 && out[0].events == EPOLLOUT ? "out" : "other");
	int n2 = epoll_wait(ep, out, 4, 0);
	SAY(" again=%d", n2);
	pthread_t t;
	struct write_later w = { p[1], 150 };
	pthread_create(&t, NULL, write_later, &w);
	int64_t t0 = now_ms(), cpu0 = thread_cpu_us();
	int n3 = epoll_wait(ep, out, 4, 3000);
	int64_t dt = now_ms() - t0, cpu = thread_cpu_us() - cpu0;
	pthread_join(t, NULL);
	SAY(" later=%d[%llu %s] %s spin=%s", n3, n3 > 0 ? (unsigned long long)out[0].data.u64 : 0ull,
	    n3 > 0 && out[0].events == EPOLLIN ? "in" : "other", dt >= 100 && dt < 1000 ? "timed" : "badtime",
	    cpu < 40000 ? "no" : "yes");
	/* Nothing new on either: a short wait times out, asleep. */
	t0 = now_ms();
	cpu0 = thread_cpu_us();
	int n4 = epoll_wait(ep, out, 4, 100);
	dt = now_ms() - t0;
	cpu = thread_cpu_us() - cpu0;
	SAY(" idle=%d %s spin=%s", n4, dt >= 90 && dt < 1000 ? "timed" : "badtime", cpu < 30000 ? "no" : "yes");
	close(ep); close(p[0]); close(p[1]); close(c); close(s);
}

/* ---- epoll_random: many fds, three kinds of sets, several threads ------ */

/* A fixed seed drives writes on TCP connections (user sockets under usnet),
 * pipes, eventfds and UNIX socketpairs (kernel fds) from the main thread,
 * while three threads wait on an edge-triggered, a one-shot and a
 * level-triggered set each holding a mix of them, and drain what they are
 * told about.  Every unit written must be reported and read within a
 * second (no edge lost), and the waiting threads must sleep between rounds
 * (no spin).  The line printed depends only on the seed. */
enum { RND_TCP = 6, RND_PIPE = 3, RND_EVENTFD = 3, RND_UNIX = 3,
       RND_FDS = RND_TCP + RND_PIPE + RND_EVENTFD + RND_UNIX, RND_SETS = 3, RND_ROUNDS = 300 };
enum rnd_kind { RND_KIND_TCP, RND_KIND_PIPE, RND_KIND_EVENTFD, RND_KIND_UNIX };

struct rnd_fd { enum rnd_kind kind; int rfd, wfd, set; _Atomic long consumed; };
struct rnd_set { int ep, stop_fd, mode; unsigned seed; int64_t cpu_us; };
static struct rnd_fd rnd_fds[RND_FDS];
static _Atomic long rnd_consumed_total;
static _Atomic int rnd_stop;

/* Read everything readable on f (an edge-triggered or one-shot report must
 * be drained to EAGAIN) and count the units. */
static void rnd_drain(struct rnd_fd *f, bool once)
{
	for (;;) {
		long units = 0;
		if (f->kind == RND_KIND_EVENTFD) {
			uint64_t v;
			if (read(f->rfd, &v, sizeof v) == sizeof v)
				units = (long)v;
		} else {
			char b[64];
			ssize_t n = f->kind == RND_KIND_PIPE ? read(f->rfd, b, once ? 1 : sizeof b)
							     : recv(f->rfd, b, once ? 1 : sizeof b, 0);
			if (n > 0)
				units = n;
		}
		if (units <= 0)
			return;
		atomic_fetch_add(&f->consumed, units);
		atomic_fetch_add(&rnd_consumed_total, units);
		if (once)
			return;   /* level-triggered: the rest is reported again */
	}
}

static void *rnd_waiter(void *arg)
{
	struct rnd_set *st = arg;
	int64_t cpu0 = thread_cpu_us();
	struct epoll_event out[8];
	while (!atomic_load(&rnd_stop)) {
		int max = 1 + (int)(rand_r(&st->seed) % 8);
		int n = epoll_wait(st->ep, out, max, 2000);
		for (int i = 0; i < n; i++) {
			int idx = (int)out[i].data.u64;
			if (idx < 0)
				continue;   /* the stop fd */
			struct rnd_fd *f = &rnd_fds[idx];
			if (out[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				rnd_drain(f, st->mode == 2);
			if (st->mode == 1) {
				struct epoll_event e = { .events = EPOLLIN | EPOLLONESHOT, .data.u64 = (uint64_t)idx };
				epoll_ctl(st->ep, EPOLL_CTL_MOD, f->rfd, &e);
			}
		}
	}
	st->cpu_us = thread_cpu_us() - cpu0;
	return NULL;
}

static void t_epoll_random(void)
{
	int k = 0;
	for (int i = 0; i < RND_TCP; i++, k++) {
		rnd_fds[k].kind = RND_KIND_TCP;
		pair(&rnd_fds[k].wfd, &rnd_fds[k].rfd);
	}
	for (int i = 0; i < RND_PIPE; i++, k++) {
		int p[2];
		if (pipe2(p, O_NONBLOCK) < 0)
			die("pipe");
		rnd_fds[k] = (struct rnd_fd){ .kind = RND_KIND_PIPE, .rfd = p[0], .wfd = p[1] };
	}
	for (int i = 0; i < RND_EVENTFD; i++, k++) {
		int e = eventfd(0, EFD_NONBLOCK);
		rnd_fds[k] = (struct rnd_fd){ .kind = RND_KIND_EVENTFD, .rfd = e, .wfd = e };
	}
	for (int i = 0; i < RND_UNIX; i++, k++) {
		int u[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, u) < 0)
			die("socketpair");
		rnd_fds[k] = (struct rnd_fd){ .kind = RND_KIND_UNIX, .rfd = u[0], .wfd = u[1] };
	}
	settle();
	struct rnd_set sets[RND_SETS];
	for (int m = 0; m < RND_SETS; m++) {
		sets[m] = (struct rnd_set){ .ep = epoll_create1(0), .stop_fd = eventfd(0, 0), .mode = m,
					    .seed = 1234u + (unsigned)m };
		struct epoll_event e = { .events = EPOLLIN, .data.u64 = (uint64_t)-1 };
		epoll_ctl(sets[m].ep, EPOLL_CTL_ADD, sets[m].stop_fd, &e);
	}
	/* Every set holds TCP connections and each kind of kernel fd; the
	 * edge-triggered one also watches its connections' EPOLLOUT, which
	 * stays ready (nginx's and Go's registration). */
	for (int i = 0; i < RND_FDS; i++) {
		struct rnd_fd *f = &rnd_fds[i];
		f->set = i % RND_SETS;
		int flags = fcntl(f->rfd, F_GETFL);
		fcntl(f->rfd, F_SETFL, flags | O_NONBLOCK);
		uint32_t ev = f->set == 0 ? EPOLLIN | EPOLLET | (f->kind == RND_KIND_TCP ? EPOLLOUT | EPOLLRDHUP : 0)
			    : f->set == 1 ? EPOLLIN | EPOLLONESHOT : EPOLLIN;
		struct epoll_event e = { .events = ev, .data.u64 = (uint64_t)i };
		if (epoll_ctl(sets[f->set].ep, EPOLL_CTL_ADD, f->rfd, &e) < 0)
			die("epoll_ctl");
	}
	pthread_t th[RND_SETS];
	for (int m = 0; m < RND_SETS; m++)
		pthread_create(&th[m], NULL, rnd_waiter, &sets[m]);
	unsigned seed = 42;
	long written = 0;
	int lost_round = -1;
	long lost_read = 0;
	int64_t t0 = now_ms();
	for (int r = 0; r < RND_ROUNDS && lost_round < 0; r++) {
		int writes = 1 + (int)(rand_r(&seed) % 6);
		for (int w = 0; w < writes; w++) {
			struct rnd_fd *f = &rnd_fds[rand_r(&seed) % RND_FDS];
			int units = 1 + (int)(rand_r(&seed) % 3);
			if (f->kind == RND_KIND_EVENTFD) {
				uint64_t v = (uint64_t)units;
				if (write(f->wfd, &v, sizeof v) != sizeof v)
					die("write eventfd");
			} else if (f->kind == RND_KIND_PIPE ? write(f->wfd, "xyz", (size_t)units) != units
							    : send(f->wfd, "xyz", (size_t)units, MSG_NOSIGNAL) != units) {
				die("write");
			}
			written += units;
			if (rand_r(&seed) % 4 == 0)
				usleep(rand_r(&seed) % 200);   /* let a waiter be mid-report */
		}
		int64_t until = now_ms() + 1000;
		while (atomic_load(&rnd_consumed_total) < written && now_ms() < until)
			usleep(100);
		lost_read = atomic_load(&rnd_consumed_total);
		if (lost_read < written)
			lost_round = r;
		usleep(rand_r(&seed) % 3000);   /* idle: the waiters must sleep */
	}
	int64_t wall_ms = now_ms() - t0;
	atomic_store(&rnd_stop, 1);
	for (int m = 0; m < RND_SETS; m++) {
		uint64_t one = 1;
		if (write(sets[m].stop_fd, &one, sizeof one) != sizeof one)
			die("write");
		pthread_join(th[m], NULL);
	}
	int64_t cpu_max = 0;
	for (int m = 0; m < RND_SETS; m++)
		cpu_max = sets[m].cpu_us > cpu_max ? sets[m].cpu_us : cpu_max;
	int never_read = 0;
	for (int i = 0; i < RND_FDS; i++)
		never_read += atomic_load(&rnd_fds[i].consumed) == 0;
	SAY("written=%ld lost=%s never_read=%d spin=%s %s", written,
	    lost_round < 0 ? "none" : "yes", never_read, cpu_max * 2 < wall_ms * 1000 ? "no" : "yes",
	    wall_ms < 20000 ? "bounded" : "slow");
	if (lost_round >= 0)
		SAY(" (round %d: %ld of %ld read)", lost_round, lost_read, written);
	for (int m = 0; m < RND_SETS; m++) {
		close(sets[m].ep);
		close(sets[m].stop_fd);
	}
	for (int i = 0; i < RND_FDS; i++) {
		close(rnd_fds[i].rfd);
		if (rnd_fds[i].wfd != rnd_fds[i].rfd)
			close(rnd_fds[i].wfd);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void t_epoll_mixed(void)
{
	int c, s, p[2];
	pair(&c, &s);
	if (pipe(p) < 0)
		die("pipe");
	int ev = eventfd(1, 0);
	int tf = timerfd_create(CLOCK_MONOTONIC, 0);
	struct itimerspec it = { .it_value = { 0, 10 * 1000000 } };
	timerfd_settime(tf, 0, &it, NULL);
	sigset_t m;
	sigemptyset(&m);
	sigaddset(&m, SIGUSR2);
	sigprocmask(SIG_BLOCK, &m, NULL);
	int sf = signalfd(-1, &m, 0);
	int ep = epoll_create1(0);
	int fds[5] = { s, p[0], ev, tf, sf };
	for (int i = 0; i < 5; i++) {
		struct epoll_event e = { .events = EPOLLIN, .data.u64 = (uint64_t)i + 1 };
		epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e);
	}
	send(c, "m", 1, 0);
	if (write(p[1], "m", 1) != 1)
		die("write");
	raise(SIGUSR2);
	usleep(30000);
	struct epoll_event out[8];
	uint64_t got[8];
	int n = epoll_wait(ep, out, 8, 1000);
	for (int i = 0; i < n; i++)
		got[i] = out[i].data.u64;
	qsort(got, (size_t)n, sizeof got[0], cmp_u64);
	SAY("%d:", n);
	for (int i = 0; i < n; i++)
		SAY(" %llu", (unsigned long long)got[i]);
	/* small maxevents: fairness over two calls */
	int a = epoll_wait(ep, out, 2, 0), b = epoll_wait(ep, out, 8, 0);
	SAY(" split=%d+%d", a, b);
	struct signalfd_siginfo si;
	if (read(sf, &si, sizeof si) != sizeof si)
		die("read signalfd");
	sigprocmask(SIG_UNBLOCK, &m, NULL);
	close(ep); close(sf); close(tf); close(ev); close(p[0]); close(p[1]); close(c); close(s);
}

static void t_epoll_timeout(void)
{
	int c, s;
	pair(&c, &s);
	int ep = epoll_create1(0);
	struct epoll_event e = { .events = EPOLLIN };
	epoll_ctl(ep, EPOLL_CTL_ADD, s, &e);
	int64_t t0 = now_ms();
	int n = epoll_wait(ep, &e, 1, 40);
	int64_t dt = now_ms() - t0;
	int bad = epoll_wait(ep, &e, 0, 0);
	SAY("%d %s maxevents0=%d/%s", n, dt >= 35 && dt < 1000 ? "timed" : "badtime", bad, err_name(errno));
	close(ep); close(c); close(s);
}

static void on_alarm(int sig) { (void)sig; }

static void t_eintr(void)
{
	int c, s;
	pair(&c, &s);
	struct sigaction sa = { .sa_handler = on_alarm };   /* no SA_RESTART */
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = { .it_value = { 0, 30000 } };
	int ep = epoll_create1(0);
	struct epoll_event e = { .events = EPOLLIN };
	epoll_ctl(ep, EPOLL_CTL_ADD, s, &e);
	setitimer(ITIMER_REAL, &it, NULL);
	int n = epoll_wait(ep, &e, 1, 5000);
	SAY("epoll=%d/%s", n, err_name(errno));
	setitimer(ITIMER_REAL, &it, NULL);
	struct pollfd pf = { .fd = s, .events = POLLIN };
	n = poll(&pf, 1, 5000);
	SAY(" poll=%d/%s", n, err_name(errno));
	setitimer(ITIMER_REAL, &it, NULL);
	char b[4];
	ssize_t r = recv(s, b, sizeof b, 0);
	SAY(" recv=%zd/%s", r, err_name(errno));
	signal(SIGALRM, SIG_DFL);
	close(ep); close(c); close(s);
}

struct later { int fd; const char *data; };
static void *send_later_long(void *arg);

static volatile sig_atomic_t alarms;
static void count_alarm(int sig) { (void)sig; alarms++; }

/* With SA_RESTART a blocking recv is restarted after the handler runs. */
static void t_restart(void)
{
	int c, s;
	pair(&c, &s);
	struct sigaction sa = { .sa_handler = count_alarm, .sa_flags = SA_RESTART };
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = { .it_value = { 0, 30000 } };
	setitimer(ITIMER_REAL, &it, NULL);
	pthread_t t;
	struct later l = { c, "late" };
	pthread_create(&t, NULL, send_later_long, &l);
	char b[8] = "";
	ssize_t r = recv(s, b, sizeof b - 1, 0);
	pthread_join(t, NULL);
	SAY("recv=%zd:%s alarms=%d", r, b, (int)alarms);
	signal(SIGALRM, SIG_DFL);
	close(c); close(s);
}

static void t_nonblock(void)
{
	int c, s;
	pair(&c, &s);
	int fl = fcntl(s, F_GETFL);
	fcntl(s, F_SETFL, fl | O_NONBLOCK);
	int fl2 = fcntl(s, F_GETFL);
	char b[4];
	ssize_t r = recv(s, b, sizeof b, 0);
	int e1 = errno;
	int off = 0;
	ioctl(s, FIONBIO, &off);
	int fl3 = fcntl(s, F_GETFL);
	r = recv(c, b, sizeof b, MSG_DONTWAIT);
	int e2 = errno;
	SAY("nb=%d recv=%s unset=%d dontwait=%zd/%s rdwr=%d", !!(fl2 & O_NONBLOCK), err_name(e1),
	    !!(fl3 & O_NONBLOCK), r, err_name(e2), (fl2 & O_ACCMODE) == O_RDWR);
	struct sockaddr_in a;
	int l = listener(&a);
	int nc = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int cr = connect(nc, (struct sockaddr *)&a, sizeof a);
	int ce = errno;
	struct pollfd pf = { .fd = nc, .events = POLLOUT };
	int pr = poll(&pf, 1, 1000);
	int err = -1;
	socklen_t el = sizeof err;
	getsockopt(nc, SOL_SOCKET, SO_ERROR, &err, &el);
	int as = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	int asfl = fcntl(as, F_GETFL), asfd = fcntl(as, F_GETFD);
	fcntl(l, F_SETFL, O_NONBLOCK);
	int again = accept4(l, NULL, NULL, SOCK_NONBLOCK);
	SAY(" connect=%s poll=%d/%x soerr=%d accepted nb=%d cloexec=%d; empty=%d/%s",
	    cr == 0 || ce == EINPROGRESS ? "ok" : err_name(ce), pr,
	    pf.revents & POLLOUT, err, !!(asfl & O_NONBLOCK), !!(asfd & FD_CLOEXEC), again, err_name(errno));
	close(as); close(nc); close(l); close(c); close(s);
}

static void t_peek_fionread(void)
{
	int c, s;
	pair(&c, &s);
	send(c, "hello", 5, 0);
	settle();
	int avail = -1;
	ioctl(s, FIONREAD, &avail);
	char b[8] = "";
	ssize_t p = recv(s, b, 3, MSG_PEEK);
	char b2[8] = "";
	ssize_t r = recv(s, b2, sizeof b2 - 1, 0);
	SAY("fionread=%d peek=%zd:%.3s recv=%zd:%s", avail, p, b, r, b2);
	close(c); close(s);
}

/* TCP_INQ: recvmsg tells what is left to read in a TCP_CM_INQ control
 * message (1 once the peer's FIN came and nothing is left), MSG_CTRUNC
 * without room for it; the option is 0 or 1. */
static void inq_read(int s, size_t want)
{
	char buf[16];
	union { char b[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } ctl;
	struct iovec iov = { buf, want };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof ctl.b };
	ssize_t n = recvmsg(s, &m, MSG_DONTWAIT);
	struct cmsghdr *c = m.msg_controllen ? CMSG_FIRSTHDR(&m) : NULL;
	int inq = -1;
	if (c && c->cmsg_level == SOL_TCP && c->cmsg_type == TCP_CM_INQ)
		memcpy(&inq, CMSG_DATA(c), sizeof inq);
	SAY(" read=%zd inq=%d ctrunc=%d", n, inq, !!(m.msg_flags & MSG_CTRUNC));
}

static void t_tcp_inq(void)
{
	int c, s;
	pair(&c, &s);
	int one = 1, two = 2, v = -1;
	socklen_t vl = sizeof v;
	int r0 = setsockopt(s, IPPROTO_TCP, TCP_INQ, &two, sizeof two) < 0 ? errno : 0;
	int r1 = setsockopt(s, IPPROTO_TCP, TCP_INQ, &one, sizeof one) < 0 ? errno : 0;
	getsockopt(s, IPPROTO_TCP, TCP_INQ, &v, &vl);
	SAY("set2=%d set1=%d get=%d", r0, r1, v);
	send(c, "0123456789", 10, 0);
	settle();
	inq_read(s, 4);
	inq_read(s, 6);
	/* no room for the control message */
	send(c, "ab", 2, 0);
	settle();
	char b[4];
	struct iovec iov = { b, 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n = recvmsg(s, &m, MSG_DONTWAIT);
	SAY(" noctl=%zd ctrunc=%d", n, !!(m.msg_flags & MSG_CTRUNC));
	close(c);
	settle();
	inq_read(s, 4);
	inq_read(s, 4);
	close(s);
}

/* TCP_CC_INFO under cubic (set: the host's default may be another):
 * nothing to report. */
static void t_tcp_cc_info(void)
{
	int c, s;
	pair(&c, &s);
	int set = setsockopt(s, IPPROTO_TCP, TCP_CONGESTION, "cubic", 5) < 0 ? errno : 0;
	char info[64];
	socklen_t len = sizeof info;
	int r = getsockopt(s, IPPROTO_TCP, TCP_CC_INFO, info, &len) < 0 ? errno : 0;
	char cc[16] = "";
	socklen_t cl = sizeof cc;
	getsockopt(s, IPPROTO_TCP, TCP_CONGESTION, cc, &cl);
	SAY("set=%d cc=%s r=%d len=%u", set, cc, r, (unsigned)len);
	close(c);
	close(s);
}

/* TCP_DEFER_ACCEPT: read back as Linux rounds it (5 s: 7); a connection
 * whose client sends nothing is not acceptable for the first second; one
 * that sends data is at once, its data with it. */
static void t_defer_accept(void)
{
	struct sockaddr_in a;
	int l = listener(&a);
	int one = 1, five = 5, v = -1;
	socklen_t vl = sizeof v;
	setsockopt(l, IPPROTO_TCP, TCP_DEFER_ACCEPT, &five, sizeof five);
	getsockopt(l, IPPROTO_TCP, TCP_DEFER_ACCEPT, &v, &vl);
	setsockopt(l, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof one);
	int quiet = socket(AF_INET, SOCK_STREAM, 0);
	int cr = connect(quiet, (struct sockaddr *)&a, sizeof a) < 0 ? errno : 0;
	struct pollfd p = { l, POLLIN, 0 };
	int early = poll(&p, 1, 300);
	int talker = socket(AF_INET, SOCK_STREAM, 0);
	connect(talker, (struct sockaddr *)&a, sizeof a);
	send(talker, "hi", 2, 0);
	p.revents = 0;
	int later = poll(&p, 1, 2000);
	int s = accept(l, NULL, NULL);
	char b[4] = "";
	ssize_t n = s >= 0 ? recv(s, b, sizeof b - 1, MSG_DONTWAIT) : -1;
	SAY("get=%d connect=%d ready_early=%d ready_after_data=%d accepted_data=%zd:%s", v, cr, early, later, n, b);
	if (s >= 0)
		close(s);
	close(quiet);
	close(talker);
	close(l);
}

/* splice(2) between a socket and a pipe, both ways; Linux's errors for an
 * offset on a socket, for two sockets, and for nothing to read on a
 * nonblocking socket; 0 at the peer's FIN. */
static void t_splice(void)
{
	int c, s, p[2];
	pair(&c, &s);
	if (pipe(p) < 0)
		die("pipe");
	send(c, "hello world", 11, 0);
	settle();
	ssize_t in = splice(s, NULL, p[1], NULL, 64, 0);
	char b[32] = "";
	ssize_t r = read(p[0], b, sizeof b - 1);
	loff_t off = 0;
	int e_off = splice(s, &off, p[1], NULL, 4, 0) < 0 ? errno : 0;
	int e_poff = splice(s, NULL, p[1], &off, 4, 0) < 0 ? errno : 0;
	int e_dir = splice(s, NULL, p[0], NULL, 4, 0) < 0 ? errno : 0;
	int e_two = splice(s, NULL, c, NULL, 4, 0) < 0 ? errno : 0;
	/* the socket's own O_NONBLOCK decides whether it waits */
	fcntl(s, F_SETFL, O_NONBLOCK);
	int e_empty = splice(s, NULL, p[1], NULL, 4, 0) < 0 ? errno : 0;
	fcntl(s, F_SETFL, 0);
	write(p[1], "back", 4);
	ssize_t out = splice(p[0], NULL, s, NULL, 64, 0);
	settle();
	char b2[8] = "";
	ssize_t r2 = recv(c, b2, sizeof b2 - 1, MSG_DONTWAIT);
	/* the peer closes: reading the socket's end gives 0 */
	close(c);
	settle();
	ssize_t eof = splice(s, NULL, p[1], NULL, 4, 0);
	SAY("in=%zd read=%zd:%s offset=%s pipe_offset=%s read_end=%s sockets=%s empty=%s out=%zd recv=%zd:%s eof=%zd",
	    in, r, b, err_name(e_off), err_name(e_poff), err_name(e_dir), err_name(e_two), err_name(e_empty), out, r2,
	    b2, eof);
	close(s);
	close(p[0]);
	close(p[1]);
}

/* Bad pointers get EFAULT, as on the kernel, and the data stays intact. */
static int err_of(long r)
{
	return r < 0 ? errno : 0;
}

static void t_efault(void)
{
	int c, s;
	pair(&c, &s);
	send(c, "hello", 5, 0);
	settle();
	/* unmapped in every process (page 0 is readable under the hook) */
	void *bad = (void *)(1UL << 46);
	struct sockaddr_in a;
	socklen_t len = sizeof a;
	int one = 1;
	SAY("send=%d", err_of(send(c, bad, 5, 0)));
	SAY(" write=%d", err_of(write(c, bad, 5)));
	SAY(" sendto_addr=%d", err_of(sendto(c, "x", 1, 0, bad, sizeof a)));
	SAY(" recv=%d", err_of(recv(s, bad, 5, 0)));
	SAY(" read=%d", err_of(read(s, bad, 5)));
	struct iovec iov = { bad, 5 };
	SAY(" readv=%d", err_of(readv(s, &iov, 1)));
	SAY(" writev=%d", err_of(writev(c, &iov, 1)));
	SAY(" readv_array=%d", err_of(readv(s, bad, 1)));
	struct msghdr m;
	memset(&m, 0, sizeof m);
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	SAY(" recvmsg=%d", err_of(recvmsg(s, &m, 0)));
	SAY(" sendmsg_hdr=%d", err_of(sendmsg(c, bad, 0)));
	SAY(" getsockname=%d", err_of(getsockname(s, bad, &len)));
	SAY(" getsockname_len=%d", err_of(getsockname(s, (struct sockaddr *)&a, bad)));
	SAY(" setsockopt=%d", err_of(setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, bad, sizeof one)));
	len = sizeof one;
	SAY(" getsockopt=%d", err_of(getsockopt(s, SOL_SOCKET, SO_TYPE, bad, &len)));
	SAY(" fionread=%d", err_of(ioctl(s, FIONREAD, bad)));
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN };
	epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
	SAY(" epoll_ctl=%d", err_of(epoll_ctl(ep, EPOLL_CTL_MOD, s, bad)));
	SAY(" epoll_wait=%d", err_of(epoll_wait(ep, bad, 1, 0)));   /* s is readable */
	close(ep);
	SAY(" poll=%d", err_of(poll(bad, 1, 0)));
	struct timeval tv0 = { 0, 0 };
	SAY(" select=%d", err_of(select(s + 1, bad, NULL, NULL, &tv0)));
	SAY(" rt_sigaction=%d", err_of(syscall(SYS_rt_sigaction, SIGUSR2, bad, NULL, 8)));
	int u = socket(AF_INET, SOCK_STREAM, 0);
	SAY(" bind=%d", err_of(bind(u, bad, sizeof a)));
	SAY(" connect=%d", err_of(connect(u, bad, sizeof a)));
	close(u);
	char b[8] = "";
	ssize_t r = recv(s, b, sizeof b - 1, 0);
	SAY(" then recv=%zd:%s", r, b);
	close(c); close(s);
}

static void *send_later(void *arg)
{
	struct later *l = arg;
	usleep(30000);
	send(l->fd, l->data, strlen(l->data), 0);
	return NULL;
}

static void *send_later_long(void *arg)
{
	struct later *l = arg;
	usleep(100000);
	send(l->fd, l->data, strlen(l->data), 0);
	return NULL;
}

static void t_waitall(void)
{
	int c, s;
	pair(&c, &s);
	send(c, "abc", 3, 0);
	pthread_t t;
	struct later l = { c, "def" };
	pthread_create(&t, NULL, send_later, &l);
	char b[8] = "";
	ssize_t r = recv(s, b, 6, MSG_WAITALL);
	pthread_join(t, NULL);
	SAY("%zd %s", r, b);
	close(c); close(s);
}

static void t_halfclose(void)
{
	int c, s;
	pair(&c, &s);
	send(c, "req", 3, 0);
	shutdown(c, SHUT_WR);
	char b[8] = "";
	ssize_t r1 = recv(s, b, sizeof b, MSG_WAITALL);
	ssize_t r2 = recv(s, b + 3, sizeof b, 0);
	ssize_t w = send(s, "resp", 4, 0);
	shutdown(s, SHUT_WR);
	char rb[8] = "";
	ssize_t r3 = recv(c, rb, sizeof rb, MSG_WAITALL);
	int bad = shutdown(s, 7);
	SAY("%zd %zd %zd %zd:%s bad=%d/%s", r1, r2, w, r3, rb, bad, err_name(errno));
	close(c); close(s);
}

static volatile sig_atomic_t pipes;
static void on_pipe(int sig) { (void)sig; pipes++; }

static void t_epipe(void)
{
	int c, s;
	pair(&c, &s);
	signal(SIGPIPE, on_pipe);
	shutdown(c, SHUT_WR);
	ssize_t r1 = send(c, "x", 1, 0);
	int e1 = errno;
	int p1 = pipes;
	ssize_t r2 = send(c, "x", 1, MSG_NOSIGNAL);
	int e2 = errno;
	SAY("%zd/%s sig=%d %zd/%s sig=%d", r1, err_name(e1), p1, r2, err_name(e2), (int)pipes);
	signal(SIGPIPE, SIG_DFL);
	close(c); close(s);
}

static void t_dup(void)
{
	int c, s, p[2];
	pair(&c, &s);
	if (pipe(p) < 0)
		die("pipe");
	int keep = dup(p[0]);   /* a reader, so that writing to the pipe cannot raise SIGPIPE */
	int d = dup(c);
	close(c);
	ssize_t w = send(d, "dup", 3, 0);
	char b[8] = "";
	recv(s, b, sizeof b, 0);
	/* dup2 the socket onto the pipe's read end number */
	int target = p[0];
	int r = dup2(d, target);
	ssize_t w2 = send(target, "two", 3, 0);
	char b2[8] = "";
	recv(s, b2, sizeof b2, 0);
	/* dup2 the pipe's write end over the socket at d */
	int r2 = dup2(p[1], d);
	ssize_t w3 = write(d, "p", 1);
	int fl = fcntl(d, F_GETFL);
	int dc = fcntl(target, F_DUPFD_CLOEXEC, 0);
	int dcfd = fcntl(dc, F_GETFD);
	int d3 = dup3(target, target, 0);
	SAY("%zd:%s dup2=%s %zd:%s over=%s %zd wronly=%d cloexec=%d dup3same=%d/%s", w, b, r == target ? "ok" : "bad",
	    w2, b2, r2 == d ? "ok" : "bad", w3, (fl & O_ACCMODE) == O_WRONLY, !!(dcfd & FD_CLOEXEC), d3,
	    err_name(errno));
	close(dc); close(d); close(target); close(p[1]); close(s); close(keep);
}

struct sink { int fd; size_t got; unsigned sum; };
static void *sink_main(void *arg)
{
	struct sink *x = arg;
	unsigned char b[4096];
	ssize_t n;
	while ((n = recv(x->fd, b, sizeof b, 0)) > 0) {
		for (ssize_t i = 0; i < n; i++)
			x->sum = x->sum * 31 + b[i];
		x->got += (size_t)n;
	}
	return NULL;
}

/* sendfile from an offset (the file position stays), from the file
 * position (it moves), at the file's end (0), and from an fd not open for
 * reading (EBADF); the peer gets the bytes in order, intact. */
static void t_sendfile(void)
{
	int c, s;
	pair(&c, &s);
	char path[] = "/tmp/usnet-readiness-XXXXXX";
	int f = mkstemp(path);
	static unsigned char data[200000];
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (unsigned char)(i * 7 + i / 251);
	if (write(f, data, sizeof data) != (ssize_t)sizeof data)
		die("write");
	int wronly = open(path, O_WRONLY);
	unlink(path);
	off_t off = 1000;
	pthread_t t;
	struct sink rx = { s, 0, 0 };
	pthread_create(&t, NULL, sink_main, &rx);
	ssize_t sent = sendfile(c, f, &off, sizeof data - 1000);
	lseek(f, 500, SEEK_SET);
	ssize_t from_pos = sendfile(c, f, NULL, 300);
	off_t pos = lseek(f, 0, SEEK_CUR);
	off_t end = sizeof data;
	ssize_t at_end = sendfile(c, f, &end, 100);
	errno = 0;
	ssize_t bad = sendfile(c, wronly, NULL, 100);
	int bad_err = errno;
	shutdown(c, SHUT_WR);
	pthread_join(t, NULL);
	unsigned sum = 0;
	for (size_t i = 1000; i < sizeof data; i++)
		sum = sum * 31 + data[i];
	for (size_t i = 500; i < 800; i++)
		sum = sum * 31 + data[i];
	SAY("sent=%zd off=%lld got=%zu intact=%d filepos=%lld frompos=%zd at_end=%zd wronly=%zd/%s", sent,
	    (long long)off, rx.got, sum == rx.sum, (long long)pos, from_pos, at_end, bad, strerrorname_np(bad_err));
	close(f); close(wronly); close(c); close(s);
}

static void t_sockopts(void)
{
	int c, s;
	pair(&c, &s);
	int v = 1, g = 0;
	socklen_t l = sizeof g;
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v);
	getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &g, &l);
	SAY("nodelay=%d", !!g);
	setsockopt(c, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof v);
	g = 0; l = sizeof g;
	getsockopt(c, SOL_SOCKET, SO_KEEPALIVE, &g, &l);
	SAY(" keepalive=%d", !!g);
	g = -1; l = sizeof g;
	getsockopt(c, SOL_SOCKET, SO_TYPE, &g, &l);
	SAY(" type=%d", g);
	g = -1; l = sizeof g;
	getsockopt(c, SOL_SOCKET, SO_DOMAIN, &g, &l);
	SAY(" domain=%d", g);
	g = -1; l = sizeof g;
	getsockopt(c, SOL_SOCKET, SO_ERROR, &g, &l);
	SAY(" error=%d", g);
	struct timeval tv = { 0, 50000 }, tg;
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	l = sizeof tg;
	getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tg, &l);
	char b[4];
	int64_t t0 = now_ms();
	ssize_t r = recv(s, b, sizeof b, 0);
	int64_t dt = now_ms() - t0;
	SAY(" rcvtimeo=%ldms recv=%zd/%s %s", (long)tg.tv_sec * 1000 + (long)tg.tv_usec / 10000 * 10, r, err_name(errno),
	    dt >= 40 && dt < 1000 ? "timed" : "badtime");
	struct stat st;
	fstat(c, &st);
	SAY(" sock=%d", S_ISSOCK(st.st_mode));
	ssize_t pr = pread(c, b, 1, 0);
	SAY(" pread=%zd/%s", pr, err_name(errno));
	close(c); close(s);
}

static void t_close_in_epoll(void)
{
	int c, s;
	pair(&c, &s);
	int ep = epoll_create1(0);
	struct epoll_event e = { .events = EPOLLIN, .data.u64 = 4 };
	epoll_ctl(ep, EPOLL_CTL_ADD, s, &e);
	send(c, "x", 1, 0);
	settle();
	close(s);
	int n = epoll_wait(ep, &e, 1, 50);
	int m = epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL);
	SAY("%d del=%d/%s", n, m, err_name(errno));
	close(ep); close(c);
}

static void t_udp(void)
{
	int a = socket(AF_INET, SOCK_DGRAM, 0), b = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	bind(a, (struct sockaddr *)&sa, sizeof sa);
	socklen_t l = sizeof sa;
	getsockname(a, (struct sockaddr *)&sa, &l);
	ssize_t w = sendto(b, "dgram", 5, 0, (struct sockaddr *)&sa, sizeof sa);
	struct pollfd pf = { .fd = a, .events = POLLIN };
	int n = poll(&pf, 1, 1000);
	char buf[16] = "";
	struct sockaddr_in from;
	l = sizeof from;
	ssize_t r = recvfrom(a, buf, sizeof buf, 0, (struct sockaddr *)&from, &l);
	SAY("%zd %d %zd:%s from=%s", w, n, r, buf, from.sin_addr.s_addr == htonl(INADDR_LOOPBACK) ? "lo" : "other");
	close(a); close(b);
}

/* The udp case on the address the program's listeners use (the stack's
 * own under the stack, where 127.0.0.1 is the kernel's). */
static void t_udp_self(void)
{
	int a = socket(AF_INET, SOCK_DGRAM, 0), b = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	inet_pton(AF_INET, loop_addr(), &sa.sin_addr);
	bind(a, (struct sockaddr *)&sa, sizeof sa);
	socklen_t l = sizeof sa;
	getsockname(a, (struct sockaddr *)&sa, &l);
	ssize_t w = sendto(b, "dgram", 5, 0, (struct sockaddr *)&sa, sizeof sa);
	struct pollfd pf = { .fd = a, .events = POLLIN };
	int n = poll(&pf, 1, 1000);
	char buf[16] = "";
	struct sockaddr_in from, bn;
	l = sizeof from;
	ssize_t r = recvfrom(a, buf, sizeof buf, 0, (struct sockaddr *)&from, &l);
	socklen_t bl = sizeof bn;
	getsockname(b, (struct sockaddr *)&bn, &bl);
	ssize_t back = sendto(a, "back", 4, 0, (struct sockaddr *)&from, l);
	char buf2[16] = "";
	pf.fd = b;
	int n2 = poll(&pf, 1, 1000);
	ssize_t r2 = recv(b, buf2, sizeof buf2, 0);
	SAY("%zd %d %zd:%s from=%s port=%s reply=%zd %d %zd:%s", w, n, r, buf,
	    from.sin_addr.s_addr == sa.sin_addr.s_addr ? "self" : "other", from.sin_port == bn.sin_port ? "same" : "differ",
	    back, n2, r2, buf2);
	close(a); close(b);
}

/* sendmmsg and recvmmsg on UDP at the stack's own address: a batch of three
 * datagrams (one sent to another port, which refuses nothing: UDP), each
 * message's msg_len, a recvmmsg that takes what there is with
 * MSG_DONTWAIT and names each sender, one with MSG_WAITFORONE that returns
 * after the first, an empty one (EAGAIN), and a bad vector (EFAULT). */
static void t_mmsg(void)
{
	int a = socket(AF_INET, SOCK_DGRAM, 0), b = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	inet_pton(AF_INET, loop_addr(), &sa.sin_addr);
	bind(a, (struct sockaddr *)&sa, sizeof sa);
	socklen_t l = sizeof sa;
	getsockname(a, (struct sockaddr *)&sa, &l);
	static const char *words[3] = { "one", "three", "seventeen" };
	struct iovec iov[3];
	struct mmsghdr out[3];
	memset(out, 0, sizeof out);
	for (int i = 0; i < 3; i++) {
		iov[i].iov_base = (void *)words[i];
		iov[i].iov_len = strlen(words[i]);
		out[i].msg_hdr.msg_iov = &iov[i];
		out[i].msg_hdr.msg_iovlen = 1;
		out[i].msg_hdr.msg_name = &sa;
		out[i].msg_hdr.msg_namelen = sizeof sa;
	}
	int w = sendmmsg(b, out, 3, 0);
	SAY("sent=%d lens=%u,%u,%u", w, out[0].msg_len, out[1].msg_len, out[2].msg_len);
	struct pollfd pf = { .fd = a, .events = POLLIN };
	poll(&pf, 1, 1000);
	settle();
	char bufs[4][32];
	struct iovec riov[4];
	struct sockaddr_in from[4];
	struct mmsghdr in[4];
	memset(in, 0, sizeof in);
	memset(bufs, 0, sizeof bufs);
	for (int i = 0; i < 4; i++) {
		riov[i].iov_base = bufs[i];
		riov[i].iov_len = i == 2 ? 5 : sizeof bufs[i];   /* the third is cut short */
		in[i].msg_hdr.msg_iov = &riov[i];
		in[i].msg_hdr.msg_iovlen = 1;
		in[i].msg_hdr.msg_name = &from[i];
		in[i].msg_hdr.msg_namelen = sizeof from[i];
	}
	struct sockaddr_in bn;
	socklen_t bl = sizeof bn;
	getsockname(b, (struct sockaddr *)&bn, &bl);
	int r = recvmmsg(a, in, 4, MSG_DONTWAIT, NULL);
	SAY(" got=%d", r);
	for (int i = 0; i < r && i < 4; i++)
		SAY(" [%u %.*s trunc=%d from=%s namelen=%u]", in[i].msg_len, (int)in[i].msg_len, bufs[i],
		    !!(in[i].msg_hdr.msg_flags & MSG_TRUNC), from[i].sin_port == bn.sin_port ? "b" : "?",
		    (unsigned)in[i].msg_hdr.msg_namelen);
	errno = 0;
	r = recvmmsg(a, in, 4, MSG_DONTWAIT, NULL);
	SAY(" empty=%d %s", r, r < 0 ? strerror(errno) : "");
	/* MSG_WAITFORONE: after the first datagram, the rest would block */
	sendmmsg(b, out, 1, 0);
	poll(&pf, 1, 1000);
	settle();
	r = recvmmsg(a, in, 4, MSG_WAITFORONE, NULL);
	SAY(" waitforone=%d", r);
	errno = 0;
	r = recvmmsg(a, (struct mmsghdr *)8, 4, MSG_DONTWAIT, NULL);
	SAY(" bad=%d %s", r, r < 0 ? strerror(errno) : "");
	close(a); close(b);
}

/* IP_PKTINFO and SO_TIMESTAMP(NS) on a datagram the host sent itself at
 * its own address: the control messages in Linux's order (time first), lo's
 * index, the addresses, a time within a second of now; the options read
 * back (the last timestamp format set wins); no room: MSG_CTRUNC. */
static void t_udp_cmsgs(void)
{
	int a = socket(AF_INET, SOCK_DGRAM, 0), b = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	inet_pton(AF_INET, loop_addr(), &sa.sin_addr);
	bind(a, (struct sockaddr *)&sa, sizeof sa);
	socklen_t l = sizeof sa;
	getsockname(a, (struct sockaddr *)&sa, &l);
	int one = 1, v1 = -1, v2 = -1, v3 = -1;
	socklen_t vl = sizeof v1;
	setsockopt(a, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
	setsockopt(a, SOL_SOCKET, SO_TIMESTAMP, &one, sizeof one);
	setsockopt(a, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
	getsockopt(a, IPPROTO_IP, IP_PKTINFO, &v1, &vl);
	vl = sizeof v2;
	getsockopt(a, SOL_SOCKET, SO_TIMESTAMP, &v2, &vl);
	vl = sizeof v3;
	getsockopt(a, SOL_SOCKET, SO_TIMESTAMPNS, &v3, &vl);
	SAY("pktinfo=%d timestamp=%d timestampns=%d", v1, v2, v3);
	for (int round = 0; round < 2; round++) {
		sendto(b, "dgram", 5, 0, (struct sockaddr *)&sa, sizeof sa);
		struct pollfd pf = { .fd = a, .events = POLLIN };
		poll(&pf, 1, 1000);
		char buf[16] = "";
		union { char b[256]; struct cmsghdr align; } ctl;
		struct iovec iov = { buf, sizeof buf };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
				    .msg_controllen = round ? CMSG_SPACE(sizeof(struct timespec)) : sizeof ctl.b };
		ssize_t r = recvmsg(a, &m, MSG_DONTWAIT);
		SAY(" read=%zd ctrunc=%d", r, !!(m.msg_flags & MSG_CTRUNC));
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS) {
				struct timespec ts, now;
				memcpy(&ts, CMSG_DATA(c), sizeof ts);
				clock_gettime(CLOCK_REALTIME, &now);
				long d = (long)(now.tv_sec - ts.tv_sec);
				SAY(" timestampns=%s", d >= 0 && d <= 1 ? "now" : "off");
			} else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
				struct in_pktinfo pi;
				memcpy(&pi, CMSG_DATA(c), sizeof pi);
				SAY(" pktinfo ifindex=%d spec_dst=%s addr=%s", pi.ipi_ifindex,
				    pi.ipi_spec_dst.s_addr == sa.sin_addr.s_addr ? "self" : "other",
				    pi.ipi_addr.s_addr == sa.sin_addr.s_addr ? "self" : "other");
			} else {
				SAY(" cmsg %d/%d", c->cmsg_level, c->cmsg_type);
			}
		}
	}
	close(a);
	close(b);
}

/* The multicast options' corners that need no interface: IP_MULTICAST_TTL,
 * _LOOP and _ALL as ints and as single bytes (set and read back), their
 * range errors, IP_MULTICAST_IF's lengths, and IP_ADD_MEMBERSHIP's checks
 * before any interface is looked at (length, TCP, not a group). */
static void t_mcast_opts(void)
{
	int u = socket(AF_INET, SOCK_DGRAM, 0), t = socket(AF_INET, SOCK_STREAM, 0);
	static const int names[] = { IP_MULTICAST_TTL, IP_MULTICAST_LOOP, IP_MULTICAST_ALL };
	for (int k = 0; k < 3; k++) {
		int n = names[k], v = -9, r;
		unsigned char b = 0xee;
		socklen_t l = sizeof v;
		getsockopt(u, IPPROTO_IP, n, &v, &l);
		SAY("%s%d/%u", k ? " | " : "", v, (unsigned)l);
		l = 1;
		getsockopt(u, IPPROTO_IP, n, &b, &l);
		SAY(" byte=%u/%u", b, (unsigned)l);
		int vals[] = { 3, -1, 256, 0 };
		for (int i = 0; i < 4; i++) {
			r = setsockopt(u, IPPROTO_IP, n, &vals[i], sizeof vals[i]);
			v = -9;
			l = sizeof v;
			getsockopt(u, IPPROTO_IP, n, &v, &l);
			SAY(" set%d=%d/%s->%d", vals[i], r, r ? err_name(errno) : "-", v);
		}
		b = 1;
		r = setsockopt(u, IPPROTO_IP, n, &b, 1);
		v = -9;
		l = sizeof v;
		getsockopt(u, IPPROTO_IP, n, &v, &l);
		SAY(" setbyte=%d->%d", r, v);
		r = setsockopt(u, IPPROTO_IP, n, &b, 0);
		SAY(" len0=%d/%s", r, r ? err_name(errno) : "-");
	}
	struct in_addr any = { 0 };
	uint32_t a = 0xffffffff;
	socklen_t l = sizeof a;
	int r = setsockopt(u, IPPROTO_IP, IP_MULTICAST_IF, &any, sizeof any);
	getsockopt(u, IPPROTO_IP, IP_MULTICAST_IF, &a, &l);
	SAY(" | if=%d addr=%08x/%u", r, a, (unsigned)l);
	r = setsockopt(u, IPPROTO_IP, IP_MULTICAST_IF, &any, 3);
	SAY(" if3=%d/%s", r, r ? err_name(errno) : "-");
	r = setsockopt(t, IPPROTO_IP, IP_MULTICAST_IF, &any, sizeof any);
	SAY(" tcpif=%d/%s", r, r ? err_name(errno) : "-");
	int ttl = 2;
	r = setsockopt(t, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
	SAY(" tcpttl=%d/%s", r, r ? err_name(errno) : "-");
	struct ip_mreq mr = { .imr_interface = { 0 } };
	inet_pton(AF_INET, "239.1.2.3", &mr.imr_multiaddr);
	r = setsockopt(t, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr);
	SAY(" | tcpjoin=%d/%s", r, r ? err_name(errno) : "-");
	r = setsockopt(u, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, 4);
	SAY(" short=%d/%s", r, r ? err_name(errno) : "-");
	r = setsockopt(u, IPPROTO_IP, IP_DROP_MEMBERSHIP, &mr, 7);
	SAY(" dropshort=%d/%s", r, r ? err_name(errno) : "-");
	inet_pton(AF_INET, "10.1.2.3", &mr.imr_multiaddr);
	r = setsockopt(u, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr);
	SAY(" unicast=%d/%s", r, r ? err_name(errno) : "-");
	l = sizeof mr;
	r = getsockopt(u, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, &l);
	SAY(" get=%d/%s", r, r ? err_name(errno) : "-");
	close(u);
	close(t);
}

/* A UDP socket bound to the wildcard address reached through 127.0.0.1
 * (on the stack under usnet), and its reply. */
/* The program's vector state across calls that enter the switch: ymm0-15
 * and MXCSR (rounding toward zero) set, then a send and a receive on user
 * sockets issued inline, as a program's own syscall instruction: every
 * register and MXCSR must come back as they were, as from the kernel. */
#define YMM_ALL(op) op(0) op(1) op(2) op(3) op(4) op(5) op(6) op(7) op(8) op(9) op(10) op(11) \
	op(12) op(13) op(14) op(15)
#define YMM_LOAD(i) "vmovdqu " #i "*32(%[in]), %%ymm" #i "\n"
#define YMM_STORE(i) "vmovdqu %%ymm" #i ", " #i "*32(%[out])\n"
#define YMM_CLOBBER(i) "xmm" #i,

__attribute__((target("avx2"))) static int vector_call(long nr, long a0, long a1, long a2, const unsigned char *in,
							unsigned char *out, unsigned *csr_in, unsigned *csr_out)
{
	register long r10 __asm__("r10") = 0;
	register long r8 __asm__("r8") = 0;
	register long r9 __asm__("r9") = 0;
	__asm__ volatile("ldmxcsr (%[ci])\n"
			 YMM_ALL(YMM_LOAD)
			 "syscall\n"
			 YMM_ALL(YMM_STORE)
			 "stmxcsr (%[co])\n"
			 : "+a"(nr), "+r"(r10), "+r"(r8), "+r"(r9)
			 : [in] "r"(in), [out] "r"(out), [ci] "r"(csr_in), [co] "r"(csr_out), "D"(a0), "S"(a1),
			   "d"(a2)
			 : "rcx", "r11", YMM_ALL(YMM_CLOBBER) "memory");
	unsigned dflt = 0x1f80;
	__asm__ volatile("ldmxcsr %0" : : "m"(dflt));
	return (int)nr;
}

static void t_vector_regs(void)
{
	__builtin_cpu_init();
	if (!__builtin_cpu_supports("avx2")) {
		SAY("unchanged");   /* nothing to compare on this CPU */
		return;
	}
	int c, s;
	pair(&c, &s);
	static unsigned char in[16 * 32], out[16 * 32];
	for (unsigned i = 0; i < sizeof in; i++)
		in[i] = (unsigned char)(i * 7 + 3);
	char msg[600], got[600];
	memset(msg, 'v', sizeof msg);
	const char *what = "unchanged";
	for (int round = 0; round < 50 && !strcmp(what, "unchanged"); round++) {
		unsigned csr = 0x7f80, csr_out = 0;
		memset(out, 0, sizeof out);
		int n = vector_call(SYS_sendto, c, (long)msg, sizeof msg, in, out, &csr, &csr_out);
		if (n != (int)sizeof msg)
			what = "send failed";
		else if (memcmp(in, out, sizeof in) || csr_out != csr)
			what = "changed by a send";
		size_t have = 0;
		while (have < sizeof got && !strcmp(what, "unchanged")) {
			memset(out, 0, sizeof out);
			n = vector_call(SYS_recvfrom, s, (long)(got + have), sizeof got - have, in, out, &csr, &csr_out);
			if (n <= 0)
				what = "receive failed";
			else if (memcmp(in, out, sizeof in) || csr_out != csr)
				what = "changed by a receive";
			else
				have += (size_t)n;
		}
	}
	SAY("%s", what);
	close(c);
	close(s);
}

static void t_udp_loopback(void)
{
	int a = socket(AF_INET, SOCK_DGRAM, 0), b = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	bind(a, (struct sockaddr *)&sa, sizeof sa);
	socklen_t l = sizeof sa;
	getsockname(a, (struct sockaddr *)&sa, &l);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ssize_t w = sendto(b, "dgram", 5, 0, (struct sockaddr *)&sa, sizeof sa);
	struct pollfd pf = { .fd = a, .events = POLLIN };
	int n = poll(&pf, 1, 1000);
	char buf[16] = "";
	struct sockaddr_in from;
	l = sizeof from;
	ssize_t r = recvfrom(a, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &l);
	ssize_t back = sendto(a, "back", 4, 0, (struct sockaddr *)&from, l);
	char buf2[16] = "";
	pf.fd = b;
	int n2 = poll(&pf, 1, 1000);
	struct sockaddr_in from2;
	l = sizeof from2;
	ssize_t r2 = recvfrom(b, buf2, sizeof buf2, MSG_DONTWAIT, (struct sockaddr *)&from2, &l);
	SAY("%zd %d %zd:%s from=%s reply=%zd %d %zd:%s from=%s", w, n, r, buf,
	    from.sin_addr.s_addr == htonl(INADDR_LOOPBACK) ? "lo" : "other", back, n2, r2, buf2,
	    from2.sin_addr.s_addr == htonl(INADDR_LOOPBACK) && from2.sin_port == sa.sin_port ? "lo" : "other");
	close(a); close(b);
}

static void t_refused(void)
{
	struct sockaddr_in a;
	int l = listener(&a);
	close(l);
	int c = socket(AF_INET, SOCK_STREAM, 0);
	int r = connect(c, (struct sockaddr *)&a, sizeof a);
	SAY("%d/%s", r, err_name(errno));
	close(c);
}

/* A listener made before fork, accepted on in the child (nginx's master and
 * workers, a daemonising fork). */
static void t_fork(void)
{
	struct sockaddr_in a;
	int l = listener(&a);
	pid_t pid = fork();
	if (pid == 0) {
		int s = accept(l, NULL, NULL);
		char b[16] = "";
		ssize_t n = recv(s, b, sizeof b, 0);
		send(s, b, (size_t)(n > 0 ? n : 0), 0);
		close(s);
		_exit(0);
	}
	int c = socket(AF_INET, SOCK_STREAM, 0);
	int r = connect(c, (struct sockaddr *)&a, sizeof a);
	send(c, "forked", 6, 0);
	char b[16] = "";
	ssize_t n = recv(c, b, sizeof b - 1, MSG_WAITALL);
	int st = -1;
	waitpid(pid, &st, 0);
	SAY("connect=%d echo=%zd:%s child=%d", r, n, b, st);
	close(c);
	close(l);
}

/* A forked child that exits without closing its copy of a listener: once the
 * parent closes its own, the listener is gone at once. */
static void t_fork_exit(void)
{
	struct sockaddr_in a;
	int l = listener(&a);
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	close(l);
	usleep(20000);
	int c = socket(AF_INET, SOCK_STREAM, 0);
	int r = connect(c, (struct sockaddr *)&a, sizeof a);
	SAY("%d/%s", r, err_name(errno));
	close(c);
}

/* A socket without FD_CLOEXEC across execve: the new image lists its fds. */
static void t_exec(void)
{
	int c = socket(AF_INET, SOCK_STREAM, 0);
	char fd[16];
	snprintf(fd, sizeof fd, "%d", c);
	fflush(stdout);
	execl("/bin/sh", "sh", "-c", "ls -l /proc/self/fd/ | grep -c usnet-socket", (char *)NULL);
	die("execl");
}

/* ---- address arguments: where Linux ignores them, and where it checks ---- */

static void t_tcp_addr_args(void)
{
	int c, s;
	pair(&c, &s);
	/* An address on a connected stream socket is ignored, whatever it is. */
	struct sockaddr_in6 bogus;
	memset(&bogus, 0x5a, sizeof bogus);
	ssize_t w1 = sendto(c, "a", 1, 0, (struct sockaddr *)&bogus, sizeof bogus);
	ssize_t w2 = sendto(c, "b", 1, 0, NULL, 16);
	errno = 0;
	ssize_t w3 = sendto(c, "c", 1, 0, (struct sockaddr *)&bogus, 200);
	int e3 = errno;
	char big[300];
	memset(big, 0x33, sizeof big);
	struct iovec iov = { "d", 1 };
	struct msghdr m = { .msg_name = big, .msg_namelen = sizeof big, .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t w4 = sendmsg(c, &m, 0);
	SAY("sendto=%zd null=%zd long=%zd/%s sendmsg_long=%zd", w1, w2, w3, err_name(e3), w4);
	settle();
	/* recvfrom/recvmsg on TCP: address length 0, the buffer untouched. */
	struct sockaddr_in from;
	memset(&from, 0xa5, sizeof from);
	socklen_t fl = sizeof from;
	char b[8] = "";
	ssize_t r1 = recvfrom(s, b, 1, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
	SAY(" recvfrom=%zd:%c len=%u untouched=%d", r1, b[0], (unsigned)fl, from.sin_family == 0xa5a5);
	memset(&from, 0xa5, sizeof from);
	struct iovec riov = { b, 1 };
	struct msghdr rm = { .msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &riov, .msg_iovlen = 1 };
	ssize_t r2 = recvmsg(s, &rm, MSG_DONTWAIT);
	SAY(" recvmsg=%zd:%c namelen=%u untouched=%d", r2, b[0], (unsigned)rm.msg_namelen, from.sin_family == 0xa5a5);
	fl = 5;
	ssize_t r3 = recvfrom(s, b, 1, MSG_DONTWAIT, NULL, &fl);
	SAY(" nullname=%zd len=%u", r3, (unsigned)fl);
	close(c);
	close(s);
	/* Unconnected and listening stream sockets. */
	int u = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9) };
	inet_pton(AF_INET, loop_addr(), &to.sin_addr);
	errno = 0;
	ssize_t u1 = sendto(u, "x", 1, MSG_NOSIGNAL, (struct sockaddr *)&to, sizeof to);
	int eu1 = errno;
	errno = 0;
	ssize_t u2 = send(u, "x", 1, MSG_NOSIGNAL);
	int eu2 = errno;
	errno = 0;
	fl = sizeof from;
	ssize_t u3 = recvfrom(u, b, 1, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
	int eu3 = errno;
	SAY(" unconnected=%zd/%s send=%zd/%s recv=%zd/%s", u1, err_name(eu1), u2, err_name(eu2), u3, err_name(eu3));
	close(u);
	struct sockaddr_in la;
	int l = listener(&la);
	errno = 0;
	ssize_t l1 = sendto(l, "x", 1, MSG_NOSIGNAL, (struct sockaddr *)&la, sizeof la);
	int el1 = errno;
	errno = 0;
	ssize_t l2 = recv(l, b, 1, MSG_DONTWAIT);
	int el2 = errno;
	SAY(" listener=%zd/%s recv=%zd/%s", l1, err_name(el1), l2, err_name(el2));
	close(l);
}

/* Address lengths: short buffers are truncated and the full length
 * returned; short or foreign addresses are refused. */
static void t_addr_lengths(void)
{
	struct sockaddr_in la;
	int l = listener(&la);
	int c = socket(AF_INET, SOCK_STREAM, 0);
	errno = 0;
	int r1 = connect(c, (struct sockaddr *)&la, 8);
	int e1 = errno;
	struct sockaddr_in un = la;
	un.sin_family = AF_INET6;
	errno = 0;
	int r2 = connect(c, (struct sockaddr *)&un, sizeof un);
	int e2 = errno;
	int r3 = connect(c, (struct sockaddr *)&la, sizeof la);
	unsigned char a[16];
	memset(a, 0xa5, sizeof a);
	socklen_t al = 4;
	int s = accept(l, (struct sockaddr *)a, &al);
	SAY("short=%d/%s family=%d/%s connect=%d accept_len=%u family=%d rest=%d", r1, err_name(e1), r2, err_name(e2), r3,
	    (unsigned)al, a[0] | a[1] << 8, a[4] == 0xa5);
	memset(a, 0xa5, sizeof a);
	al = 2;
	int g = getsockname(c, (struct sockaddr *)a, &al);
	SAY(" name=%d len=%u rest=%d", g, (unsigned)al, a[2] == 0xa5);
	al = 0;
	g = getpeername(s, (struct sockaddr *)a, &al);
	SAY(" peer0=%d len=%u", g, (unsigned)al);
	int u = socket(AF_INET, SOCK_STREAM, 0);
	al = sizeof a;
	errno = 0;
	g = getpeername(u, (struct sockaddr *)a, &al);
	SAY(" unconnected_peer=%d/%s", g, err_name(errno));
	errno = 0;
	int b1 = bind(u, (struct sockaddr *)&la, 8);
	int eb1 = errno;
	struct sockaddr_in any = { .sin_family = AF_UNSPEC };
	errno = 0;
	int b2 = bind(u, (struct sockaddr *)&any, sizeof any);
	SAY(" bind_short=%d/%s bind_unspec_any=%d/%s", b1, err_name(eb1), b2, err_name(b2 ? errno : 0));
	close(u);
	close(c);
	close(s);
	close(l);
}

static void t_udp_addr_args(void)
{
	int a = socket(AF_INET, SOCK_DGRAM, 0), b = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	inet_pton(AF_INET, loop_addr(), &sa.sin_addr);
	bind(a, (struct sockaddr *)&sa, sizeof sa);
	bind(b, (struct sockaddr *)&sa, sizeof sa);
	socklen_t l = sizeof sa;
	getsockname(a, (struct sockaddr *)&sa, &l);
	errno = 0;
	ssize_t w0 = send(b, "n", 1, 0);
	int e0 = errno;
	errno = 0;
	ssize_t w1 = sendto(b, "s", 1, 0, (struct sockaddr *)&sa, 200);
	int e1 = errno;
	errno = 0;
	ssize_t w2 = sendto(b, "t", 1, 0, (struct sockaddr *)&sa, 4);
	int e2 = errno;
	ssize_t w3 = sendto(b, "dgram", 5, 0, (struct sockaddr *)&sa, sizeof sa);
	SAY("unconnected_send=%zd/%s long=%zd/%s short=%zd/%s sendto=%zd", w0, err_name(e0), w1, err_name(e1), w2,
	    err_name(e2), w3);
	struct pollfd pf = { .fd = a, .events = POLLIN };
	poll(&pf, 1, 1000);
	/* A short address buffer: truncated, the full length returned. */
	unsigned char from[16];
	memset(from, 0xa5, sizeof from);
	socklen_t fl = 4;
	char buf[16] = "";
	ssize_t r = recvfrom(a, buf, sizeof buf, 0, (struct sockaddr *)from, &fl);
	SAY(" recvfrom=%zd:%s len=%u family=%d rest_untouched=%d", r, buf, (unsigned)fl, from[0] | from[1] << 8,
	    from[4] == 0xa5);
	/* Connected: sendto another address of the same family is allowed. */
	connect(b, (struct sockaddr *)&sa, sizeof sa);
	ssize_t w4 = sendto(b, "c", 1, 0, (struct sockaddr *)&sa, sizeof sa);
	ssize_t w5 = send(b, "d", 1, 0);
	SAY(" connected_sendto=%zd send=%zd", w4, w5);
	close(a);
	close(b);
}

/* ---- interface queries on a socket -------------------------------------- */

static void t_ifioctl(void)
{
	int c, s;
	pair(&c, &s);
	struct ifreq rq[64];
	struct ifconf ifc = { .ifc_len = sizeof rq, .ifc_req = rq };
	int r = ioctl(c, SIOCGIFCONF, &ifc);
	int lo = 0;
	for (int i = 0; r == 0 && i < ifc.ifc_len / (int)sizeof rq[0]; i++) {
		struct sockaddr_in *a = (struct sockaddr_in *)&rq[i].ifr_addr;
		lo |= !strcmp(rq[i].ifr_name, "lo") && a->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
	}
	struct ifconf len = { .ifc_len = 0, .ifc_req = NULL };
	int rl = ioctl(c, SIOCGIFCONF, &len);
	SAY("conf=%d lo=%d sizing=%d/%d", r, lo, rl, len.ifc_len == ifc.ifc_len);
	struct ifreq q;
	memset(&q, 0, sizeof q);
	strcpy(q.ifr_name, "lo");
	int ri = ioctl(s, SIOCGIFINDEX, &q);
	SAY(" index=%d/%d", ri, q.ifr_ifindex);
	int rf = ioctl(s, SIOCGIFFLAGS, &q);
	SAY(" flags=%d/%x", rf, q.ifr_flags & (IFF_UP | IFF_LOOPBACK));
	int rm = ioctl(s, SIOCGIFMTU, &q);
	SAY(" mtu=%d/%d", rm, q.ifr_mtu);
	int ra = ioctl(s, SIOCGIFADDR, &q);
	SAY(" addr=%d/%s", ra, inet_ntoa(((struct sockaddr_in *)&q.ifr_addr)->sin_addr));
	int rh = ioctl(s, SIOCGIFHWADDR, &q);
	SAY(" hw=%d/%d", rh, q.ifr_hwaddr.sa_family);
	strcpy(q.ifr_name, "nosuch0");
	errno = 0;
	int rn = ioctl(s, SIOCGIFADDR, &q);
	SAY(" none=%d/%s", rn, errno == ENODEV ? "ENODEV" : err_name(errno));
	close(c);
	close(s);
}

/* `readiness ifinfo IFACE`: what a socket tells of IFACE (the stack's, in
 * tests/vsock/run.sh). */
static void if_info(const char *name)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct ifreq q;
	memset(&q, 0, sizeof q);
	snprintf(q.ifr_name, sizeof q.ifr_name, "%s", name);
	int ra = ioctl(fd, SIOCGIFADDR, &q);
	char addr[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &((struct sockaddr_in *)&q.ifr_addr)->sin_addr, addr, sizeof addr);
	int rk = ioctl(fd, SIOCGIFNETMASK, &q);
	char mask[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &((struct sockaddr_in *)&q.ifr_addr)->sin_addr, mask, sizeof mask);
	int rh = ioctl(fd, SIOCGIFHWADDR, &q);
	unsigned char *m = (unsigned char *)q.ifr_hwaddr.sa_data;
	char mac[18];
	snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
	int rm = ioctl(fd, SIOCGIFMTU, &q);
	struct ifreq rq[64];
	struct ifconf ifc = { .ifc_len = sizeof rq, .ifc_req = rq };
	int listed = 0;
	if (ioctl(fd, SIOCGIFCONF, &ifc) == 0)
		for (int i = 0; i < ifc.ifc_len / (int)sizeof rq[0]; i++)
			if (!strcmp(rq[i].ifr_name, name))
				listed = !strcmp(inet_ntoa(((struct sockaddr_in *)&rq[i].ifr_addr)->sin_addr), addr);
	printf("addr=%d/%s mask=%d/%s hw=%d/%s mtu=%d/%d listed=%d\n", ra, addr, rk, mask, rh, mac, rm, q.ifr_mtu,
	       listed);
	close(fd);
}

/* ---- loopback: 127.0.0.0/8 and the own address reach a wildcard listener -- */

/* Connect to dst:port, accept on l, echo; "ok" and whether the accepted
 * side's local address is dst and its peer want_peer. */
static void loop_echo(int l, const char *dst, uint16_t port, const char *want_peer)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	inet_pton(AF_INET, dst, &a.sin_addr);
	int c = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(c, (struct sockaddr *)&a, sizeof a) < 0) {
		SAY(" connect=%s", err_name(errno));
		close(c);
		return;
	}
	struct sockaddr_in la, pa;
	socklen_t ll = sizeof la, pl = sizeof pa;
	int s = accept(l, (struct sockaddr *)&pa, &pl);
	getsockname(s, (struct sockaddr *)&la, &ll);
	char b[8] = "";
	ssize_t w = send(c, "lo", 2, 0);
	ssize_t r = recv(s, b, 2, MSG_WAITALL);
	char pb[INET_ADDRSTRLEN], lb[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &pa.sin_addr, pb, sizeof pb);
	inet_ntop(AF_INET, &la.sin_addr, lb, sizeof lb);
	SAY(" %s local=%d peer=%d", w == 2 && r == 2 && !strcmp(b, "lo") ? "ok" : "bad", !strcmp(lb, dst),
	    !strcmp(pb, want_peer));
	close(c);
	close(s);
}

static void t_loopback(void)
{
	int l = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = { .sin_family = AF_INET };
	bind(l, (struct sockaddr *)&a, sizeof a);
	listen(l, 8);
	socklen_t len = sizeof a;
	getsockname(l, (struct sockaddr *)&a, &len);
	uint16_t port = ntohs(a.sin_port);
	SAY("lo:");
	loop_echo(l, "127.0.0.1", port, "127.0.0.1");
	SAY(" lo2:");
	loop_echo(l, "127.0.0.2", port, "127.0.0.1");
	SAY(" self:");
	loop_echo(l, loop_addr(), port, loop_addr());
	close(l);
	/* Nothing listens: refused. */
	int c = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int r = connect(c, (struct sockaddr *)&a, sizeof a);
	SAY(" closed=%d/%s", r, err_name(errno));
	close(c);
	/* A listener bound to 127.0.0.1 (the kernel's, under usnet). */
	l = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_port = 0;
	bind(l, (struct sockaddr *)&a, sizeof a);
	listen(l, 8);
	len = sizeof a;
	getsockname(l, (struct sockaddr *)&a, &len);
	SAY(" bound_lo:");
	loop_echo(l, "127.0.0.1", ntohs(a.sin_port), "127.0.0.1");
	close(l);
}

/* ---- descriptors: usnet's own fds are out of the program's sight -------- */

/* The lowest fd free now (where the next one goes). */
static int lowest_free(void)
{
	int fd = dup(0);
	close(fd);
	return fd;
}

/* A socket pair that echoes one message: "ok" or what went wrong. */
static const char *echo_once(void)
{
	int c, s;
	pair(&c, &s);
	char b[8] = "";
	ssize_t w = send(c, "echo", 4, 0);
	ssize_t r = recv(s, b, 4, MSG_WAITALL);
	close(c);
	close(s);
	return w == 4 && r == 4 && !strcmp(b, "echo") ? "ok" : "bad";
}

/* Every fd from `from` up that /proc/self/fd lists, in fds (at most max). */
static int list_fds(int from, int *fds, int max)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		die("opendir");
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < max) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		int fd = atoi(e->d_name);
		if (fd >= from && fd != dirfd(d))
			fds[n++] = fd;
	}
	closedir(d);
	return n;
}

/* The fds listed now that were not in before[0..nb-1], from base up. */
static int new_fds(int base, const int *before, int nb, int *fds, int max)
{
	int all[4096], n = list_fds(base, all, 4096), k = 0;
	for (int i = 0; i < n && k < max; i++) {
		bool old = false;
		for (int j = 0; j < nb; j++)
			old |= before[j] == all[i];
		if (!old)
			fds[k++] = all[i];
	}
	return k;
}

/* close_range(BASE, ~0U, 0), as varnishd does at start-up, before and while
 * sockets are open: the program's sockets close, the next ones work. */
static void t_fd_close_range(void)
{
	SAY("%s", echo_once());   /* usnet has started */
	int base = lowest_free();
	int r1 = (int)syscall(SYS_close_range, base, ~0U, 0);
	SAY(" range=%d/%s %s", r1, err_name(r1 ? errno : 0), echo_once());
	int c, s;
	pair(&c, &s);
	int r2 = (int)syscall(SYS_close_range, base, ~0U, 0);
	ssize_t w = send(c, "x", 1, MSG_NOSIGNAL);
	int e = errno;
	SAY(" open=%d/%s send=%zd/%s %s", r2, err_name(r2 ? errno : 0), w, err_name(e), echo_once());
	int r3 = (int)syscall(SYS_close_range, base, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */);
	SAY(" cloexec=%d %s", r3, echo_once());
}

/* closefrom() the old way: every fd /proc/self/fd lists, then every number
 * up to the limit. */
static void t_fd_closefrom(void)
{
	SAY("%s", echo_once());
	int base = lowest_free();
	int before[4096], nb = list_fds(base, before, 4096);
	int c, s;
	pair(&c, &s);
	int fds[4096];
	int n = new_fds(base, before, nb, fds, 4096), bad = 0;
	for (int i = 0; i < nb; i++)
		close(before[i]);   /* what the program had before goes too */
	for (int i = 0; i < n; i++)
		bad += close(fds[i]) != 0;
	SAY(" listed=%d failed=%d", n, bad);
	int closed = 0;
	for (int fd = base; fd < 70000; fd++)
		closed += close(fd) == 0;
	SAY(" closed_after=%d %s %s", closed, echo_once(), echo_once());
}

/* dup2 onto every low number, and a dup2 target used again after both
 * copies were closed. */
static void t_fd_dup2_low(void)
{
	int c, s;
	pair(&c, &s);
	int base = lowest_free(), good = 0;
	for (int fd = 3; fd < 64; fd++) {
		char b[4] = "";
		if (fd == c || fd == s)
			continue;
		if (dup2(c, fd) == fd && send(fd, "d", 1, 0) == 1 && recv(s, b, 1, 0) == 1 && b[0] == 'd')
			good++;
		close(fd);
	}
	close(c);
	close(s);
	SAY("good=%d", good);
	/* dup2(sock, T); close(sock); close(T); then dup2(other, T) */
	int target = base + 10;
	int x = socket(AF_INET, SOCK_STREAM, 0);
	dup2(x, target);
	close(x);
	close(target);
	pair(&c, &s);
	int r = dup2(c, target);
	char b[4] = "";
	ssize_t w = send(target, "r", 1, 0);
	ssize_t g = recv(s, b, 1, 0);
	SAY(" reuse=%s send=%zd/%s recv=%zd", r == target ? "ok" : "bad", w, err_name(w < 0 ? errno : 0), g);
	close(target);
	close(c);
	close(s);
}

/* F_DUPFD numbering and the limit's edge. */
static void t_fd_dupfd(void)
{
	int c, s;
	pair(&c, &s);
	int base = lowest_free();
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	int lim = (int)rl.rlim_cur;
	int open_now[4096], n = list_fds(0, open_now, 4096), above = 0;
	for (int i = 0; i < n; i++)
		above = open_now[i] > above ? open_now[i] : above;
	above += 5;   /* past every fd the program has open */
	int d1 = fcntl(c, F_DUPFD, 0), d2 = fcntl(c, F_DUPFD, above), d3 = fcntl(c, F_DUPFD_CLOEXEC, base);
	errno = 0;
	int top = fcntl(c, F_DUPFD, lim - 1);
	int etop = errno;
	errno = 0;
	int past = fcntl(c, F_DUPFD, lim);
	int epast = errno;
	errno = 0;
	int over = dup2(c, lim);
	int eover = errno;
	SAY("%d %d %d top=%s/%s past=%d/%s dup2_past=%d/%s", d1 - base, d2 - above, d3 - base,
	    top == lim - 1 ? "ok" : "bad", err_name(etop), past, err_name(epast), over, err_name(eover));
	close(d1); close(d2); close(d3); close(top);
	close(c); close(s);
}

/* The soft fd limit raised to the hard one (servers do it at start-up):
 * nothing new is listed, close_range still spares usnet, a closed
 * listener's port is free again at once. */
static void t_fd_raise_limit(void)
{
	SAY("%s", echo_once());
	int base = lowest_free();
	int before[4096], nb = list_fds(base, before, 4096);
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	int r = setrlimit(RLIMIT_NOFILE, &rl);
	int fds[4096];
	int n = new_fds(base, before, nb, fds, 4096);
	int cr = (int)syscall(SYS_close_range, base, ~0U, 0);
	SAY(" raise=%d new=%d range=%d %s", r, n, cr, echo_once());
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	inet_pton(AF_INET, loop_addr(), &a.sin_addr);
	bind(l, (struct sockaddr *)&a, sizeof a);
	listen(l, 4);
	socklen_t len = sizeof a;
	getsockname(l, (struct sockaddr *)&a, &len);
	close(l);
	settle();
	l = socket(AF_INET, SOCK_STREAM, 0);
	int b = bind(l, (struct sockaddr *)&a, sizeof a);
	SAY(" rebind=%d/%s", b, err_name(b ? errno : 0));
	close(l);
}

/* What /proc/self/fd lists while sockets, an epoll set and a pipe are open,
 * as numbers from the lowest free fd at the start. */
static void t_fd_listing(void)
{
	SAY("%s", echo_once());
	int base = lowest_free();
	int before[4096], nb = list_fds(base, before, 4096);
	int c, s, p[2];
	pair(&c, &s);
	if (pipe(p) < 0)
		die("pipe");
	int ep = epoll_create1(0);
	struct epoll_event e = { .events = EPOLLIN };
	epoll_ctl(ep, EPOLL_CTL_ADD, s, &e);
	epoll_wait(ep, &e, 1, 0);
	int fds[4096];
	int n = new_fds(base, before, nb, fds, 4096);
	SAY(" n=%d:", n);
	for (int i = 0; i < n; i++)
		SAY(" %d", fds[i] - base);
	close(c); close(s); close(p[0]); close(p[1]); close(ep);
}

struct test { const char *name; void (*fn)(void); };
static const struct test tests[] = {
	{ "basic", t_basic }, { "poll_mixed", t_poll_mixed }, { "select_mixed", t_select_mixed },
	{ "ppoll_timeout", t_ppoll_timeout }, { "epoll_lt", t_epoll_lt }, { "epoll_et", t_epoll_et },
	{ "epoll_oneshot", t_epoll_oneshot }, { "epoll_rdhup", t_epoll_rdhup },
	{ "epoll_exclusive", t_epoll_exclusive }, { "epoll_nested", t_epoll_nested },
	{ "epoll_nested_late", t_epoll_nested_late }, { "epoll_et_kernel_fd", t_epoll_et_kernel_fd },
	{ "epoll_random", t_epoll_random },
	{ "epoll_mixed", t_epoll_mixed }, { "epoll_timeout", t_epoll_timeout }, { "eintr", t_eintr }, { "restart", t_restart },
	{ "nonblock", t_nonblock }, { "peek_fionread", t_peek_fionread }, { "tcp_inq", t_tcp_inq },
	{ "tcp_cc_info", t_tcp_cc_info }, { "defer_accept", t_defer_accept },
	{ "udp_cmsgs", t_udp_cmsgs }, { "mcast_opts", t_mcast_opts }, { "splice", t_splice },
	{ "waitall", t_waitall },
	{ "halfclose", t_halfclose }, { "epipe", t_epipe }, { "dup", t_dup }, { "sendfile", t_sendfile },
	{ "sockopts", t_sockopts }, { "close_in_epoll", t_close_in_epoll }, { "udp", t_udp },
	{ "refused", t_refused }, { "fork", t_fork }, { "fork_exit", t_fork_exit },
	{ "efault", t_efault }, { "fd_close_range", t_fd_close_range }, { "fd_closefrom", t_fd_closefrom },
	{ "fd_dup2_low", t_fd_dup2_low }, { "fd_dupfd", t_fd_dupfd }, { "fd_listing", t_fd_listing },
	{ "fd_raise_limit", t_fd_raise_limit },
	{ "tcp_addr_args", t_tcp_addr_args }, { "udp_addr_args", t_udp_addr_args },
	{ "addr_lengths", t_addr_lengths }, { "ifioctl", t_ifioctl },
	{ "loopback", t_loopback }, { "udp_self", t_udp_self }, { "mmsg", t_mmsg },
	{ "udp_loopback", t_udp_loopback }, { "vector_regs", t_vector_regs },
};

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 2 && !strcmp(argv[1], "exec"))
		t_exec();
	if (argc == 3 && !strcmp(argv[1], "ifinfo")) {
		if_info(argv[2]);
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "hold")) {   /* a socket for `usnet stat` to see */
		struct sockaddr_in a;
		int l = listener(&a);
		sleep(3);
		close(l);
		return 0;
	}
	for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
		bool want = argc < 2;
		for (int k = 1; k < argc; k++)
			if (!strcmp(argv[k], tests[i].name))
				want = true;
		if (!want)
			continue;
		result[0] = 0;
		tests[i].fn();
		printf("%s: %s\n", tests[i].name, result);
	}
	return 0;
}
