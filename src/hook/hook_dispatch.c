/*
 * usnet hook — the dispatcher: every hooked call (rewritten site or SUD)
 * comes here with its registers in a struct hook_frame.
 *
 * Built with -mgeneral-regs-only: the pass-through path touches no vector
 * register, so the entry saves only general registers.  Code that may use
 * vector registers (the rewriter, ordinary code) is reached through
 * usnet_hook_call_saved().
 */
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "hook_internal.h"
#include "hook_static.h"

struct hook_state hook_state;

/* The vfork path keeps the site address here while the child borrows the
 * stack (hook_entry.S). */
__thread uintptr_t usnet_hook_vfork_ret __attribute__((tls_model("initial-exec"), visibility("hidden")));

__thread struct hook_thread_stack usnet_hook_tstack __attribute__((tls_model("initial-exec")));

/* clone3's argument block, as far as the hook needs it. */
struct clone3_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

static inline bool is_error(long r)
{
	return (unsigned long)r > -4096UL;
}

static inline long issue(const struct usnet_syscall *sc)
{
	return hook_raw_syscall(sc->nr, sc->args[0], sc->args[1], sc->args[2],
				  sc->args[3], sc->args[4], sc->args[5]);
}

/* Reading or writing the program's memory at an address it gave: through the
 * kernel, so that a bad pointer gives an error (the call then goes to the
 * kernel unchanged and fails with EFAULT) instead of a crash in the hook. */
struct iov {
	const void *base;
	size_t len;
};

static long user_copy(void *dst, const void *src, size_t n, bool to_user)
{
	struct iov local = { to_user ? src : dst, n }, remote = { to_user ? dst : src, n };
	long pid = RAW0(SYS_getpid);
	return RAW6(to_user ? SYS_process_vm_writev : SYS_process_vm_readv, pid, &local, 1,
		    &remote, 1, 0);
}

bool hook_user_read(void *dst, const void *src, size_t n)
{
	return user_copy(dst, src, n, false) == (long)n;
}

size_t hook_user_read_some(void *dst, const void *src, size_t n)
{
	long r = user_copy(dst, src, n, false);
	return r > 0 ? (size_t)r : 0;
}

bool hook_user_write(void *dst, const void *src, size_t n)
{
	return user_copy(dst, src, n, true) == (long)n;
}

static inline void frame_from_call(struct hook_frame *f, const struct usnet_syscall *sc)
{
	if ((const void *)f == (const void *)sc)
		return;   /* the rewrite path: the frame is the call */
	f->rax = sc->nr;
	f->rdi = sc->args[0];
	f->rsi = sc->args[1];
	f->rdx = sc->args[2];
	f->r10 = sc->args[3];
	f->r8 = sc->args[4];
	f->r9 = sc->args[5];
}

void usnet_hook_after_special(struct hook_frame *f)
{
	if (!hook_state.cfg.after_pass || !hook_wants(f->rax))
		return;
	struct usnet_syscall sc;
	sc.nr = f->rax;
	sc.args[0] = f->orig_rdi;
	sc.args[1] = f->orig_rsi;
	sc.args[2] = f->rdx;
	sc.args[3] = f->r10;
	sc.args[4] = f->r8;
	sc.args[5] = f->r9;
	sc.site = f->site;
	hook_state.cfg.after_pass(&sc, f->ret);
}

void usnet_hook_thread_start(void)
{
	if (!hook_state.sud_on)
		return;
	/* A real thread gets an alternate stack; a process sharing our memory
	 * (posix_spawn's child, about to exec) does not: the stack would stay
	 * behind in our address space. */
	if (RAW0(SYS_gettid) != RAW0(SYS_getpid))
		hook_sud_give_altstack();
	hook_sud_set(true);
}

int hook_fast_publish(void)
{
	uintptr_t page = (uintptr_t)&usnet_hook_fast & ~4095UL;
	size_t len = (((uintptr_t)(&usnet_hook_fast + 1) + 4095) & ~4095UL) - page;
	long r = RAW3(SYS_mprotect, page, len, PROT_READ | PROT_WRITE | PROT_EXEC);
	if (r < 0)
		return (int)r;
	usnet_hook_fast.handler = hook_state.cfg.handler;
	usnet_hook_fast.after_pass = hook_state.cfg.after_pass;
	uintptr_t tp;
	__asm__("mov %%fs:0, %0" : "=r"(tp));   /* the thread pointer (TCB self-pointer) */
	usnet_hook_fast.tstack_off = (long)((uintptr_t)&usnet_hook_tstack - tp);
	RAW3(SYS_mprotect, page, len, PROT_READ | PROT_EXEC);
	return 0;
}

