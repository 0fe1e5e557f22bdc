/*
 * usnet switch — poll, ppoll, select and pselect6 over any mix of user
 * sockets and kernel fds.
 *
 * User sockets get their readiness from the provider; kernel fds (and user
 * sockets backed by a kernel fd) from a real ppoll().  Nothing ready: sleep
 * on the kernel fds and the bell together (wait.c).
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <time.h>

#include "vsock.h"

enum { FD_KERNEL = 0, FD_USER = 1 };

struct poll_job {
	struct pollfd *fds;     /* the program's array */
	struct pollfd *kfds;    /* what the kernel polls (user-only entries fd -1) */
	unsigned char *kind;
	nfds_t n;
};

static int user_revents(struct poll_job *j, bool store)
{
	int ready = 0;
	for (nfds_t i = 0; i < j->n; i++) {
		if (j->kind[i] != FD_USER)
			continue;
		int fd = j->fds[i].fd;
		int32_t e = vsock_fd_entry(fd);
		short rev = 0;
		if (e > 0)
			rev = vsock_poll_revents(vsock_slot_events(&vsock_shm->slots[e - 1]), j->fds[i].events);
		else if (e < 0 && vsock_epoll_has_user_ready(fd))
			rev = j->fds[i].events & (POLLIN | POLLRDNORM);
		if (store)
			j->fds[i].revents = rev;
		if (rev)
			ready++;
	}
	return ready;
}

static bool user_any(void *arg)
{
	return user_revents(arg, false) > 0;
}

/* Merge kernel results and user readiness into the program's array. */
static int finish(struct poll_job *j)
{
	int total = 0;
	for (nfds_t i = 0; i < j->n; i++) {
		if (j->kind[i] == FD_USER) {
			short k = j->kfds[i].fd >= 0 ? j->kfds[i].revents : 0;
			j->fds[i].revents |= k;
		} else {
			j->fds[i].revents = j->kfds[i].revents;
		}
		if (j->fds[i].revents)
			total++;
	}
	return total;
}

/* Returns the poll() result, or USNET_HOOK_PASS when no user fd is involved. */
static long poll_core(struct pollfd *fds, nfds_t n, int64_t deadline, const sigset_t *mask)
{
	if (n > (nfds_t)vsock_fdmap_size)
		return -EINVAL;
	bool any = false;
	for (nfds_t i = 0; i < n && !any; i++)
		any = vsock_fd_entry(fds[i].fd) != 0;
	if (!any)
		return USNET_HOOK_PASS;
	size_t need = n * (sizeof(struct pollfd) + 1);
	char *mem = vsock_scratch(VSOCK_SCRATCH_POLL, need);
	if (!mem)
		return -ENOMEM;
	struct poll_job j = { fds, (struct pollfd *)mem, (unsigned char *)mem + n * sizeof(struct pollfd), n };
	for (nfds_t i = 0; i < n; i++) {
		int32_t e = vsock_fd_entry(fds[i].fd);
		j.kfds[i] = fds[i];
		j.kfds[i].revents = 0;
		j.kind[i] = FD_KERNEL;
		if (e > 0) {
			int kfd = vsock_slot_kernel_fd(&vsock_shm->slots[e - 1]);
			if (kfd >= 0) {
				j.kfds[i].fd = kfd;
			} else {
				j.kind[i] = FD_USER;
				j.kfds[i].fd = -1;
			}
		} else if (e < 0) {
			j.kind[i] = FD_USER;   /* the real epoll fd plus its user part */
		}
	}
	bool progressed = false;
	for (;;) {
		int nu = user_revents(&j, true);
		int64_t now = (int64_t)vsock_now_ns();
		if (nu > 0)
			vsock_note_active();
		if (nu > 0 || now >= deadline) {
			struct timespec zero = { 0, 0 };
			long r = vsock_sys(SYS_ppoll, j.kfds, n, &zero, NULL, 0, 0);
			if (r < 0)
				return r;
			return finish(&j);
		}
		if (!progressed) {
			vsock_provider_progress();
			progressed = true;
			continue;
		}
		int r = vsock_sleep(j.kfds, (int)n, deadline, mask, -1, user_any, &j);
		if (r < 0)
			return r;
		if (r > 0) {
			user_revents(&j, true);
			return finish(&j);
		}
	}
}

