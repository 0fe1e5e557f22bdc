/*
 * usnet trace — the library `usnet trace` preloads: installs the hook with a
 * handler that counts (-c) or prints one line per call, then passes every
 * call on unchanged.  Configured by the front end through the environment:
 *   USNET_TRACE_HOOK    auto | rewrite | rewrite+sud | sud | page0
 *   USNET_TRACE_COUNTS  file of struct usnet_trace_counts (-c)
 *   USNET_TRACE_FD      descriptor for the per-call lines
 *   USNET_HOOK_VERBOSE  0 errors (default), 1 info, 2 debug
 *   USNET_TRACE_CALLS   only these calls (strace -e trace=...): names or
 *                       numbers separated by commas; every other call skips
 *                       the tracer (the hook's interest set)
 * With none of COUNTS/FD set the handler is a pure pass-through (benchmarks).
 *
 * Built with -mgeneral-regs-only; no libc on the hooked path.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "usnet/hook.h"
#include "syscall_names.h"
#include "trace_counts.h"

static struct usnet_trace_counts *counts;
static int line_fd = -1;

static long raw3(long nr, long a, long b, long c)
{
	return usnet_hook_syscall(nr, a, b, c, 0, 0, 0);
}

/* --- tiny formatting (no stdio) --- */
struct line {
	char buf[512];
	size_t len;
};

static void put_char(struct line *l, char c)
{
	if (l->len < sizeof l->buf - 1)
		l->buf[l->len++] = c;
}

static void put_str(struct line *l, const char *s)
{
	while (*s)
		put_char(l, *s++);
}

static void put_num(struct line *l, long v)
{
	char tmp[24];
	int n = 0;
	if (v > -65536 && v < 65536) {
		unsigned long u = v < 0 ? (unsigned long)-v : (unsigned long)v;
		if (v < 0)
			put_char(l, '-');
		do {
			tmp[n++] = (char)('0' + u % 10);
			u /= 10;
		} while (u);
	} else {
		unsigned long u = (unsigned long)v;
		do {
			tmp[n++] = "0123456789abcdef"[u & 15];
			u >>= 4;
		} while (u);
		tmp[n++] = 'x';
		tmp[n++] = '0';
	}
	while (n)
		put_char(l, tmp[--n]);
}

static void put_call(struct line *l, const struct usnet_syscall *sc)
{
	put_char(l, '[');
	put_num(l, usnet_hook_syscall(SYS_getpid, 0, 0, 0, 0, 0, 0));
	put_str(l, "] ");
	const char *name = sc->nr >= 0 && sc->nr < USNET_SYSCALL_MAX ? usnet_syscall_names[sc->nr] : NULL;
	if (name) {
		put_str(l, name);
	} else {
		put_str(l, "syscall_");
		put_num(l, sc->nr);
	}
	put_char(l, '(');
	for (int i = 0; i < 6; i++) {
		if (i)
			put_str(l, ", ");
		put_num(l, sc->args[i]);
	}
	put_str(l, ") = ");
}

static void emit(struct line *l)
{
	put_char(l, '\n');
	const char *p = l->buf;
	size_t left = l->len;
	while (left) {
		long r = raw3(SYS_write, line_fd, (long)p, (long)left);
		if (r == -4)
			continue;
		if (r <= 0)
			break;
		p += r;
		left -= (size_t)r;
	}
}

static bool never_returns(long nr)
{
	return nr == SYS_exit || nr == SYS_exit_group || nr == SYS_execve || nr == SYS_execveat;
}

static long trace_handler(struct usnet_syscall *sc)
{
	if (counts && sc->nr >= 0 && sc->nr < USNET_SYSCALL_MAX)
		__atomic_fetch_add(&counts->calls[sc->nr], 1, __ATOMIC_RELAXED);
	if (line_fd >= 0 && never_returns(sc->nr)) {
		struct line l;
		l.len = 0;
		put_call(&l, sc);
		put_char(&l, '?');
		emit(&l);
	}
	return USNET_HOOK_PASS;
}

static void trace_after(const struct usnet_syscall *sc, long ret)
{
	bool failed = (unsigned long)ret > -4096UL;
	if (counts && failed && sc->nr >= 0 && sc->nr < USNET_SYSCALL_MAX)
		__atomic_fetch_add(&counts->errors[sc->nr], 1, __ATOMIC_RELAXED);
	if (line_fd >= 0) {
		struct line l;
		l.len = 0;
		put_call(&l, sc);
		put_num(&l, ret);
		emit(&l);
	}
}

