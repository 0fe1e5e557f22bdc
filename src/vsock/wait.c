/*
 * usnet switch — sleeping and waking.
 *
 * One eventfd, the bell, is shared by every thread and every forked process
 * of the program.  Each sleeping thread has its own epoll fd with the bell
 * registered edge-triggered: every ring queues an event in every such epoll
 * fd, so no waiter can miss one and nobody has to drain the bell.  A thread
 * sleeps in ppoll() on its epoll fd plus whatever kernel fds it waits for.
 * Rings only happen while someone sleeps (the shared sleepers count), so a
 * busy program pays no system call per event.
 *
 * Most sleeps are in epoll_wait, on one epoll set: such a set has a waiter
 * (an eventfd of its process, a bit in the wake mask of every socket it
 * holds), and a notification wakes only the sets that hold the socket, not
 * every sleeping thread (a server's listener thread is not woken by every
 * request its worker serves).  Sleepers without a waiter (poll, select,
 * blocking calls, nested epoll sets, sets inherited over fork) count as
 * broadcast sleepers: while there is one, every notification rings the bell.
 *
 * Frames: only one sleeping thread needs to wake when a frame arrives, the
 * one that then runs the stack.  That is the thread that last found user
 * sockets ready (the "poller": a server's worker); the others sleep on the
 * provider's wait fds only while no poller is around (none sleeps on them
 * and the poller has not run the stack for APP_ACTIVE_NS).
 *
 * The progress thread keeps the provider's timers, ACKs and handshakes going
 * while the program computes: it sleeps on the provider's wait fds until the
 * next deadline.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

#include "vsock.h"
#include "attach_proto.h"
#include "vsock_handler.h"

/* The provider's wait fds a sleeper watches: one per receive queue of an
 * interface (afxdp and afpacket have at most 64). */
#define VSOCK_WAIT_FDS 64

/* The cap on one sleep: a safety net for events that come from another
 * process without a ring (and for providers without notifications). */
#define SLEEP_CAP_NS 20000000LL

static int bell_fd = -1;
static __thread int thread_epfd __attribute__((tls_model("initial-exec"))) = -1;
static __thread unsigned thread_epfd_gen __attribute__((tls_model("initial-exec")));
static __thread void *thread_scratch[VSOCK_SCRATCH_N] __attribute__((tls_model("initial-exec")));
static __thread size_t thread_scratch_len[VSOCK_SCRATCH_N] __attribute__((tls_model("initial-exec")));
static int spin_ns = 20000;

static int high_fd(long fd)
{
	return fd < 0 ? (int)fd : vsock_own_fd_hide((int)fd, NULL);
}

int vsock_bell_init(void)
{
	/* Attached: one bell for every process on the interface. */
	long fd = vsock_attachment.attached ? vsock_attachment.fds[ATTACH_FD_BELL]
					    : vsock_sys(SYS_eventfd2, 0, EFD_CLOEXEC | EFD_NONBLOCK, 0, 0, 0, 0);
	if (fd < 0)
		return (int)fd;
	vsock_own_fd_hide((int)fd, &bell_fd);
	const char *s = vsock_config("spin_us");
	if (s)
		spin_ns = (int)strtol(s, NULL, 10) * 1000;
	return 0;
}

int vsock_bell_fd(void)
{
	return bell_fd;
}

void vsock_bell_ring(void)
{
	if (atomic_load(&vsock_shm->sleepers) == 0)
		return;
	uint64_t one = 1;
	vsock_sys(SYS_write, bell_fd, &one, sizeof one, 0, 0, 0);
}

/* ---- waiters --------------------------------------------------------------- */

static bool process_gone(int32_t pid)
{
	return vsock_sys(SYS_kill, pid, 0, 0, 0, 0, 0) == -ESRCH;
}

int vsock_waiter_alloc(void)
{
	long efd = vsock_sys(SYS_eventfd2, 0, EFD_CLOEXEC | EFD_NONBLOCK, 0, 0, 0, 0);
	if (efd < 0)
		return -1;
	efd = high_fd(efd);
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < VSOCK_WAITERS; i++) {
			struct vsock_waiter *w = &vsock_shm->waiters[i];
			int32_t pid = atomic_load(&w->pid);
			/* Second pass: take back the waiters of processes that died. */
			if (pid != 0 && (pass == 0 || pid == (int32_t)vsock_pid || !process_gone(pid)))
				continue;
			if (!atomic_compare_exchange_strong(&w->pid, &pid, (int32_t)vsock_pid))
				continue;
			w->efd = (int32_t)efd;
			atomic_store(&w->sleeping, 0);
			/* Its bit may still be set in the masks of sockets a former
			 * owner held: at worst a spurious wake-up. */
			return i;
		}
	}
	vsock_own_fd_close((int)efd);
	return -1;
}

