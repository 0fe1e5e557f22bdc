/*
 * usnet switch — epoll over user sockets and kernel fds.
 *
 * The program's epoll fd stays a real kernel epoll holding its kernel fds
 * (and user sockets backed by a kernel fd).  User sockets registered in it
 * live in a per-process side list ("set"); the fd is then "tracked"
 * (fdmap < 0).  epoll_wait collects ready user sockets (level or edge
 * triggered, EPOLLONESHOT), then the kernel's events, and sleeps on the real
 * epoll fd and the bell together when nothing is ready.
 *
 * Edge triggering: every provider notification bumps the slot's generation;
 * an edge-triggered item is reported when it is ready and its generation
 * moved since it was last reported.  The generation recorded at a report is
 * the one read before the provider was asked for the readiness reported: a
 * notification landing between the two (data arriving while only EPOLLOUT
 * was seen) leaves the generation past the recorded one, so its edge is
 * reported by the next wait rather than swallowed by this one.
 *
 * Sleeping: a wait sleeps unless an item has something to report ("pending":
 * what collect_user would return), not merely something ready -- an
 * edge-triggered socket that stays writable after its edge was reported
 * must not keep the thread awake, or the kernel epoll holding the program's
 * other fds is never asked again.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

#include "vsock.h"

#define MAX_SETS 4096

struct ep_item {
	int fd;
	int nested;          /* the fd is a tracked epoll fd */
	uint32_t slot;
	uint32_t events;
	uint64_t data;
	uint32_t last_gen;   /* edge triggering: generation of the last report's readiness */
	uint32_t seen_gen;   /* generation at the last readiness check ... */
	int was_ready;       /* ... and whether it was ready then */
	int armed;           /* 0 after a EPOLLONESHOT report, until EPOLL_CTL_MOD */
};

struct ep_set {
	int used;
	int epfd;            /* the program's epoll fd (its kernel epoll) */
	int n, cap;
	unsigned rr;         /* where the next scan starts (fairness) */
	int kernel_fds;      /* fds the kernel epoll holds (an upper bound) */
	int waiter;          /* wakes its sleepers (vsock_waiter_alloc), or -1 */
	bool kernel_quiet;         /* the kernel epoll had nothing when last asked */
	unsigned kernel_skips;     /* epoll_waits answered without asking the kernel ... */
	uint64_t kernel_asked_ns;  /* ... since it was last asked, at this time */
	struct ep_item *items;
	int32_t *index;      /* fd -> item + 1 (a sparse mapping, vsock_fdmap_size entries) */
};

unsigned char vsock_epoll_hint[VSOCK_EPOLL_HINT_MAX];

static struct ep_set sets[MAX_SETS];
/* One past the highest set ever used: the scans of every set (a closed or
 * handed-over fd) stop there rather than at MAX_SETS, on every close. */
static int sets_end;
/* An epoll fd was nested in another: readiness then travels between sets,
 * and sleepers wait for every notification (the bell). */
static bool nesting_seen;
static pthread_mutex_t ep_lock = PTHREAD_MUTEX_INITIALIZER;
/* How many sets hold each fd (only fds below this size are counted). */
#define REG_COUNT_MAX 65536
static unsigned short reg_count[REG_COUNT_MAX];

static struct ep_set *set_of(int epfd)
{
	int32_t e = vsock_fd_entry(epfd);
	return e < 0 ? &sets[-e - 1] : NULL;
}

static struct ep_item *find(struct ep_set *st, int fd)
{
	if (fd < 0 || fd >= vsock_fdmap_size || !st->index[fd])
		return NULL;
	return &st->items[st->index[fd] - 1];
}