static int parse_int(const char *s)
{
	int v = 0;
	if (!s || !*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v;
}

static void die(const char *what, const char *detail, size_t detail_len)
{
	static const char pre[] = "usnet-hook: ";
	usnet_hook_syscall(SYS_write, 2, (long)pre, sizeof pre - 1, 0, 0, 0);
	usnet_hook_syscall(SYS_write, 2, (long)what, (long)strlen(what), 0, 0, 0);
	if (detail)
		usnet_hook_syscall(SYS_write, 2, (long)detail, (long)detail_len, 0, 0, 0);
	usnet_hook_syscall(SYS_write, 2, (long)"\n", 1, 0, 0, 0);
	usnet_hook_syscall(SYS_exit_group, 126, 0, 0, 0, 0, 0);
}

/* The number of the call named by s[0..len) (a name or a decimal number),
 * or -1. */
static long call_number(const char *s, size_t len)
{
	long nr = 0;
	size_t i;
	for (i = 0; i < len && s[i] >= '0' && s[i] <= '9' && nr < USNET_SYSCALL_MAX; i++)
		nr = nr * 10 + (s[i] - '0');
	if (len && i == len)
		return nr < USNET_SYSCALL_MAX ? nr : -1;
	for (nr = 0; nr < USNET_SYSCALL_MAX; nr++) {
		const char *name = usnet_syscall_names[nr];
		if (name && strlen(name) == len && !memcmp(name, s, len))
			return nr;
	}
	return -1;
}

/* USNET_TRACE_CALLS: "read,write,42" -> the interest set (the process
 * exits with a message on a name it does not know). */
static void parse_calls(const char *list, struct usnet_hook_interest *set)
{
	memset(set, 0, sizeof *set);
	while (*list) {
		size_t len = strcspn(list, ",");
		if (len) {
			long nr = call_number(list, len);
			if (nr < 0)
				die("USNET_TRACE_CALLS names an unknown system call: ", list, len);
			usnet_hook_interest_add(set, nr);
		}
		list += len;
		if (*list == ',')
			list++;
	}
}

__attribute__((constructor)) static void trace_start(void)
{
	struct usnet_hook_config cfg = {
		.handler = trace_handler,
		.mode = USNET_HOOK_AUTO,
		.child_after_fork = NULL,
		.after_pass = NULL,
		.verbosity = 0,
	};
	const char *mode = getenv("USNET_TRACE_HOOK");
	if (mode && !strcmp(mode, "rewrite"))
		cfg.mode = USNET_HOOK_REWRITE;
	else if (mode && !strcmp(mode, "sud"))
		cfg.mode = USNET_HOOK_SUD;
	else if (mode && !strcmp(mode, "page0"))
		cfg.mode = USNET_HOOK_PAGE0;
	else if (mode && !strcmp(mode, "rewrite+sud"))
		cfg.mode = USNET_HOOK_REWRITE_SUD;
	int v = parse_int(getenv("USNET_HOOK_VERBOSE"));
	if (v > 0)
		cfg.verbosity = v;

	const char *path = getenv("USNET_TRACE_COUNTS");
	if (path && *path) {
		long fd = usnet_hook_syscall(SYS_open, (long)path, O_RDWR | O_CLOEXEC, 0, 0, 0, 0);
		if (fd >= 0) {
			long p = usnet_hook_syscall(SYS_mmap, 0, sizeof *counts, PROT_READ | PROT_WRITE,
						    MAP_SHARED, fd, 0);
			usnet_hook_syscall(SYS_close, fd, 0, 0, 0, 0, 0);
			if (p > 0 || p < -4095)
				counts = (struct usnet_trace_counts *)p;
		}
	}
	line_fd = parse_int(getenv("USNET_TRACE_FD"));
	if (counts || line_fd >= 0)
		cfg.after_pass = trace_after;
	else
		cfg.handler = NULL;   /* pure pass-through */
	struct usnet_hook_interest calls;
	const char *list = getenv("USNET_TRACE_CALLS");
	if (list && *list) {
		parse_calls(list, &calls);
		cfg.interest = &calls;
	}

	char err[256];
	if (usnet_hook_install(&cfg, err, sizeof err) < 0)
		die(err, NULL, 0);
}