bool vsock_waiter_mine(int w)
{
	return w >= 0 && w < VSOCK_WAITERS && atomic_load(&vsock_shm->waiters[w].pid) == (int32_t)vsock_pid;
}

void vsock_waiter_free(int w)
{
	if (!vsock_waiter_mine(w))
		return;
	/* A thread still sleeping on it (the epoll fd was closed under it)
	 * will read its eventfd when it wakes: the fd number must not be
	 * reused meanwhile, so the waiter stays taken. */
	if (atomic_load(&vsock_shm->waiters[w].sleeping) > 0)
		return;
	vsock_own_fd_close(vsock_shm->waiters[w].efd);
	atomic_store(&vsock_shm->waiters[w].pid, 0);
}

void vsock_wake_waiter(int w)
{
	if (w < 0 || w >= VSOCK_WAITERS) {
		vsock_bell_ring();
		return;
	}
	struct vsock_waiter *wt = &vsock_shm->waiters[w];
	if (atomic_load(&wt->sleeping) == 0)
		return;
	if (atomic_load_explicit(&wt->pid, memory_order_relaxed) != (int32_t)vsock_pid) {
		vsock_bell_ring();   /* its eventfd is another process's: it hears the bell too */
		return;
	}
	uint64_t one = 1;
	vsock_sys(SYS_write, wt->efd, &one, sizeof one, 0, 0, 0);
}

void vsock_wake_slot(struct vsock_slot *s)
{
	/* The generation was bumped (a full barrier): either a sleeper that
	 * registered before it sees the sleepers count here, or its recheck
	 * sees the new generation. */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load(&vsock_shm->sleepers) == 0)
		return;
	if (atomic_load(&vsock_shm->broadcast_sleepers) > 0) {
		vsock_bell_ring();
		return;
	}
	uint64_t m = atomic_load(&s->wake_mask);
	while (m) {
		int w = __builtin_ctzll(m);
		m &= m - 1;
		vsock_wake_waiter(w);
	}
}

/* ---- the netif poller --------------------------------------------------------- */

static _Atomic unsigned fork_generation;
static __thread int32_t thread_tid __attribute__((tls_model("initial-exec")));
static __thread unsigned thread_tid_gen __attribute__((tls_model("initial-exec")));

static int32_t self_tid(void)
{
	unsigned gen = atomic_load_explicit(&fork_generation, memory_order_relaxed);
	if (thread_tid == 0 || thread_tid_gen != gen) {
		thread_tid = (int32_t)vsock_sys(SYS_gettid, 0, 0, 0, 0, 0, 0);
		thread_tid_gen = gen;
	}
	return thread_tid;
}

/* How long after the program's last turn at the stack the progress thread
 * (and a thread that is not the poller) leaves incoming frames to it. */
#define APP_ACTIVE_NS 1000000ull
/* How often the progress thread runs the timers while a thread of the
 * program sleeps on the provider's wait fds (see progress_main). */
#define WATCHED_TIMER_NS 10000000ull
/* How long the progress thread leaves frames alone that the provider's turn
 * did not take (see progress_main). */
#define NETIF_BACKOFF_NS 100000ull

void vsock_note_active(void)
{
	int32_t me = self_tid();
	if (atomic_load_explicit(&vsock_shm->netif_poller, memory_order_relaxed) != me)
		atomic_store_explicit(&vsock_shm->netif_poller, me, memory_order_relaxed);
}

/* Whether the calling thread, about to sleep, should sleep on the
 * provider's wait fds. */
static bool should_watch_netif(void)
{
	int32_t poller = atomic_load_explicit(&vsock_shm->netif_poller, memory_order_relaxed);
	if (poller == 0 || poller == self_tid())
		return true;
	if (atomic_load_explicit(&vsock_shm->netif_watchers, memory_order_relaxed) > 0)
		return false;
	uint64_t last = atomic_load_explicit(&vsock_shm->netif_poller_ns, memory_order_relaxed);
	return vsock_now_ns() - last > APP_ACTIVE_NS;
}

