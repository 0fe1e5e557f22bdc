/*
 * usnet — the command-line front end: dispatches `usnet COMMAND ...` to the
 * command's own file (cmd_<name>.c).  A command whose file is not part of
 * this build is reported as such.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

struct cli_command {
	const char *name;
	int (*main)(int argc, char **argv);
	const char *summary;
};

static const struct cli_command commands[] = {
	{ "run",   cli_run_main,   "run a program with its sockets on the usnet stack" },
	{ "trace", cli_trace_main, "list or count a program's system calls (like strace -f)" },
	{ "stat",  cli_stat_main,  "show sockets and counters of running usnet processes" },
	{ "demo",  cli_demo_main,  "run a stock server under usnet in private namespaces" },
	{ "owner", cli_owner_main, "keep an interface's stack for the processes that attach to it" },
	{ "doctor", cli_doctor_main, "say what this host and an interface offer usnet, and what to fix" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: usnet COMMAND [OPTIONS] [-- PROGRAM ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-6s %s%s\n", commands[i].name, commands[i].summary,
			commands[i].main ? "" : " (not in this build)");
	fprintf(f, "\n`usnet COMMAND --help` describes a command.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (strcmp(argv[1], commands[i].name))
			continue;
		if (!commands[i].main) {
			fprintf(stderr, "usnet: '%s' is not part of this build\n", argv[1]);
			return 2;
		}
		return commands[i].main(argc - 1, argv + 1);
	}
	fprintf(stderr, "usnet: unknown command '%s' (try usnet --help)\n", argv[1]);
	return 2;
}
