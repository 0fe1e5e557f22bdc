/*
 * usnet — the socket switch's internal interfaces (src/vsock/).
 *
 * Vocabulary
 *  - user socket: a socket a provider implements.  The program sees it as a
 *    real kernel fd of a file of its own (an unbound AF_UNIX datagram
 *    socket, marked as usnet's), so numbering, dup2 targets, EMFILE,
 *    FD_CLOEXEC, fork, SCM_RIGHTS and the socket's lifetime behave as Linux.
 *  - slot: the open-file-description of a user socket (provider handle,
 *    O_NONBLOCK, timeouts, options for hand-over), in memory shared with
 *    forked children; fds (in any process) reference slots through the
 *    socket's file.
 *  - fdmap: per-process table fd -> slot (> 0) or tracked epoll fd (< 0).
 *    The hook handler reads it to decide "not ours" in a few instructions.
 */
#ifndef USNET_VSOCK_H
#define USNET_VSOCK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "usnet/hook.h"
#include "usnet/provider.h"

/* ---- configuration and logging (config.c) ------------------------------ */
extern int vsock_log_level;   /* 0 errors, 1 info, 2 debug */
void vsock_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Configuration value ("backend", "ip", ...) from USNET_<KEY>, or NULL. */
const char *vsock_config(const char *key);
/* Real system call, never dispatched. */
#define vsock_sys(nr, a0, a1, a2, a3, a4, a5) \
	usnet_hook_syscall((nr), (long)(a0), (long)(a1), (long)(a2), (long)(a3), (long)(a4), (long)(a5))
uint64_t vsock_now_ns(void);

/* ---- slots and the fd table (fdtable.c) -------------------------------- */
#define VSOCK_MAX_SLOTS 8192
#define VSOCK_MAX_REPLAY 12

struct vsock_replay_opt { int level, name, val; };

#define VSOCK_CALLERS 8
/* A slot's ps before the provider made its socket. */
#define VSOCK_NO_PS UINT64_MAX

/*
 * A slot's lifetime is its file's: every user socket has a kernel file of
 * its own (an unbound AF_UNIX datagram socket, "the socket's file"), and
 * its fds in every process -- dups, fork copies, SCM_RIGHTS copies, the
 * fds an execve kept -- are that file's fds.  The kernel thus counts the
 * references across processes, and tells when the last one goes (close,
 * exit, a killed process, close-on-exec) through an inotify watch on the
 * file (IN_CLOSE, sent once, when the file is released).  Whichever process
 * reads that event closes the provider socket (vsock_slots_collect).
 */
struct vsock_slot {
	_Atomic uint32_t used;        /* 1 from vsock_slot_alloc until its file is gone */
	/* Calls in progress on it (vsock_slot_enter), counted per process so
	 * that those of a process killed inside one can be dropped: each entry
	 * is pid << 32 | count; calls beyond the entries' processes count in
	 * calls_untracked. */
	_Atomic uint64_t calls[VSOCK_CALLERS];
	_Atomic uint32_t calls_untracked;
	_Atomic uint32_t file_gone;   /* enum vsock_slot_close */
	int32_t creator;              /* the process that made the provider socket */
	int32_t closer;               /* the process closing it (SLOT_CLOSING) */
	int32_t wd;                   /* inotify watch of its file; 0: no file (yet) */
	uint64_t ino;                 /* its file's inode (found again in an fd received or inherited) */
	_Atomic uint32_t gen;         /* bumped by every provider notify */
	_Atomic uint64_t wake_mask;   /* waiters (epoll sets) holding it, one bit each */
	_Atomic uint32_t status;      /* O_NONBLOCK (the file status flag) */
	int domain, type, protocol;   /* type without SOCK_NONBLOCK/CLOEXEC */
	/* The provider handle, VSOCK_NO_PS until the provider made the
	 * socket: socket() and accept() have the provider write it here
	 * itself, so that a process killed right after leaves the sweep a
	 * provider socket to close rather than one nobody knows of. */
	usnet_psock_t ps;
	int64_t rcvtimeo_ns, sndtimeo_ns;   /* 0: none */
	int nreplay;                  /* options to replay on hand-over */
	struct vsock_replay_opt replay[VSOCK_MAX_REPLAY];
};