/* A waiting epoll watching the bell. */
static int new_epfd(void)
{
	long ep = vsock_sys(SYS_epoll_create1, EPOLL_CLOEXEC, 0, 0, 0, 0, 0);
	if (ep < 0)
		return (int)ep;
	ep = high_fd(ep);
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u64 = 0 };
	vsock_sys(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, bell_fd, &ev, 0, 0);
	return (int)ep;
}

static int my_epfd(void)
{
	unsigned gen = atomic_load(&fork_generation);
	if (thread_epfd >= 0 && thread_epfd_gen == gen)
		return thread_epfd;
	/* A forked child must not share its parent's waiting epoll. */
	long ep = new_epfd();
	if (ep < 0)
		return (int)ep;
	if (thread_epfd >= 0 && thread_epfd_gen == gen)
		vsock_own_fd_close(thread_epfd);
	thread_epfd = (int)ep;
	thread_epfd_gen = gen;
	return thread_epfd;
}

void *vsock_scratch(enum vsock_scratch_area area, size_t need)
{
	if (need <= thread_scratch_len[area])
		return thread_scratch[area];
	size_t len = need < 65536 ? 65536 : (need + 65535) & ~(size_t)65535;
	void *m = (void *)vsock_sys(SYS_mmap, 0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if ((long)m < 0 && (long)m > -4096)
		return NULL;
	if (thread_scratch[area])
		vsock_sys(SYS_munmap, thread_scratch[area], thread_scratch_len[area], 0, 0, 0, 0);
	thread_scratch[area] = m;
	thread_scratch_len[area] = len;
	return m;
}

int vsock_sleep(struct pollfd *kfds, int nk, int64_t deadline, const sigset_t *mask, int waiter,
		bool (*recheck)(void *), void *arg)
{
	if (vsock_tx_held)
		vsock_tx_flush();   /* nothing this thread sent waits while it sleeps */
	int ep = my_epfd();
	if (!vsock_waiter_mine(waiter))
		waiter = -1;
	struct vsock_waiter *wt = waiter >= 0 ? &vsock_shm->waiters[waiter] : NULL;
	/* The provider's wait fds too, for the thread that has the work: a
	 * frame for us wakes us directly, and we run the stack ourselves
	 * rather than wait for the progress thread. */
	int wfds[VSOCK_WAIT_FDS];
	bool watch = vsock_prov && vsock_prov->wait_fds && should_watch_netif();
	int nw = watch ? vsock_prov->wait_fds(vsock_prov_ctx, wfds, VSOCK_WAIT_FDS) : 0;
	struct pollfd local[8];
	struct pollfd *pf = local;
	int head = 1 + (wt ? 1 : 0) + nw;
	if (nk + head > (int)(sizeof local / sizeof local[0])) {
		pf = vsock_scratch(VSOCK_SCRATCH_SLEEP, (size_t)(nk + head) * sizeof *pf);
		if (!pf)
			return -ENOMEM;
	}
	int at = 0;
	pf[at++] = (struct pollfd){ .fd = ep, .events = POLLIN };
	int wpos = at;
	if (wt)
		pf[at++] = (struct pollfd){ .fd = wt->efd, .events = POLLIN };
	int npos = at;
	for (int i = 0; i < nw; i++)
		pf[at++] = (struct pollfd){ .fd = wfds[i], .events = POLLIN };
	for (int i = 0; i < nk; i++) {
		pf[head + i] = kfds[i];
		pf[head + i].revents = 0;
	}
	atomic_fetch_add(&vsock_shm->sleepers, 1);
	if (wt)
		atomic_fetch_add(&wt->sleeping, 1);
	else
		atomic_fetch_add(&vsock_shm->broadcast_sleepers, 1);
	if (nw)
		atomic_fetch_add(&vsock_shm->netif_watchers, 1);
	atomic_thread_fence(memory_order_seq_cst);   /* pairs with vsock_wake_slot */
	bool ready = recheck && recheck(arg);
	long r = 0;
	if (!ready) {
		int64_t now = (int64_t)vsock_now_ns();
		int64_t until = deadline;
		if (until - now > SLEEP_CAP_NS)
			until = now + SLEEP_CAP_NS;
		struct timespec ts = { 0, 0 };
		if (until > now) {
			ts.tv_sec = (until - now) / 1000000000LL;
			ts.tv_nsec = (until - now) % 1000000000LL;
		}
		int saved;
		vsock_handler_leave_switch(&saved);
		r = vsock_sys(SYS_ppoll, pf, nk + head, &ts, mask, mask ? 8 : 0, 0);
		vsock_handler_reenter_switch(saved);
	}
	if (nw)
		atomic_fetch_sub(&vsock_shm->netif_watchers, 1);
	if (wt)
		atomic_fetch_sub(&wt->sleeping, 1);
	else
		atomic_fetch_sub(&vsock_shm->broadcast_sleepers, 1);
	atomic_fetch_sub(&vsock_shm->sleepers, 1);
	if (ready)
		return 0;
	if (r < 0)
		return r == -EINTR ? -EINTR : (int)r;
	if (pf[0].revents) {
		struct epoll_event ev;
		vsock_sys(SYS_epoll_wait, ep, &ev, 1, 0, 0, 0);
	}
	if (wt && pf[wpos].revents) {
		uint64_t v;
		vsock_sys(SYS_read, wt->efd, &v, sizeof v, 0, 0, 0);
	}
	bool frames = false;
	for (int i = 0; i < nw; i++)
		frames |= pf[npos + i].revents != 0;
	if (frames)
		vsock_provider_progress();
	int nready = 0;
	for (int i = 0; i < nk; i++) {
		kfds[i].revents = pf[head + i].revents;
		if (kfds[i].revents)
			nready++;
	}
	return nready;
}

struct slot_wait { struct vsock_slot *s; uint32_t events; };

static bool slot_ready(void *arg)
{
	struct slot_wait *w = arg;
	return (vsock_slot_events(w->s) & (w->events | USNET_PROVIDER_EV_ERR | USNET_PROVIDER_EV_HUP)) != 0;
}

int vsock_wait_slot(struct vsock_slot *s, uint32_t events, int64_t deadline)
{
	struct slot_wait w = { s, events };
	int64_t spin_until = (int64_t)vsock_now_ns() + spin_ns;
	int kfd = vsock_slot_kernel_fd(s);
	for (;;) {
		if (slot_ready(&w)) {
			vsock_note_active();
			return 0;
		}
		int64_t now = (int64_t)vsock_now_ns();
		if (now >= deadline)
			return -EAGAIN;
		if (now < spin_until) {
			vsock_provider_progress();
			continue;
		}
		struct pollfd kp = { .fd = kfd, .events = (short)(events | POLLRDHUP) };
		int r = vsock_sleep(&kp, kfd >= 0 ? 1 : 0, deadline, NULL, -1, slot_ready, &w);
		/* As Linux: restarted after SA_RESTART handlers, unless the socket
		 * has a timeout (then EINTR). */
		if (r == -EINTR && (deadline != INT64_MAX || !vsock_signals_restart()))
			return -EINTR;
	}
}

/* ---- the progress thread ------------------------------------------------ */

static _Atomic unsigned progress_generation = ~0u;

static void *progress_main(void *arg)
{
	unsigned gen = atomic_load(&fork_generation);
	thread_epfd = (int)(intptr_t)arg;
	thread_epfd_gen = gen;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	uint64_t last_stat = vsock_now_ns();   /* published by vsock_progress_start */
	uint64_t frames_seen_ns = 0;           /* when the wait fds last woke it */
	bool backoff = false;
	while (gen == atomic_load(&fork_generation)) {
		uint64_t now = vsock_now_ns();
		if (now - last_stat > 1000000000ull) {
			vsock_stat_publish();
			vsock_slots_collect();   /* sockets of processes that exited or died */
			vsock_slots_sweep();
			last_stat = now;
		}
		/* While the program itself runs the stack (it did just now: its
		 * calls run the timers and take the frames), this thread stays
		 * out of its way: running the stack too would only contend for
		 * the stack's lock and the CPU.  It looks again when the program
		 * has been away for APP_ACTIVE_NS.  The program is every process
		 * of this family (netif_poller_ns, shared): an idle nginx
		 * master's thread polling the frames its busy worker is taking
		 * would find the lock taken and the frames still there, again
		 * and again, spinning on the worker's CPU. */
		uint64_t app = atomic_load_explicit(&vsock_app_progress_ns, memory_order_relaxed);
		uint64_t family = atomic_load_explicit(&vsock_shm->netif_poller_ns, memory_order_relaxed);
		if (family > app && family <= now)
			app = family;
		if (now - app < APP_ACTIVE_NS) {
			/* Frames a thread sent before it went on computing without a
			 * system call leave now (at most APP_ACTIVE_NS late). */
			if (atomic_load_explicit(&vsock_tx_held_any, memory_order_relaxed))
				vsock_tx_flush_try();
			uint64_t wait = app + APP_ACTIVE_NS - now;
			struct timespec ts = { 0, (long)wait };
			vsock_sys(SYS_ppoll, NULL, 0, &ts, NULL, 0, 0);
			continue;
		}
		if (atomic_load_explicit(&vsock_tx_held_any, memory_order_relaxed))
			vsock_tx_flush_try();
		uint64_t next = vsock_prov->progress ? vsock_prov->progress(vsock_prov_ctx, now) : UINT64_MAX;
		struct pollfd pf[VSOCK_WAIT_FDS + 1];
		int fds[VSOCK_WAIT_FDS];
		int n = vsock_prov->wait_fds ? vsock_prov->wait_fds(vsock_prov_ctx, fds, VSOCK_WAIT_FDS) : 0;
		now = vsock_now_ns();
		uint64_t wait = next > now ? next - now : 0;
		if (wait > 100000000ull)
			wait = 100000000ull;
		/* A thread of the program sleeps on the wait fds: frames are its
		 * to take.  Timers are still kept, looked at every
		 * WATCHED_TIMER_NS: a timer the program armed since (an RTO, a
		 * delayed ACK) is at most that late, and an idle server's
		 * process does not wake a thousand times a second. */
		if (atomic_load_explicit(&vsock_shm->netif_watchers, memory_order_relaxed) > 0) {
			n = 0;
			if (wait > WATCHED_TIMER_NS)
				wait = WATCHED_TIMER_NS;
		}
		/* Frames still there right after the provider's turn: another
		 * thread holds the stack (maybe preempted on this very CPU) and
		 * will take them.  Polling them again at once would spin until
		 * the scheduler takes this thread away, so it leaves them alone
		 * for NETIF_BACKOFF_NS. */
		if (backoff) {
			n = 0;
			if (wait > NETIF_BACKOFF_NS)
				wait = NETIF_BACKOFF_NS;
		}
		int nnetif = n;
		for (int i = 0; i < n; i++)
			pf[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		/* A socket whose last fd another process closed, or that died
		 * with it: closed here while the program is idle. */
		pf[n++] = (struct pollfd){ .fd = vsock_slots_close_fd(), .events = POLLIN };
		struct timespec ts = { (time_t)(wait / 1000000000ull), (long)(wait % 1000000000ull) };
		backoff = false;
		if (vsock_sys(SYS_ppoll, pf, n, &ts, NULL, 0, 0) > 0) {
			if (pf[n - 1].revents)
				vsock_slots_collect();
			bool frames = false;
			for (int i = 0; i < nnetif; i++)
				frames |= pf[i].revents != 0;
			if (frames) {
				uint64_t t = vsock_now_ns();
				backoff = t - frames_seen_ns < NETIF_BACKOFF_NS;
				frames_seen_ns = t;
			}
		}
	}
	return NULL;
}

void vsock_progress_start(void)
{
	unsigned gen = atomic_load(&fork_generation);
	unsigned old = atomic_load(&progress_generation);
	if (old == gen || !atomic_compare_exchange_strong(&progress_generation, &old, gen))
		return;
	pthread_t t;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, 256 * 1024);
	/* What the thread would open as it starts is opened here, inside the
	 * program's system call: fds the thread made (and moved) meanwhile
	 * would shift the numbers the program's next fds get. */
	vsock_stat_publish();
	int ep = new_epfd();
	if (pthread_create(&t, &a, progress_main, (void *)(intptr_t)ep) != 0) {
		vsock_log(0, "cannot start the progress thread; timers run only inside socket calls");
		if (ep >= 0)
			vsock_own_fd_close(ep);
	}
	pthread_attr_destroy(&a);
}

void vsock_after_fork_child(void)
{
	atomic_fetch_add(&fork_generation, 1);
}
