/*
 * bench-stack's kernel reference: the same two workloads on Linux TCP over
 * loopback (MTU 65536), driven the same way (one thread, non-blocking
 * sockets, never sleeping; ping-pong finds ready sockets with epoll), so the
 * table can show usnet next to the kernel of this machine.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kernel_ref.h"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* n connected pairs over 127.0.0.1, non-blocking; 0 or -1. */
static int kernel_pairs(int n, int *cli, int *srv, int bufsize)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof a;
	int one = 1;
	int ls = socket(AF_INET, SOCK_STREAM, 0);

	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, n) < 0 ||
	    getsockname(ls, (struct sockaddr *)&a, &alen) < 0)
		goto fail;
	for (int i = 0; i < n; i++) {
		cli[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (cli[i] < 0 || connect(cli[i], (struct sockaddr *)&a, sizeof a) < 0)
			goto fail;
		srv[i] = accept(ls, NULL, NULL);
		if (srv[i] < 0)
			goto fail;
		int fds[2] = { cli[i], srv[i] };
		for (int k = 0; k < 2; k++) {
			setsockopt(fds[k], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			if (bufsize) {
				setsockopt(fds[k], SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof bufsize);
				setsockopt(fds[k], SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof bufsize);
			}
			fcntl(fds[k], F_SETFL, fcntl(fds[k], F_GETFL) | O_NONBLOCK);
		}
	}
	close(ls);
	return 0;
fail:
	if (ls >= 0)
		close(ls);
	return -1;
}

double kernel_bulk_gbps(double seconds)
{
	int c, s;
	size_t chunk = 1u << 20;
	char *tx = malloc(chunk), *rx = malloc(chunk);
	uint64_t received = 0;

	if (!tx || !rx || kernel_pairs(1, &c, &s, 4 << 20) < 0) {
		free(tx);
		free(rx);
		return -1;
	}
	memset(tx, 0x5a, chunk);
	uint64_t start = now_ns(), t0 = 0;
	for (;;) {
		ssize_t r = send(c, tx, chunk, 0);
		(void)r;
		while ((r = recv(s, rx, chunk, 0)) > 0)
			if (t0)
				received += (uint64_t)r;
		uint64_t now = now_ns();
		if (!t0 && now - start >= (uint64_t)(seconds / 5 * 1e9))
			t0 = now;
		if (t0 && now - t0 >= (uint64_t)(seconds * 1e9))
			break;
	}
	double gbps = (double)received * 8 / ((double)(now_ns() - t0) / 1e9) / 1e9;
	close(c);
	close(s);
	free(tx);
	free(rx);
	return gbps;
}

double kernel_pingpong_rate(int conns, double seconds)
{
	int *c = calloc((size_t)conns, sizeof *c), *s = calloc((size_t)conns, sizeof *s);
	uint64_t trips = 0;
	char b = 1;

	if (!c || !s || kernel_pairs(conns, c, s, 0) < 0) {
		free(c);
		free(s);
		return -1;
	}
	for (int i = 0; i < conns; i++)
		if (send(c[i], &b, 1, 0) != 1)
			return -1;
	uint64_t start = now_ns(), t0 = 0;
	/* Readiness from epoll (as a kernel application would get it), so the
	 * loop makes no system call on sockets with nothing to read. */
	int ep = epoll_create1(0);
	if (ep < 0)
		return -1;
	for (int i = 0; i < conns; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
		epoll_ctl(ep, EPOLL_CTL_ADD, s[i], &ev);
		ev.data.u32 = (uint32_t)(i | 0x80000000u);
		epoll_ctl(ep, EPOLL_CTL_ADD, c[i], &ev);
	}
	struct epoll_event evs[64];
	for (unsigned iter = 1;; iter++) {
		int n = epoll_wait(ep, evs, 64, 0);
		for (int k = 0; k < n; k++) {
			int client = (evs[k].data.u32 & 0x80000000u) != 0;
			int fd = client ? c[evs[k].data.u32 & 0x7fffffffu] : s[evs[k].data.u32];
			if (recv(fd, &b, 1, 0) != 1)
				continue;
			if (client && t0)
				trips++;
			send(fd, &b, 1, 0);
		}
		if (iter % 64)
			continue;
		uint64_t now = now_ns();
		if (!t0 && now - start >= (uint64_t)(seconds / 5 * 1e9))
			t0 = now;
		if (t0 && now - t0 >= (uint64_t)(seconds * 1e9))
			break;
	}
	close(ep);
	double rate = (double)trips / ((double)(now_ns() - t0) / 1e9);
	for (int i = 0; i < conns; i++) {
		close(c[i]);
		close(s[i]);
	}
	free(c);
	free(s);
	return rate;
}