void usnet_hook_child_after_fork(void)
{
	if (hook_state.sud_on)
		hook_sud_set(true);
	if (hook_state.cfg.child_after_fork)
		hook_state.cfg.child_after_fork();
}

struct rewrite_job {
	uintptr_t start, end;
	int prot;
	const struct hook_mapping *m;
};

static long rewrite_job_run(void *arg)
{
	struct rewrite_job *j = arg;
	return hook_rewrite_region(j->start, j->end, j->prot, j->m);
}

/* New executable memory: rewrite it before it can run. */
static void rewrite_new_code(uintptr_t start, size_t len, int prot)
{
	if (!hook_state.rewrite_on || !(prot & PROT_EXEC) || !len)
		return;
	struct rewrite_job j = { start & ~4095UL, (start + len + 4095) & ~4095UL, prot, NULL };
	/* file-backed code (dlopen) is looked up in the cache by its mapping */
	struct hook_mapping m;
	if (hook_maps_find(start, &m) == 0 && m.ino && m.start == j.start && m.end == j.end)
		j.m = &m;
	usnet_hook_call_saved(rewrite_job_run, &j);
}

/* SUD needs SIGSYS deliverable at all times: a blocked SIGSYS would make the
 * kernel kill the process on the next dispatched call. */
#define SIGSYS_BIT (1UL << (SIGSYS - 1))

#define SIGKILL_STOP_BITS ((1UL << (SIGKILL - 1)) | (1UL << (SIGSTOP - 1)))

/* rt_sigprocmask from the SIGSYS handler: the kernel restores the mask saved
 * in the signal frame when the handler returns, so a mask changed for real
 * here would be lost.  The change is made to that saved mask instead (what
 * the thread's mask becomes on return), with Linux's checks and errors in
 * Linux's order.  The temporary masks of rt_sigsuspend, ppoll, pselect6 and
 * epoll_pwait need nothing of the kind: while the handler runs the thread's
 * real mask is the saved one (SA_NODEFER, empty sa_mask), and those calls
 * put it back themselves. */
static long sud_sigprocmask(const struct usnet_syscall *sc, unsigned long *saved_mask)
{
	if (sc->args[3] != 8)
		return -22; /* EINVAL */
	unsigned long old = *saved_mask;
	if (sc->args[1]) {
		unsigned long set, mask;
		if (!hook_user_read(&set, (const void *)sc->args[1], sizeof set))
			return -14; /* EFAULT */
		set &= ~SIGKILL_STOP_BITS;
		switch (sc->args[0]) {
		case SIG_BLOCK:
			mask = old | set;
			break;
		case SIG_UNBLOCK:
			mask = old & ~set;
			break;
		case SIG_SETMASK:
			mask = set;
			break;
		default:
			return -22;
		}
		/* SUD needs SIGSYS deliverable */
		*saved_mask = mask & ~SIGSYS_BIT;
	}
	if (sc->args[2] && !hook_user_write((void *)sc->args[2], &old, sizeof old))
		return -14;
	return 0;
}

/* Special handling for calls that change the stack, the thread or the code;
 * the others are issued here.  sud_mask: the signal mask saved in the SIGSYS
 * frame when called from the SIGSYS handler, else NULL.  Returns an enum
 * hook_action. */
