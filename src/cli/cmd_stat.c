/*
 * usnet stat — the stacks, processes, sockets and counters of running usnet
 * programs, read from the files each process publishes as
 * /dev/shm/usnet-PID.stat (see src/vsock/stat.c).
 *
 * Without an argument: each stack (an interface's, shared by the processes
 * attached to it) once, with its owner, its processes and its counters
 * (they are the stack's, the same in every file), then each process's
 * sockets; processes with a stack of their own follow, one by one.
 * `usnet stat PID` shows one process's file as it is.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int cli_stat_main(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("usage: usnet stat [PID]\nshows the stacks, processes, sockets and counters of running usnet "
		       "programs\n");
		return 0;
	}
	if (argc > 1) {
		char *end;
		long pid = strtol(argv[1], &end, 10);
		if (*end || pid <= 0) {
			fprintf(stderr, "usnet stat: '%s' is not a process id\n", argv[1]);
			return 2;
		}
		char *text = read_stat(pid);
		if (!text) {
			fprintf(stderr, "usnet stat: process %ld is not a running usnet process\n", pid);
			return 1;
		}
		printf("%s\n", text);
		free(text);
		return 0;
	}
	DIR *d = opendir("/dev/shm");
	if (!d) {
		fprintf(stderr, "usnet stat: cannot read /dev/shm: %s\n", strerror(errno));
		return 1;
	}
	static struct proc_stat procs[MAX_PROCS];
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
	if (!n) {
		printf("no running usnet process\n");
		return 0;
	}
	qsort(procs, (size_t)n, sizeof procs[0], by_stack);
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