/* A waiter: one epoll set of one process, woken through an eventfd of that
 * process when a socket it holds is notified (rather than every sleeping
 * thread through the bell).  Its bit in a slot's wake_mask is set when the
 * socket is added to the set. */
#define VSOCK_WAITERS 64
struct vsock_waiter {
	_Atomic int32_t pid;          /* the process owning it; 0: free */
	int32_t efd;                  /* its eventfd (an fd of that process) */
	_Atomic uint32_t sleeping;    /* threads sleeping on it */
};

/* State shared by every process that forked from the first one. */
struct vsock_shared {
	_Atomic uint32_t sleepers;    /* threads sleeping in vsock_sleep (all listen to the bell) */
	_Atomic uint32_t broadcast_sleepers;   /* ... of which need the bell for every notification */
	_Atomic uint32_t netif_watchers;       /* ... of which sleep on the provider's wait fds */
	_Atomic int32_t netif_poller; /* tid of the thread that last found user sockets ready */
	_Atomic uint64_t netif_poller_ns;      /* when a thread of the program last ran the provider */
	struct vsock_waiter waiters[VSOCK_WAITERS];
	_Atomic uint32_t alloc_hint;
	/* inotify watch descriptor -> slot (vsock_wd_*, fdtable.c): open
	 * addressing by wd, under a robust process-shared lock. */
	pthread_mutex_t wd_lock;
	struct vsock_wd_entry { int32_t wd; int32_t slot; } wd_table[2 * VSOCK_MAX_SLOTS];
	struct vsock_slot slots[VSOCK_MAX_SLOTS];
};

extern struct vsock_shared *vsock_shm;
extern _Atomic int32_t *vsock_fdmap;   /* fd -> slot+1 (>0) or -(epoll+1) (<0) */
extern int vsock_fdmap_size;
extern _Atomic int vsock_user_fds;     /* fds mapped (sockets + epolls with user interest) */

static inline int32_t vsock_fd_entry(long fd)
{
	if (fd < 0 || fd >= vsock_fdmap_size || !vsock_fdmap)
		return 0;
	return atomic_load_explicit(&vsock_fdmap[fd], memory_order_acquire);
}
/* Kernel epoll fds this process created (set by epoll_create*, never
 * cleared: a hint, confirmed with the kernel before it is acted on).  An
 * epoll fd nested in another before it holds any user socket is found
 * through it.  Fds past the end are never hinted. */
#define VSOCK_EPOLL_HINT_MAX 65536
extern unsigned char vsock_epoll_hint[VSOCK_EPOLL_HINT_MAX];
static inline bool vsock_maybe_epoll(long fd)
{
	return fd >= 0 && fd < VSOCK_EPOLL_HINT_MAX && vsock_epoll_hint[fd];
}
extern long vsock_pid;
/* When a thread of the program last ran the provider (vsock_provider_progress). */
extern _Atomic uint64_t vsock_app_progress_ns;
/* The slot of fd, or NULL when fd is not a user socket. */
static inline struct vsock_slot *vsock_fd_slot(long fd)
{
	int32_t e = vsock_fd_entry(fd);
	return e > 0 ? &vsock_shm->slots[e - 1] : NULL;
}
static inline uint32_t vsock_slot_index(const struct vsock_slot *s)
{
	return (uint32_t)(s - vsock_shm->slots);
}

int  vsock_fdtable_init(void);
/* A new slot (no file yet), or NULL (ENFILE). */
struct vsock_slot *vsock_slot_alloc(void);
/* Give back a slot that never got a file (its provider socket, if any, is
 * the caller's to close). */
void vsock_slot_discard(struct vsock_slot *s);
/* Give the slot its file, at the lowest free fd, and map that fd to it;
 * returns the fd or -errno (EMFILE...): then the slot has no file. */
