/*
 * usnet switch — attaching this process to the stack of its interface
 * through the interface's owner (attach_proto.h): the shared memory of the
 * switch and of the provider, the bell, the close-watch instance and the
 * netif come from the owner, so that every process on the interface --
 * forked, exec'd or started on its own -- shares one stack.
 *
 * The right to attach is a connection to the owner: the one `usnet run`
 * left in USNET_ATTACH_FD (inherited by everything the program starts), or,
 * for a process started without it, a new one to the owner's socket.
 * Without an owner (a backend that cannot be shared, or a program run with
 * the USNET_* variables by hand and no owner started) the process has the
 * interface to itself and its forked children, as before owners.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "vsock.h"
#include "attach_proto.h"

struct vsock_attachment vsock_attachment = { .fds = { -1, -1, -1, -1 } };

static const char *config_value(const char *key)
{
	return vsock_config(key);
}

/* The connection to the owner, or -1 (no owner: not an error). */
static int owner_connection(void)
{
	const char *v = vsock_config("attach_fd");
	if (v) {
		int fd = atoi(v);
		struct stat st;
		int type = 0;
		socklen_t len = sizeof type;
		if (fd >= 0 && fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) &&
		    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_SEQPACKET) {
			/* Its number is in the environment of the programs this
			 * one starts: it stays where `usnet run` put it. */
			vsock_own_fd_note(fd);
			return fd;
		}
		vsock_log(0, "USNET_ATTACH_FD %s is no connection to an interface's owner (closed by the "
			  "program?); looking for the owner's socket", v);
	}
	const char *iface = vsock_config("iface");
	char path[108];
	if (!iface || attach_owner_path(iface, path, sizeof path) < 0)
		return -1;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		if (errno == EACCES)
			vsock_log(0, "%s: permission denied: this process may not attach to the stack of %s",
				  path, iface);
		close(fd);
		return errno == EACCES ? -2 : -1;
	}
	/* Kept for the life of the process (and its forked children): the
	 * owner stays while someone holds it. */
	return vsock_own_fd_hide(fd, NULL);
}

int vsock_attach(char *err, size_t errlen)
{
	int conn = owner_connection();
	if (conn == -2) {
		snprintf(err, errlen, "not allowed to attach to the stack of %s", vsock_config("iface"));
		return -EACCES;
	}
	if (conn < 0)
		return 0;
	struct attach_request rq = { .magic = ATTACH_MAGIC, .version = ATTACH_VERSION, .op = ATTACH_OP_ATTACH };
	attach_config_make(config_value, rq.config, sizeof rq.config);
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		return -errno;
	}
	struct vsock_attachment *a = &vsock_attachment;
	struct attach_reply rp;
	int r = attach_send_request(conn, &rq, sv[1]);
	close(sv[1]);
	if (r == 0)
		r = attach_recv_reply(sv[0], &rp, a->fds, ATTACH_NFDS);
	if (r == 0 && rp.status == 0)
		r = usnet_netif_share_recv(sv[0], &a->share);
	if (r < 0 || rp.status < 0) {
		close(sv[0]);
		if (r < 0) {
			snprintf(err, errlen, "the owner of %s did not attach this process: %s", vsock_config("iface"),
				 strerror(-r));
			return r;
		}
		snprintf(err, errlen, "%s (owner: process %d)", rp.message, rp.owner_pid);
		return rp.status;
	}
	/* The switch's own fds stay out of the program's sight (ownfds.c);
	 * the netif's are copied into its queues when it attaches, so they
	 * move now or never. */
	for (int i = 0; i < ATTACH_NFDS; i++)
		vsock_own_fd_hide(a->fds[i], &a->fds[i]);
	for (uint32_t i = 0; i < a->share.nfds; i++)
		a->share.fds[i] = vsock_own_fd_hide(a->share.fds[i], NULL);
	a->init = rp.init != 0;
	a->reply = -1;
	if (a->init)
		vsock_own_fd_hide(sv[0], &a->reply);
	else
		close(sv[0]);
	a->attached = true;
	a->owner_pid = rp.owner_pid;
	{
		char path[108];
		attach_owner_path(vsock_config("iface"), path, sizeof path);
		const char *base = strrchr(path, '/');
		size_t n = strlen(base + 1);
		snprintf(a->stack, sizeof a->stack, "%.*s", (int)(n > 5 ? n - 5 : n), base + 1);   /* less ".sock" */
	}
	vsock_log(1, "attached to the stack of %s (owner: process %d)%s", vsock_config("iface"), rp.owner_pid,
		  a->init ? ", first process: making its shared state" : "");
	return 1;
}

void vsock_attach_done(bool ok)
{
	struct vsock_attachment *a = &vsock_attachment;
	if (a->reply < 0)
		return;
	if (ok) {
		char c = ATTACH_READY;
		if (send(a->reply, &c, 1, MSG_NOSIGNAL) != 1)
			vsock_log(0, "the owner of %s went away while this process made the stack",
				  vsock_config("iface"));
	}
	vsock_own_fd_close(a->reply);   /* without READY: the owner makes the state afresh */
	a->reply = -1;
}

void *vsock_attach_map(int which, size_t size)
{
	int fd = vsock_attachment.fds[which];
	struct stat st;
	if (fstat(fd, &st) != 0 || (uint64_t)st.st_size < size)
		return NULL;
	void *m = (void *)vsock_sys(SYS_mmap, 0, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	return (long)m < 0 && (long)m > -4096 ? NULL : m;
}
