/*
 * usnet switch — fd-level calls on user sockets: close, dup/dup2/dup3,
 * fcntl, ioctl, close_range.  The kernel does the numbering and counts the
 * references of every user socket's file (fdtable.c); these calls keep the
 * fd table in step with it, and close the provider socket once the kernel
 * says its file is gone.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "vsock.h"
#include "vsock_calls.h"
#include "vsock_handler.h"

void vsock_fd_release(int fd)
{
	int32_t e = vsock_fd_entry(fd);
	if (e == 0)
		return;
	vsock_epoll_forget_fd(fd);
	if (e > 0)
		vsock_fd_unmap(fd);
}

long vsock_close(int fd)
{
	bool user = vsock_fd_entry(fd) > 0;
	vsock_fd_release(fd);
	long r = vsock_sys(SYS_close, fd, 0, 0, 0, 0, 0);
	if (user)
		vsock_slots_collect();   /* the file was released now if this was its last fd */
	return r;
}

long vsock_dup(int fd, int min, bool cloexec)
{
	struct vsock_slot *s = vsock_fd_slot(fd);
	long nfd = vsock_sys(SYS_fcntl, fd, cloexec ? F_DUPFD_CLOEXEC : F_DUPFD, min, 0, 0, 0);
	if (nfd < 0 || !s)
		return nfd;
	if (nfd >= vsock_fdmap_size) {
		vsock_sys(SYS_close, nfd, 0, 0, 0, 0, 0);
		return -EMFILE;
	}
	vsock_fd_map((int)nfd, s);
	return nfd;
}

long vsock_dup3(int oldfd, int newfd, int flags, bool is_dup2)
{
	struct vsock_slot *s = vsock_fd_slot(oldfd);
	long nr = is_dup2 ? SYS_dup2 : SYS_dup3;
	long r = vsock_own_fd(newfd) ? vsock_own_dup_onto(nr, oldfd, newfd, flags)
				     : vsock_sys(nr, oldfd, newfd, is_dup2 ? 0 : flags, 0, 0, 0);
	if (r < 0 || oldfd == newfd)
		return r;
	/* The kernel replaced whatever newfd was: forget it, then map the copy. */
	bool replaced_user = vsock_fd_entry(newfd) > 0;
	vsock_fd_release(newfd);
	if (s)
		vsock_fd_map(newfd, s);
	if (replaced_user)
		vsock_slots_collect();
	return r;
}

long vsock_fcntl(int fd, struct vsock_slot *s, int cmd, long arg)
{
	switch (cmd) {
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
		return vsock_dup(fd, (int)arg, cmd == F_DUPFD_CLOEXEC);
	case F_GETFL:
		return O_RDWR | (long)atomic_load(&s->status);
	case F_SETFL:
		if (arg & O_NONBLOCK)
			atomic_fetch_or(&s->status, O_NONBLOCK);
		else
			atomic_fetch_and(&s->status, ~(uint32_t)O_NONBLOCK);
		return 0;
	default:
		/* F_GETFD/F_SETFD act on the placeholder, which carries the
		 * real FD_CLOEXEC; the rest (F_SETOWN, locks) are harmless there. */
		return USNET_HOOK_PASS;
	}
}

/* Interface queries (SIOCGIF*) need a real socket, whatever the fd is. */
static long kernel_interface_ioctl(unsigned long req, void *arg)
{
	static int helper = -1;
	if (helper < 0) {
		long fd = vsock_sys(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0, 0, 0, 0);
		if (fd < 0)
			return fd;
		vsock_own_fd_hide((int)fd, &helper);
	}
	return vsock_sys(SYS_ioctl, helper, req, arg, 0, 0, 0);
}

/* The stack's interface and IPv4 address (USNET_IFACE, USNET_IP), when
 * the provider is the built-in stack: false otherwise. */
static bool stack_interface(char name[IFNAMSIZ], struct in_addr *addr, struct in_addr *mask)
{
	const char *iface = vsock_config("iface"), *ip = vsock_config("ip");
	if (!vsock_prov_handles_shared || !iface || !ip || strlen(iface) >= IFNAMSIZ)
		return false;
	char a[INET_ADDRSTRLEN];
	const char *slash = strchr(ip, '/');
	size_t n = slash ? (size_t)(slash - ip) : strlen(ip);
	if (n >= sizeof a)
		return false;
	memcpy(a, ip, n);
	a[n] = 0;
	if (inet_pton(AF_INET, a, addr) != 1)
		return false;
	long prefix = slash ? strtol(slash + 1, NULL, 10) : 32;
	if (prefix < 0 || prefix > 32)
		return false;
	mask->s_addr = htonl(prefix ? ~0u << (32 - prefix) : 0);
	snprintf(name, IFNAMSIZ, "%s", iface);
	return true;
}

static void put_in_addr(struct sockaddr *sa, struct in_addr a)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr = a };
	memcpy(sa, &sin, sizeof sin);
}

/* Interface queries on a user socket: the kernel's answers, except that
 * the stack's interface has the stack's address (listed by SIOCGIFCONF
 * even where the kernel has none on it), MAC and MTU -- what the kernel
 * would answer if the stack's address were its own. */
