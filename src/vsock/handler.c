/*
 * usnet switch — the hook handler: the first code every system call of the
 * program reaches.  Built with -mgeneral-regs-only: deciding "not ours" and
 * passing the call on must not touch vector registers (the hook saves only
 * the general ones).  Only calls that may concern a user socket enter the
 * switch proper, through usnet_hook_call_saved().
 */
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "vsock.h"
#include "vsock_handler.h"

enum call_kind {
	K_NONE = 0,
	K_FD0,        /* args[0] is an fd (socket or tracked epoll) */
	K_IO,         /* as K_FD0; on a user socket, moves data (no transmit flush first) */
	K_RECVMSG,    /* as K_IO; on a kernel fd, may receive user sockets (SCM_RIGHTS) */
	K_GETFD,      /* pidfd_getfd: the fd taken may be a user socket */
	K_FD01,       /* args[0] or args[1] (dup2, dup3, sendfile) */
	K_FD02,       /* args[0] or args[2] (splice) */
	K_SOCKET,     /* socket(): AF_INET and AF_INET6 only */
	K_FDSET,      /* poll/select: any user fd in the process */
	K_EPOLL_CTL,  /* args[0] tracked epoll or args[2] a user fd or (ADD) an epoll fd */
	K_EPOLL_NEW,  /* epoll_create*: noted by the switch */
	K_EXIT,       /* exit_group: the process's user sockets are released first */
	K_RANGE,      /* close_range */
	K_SIGACTION,  /* rt_sigaction: noted, then passed */
	K_CLOSE,      /* close: a user socket, or one of usnet's own fds */
	K_DUP2,       /* dup2/dup3: args[0] or args[1] user, or args[1] usnet's own */
	K_LIST,       /* getdents64: a listing of /proc/self/fd hides usnet's own fds */
	K_LIMIT,      /* setrlimit/prlimit64: usnet's own fds stay above the fd limit */
};

#define NR_TABLE 512
static const unsigned char call_kind[NR_TABLE] = {
	[SYS_read] = K_IO, [SYS_write] = K_IO, [SYS_readv] = K_IO, [SYS_writev] = K_IO,
	[SYS_pread64] = K_FD0, [SYS_pwrite64] = K_FD0, [SYS_preadv] = K_FD0, [SYS_pwritev] = K_FD0,
	[SYS_preadv2] = K_FD0, [SYS_pwritev2] = K_FD0,
	[SYS_close] = K_CLOSE, [SYS_dup] = K_FD0, [SYS_fcntl] = K_FD0, [SYS_ioctl] = K_FD0,
	[SYS_bind] = K_FD0, [SYS_listen] = K_FD0, [SYS_accept] = K_FD0, [SYS_accept4] = K_FD0,
	[SYS_connect] = K_FD0, [SYS_shutdown] = K_FD0,
	[SYS_getsockopt] = K_FD0, [SYS_setsockopt] = K_FD0,
	[SYS_getsockname] = K_FD0, [SYS_getpeername] = K_FD0,
	[SYS_sendto] = K_IO, [SYS_recvfrom] = K_IO, [SYS_sendmsg] = K_IO, [SYS_recvmsg] = K_RECVMSG,
	[SYS_sendmmsg] = K_IO, [SYS_recvmmsg] = K_RECVMSG,
	[SYS_epoll_wait] = K_FD0, [SYS_epoll_pwait] = K_FD0, [SYS_epoll_pwait2] = K_FD0,
	[SYS_dup2] = K_DUP2, [SYS_dup3] = K_DUP2, [SYS_sendfile] = K_FD01, [SYS_splice] = K_FD02,
	[SYS_socket] = K_SOCKET,
	[SYS_poll] = K_FDSET, [SYS_ppoll] = K_FDSET, [SYS_select] = K_FDSET, [SYS_pselect6] = K_FDSET,
	[SYS_epoll_ctl] = K_EPOLL_CTL,
#ifdef SYS_epoll_create
	[SYS_epoll_create] = K_EPOLL_NEW,
#endif
	[SYS_epoll_create1] = K_EPOLL_NEW,
	[SYS_exit_group] = K_EXIT,
	[SYS_close_range] = K_RANGE,
	[SYS_rt_sigaction] = K_SIGACTION,
	[SYS_getdents64] = K_LIST,
	[SYS_setrlimit] = K_LIMIT, [SYS_prlimit64] = K_LIMIT,
#ifdef SYS_pidfd_getfd
	[SYS_pidfd_getfd] = K_GETFD,
#endif
};

/* Calls that do not sleep, made by servers between the replies of one batch
 * of requests (nginx: openat, fstat, close of the file and TCP_CORK around
 * each reply; malloc's mmap and brk): frames held for a transmit flush stay
 * held across them, so that the batch still leaves with one kick.  (open of
 * a FIFO can sleep: the progress thread sends what is held within about a
 * millisecond, as for a thread that computes.)  On a user socket (args[0]),
 * the option and name calls, fcntl and sendfile are as quiet. */
