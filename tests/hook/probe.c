/*
 * usnet hook tests — the probe: each subcommand makes a known number of
 * getppid calls (the marker) through one path the hook must see, checks that
 * the program itself still behaves, and exits 0 (1 with a message when not).
 * tests/hook/run.sh runs it under `usnet trace -c` and compares the count.
 *
 *   probe libc|syscall|inline N        N calls by that route
 *   probe dlopen LIB N                 N raw calls from a dlopen'ed library
 *   probe jit-rwx|jit-wx N             N calls from generated code
 *   probe threads T N                  T pthreads x N inline calls
 *   probe clone-vm N                   raw clone(CLONE_VM, own stack): N in child + N in parent
 *   probe vfork-exec N                 vfork, child execs "probe inline N"; parent N
 *   probe spawn N                      posix_spawn "probe inline N"; parent N
 *   probe fork N                       fork: N in child + N in parent
 *   probe signals N                    N signal handlers (SA_SIGINFO|SA_RESTART|SA_ONSTACK)
 *                                      calling getppid while main sleeps in read()
 *   probe redzone N                    N inline calls with live data in the red zone
 *   probe vector N                     N inline calls with AVX/AVX-512 registers checked
 *   probe vector-rewrite N             N mmap(PROT_EXEC) (rewritten by the hook's vector-using
 *                                      code) with zmm9 checked, and N inline getppid
 *   probe bad-pointers                 calls the hook looks into, with bad pointers, and
 *                                      unassigned call numbers: prints each result (must
 *                                      match the run without the hook)
 *   probe null-call                    calls a null function pointer (must be reported)
 *   probe segv                         SIGSEGV's action as the program sees it, numbers
 *                                      beyond the trampoline while it is the default,
 *                                      the program's own handler catching a fault, and
 *                                      at last a fault that kills (output and status
 *                                      must match the run without the hook)
 *   probe stray NR                     `call *%rax` with rax = NR from code that was never
 *                                      a system call: the bytes of a rewritten site, but
 *                                      not one (must be reported)
 *   probe exec-noenv N                 execve "probe inline N" with an empty environment
 *   probe sigmask N                    the program's signal mask kept (probe_sigmask.c),
 *                                      then N inline calls
 *   probe mix N                        N getppid, N write(/dev/null), N failing chdir,
 *                                      N lseek (for comparing with strace -f -c)
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *self_path;

static void die(const char *what)
{
	fprintf(stderr, "probe: %s (%s)\n", what, strerror(errno));
	exit(1);
}

static inline long inline_getppid(void)
{
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "0"((long)SYS_getppid) : "rcx", "r11", "memory");
	return ret;
}

static void inline_n(long n)
{
	long want = getppid();   /* one more libc call, not counted by run.sh's marker */
	(void)want;
	for (long i = 0; i < n; i++)
		if (inline_getppid() <= 0)
			die("inline getppid failed");
}

/* --- JIT: "mov $110, %eax; syscall; ret" --- */
static const unsigned char jit_code[] = { 0xb8, SYS_getppid, 0, 0, 0, 0x0f, 0x05, 0xc3 };

static void run_jit(long n, int wx)
{
	size_t len = 4096;
	int prot = wx ? PROT_READ | PROT_WRITE : PROT_READ | PROT_WRITE | PROT_EXEC;
	unsigned char *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap");
	memcpy(p + 64, jit_code, sizeof jit_code);
	if (wx && mprotect(p, len, PROT_READ | PROT_EXEC) < 0)
		die("mprotect");
	long (*fn)(void) = (long (*)(void))(p + 64);
	for (long i = 0; i < n; i++)
		if (fn() != getppid())
			die("jit getppid wrong");
	/* the getppid() above in the check doubles the libc count: run.sh
	 * expects 2n for jit tests */
}

/* --- threads --- */
static long thread_n;
static void *thread_main(void *arg)
{
	(void)arg;
	for (long i = 0; i < thread_n; i++)
		inline_getppid();
	return NULL;
}

/* --- raw clone: rdi flags, rsi stack top, rdx child function.  The child
 * gets its function back from r9, so the hook must keep r9 in the child. --- */
long raw_clone(unsigned long flags, void *stack_top, void (*fn)(void));
__asm__(".text\n"
	".globl raw_clone\n"
	"raw_clone:\n"
	"  mov %rdx, %r9\n"
	"  mov $56, %eax\n"
	"  xor %edx, %edx\n"
	"  xor %r10d, %r10d\n"
	"  xor %r8d, %r8d\n"
	"  syscall\n"
	"  test %rax, %rax\n"
	"  jnz 1f\n"
	"  and $-16, %rsp\n"
	"  call *%r9\n"
	"  mov $60, %eax\n"
	"  xor %edi, %edi\n"
	"  syscall\n"
	"  hlt\n"
	"1: ret\n");