static int grow(struct ep_set *st)
{
	int cap = st->cap ? st->cap * 2 : 64;
	void *m = (void *)vsock_sys(SYS_mmap, 0, (size_t)cap * sizeof(struct ep_item), PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if ((long)m < 0 && (long)m > -4096)
		return -ENOMEM;
	if (st->items) {
		memcpy(m, st->items, (size_t)st->n * sizeof(struct ep_item));
		vsock_sys(SYS_munmap, st->items, (size_t)st->cap * sizeof(struct ep_item), 0, 0, 0, 0);
	}
	st->items = m;
	st->cap = cap;
	return 0;
}

/* How many fds the kernel epoll epfd holds, from /proc/self/fdinfo (one
 * "tfd:" line each); a large number when that cannot be read. */
static int kernel_fd_count(int epfd)
{
	char path[48], buf[4096];
	snprintf(path, sizeof path, "/proc/self/fdinfo/%d", epfd);
	long fd = vsock_sys(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0, 0, 0);
	if (fd < 0)
		return 1 << 20;
	int count = 0;
	size_t keep = 0;   /* a "tfd:" may straddle two reads */
	for (;;) {
		long n = vsock_sys(SYS_read, fd, buf + keep, sizeof buf - keep, 0, 0, 0);
		if (n < 0)
			count = 1 << 20;
		if (n <= 0)
			break;
		size_t len = keep + (size_t)n;
		for (size_t i = 0; i + 4 <= len; i++)
			if (!memcmp(buf + i, "tfd:", 4))
				count++;
		keep = len < 3 ? len : 3;
		memmove(buf, buf + len - keep, keep);
	}
	vsock_sys(SYS_close, fd, 0, 0, 0, 0, 0);
	return count;
}

/* Track epfd (it gets a set); -errno when it is not an epoll fd. */
static struct ep_set *track(int epfd)
{
	struct ep_set *st = set_of(epfd);
	if (st)
		return st;
	/* Is epfd an epoll fd?  Removing an fd it does not hold says ENOENT
	 * for an epoll fd, EINVAL for anything else, EBADF for no fd. */
	struct epoll_event ev = { 0 };
	long r = vsock_sys(SYS_epoll_ctl, epfd, EPOLL_CTL_DEL, vsock_bell_fd(), &ev, 0, 0);
	if (r != -ENOENT) {
		errno = r == 0 ? EINVAL : (int)-r;
		return NULL;
	}
	if (epfd >= vsock_fdmap_size) {
		errno = EMFILE;
		return NULL;
	}
	for (int i = 0; i < MAX_SETS; i++) {
		if (sets[i].used)
			continue;
		if (!sets[i].index) {
			void *m = (void *)vsock_sys(SYS_mmap, 0, (size_t)vsock_fdmap_size * sizeof(int32_t),
						   PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
						   -1, 0);
			if ((long)m < 0 && (long)m > -4096) {
				errno = ENOMEM;
				return NULL;
			}
			sets[i].index = m;
		}
		sets[i].used = 1;
		if (i >= sets_end)
			sets_end = i + 1;
		sets[i].epfd = epfd;
		sets[i].n = 0;
		sets[i].rr = 0;
		sets[i].kernel_fds = kernel_fd_count(epfd);
		sets[i].waiter = vsock_waiter_alloc();
		sets[i].kernel_skips = 0;
		sets[i].kernel_quiet = false;
		sets[i].kernel_asked_ns = 0;
		atomic_store(&vsock_fdmap[epfd], -(i + 1));
		atomic_fetch_add(&vsock_user_fds, 1);
		return &sets[i];
	}
	errno = ENOMEM;
	return NULL;
}

static uint32_t item_pending(struct ep_item *it, int depth, uint32_t *edge_gen);

/* Whether an epoll_wait on the set would report something now (Linux's
 * "events available" of an epoll fd: poll() on it, a nested set, a sleep). */
static bool set_has_pending(struct ep_set *st, int depth)
{
	uint32_t gen;
	for (int i = 0; i < st->n; i++)
		if (item_pending(&st->items[i], depth, &gen))
			return true;
	return false;
}

/* What the item would report now (before edge filtering); *gen_seen gets
 * the generation read before the provider was asked. */
static uint32_t item_ready(struct ep_item *it, int depth, uint32_t *gen_seen)
{
	uint32_t want = (it->events & ~(EPOLLET | EPOLLONESHOT | EPOLLEXCLUSIVE | EPOLLWAKEUP))
			| EPOLLERR | EPOLLHUP;
	if (it->nested) {
		struct ep_set *inner = set_of(it->fd);
		*gen_seen = it->last_gen + 1;   /* a nested set has no generation: every check is new */
		if (!inner || depth > 4)
			return 0;
		return set_has_pending(inner, depth + 1) ? (EPOLLIN & want) : 0;
	}
	/* Readiness only changes with a notification (which bumps the
	 * generation): an item not ready at the last check, with no
	 * notification since, is still not ready, without asking the provider. */
	struct vsock_slot *s = &vsock_shm->slots[it->slot];
	uint32_t gen = atomic_load_explicit(&s->gen, memory_order_acquire);
	*gen_seen = gen;
	if (!it->was_ready && gen == it->seen_gen)
		return 0;
	uint32_t ev = vsock_prov->poll(vsock_prov_ctx, s->ps) & want;
	it->seen_gen = gen;
	it->was_ready = ev != 0;
	return ev;
}

/* What epoll_wait would report for the item now: its readiness, unless it
 * is disarmed (EPOLLONESHOT) or edge-triggered with no notification since
 * its last report.  *edge_gen gets the generation to record if it is
 * reported. */
static uint32_t item_pending(struct ep_item *it, int depth, uint32_t *edge_gen)
{
	if (!it->armed)
		return 0;
	/* Cheap first: an edge already reported, with no notification since,
	 * costs no provider call. */
	if ((it->events & EPOLLET) && !it->nested &&
	    atomic_load_explicit(&vsock_shm->slots[it->slot].gen, memory_order_acquire) == it->last_gen)
		return 0;
	return item_ready(it, depth, edge_gen);
}

bool vsock_epoll_has_user_ready(int epfd)
{
	pthread_mutex_lock(&ep_lock);
	struct ep_set *st = set_of(epfd);
	bool r = st && set_has_pending(st, 0);
	pthread_mutex_unlock(&ep_lock);
	return r;
}

static void item_remove(struct ep_set *st, struct ep_item *it)
{
	if (it->fd < REG_COUNT_MAX && reg_count[it->fd])
		reg_count[it->fd]--;
	st->index[it->fd] = 0;
	*it = st->items[--st->n];
	if (it != &st->items[st->n])
		st->index[it->fd] = (int32_t)(it - st->items) + 1;
}

void vsock_epoll_forget_fd(int fd)
{
	pthread_mutex_lock(&ep_lock);
	if (fd >= REG_COUNT_MAX || reg_count[fd]) {
		for (int i = 0; i < sets_end; i++) {
			if (!sets[i].used)
				continue;
			struct ep_item *it = find(&sets[i], fd);
			if (it)
				item_remove(&sets[i], it);
		}
	}
	struct ep_set *st = set_of(fd);
	if (st) {
		while (st->n)
			item_remove(st, &st->items[0]);
		vsock_waiter_free(st->waiter);
		st->waiter = -1;
		st->used = 0;
		atomic_store(&vsock_fdmap[fd], 0);
		atomic_fetch_sub(&vsock_user_fds, 1);
	}
	pthread_mutex_unlock(&ep_lock);
}

void vsock_epoll_handover_fd(int fd)
{
	pthread_mutex_lock(&ep_lock);
	if (fd >= REG_COUNT_MAX || reg_count[fd]) {
		for (int i = 0; i < sets_end; i++) {
			if (!sets[i].used)
				continue;
			struct ep_item *it = find(&sets[i], fd);
			if (!it || it->nested)
				continue;
			/* A disarmed EPOLLONESHOT item stays disarmed: registered
			 * with no events (the kernel would still report an error
			 * or a hang-up on it, which Linux holds back). */
			struct epoll_event ev = {
				.events = it->armed ? it->events : (it->events & (EPOLLET | EPOLLONESHOT)),
				.data.u64 = it->data,
			};
			if (vsock_sys(SYS_epoll_ctl, sets[i].epfd, EPOLL_CTL_ADD, fd, &ev, 0, 0) == 0) {
				sets[i].kernel_fds++;
				sets[i].kernel_quiet = false;
			} else {
				vsock_log(1, "fd %d: cannot move its epoll registration to the kernel", fd);
			}
			item_remove(&sets[i], it);
		}
	}
	pthread_mutex_unlock(&ep_lock);
}

static long ctl_user(int epfd, int op, int fd, struct epoll_event *ev, bool nested)
{
	if (epfd == fd)
		return -EINVAL;
	if (op != EPOLL_CTL_DEL && !ev)
		return -EFAULT;
	pthread_mutex_lock(&ep_lock);
	long r = 0;
	int wake = -1;
	struct ep_set *st = track(epfd);
	if (!st) {
		r = -errno;
		goto out;
	}
	struct ep_item *it = find(st, fd);
	switch (op) {
	case EPOLL_CTL_ADD:
		if (it) {
			r = -EEXIST;
			break;
		}
		if (st->n == st->cap && (r = grow(st)) < 0)
			break;
		it = &st->items[st->n++];
		st->index[fd] = st->n;
		*it = (struct ep_item){ .fd = fd, .nested = nested, .events = ev->events, .data = ev->data.u64,
					.armed = 1, .was_ready = 1 };
		if (!nested) {
			it->slot = (uint32_t)(vsock_fd_entry(fd) - 1);
			if (vsock_waiter_mine(st->waiter))
				atomic_fetch_or(&vsock_shm->slots[it->slot].wake_mask, 1ull << st->waiter);
			it->last_gen = atomic_load(&vsock_shm->slots[it->slot].gen) - 1;
		} else {
			nesting_seen = true;
		}
		if (fd < REG_COUNT_MAX)
			reg_count[fd]++;
		break;
	case EPOLL_CTL_MOD:
		if (!it) {
			r = -ENOENT;
			break;
		}
		if (!nested && vsock_waiter_mine(st->waiter))   /* a set inherited over fork got its own */
			atomic_fetch_or(&vsock_shm->slots[it->slot].wake_mask, 1ull << st->waiter);
		if ((it->events | ev->events) & EPOLLEXCLUSIVE) {
			r = -EINVAL;
			break;
		}
		it->events = ev->events;
		it->data = ev->data.u64;
		it->armed = 1;
		it->was_ready = 1;
		if (!nested)
			it->last_gen = atomic_load(&vsock_shm->slots[it->slot].gen) - 1;
		break;
	case EPOLL_CTL_DEL:
		if (!it) {
			r = -ENOENT;
			break;
		}
		item_remove(st, it);
		break;
	default:
		r = -EINVAL;
	}
	/* A thread sleeping on the set may now have work. */
	if (!nesting_seen && vsock_waiter_mine(st->waiter))
		wake = st->waiter;
out:
	pthread_mutex_unlock(&ep_lock);
	if (r == 0 && op != EPOLL_CTL_DEL)
		vsock_wake_waiter(wake);
	return r;
}

/* Whether fd, a kernel fd the switch does not track, is an epoll fd that
 * must be nested in epfd's side list: the program may add user sockets to it
 * later, and their readiness has to reach epfd.  Asked of the kernel only on
 * EPOLL_CTL_ADD (removing an fd an epoll fd does not hold says ENOENT for an
 * epoll fd only); later calls find the nested item. */
static bool untracked_epoll(int epfd, int op, int fd)
{
	if (op == EPOLL_CTL_ADD) {
		struct epoll_event ev = { 0 };
		return vsock_maybe_epoll(fd) && fd != vsock_bell_fd() &&
		       vsock_sys(SYS_epoll_ctl, fd, EPOLL_CTL_DEL, vsock_bell_fd(), &ev, 0, 0) == -ENOENT;
	}
	pthread_mutex_lock(&ep_lock);
	struct ep_set *st = set_of(epfd);
	struct ep_item *it = st ? find(st, fd) : NULL;
	bool nested = it && it->nested;
	pthread_mutex_unlock(&ep_lock);
	return nested;
}

/* The kernel epoll of epfd took (ADD) or dropped (DEL) an fd: keep the
 * set's count of them (an upper bound: an fd closed while registered
 * leaves the kernel epoll without telling). */
static void count_kernel_fd(int epfd, int op)
{
	if (op != EPOLL_CTL_ADD && op != EPOLL_CTL_DEL)
		return;
	pthread_mutex_lock(&ep_lock);
	struct ep_set *st = set_of(epfd);
	if (st && op == EPOLL_CTL_ADD)
		st->kernel_fds++;
	else if (st && st->kernel_fds > 0)
		st->kernel_fds--;
	pthread_mutex_unlock(&ep_lock);
}

static long epoll_ctl_call(int epfd, int op, int fd, struct epoll_event *ev)
{
	int32_t e = vsock_fd_entry(fd);
	if (e > 0) {
		struct vsock_slot *s = &vsock_shm->slots[e - 1];
		int kfd = vsock_slot_kernel_fd(s);
		if (kfd >= 0) {   /* the kernel watches it under the program's data */
			long r = vsock_sys(SYS_epoll_ctl, epfd, op, kfd, ev, 0, 0);
			if (r == 0)
				count_kernel_fd(epfd, op);
			return r;
		}
		return ctl_user(epfd, op, fd, ev, false);
	}
	if (e < 0 || untracked_epoll(epfd, op, fd)) {
		/* An epoll fd inside another: the kernel nests the real ones; the
		 * side list adds the inner fd's user readiness (now, or once the
		 * inner fd gets user sockets of its own). */
		long r = vsock_sys(SYS_epoll_ctl, epfd, op, fd, ev, 0, 0);
		if (r < 0)
			return r;
		long u = ctl_user(epfd, op, fd, ev, true);
		count_kernel_fd(epfd, op);
		return u == -ENOENT && op == EPOLL_CTL_DEL ? 0 : u;
	}
	if (vsock_fd_entry(epfd) < 0) {   /* a kernel fd into a tracked epoll fd */
		long r = vsock_sys(SYS_epoll_ctl, epfd, op, fd, ev, 0, 0);
		if (r == 0)
			count_kernel_fd(epfd, op);
		return r;
	}
	return USNET_HOOK_PASS;
}

static int collect_user(struct ep_set *st, struct epoll_event *out, int max)
{
	int k = 0;
	pthread_mutex_lock(&ep_lock);
	int n = st->n;
	for (int j = 0; j < n && k < max; j++) {
		struct ep_item *it = &st->items[(st->rr + (unsigned)j) % (unsigned)n];
		uint32_t gen;
		uint32_t ev = item_pending(it, 0, &gen);
		if (!ev)
			continue;
		if (it->events & EPOLLET)
			it->last_gen = gen;
		if (it->events & EPOLLONESHOT)
			it->armed = 0;
		out[k].events = ev;
		out[k].data.u64 = it->data;
		k++;
	}
	if (n)
		st->rr = (st->rr + 1) % (unsigned)n;
	pthread_mutex_unlock(&ep_lock);
	return k;
}

/* vsock_sleep's recheck: whether the set has something to report.  When
 * it does, the sleep (which watches the kernel epoll fd) does not happen,
 * which the wait notes: the kernel epoll is then asked directly. */
struct pending_check { struct ep_set *st; bool kernel_unwatched; };

static bool any_pending(void *arg)
{
	struct pending_check *pc = arg;
	pthread_mutex_lock(&ep_lock);
	bool r = set_has_pending(pc->st, 0);
	pthread_mutex_unlock(&ep_lock);
	pc->kernel_unwatched = r;
	return r;
}

/* With user sockets ready and the kernel fds quiet when last asked, how
 * many epoll_waits may pass, and for how long, before the kernel epoll is
 * asked again (a kernel fd that becomes ready still gets its turn soon). */
#define KERNEL_SKIP_CALLS 8
#define KERNEL_SKIP_NS 200000ull

static long epoll_wait_call(int epfd, struct epoll_event *out, int max, int64_t deadline, const sigset_t *mask)
{
	struct ep_set *st = set_of(epfd);
	if (!st || st->n == 0)
		return USNET_HOOK_PASS;
	if (max <= 0 || (size_t)max > (size_t)0x7fffffff / sizeof(struct epoll_event))
		return -EINVAL;
	/* Run the stack first: the frames that arrived since the last call
	 * are taken by the thread that will serve them (not by the progress
	 * thread, on the same core, through a wake-up), and what the program
	 * sent since then leaves now. */
	vsock_provider_progress();
	bool progressed = true;
	struct pending_check pc = { st, false };
	for (;;) {
		int n = collect_user(st, out, max);
		/* A set whose kernel epoll holds nothing (a server with only
		 * user sockets) costs no system call while user sockets are ready;
		 * one whose kernel fds are quiet asks the kernel every few calls.
		 * With none ready the kernel is asked unless its fds were quiet
		 * and the thread is about to sleep: the sleep watches the kernel
		 * epoll fd itself (which also covers an fd added through a dup()
		 * of the epoll fd, which the count misses) -- unless the last
		 * sleep was skipped because the recheck found something that
		 * another thread then took: the kernel has not been looked at. */
		if (n > 0)
			vsock_note_active();
		bool ask = n == 0 && (!st->kernel_quiet || pc.kernel_unwatched || (int64_t)vsock_now_ns() >= deadline);
		pc.kernel_unwatched = false;
		if (n > 0 && n < max && st->kernel_fds > 0) {
			uint64_t now = vsock_now_ns();
			if (!st->kernel_quiet || ++st->kernel_skips >= KERNEL_SKIP_CALLS ||
			    now - st->kernel_asked_ns >= KERNEL_SKIP_NS)
				ask = true;
		}
		if (ask) {
			st->kernel_skips = 0;
			st->kernel_asked_ns = vsock_now_ns();
			long k = vsock_sys(SYS_epoll_wait, epfd, out + n, max - n, 0, 0, 0);
			st->kernel_quiet = k <= 0;
			if (k < 0 && n == 0)
				return k;
			if (k > 0)
				n += (int)k;
		}
		if (n > 0 || (int64_t)vsock_now_ns() >= deadline)
			return n;
		if (!progressed) {
			vsock_provider_progress();
			progressed = true;
			continue;
		}
		struct pollfd kp = { .fd = epfd, .events = POLLIN };
		int r = vsock_sleep(&kp, 1, deadline, mask, nesting_seen ? -1 : st->waiter, any_pending, &pc);
		if (r < 0)
			return r;
		if (r > 0)
			st->kernel_quiet = false;
		progressed = false;
	}
}

long vsock_epoll_call(struct usnet_syscall *sc)
{
	long *a = sc->args;
	switch (sc->nr) {
#ifdef SYS_epoll_create
	case SYS_epoll_create:
#endif
	case SYS_epoll_create1: {
		long fd = vsock_sys(sc->nr, a[0], 0, 0, 0, 0, 0);
		if (fd >= 0 && fd < VSOCK_EPOLL_HINT_MAX)
			vsock_epoll_hint[fd] = 1;
		return fd;
	}
	case SYS_epoll_ctl:
		return epoll_ctl_call((int)a[0], (int)a[1], (int)a[2], (struct epoll_event *)a[3]);
	case SYS_epoll_wait:
	case SYS_epoll_pwait: {
		int ms = (int)a[3];
		int64_t dl = ms < 0 ? INT64_MAX : (int64_t)vsock_now_ns() + (int64_t)ms * 1000000LL;
		const sigset_t *mask = sc->nr == SYS_epoll_pwait ? (const sigset_t *)a[4] : NULL;
		return epoll_wait_call((int)a[0], (struct epoll_event *)a[1], (int)a[2], dl, mask);
	}
	case SYS_epoll_pwait2: {
		const struct timespec *ts = (const struct timespec *)a[3];
		if (ts && (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L))
			return -EINVAL;
		int64_t dl = ts ? (int64_t)vsock_now_ns() + (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec
				: INT64_MAX;
		return epoll_wait_call((int)a[0], (struct epoll_event *)a[1], (int)a[2], dl,
				       (const sigset_t *)a[4]);
	}
	default:
		return USNET_HOOK_PASS;
	}
}
