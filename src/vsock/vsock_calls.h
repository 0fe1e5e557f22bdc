/*
 * usnet switch — the system calls on user sockets, one function each, called
 * by dispatch.c once it knows the fd is a user socket.  Results are what the
 * Linux call returns (value or -errno), or USNET_HOOK_PASS to let the kernel
 * run the call on the (possibly handed-over) fd.
 */
#ifndef USNET_VSOCK_CALLS_H
#define USNET_VSOCK_CALLS_H

#include <sys/socket.h>
#include <sys/uio.h>
#include "vsock.h"

/* Absolute deadline for a timeout in ns (0: none -> INT64_MAX). */
int64_t vsock_deadline(int64_t timeout_ns);
bool vsock_slot_nonblocking(struct vsock_slot *s);

/* sockcalls.c */
/* Replace the user socket at fd by a kernel socket with the same options
 * (the provider answered USNET_PROVIDER_HANDOVER); returns USNET_HOOK_PASS
 * so that the kernel runs the call, or -errno. */
long vsock_handover(int fd, struct vsock_slot *s);
long vsock_socket(int domain, int type, int protocol);
long vsock_bind(int fd, struct vsock_slot *s, const struct sockaddr *addr, socklen_t len);
long vsock_listen(struct vsock_slot *s, int backlog);
long vsock_accept(struct vsock_slot *s, struct sockaddr *addr, socklen_t *len, int flags);
long vsock_connect(int fd, struct vsock_slot *s, const struct sockaddr *addr, socklen_t len);
long vsock_shutdown(struct vsock_slot *s, int how);
long vsock_setsockopt(int fd, struct vsock_slot *s, int level, int name, const void *val, socklen_t len);
long vsock_getsockopt(struct vsock_slot *s, int level, int name, void *val, socklen_t *len);
long vsock_getname(struct vsock_slot *s, bool peer, struct sockaddr *addr, socklen_t *len);

/* io.c */
long vsock_sendmsg(struct vsock_slot *s, const struct msghdr *msg, int flags);
/* splice(2) with a user socket on one side and a pipe on the other, through
 * a buffer of the switch's (a: the call's arguments); USNET_HOOK_PASS when
 * neither fd is a user socket. */
long vsock_splice(long *a);
long vsock_recvmsg(struct vsock_slot *s, struct msghdr *msg, int flags);
long vsock_sendmmsg(struct vsock_slot *s, struct mmsghdr *v, unsigned n, int flags);
long vsock_recvmmsg(struct vsock_slot *s, struct mmsghdr *v, unsigned n, int flags);
long vsock_sendfile(struct vsock_slot *s, int in_fd, off_t *offset, size_t count);

/* fdcalls.c */
long vsock_close(int fd);
long vsock_dup(int fd, int min, bool cloexec);
long vsock_dup3(int oldfd, int newfd, int flags, bool is_dup2);
long vsock_fcntl(int fd, struct vsock_slot *s, int cmd, long arg);
long vsock_ioctl(struct vsock_slot *s, unsigned long req, void *arg);
/* recvmsg/recvmmsg on a kernel fd (nr, its arguments a): the call itself,
 * then user sockets received with SCM_RIGHTS join the fd table. */
long vsock_kernel_recvmsg(long nr, const long *a);
/* close_range(2) itself, then the fd table and the provider sockets whose
 * files it released. */
long vsock_close_range(unsigned first, unsigned last, unsigned flags);
/* Close this process's user sockets' fds (exit_group: a socket no other
 * process holds closes now, while this process can still run the stack). */
void vsock_close_all(void);
/* Forget fd's entry (socket or tracked epoll) after the kernel replaced or
 * closed it. */
void vsock_fd_release(int fd);

#endif