static long clone_n;
static volatile int clone_child_ok;
static char *clone_stack;
static void clone_child(void)
{
	char here;
	/* running on the stack we gave it */
	if (&here > clone_stack && &here < clone_stack + 65536)
		clone_child_ok = 1;
	for (long i = 0; i < clone_n; i++)
		inline_getppid();
}

/* --- signals --- */
static atomic_int signals_seen;
static char *altstack;
static atomic_int bad_stack;
static void on_signal(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	char here;
	if (!(&here > altstack && &here < altstack + 65536))
		bad_stack = 1;
	if (si->si_code != SI_TKILL)
		bad_stack = 2;
	inline_getppid();
	atomic_fetch_add(&signals_seen, 1);
}

struct sig_sender {
	pthread_t target;
	long n;
	int pipe_w;
};

static void *signal_sender(void *arg)
{
	struct sig_sender *s = arg;
	for (long i = 0; i < s->n; i++) {
		/* let main get back into read() */
		struct timespec ts = { 0, 2000000 };
		nanosleep(&ts, NULL);
		pthread_kill(s->target, SIGUSR1);
		while (atomic_load(&signals_seen) <= i)
			sched_yield();
	}
	if (write(s->pipe_w, "x", 1) != 1)
		die("write");
	return NULL;
}

static void run_signals(long n)
{
	altstack = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	stack_t ss = { .ss_sp = altstack, .ss_size = 65536 };
	if (sigaltstack(&ss, NULL) < 0)
		die("sigaltstack");
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
	sigfillset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) < 0)
		die("sigaction");
	int p[2];
	if (pipe(p) < 0)
		die("pipe");
	struct sig_sender s = { pthread_self(), n, p[1] };
	pthread_t t;
	pthread_create(&t, NULL, signal_sender, &s);
	char c;
	ssize_t r = read(p[0], &c, 1);   /* interrupted n times, restarted each time */
	if (r != 1 || c != 'x')
		die("read was not restarted");
	pthread_join(t, NULL);
	if (atomic_load(&signals_seen) != n || bad_stack) {
		fprintf(stderr, "probe: signals %d of %ld, bad_stack %d\n", atomic_load(&signals_seen), n,
			(int)bad_stack);
		exit(1);
	}
}

/* --- red zone: a leaf keeps 15 words below rsp (-16..-128) across a
 * syscall.  The word at -8 is where the rewritten `call` puts its return
 * address, so it is not checked (see DESIGN.md: zpoline-class limitation). --- */
static long redzone_once(void)
{
	long bad;
	__asm__ volatile(
		"  mov $16, %%rcx\n"
		"1: mov %%rcx, %%rdx\n"
		"  imul $0x1e3779b1, %%rdx\n"
		"  mov %%rsp, %%r11\n"
		"  sub %%rcx, %%r11\n"
		"  mov %%rdx, (%%r11)\n"
		"  add $8, %%rcx\n"
		"  cmp $128, %%rcx\n"
		"  jbe 1b\n"
		"  mov $110, %%eax\n"
		"  syscall\n"
		"  xor %0, %0\n"
		"  mov $16, %%rcx\n"
		"2: mov %%rcx, %%rdx\n"
		"  imul $0x1e3779b1, %%rdx\n"
		"  mov %%rsp, %%r11\n"
		"  sub %%rcx, %%r11\n"
		"  cmp %%rdx, (%%r11)\n"
		"  je 3f\n"
		"  inc %0\n"
		"3: add $8, %%rcx\n"
		"  cmp $128, %%rcx\n"
		"  jbe 2b\n"
		: "=&r"(bad)
		:
		: "rax", "rcx", "rdx", "r11", "memory");
	return bad;
}

/* --- SIGSEGV: the program's own, and the hook's for numbers beyond the
 * trampoline --- */
static sigjmp_buf segv_jump;
/* address 16, which the compiler must not see as a constant */
static volatile char *volatile segv_addr = (volatile char *)16;
static void segv_catch(int sig)
{
	(void)sig;
	siglongjmp(segv_jump, 1);
}

static long inline_nr_fd(long nr, long fd)
{
	__asm__ volatile("syscall" : "+a"(nr) : "D"(fd) : "rcx", "r11", "memory");
	return nr;
}