static const unsigned char quiet_call[NR_TABLE] = {
	[SYS_openat] = 1, [SYS_newfstatat] = 1, [SYS_fstat] = 1, [SYS_statx] = 1, [SYS_lseek] = 1,
	[SYS_pread64] = 1, [SYS_brk] = 1, [SYS_mmap] = 1, [SYS_munmap] = 1, [SYS_madvise] = 1,
	[SYS_mremap] = 1, [SYS_getpid] = 1, [SYS_gettid] = 1, [SYS_clock_gettime] = 1,
	[SYS_gettimeofday] = 1, [SYS_close] = 1,
#ifdef SYS_open
	[SYS_open] = 1, [SYS_stat] = 1, [SYS_lstat] = 1,
#endif
};
static const unsigned char quiet_on_user[NR_TABLE] = {
	[SYS_setsockopt] = 1, [SYS_getsockopt] = 1, [SYS_getsockname] = 1, [SYS_getpeername] = 1,
	[SYS_fcntl] = 1, [SYS_sendfile] = 1,
};

/* Signals whose handler is installed without SA_RESTART: a blocking socket
 * call they interrupt fails with EINTR; otherwise the switch restarts it, as
 * Linux does.  (Which signal interrupted a sleep is not known, so one such
 * handler makes every interruption an EINTR.) */
#define NSIG_TRACKED 65
static unsigned char interrupting[NSIG_TRACKED];
static _Atomic int interrupting_count;

/* The kernel's struct sigaction layout on x86-64 and arm64. */
struct k_sigaction_view { unsigned long handler; unsigned long flags; };
#define K_SA_RESTART 0x10000000UL

static void note_sigaction(const struct usnet_syscall *sc)
{
	long sig = sc->args[0];
	const struct k_sigaction_view *act = (const void *)sc->args[1];
	/* a bad act is the kernel's EFAULT, not a crash here */
	if (!act || sig <= 0 || sig >= NSIG_TRACKED || usnet_hook_user_check(act, sizeof *act, 0))
		return;
	/* SIG_DFL (0) and SIG_IGN (1) run no handler. */
	unsigned char now = act->handler > 1 && !(act->flags & K_SA_RESTART);
	if (now != interrupting[sig]) {
		interrupting[sig] = now;
		atomic_fetch_add(&interrupting_count, now ? 1 : -1);
	}
}

bool vsock_signals_restart(void)
{
	return atomic_load_explicit(&interrupting_count, memory_order_relaxed) == 0;
}

/* Set while the switch runs in this thread: calls it makes through libc
 * (a provider, a backend) go straight to the kernel. */
static __thread int in_switch __attribute__((tls_model("initial-exec")));

void vsock_handler_leave_switch(int *saved)
{
	*saved = in_switch;
	in_switch = 0;
}

void vsock_handler_reenter_switch(int saved)
{
	in_switch = saved;
}

static long enter_switch(void *arg)
{
	in_switch = 1;
	long r = vsock_dispatch(arg);
	in_switch = 0;
	return r;
}

static long enter_saved(void *arg)
{
	return usnet_hook_call_saved(enter_switch, arg);
}

static long flush_switch(void *arg)
{
	(void)arg;
	in_switch = 1;
	vsock_tx_flush();
	in_switch = 0;
	return 0;
}

static long flush_saved(void *arg)
{
	return usnet_hook_call_saved(flush_switch, arg);
}

/*
 * The switch runs on a stack of its own, one per thread: the program's stack
 * may have little room where it makes a system call (a Go goroutine's stack
 * guarantees a few hundred bytes), and the switch needs kilobytes (the saved
 * vector state alone can take 2.7 KiB).  A signal handler that enters the
 * switch while this thread sleeps in it stays on the switch stack, deeper.
 */
#define SWITCH_STACK_BYTES (256 * 1024)
#define GUARD_BYTES 4096
static __thread char *switch_stack_base __attribute__((tls_model("initial-exec")));

#if defined(__x86_64__)
static long run_on_stack(long (*fn)(void *), void *arg, char *top)
{
	register long rdi __asm__("rdi") = (long)arg;
	long ret;
	__asm__ volatile(
		"mov %%rsp, %%rbx\n\t"
		"mov %[top], %%rsp\n\t"
		"call *%[fn]\n\t"
		"mov %%rbx, %%rsp\n\t"
		: "=a"(ret), "+r"(rdi)
		: [fn] "r"(fn), [top] "r"(top)
		: "rbx", "rcx", "rdx", "rsi", "r8", "r9", "r10", "r11", "memory", "cc");
	return ret;
}

