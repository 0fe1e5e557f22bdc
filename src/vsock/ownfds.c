/*
 * usnet switch — the switch's own fds (the attach connection, the shared
 * memory, the bell, the close watch, the eventfds and epolls it sleeps on,
 * the netif's fds, the kernel provider's sockets), kept out of the
 * program's sight and reach.
 *
 * Where the fd limit leaves room (soft limit below the hard one) they live
 * just above the program's soft RLIMIT_NOFILE: the kernel then never gives
 * the program those numbers, dup2() onto them fails with EBADF as onto any
 * fd past the limit, and F_DUPFD numbering is the program's alone.  Without
 * room they live near the top of the program's range.  Wherever they are,
 * the calls a program makes on fds it does not own are answered as if they
 * were not open: close() gives EBADF, close_range() and closefrom() pass
 * them by, a listing of /proc/self/fd leaves them out, and dup2()/dup3()
 * onto one moves it away first.  When the program raises its soft limit
 * over them, they move above the new one.
 *
 * An fd is moved by dup, swap in its holder (the variable the switch reads
 * it from), close: an fd whose number was copied elsewhere (into a netif's
 * queues, a thread's own variable) has no holder and stays where it is,
 * still hidden.  The table is per process (a forked child inherits it with
 * the fds); an execve'd image starts afresh and takes its fds again as it
 * attaches.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/close_range.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "vsock.h"

/* Room kept above the soft limit: every own fd of a process fits (a few
 * per process, one epoll per thread that sleeps). */
#define OWN_ROOM 1024
/* Without room, the highest number used, so that a program with a huge
 * limit does not pay for a huge fd table. */
#define OWN_TOP_CAP 65536
#define OWN_MAX 4096   /* the kernel provider adds one per socket */

struct own_fd {
	int fd;
	int *holder;        /* where the switch reads it from; NULL: it cannot move */
	uint64_t dev, ino;  /* what it is (an fd number reused by the program is not ours) */
};

static struct own_fd own[OWN_MAX];
static int own_n;
static atomic_flag own_lock = ATOMIC_FLAG_INIT;
_Atomic int vsock_own_lo = INT_MAX, vsock_own_hi = -1;
_Atomic int vsock_own_count;

static void lock(void)
{
	while (atomic_flag_test_and_set_explicit(&own_lock, memory_order_acquire))
		vsock_sys(SYS_sched_yield, 0, 0, 0, 0, 0, 0);
}

static void unlock(void)
{
	atomic_flag_clear_explicit(&own_lock, memory_order_release);
}

void vsock_own_fds_after_fork(void)
{
	/* The only thread of the child: a lock held by another thread of the
	 * parent at the fork would never be released. */
	unlock();
}

/* Recompute the bounds the hook handler checks first (under the lock). */
static void bounds(void)
{
	int lo = INT_MAX, hi = -1;
	for (int i = 0; i < own_n; i++) {
		if (own[i].fd < lo) lo = own[i].fd;
		if (own[i].fd > hi) hi = own[i].fd;
	}
	atomic_store(&vsock_own_lo, lo);
	atomic_store(&vsock_own_hi, hi);
	atomic_store(&vsock_own_count, own_n);
}

static struct rlimit nofile(void)
{
	struct rlimit rl = { 1024, 1024 };
	vsock_sys(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &rl, 0, 0);
	return rl;
}

/* A copy of fd in the hidden range, or -errno. */
static long hidden_dup(int fd, bool cloexec)
{
	int cmd = cloexec ? F_DUPFD_CLOEXEC : F_DUPFD;
	struct rlimit rl = nofile();
	if (rl.rlim_max == RLIM_INFINITY || rl.rlim_cur + OWN_ROOM <= rl.rlim_max) {
		/* Above the program's limit: F_DUPFD cannot go there without
		 * the limit raised for a moment. */
		struct rlimit up = { rl.rlim_cur + OWN_ROOM, rl.rlim_max };
		if (vsock_sys(SYS_prlimit64, 0, RLIMIT_NOFILE, &up, NULL, 0, 0) == 0) {
			long r = vsock_sys(SYS_fcntl, fd, cmd, rl.rlim_cur, 0, 0, 0);
			vsock_sys(SYS_prlimit64, 0, RLIMIT_NOFILE, &rl, NULL, 0, 0);
			if (r >= 0)
				return r;
		}
	}
	/* No room above: near the top of the program's range. */
	unsigned long top = rl.rlim_cur < OWN_TOP_CAP ? rl.rlim_cur : OWN_TOP_CAP;
	unsigned long min = top > 2 * (unsigned long)OWN_ROOM ? top - OWN_ROOM : top / 2 > 3 ? top / 2 : 3;
	return vsock_sys(SYS_fcntl, fd, cmd, min, 0, 0, 0);
}

