/*
 * bench/hook: a preloaded library with a handler, for the hook's own costs.
 * USNET_BENCH_HANDLER says what the handler does with getppid:
 *   answer (default)  answers it itself with the real parent's pid (read
 *                     once at start-up): a hooked getppid is trampoline +
 *                     entry + dispatcher + handler + return, no system call
 *   pass              passes every call on (USNET_HOOK_PASS), as the socket
 *                     switch does with a call that is not on a socket
 *   uninterested      names only socket(2) in its interest set, so getppid
 *                     never reaches it (the stub's, or page 0's, fast path)
 * USNET_TRACE_HOOK picks the mode as for libusnet-trace.so (default auto).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "usnet/hook.h"

static long parent;

static long answer(struct usnet_syscall *sc)
{
	return sc->nr == SYS_getppid ? parent : USNET_HOOK_PASS;
}

static long pass(struct usnet_syscall *sc)
{
	(void)sc;
	return USNET_HOOK_PASS;
}

__attribute__((constructor)) static void start(void)
{
	parent = getppid();
	/* USNET_TRACE_HOOK as for libusnet-trace.so (default auto) */
	struct usnet_hook_config cfg = { .handler = answer, .mode = USNET_HOOK_AUTO };
	const char *m = getenv("USNET_TRACE_HOOK");
	if (m && !strcmp(m, "sud"))
		cfg.mode = USNET_HOOK_SUD;
	else if (m && !strcmp(m, "rewrite"))
		cfg.mode = USNET_HOOK_REWRITE;
	else if (m && !strcmp(m, "rewrite+sud"))
		cfg.mode = USNET_HOOK_REWRITE_SUD;
	else if (m && !strcmp(m, "page0"))
		cfg.mode = USNET_HOOK_PAGE0;
	struct usnet_hook_interest sockets;
	memset(&sockets, 0, sizeof sockets);
	usnet_hook_interest_add(&sockets, SYS_socket);
	const char *h = getenv("USNET_BENCH_HANDLER");
	if (h && !strcmp(h, "pass")) {
		cfg.handler = pass;
	} else if (h && !strcmp(h, "uninterested")) {
		cfg.handler = pass;
		cfg.interest = &sockets;
	}
	char err[256];
	if (usnet_hook_install(&cfg, err, sizeof err) < 0)
		_exit(126);
}