/* Run fn(sc) (which saves the full register state first) on this thread's
 * switch stack. */
static long on_switch_stack(long (*fn)(void *), struct usnet_syscall *sc)
{
	char *base = switch_stack_base;
	if (!base) {
		long m = usnet_hook_syscall(SYS_mmap, 0, SWITCH_STACK_BYTES + GUARD_BYTES, PROT_READ | PROT_WRITE,
					    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
		if (m < 0 && m > -4096)
			return fn(sc);   /* no memory: try on the program's stack */
		usnet_hook_syscall(SYS_mprotect, m, GUARD_BYTES, PROT_NONE, 0, 0, 0);
		switch_stack_base = base = (char *)m;
	}
	char here;
	char *top = base + GUARD_BYTES + SWITCH_STACK_BYTES;
	if (&here > base && &here < top)   /* already on it (a nested entry) */
		return fn(sc);
	return run_on_stack(fn, sc, top - 64);
}
#else
static long on_switch_stack(long (*fn)(void *), struct usnet_syscall *sc)
{
	return fn(sc);
}
#endif

long vsock_handler(struct usnet_syscall *sc)
{
	unsigned long nr = (unsigned long)sc->nr;
	if (in_switch)
		return USNET_HOOK_PASS;
	unsigned kind = nr < NR_TABLE ? call_kind[nr] : K_NONE;
	/* Frames this thread sent wait for a flush (transmit batching): they
	 * leave before any system call but more I/O on user sockets and the
	 * quiet calls above, so that none is held while the thread blocks or
	 * talks to another process. */
	if (__builtin_expect(vsock_tx_held, 0)) {
		bool known = nr < NR_TABLE;
		if (!(known && quiet_call[nr]) &&
		    !((kind == K_IO || kind == K_RECVMSG || (known && quiet_on_user[nr])) &&
		      vsock_fd_entry((int)sc->args[0]) > 0))
			on_switch_stack(flush_saved, sc);
	}
	switch (kind) {
	case K_NONE:
		return USNET_HOOK_PASS;
	case K_IO:
	case K_FD0:
		if (!vsock_fd_entry((int)sc->args[0]))
			return USNET_HOOK_PASS;
		break;
	case K_RECVMSG:
		if (!vsock_fd_entry((int)sc->args[0]) && !vsock_rights_adopted)
			return USNET_HOOK_PASS;
		break;
	case K_GETFD:
		if (!vsock_rights_adopted)
			return USNET_HOOK_PASS;
		break;
	case K_FD01:
		if (!vsock_fd_entry((int)sc->args[0]) && !vsock_fd_entry((int)sc->args[1]))
			return USNET_HOOK_PASS;
		break;
	case K_FD02:
		if (!vsock_fd_entry((int)sc->args[0]) && !vsock_fd_entry((int)sc->args[2]))
			return USNET_HOOK_PASS;
		break;
	case K_SOCKET:
		if (sc->args[0] != AF_INET && sc->args[0] != AF_INET6)
			return USNET_HOOK_PASS;
		break;
	case K_CLOSE:
		if (!vsock_fd_entry((int)sc->args[0]) && !vsock_own_fd_maybe(sc->args[0]))
			return USNET_HOOK_PASS;
		break;
	case K_DUP2:
		if (!vsock_fd_entry((int)sc->args[0]) && !vsock_fd_entry((int)sc->args[1]) &&
		    !vsock_own_fd_maybe(sc->args[1]))
			return USNET_HOOK_PASS;
		break;
	case K_LIST:
	case K_LIMIT:
		if (atomic_load_explicit(&vsock_own_count, memory_order_relaxed) == 0)
			return USNET_HOOK_PASS;
		break;
	case K_RANGE:
		if (atomic_load_explicit(&vsock_user_fds, memory_order_relaxed) == 0 &&
		    atomic_load_explicit(&vsock_own_count, memory_order_relaxed) == 0)
			return USNET_HOOK_PASS;
		break;
	case K_FDSET:
	case K_EXIT:
		if (atomic_load_explicit(&vsock_user_fds, memory_order_relaxed) == 0)
			return USNET_HOOK_PASS;
		break;
	case K_EPOLL_CTL:
		if (!vsock_fd_entry((int)sc->args[0]) && !vsock_fd_entry((int)sc->args[2]) &&
		    !(sc->args[1] == EPOLL_CTL_ADD && vsock_maybe_epoll(sc->args[2])))
			return USNET_HOOK_PASS;
		break;
	case K_EPOLL_NEW:
		break;
	case K_SIGACTION:
		note_sigaction(sc);
		return USNET_HOOK_PASS;
	default:
		return USNET_HOOK_PASS;
	}
	return on_switch_stack(enter_saved, sc);
}
