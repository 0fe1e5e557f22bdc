/*
 * The kernel's routing table, asked over rtnetlink (RTM_GETROUTE with
 * RTM_F_FIB_MATCH, so the reply names the matched entry's prefix length and
 * not just the /32 asked for).  One socket per question: a connect() to a
 * destination off the stack's own subnet asks once; nothing is cached, so
 * a route the administrator changes takes effect at the next connection.
 * The default gateway is read once, when the stack is made.
 */
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <arpa/inet.h>

#include "kernel_route.h"

#define SYS(h, nr, a, b, c, d, e, f) (h)->syscall((nr), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

static int nl_open(const struct usnet_provider_host *h)
{
	return (int)SYS(h, SYS_socket, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE, 0, 0, 0);
}

int kernel_route_ifindex(const struct usnet_provider_host *h, const char *ifname)
{
	if (strlen(ifname) >= IFNAMSIZ)
		return -ENODEV;
	int fd = nl_open(h);
	if (fd < 0)
		return fd;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	memcpy(ifr.ifr_name, ifname, strlen(ifname));
	/* Any socket answers the device ioctls (netlink's included). */
	long r = SYS(h, SYS_ioctl, fd, SIOCGIFINDEX, &ifr, 0, 0, 0);
	SYS(h, SYS_close, fd, 0, 0, 0, 0, 0);
	return r < 0 ? (int)r : ifr.ifr_ifindex;
}

int kernel_route_get(const struct usnet_provider_host *h, uint32_t dst, struct kernel_route *out)
{
	struct {
		struct nlmsghdr nh;
		struct rtmsg rt;
		struct rtattr dst_attr;
		uint32_t dst;
	} req;
	memset(&req, 0, sizeof req);
	req.nh.nlmsg_len = sizeof req;
	req.nh.nlmsg_type = RTM_GETROUTE;
	req.nh.nlmsg_flags = NLM_F_REQUEST;
	req.nh.nlmsg_seq = 1;
	req.rt.rtm_family = AF_INET;
	req.rt.rtm_dst_len = 32;
	req.rt.rtm_flags = RTM_F_FIB_MATCH;
	req.dst_attr.rta_len = RTA_LENGTH(sizeof req.dst);
	req.dst_attr.rta_type = RTA_DST;
	req.dst = htonl(dst);

	int fd = nl_open(h);
	if (fd < 0)
		return fd;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	long r = SYS(h, SYS_sendto, fd, &req, sizeof req, 0, &kernel, sizeof kernel);
	if (r < 0) {
		SYS(h, SYS_close, fd, 0, 0, 0, 0, 0);
		return (int)r;
	}
	union {
		struct nlmsghdr nh;
		char bytes[4096];
	} buf;
	r = SYS(h, SYS_recvfrom, fd, &buf, sizeof buf, 0, 0, 0);
	SYS(h, SYS_close, fd, 0, 0, 0, 0, 0);
	if (r < 0)
		return (int)r;
	struct nlmsghdr *nh = &buf.nh;
	if (!NLMSG_OK(nh, (unsigned)r))
		return -EPROTO;
	if (nh->nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *e = NLMSG_DATA(nh);
		return nh->nlmsg_len >= NLMSG_LENGTH(sizeof *e) && e->error ? e->error : -EPROTO;
	}
	if (nh->nlmsg_type != RTM_NEWROUTE || nh->nlmsg_len < NLMSG_LENGTH(sizeof(struct rtmsg)))
		return -EPROTO;
	const struct rtmsg *rt = NLMSG_DATA(nh);
	*out = (struct kernel_route){ .oif = 0, .prefix = rt->rtm_dst_len };
	int len = (int)RTM_PAYLOAD(nh);
	for (const struct rtattr *a = RTM_RTA(rt); RTA_OK(a, len); a = RTA_NEXT(a, len))
		if (a->rta_type == RTA_OIF && RTA_PAYLOAD(a) >= sizeof(uint32_t))
			memcpy(&out->oif, RTA_DATA(a), sizeof out->oif);
	return 0;
}

bool kernel_route_elsewhere(const struct usnet_provider_host *h, int ifindex, uint32_t dst)
{
	struct kernel_route kr;
	if (kernel_route_get(h, dst, &kr) < 0)
		return false;
	return kr.prefix > 0 && kr.oif > 0 && kr.oif != ifindex;
}

/* One route of a dump: a default route of the main table through ifindex,
 * with a gateway, and a lower metric than *best_metric: take it. */
static void consider_default(const struct nlmsghdr *nh, int ifindex, uint32_t *gw, uint32_t *best_metric, bool *found)
{
	const struct rtmsg *rt = NLMSG_DATA(nh);
	if (nh->nlmsg_len < NLMSG_LENGTH(sizeof *rt) || rt->rtm_family != AF_INET || rt->rtm_dst_len != 0 ||
	    rt->rtm_table != RT_TABLE_MAIN || rt->rtm_type != RTN_UNICAST)
		return;
	int oif = 0;
	uint32_t via = 0, metric = 0;
	int len = (int)RTM_PAYLOAD(nh);
	for (const struct rtattr *a = RTM_RTA(rt); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if (RTA_PAYLOAD(a) < sizeof(uint32_t))
			continue;
		if (a->rta_type == RTA_OIF)
			memcpy(&oif, RTA_DATA(a), sizeof oif);
		else if (a->rta_type == RTA_GATEWAY)
			memcpy(&via, RTA_DATA(a), sizeof via);
		else if (a->rta_type == RTA_PRIORITY)
			memcpy(&metric, RTA_DATA(a), sizeof metric);
	}
	if (oif != ifindex || !via || (*found && metric >= *best_metric))
		return;
	*gw = ntohl(via);
	*best_metric = metric;
	*found = true;
}

int kernel_route_default_gateway(const struct usnet_provider_host *h, int ifindex, uint32_t *gw)
{
	struct {
		struct nlmsghdr nh;
		struct rtmsg rt;
	} req;
	memset(&req, 0, sizeof req);
	req.nh.nlmsg_len = sizeof req;
	req.nh.nlmsg_type = RTM_GETROUTE;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.nh.nlmsg_seq = 2;
	req.rt.rtm_family = AF_INET;
	int fd = nl_open(h);
	if (fd < 0)
		return fd;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	long r = SYS(h, SYS_sendto, fd, &req, sizeof req, 0, &kernel, sizeof kernel);
	bool found = false, done = false;
	uint32_t best_metric = 0;
	union {
		struct nlmsghdr nh;
		char bytes[16384];
	} buf;
	while (r >= 0 && !done) {
		r = SYS(h, SYS_recvfrom, fd, &buf, sizeof buf, 0, 0, 0);
		if (r <= 0) {
			r = r ? r : -EPROTO;
			break;
		}
		unsigned left = (unsigned)r;
		for (struct nlmsghdr *nh = &buf.nh; NLMSG_OK(nh, left); nh = NLMSG_NEXT(nh, left)) {
			if (nh->nlmsg_type == NLMSG_DONE) {
				done = true;
				break;
			}
			if (nh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(nh);
				r = nh->nlmsg_len >= NLMSG_LENGTH(sizeof *e) && e->error ? e->error : -EPROTO;
				break;
			}
			if (nh->nlmsg_type == RTM_NEWROUTE)
				consider_default(nh, ifindex, gw, &best_metric, &found);
		}
	}
	SYS(h, SYS_close, fd, 0, 0, 0, 0, 0);
	if (r < 0)
		return (int)r;
	return found ? 0 : -ENOENT;
}
