/*
 * usnet hook tests — the program's own signal mask under the hook.
 *
 * Under Syscall User Dispatch the hook runs inside a SIGSYS handler, and the
 * kernel puts back the mask saved in the signal frame when that handler
 * returns: a mask the program changed there must still be in force after.
 * Checked through libc (sigprocmask), through a raw call from generated code
 * (caught only by SUD in auto mode), and with sigsuspend's temporary mask;
 * then the alternate signal stack, which the signal return restores too.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile sig_atomic_t got_usr1, got_usr2;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		got_usr1++;
	else
		got_usr2++;
}

static int fail(const char *what)
{
	fprintf(stderr, "probe sigmask: %s\n", what);
	return 1;
}

/* "mov %rcx, %r10; mov $SYS_rt_sigprocmask, %eax; syscall; ret": a raw call
 * with the C argument registers, written into RWX memory after mapping it. */
static const unsigned char raw_sigprocmask_code[] = {
	0x49, 0x89, 0xca, 0xb8, SYS_rt_sigprocmask, 0, 0, 0, 0x0f, 0x05, 0xc3
};

static int blocked(int sig)
{
	sigset_t cur;
	if (sigprocmask(SIG_SETMASK, NULL, &cur) != 0)
		return -1;
	return sigismember(&cur, sig);
}

static int pending(int sig)
{
	sigset_t p;
	if (sigpending(&p) != 0)
		return -1;
	return sigismember(&p, sig);
}

/* Returns 0 when every check holds, then makes n inline getppid calls. */
int sigmask_check(long n)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	if (sigaction(SIGUSR1, &sa, NULL) || sigaction(SIGUSR2, &sa, NULL))
		return fail("sigaction");

	/* libc: block SIGUSR2, raise it: it must stay pending */
	sigset_t s, old;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	if (sigprocmask(SIG_BLOCK, &s, &old) != 0)
		return fail("sigprocmask");
	if (sigismember(&old, SIGUSR2))
		return fail("SIGUSR2 blocked at start");
	if (blocked(SIGUSR2) != 1)
		return fail("SIGUSR2 not blocked after sigprocmask(SIG_BLOCK)");
	raise(SIGUSR2);
	if (got_usr2)
		return fail("SIGUSR2 delivered while blocked");
	if (pending(SIGUSR2) != 1)
		return fail("SIGUSR2 not pending");

	/* a raw call from generated code: block SIGUSR1, old mask returned */
	unsigned char *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (code == MAP_FAILED)
		return fail("mmap");
	memcpy(code, raw_sigprocmask_code, sizeof raw_sigprocmask_code);
	long (*raw)(long, const void *, void *, long) =
		(long (*)(long, const void *, void *, long))(void *)code;
	unsigned long set1 = 1UL << (SIGUSR1 - 1), old1 = 0;
	if (raw(SIG_BLOCK, &set1, &old1, 8) != 0)
		return fail("raw rt_sigprocmask");
	if (!(old1 & (1UL << (SIGUSR2 - 1))) || (old1 & set1))
		return fail("raw rt_sigprocmask returned a wrong old mask");
	if (raw(SIG_BLOCK, &set1, NULL, 4) != -EINVAL || raw(77, &set1, NULL, 8) != -EINVAL)
		return fail("raw rt_sigprocmask: bad size or how accepted");
	/* an unmapped page (not page 0: the trampoline may be there) */
	void *gone = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (gone == MAP_FAILED || munmap(gone, 4096))
		return fail("mmap");
	if (raw(SIG_BLOCK, gone, NULL, 8) != -EFAULT)
		return fail("raw rt_sigprocmask: bad pointer accepted");
	raise(SIGUSR1);
	if (got_usr1 || blocked(SIGUSR1) != 1 || pending(SIGUSR1) != 1)
		return fail("SIGUSR1 not blocked after a raw rt_sigprocmask");

	/* sigsuspend lets SIGUSR2 in for its duration only */
	sigset_t wait;
	sigprocmask(SIG_SETMASK, NULL, &wait);
	sigdelset(&wait, SIGUSR2);
	if (sigsuspend(&wait) != -1 || errno != EINTR)
		return fail("sigsuspend");
	if (got_usr2 != 1 || got_usr1)
		return fail("sigsuspend delivered the wrong signals");
	if (blocked(SIGUSR2) != 1 || blocked(SIGUSR1) != 1)
		return fail("sigsuspend did not put the mask back");

	/* unblocking delivers the pending signal before the call returns */
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	sigaddset(&s, SIGUSR2);
	if (sigprocmask(SIG_UNBLOCK, &s, NULL) != 0)
		return fail("sigprocmask(SIG_UNBLOCK)");
	if (got_usr1 != 1)
		return fail("pending SIGUSR1 not delivered on unblocking");
	if (blocked(SIGUSR1) != 0 || blocked(SIGUSR2) != 0)
		return fail("mask not cleared");
	munmap(code, 4096);

	/* sigaltstack, which the signal return would also undo, lasts */
	static char alt[65536];
	stack_t ss = { .ss_sp = alt, .ss_size = sizeof alt, .ss_flags = 0 }, prev, now;
	if (sigaltstack(&ss, &prev) != 0 || sigaltstack(NULL, &now) != 0)
		return fail("sigaltstack");
	if (now.ss_sp != alt || now.ss_size != sizeof alt || (now.ss_flags & SS_DISABLE))
		return fail("sigaltstack did not last");
	if (sigaltstack(&prev, NULL) != 0)
		return fail("sigaltstack (putting the previous one back)");

	/* and the signal that killed the program before: default action off */
	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	signal(SIGUSR2, SIG_DFL);
	sigprocmask(SIG_BLOCK, &s, NULL);
	raise(SIGUSR2);
	signal(SIGUSR2, SIG_IGN);   /* discards the pending one */
	sigprocmask(SIG_UNBLOCK, &s, NULL);

	for (long i = 0; i < n; i++) {
		long r;
		__asm__ volatile("syscall" : "=a"(r) : "0"((long)SYS_getppid) : "rcx", "r11", "memory");
		if (r <= 0)
			return fail("getppid");
	}
	return 0;
}
