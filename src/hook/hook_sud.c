/*
 * usnet hook — Syscall User Dispatch (Linux >= 5.11).
 *
 * With SUD on, every syscall instruction outside the allowed range (this
 * library's raw section, hook_entry.S) raises SIGSYS instead of running.  The
 * handler runs the call through the dispatcher and puts the result in the
 * signal context.  The hook's own calls pass because they are issued from the
 * allowed range.  Each thread has its own selector byte (thread-local), set to
 * ALLOW only while the user's handler runs, so that calls it makes by other
 * routes pass too; the call the program made is then issued with the
 * selector back at BLOCK, so that signal handlers which run while that call
 * blocks are dispatched as usual.
 *
 * In auto mode, a site SUD catches (JIT code, code rewriting missed) is
 * rewritten on the spot, so its next call takes the fast path.
 *
 * Calls that change the stack or thread (clone, vfork) cannot be issued from
 * a signal handler: the handler sends the program to usnet_hook_reissue with
 * its own registers, and the call is issued there.
 */
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>

#include "hook_internal.h"
#include "hook_static.h"

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_OFF 0
#define PR_SYS_DISPATCH_ON 1
#endif
#define SYSCALL_DISPATCH_FILTER_BLOCK 1
#define SYS_USER_DISPATCH_CODE 2   /* si_code of a dispatched call */

__thread volatile char hook_sud_selector __attribute__((tls_model("initial-exec"))) =
	SYSCALL_DISPATCH_FILTER_BLOCK;


int hook_sud_set(bool on)
{
	if (!on)
		return (int)RAW6(SYS_prctl, PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0, 0);
	return (int)RAW6(SYS_prctl, PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON,
			 (uintptr_t)usnet_hook_raw_start,
			 (uintptr_t)usnet_hook_raw_end - (uintptr_t)usnet_hook_raw_start,
			 &hook_sud_selector, 0);
}

static void sigsys_handler(int sig, siginfo_t *si, void *ucv)
{
	(void)sig;
	ucontext_t *uc = ucv;
	greg_t *g = uc->uc_mcontext.gregs;
	if (si->si_code != SYS_USER_DISPATCH_CODE) {
		hook_log(0, "SIGSYS not from Syscall User Dispatch (seccomp?); exiting");
		RAW1(SYS_exit_group, 159);
	}
	uintptr_t site = (uintptr_t)g[REG_RIP];
	if (g[REG_RAX] == SYS_rt_sigreturn) {
		/* re-issue from the allowed range on the same stack */
		g[REG_RIP] = (greg_t)(uintptr_t)usnet_hook_sigreturn_stub;
		return;
	}
	if (hook_state.sud_rewrite && hook_rewrite_one(site) == 0)
		hook_log_hex(2, "rewrote a site caught by SUD at ", site - 2);
	struct hook_frame f;
	f.rax = g[REG_RAX];
	f.rdi = g[REG_RDI];
	f.rsi = g[REG_RSI];
	f.rdx = g[REG_RDX];
	f.r10 = g[REG_R10];
	f.r8 = g[REG_R8];
	f.r9 = g[REG_R9];
	f.site = site;
	f.rsp = (uintptr_t)g[REG_RSP];
	f.red = 0;
	int act = hook_dispatch_sud(&f, (unsigned long *)&uc->uc_sigmask);
	if (act == HOOK_ACT_DONE) {
		g[REG_RAX] = f.rax;
		return;
	}
	/* As if the site had called the trampoline: site pushed, call in regs. */
	uintptr_t sp = (uintptr_t)g[REG_RSP] - 8;
	*(uintptr_t *)sp = site;
	g[REG_RSP] = (greg_t)sp;
	g[REG_RAX] = f.rax;
	g[REG_RDI] = f.rdi;
	g[REG_RSI] = f.rsi;
	g[REG_RDX] = f.rdx;
	g[REG_R10] = f.r10;
	g[REG_R8] = f.r8;
	g[REG_R9] = f.r9;
	g[REG_RIP] = (greg_t)(uintptr_t)usnet_hook_reissue;
}

#define ALTSTACK_SIZE (64 * 1024)

/* The alternate stack the hook gave this thread, if any. */
static __thread void *given_altstack __attribute__((tls_model("initial-exec")));

