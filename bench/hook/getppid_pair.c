/*
 * bench/hook: native and hooked getppid measured side by side in one
 * process, so that load from other processes hits both alike.  Run with a
 * hook library preloaded: "native" issues the call through
 * usnet_hook_syscall() (a site the hook never rewrites), "hooked" through
 * libc's getppid() (rewritten, or dispatched by SUD).  Alternates batches of
 * BATCH calls (argv[2], default 2000) and prints the best per-call time of
 * each: "native hooked" in ns.  Smaller batches with more rounds find
 * quieter moments on a loaded machine.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>


static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv)
{
	long rounds = argc > 1 ? atol(argv[1]) : 300;
	long batch = argc > 2 ? atol(argv[2]) : 2000;
	if (rounds < 1 || batch < 1) {
		fprintf(stderr, "usage: getppid_pair [ROUNDS [BATCH]]\n");
		return 2;
	}
	long (*raw)(long, long, long, long, long, long, long) =
		(long (*)(long, long, long, long, long, long, long))dlsym(RTLD_DEFAULT, "usnet_hook_syscall");
	if (!raw) {
		fprintf(stderr, "getppid_pair: no hook library preloaded\n");
		return 1;
	}
	double best_native = 1e30, best_hooked = 1e30;
	for (long r = 0; r < rounds; r++) {
		double t0 = now_ns();
		for (int i = 0; i < batch; i++)
			raw(SYS_getppid, 0, 0, 0, 0, 0, 0);
		double t1 = now_ns();
		for (int i = 0; i < batch; i++)
			getppid();
		double t2 = now_ns();
		if ((t1 - t0) / batch < best_native)
			best_native = (t1 - t0) / batch;
		if ((t2 - t1) / batch < best_hooked)
			best_hooked = (t2 - t1) / batch;
	}
	printf("%.1f %.1f\n", best_native, best_hooked);
	return 0;
}