int  vsock_slot_open_file(struct vsock_slot *s, bool cloexec);
/* Close the provider sockets whose files are gone (everywhere): reads the
 * pending inotify events.  Called after any close of a user socket's fd by
 * this process, and by the progress thread for the other processes'. */
void vsock_slots_collect(void);
/* The inotify fd the progress thread polls for vsock_slots_collect(). */
int  vsock_slots_close_fd(void);
/* fd refers to a user socket's file that this process has not mapped (it
 * arrived with SCM_RIGHTS, pidfd_getfd or across execve): map it to its
 * slot.  Returns the slot, or NULL (not a user socket's file, or one of a
 * stack this process has not attached: then one line says so). */
struct vsock_slot *vsock_fd_adopt(int fd);
/* How far a slot's close has come (vsock_slot.file_gone). */
enum vsock_slot_close {
	SLOT_LIVE,            /* its file is open somewhere */
	SLOT_FILE_GONE,       /* released; the last call on it closes it */
	SLOT_CLOSING,         /* the provider socket is being closed */
	SLOT_CLOSE_OWED,      /* to be closed by its creator (process-local handles) */
};
/* The provider's socket handles mean the same in every process (the
 * built-in stack's, in shared memory); otherwise only the process that
 * made a socket can close it (the kernel provider's fds). */
extern bool vsock_prov_handles_shared;
/* The closes owed by this process, and the calls of processes that died
 * inside one (progress thread, about once a second). */
void vsock_slots_sweep(void);
/* A call on fd, whose slot was looked up as s, begins (Linux's fget): a
 * close of the last fd meanwhile -- by another thread or process -- leaves
 * the provider socket open until the call ends with vsock_slot_leave(), so
 * the call never goes on with a socket that was closed and given to another
 * connection.  False when fd no longer maps to s or s is closing. */
bool vsock_slot_enter(int fd, struct vsock_slot *s);
void vsock_slot_leave(struct vsock_slot *s);
/* This process may receive user sockets over UNIX sockets (SCM_RIGHTS) and
 * take them into its fd table: it runs with a stack configured, whether or
 * not it made a socket yet (a worker handed its connections). */
extern bool vsock_rights_adopted;
/* Whether fd is a user socket's file (of any stack), by its marker. */
bool vsock_fd_is_user_file(int fd);
void vsock_fd_map(int fd, struct vsock_slot *s);
/* Forget fd (its file stays open: the caller closes or replaces it). */
void vsock_fd_unmap(int fd);
/* User sockets' files inherited over execve: this image attaches to their
 * stack and keeps them at the same fd numbers; where it cannot (no owner to
 * attach through), they are closed with a log line. */
void vsock_adopt_inherited(void);

/* ---- the switch's own fds (ownfds.c) ------------------------------------ */
/* The fds usnet keeps for itself are hidden from the program: above its
 * soft RLIMIT_NOFILE where the hard limit leaves room, and passed by (as if
 * not open) by its close, close_range, dup2/dup3 and /proc/self/fd listing. */
extern _Atomic int vsock_own_lo, vsock_own_hi, vsock_own_count;
/* fd may be one of them (the hook handler's quick test). */
static inline bool vsock_own_fd_maybe(long fd)
{
	return fd >= atomic_load_explicit(&vsock_own_lo, memory_order_relaxed) &&
	       fd <= atomic_load_explicit(&vsock_own_hi, memory_order_relaxed);
}
/* Move fd to the hidden range (closing it where it was) and take it as
 * usnet's; returns its number now (fd itself where it cannot move).  With
 * a holder -- the variable the switch reads it from, updated here and
 * whenever it moves again -- it can later move out of the program's way. */
