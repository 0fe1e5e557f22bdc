/*
 * usnet trace [-c] [-o FILE] [--hook MODE] [-v] -- PROGRAM ARGS...
 *
 * Runs PROGRAM with libusnet-trace.so preloaded (found next to the `usnet`
 * binary, or $USNET_TRACE_LIB).  Like `strace -f`: every thread and child is
 * followed (the library is preloaded again after each execve).  With -c the
 * processes add to shared counters (a file mapping) and a table of calls and
 * errors per system call is printed when PROGRAM exits; without -c each call
 * is printed as one line "[pid] name(args) = result".
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "program_kind.h"
#include "../hook/trace_counts.h"

static void trace_usage(FILE *f)
{
	fprintf(f,
		"usage: usnet trace [-c] [-e [trace=]LIST] [-o FILE] [--hook MODE] [--strict] [-v]\n"
		"                   -- PROGRAM ARGS...\n"
		"  -c          count calls and errors per system call; print a table at exit\n"
		"  -e LIST     only these calls (names or numbers, comma-separated; the others\n"
		"              skip the tracer), like strace -e trace=LIST\n"
		"  -o FILE     write the table or the per-call lines to FILE (default: stderr)\n"
		"  --hook MODE " CLI_HOOK_HELP "\n"
		"  --strict    refuse to run a program usnet cannot hook (set-user-ID, not\n"
		"              x86-64) instead of saying so in one line\n"
		"  -v          say what the hook does (twice: more)\n"
		"A statically linked PROGRAM is started through usnet-exec, hooked with SUD.\n");
}

/* libusnet-trace.so next to the running usnet binary. */
static int find_library(char *out, size_t cap)
{
	const char *env = getenv("USNET_TRACE_LIB");
	if (env && *env) {
		if ((size_t)snprintf(out, cap, "%s", env) >= cap)
			return -1;
		return access(out, R_OK) == 0 ? 0 : -1;
	}
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return -1;
	exe[n] = 0;
	char *slash = strrchr(exe, '/');
	if (!slash)
		return -1;
	*slash = 0;
	if ((size_t)snprintf(out, cap, "%s/libusnet-trace.so", exe) >= cap)
		return -1;
	return access(out, R_OK) == 0 ? 0 : -1;
}

struct row {
	int nr;
	uint64_t calls, errors;
};

static int row_cmp(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	if (x->calls != y->calls)
		return x->calls < y->calls ? 1 : -1;
	return x->nr - y->nr;
}

static void print_table(FILE *f, const struct usnet_trace_counts *c)
{
	struct row rows[USNET_SYSCALL_MAX];
	int n = 0;
	uint64_t total_calls = 0, total_errors = 0;
	for (int i = 0; i < USNET_SYSCALL_MAX; i++) {
		if (!c->calls[i])
			continue;
		rows[n++] = (struct row){ i, c->calls[i], c->errors[i] };
		total_calls += c->calls[i];
		total_errors += c->errors[i];
	}
	qsort(rows, (size_t)n, sizeof rows[0], row_cmp);
	fprintf(f, "%10s %10s %s\n", "calls", "errors", "syscall");
	fprintf(f, "---------- ---------- ----------------\n");
	for (int i = 0; i < n; i++) {
		const char *name = usnet_syscall_names[rows[i].nr];
		char unknown[32];
		if (!name) {
			snprintf(unknown, sizeof unknown, "syscall_%d", rows[i].nr);
			name = unknown;
		}
		if (rows[i].errors)
			fprintf(f, "%10llu %10llu %s\n", (unsigned long long)rows[i].calls,
				(unsigned long long)rows[i].errors, name);
		else
			fprintf(f, "%10llu %10s %s\n", (unsigned long long)rows[i].calls, "", name);
	}
	fprintf(f, "---------- ---------- ----------------\n");
	fprintf(f, "%10llu %10llu total\n", (unsigned long long)total_calls,
		(unsigned long long)total_errors);
}

/* "read,write,42": every item a known system-call name or a number below
 * USNET_SYSCALL_MAX; otherwise one line on stderr and -1. */
