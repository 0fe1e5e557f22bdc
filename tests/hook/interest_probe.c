/*
 * usnet hook tests — the interest set (include/usnet/hook.h), with
 * libusnet-hook.a linked into the program itself:
 *   - calls outside the set reach neither the handler nor after_pass, also
 *     those the hook itself looks into (mmap);
 *   - usnet_hook_set_interest() changes the set while the hook runs, NULL
 *     brings back every call, a bad pointer is EFAULT;
 *   - several threads changing the set while others make calls;
 *   - a call that skips the handler keeps the flags the program had (as
 *     the kernel does).
 * Usage: interest_probe auto|rewrite|rewrite+sud|sud|page0; prints
 * "interest ok", exits 0.
 * Built with -mgeneral-regs-only: the handler runs on the pass-through path.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "usnet/hook.h"

static long seen[USNET_HOOK_NR_COUNT];
static long after_seen[USNET_HOOK_NR_COUNT];

static long handler(struct usnet_syscall *sc)
{
	if (sc->nr >= 0 && sc->nr < USNET_HOOK_NR_COUNT)
		__atomic_fetch_add(&seen[sc->nr], 1, __ATOMIC_RELAXED);
	if (sc->nr == SYS_getppid)
		return 4242;
	return USNET_HOOK_PASS;
}

static void after(const struct usnet_syscall *sc, long ret)
{
	(void)ret;
	if (sc->nr >= 0 && sc->nr < USNET_HOOK_NR_COUNT)
		__atomic_fetch_add(&after_seen[sc->nr], 1, __ATOMIC_RELAXED);
}

static long inline_call(long nr)
{
	__asm__ volatile("syscall" : "+a"(nr) : : "rcx", "r11", "memory");
	return nr;
}

/* The arithmetic flags after an inline call nr(a0, 0, 0) made with all of
 * them set (CF PF AF ZF SF OF); the kernel keeps them. */
static unsigned long flags_across(long nr, long a0)
{
	unsigned long out;
	__asm__ volatile(
		"sub $128, %%rsp\n\t"          /* below the red zone */
		"pushfq\n\t"
		"orq $0x8d5, (%%rsp)\n\t"
		"popfq\n\t"
		"mov %[nr], %%rax\n\t"
		"syscall\n\t"
		"pushfq\n\t"
		"pop %[out]\n\t"
		"add $128, %%rsp\n\t"
		: [out] "=r"(out)
		: [nr] "r"(nr), "D"(a0), "S"(0L), "d"(0L)
		: "rax", "rcx", "r11", "memory", "cc");
	return out & 0x8d5;
}

static int fail(const char *why)
{
	fprintf(stderr, "interest_probe: %s\n", why);
	return 1;
}

static struct usnet_hook_interest set_a, set_b;
static volatile int stop;

static void *flip_interest(void *arg)
{
	(void)arg;
	for (int i = 0; i < 200; i++)
		if (usnet_hook_set_interest(i & 1 ? &set_a : &set_b) != 0)
			return (void *)1;
	return NULL;
}

static void *call_loop(void *arg)
{
	(void)arg;
	long bad = 0;
	while (!stop) {
		long r = getppid();
		/* in set_a getppid is answered, in set_b it is not */
		if (r != 4242 && r != usnet_hook_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0))
			bad++;
		if (inline_call(SYS_getpid) != usnet_hook_syscall(SYS_getpid, 0, 0, 0, 0, 0, 0))
			bad++;
	}
	return (void *)bad;
}

