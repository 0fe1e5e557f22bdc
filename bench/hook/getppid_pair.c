/*
 * bench/hook: native and hooked getppid measured side by side in one
 * process, so that load from other processes hits both alike.  Run with a
 * hook library preloaded: "native" issues the call through
 * usnet_hook_syscall() (a site the hook never rewrites), "hooked" through
 * libc's getppid() (rewritten, or dispatched by SUD).  Alternates batches of
 * BATCH calls (argv[2], default 2000) and prints the best per-call time of
 * each: "native hooked" in ns.  Smaller batches with more rounds find
 * quieter moments on a loaded machine.  With argv[3] "rw" each call is
 * instead a read of 64 bytes from /dev/zero or a write of them to
 * /dev/null, taken in turns (what dd bs=64 does), timed per call.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	int rw = argc > 3 && strcmp(argv[3], "rw") == 0;
	if (rounds < 1 || batch < 1 || (argc > 3 && !rw)) {
		fprintf(stderr, "usage: getppid_pair [ROUNDS [BATCH [rw]]]\n");
		return 2;
	}
	long (*raw)(long, long, long, long, long, long, long) =
		(long (*)(long, long, long, long, long, long, long))dlsym(RTLD_DEFAULT, "usnet_hook_syscall");
	if (!raw) {
		fprintf(stderr, "getppid_pair: no hook library preloaded\n");
		return 1;
	}
	int zero = open("/dev/zero", O_RDONLY), null = open("/dev/null", O_WRONLY);
	if (rw && (zero < 0 || null < 0)) {
		perror("getppid_pair: /dev/zero or /dev/null");
		return 1;
	}
	char buf[64];
	double best_native = 1e30, best_hooked = 1e30;
	for (long r = 0; r < rounds; r++) {
		double t0 = now_ns();
		if (rw) {
			for (int i = 0; i < batch; i += 2) {
				raw(SYS_read, zero, (long)buf, sizeof buf, 0, 0, 0);
				raw(SYS_write, null, (long)buf, sizeof buf, 0, 0, 0);
			}
		} else {
			for (int i = 0; i < batch; i++)
				raw(SYS_getppid, 0, 0, 0, 0, 0, 0);
		}
		double t1 = now_ns();
		if (rw) {
			for (int i = 0; i < batch; i += 2) {
				if (read(zero, buf, sizeof buf) < 0 || write(null, buf, sizeof buf) < 0)
					return 1;
			}
		} else {
			for (int i = 0; i < batch; i++)
				getppid();
		}
		double t2 = now_ns();
		if ((t1 - t0) / batch < best_native)
			best_native = (t1 - t0) / batch;
		if ((t2 - t1) / batch < best_hooked)
			best_hooked = (t2 - t1) / batch;
	}
	printf("%.1f %.1f\n", best_native, best_hooked);
	return 0;
}
