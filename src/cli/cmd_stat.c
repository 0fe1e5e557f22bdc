/*
 * usnet stat — the stacks, processes, sockets and counters of running usnet
 * programs, read from the files each process publishes as
 * /dev/shm/usnet-PID.stat (see src/vsock/stat.c).
 *
 * Without an argument: each stack (an interface's, shared by the processes
 * attached to it) once, with its owner, its processes and its counters
 * (they are the stack's, the same in every file), then each process's
 * sockets; processes with a stack of their own follow, one by one.
 * `usnet stat PID` shows one process's file as it is.  `-w SECS` shows them
 * again every SECS seconds; `--json` prints one object per process
 * (counters by name, per-instance objects, and its sockets with their TCP
 * state, RTT, window and byte counts) for scripts.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <stdbool.h>

#include "cli.h"

#define MAX_PROCS 4096

struct proc_stat {
	long pid;
	char stack[128];   /* "IFACE@NETNS owner PID", or "" (a stack of its own) */
	char *text;
};

/* The file of a live process (removed when its process is gone). */
static char *read_stat(long pid)
{
	char path[64];
	snprintf(path, sizeof path, "/dev/shm/usnet-%ld.stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
		fclose(f);
		remove(path);   /* left behind by a process that died */
		return NULL;
	}
	size_t cap = 4096, len = 0;
	char *text = malloc(cap);
	size_t n;
	while (text && (n = fread(text + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (len + 1 == cap) {
			char *more = realloc(text, cap *= 2);
			if (!more) {
				free(text);
				text = NULL;
			}
			text = more;
		}
	}
	fclose(f);
	if (text)
		text[len] = 0;
	return text;
}

/* The lines of text for which keep(line) holds. */
static void print_lines(const char *text, int (*keep)(const char *line))
{
	for (const char *p = text; *p;) {
		const char *eol = strchr(p, '\n');
		size_t n = eol ? (size_t)(eol - p) : strlen(p);
		char line[512];
		snprintf(line, sizeof line, "%.*s", (int)n, p);
		if (keep(line))
			puts(line);
		p += n + (eol ? 1 : 0);
	}
}

static int is_socket(const char *l) { return !strncmp(l, "socket ", 7); }
static int is_counter(const char *l)
{
	return strncmp(l, "socket ", 7) && strncmp(l, "pid ", 4) && strncmp(l, "stack ", 6);
}

static int by_stack(const void *a, const void *b)
{
	const struct proc_stat *x = a, *y = b;
	int c = strcmp(x->stack, y->stack);
	return c ? c : (x->pid > y->pid) - (x->pid < y->pid);
}

/* ---- --json ------------------------------------------------------------------ */

static void json_str(const char *v, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static bool is_number(const char *v, size_t n)
{
	if (!n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (v[i] < '0' || v[i] > '9')
			return false;
	return true;
}

/* A value: a number as it is, anything else as a string. */
static void json_value(const char *v, size_t n)
{
	if (is_number(v, n))
		printf("%.*s", (int)n, v);
	else
		json_str(v, n);
}

/* The words of a line, at most 32. */
static int split_words(const char *line, const char **w, size_t *wl)
{
	int n = 0;
	for (const char *p = line; *p && n < 32;) {
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		w[n] = p;
		wl[n] = strcspn(p, " ");
		p += wl[n++];
	}
	return n;
}

/* A socket line: its KEY=VALUE words, and the protocol and state. */
static void json_socket(const char *line)
{
	const char *w[32];
	size_t wl[32];
	int n = split_words(line, w, wl);
	printf("{");
	const char *sep = "";
	for (int i = 1; i < n; i++) {
		const char *eq = memchr(w[i], '=', wl[i]);
		printf("%s", sep);
		sep = ",";
		if (eq) {
			json_str(w[i], (size_t)(eq - w[i]));
			putchar(':');
			json_value(eq + 1, wl[i] - (size_t)(eq + 1 - w[i]));
		} else {
			printf(i == 1 ? "\"proto\":" : "\"state\":");
			json_str(w[i], wl[i]);
		}
	}
	printf("}");
}

/* The next line of text at *p into line (cut to cap); 0 at the end. */
static int next_line(const char **p, char *line, size_t cap)
{
	if (!**p)
		return 0;
	const char *eol = strchr(*p, '\n');
	size_t len = eol ? (size_t)(eol - *p) : strlen(*p);
	snprintf(line, cap, "%.*s", (int)len, *p);
	*p += len + (eol ? 1 : 0);
	return 1;
}

/* One process's file as a JSON object. */
static void json_process(const char *text)
{
	printf("{");
	const char *sep = "";
	bool sockets = false;
	char line[1024];
	for (const char *p = text; next_line(&p, line, sizeof line);) {
		const char *w[32];
		size_t wl[32];
		int n = split_words(line, w, wl);
		if (n == 0)
			continue;
		if (!strcmp(line, "") || !strncmp(line, "socket ", 7))
			continue;
		printf("%s", sep);
		sep = ",";
		json_str(w[0], wl[0]);
		putchar(':');
		if (n == 2) {
			json_value(w[1], wl[1]);
		} else if (n > 3 && n % 2 == 1 && !strncmp(line, "instance_", 9)) {
			/* instance_Q KEY VALUE ...: an object */
			printf("{");
			for (int i = 1; i + 1 < n; i += 2) {
				printf(i > 1 ? "," : "");
				json_str(w[i], wl[i]);
				putchar(':');
				json_value(w[i + 1], wl[i + 1]);
			}
			printf("}");
		} else {
			const char *rest = n > 1 ? w[1] : "";
			json_str(rest, strlen(rest));
		}
	}
	printf("%s\"sockets\":[", sep);
	for (const char *p = text; next_line(&p, line, sizeof line);) {
		if (strncmp(line, "socket ", 7))
			continue;
		printf(sockets ? "," : "");
		sockets = true;
		json_socket(line);
	}
	printf("]}");
}

/* ---- the listing --------------------------------------------------------------- */

/* Every running usnet process's file, sorted by stack; their count. */
static int read_all(struct proc_stat *procs)
{
	DIR *d = opendir("/dev/shm");
	if (!d) {
		fprintf(stderr, "usnet stat: cannot read /dev/shm: %s\n", strerror(errno));
		return -1;
	}
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < MAX_PROCS) {
		long pid;
		char tail[16];
		if (sscanf(e->d_name, "usnet-%ld.%15s", &pid, tail) != 2)
			continue;
		if (!strcmp(tail, "stat")) {
			char *text = read_stat(pid);
			if (!text)
				continue;
			procs[n] = (struct proc_stat){ .pid = pid, .text = text };
			const char *st = strstr(text, "\nstack ");
			if (st)
				snprintf(procs[n].stack, sizeof procs[n].stack, "%.*s", (int)strcspn(st + 7, "\n"), st + 7);
			n++;
		} else if (!strcmp(tail, "stat.tmp") && kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
			char path[300];
			snprintf(path, sizeof path, "/dev/shm/%s", e->d_name);
			remove(path);   /* a process died while writing it */
		}
	}
	closedir(d);
	qsort(procs, (size_t)n, sizeof procs[0], by_stack);
	return n;
}

static int show(long pid, bool json)
{
	if (pid > 0) {
		char *text = read_stat(pid);
		if (!text) {
			fprintf(stderr, "usnet stat: process %ld is not a running usnet process\n", pid);
			return 1;
		}
		if (json) {
			json_process(text);
			putchar('\n');
		} else {
			printf("%s\n", text);
		}
		free(text);
		return 0;
	}
	static struct proc_stat procs[MAX_PROCS];
	int n = read_all(procs);
	if (n < 0)
		return 1;
	if (json) {
		printf("{\"processes\":[");
		for (int i = 0; i < n; i++) {
			printf(i ? "," : "");
			json_process(procs[i].text);
			free(procs[i].text);
		}
		printf("]}\n");
		return 0;
	}
	if (!n) {
		printf("no running usnet process\n");
		return 0;
	}
	for (int i = 0; i < n;) {
		if (!procs[i].stack[0]) {   /* a stack of its own */
			printf("%s\n", procs[i].text);
			free(procs[i++].text);
			continue;
		}
		int j = i;
		while (j < n && !strcmp(procs[j].stack, procs[i].stack))
			j++;
		printf("stack %s, processes", procs[i].stack);
		for (int k = i; k < j; k++)
			printf(" %ld", procs[k].pid);
		putchar('\n');
		print_lines(procs[i].text, is_counter);
		for (int k = i; k < j; k++) {
			printf("pid %ld\n", procs[k].pid);
			print_lines(procs[k].text, is_socket);
			free(procs[k].text);
		}
		putchar('\n');
		i = j;
	}
	return 0;
}

int cli_stat_main(int argc, char **argv)
{
	bool json = false;
	double every = 0;
	long pid = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			printf("usage: usnet stat [-w SECS] [--json] [PID]\n"
			       "shows the stacks, processes, sockets and counters of running usnet programs\n"
			       "  -w SECS   show them again every SECS seconds (until interrupted)\n"
			       "  --json    one JSON object: {\"processes\": [{counters..., \"sockets\": [...]}]}\n");
			return 0;
		}
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "-w")) {
			char *end = NULL;
			every = i + 1 < argc ? strtod(argv[++i], &end) : 0;
			if (!end || *end || every <= 0 || every > 86400) {
				fprintf(stderr, "usnet stat: -w wants a number of seconds (0 < SECS <= 86400)\n");
				return 2;
			}
		} else {
			char *end;
			pid = strtol(argv[i], &end, 10);
			if (*end || pid <= 0) {
				fprintf(stderr, "usnet stat: '%s' is not a process id (usage: usnet stat [-w SECS] [--json] [PID])\n",
					argv[i]);
				return 2;
			}
		}
	}
	if (every <= 0)
		return show(pid, json);
	for (;;) {
		if (!json && isatty(1))
			printf("\033[H\033[J");   /* from the top of a cleared screen */
		int r = show(pid, json);
		fflush(stdout);
		if (r)
			return r;
		struct timespec ts = { (time_t)every, (long)((every - (double)(time_t)every) * 1e9) };
		nanosleep(&ts, NULL);
	}
}