static bool cloexec_of(int fd)
{
	long f = vsock_sys(SYS_fcntl, fd, F_GETFD, 0, 0, 0, 0);
	return f >= 0 && (f & FD_CLOEXEC);
}

static void note_locked(int fd, int *holder)
{
	struct stat st;
	if (own_n == OWN_MAX || vsock_sys(SYS_fstat, fd, &st, 0, 0, 0, 0) != 0) {
		static _Atomic int said;
		if (own_n == OWN_MAX && !atomic_exchange(&said, 1))
			vsock_log(1, "more than %d fds of usnet's own in this process: fd %d is left visible "
				  "to the program", OWN_MAX, fd);
		return;
	}
	own[own_n++] = (struct own_fd){ fd, holder, st.st_dev, st.st_ino };
	bounds();
}

int vsock_own_fd_hide(int fd, int *holder)
{
	if (fd < 0)
		return fd;
	/* Taken already (an fd the owner handed over, read from another
	 * variable now): only its holder changes. */
	lock();
	for (int i = 0; i < own_n; i++) {
		if (own[i].fd == fd) {
			own[i].holder = holder;
			unlock();
			if (holder)
				*holder = fd;
			return fd;
		}
	}
	unlock();
	long hi = hidden_dup(fd, cloexec_of(fd));
	if (hi >= 0) {
		vsock_sys(SYS_close, fd, 0, 0, 0, 0, 0);
		fd = (int)hi;
	}
	lock();
	note_locked(fd, holder);
	unlock();
	if (holder)
		*holder = fd;
	return fd;
}

void vsock_own_fd_note(int fd)
{
	if (fd < 0)
		return;
	lock();
	for (int i = 0; i < own_n; i++)
		if (own[i].fd == fd)
			own[i] = own[--own_n];   /* the number is reused: take it afresh */
	note_locked(fd, NULL);
	unlock();
}

void vsock_own_fd_close(int fd)
{
	vsock_own_fd_forget(fd);
	vsock_sys(SYS_close, fd, 0, 0, 0, 0, 0);
}

void vsock_own_fd_forget(int fd)
{
	lock();
	for (int i = 0; i < own_n; i++) {
		if (own[i].fd == fd) {
			own[i] = own[--own_n];
			bounds();
			break;
		}
	}
	unlock();
}

/* Index of fd's entry, when fd is still the file taken (under the lock). */
static int find_locked(int fd)
{
	for (int i = 0; i < own_n; i++) {
		if (own[i].fd != fd)
			continue;
		struct stat st;
		if (vsock_sys(SYS_fstat, fd, &st, 0, 0, 0, 0) == 0 && st.st_dev == own[i].dev &&
		    st.st_ino == own[i].ino)
			return i;
		/* Closed by the switch without a word, and the number the
		 * program's now. */
		own[i] = own[--own_n];
		bounds();
		return -1;
	}
	return -1;
}

bool vsock_own_fd(int fd)
{
	if (!vsock_own_fd_maybe(fd))
		return false;
	lock();
	bool r = find_locked(fd) >= 0;
	unlock();
	return r;
}

/* Move entry i to the hidden range as it is now; false when it cannot. */
static bool move_locked(int i)
{
	struct own_fd *o = &own[i];
	if (!o->holder)
		return false;
	long hi = hidden_dup(o->fd, cloexec_of(o->fd));
	if (hi < 0)
		return false;
	int old = o->fd;
	*o->holder = (int)hi;
	o->fd = (int)hi;
	vsock_sys(SYS_close, old, 0, 0, 0, 0, 0);
	bounds();
	return true;
}