int main(int argc, char **argv)
{
	struct usnet_hook_interest only;
	memset(&only, 0, sizeof only);
	usnet_hook_interest_add(&only, SYS_getppid);
	usnet_hook_interest_add(&only, SYS_write);
	usnet_hook_interest_add(&only, 100000);   /* ignored */
	struct usnet_hook_config cfg = { .handler = handler, .after_pass = after, .interest = &only };
	if (argc > 1 && !strcmp(argv[1], "rewrite"))
		cfg.mode = USNET_HOOK_REWRITE;
	else if (argc > 1 && !strcmp(argv[1], "rewrite+sud"))
		cfg.mode = USNET_HOOK_REWRITE_SUD;
	else if (argc > 1 && !strcmp(argv[1], "sud"))
		cfg.mode = USNET_HOOK_SUD;
	else if (argc > 1 && !strcmp(argv[1], "page0"))
		cfg.mode = USNET_HOOK_PAGE0;
	if (usnet_hook_set_interest(NULL) != -EINVAL)
		return fail("usnet_hook_set_interest before install");
	char err[256];
	if (usnet_hook_install(&cfg, err, sizeof err) < 0)
		return fail(err);
	/* the hook keeps its own copy */
	memset(&only, 0xff, sizeof only);

	if (!usnet_hook_interest_has(&only, SYS_read) || usnet_hook_interest_has(&only, -1) ||
	    usnet_hook_interest_has(&only, USNET_HOOK_NR_COUNT))
		return fail("usnet_hook_interest_has");
	if (getppid() != 4242 || seen[SYS_getppid] != 1)
		return fail("a call in the set did not reach the handler");
	long pid = usnet_hook_syscall(SYS_getpid, 0, 0, 0, 0, 0, 0);
	if (getpid() != pid || inline_call(SYS_getpid) != pid || seen[SYS_getpid] || after_seen[SYS_getpid])
		return fail("a call outside the set reached the handler or after_pass");
	void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED || munmap(m, 4096) || seen[SYS_mmap] || after_seen[SYS_mmap] || seen[SYS_munmap])
		return fail("mmap/munmap outside the set reached the handler");
	if (write(1, "", 0) != 0 || seen[SYS_write] != 1 || after_seen[SYS_write] != 1)
		return fail("write in the set: handler and after_pass once each");
	if (inline_call(4096 + 500) != -ENOSYS || inline_call(511) != -ENOSYS)
		return fail("unassigned numbers outside the set");
	/* outside the set, answered by the handler, passed by it: write(1, NULL, 0) */
	static const long flag_calls[] = { SYS_getpid, SYS_getppid, SYS_write };
	for (size_t i = 0; i < sizeof flag_calls / sizeof flag_calls[0]; i++) {
		unsigned long flags = flags_across(flag_calls[i], 1);
		if (flags != 0x8d5) {
			fprintf(stderr, "interest_probe: flags 0x%lx after call %ld, not 0x8d5\n", flags,
				flag_calls[i]);
			return 1;
		}
	}

	/* a new set: getppid passes, getpid is seen */
	struct usnet_hook_interest pids;
	memset(&pids, 0, sizeof pids);
	usnet_hook_interest_add(&pids, SYS_getpid);
	long getppids = seen[SYS_getppid];
	if (usnet_hook_set_interest(&pids) != 0)
		return fail("usnet_hook_set_interest");
	if (getppid() == 4242 || seen[SYS_getppid] != getppids)
		return fail("getppid reached the handler after it left the set");
	if (inline_call(SYS_getpid) != pid || seen[SYS_getpid] != 1 || after_seen[SYS_getpid] != 1)
		return fail("getpid did not reach the handler after it joined the set");
	if (usnet_hook_set_interest((const struct usnet_hook_interest *)(1UL << 46)) != -EFAULT)
		return fail("a bad set pointer is not EFAULT");
	/* every call again */
	if (usnet_hook_set_interest(NULL) != 0)
		return fail("usnet_hook_set_interest(NULL)");
	long lseeks = seen[SYS_lseek];
	lseek(0, 0, SEEK_CUR);
	if (getppid() != 4242 || seen[SYS_lseek] != lseeks + 1)
		return fail("NULL did not bring back every call");

	/* threads changing the set while others call */
	usnet_hook_interest_add(&set_a, SYS_getppid);
	usnet_hook_interest_add(&set_b, SYS_getpid);
	pthread_t flip[2], call[2];
	for (int i = 0; i < 2; i++)
		if (pthread_create(&call[i], NULL, call_loop, NULL))
			return fail("pthread_create");
	for (int i = 0; i < 2; i++)
		if (pthread_create(&flip[i], NULL, flip_interest, NULL))
			return fail("pthread_create");
	void *res;
	long bad = 0;
	for (int i = 0; i < 2; i++) {
		pthread_join(flip[i], &res);
		bad += res != NULL;
	}
	stop = 1;
	for (int i = 0; i < 2; i++) {
		pthread_join(call[i], &res);
		bad += (long)res;
	}
	if (bad)
		return fail("wrong results while the set changed");
	printf("interest ok\n");
	return 0;
}
