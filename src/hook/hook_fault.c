/*
 * usnet hook — calls the trampoline cannot take.  A rewritten site executes
 * `call *%rax`, so a number beyond the trampoline's pages (8192 and up, a
 * negative one, an x32 one) sends the program to an address where nothing
 * is mapped, or makes the call itself fault (a non-canonical address), and
 * the program would die of SIGSEGV where Linux answers: Linux reads the low
 * 32 bits of rax, so such a call is either the call they name or unknown
 * (-ENOSYS).
 *
 * While the program leaves SIGSEGV at its default action, the hook keeps a
 * handler of its own there.  A fault whose rip is rax, with the return
 * address of a rewritten site on top of the stack (or, for a non-canonical
 * rax, a fault on the `call *%rax` of a rewritten site itself), goes on
 * into the trampoline at the low 32 bits' number when that is a 64-bit call
 * (below 512), and is otherwise finished as the kernel finishes an unknown
 * call: rax = -ENOSYS, back after the site.  Any other fault puts the
 * default action back and returns: the instruction faults again and the
 * program dies of it as it would have.
 *
 * The same handler lets usnet_hook_user_check() probe the program's memory
 * (a load, or a locked add of 0, per page) the way the kernel checks a user
 * pointer: a probe that faults returns -EFAULT.  Without the handler in
 * place (the program has its own) the check passes everything.
 *
 * The program's view of SIGSEGV stays its own (hook_fault_sigaction, from
 * the dispatcher): reading the action gives SIG_DFL while the hook's handler
 * is in place; setting a handler (or SIG_IGN) replaces the hook's, and
 * setting SIG_DFL again brings it back.  Such calls do not reach the tracer
 * (the kernel never sees them either).
 */
#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <ucontext.h>

#include "hook_internal.h"
#include "hook_static.h"

#define K_SIG_DFL 0UL

/* Linux reads only the low 32 bits of rax as the number: a call whose low
 * bits name a 64-bit call (below 512) is that call, and goes on into the
 * trampoline at that number; any other is unknown. */
static void finish_call(greg_t *g, uintptr_t rax, uintptr_t ret)
{
	uint32_t nr = (uint32_t)rax;
	if (nr < 512) {
		g[REG_RAX] = nr;
		g[REG_RIP] = nr;
		return;
	}
	g[REG_RAX] = -ENOSYS;
	g[REG_RIP] = (greg_t)ret;
	g[REG_RSP] += 8;
}

static void segv_handler(int sig, siginfo_t *si, void *ucv)
{
	(void)sig;
	(void)si;
	ucontext_t *uc = ucv;
	greg_t *g = uc->uc_mcontext.gregs;
	uintptr_t rip = (uintptr_t)g[REG_RIP], rax = (uintptr_t)g[REG_RAX], rsp = (uintptr_t)g[REG_RSP];
	if (rip == (uintptr_t)hook_probe_read_insn || rip == (uintptr_t)hook_probe_write_insn) {
		/* usnet_hook_user_check's probe: -EFAULT */
		g[REG_RIP] = (greg_t)(uintptr_t)hook_probe_fixup;
		return;
	}
	uintptr_t ret;
	if (rip == rax && hook_state.page0 && hook_user_read(&ret, (const void *)rsp, sizeof ret) &&
	    hook_bitmap_test(ret - 2)) {
		/* the call went to address rax, its return address pushed */
		finish_call(g, rax, ret);
		return;
	}
	uint8_t insn[2];
	ret = rip + 2;
	if ((rax >> 47) && hook_user_read(insn, (const void *)rip, sizeof insn) && insn[0] == 0xff &&
	    insn[1] == 0xd0 && hook_state.page0 && hook_bitmap_test(rip) &&
	    hook_user_write((void *)(rsp - 8), &ret, sizeof ret)) {
		/* the call itself faulted (#GP: non-canonical target): push
		 * what it would have pushed */
		g[REG_RSP] = (greg_t)(rsp - 8);
		finish_call(g, rax, ret);
		return;
	}
	/* not ours: the default action, which the fault now meets again */
	struct k_sigaction dfl = { K_SIG_DFL, 0, 0, 0 };
	RAW4(SYS_rt_sigaction, SIGSEGV, &dfl, 0, 8);
	hook_state.segv_ours = false;
}

static long put_handler(void)
{
	struct k_sigaction sa = {
		.handler = hook_static_sig_handler(SIGSEGV, segv_handler),
		/* SA_ONSTACK: a thread with a small stack (Go) has an alternate
		 * one for signals */
		.flags = SA_SIGINFO | SA_RESTORER | SA_ONSTACK,
		.restorer = (unsigned long)usnet_hook_sud_restorer,
		.mask = 0,
	};
	long r = RAW4(SYS_rt_sigaction, SIGSEGV, &sa, 0, 8);
	if (r == 0)
		hook_state.segv_ours = true;
	return r;
}

void hook_fault_install(void)
{
	hook_state.segv_managed = true;
	struct k_sigaction old;
	if (RAW4(SYS_rt_sigaction, SIGSEGV, 0, &old, 8) == 0 && old.handler == K_SIG_DFL)
		put_handler();
}

long hook_fault_sigaction(const struct usnet_syscall *sc)
{
	if (sc->args[3] != 8)
		return -EINVAL;
	struct k_sigaction act;
	const void *uact = (const void *)sc->args[1];
	void *uold = (void *)sc->args[2];
	if (uact && !hook_user_read(&act, uact, sizeof act))
		return -EFAULT;
	/* SUD needs SIGSYS deliverable inside the program's handler too (the
	 * JVM's blocks every signal, then makes system calls) */
	if (uact && hook_state.sud_on)
		act.mask &= ~(1UL << (SIGSYS - 1));
	if (hook_state.segv_ours) {
		long r = 0;
		if (uact && act.handler != K_SIG_DFL) {
			/* the program's own handler (or SIG_IGN) replaces the hook's */
			r = RAW4(SYS_rt_sigaction, SIGSEGV, &act, 0, 8);
			if (r == 0)
				hook_state.segv_ours = false;
		}
		struct k_sigaction dfl = { K_SIG_DFL, 0, 0, 0 };
		if (r == 0 && uold && !hook_user_write(uold, &dfl, sizeof dfl))
			r = -EFAULT;
		return r;
	}
	long r = RAW4(SYS_rt_sigaction, SIGSEGV, uact ? &act : 0, uold, 8);
	if (r == 0 && uact && act.handler == K_SIG_DFL)
		put_handler();
	return r;
}

int usnet_hook_user_check(const void *p, size_t n, int write)
{
	if (n == 0 || !hook_state.segv_ours)
		return 0;
	uintptr_t a = (uintptr_t)p, end = a + n - 1;
	if (end < a)
		return -EFAULT;
	for (;;) {   /* a byte of each page, p's through end's */
		long r = write ? hook_probe_write((void *)a) : hook_probe_read((const void *)a);
		if (r)
			return (int)r;
		if ((a >> 12) == (end >> 12))
			return 0;
		a = (a | 4095) + 1;
	}
}