static long inline_nr(long nr)
{
	return inline_nr_fd(nr, -1);
}

static const char *segv_action(void)
{
	struct sigaction old;
	if (sigaction(SIGSEGV, NULL, &old))
		return "error";
	return old.sa_handler == SIG_DFL ? "default" : old.sa_handler == segv_catch ? "own" : "other";
}

static int segv_probe(void)
{
	printf("at start: %s\n", segv_action());
	printf("call 100000: %s\n", inline_nr(100000) == -ENOSYS ? "ENOSYS" : "other");
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = segv_catch;
	if (sigaction(SIGSEGV, &sa, NULL))
		die("sigaction");
	printf("after setting a handler: %s\n", segv_action());
	if (!sigsetjmp(segv_jump, 1)) {
		*segv_addr = 1;
		printf("a write to address 16 did not fault\n");
	} else {
		printf("the program's handler caught a fault\n");
	}
	struct sigaction old;
	sa.sa_handler = SIG_DFL;
	if (sigaction(SIGSEGV, &sa, &old))
		die("sigaction");
	printf("replaced: %s; now: %s\n", old.sa_handler == segv_catch ? "own" : "other", segv_action());
	printf("call 8192: %s\n", inline_nr(8192) == -ENOSYS ? "ENOSYS" : "other");
	printf("call -1: %s\n", inline_nr(-1) == -ENOSYS ? "ENOSYS" : "other");
	fflush(stdout);
	*segv_addr = 1;
	printf("survived a fault with the default action\n");
	return 0;
}

/* --- vector registers --- */
int vector_check(long n);   /* probe_vector.c */
int vector_rewrite_check(long n);
int sigmask_check(long n);      /* probe_sigmask.c */