static long interface_ioctl(struct vsock_slot *s, unsigned long req, void *arg)
{
	char name[IFNAMSIZ];
	struct in_addr addr, mask;
	bool stack = stack_interface(name, &addr, &mask);
	struct ifconf *ifc = arg;
	if (stack && usnet_hook_user_check(arg, req == SIOCGIFCONF ? sizeof *ifc : sizeof(struct ifreq), 1))
		return -EFAULT;
	int room = stack && req == SIOCGIFCONF ? ifc->ifc_len : 0;
	long r = kernel_interface_ioctl(req, arg);
	if (!stack || r == -EFAULT)
		return r;
	struct ifreq *ifr = arg;
	switch (req) {
	case SIOCGIFCONF: {
		if (r < 0)
			return r;
		bool listed = false;
		struct ifreq scratch[64];
		struct ifconf all = { .ifc_len = sizeof scratch, .ifc_req = scratch };
		struct ifconf *seen = ifc->ifc_req ? ifc : &all;
		if (!ifc->ifc_req && kernel_interface_ioctl(SIOCGIFCONF, &all) < 0)
			all.ifc_len = 0;   /* sizing only: is the interface listed? */
		for (int i = 0; i < seen->ifc_len / (int)sizeof(struct ifreq); i++) {
			if (!strncmp(seen->ifc_req[i].ifr_name, name, IFNAMSIZ)) {
				put_in_addr(&seen->ifc_req[i].ifr_addr, addr);
				listed = true;
			}
		}
		if (!listed && !ifc->ifc_req) {
			ifc->ifc_len += (int)sizeof(struct ifreq);
		} else if (!listed && room - ifc->ifc_len >= (int)sizeof(struct ifreq)) {
			struct ifreq *e = (struct ifreq *)((char *)ifc->ifc_req + ifc->ifc_len);
			memset(e, 0, sizeof *e);
			memcpy(e->ifr_name, name, IFNAMSIZ);
			put_in_addr(&e->ifr_addr, addr);
			ifc->ifc_len += (int)sizeof(struct ifreq);
		}
		return r;
	}
	case SIOCGIFADDR:
	case SIOCGIFNETMASK:
	case SIOCGIFBRDADDR: {
		if (strncmp(ifr->ifr_name, name, IFNAMSIZ))
			return r;
		/* The kernel may have no address there (EADDRNOTAVAIL); the
		 * interface must exist. */
		struct ifreq q;
		memcpy(&q, ifr, sizeof q);
		long e = kernel_interface_ioctl(SIOCGIFINDEX, &q);
		if (e < 0)
			return e;
		struct in_addr v = addr;
		if (req == SIOCGIFNETMASK)
			v = mask;
		else if (req == SIOCGIFBRDADDR)
			v.s_addr = addr.s_addr | ~mask.s_addr;
		put_in_addr(&ifr->ifr_addr, v);
		return 0;
	}
	case SIOCGIFHWADDR:
	case SIOCGIFMTU:
		/* The provider puts in its own, for its interface. */
		if (r == 0 && vsock_prov->ioctl) {
			long e = vsock_prov->ioctl(vsock_prov_ctx, s->ps, req, arg);
			if (e < 0 && e != -ENOTTY)
				return e;
		}
		return r;
	default:
		return r;
	}
}

long vsock_ioctl(struct vsock_slot *s, unsigned long req, void *arg)
{
	switch (req) {
	case FIONBIO: {
		if (!arg)
			return -EFAULT;
		int on = *(int *)arg;
		if (on)
			atomic_fetch_or(&s->status, O_NONBLOCK);
		else
			atomic_fetch_and(&s->status, ~(uint32_t)O_NONBLOCK);
		return 0;
	}
	case FIOCLEX:
	case FIONCLEX:
		return USNET_HOOK_PASS;
	default:
		break;
	}
	if (req >= SIOCGIFNAME && req <= SIOCSIFMAP && req != SIOCATMARK)
		return interface_ioctl(s, req, arg);
	if (!vsock_prov->ioctl)
		return -ENOTTY;
	return vsock_prov->ioctl(vsock_prov_ctx, s->ps, req, arg);
}

/* The fds of the SCM_RIGHTS messages in m's control data that are user
 * sockets' files join the fd table. */
static void adopt_rights(const struct msghdr *m)
{
	if (!m->msg_control || m->msg_controllen < sizeof(struct cmsghdr))
		return;
	for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)m); c; c = CMSG_NXTHDR((struct msghdr *)m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		const unsigned char *p = CMSG_DATA(c);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, p + i * sizeof fd, sizeof fd);
			if (vsock_fd_entry(fd) == 0)
				vsock_fd_adopt(fd);
		}
	}
}

long vsock_kernel_recvmsg(long nr, const long *a)
{
	/* It may block: signal handlers that run meanwhile are the program's,
	 * and their system calls go through the switch as usual. */
	int saved;
	vsock_handler_leave_switch(&saved);
	long r = vsock_sys(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	vsock_handler_reenter_switch(saved);
	if (r < 0)
		return r;
	if (nr == SYS_recvmsg) {
		adopt_rights((const struct msghdr *)a[1]);
	} else {
		const struct mmsghdr *v = (const struct mmsghdr *)a[1];
		for (long i = 0; i < r; i++)
			adopt_rights(&v[i].msg_hdr);
	}
	return r;
}

long vsock_close_range(unsigned first, unsigned last, unsigned flags)
{
	long r = vsock_own_close_range(first, last, flags);
	if (r < 0 || (flags & CLOSE_RANGE_CLOEXEC))
		return r;
	if (last >= (unsigned)vsock_fdmap_size)
		last = (unsigned)vsock_fdmap_size - 1;
	for (unsigned fd = first; fd <= last && atomic_load(&vsock_user_fds) > 0; fd++)
		vsock_fd_release((int)fd);
	vsock_slots_collect();
	return r;
}

void vsock_close_all(void)
{
	for (int fd = 0; fd < vsock_fdmap_size && atomic_load(&vsock_user_fds) > 0; fd++) {
		if (vsock_fd_entry(fd) > 0) {
			vsock_fd_unmap(fd);
			vsock_sys(SYS_close, fd, 0, 0, 0, 0, 0);
		}
	}
	vsock_slots_collect();
}
