/*
 * usnet hook — code the rewriter cannot reach, said in one line.  With
 * rewriting alone (--hook rewrite) there is no Syscall User Dispatch to
 * catch what the rewriter misses, so such code runs its system calls
 * straight to the kernel: the line says so, and under USNET_STRICT=1 (usnet
 * run --strict) the process ends instead of running partly unhooked.  In
 * the other modes SUD catches those calls.
 * General registers only.
 */
#include <sys/syscall.h>

#include "hook_unhooked.h"

extern char **environ;

static bool strict_set(void)
{
	for (char **e = environ; e && *e; e++)
		if (!hook_strncmp(*e, "USNET_STRICT=1", 15))
			return true;
	return false;
}

void hook_report_unhooked(const char *what, uintptr_t addr)
{
	char line[256];
	struct hook_buf b = { line, 0, sizeof line };
	hook_buf_str(&b, what);
	if (addr) {
		hook_buf_str(&b, " at ");
		hook_buf_hex(&b, addr);
	}
	bool alone = hook_state.cfg.mode == USNET_HOOK_REWRITE, strict = alone && strict_set();
	if (alone)
		hook_buf_str(&b, strict ? "; its system calls would not be hooked (--hook rewrite has no Syscall "
					  "User Dispatch): refusing to run (USNET_STRICT)"
					: "; its system calls are not hooked (--hook rewrite has no Syscall User "
					  "Dispatch)");
	hook_log(0, line);
	if (strict)
		RAW1(SYS_exit_group, 127);
}