int main(int argc, char **argv)
{
	self_path = argv[0];
	if (argc < 2) {
		fprintf(stderr, "usage: probe TEST [ARGS]\n");
		return 2;
	}
	const char *t = argv[1];
	long n = argc > 2 ? atol(argv[argc - 1]) : 0;
	if (!strcmp(t, "libc")) {
		for (long i = 0; i < n; i++)
			getppid();
	} else if (!strcmp(t, "syscall")) {
		for (long i = 0; i < n; i++)
			syscall(SYS_getppid);
	} else if (!strcmp(t, "inline")) {
		for (long i = 0; i < n; i++)
			inline_getppid();
	} else if (!strcmp(t, "dlopen")) {
		void *h = dlopen(argv[2], RTLD_NOW);
		if (!h) {
			fprintf(stderr, "probe: %s\n", dlerror());
			return 1;
		}
		long (*raw)(long) = (long (*)(long))dlsym(h, "hookraw_getppid_n");
		if (!raw || raw(n) != n)
			die("library calls failed");
	} else if (!strcmp(t, "jit-rwx") || !strcmp(t, "jit-wx")) {
		run_jit(n, !strcmp(t, "jit-wx"));
	} else if (!strcmp(t, "threads")) {
		long nt = atol(argv[2]);
		pthread_t th[64];
		thread_n = n;
		for (long i = 0; i < nt && i < 64; i++)
			if (pthread_create(&th[i], NULL, thread_main, NULL))
				die("pthread_create");
		for (long i = 0; i < nt && i < 64; i++)
			pthread_join(th[i], NULL);
	} else if (!strcmp(t, "clone-vm")) {
		clone_n = n;
		clone_stack = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		long pid = raw_clone(CLONE_VM | SIGCHLD, clone_stack + 65536, clone_child);
		if (pid < 0)
			die("clone");
		int st;
		if (waitpid((pid_t)pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
			die("clone child failed");
		if (!clone_child_ok)
			die("clone child not on its own stack");
		inline_n(n);
	} else if (!strcmp(t, "vfork-exec")) {
		char num[32];
		snprintf(num, sizeof num, "%ld", n);
		pid_t pid = vfork();
		if (pid == 0) {
			char *args[] = { (char *)self_path, "inline", num, NULL };
			execve(self_path, args, environ);
			_exit(127);
		}
		int st;
		if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
			die("vfork child failed");
		inline_n(n);
	} else if (!strcmp(t, "exec-noenv")) {
		char num[32];
		snprintf(num, sizeof num, "%ld", n);
		char *args[] = { (char *)self_path, "inline", num, NULL };
		char *noenv[] = { NULL };
		execve(self_path, args, noenv);
		die("execve");
	} else if (!strcmp(t, "spawn")) {
		char num[32];
		snprintf(num, sizeof num, "%ld", n);
		char *args[] = { (char *)self_path, "inline", num, NULL };
		pid_t pid;
		if (posix_spawn(&pid, self_path, NULL, NULL, args, environ))
			die("posix_spawn");
		int st;
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
			die("spawned child failed");
		inline_n(n);
	} else if (!strcmp(t, "fork")) {
		pid_t pid = fork();
		if (pid == 0) {
			for (long i = 0; i < n; i++)
				inline_getppid();
			_exit(0);
		}
		int st;
		if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
			die("fork child failed");
		inline_n(n);
	} else if (!strcmp(t, "signals")) {
		run_signals(n);
	} else if (!strcmp(t, "redzone")) {
		for (long i = 0; i < n; i++)
			if (redzone_once()) {
				fprintf(stderr, "probe: red zone changed across a syscall\n");
				return 1;
			}
	} else if (!strcmp(t, "vector")) {
		return vector_check(n);
	} else if (!strcmp(t, "mix")) {
		int fd = open("/dev/null", O_WRONLY);
		if (fd < 0)
			die("open /dev/null");
		for (long i = 0; i < n; i++) {
			getppid();
			if (write(fd, "x", 1) != 1)
				die("write");
			if (chdir("/nonexistent/usnet-hook") == 0)
				die("chdir succeeded");
			lseek(fd, 0, SEEK_SET);
		}
		close(fd);
	} else if (!strcmp(t, "vector-rewrite")) {
		return vector_rewrite_check(n);
	} else if (!strcmp(t, "bad-pointers")) {
		/* not in page 0: the rewrite mode maps it (readable, as for zpoline) */
		void *bad = (void *)(1UL << 46);
		char *args[] = { (char *)self_path, "inline", "1", NULL };
		printf("execve %ld\n", syscall(SYS_execve, self_path, args, bad) < 0 ? (long)errno : 0L);
		printf("execve-entry %ld\n", syscall(SYS_execve, "/nonexistent/x", args, (char *[]){ bad, NULL }) < 0 ? (long)errno : 0L);
		printf("clone3 %ld\n", syscall(SYS_clone3, bad, 88) < 0 ? (long)errno : 0L);
		printf("rt_sigaction %ld\n", syscall(SYS_rt_sigaction, SIGUSR2, bad, NULL, 8) < 0 ? (long)errno : 0L);
		printf("rt_sigprocmask %ld\n", syscall(SYS_rt_sigprocmask, SIG_BLOCK, bad, NULL, 8) < 0 ? (long)errno : 0L);
		printf("mprotect %ld\n", syscall(SYS_mprotect, bad, 4096, PROT_READ | PROT_EXEC) < 0 ? (long)errno : 0L);
		/* numbers no kernel assigns yet, across the whole trampoline: the
		 * fast path's (below 512), the entry's, and the limits of both
		 * pages (include/usnet/hook.h) */
		static const long unassigned[] = { 400, 423, 500, 511, 512, 517, 600, 1000, 2047, 2048,
						   3399, 4096, 6000, 8000, 8099,
						   /* beyond the trampoline: unmapped, and
						    * non-canonical (hook_fault.c); Linux
						    * takes the low 32 bits, so 1 << 40 and
						    * 1 << 47 are read() (EBADF) */
						   8192, 65536, 1L << 40, 1L << 47, -1 };
		int enosys = 0;
		for (size_t i = 0; i < sizeof unassigned / sizeof unassigned[0]; i++) {
			/* fd -1: a number whose low 32 bits are 0 is read() */
			long r = unassigned[i];
			__asm__ volatile("syscall" : "+a"(r) : "D"(-1L) : "rcx", "r11", "memory");
			enosys += r == -ENOSYS;
		}
		printf("enosys %d\n", enosys);
		printf("read(-1) by 1 << 40: %ld\n", inline_nr_fd(1L << 40, -1));
	} else if (!strcmp(t, "sigmask")) {
		return sigmask_check(n);
	} else if (!strcmp(t, "stray")) {
		long nr = n;
		__asm__ volatile("call *%%rax" : "+a"(nr) : : "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10",
				 "r11", "memory", "cc");
		fprintf(stderr, "probe: survived a stray call into page 0 (returned %ld)\n", nr);
		return 0;
	} else if (!strcmp(t, "segv")) {
		return segv_probe();
	} else if (!strcmp(t, "null-call")) {
		void (*volatile fn)(void) = NULL;
		fn();
		fprintf(stderr, "probe: survived a null call\n");
		return 0;
	} else {
		fprintf(stderr, "probe: unknown test %s\n", t);
		return 2;
	}
	return 0;
}