static int64_t deadline_ts(const struct timespec *ts)
{
	if (!ts)
		return INT64_MAX;
	return (int64_t)vsock_now_ns() + (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

static void remaining_ts(int64_t deadline, struct timespec *ts)
{
	int64_t left = deadline - (int64_t)vsock_now_ns();
	if (left < 0)
		left = 0;
	ts->tv_sec = left / 1000000000LL;
	ts->tv_nsec = left % 1000000000LL;
}

#define POLLIN_SET  (POLLRDNORM | POLLRDBAND | POLLIN | POLLHUP | POLLERR)
#define POLLOUT_SET (POLLWRBAND | POLLWRNORM | POLLOUT | POLLERR)
#define POLLEX_SET  (POLLPRI)

static bool bit(const unsigned long *set, int fd)
{
	return set && (set[fd / (8 * sizeof(long))] >> (fd % (8 * sizeof(long)))) & 1;
}

static long select_core(int nfds, unsigned long *rd, unsigned long *wr, unsigned long *ex,
			int64_t deadline, const sigset_t *mask)
{
	if (nfds < 0)
		return -EINVAL;
	if (nfds > vsock_fdmap_size)
		nfds = vsock_fdmap_size;
	int count = 0;
	for (int fd = 0; fd < nfds; fd++)
		if (bit(rd, fd) || bit(wr, fd) || bit(ex, fd))
			count++;
	struct pollfd *pf = vsock_scratch(VSOCK_SCRATCH_IO, (size_t)count * sizeof *pf + 1);
	if (!pf)
		return -ENOMEM;
	int k = 0;
	for (int fd = 0; fd < nfds; fd++) {
		short ev = 0;
		if (bit(rd, fd)) ev |= POLLIN | POLLRDNORM | POLLRDBAND;
		if (bit(wr, fd)) ev |= POLLOUT | POLLWRNORM | POLLWRBAND;
		if (bit(ex, fd)) ev |= POLLPRI;
		if (ev)
			pf[k++] = (struct pollfd){ .fd = fd, .events = ev };
	}
	long r = poll_core(pf, (nfds_t)k, deadline, mask);
	if (r == USNET_HOOK_PASS || r < 0)
		return r;
	size_t words = ((size_t)nfds + 8 * sizeof(long) - 1) / (8 * sizeof(long));
	if (rd) memset(rd, 0, words * sizeof(long));
	if (wr) memset(wr, 0, words * sizeof(long));
	if (ex) memset(ex, 0, words * sizeof(long));
	long total = 0;
	for (int i = 0; i < k; i++) {
		short rev = pf[i].revents;
		int fd = pf[i].fd;
		unsigned long b = 1UL << (fd % (8 * sizeof(long)));
		size_t w = (size_t)fd / (8 * sizeof(long));
		if (rev & POLLNVAL)
			return -EBADF;
		if ((pf[i].events & POLLIN) && (rev & POLLIN_SET)) { rd[w] |= b; total++; }
		if ((pf[i].events & POLLOUT) && (rev & POLLOUT_SET)) { wr[w] |= b; total++; }
		if ((pf[i].events & POLLPRI) && (rev & POLLEX_SET)) { ex[w] |= b; total++; }
	}
	return total;
}

long vsock_poll_call(struct usnet_syscall *sc)
{
	long *a = sc->args;
	switch (sc->nr) {
	case SYS_poll: {
		int ms = (int)a[2];
		int64_t dl = ms < 0 ? INT64_MAX : (int64_t)vsock_now_ns() + (int64_t)ms * 1000000LL;
		return poll_core((struct pollfd *)a[0], (nfds_t)a[1], dl, NULL);
	}
	case SYS_ppoll: {
		struct timespec *ts = (struct timespec *)a[2];
		if (ts && (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L))
			return -EINVAL;
		int64_t dl = deadline_ts(ts);
		long r = poll_core((struct pollfd *)a[0], (nfds_t)a[1], dl, (const sigset_t *)a[3]);
		if (r != USNET_HOOK_PASS && ts)
			remaining_ts(dl, ts);
		return r;
	}
	case SYS_select: {
		struct timeval *tv = (struct timeval *)a[4];
		if (tv && (tv->tv_sec < 0 || tv->tv_usec < 0 || tv->tv_usec >= 1000000))
			return -EINVAL;
		int64_t dl = tv ? (int64_t)vsock_now_ns() + (int64_t)tv->tv_sec * 1000000000LL + tv->tv_usec * 1000LL
				: INT64_MAX;
		long r = select_core((int)a[0], (unsigned long *)a[1], (unsigned long *)a[2],
				     (unsigned long *)a[3], dl, NULL);
		if (r != USNET_HOOK_PASS && tv) {
			struct timespec left;
			remaining_ts(dl, &left);
			tv->tv_sec = left.tv_sec;
			tv->tv_usec = left.tv_nsec / 1000;
		}
		return r;
	}
	case SYS_pselect6: {
		struct timespec *ts = (struct timespec *)a[4];
		if (ts && (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L))
			return -EINVAL;
		const sigset_t *mask = NULL;
		if (a[5]) {
			const unsigned long *sd = (const unsigned long *)a[5];  /* { mask ptr, size } */
			mask = (const sigset_t *)sd[0];
		}
		int64_t dl = deadline_ts(ts);
		long r = select_core((int)a[0], (unsigned long *)a[1], (unsigned long *)a[2],
				     (unsigned long *)a[3], dl, mask);
		if (r != USNET_HOOK_PASS && ts)
			remaining_ts(dl, ts);
		return r;
	}
	default:
		return USNET_HOOK_PASS;
	}
}
