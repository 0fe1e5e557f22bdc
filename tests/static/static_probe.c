/*
 * What tests/static runs as a statically linked program (gcc -static and
 * -static-pie): each mode prints what it saw, so that the output and exit
 * status under usnet can be compared with a run without it.
 *
 *   mix N      N getppid, a file read, uname, a write: a fixed set of calls
 *              (usnet trace -c against strace -f -c)
 *   tls        thread-local data and errno, in the main thread and another
 *   threads N  N threads, each with its own thread-local counter
 *   fork       a forked child's exit status
 *   spawn      posix_spawn and system() (vfork-like clones)
 *   heap       malloc of many sizes (brk and mmap), checked
 *   segv       a SIGSEGV handler meets a null-pointer read
 *   exe        the program's own path (/proc/self/exe)
 *   reexec     execs /proc/self/exe in mode exe
 *   sigpoll P  a thread sends the main thread 2000 signals while it polls a
 *              TCP listener on port P (under usnet: inside the switch); the
 *              handler must run on the program's alternate stack
 */
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static __thread long counter = 7;

static void *thread_main(void *arg)
{
	long id = (long)arg;
	for (int i = 0; i < 1000; i++)
		counter += id;
	errno = (int)id;
	close(-1);   /* sets this thread's errno */
	return (void *)(counter * 1000 + (errno == EBADF));
}

static int mode_threads(int n)
{
	pthread_t t[32];
	if (n > 32)
		n = 32;
	for (long i = 0; i < n; i++)
		if (pthread_create(&t[i], NULL, thread_main, (void *)(i + 1)))
			return 1;
	for (int i = 0; i < n; i++) {
		void *r;
		pthread_join(t[i], &r);
		printf("thread %d: %ld\n", i + 1, (long)r);
	}
	printf("main counter %ld\n", counter);
	return 0;
}

static char alt_stack[65536];
static volatile int alt_hits, alt_misses;
static pthread_t main_thread;

static void on_usr1(int sig)
{
	char here;
	(void)sig;
	if (&here >= alt_stack && &here < alt_stack + sizeof alt_stack)
		alt_hits++;
	else
		alt_misses++;
}

static void *signaller(void *arg)
{
	(void)arg;
	for (int i = 0; i < 2000; i++) {
		pthread_kill(main_thread, SIGUSR1);
		usleep(100);
	}
	return NULL;
}

static int mode_sigpoll(int port)
{
	stack_t st = { .ss_sp = alt_stack, .ss_size = sizeof alt_stack };
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_ONSTACK | SA_RESTART };
	if (sigaltstack(&st, NULL) || sigaction(SIGUSR1, &sa, NULL))
		return 1;
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 4)) {
		perror("static_probe: listen");
		return 1;
	}
	main_thread = pthread_self();
	pthread_t t;
	pthread_create(&t, NULL, signaller, NULL);
	for (int i = 0; i < 3000; i++) {
		struct pollfd p = { s, POLLIN, 0 };
		poll(&p, 1, 1);
	}
	pthread_join(t, NULL);
	printf("signals on the alternate stack: %s, elsewhere: %d\n", alt_hits > 0 ? "yes" : "no", alt_misses);
	return 0;
}

static sigjmp_buf segv_jump;
static void on_segv(int sig)
{
	printf("handler: signal %d\n", sig);
	fflush(stdout);
	siglongjmp(segv_jump, 1);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	int n = argc > 2 ? atoi(argv[2]) : 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(mode, "mix")) {
		long sum = 0;
		for (int i = 0; i < n; i++)
			sum += getppid() > 0;
		char buf[64];
		int fd = open("/etc/hostname", O_RDONLY);
		ssize_t got = fd >= 0 ? read(fd, buf, sizeof buf) : -1;
		if (fd >= 0)
			close(fd);
		struct utsname u;
		uname(&u);
		printf("mix %ld %s\n", sum, got > 0 ? "read" : "no-read");
		return 0;
	}
	if (!strcmp(mode, "tls")) {
		errno = 0;
		close(-1);
		int e = errno;
		pthread_t t;
		void *r;
		pthread_create(&t, NULL, thread_main, (void *)3);
		pthread_join(t, &r);
		printf("errno %d counter %ld thread %ld\n", e, counter, (long)r);
		return 0;
	}
	if (!strcmp(mode, "threads"))
		return mode_threads(n);
	if (!strcmp(mode, "fork")) {
		pid_t p = fork();
		if (p == 0) {
			counter = 99;
			_exit(42);
		}
		int st;
		waitpid(p, &st, 0);
		printf("child exit %d, counter here %ld\n", WEXITSTATUS(st), counter);
		return 0;
	}
	if (!strcmp(mode, "spawn")) {
		pid_t p;
		char *av[] = { "sh", "-c", "exit 5", NULL };
		int r = posix_spawn(&p, "/bin/sh", NULL, NULL, av, environ);
		int st = 0;
		if (r == 0)
			waitpid(p, &st, 0);
		printf("posix_spawn %d status %d\n", r, WEXITSTATUS(st));
		printf("system %d\n", WEXITSTATUS(system("exit 6")));
		return 0;
	}
	if (!strcmp(mode, "heap")) {
		unsigned long sum = 0;
		char *p[200];
		for (int i = 0; i < 200; i++) {
			size_t sz = (size_t)(i * 997 % 300000) + 1;
			p[i] = malloc(sz);
			memset(p[i], i, sz);
			sum += (unsigned char)p[i][sz - 1];
		}
		for (int i = 0; i < 200; i += 2)
			free(p[i]);
		printf("heap %lu\n", sum);
		return 0;
	}
	if (!strcmp(mode, "segv")) {
		struct sigaction sa = { .sa_handler = on_segv };
		sigaction(SIGSEGV, &sa, NULL);
		if (sigsetjmp(segv_jump, 1) == 0) {
			volatile long *volatile null_plus_8 = (long *)8;   /* opaque to the compiler */
			long v = *null_plus_8;
			printf("read %ld: no fault\n", v);
			return 1;
		}
		printf("after the fault\n");
		return 3;
	}
	if (!strcmp(mode, "exe")) {
		char buf[4096];
		ssize_t len = readlink("/proc/self/exe", buf, sizeof buf - 1);
		buf[len > 0 ? len : 0] = 0;
		printf("exe %s\n", buf);
		return 0;
	}
	if (!strcmp(mode, "sigpoll"))
		return mode_sigpoll(n);
	if (!strcmp(mode, "reexec")) {
		char *av[] = { argv[0], "exe", NULL };
		execv("/proc/self/exe", av);
		perror("static_probe: execv");
		return 1;
	}
	fprintf(stderr, "usage: static_probe mix N|tls|threads N|fork|spawn|heap|segv|exe|reexec|sigpoll PORT\n");
	return 2;
}
