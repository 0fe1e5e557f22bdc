/*
 * usnet stat — the sockets and counters of running usnet processes, read
 * from the files each one publishes as /dev/shm/usnet-PID.stat (see
 * src/vsock/stat.c).  `usnet stat PID` shows one process.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int show(long pid)
{
	char path[64];
	snprintf(path, sizeof path, "/dev/shm/usnet-%ld.stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
		fclose(f);
		remove(path);   /* left behind by a process that died */
		return -1;
	}
	char line[512];
	while (fgets(line, sizeof line, f))
		fputs(line, stdout);
	putchar('\n');
	fclose(f);
	return 0;
}

int cli_stat_main(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("usage: usnet stat [PID]\nshows the sockets and counters of running usnet processes\n");
		return 0;
	}
	if (argc > 1) {
		char *end;
		long pid = strtol(argv[1], &end, 10);
		if (*end || pid <= 0) {
			fprintf(stderr, "usnet stat: '%s' is not a process id\n", argv[1]);
			return 2;
		}
		if (show(pid) < 0) {
			fprintf(stderr, "usnet stat: process %ld is not a running usnet process\n", pid);
			return 1;
		}
		return 0;
	}
	DIR *d = opendir("/dev/shm");
	if (!d) {
		fprintf(stderr, "usnet stat: cannot read /dev/shm: %s\n", strerror(errno));
		return 1;
	}
	int shown = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		long pid;
		char tail[16];
		if (sscanf(e->d_name, "usnet-%ld.%15s", &pid, tail) != 2)
			continue;
		if (!strcmp(tail, "stat")) {
			shown += show(pid) == 0;
		} else if (!strcmp(tail, "stat.tmp") && kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
			char path[300];
			snprintf(path, sizeof path, "/dev/shm/%s", e->d_name);
			remove(path);   /* a process died while writing it */
		}
	}
	closedir(d);
	if (!shown)
		printf("no running usnet process\n");
	return 0;
}