int  vsock_own_fd_hide(int fd, int *holder);
/* Take fd as usnet's where it is (its number was copied elsewhere). */
void vsock_own_fd_note(int fd);
/* usnet closes fd (or it was closed): no longer its own. */
void vsock_own_fd_forget(int fd);
void vsock_own_fd_close(int fd);
/* fd is one of usnet's own, open now. */
bool vsock_own_fd(int fd);
/* dup2/dup3 onto newfd, one of usnet's own: moved away first. */
long vsock_own_dup_onto(long nr, int oldfd, int newfd, int flags);
/* close_range(2) that passes usnet's own fds by. */
long vsock_own_close_range(unsigned first, unsigned last, unsigned flags);
/* getdents64(2) that leaves usnet's own fds out of /proc/self/fd. */
long vsock_own_getdents(int fd, void *buf, long count);
/* The program changed its fd limit: own fds within it move above it. */
void vsock_own_limit_changed(void);
/* In a forked child, before anything else. */
void vsock_own_fds_after_fork(void);

/* ---- attaching to the interface's stack (attach.c) ----------------------- */
#include "usnet/netif_share.h"
/* What the owner handed this process (attach_proto.h: enum attach_fd). */
struct vsock_attachment {
	bool attached;
	bool init;                    /* this process makes the shared state */
	int reply;                    /* ... and tells the owner here when done */
	int fds[4];                   /* switch memory, provider memory, bell, close-watch */
	int owner_pid;
	char stack[96];               /* the stack's name: IFACE@NETNS (usnet stat) */
	struct usnet_netif_share share;
};
extern struct vsock_attachment vsock_attachment;
/* Attach to the stack of the configured interface through its owner:
 * 1 attached (vsock_attachment filled), 0 no owner (this process has the
 * interface to itself), or -errno with a line in err. */
int  vsock_attach(char *err, size_t errlen);
/* The first process made the shared state (ok) or failed to: tell the owner. */
void vsock_attach_done(bool ok);
/* Map `size` bytes of attached shared memory `which` (ATTACH_FD_SWITCH,
 * ATTACH_FD_PROVIDER); NULL when it is smaller or cannot be mapped. */
void *vsock_attach_map(int which, size_t size);

/* ---- the provider (provider.c) ----------------------------------------- */
extern const struct usnet_provider *vsock_prov;
extern void *vsock_prov_ctx;
/* Load and initialise the configured provider once; 0 or -errno. */
int  vsock_provider_ready(void);
/* Whether the provider is up (initialised and ready), without trying:
 * vsock_prov is set while its init still runs in another thread. */
bool vsock_provider_up(void);
/* Kernel fd mirroring the socket's readiness, or -1. */
int  vsock_slot_kernel_fd(struct vsock_slot *s);
uint32_t vsock_slot_events(struct vsock_slot *s);
void vsock_provider_progress(void);

/* ---- transmit batching (io.c) ------------------------------------------------ */
/* The provider queues the frames of a send until a flush (the built-in
 * stack, usnet_stack_prov_tx_batch; USNET_TX_BATCH=0 turns it off). */
extern bool vsock_tx_batching;
/* This thread sent frames that have not been flushed: it flushes before it
 * sleeps or makes a system call other than I/O on a user socket and the
 * quiet calls (handler.c). */
extern __thread int vsock_tx_held __attribute__((tls_model("initial-exec")));
/* Some thread did (the progress thread flushes what a thread that went on
 * computing left held). */
extern _Atomic int vsock_tx_held_any;
/* Make the frames held by every thread leave now. */
void vsock_tx_flush(void);
/* A provider call that may have queued frames (a send, an uncork) returned:
 * this thread holds them. */
void vsock_tx_note_held(void);
/* The same, unless another thread is inside the provider (it flushes). */
void vsock_tx_flush_try(void);

/* ---- sleeping (wait.c) --------------------------------------------------- */
/* Wake every thread sleeping in vsock_sleep (all processes). */
void vsock_bell_ring(void);
/* A provider notified the slot: wake the sleepers that may care (its
 * waiters, through their eventfds; everybody, through the bell, where a
 * sleeper waits without a waiter or in another process). */
void vsock_wake_slot(struct vsock_slot *s);
/* A waiter for an epoll set of this process: its index, or -1 (none left:
 * the set's sleepers then use the bell). */
