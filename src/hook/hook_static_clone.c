/*
 * usnet hook — new threads of a statically linked program (hook_static.h).
 *
 * Every thread of the program needs a thread block of the hook's own glibc
 * for the hook and the handler (thread-local data, errno, malloc's cache).
 * Only glibc can make one, with pthread_create, so a clone that shares
 * memory is issued by a helper thread made for it: the helper points %gs at
 * its own block and issues the program's clone with the program's
 * registers; the child inherits that %gs base, and so the helper's block,
 * which the helper leaves alone, parked, until the child has exited (a
 * pidfd of the thread).  A vfork child (clone with CLONE_VFORK) borrows the
 * helper's block until it execs; the helper is blocked in the clone all
 * that time, as vfork's parent is.
 *
 * The child starts where the program's clone returns, on the stack it
 * gave (the site's address pushed on it, popped by the `ret` after the
 * system call), with the program's registers and %fs: the TLS of
 * CLONE_SETTLS, or the parent's.  A child without a stack of its own (vfork)
 * runs on the parent's, which is idle: the parent waits in the SIGSYS
 * handler until the helper has the result.
 *
 * Built with -mgeneral-regs-only like the dispatcher; glibc (pthread_create)
 * is called through usnet_hook_call_saved.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>

#include "hook_static.h"

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL   /* Linux >= 6.9: a pidfd of one thread */
#endif

/* The registers the clone is issued with, as hook_static_clone_issue
 * (hook_static_entry.S) loads them. */
struct clone_regs {
	long rbx, rbp, r12, r13, r14, r15;   /*  0 .. 40 */
	long rdi, rsi, rdx, r10, r8, r9;     /* 48 .. 88 */
	long rax;                            /* 96: the call */
	uintptr_t fs;                        /* 104: %fs the child starts with */
};
HOOK_HIDDEN long hook_static_clone_issue(const struct clone_regs *r);

struct clone_job {
	struct clone_regs regs;
	unsigned long mask;          /* the parent's signal mask, the child's */
	unsigned long flags;
	uintptr_t child_fs;          /* the program's thread pointer in the child */
	struct clone_args args3;     /* clone3's block, the site pushed on its stack */
	long result;
	int done;                    /* futex: the parent waits for 1 */
};

__thread const void *hook_static_uc __attribute__((tls_model("initial-exec")));
/* In the helper's thread block: the mask its child starts with. */
__thread unsigned long hook_static_child_mask __attribute__((tls_model("initial-exec"), visibility("hidden")));

static inline uintptr_t read_fsbase(void)
{
	uintptr_t v;
	__asm__ volatile("rdfsbase %0" : "=r"(v));
	return v;
}

static void finish(struct clone_job *job, long result)
{
	__atomic_store_n(&job->result, result, __ATOMIC_RELAXED);
	__atomic_store_n(&job->done, 1, __ATOMIC_RELEASE);
	RAW3(SYS_futex, &job->done, 1 /* FUTEX_WAKE */, 1);
}

static void *helper_main(void *arg)
{
	struct clone_job *job = arg;
	/* The child's thread block is this thread's: %gs (inherited by the
	 * child) points at it, and the hook's thread-local data in it is set
	 * up for the child. */
	uintptr_t tp = read_fsbase();
	__asm__ volatile("wrgsbase %0" : : "r"(tp) : "memory");
	hook_static_program_fs = job->child_fs;
	hook_static_depth = 0;
	hook_sud_selector = HOOK_SUD_BLOCK;
	hook_static_child_mask = job->mask;
	unsigned long flags = job->flags;
	/* the helper itself runs without SUD (a clone does not inherit it) */
	hook_sud_set(false);
	long r = hook_static_clone_issue(&job->regs);
	finish(job, r);   /* job is the parent's: not touched from here on */
	if (r <= 0)
		return NULL;
	if (flags & CLONE_VFORK) {   /* the child has exec'd or exited */
		hook_static_free_altstack();
		return NULL;
	}
	/* Keep the block until the child is gone. */
	long pidfd = RAW2(SYS_pidfd_open, r, (flags & CLONE_THREAD) ? PIDFD_THREAD : 0);
	if (pidfd < 0) {
		for (int never = 0;;)
			RAW4(SYS_futex, &never, 0 /* FUTEX_WAIT */, 0, 0);
	}
	struct pollfd pf = { (int)pidfd, POLLIN, 0 };
	while (RAW3(SYS_poll, &pf, 1, -1) < 0)
		;
	RAW1(SYS_close, pidfd);
	/* the alternate stack the hook gave the thread (in this block) */
	hook_static_free_altstack();
	return NULL;
}