void hook_sud_give_altstack(void)
{
	stack_t cur;
	if (RAW2(SYS_sigaltstack, 0, &cur) != 0 || !(cur.ss_flags & SS_DISABLE))
		return;
	long p = RAW6(SYS_mmap, 0, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (p < 0 && p > -4096)
		return;
	stack_t ss;
	ss.ss_sp = (void *)p;
	ss.ss_size = ALTSTACK_SIZE;
	ss.ss_flags = 0;
	if (RAW2(SYS_sigaltstack, &ss, 0) == 0)
		given_altstack = (void *)p;
	else
		RAW2(SYS_munmap, p, ALTSTACK_SIZE);
}

void hook_sud_take_altstack(void)
{
	stack_t cur;
	if (!given_altstack || RAW2(SYS_sigaltstack, 0, &cur) != 0 || cur.ss_sp != given_altstack ||
	    (cur.ss_flags & SS_ONSTACK))
		return;   /* replaced by the program, or in use right now */
	stack_t off;
	off.ss_sp = 0;
	off.ss_size = 0;
	off.ss_flags = SS_DISABLE;
	if (RAW2(SYS_sigaltstack, &off, 0) == 0) {
		RAW2(SYS_munmap, given_altstack, ALTSTACK_SIZE);
		given_altstack = 0;
	}
}

int hook_sud_enable(char *err, size_t errlen)
{
	struct hook_buf b = { err, 0, errlen };
	struct k_sigaction sa;
	sa.handler = hook_static_sig_handler(SIGSYS, sigsys_handler);
	/* SA_NODEFER: a SIGSYS inside the handler (nested code) must not be
	 * blocked, or the kernel kills the process; SA_ONSTACK: threads with
	 * small stacks (Go) have an alternate stack for signals. */
	sa.flags = SA_SIGINFO | SA_RESTORER | SA_NODEFER | SA_ONSTACK;
	sa.restorer = (unsigned long)usnet_hook_sud_restorer;
	sa.mask = 0;
	long r = RAW4(SYS_rt_sigaction, SIGSYS, &sa, 0, 8);
	if (r < 0) {
		hook_buf_str(&b, "cannot install the SIGSYS handler");
		return (int)r;
	}
	unsigned long set = 1UL << (SIGSYS - 1);
	RAW4(SYS_rt_sigprocmask, SIG_UNBLOCK, &set, 0, 8);
	hook_sud_give_altstack();
	r = hook_sud_set(true);
	if (r < 0) {
		hook_buf_str(&b, "Syscall User Dispatch is not available (Linux >= 5.11 with "
			     "CONFIG_GENERIC_ENTRY needed)");
		return (int)r;
	}
	hook_state.sud_on = true;
	return 0;
}

int hook_rewrite_one(uintptr_t site)
{
	uintptr_t insn = site - 2;
	/* only the page-0 trampoline: a stub needs the code around the site
	 * analysed, which JIT code does not allow (SUD keeps serving it) */
	if (!hook_state.rewrite_on || !hook_state.page0 || hook_addr_skipped(insn))
		return -1;
	const volatile uint8_t *p = (const volatile uint8_t *)insn;
	if (p[0] != 0x0f || (p[1] != 0x05 && p[1] != 0x34))
		return -1;
	struct hook_mapping m;
	if (hook_maps_find(insn, &m) != 0 || !(m.prot & PROT_EXEC) || m.path[0] == '[')
		return -1;
	if (insn + 2 > m.end)
		return -1;
	uintptr_t page = insn & ~4095UL, page_end = (insn + 2 + 4095) & ~4095UL;
	/* the set of sites grows under the rewriter's lock, which this
	 * thread may hold already (a SIGSYS inside the rewriter): then the
	 * site stays with SUD for now */
	if (!hook_rewrite_trylock())
		return -1;
	int r = -1;
	if (RAW3(SYS_mprotect, page, page_end - page, m.prot | PROT_READ | PROT_WRITE) == 0) {
		if (hook_sites_reserve(1) == 0 && hook_site_add(insn)) {
			hook_patch_site(insn);
			r = 0;
		}
		RAW3(SYS_mprotect, page, page_end - page, m.prot);
	}
	hook_rewrite_unlock();
	return r;
}