static int pass_call(struct hook_frame *f, struct usnet_syscall *sc, unsigned long *sud_mask)
{
	bool from_sud = sud_mask != NULL;
	long r;
	switch (sc->nr) {
	case SYS_clone: {
		unsigned long flags = (unsigned long)sc->args[0];
		if (sc->args[1] || (flags & CLONE_VM)) {
			frame_from_call(f, sc);
			return from_sud ? HOOK_ACT_REISSUE : usnet_hook_prepare_special(f);
		}
		break;
	}
	case SYS_clone3: {
		struct clone3_args ca;
		if ((size_t)sc->args[1] >= sizeof ca &&
		    hook_user_read(&ca, (const void *)sc->args[0], sizeof ca) &&
		    (ca.stack || (ca.flags & CLONE_VM))) {
			frame_from_call(f, sc);
			return from_sud ? HOOK_ACT_REISSUE : usnet_hook_prepare_special(f);
		}
		break;
	}
	case SYS_vfork:
		frame_from_call(f, sc);
		return from_sud ? HOOK_ACT_REISSUE : usnet_hook_prepare_special(f);
	case SYS_sigaltstack:
		/* the SIGSYS handler may be running on the alternate stack, where
		 * the kernel refuses to change it: issue it from the program */
		if (from_sud) {
			frame_from_call(f, sc);
			return HOOK_ACT_REISSUE;
		}
		break;
	case SYS_execve:
	case SYS_execveat: {
		/* a static program: through usnet-exec (hook_exec_static.c) */
		void *route;
		size_t route_len;
		r = hook_exec_static_route(sc, &route, &route_len);
		if (r < 0)
			goto done;
		/* the new image must load the hook again */
		int envp_arg = sc->nr == SYS_execve ? 2 : 3;
		size_t env_len;
		char **env = hook_env_for_exec((char **)sc->args[envp_arg], &env_len);
		if (env)
			sc->args[envp_arg] = (long)env;
		/* SUD is not meant to survive into a new image */
		if (hook_state.sud_on)
			hook_sud_set(false);
		r = issue(sc);
		if (hook_state.sud_on)
			hook_sud_set(true);
		if (env)
			RAW2(SYS_munmap, env, env_len);
		if (route)
			RAW2(SYS_munmap, route, route_len);
		goto done;
	}
	case SYS_mmap:
		r = issue(sc);
		if (!is_error(r))
			rewrite_new_code((uintptr_t)r, (size_t)sc->args[1], (int)sc->args[2]);
		goto done;
	case SYS_mprotect:
	case SYS_pkey_mprotect:
		r = issue(sc);
		if (r == 0)
			rewrite_new_code((uintptr_t)sc->args[0], (size_t)sc->args[1], (int)sc->args[2]);
		goto done;
	case SYS_exit:
		/* a thread ends: the alternate stack the hook gave it goes too,
		 * which cannot happen on that stack (the SIGSYS handler's) */
		frame_from_call(f, sc);
		if (from_sud)
			return HOOK_ACT_REISSUE;
		if (hook_state.sud_on)
			hook_sud_take_altstack();
		/* the hook stack this runs on is freed by the entry */
		return HOOK_ACT_EXIT;
	case SYS_rt_sigaction:
		if (sc->args[0] == SIGSEGV && hook_state.segv_managed) {
			r = hook_fault_sigaction(sc);
			goto done;
		}
		if (!hook_state.sud_on)
			break;
		if (sc->args[0] == SIGSYS) {
			/* the hook owns SIGSYS; pretend the program's handler is kept */
			struct k_sigaction dfl = { 0, 0, 0, 0 };
			r = 0;
			if (sc->args[2] && !hook_user_write((void *)sc->args[2], &dfl, sizeof dfl))
				r = -14; /* EFAULT */
			goto done;
		}
		struct k_sigaction copy;
		if (sc->args[1] && hook_user_read(&copy, (const void *)sc->args[1], sizeof copy) &&
		    (copy.mask & SIGSYS_BIT)) {
			copy.mask &= ~SIGSYS_BIT;
			sc->args[1] = (long)&copy;
			r = issue(sc);
			goto done;
		}
		break;
	case SYS_rt_sigprocmask:
		if (sud_mask) {
			r = sud_sigprocmask(sc, sud_mask);
			goto done;
		}
		unsigned long set;
		if (hook_state.sud_on && sc->args[1] && sc->args[0] != SIG_UNBLOCK &&
		    hook_user_read(&set, (const void *)sc->args[1], sizeof set) && (set & SIGSYS_BIT)) {
			set &= ~SIGSYS_BIT;
			sc->args[1] = (long)&set;
			r = issue(sc);
			goto done;
		}
		break;
	default:
		break;
	}
	r = issue(sc);
	if (r == 0 && (sc->nr == SYS_fork || sc->nr == SYS_clone || sc->nr == SYS_clone3))
		usnet_hook_child_after_fork();
done:
	if (hook_state.cfg.after_pass && hook_wants(sc->nr))
		hook_state.cfg.after_pass(sc, r);
	f->rax = r;
	return HOOK_ACT_DONE;
}

int hook_dispatch_sud(struct hook_frame *f, unsigned long *saved_mask)
{
	struct usnet_syscall sc;
	sc.nr = f->rax;
	sc.args[0] = f->rdi;
	sc.args[1] = f->rsi;
	sc.args[2] = f->rdx;
	sc.args[3] = f->r10;
	sc.args[4] = f->r8;
	sc.args[5] = f->r9;
	sc.site = f->site;
	long r = USNET_HOOK_PASS;
	if (hook_state.cfg.handler && hook_wants(sc.nr)) {
		hook_sud_selector = HOOK_SUD_ALLOW;
		r = hook_state.cfg.handler(&sc);
		hook_sud_selector = HOOK_SUD_BLOCK;
	}
	if (r != USNET_HOOK_PASS) {
		f->rax = r;
		return HOOK_ACT_DONE;
	}
	if (hook_static_on) {
		int act = hook_static_pass(f, &sc);
		if (act >= 0)
			return act;
	}
	return pass_call(f, &sc, saved_mask);
}

/* In the raw section, next to the entry: the fast path touches as few pages
 * as it can (each one can cost a TLB miss after every system call).  The
 * frame's first fields are the struct usnet_syscall the handler gets. */
