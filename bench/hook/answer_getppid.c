/*
 * bench/hook: the hook's own cost, without a system call.  A preloaded
 * library whose handler answers getppid itself (with the real parent's pid,
 * read once at start-up), so a hooked getppid is trampoline + entry +
 * dispatcher + handler + return, and nothing else.
 */
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "usnet/hook.h"

static long parent;

static long answer(struct usnet_syscall *sc)
{
	return sc->nr == SYS_getppid ? parent : USNET_HOOK_PASS;
}

__attribute__((constructor)) static void start(void)
{
	parent = getppid();
	struct usnet_hook_config cfg = { .handler = answer, .mode = USNET_HOOK_REWRITE };
	const char *m = getenv("USNET_TRACE_HOOK");
	if (m && m[0] == 's')
		cfg.mode = USNET_HOOK_SUD;
	char err[256];
	if (usnet_hook_install(&cfg, err, sizeof err) < 0)
		_exit(126);
}
