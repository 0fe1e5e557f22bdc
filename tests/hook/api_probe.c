/*
 * usnet hook tests — the contract (include/usnet/hook.h) used directly, with
 * libusnet-hook.a linked into the program itself:
 *   - a handler that answers a call (getppid -> 4242) and one that changes an
 *     argument before passing it on (write to fd 99 -> fd 1);
 *   - after_pass sees the result; usnet_hook_mode_name() names the mode;
 *   - usnet_hook_call_saved() returns the function's result;
 *   - the program's own inline syscall is hooked although the hook lives in
 *     the same binary;
 *   - usnet_hook_user_check() tells readable, writable and unmapped memory
 *     apart (and, once the program has a SIGSEGV handler, checks nothing).
 * Usage: api_probe auto|rewrite|rewrite+sud|sud|page0; prints "api ok" and
 * exits 0.
 * Built with -mgeneral-regs-only: the handler runs on the pass-through path.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "usnet/hook.h"

static long passed_writes;

static long handler(struct usnet_syscall *sc)
{
	if (sc->nr == SYS_getppid)
		return 4242;
	if (sc->nr == SYS_write && sc->args[0] == 99)
		sc->args[0] = 1;
	return USNET_HOOK_PASS;
}

static void after(const struct usnet_syscall *sc, long ret)
{
	if (sc->nr == SYS_write && sc->args[0] == 1 && ret > 0)
		passed_writes++;
}

static long times_two(void *arg)
{
	return 2 * *(long *)arg;
}

static int fail(const char *why)
{
	fprintf(stderr, "api_probe: %s\n", why);
	return 1;
}

int main(int argc, char **argv)
{
	struct usnet_hook_config cfg = { .handler = handler, .after_pass = after };
	/* auto: every site of this program and its libraries can be
	 * rewritten, so no Syscall User Dispatch */
	const char *want = "rewrite";
	if (argc > 1 && !strcmp(argv[1], "rewrite")) {
		cfg.mode = USNET_HOOK_REWRITE;
	} else if (argc > 1 && !strcmp(argv[1], "rewrite+sud")) {
		cfg.mode = USNET_HOOK_REWRITE_SUD;
		want = "rewrite+sud";
	} else if (argc > 1 && !strcmp(argv[1], "sud")) {
		cfg.mode = USNET_HOOK_SUD;
		want = "sud";
	} else if (argc > 1 && !strcmp(argv[1], "page0")) {
		cfg.mode = USNET_HOOK_PAGE0;
		want = "page0+sud";
	}
	char err[256];
	if (usnet_hook_install(&cfg, err, sizeof err) < 0)
		return fail(err);
	if (usnet_hook_install(&cfg, err, sizeof err) >= 0)
		return fail("a second install succeeded");
	if (strcmp(usnet_hook_mode_name(), want))
		return fail(usnet_hook_mode_name());
	if (getppid() != 4242)
		return fail("libc getppid was not answered by the handler");
	long r = SYS_getppid;
	__asm__ volatile("syscall" : "+a"(r) : : "rcx", "r11", "memory");
	if (r != 4242)
		return fail("the program's own syscall was not hooked");
	if (usnet_hook_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0) == 4242)
		return fail("usnet_hook_syscall went through the handler");
	if (write(99, "redirected\n", 11) != 11 || passed_writes != 1)
		return fail("write with a changed fd");
	long x = 21;
	if (usnet_hook_call_saved(times_two, &x) != 42)
		return fail("usnet_hook_call_saved");
	/* a writable page, a read-only one after it, then nothing */
	char *m = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED || mprotect(m + 4096, 4096, PROT_READ) || munmap(m + 8192, 4096))
		return fail("mmap");
	m[100] = 7;
	if (usnet_hook_user_check(m, 8192, 0) || usnet_hook_user_check(m + 10, 4000, 1) || m[100] != 7 ||
	    usnet_hook_user_check(m + 8192, 0, 0))
		return fail("usnet_hook_user_check refused good memory");
	if (usnet_hook_user_check(m + 4096, 1, 1) != -EFAULT || usnet_hook_user_check(m + 4000, 8192, 0) != -EFAULT ||
	    usnet_hook_user_check((void *)(1UL << 46), 1, 0) != -EFAULT ||
	    usnet_hook_user_check(m, ~(size_t)0, 0) != -EFAULT)
		return fail("usnet_hook_user_check passed bad memory");
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGSEGV, &sa, NULL) || usnet_hook_user_check(m + 8192, 1, 0) != 0)
		return fail("usnet_hook_user_check with the program's own SIGSEGV action");
	printf("api ok\n");
	return 0;
}
