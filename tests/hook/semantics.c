/*
 * usnet hook tests — what a program must not notice about the hook
 * (tests/hook/run.sh runs each with and without it and compares).
 *
 *   semantics null-read        a SIGSEGV handler, then a read of
 *                              *(volatile long *)8: the handler prints what
 *                              it got (address, code) and exits 3
 *   semantics redzone N        N rounds of each red-zone leaf below: every
 *                              8-byte slot of the 128-byte red zone, -8
 *                              included, holds a value across an inline
 *                              `syscall` and is checked after it; prints
 *                              "red zone kept" or what changed, exit 0/1
 *   semantics uring            liburing (when built with it): an eventfd
 *                              registered (liburing passes it in the red
 *                              zone, at -4(%rsp)), 1000 NOPs submitted and
 *                              waited for (__io_uring_get_cqe keeps a
 *                              pointer at -8(%rsp) across io_uring_enter);
 *                              prints the results
 *   semantics mlock ADDR PORT  mlockall(MCL_CURRENT | MCL_FUTURE), then a
 *                              TCP listener on ADDR:PORT (an address only
 *                              usnet's stack owns, so the kernel would
 *                              refuse it), then prints how long mlockall
 *                              took and VmSize/VmLck in MiB
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_LIBURING
#include <liburing.h>
#include <sys/eventfd.h>
#endif

/* --- null-read --- */
static void put_str(char *buf, size_t *n, const char *s)
{
	while (*s)
		buf[(*n)++] = *s++;
}

static void put_hex(char *buf, size_t *n, unsigned long v)
{
	char tmp[16];
	int k = 0;
	put_str(buf, n, "0x");
	do {
		tmp[k++] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	while (k)
		buf[(*n)++] = tmp[--k];
}

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	char buf[128];
	size_t n = 0;
	put_str(buf, &n, "handler: signal ");
	put_hex(buf, &n, (unsigned long)sig);
	put_str(buf, &n, " at address ");
	put_hex(buf, &n, (unsigned long)si->si_addr);
	put_str(buf, &n, " code ");
	put_hex(buf, &n, (unsigned long)si->si_code);
	put_str(buf, &n, "\n");
	if (write(1, buf, n) < 0)
		_exit(4);
	_exit(3);
}

static int null_read(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO;
	if (sigaction(SIGSEGV, &sa, NULL) < 0)
		return 1;
	printf("reading address 8\n");
	fflush(stdout);
	volatile long *p = (volatile long *)8;
	__asm__("" : "+r"(p));   /* not a constant the compiler could see */
	long v = *p;
	printf("read %lx from address 8 without a fault\n", v);
	return 0;
}

/* --- red zone: leaves that fill all 16 slots below rsp, make a system
 * call, and count the slots that changed (returned in rax).  Different
 * code around each syscall: the hook plans each site its own way (jump
 * through padding, or move the neighbouring instructions). --- */
long rz_plain(long seed);      /* syscall, then straight-line code */
long rz_target(long seed);     /* syscall followed by a branch target */
long rz_ret(long seed);        /* syscall; ret (the check is done by the caller) */
long rz_ret_check(long seed);
long rz_fwd(long seed);        /* no padding within reach: the instructions after move */
long rz_back(long seed);       /* ... and a branch target right after: those before move */
__asm__(".text\n"
	/* fill: slot k (1..16) at -8k(%rsp) = seed * k; rdi = seed */
	".macro RZ_FILL\n"
	"  mov $1, %ecx\n"
	"1: mov %rdi, %rdx\n"
	"  imul %rcx, %rdx\n"
	"  mov %rcx, %r8\n"
	"  shl $3, %r8\n"
	"  neg %r8\n"
	"  mov %rdx, (%rsp,%r8)\n"
	"  inc %ecx\n"
	"  cmp $16, %ecx\n"
	"  jbe 1b\n"
	".endm\n"
	/* check: rax = number of slots that changed */
	".macro RZ_CHECK\n"
	"  xor %eax, %eax\n"
	"  mov $1, %ecx\n"
	"2: mov %rdi, %rdx\n"
	"  imul %rcx, %rdx\n"
	"  mov %rcx, %r8\n"
	"  shl $3, %r8\n"
	"  neg %r8\n"
	"  cmp %rdx, (%rsp,%r8)\n"
	"  je 3f\n"
	"  inc %eax\n"
	"3: inc %ecx\n"
	"  cmp $16, %ecx\n"
	"  jbe 2b\n"
	".endm\n"
	".globl rz_plain\n"
	"rz_plain:\n"
	"  RZ_FILL\n"
	"  mov $110, %eax\n"
	"  syscall\n"
	"  mov %rdi, %rsi\n"
	"  RZ_CHECK\n"
	"  ret\n"
	/* 150 bytes without padding on either side of the syscall */
	".macro RZ_FAR\n"
	"  .rept 50\n"
	"  mov %rdi, %rsi\n"
	"  .endr\n"
	".endm\n"
	".globl rz_fwd\n"
	"rz_fwd:\n"
	"  RZ_FILL\n"
	"  RZ_FAR\n"
	"  mov $110, %eax\n"
	"  syscall\n"
	"  mov %rdi, %rsi\n"
	"  mov %rdi, %rsi\n"
	"  RZ_FAR\n"
	"  RZ_CHECK\n"
	"  ret\n"
	".globl rz_back\n"
	"rz_back:\n"
	"  RZ_FILL\n"
	"  RZ_FAR\n"
	"  mov $110, %eax\n"
	"  syscall\n"
	"6: mov %rdi, %rsi\n"
	"  test %rsp, %rsp\n"
	"  jz 6b\n"                   /* never taken: makes 6 a branch target */
	"  RZ_FAR\n"
	"  RZ_CHECK\n"
	"  ret\n"
	".globl rz_target\n"
	"rz_target:\n"
	"  RZ_FILL\n"
	"  xor %esi, %esi\n"
	"4: mov $110, %eax\n"
	"  syscall\n"
	"5: inc %esi\n"
	"  cmp $2, %esi\n"
	"  jb 4b\n"
	"  cmp $3, %esi\n"
	"  je 5b\n"
	"  RZ_CHECK\n"
	"  ret\n"
	/* a leaf whose syscall ends it: the caller's red zone is its own
	 * frame's (the return address sits at (%rsp) here, slots below) */
	".globl rz_ret\n"
	"rz_ret:\n"
	"  RZ_FILL\n"
	"  mov $110, %eax\n"
	"  syscall\n"
	"  ret\n"
	"  .p2align 4\n"
	".globl rz_ret_check\n"
	"rz_ret_check:\n"             /* called at rz_ret's depth: the same slots */
	"  RZ_CHECK\n"
	"  ret\n");