static int check_call_list(const char *list)
{
	if (!*list) {
		fprintf(stderr, "usnet trace: -e wants a list of system calls\n");
		return -1;
	}
	for (const char *p = list; *p;) {
		size_t len = strcspn(p, ",");
		char item[64];
		if (len == 0 || len >= sizeof item) {
			fprintf(stderr, "usnet trace: -e: bad list '%s'\n", list);
			return -1;
		}
		memcpy(item, p, len);
		item[len] = 0;
		char *end;
		long nr = strtol(item, &end, 10);
		bool known = *end == 0 && nr >= 0 && nr < USNET_SYSCALL_MAX;
		for (int i = 0; !known && i < USNET_SYSCALL_MAX; i++)
			known = usnet_syscall_names[i] && !strcmp(usnet_syscall_names[i], item);
		if (!known) {
			fprintf(stderr, "usnet trace: -e: unknown system call '%s'\n", item);
			return -1;
		}
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

int cli_trace_main(int argc, char **argv)
{
	bool count = false, strict = false;
	const char *out_path = NULL, *mode = "auto", *calls = NULL;
	int verbose = 0, i;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			i++;
			break;
		} else if (!strcmp(a, "-c")) {
			count = true;
		} else if (!strcmp(a, "--strict")) {
			strict = true;
		} else if (!strcmp(a, "-v")) {
			verbose++;
		} else if (!strcmp(a, "-e") && i + 1 < argc) {
			calls = argv[++i];
			if (!strncmp(calls, "trace=", 6))
				calls += 6;
		} else if (!strcmp(a, "-o") && i + 1 < argc) {
			out_path = argv[++i];
		} else if (!strcmp(a, "--hook") && i + 1 < argc) {
			mode = argv[++i];
		} else if (!strncmp(a, "--hook=", 7)) {
			mode = a + 7;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			trace_usage(stdout);
			return 0;
		} else if (a[0] == '-') {
			fprintf(stderr, "usnet trace: unknown option '%s'\n", a);
			trace_usage(stderr);
			return 2;
		} else {
			break;
		}
	}
	if (i >= argc) {
		trace_usage(stderr);
		return 2;
	}
	char why[200];
	if (cli_hook_check(mode, why, sizeof why) < 0) {
		fprintf(stderr, "usnet trace: %s\n", why);
		return 2;
	}
	if (calls && check_call_list(calls) < 0)
		return 2;
	char **prog_argv;
	setenv("USNET_TRACE_HOOK", mode, 1);
	int routed = program_route("trace", argv + i, strict, "USNET_TRACE_HOOK", &prog_argv);
	if (routed)
		return routed;
	char lib[PATH_MAX];
	if (find_library(lib, sizeof lib) < 0) {
		fprintf(stderr, "usnet trace: cannot find libusnet-trace.so next to usnet "
			"(or in $USNET_TRACE_LIB)\n");
		return 1;
	}

	FILE *out = stderr;
	int out_fd = -1;
	if (out_path) {
		out_fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
		if (out_fd < 0) {
			fprintf(stderr, "usnet trace: %s: %s\n", out_path, strerror(errno));
			return 1;
		}
	}

	struct usnet_trace_counts *counts = NULL;
	char counts_path[] = "/tmp/usnet-trace-XXXXXX";
	char num[32];
	if (count) {
		int fd = mkstemp(counts_path);
		if (fd < 0 || ftruncate(fd, sizeof *counts) < 0) {
			fprintf(stderr, "usnet trace: cannot create the counter file: %s\n", strerror(errno));
			return 1;
		}
		counts = mmap(NULL, sizeof *counts, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		close(fd);
		if (counts == MAP_FAILED) {
			unlink(counts_path);
			fprintf(stderr, "usnet trace: cannot map the counter file: %s\n", strerror(errno));
			return 1;
		}
		counts->magic = USNET_TRACE_MAGIC;
		setenv("USNET_TRACE_COUNTS", counts_path, 1);
		unsetenv("USNET_TRACE_FD");
	} else {
		/* the lines go to a descriptor every traced process inherits */
		int fd = fcntl(out_fd >= 0 ? out_fd : 2, F_DUPFD, 200);
		if (fd < 0) {
			fprintf(stderr, "usnet trace: %s\n", strerror(errno));
			return 1;
		}
		snprintf(num, sizeof num, "%d", fd);
		setenv("USNET_TRACE_FD", num, 1);
		unsetenv("USNET_TRACE_COUNTS");
	}
	if (calls)
		setenv("USNET_TRACE_CALLS", calls, 1);
	if (verbose) {
		snprintf(num, sizeof num, "%d", verbose);
		setenv("USNET_HOOK_VERBOSE", num, 1);
	}
	const char *old = getenv("LD_PRELOAD");
	size_t len = strlen(lib) + (old ? strlen(old) : 0) + 2;
	char *preload = malloc(len);
	if (!preload)
		return 1;
	snprintf(preload, len, "%s%s%s", lib, old && *old ? ":" : "", old && *old ? old : "");
	setenv("LD_PRELOAD", preload, 1);
	free(preload);

	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "usnet trace: fork: %s\n", strerror(errno));
		return 1;
	}
	if (pid == 0) {
		execvp(prog_argv[0], prog_argv);
		fprintf(stderr, "usnet trace: %s: %s\n", argv[i], strerror(errno));
		_exit(127);
	}
	/* like strace: the terminal's signals are for the traced program */
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (counts) {
		if (out_fd >= 0) {
			out = fdopen(out_fd, "w");
			if (!out)
				out = stderr;
		}
		print_table(out, counts);
		fflush(out);
		munmap(counts, sizeof *counts);
		unlink(counts_path);
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}