int  vsock_waiter_alloc(void);
/* Release a waiter of this process (one inherited from a parent is left alone). */
void vsock_waiter_free(int w);
/* Whether waiter w belongs to this process (a forked child inherits the
 * indexes of its parent's sets, not their eventfds). */
bool vsock_waiter_mine(int w);
/* Wake the threads sleeping on waiter w (-1: everybody, through the bell). */
void vsock_wake_waiter(int w);
/* The calling thread found user sockets ready: it becomes the one that
 * sleeps on the provider's wait fds, so that frames wake the thread that
 * has work rather than every sleeper. */
void vsock_note_active(void);
int  vsock_bell_init(void);
/* The bell's fd: pollable, and never in any epoll set of the program. */
int  vsock_bell_fd(void);
/* Sleep until the bell rings, waiter `waiter` is woken (-1: the caller
 * waits for any notification), one of kfds is ready, the deadline passes
 * (absolute monotonic ns; INT64_MAX: none) or a signal arrives.  `recheck`
 * is called after registering as a sleeper, to close the race with a
 * notification; when it returns true no sleep happens.  Returns the number
 * of kfds with revents (>= 0) or -EINTR. */
int  vsock_sleep(struct pollfd *kfds, int nk, int64_t deadline, const sigset_t *mask, int waiter,
		 bool (*recheck)(void *), void *arg);
/* Wait until the slot has any of `events` (or ERR/HUP), or the deadline.
 * 0 ready, -EAGAIN timed out, -EINTR. */
int  vsock_wait_slot(struct vsock_slot *s, uint32_t events, int64_t deadline);
/* Start the progress thread of this process if it is not running. */
void vsock_progress_start(void);
void vsock_after_fork_child(void);
/* Scratch memory of the calling thread (at least `need` bytes), one area per
 * user so that nested users do not overlap. */
enum vsock_scratch_area { VSOCK_SCRATCH_IO, VSOCK_SCRATCH_POLL, VSOCK_SCRATCH_SLEEP, VSOCK_SCRATCH_N };
void *vsock_scratch(enum vsock_scratch_area area, size_t need);

/* ---- system calls (dispatch.c, sockcalls.c, pollselect.c, epoll.c) ------ */
long vsock_dispatch(struct usnet_syscall *sc);
long vsock_sock_call(struct usnet_syscall *sc);
long vsock_poll_call(struct usnet_syscall *sc);
long vsock_epoll_call(struct usnet_syscall *sc);
/* epoll fds nested into others: user readiness of a tracked epoll fd. */
bool vsock_epoll_has_user_ready(int epfd);
void vsock_epoll_forget_fd(int fd);
/* fd, a user socket, became a kernel socket (vsock_handover): every epoll
 * set holding it hands its registration (events, data) to the set's kernel
 * epoll. */
void vsock_epoll_handover_fd(int fd);

/* Map provider readiness to what poll() reports for `events`. */
static inline short vsock_poll_revents(uint32_t ev, short want)
{
	short r = 0;
	if (ev & USNET_PROVIDER_EV_IN) r |= want & (POLLIN | POLLRDNORM);
	if (ev & USNET_PROVIDER_EV_OUT) r |= want & (POLLOUT | POLLWRNORM);
	if (ev & USNET_PROVIDER_EV_PRI) r |= want & POLLPRI;
	if (ev & USNET_PROVIDER_EV_RDHUP) r |= want & POLLRDHUP;
	if (ev & USNET_PROVIDER_EV_ERR) r |= POLLERR;
	if (ev & USNET_PROVIDER_EV_HUP) r |= POLLHUP;
	return r;
}

/* The program's pointers in socket call NR with arguments A: 0, or -EFAULT
 * for one the call would read or write that cannot be (user_args.c). */
int vsock_user_args_check(long nr, const long *a);

/* Statistics file for `usnet stat` (stat.c). */
void vsock_stat_publish(void);
void vsock_stat_remove(void);

#endif /* USNET_VSOCK_H */
