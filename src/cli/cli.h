/*
 * usnet — the commands of the `usnet` front end.  Each lives in its own file
 * (cmd_run.c, cmd_trace.c, ...) and is declared weak here so that a build
 * without one still links and says so.  argv[0] is the command's name.
 */
#ifndef USNET_CLI_H
#define USNET_CLI_H

int cli_run_main(int argc, char **argv) __attribute__((weak));
int cli_trace_main(int argc, char **argv) __attribute__((weak));
int cli_stat_main(int argc, char **argv) __attribute__((weak));
int cli_demo_main(int argc, char **argv) __attribute__((weak));
int cli_owner_main(int argc, char **argv) __attribute__((weak));
int cli_doctor_main(int argc, char **argv) __attribute__((weak));

/* --hook of `usnet run` and `usnet trace` (docs/hook.md). */
#define CLI_HOOK_MODES "auto, rewrite, rewrite+sud, sud or page0"
#define CLI_HOOK_HELP "auto (default: stubs; Syscall User Dispatch too when something cannot be\n" \
	"              rewritten), rewrite (stubs only), rewrite+sud (stubs, SUD always: code\n" \
	"              written into memory already executable), sud (SUD only: slow), page0\n" \
	"              (the page-0 trampoline + SUD: maps page 0, writes into the red zone)"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* 0 when mode is one of CLI_HOOK_MODES and can work for this user, else -1
 * with a one-line reason in why. */
static inline int cli_hook_check(const char *mode, char *why, size_t n)
{
	if (strcmp(mode, "auto") && strcmp(mode, "rewrite") && strcmp(mode, "rewrite+sud") &&
	    strcmp(mode, "sud") && strcmp(mode, "page0")) {
		snprintf(why, n, "--hook must be %s (not '%s')", CLI_HOOK_MODES, mode);
		return -1;
	}
	if (!strcmp(mode, "page0") && geteuid() != 0) {
		FILE *f = fopen("/proc/sys/vm/mmap_min_addr", "r");
		long min = 0;
		if (f) {
			if (fscanf(f, "%ld", &min) != 1)
				min = 0;
			fclose(f);
		}
		if (min > 0) {
			snprintf(why, n, "--hook page0 needs page 0, but vm.mmap_min_addr is %ld; run as root, "
				 "set it to 0, or leave --hook at auto", min);
			return -1;
		}
	}
	return 0;
}

#endif