static long start_helper(void *arg)
{
	struct clone_job *job = arg;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	/* signals are the program's business: the helper takes none */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_t t;
	int e = pthread_create(&t, &attr, helper_main, job);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return -e;
}

/* The child returns from the call into the site: the site's address at the
 * top of its stack.  0, or -errno. */
static long push_site(uintptr_t *sp, uintptr_t site)
{
	uintptr_t slot = *sp - 8;
	if (!hook_user_write((void *)slot, &site, sizeof site))
		return -EFAULT;
	*sp = slot;
	return 0;
}

long hook_static_clone(const struct usnet_syscall *sc)
{
	const ucontext_t *uc = hook_static_uc;
	if (!uc)
		return -ENOSYS;
	const greg_t *g = uc->uc_mcontext.gregs;
	struct clone_job job;
	for (size_t i = 0; i < sizeof job; i++)   /* no memset: general registers only */
		((volatile char *)&job)[i] = 0;
	job.regs.rbx = g[REG_RBX];
	job.regs.rbp = g[REG_RBP];
	job.regs.r12 = g[REG_R12];
	job.regs.r13 = g[REG_R13];
	job.regs.r14 = g[REG_R14];
	job.regs.r15 = g[REG_R15];
	job.regs.rdi = sc->args[0];
	job.regs.rsi = sc->args[1];
	job.regs.rdx = sc->args[2];
	job.regs.r10 = sc->args[3];
	job.regs.r8 = sc->args[4];
	job.regs.r9 = sc->args[5];
	job.regs.rax = sc->nr;
	const unsigned long *mask = (const unsigned long *)&uc->uc_sigmask;
	job.mask = mask[0];
	uintptr_t site = sc->site;
	long r;
	switch (sc->nr) {
	case SYS_vfork: {
		/* as clone(CLONE_VM | CLONE_VFORK | SIGCHLD) on the parent's stack */
		uintptr_t sp = (uintptr_t)g[REG_RSP];
		if ((r = push_site(&sp, site)) < 0)
			return r;
		job.flags = CLONE_VM | CLONE_VFORK | SIGCHLD;
		job.regs.rax = SYS_clone;
		job.regs.rdi = (long)job.flags;
		job.regs.rsi = (long)sp;
		job.regs.rdx = job.regs.r10 = job.regs.r8 = 0;
		break;
	}
	case SYS_clone: {
		job.flags = (unsigned long)sc->args[0];
		uintptr_t sp = sc->args[1] ? (uintptr_t)sc->args[1] : (uintptr_t)g[REG_RSP];
		if ((r = push_site(&sp, site)) < 0)
			return r;
		job.regs.rsi = (long)sp;
		if (job.flags & CLONE_SETTLS)
			job.child_fs = (uintptr_t)sc->args[4];
		break;
	}
	case SYS_clone3: {
		size_t size = (size_t)sc->args[1];
		if (size < 64 || size > sizeof job.args3)
			return size < 64 ? -EINVAL : -E2BIG;
		if (!hook_user_read(&job.args3, (const void *)sc->args[0], size))
			return -EFAULT;
		job.flags = job.args3.flags;
		uintptr_t sp;
		if (job.args3.stack) {
			if (job.args3.stack_size < 16)
				return -EINVAL;
			sp = (uintptr_t)(job.args3.stack + job.args3.stack_size);
		} else {
			sp = (uintptr_t)g[REG_RSP];
		}
		if ((r = push_site(&sp, site)) < 0)
			return r;
		if (job.args3.stack) {
			job.args3.stack_size = sp - job.args3.stack;
		} else {
			/* no stack given: the child's is the parent's, below the site */
			job.args3.stack = sp - 4096;
			job.args3.stack_size = 4096;
			/* the kernel starts the child at stack + size: sp */
		}
		job.regs.rdi = (long)&job.args3;
		if (job.flags & CLONE_SETTLS)
			job.child_fs = (uintptr_t)job.args3.tls;
		break;
	}
	default:
		return -ENOSYS;
	}
	if (!(job.flags & CLONE_SETTLS))
		job.child_fs = hook_static_program_fs;
	job.regs.fs = hook_static_program_fs;   /* the parent's, until CLONE_SETTLS */
	/* glibc's calls for the helper go straight to the kernel */
	hook_sud_selector = HOOK_SUD_ALLOW;
	r = usnet_hook_call_saved(start_helper, &job);
	if (r == 0) {
		while (!__atomic_load_n(&job.done, __ATOMIC_ACQUIRE))
			RAW4(SYS_futex, &job.done, 0 /* FUTEX_WAIT */, 0, 0);
		r = job.result;
	} else {
		hook_log_dec(0, "cannot start the helper thread of a static program's clone: error ", r);
	}
	hook_sud_selector = HOOK_SUD_BLOCK;
	return r;
}
