/*
 * Messages with fds over a UNIX socket (usnet_fd_send/recv, also what the
 * owner's protocol is made of), and a struct usnet_netif_share in them:
 * the struct as bytes (its fds field is meaningless in the receiver), then
 * the fds themselves in SCM_RIGHTS messages of at most SHARE_FDS_PER_MSG
 * (the kernel's limit per message is SCM_MAX_FD, 253).
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netif_internal.h"

#define SHARE_FDS_PER_MSG 64

int usnet_fd_send(int sock, const void *buf, size_t len, const int *fds, unsigned nfds)
{
	if (nfds > SHARE_FDS_PER_MSG)
		return -EINVAL;
	union { char b[CMSG_SPACE(sizeof(int) * SHARE_FDS_PER_MSG)]; struct cmsghdr align; } u;
	struct iovec iov = { (void *)buf, len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (nfds) {
		memset(&u, 0, sizeof u);
		m.msg_control = u.b;
		m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	for (;;) {
		ssize_t r = sendmsg(sock, &m, MSG_NOSIGNAL);
		if (r == (ssize_t)len)
			return 0;
		if (r < 0 && errno == EINTR)
			continue;
		return r < 0 ? -errno : -EPROTO;   /* a short send: the peer went away */
	}
}

int usnet_fd_recv(int sock, void *buf, size_t len, int *fds, unsigned want)
{
	union { char b[CMSG_SPACE(sizeof(int) * SHARE_FDS_PER_MSG)]; struct cmsghdr align; } u;
	struct iovec iov = { buf, len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b };
	ssize_t r;
	do
		r = recvmsg(sock, &m, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0 && len > 0)
		return -ECONNRESET;
	unsigned got = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		unsigned n = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (unsigned i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof fd, sizeof fd);
			if (got < want)
				fds[got++] = fd;
			else
				close(fd);
		}
	}
	if ((size_t)r != len || got != want || (m.msg_flags & (MSG_CTRUNC | MSG_TRUNC))) {
		for (unsigned i = 0; i < got; i++)
			close(fds[i]);
		return -EPROTO;
	}
	return 0;
}

int usnet_netif_share_send(int sock, const struct usnet_netif_share *sh)
{
	if (sh->nfds > USNET_NETIF_SHARE_FDS || sh->blob_len > USNET_NETIF_SHARE_BLOB)
		return -EINVAL;
	int r = usnet_fd_send(sock, sh, sizeof *sh, NULL, 0);
	for (uint32_t i = 0; r == 0 && i < sh->nfds; i += SHARE_FDS_PER_MSG) {
		unsigned n = sh->nfds - i < SHARE_FDS_PER_MSG ? sh->nfds - i : SHARE_FDS_PER_MSG;
		char tag = 'F';
		r = usnet_fd_send(sock, &tag, 1, sh->fds + i, n);
	}
	return r;
}

int usnet_netif_share_recv(int sock, struct usnet_netif_share *sh)
{
	int r = usnet_fd_recv(sock, sh, sizeof *sh, NULL, 0);
	if (r < 0)
		return r;
	if (sh->nfds > USNET_NETIF_SHARE_FDS || sh->blob_len > USNET_NETIF_SHARE_BLOB ||
	    memchr(sh->backend, 0, sizeof sh->backend) == NULL)
		return -EPROTO;
	for (uint32_t i = 0; i < sh->nfds; i += SHARE_FDS_PER_MSG) {
		unsigned n = sh->nfds - i < SHARE_FDS_PER_MSG ? sh->nfds - i : SHARE_FDS_PER_MSG;
		char tag;
		r = usnet_fd_recv(sock, &tag, 1, sh->fds + i, n);
		if (r == 0 && tag != 'F')
			r = -EPROTO;
		if (r < 0) {
			for (uint32_t k = 0; k < i; k++)
				close(sh->fds[k]);
			return r;
		}
	}
	return 0;
}