__attribute__((section(".text.usnet_hook_raw"))) int usnet_hook_dispatch(struct hook_frame *f)
{
	/* page 0 (a stub's frame says how far it moved the stack): any call
	 * into it lands here, a null function pointer's too */
	if (!f->red) {
		if (__builtin_expect(!hook_site_known(f->site), 0))
			hook_report_stray_call(f->site);
		hook_site_cache_put(f->site);
	}
	struct usnet_syscall *sc = (struct usnet_syscall *)f;
	usnet_hook_handler handler = usnet_hook_fast.handler;
	if (handler && hook_wants(sc->nr)) {
		long r = handler(sc);
		if (r != USNET_HOOK_PASS) {
			f->rax = r;
			return HOOK_ACT_DONE;
		}
		/* changed arguments: issued from C (the entry issues the
		 * program's registers) */
		if ((f->rdi ^ f->orig_rdi) | (f->rsi ^ f->orig_rsi) | (f->rdx ^ f->orig_rdx) |
		    (f->r10 ^ f->orig_r10) | (f->r8 ^ f->orig_r8) | (f->r9 ^ f->orig_r9))
			return pass_call(f, sc, NULL);
	}
	if ((!usnet_hook_fast.after_pass || !hook_wants(sc->nr)) && !hook_needs_care(sc->nr))
		return HOOK_ACT_ISSUE;
	return pass_call(f, sc, NULL);
}

/* Where a child on a new stack returns: the site (page 0, SUD), or the
 * stub's return address, which the stub's call left on the program's
 * stack (f->rsp points at it). */
static uintptr_t child_return(const struct hook_frame *f)
{
	return f->red ? *(const uintptr_t *)f->rsp : f->site;
}

/* The frame holds the approved clone/clone3/vfork; prepare the child's stack
 * and tell the asm how to issue it. */
int usnet_hook_prepare_special(struct hook_frame *f)
{
	switch (f->rax) {
	case SYS_clone: {
		unsigned long flags = (unsigned long)f->rdi;
		if (!f->rsi)
			return HOOK_ACT_VFORK;
		/* the child "returns" from the call on its own stack: into the
		 * site, or (stub path) into the stub, below its red zone */
		uintptr_t sp = ((uintptr_t)f->rsi) - f->red - 8;
		uintptr_t ret = child_return(f);
		/* a bad stack: the child faults on it, as it would without the hook */
		hook_user_write((void *)sp, &ret, sizeof ret);
		f->rsi = (long)sp;
		return (flags & CLONE_VM) ? HOOK_ACT_CLONE_STACK : HOOK_ACT_FORK_STACK;
	}
	case SYS_clone3: {
		size_t size = (size_t)f->rsi;
		if (size > sizeof f->clone3_args) {
			f->rax = -7; /* E2BIG: larger blocks than the hook copies */
			return HOOK_ACT_DONE;
		}
		struct clone3_args *ca = (struct clone3_args *)f->clone3_args;
		if (size < sizeof *ca || !hook_user_read(ca, (const void *)f->rdi, size)) {
			f->rax = size < sizeof *ca ? -22 : -14; /* EINVAL, EFAULT */
			return HOOK_ACT_DONE;
		}
		if (!ca->stack)
			return HOOK_ACT_VFORK;
		if (ca->stack_size < 16 + (uint64_t)f->red) {
			f->rax = -22;
			return HOOK_ACT_DONE;
		}
		uintptr_t sp = (uintptr_t)(ca->stack + ca->stack_size) - f->red - 8;
		uintptr_t ret = child_return(f);
		hook_user_write((void *)sp, &ret, sizeof ret);
		ca->stack_size -= (uint64_t)f->red + 8;
		f->rdi = (long)ca;
		return (ca->flags & CLONE_VM) ? HOOK_ACT_CLONE_STACK : HOOK_ACT_FORK_STACK;
	}
	case SYS_vfork:
		return HOOK_ACT_VFORK;
	default: {
		/* a call that only had to leave the signal handler first */
		if (f->rax == SYS_exit) {
			hook_sud_take_altstack();
			return HOOK_ACT_EXIT;
		}
		struct usnet_syscall sc;
		sc.nr = f->rax;
		sc.args[0] = f->rdi;
		sc.args[1] = f->rsi;
		sc.args[2] = f->rdx;
		sc.args[3] = f->r10;
		sc.args[4] = f->r8;
		sc.args[5] = f->r9;
		sc.site = f->site;
		f->rax = issue(&sc);
		if (hook_state.cfg.after_pass && hook_wants(sc.nr))
			hook_state.cfg.after_pass(&sc, f->rax);
		return HOOK_ACT_DONE;
	}
	}
}