long vsock_own_dup_onto(long nr, int oldfd, int newfd, int flags)
{
	/* Past the program's limit the kernel refuses it (EBADF), as it
	 * would without usnet. */
	if ((rlim_t)newfd >= nofile().rlim_cur)
		return nr == SYS_dup2 ? vsock_sys(SYS_dup2, oldfd, newfd, 0, 0, 0, 0)
				      : vsock_sys(SYS_dup3, oldfd, newfd, flags, 0, 0, 0);
	lock();
	int i = find_locked(newfd);
	bool moved = i < 0 || move_locked(i);
	unlock();
	if (!moved) {
		vsock_log(0, "dup2/dup3 onto fd %d, which usnet uses and cannot move: refused (EBUSY)", newfd);
		return -EBUSY;
	}
	return nr == SYS_dup2 ? vsock_sys(SYS_dup2, oldfd, newfd, 0, 0, 0, 0)
			      : vsock_sys(SYS_dup3, oldfd, newfd, flags, 0, 0, 0);
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

long vsock_own_close_range(unsigned first, unsigned last, unsigned flags)
{
	int fds[OWN_MAX], n = 0;
	lock();
	for (int i = 0; i < own_n; i++)
		if ((unsigned)own[i].fd >= first && (unsigned)own[i].fd <= last)
			fds[n++] = own[i].fd;
	unlock();
	if (n == 0 || first > last)
		return vsock_sys(SYS_close_range, first, last, flags, 0, 0, 0);
	qsort(fds, (size_t)n, sizeof fds[0], cmp_int);
	/* The pieces between them; CLOSE_RANGE_UNSHARE takes effect with the
	 * first and stays. */
	unsigned from = first;
	long r = 0;
	bool called = false;
	for (int k = 0; k < n; k++) {
		unsigned fd = (unsigned)fds[k];
		if (fd > from) {
			r = vsock_sys(SYS_close_range, from, fd - 1, called ? flags & ~CLOSE_RANGE_UNSHARE : flags,
				      0, 0, 0);
			if (r < 0)
				return r;
			called = true;
		}
		from = fd + 1;
	}
	if (from <= last) {
		r = vsock_sys(SYS_close_range, from, last, called ? flags & ~CLOSE_RANGE_UNSHARE : flags, 0, 0, 0);
		called = true;
	}
	if (!called && (flags & CLOSE_RANGE_UNSHARE))
		r = vsock_sys(SYS_unshare, 0x400 /* CLONE_FILES */, 0, 0, 0, 0, 0);
	return r;
}

void vsock_own_limit_changed(void)
{
	struct rlimit rl = nofile();
	lock();
	for (int i = 0; i < own_n; i++) {
		if ((rlim_t)own[i].fd >= rl.rlim_cur)
			continue;
		if (!move_locked(i)) {
			static _Atomic int said;
			if (!atomic_exchange(&said, 1))
				vsock_log(1, "fd %d of usnet's own stays within the program's new fd limit", own[i].fd);
		}
	}
	unlock();
}

/* Whether dir fd is a listing of this process's fds (/proc/self/fd,
 * /dev/fd, /proc/PID/fd, /proc/PID/task/TID/fd). */
static bool lists_own_fds(int fd)
{
	char path[48], target[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	long n = vsock_sys(SYS_readlink, path, target, sizeof target - 1, 0, 0, 0);
	if (n <= 0)
		return false;
	target[n] = 0;
	char mine[32];
	int len = snprintf(mine, sizeof mine, "/proc/%ld/", vsock_pid);
	if (strncmp(target, mine, (size_t)len))
		return false;
	const char *rest = target + len;
	if (!strcmp(rest, "fd"))
		return true;
	if (strncmp(rest, "task/", 5))
		return false;
	const char *slash = strchr(rest + 5, '/');
	return slash && !strcmp(slash, "/fd");
}

struct dirent64_view {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

long vsock_own_getdents(int fd, void *buf, long count)
{
	long r = vsock_sys(SYS_getdents64, fd, buf, count, 0, 0, 0);
	if (r <= 0 || !lists_own_fds(fd))
		return r;
	char *p = buf;
	long out = 0;
	for (long off = 0; off < r;) {
		struct dirent64_view *d = (struct dirent64_view *)(p + off);
		unsigned short len = d->d_reclen;
		char *end;
		long num = strtol(d->d_name, &end, 10);
		bool hide = d->d_name[0] >= '0' && d->d_name[0] <= '9' && *end == 0 && num <= INT_MAX &&
			    vsock_own_fd((int)num);
		if (!hide) {
			if (out != off)
				memmove(p + out, d, len);
			out += len;
		}
		off += len;
	}
	/* An all-hidden batch would read as the end of the directory. */
	if (out == 0)
		return vsock_own_getdents(fd, buf, count);
	return out;
}