static int redzone(long n)
{
	long bad_plain = 0, bad_target = 0, bad_ret = 0, bad_fwd = 0, bad_back = 0;
	for (long i = 0; i < n; i++) {
		long seed = 0x5bd1e995L * (i + 1);
		bad_plain += rz_plain(seed);
		bad_target += rz_target(seed);
		bad_fwd += rz_fwd(seed);
		bad_back += rz_back(seed);
		/* nothing may run between the two: both leaves of one caller,
		 * the same stack pointer */
		__asm__ volatile("lea -128(%%rsp), %%rsp\n"   /* this function's own red zone */
				 "mov %2, %%rdi\n"
				 "call rz_ret\n"
				 "mov %2, %%rdi\n"
				 "call rz_ret_check\n"
				 "lea 128(%%rsp), %%rsp\n"
				 "add %%rax, %0\n"
				 : "+r"(bad_ret), "=&a"(seed)
				 : "r"(seed)
				 : "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "memory", "cc");
	}
	if (bad_plain || bad_target || bad_ret || bad_fwd || bad_back) {
		printf("red zone changed: %ld slots after straight-line code, %ld before a branch target, "
		       "%ld before a ret, %ld and %ld far from padding\n", bad_plain, bad_target, bad_ret,
		       bad_fwd, bad_back);
		return 1;
	}
	printf("red zone kept\n");
	return 0;
}

/* --- liburing: real code that keeps data in the red zone --- */
static int uring(void)
{
#ifdef HAVE_LIBURING
	struct io_uring ring;
	int r = io_uring_queue_init(8, &ring, 0);
	if (r < 0) {
		printf("io_uring_queue_init: %s\n", strerror(-r));
		return 1;
	}
	int efd = eventfd(0, 0);
	printf("io_uring_register_eventfd: %d\n", io_uring_register_eventfd(&ring, efd));
	for (unsigned i = 1; i <= 1000; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		io_uring_prep_nop(sqe);
		sqe->user_data = i;
		io_uring_submit(&ring);
		struct io_uring_cqe *cqe;
		r = io_uring_wait_cqe(&ring, &cqe);
		if (r < 0 || cqe->user_data != i) {
			printf("completion %u: %d, user_data %llu\n", i, r, r < 0 ? 0ULL : (unsigned long long)cqe->user_data);
			return 1;
		}
		io_uring_cqe_seen(&ring, cqe);
	}
	uint64_t n = 0;
	if (read(efd, &n, sizeof n) != sizeof n)
		printf("eventfd: %s\n", strerror(errno));
	printf("1000 completions; eventfd counted %llu\n", (unsigned long long)n);
	io_uring_queue_exit(&ring);
	return 0;
#else
	printf("built without liburing\n");
	return 77;
#endif
}

/* --- mlockall --- */
static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static long status_kib(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	size_t k = strlen(key);
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, key, k) && line[k] == ':')
			v = atol(line + k + 1);
	if (f)
		fclose(f);
	return v;
}

static int mlock_serve(const char *addr, int port)
{
	double t0 = now_s();
	if (mlockall(MCL_CURRENT | MCL_FUTURE) < 0) {
		printf("mlockall: %s\n", strerror(errno));
		return 1;
	}
	double t1 = now_s();
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (fd < 0 || inet_pton(AF_INET, addr, &sa.sin_addr) != 1 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 8) < 0) {
		printf("listener on %s:%d: %s\n", addr, port, strerror(errno));
		return 1;
	}
	close(fd);
	printf("listening; mlockall took %.0f ms; VmSize %ld MiB VmLck %ld MiB\n", (t1 - t0) * 1e3,
	       status_kib("VmSize") / 1024, status_kib("VmLck") / 1024);
	return 0;
}

int main(int argc, char **argv)
{
	const char *t = argc > 1 ? argv[1] : "";
	if (!strcmp(t, "null-read"))
		return null_read();
	if (!strcmp(t, "redzone"))
		return redzone(argc > 2 ? atol(argv[2]) : 100);
	if (!strcmp(t, "uring"))
		return uring();
	if (!strcmp(t, "mlock") && argc > 3)
		return mlock_serve(argv[2], atoi(argv[3]));
	fprintf(stderr, "usage: semantics null-read | redzone N | uring | mlock ADDR PORT\n");
	return 2;
}
