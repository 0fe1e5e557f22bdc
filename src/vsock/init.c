/*
 * usnet switch — start-up of build/libusnet.so in every process image:
 * read the log level, install the system-call hook with the switch's
 * handler, take back the user sockets inherited over execve (attaching to
 * their stack), and keep the switch right across fork.  The provider itself starts lazily, on the first AF_INET or
 * AF_INET6 socket, so that helper processes that never use the network (a
 * shell, a compiler) pay nothing; but with IPv6 addresses (USNET_IP6) the
 * built-in stack starts with the image: Duplicate Address Detection must
 * pass before the program runs (a duplicate refuses it, in one line), and
 * the stack answers Neighbor Discovery for its addresses from then on.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vsock.h"
#include "vsock_handler.h"

extern long vsock_pid;

static void fork_prepare(void)
{
	if (vsock_prov && vsock_prov->fork_prepare)
		vsock_prov->fork_prepare(vsock_prov_ctx);
}

static void fork_parent(void)
{
	if (vsock_prov && vsock_prov->fork_parent)
		vsock_prov->fork_parent(vsock_prov_ctx);
}

static void fork_child(void)
{
	vsock_pid = vsock_sys(SYS_getpid, 0, 0, 0, 0, 0, 0);
	vsock_own_fds_after_fork();
	vsock_after_fork_child();
	if (vsock_prov && vsock_prov->fork_child)
		vsock_prov->fork_child(vsock_prov_ctx);
}

static int parse_level(const char *s)
{
	if (!s)
		return 0;
	if (!strcmp(s, "error")) return 0;
	if (!strcmp(s, "info")) return 1;
	if (!strcmp(s, "debug")) return 2;
	return atoi(s);
}

static enum usnet_hook_mode parse_mode(const char *s)
{
	if (s && !strcmp(s, "rewrite"))
		return USNET_HOOK_REWRITE;
	if (s && !strcmp(s, "sud"))
		return USNET_HOOK_SUD;
	if (s && !strcmp(s, "page0"))
		return USNET_HOOK_PAGE0;
	if (s && !strcmp(s, "rewrite+sud"))
		return USNET_HOOK_REWRITE_SUD;
	return USNET_HOOK_AUTO;
}

__attribute__((constructor)) static void vsock_start(void)
{
	vsock_log_level = parse_level(vsock_config("log"));
	vsock_pid = vsock_sys(SYS_getpid, 0, 0, 0, 0, 0, 0);
	pthread_atfork(fork_prepare, fork_parent, fork_child);
	struct usnet_hook_config cfg = {
		.handler = vsock_handler,
		.mode = parse_mode(vsock_config("hook")),
		.verbosity = vsock_log_level,
	};
	char err[256] = "";
	int r = usnet_hook_install(&cfg, err, sizeof err);
	if (r < 0) {
		vsock_log(0, "cannot install the system-call hook: %s", err[0] ? err : strerror(-r));
		_exit(127);
	}
	vsock_log(1, "hook installed (%s)", usnet_hook_mode_name());
	/* The connection to the owner `usnet run` left is usnet's from the
	 * start, before this image makes any socket. */
	const char *attach_fd = vsock_config("attach_fd");
	if (attach_fd && atoi(attach_fd) > 2)
		vsock_own_fd_note(atoi(attach_fd));
	vsock_rights_adopted = vsock_config("iface") || vsock_config("provider");
	vsock_adopt_inherited();
	const char *prov = vsock_config("provider");
	if (vsock_config("ip6") && (!prov || !strcmp(prov, "usnet")) && vsock_provider_ready() < 0)
		_exit(2);   /* the provider said why, in one line */
}

__attribute__((destructor)) static void vsock_stop(void)
{
	vsock_stat_remove();
}
