/*
 * usnet doctor [IF] — what this host (and interface IF) offer usnet, and
 * what `usnet run` would use there.  Each line is "WHAT  FINDING"; a
 * finding that costs usnet something is followed by a "fix:" line saying
 * what to change.  It only looks: nothing is attached, loaded or changed
 * (page 0 and a protection key are taken and given back at once).
 */
#include <arpa/inet.h>
#include <cpuid.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/ethtool.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "usnet/netif_open.h"

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_OFF 0
#endif

/* The netdev generic-netlink family (linux/netdev.h, kernel 6.3+; the
 * numbers are ABI, spelled out for older headers). */
#define NETDEV_FAMILY_NAME "netdev"
#define NETDEV_CMD_DEV_GET 1
#define NETDEV_A_DEV_IFINDEX 1
#define NETDEV_A_DEV_XDP_FEATURES 3
#define NETDEV_XDP_ACT_BASIC 1u
#define NETDEV_XDP_ACT_REDIRECT 2u
#define NETDEV_XDP_ACT_XSK_ZEROCOPY 8u

static int problems;

static void line(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(const char *what, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("  %-22s ", what);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
}

/* The fix for the finding just printed. */
static void fix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fix(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("  %-22s fix: ", "");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	problems++;
}

static long read_long(const char *path, long dflt)
{
	FILE *f = fopen(path, "r");
	long v = dflt;
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = dflt;
		fclose(f);
	}
	return v;
}

/* The effective capabilities of this process (/proc/self/status). */
static uint64_t effective_caps(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char l[256];
	unsigned long long caps = 0;
	while (f && fgets(l, sizeof l, f))
		if (sscanf(l, "CapEff: %llx", &caps) == 1)
			break;
	if (f)
		fclose(f);
	return caps;
}

/* ---- the host ------------------------------------------------------------ */

static bool page0_mappable(void)
{
	void *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED)
		return false;
	munmap(p, 4096);
	return p == NULL;
}

static void check_host(bool *page0)
{
	printf("host\n");
	uint64_t caps = effective_caps();
	const uint64_t net_admin = 1ull << 12, net_raw = 1ull << 13, sys_admin = 1ull << 21, bpf = 1ull << 39;
	bool afxdp_caps = (caps & net_admin) && (caps & net_raw) && ((caps & bpf) || (caps & sys_admin));
	line("privileges", "%s (CAP_NET_ADMIN %s, CAP_NET_RAW %s, CAP_BPF %s)", geteuid() == 0 ? "root" : "not root",
	     caps & net_admin ? "yes" : "no", caps & net_raw ? "yes" : "no", caps & bpf ? "yes" : "no");
	if (!afxdp_caps)
		fix("afpacket, afxdp and dpdk open the interface with these: run usnet run as root (the program "
		    "may drop privileges after), or start `usnet owner` as root for the interface");
	long min = read_long("/proc/sys/vm/mmap_min_addr", -1);
	*page0 = page0_mappable();
	line("page 0", "%s (vm.mmap_min_addr %ld)", *page0 ? "mappable: the hook rewrites system calls" :
	     "not mappable: the hook uses Syscall User Dispatch alone (slower)", min);
	if (!*page0)
		fix("run as root (CAP_SYS_RAWIO maps page 0 whatever vm.mmap_min_addr), or `sysctl -w vm.mmap_min_addr=0`");
	int sud = prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0);
	line("syscall user dispatch", "%s", sud == 0 ? "yes" : "no (kernel before 5.11, or built without it)");
	if (sud != 0)
		fix("JIT code and static binaries need it: use a kernel of 5.11 or later");
	unsigned a, b, c, d;
	bool bmi2 = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 8));
	int key = pkey_alloc(0, 0);
	line("protection keys", "%s", key >= 0 ? "yes (page 0 can be made execute-only)" : "no");
	if (key >= 0)
		pkey_free(key);
	line("bmi2", "%s", bmi2 ? "yes (the hook's fast path)" : "no (every hooked call takes the slow path)");
	struct rlimit ml;
	if (getrlimit(RLIMIT_MEMLOCK, &ml) == 0) {
		if (ml.rlim_cur == RLIM_INFINITY)
			line("memlock", "unlimited");
		else
			line("memlock", "%llu KiB (the kernel counts AF_XDP memory against it before 5.11)",
			     (unsigned long long)ml.rlim_cur / 1024);
	}
}

/* ---- the interface --------------------------------------------------------- */

static int ethtool(int sock, const char *ifname, void *cmd)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
	ifr.ifr_data = cmd;
	return ioctl(sock, SIOCETHTOOL, &ifr);
}

static const char *ethtool_onoff(int sock, const char *ifname, uint32_t cmd)
{
	struct ethtool_value v = { .cmd = cmd };
	if (ethtool(sock, ifname, &v) != 0)
		return "?";
	return v.data ? "on" : "off";
}

/* One generic-netlink request and its answer; the answer's length or -errno. */
static long genl_ask(int fd, void *req, size_t len, void *buf, size_t buflen)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	if (sendto(fd, req, len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0)
		return -errno;
	long r = recv(fd, buf, buflen, 0);
	if (r < 0)
		return -errno;
	struct nlmsghdr *nh = buf;
	if (!NLMSG_OK(nh, (unsigned long)r))
		return -EPROTO;
	if (nh->nlmsg_type == NLMSG_ERROR) {
		struct nlmsgerr *e = NLMSG_DATA(nh);
		return e->error ? e->error : -EPROTO;
	}
	return r;
}

/* The XDP features the driver of ifindex declares (NETDEV_XDP_ACT_*), or
 * -errno (-ENOENT: a kernel without the netdev family, before 6.3). */
static long long xdp_features(int ifindex)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (fd < 0)
		return -errno;
	struct {
		struct nlmsghdr nh;
		struct genlmsghdr g;
		char attrs[64];
	} req;
	union {
		struct nlmsghdr nh;
		char bytes[4096];
	} buf;
	memset(&req, 0, sizeof req);
	req.nh.nlmsg_type = GENL_ID_CTRL;
	req.nh.nlmsg_flags = NLM_F_REQUEST;
	req.g.cmd = CTRL_CMD_GETFAMILY;
	req.g.version = 1;
	struct nlattr *na = (struct nlattr *)req.attrs;
	na->nla_type = CTRL_ATTR_FAMILY_NAME;
	na->nla_len = (uint16_t)(NLA_HDRLEN + sizeof NETDEV_FAMILY_NAME);
	memcpy((char *)na + NLA_HDRLEN, NETDEV_FAMILY_NAME, sizeof NETDEV_FAMILY_NAME);
	req.nh.nlmsg_len = (uint32_t)(NLMSG_LENGTH(GENL_HDRLEN) + NLA_ALIGN(na->nla_len));
	long r = genl_ask(fd, &req, req.nh.nlmsg_len, &buf, sizeof buf);
	uint16_t family = 0;
	long long features = -ENOENT;
	for (int pass = 0; pass < 2 && r > 0; pass++) {
		struct genlmsghdr *g = NLMSG_DATA(&buf.nh);
		int left = (int)buf.nh.nlmsg_len - (int)NLMSG_LENGTH(GENL_HDRLEN);
		for (struct nlattr *a = (struct nlattr *)((char *)g + GENL_HDRLEN);
		     left >= (int)NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= left;
		     left -= NLA_ALIGN(a->nla_len), a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len))) {
			void *v = (char *)a + NLA_HDRLEN;
			if (pass == 0 && (a->nla_type & NLA_TYPE_MASK) == CTRL_ATTR_FAMILY_ID)
				memcpy(&family, v, sizeof family);
			if (pass == 1 && (a->nla_type & NLA_TYPE_MASK) == NETDEV_A_DEV_XDP_FEATURES &&
			    a->nla_len >= NLA_HDRLEN + 8) {
				uint64_t f;
				memcpy(&f, v, sizeof f);
				features = (long long)f;
			}
		}
		if (pass == 1 || !family)
			break;
		memset(&req, 0, sizeof req);
		req.nh.nlmsg_type = family;
		req.nh.nlmsg_flags = NLM_F_REQUEST;
		req.g.cmd = NETDEV_CMD_DEV_GET;
		req.g.version = 1;
		na = (struct nlattr *)req.attrs;
		na->nla_type = NETDEV_A_DEV_IFINDEX;
		na->nla_len = NLA_HDRLEN + 4;
		uint32_t idx = (uint32_t)ifindex;
		memcpy((char *)na + NLA_HDRLEN, &idx, 4);
		req.nh.nlmsg_len = (uint32_t)(NLMSG_LENGTH(GENL_HDRLEN) + NLA_ALIGN(na->nla_len));
		r = genl_ask(fd, &req, req.nh.nlmsg_len, &buf, sizeof buf);
	}
	close(fd);
	return r < 0 ? r : features;
}

/* The kernel's first IPv4 address on ifname as "A/N", or "". */
static void kernel_address(const char *ifname, char *out, size_t n)
{
	struct ifaddrs *ifs = NULL;
	out[0] = 0;
	if (getifaddrs(&ifs) != 0)
		return;
	for (struct ifaddrs *i = ifs; i && !out[0]; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !i->ifa_netmask || strcmp(i->ifa_name, ifname))
			continue;
		char a[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, a, sizeof a);
		snprintf(out, n, "%s/%d", a,
			 __builtin_popcount(ntohl(((struct sockaddr_in *)i->ifa_netmask)->sin_addr.s_addr)));
	}
	freeifaddrs(ifs);
}

/* The gateway of the kernel's default route through ifname (main table,
 * the /proc view), or "". */
static void default_gateway(const char *ifname, char *out, size_t n)
{
	FILE *f = fopen("/proc/net/route", "r");
	char l[256], dev[IFNAMSIZ + 1];
	unsigned dst, gw, flags;
	out[0] = 0;
	while (f && fgets(l, sizeof l, f)) {
		if (sscanf(l, "%16s %x %x %x", dev, &dst, &gw, &flags) == 4 && !strcmp(dev, ifname) && dst == 0 && gw) {
			struct in_addr a = { .s_addr = gw };
			inet_ntop(AF_INET, &a, out, (socklen_t)n);
			break;
		}
	}
	if (f)
		fclose(f);
}

/* Whether the kernel has, on ifname, the link-local address made from the
 * interface's MAC (modified EUI-64), which is the one the stack takes with
 * --ip6 on afxdp and afpacket (into ll as text): 1, 0, or -1 when the MAC
 * is unknown. */
static int kernel_eui64_link_local(const char *ifname, char *ll, size_t n)
{
	char path[128], mac_txt[32] = "";
	unsigned m[6];
	snprintf(path, sizeof path, "/sys/class/net/%s/address", ifname);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	bool got = fgets(mac_txt, sizeof mac_txt, f) != NULL;
	fclose(f);
	if (!got || sscanf(mac_txt, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6)
		return -1;
	uint8_t a[16] = { 0xfe, 0x80 };
	a[8] = (uint8_t)(m[0] ^ 0x02); a[9] = (uint8_t)m[1]; a[10] = (uint8_t)m[2];
	a[11] = 0xff; a[12] = 0xfe;
	a[13] = (uint8_t)m[3]; a[14] = (uint8_t)m[4]; a[15] = (uint8_t)m[5];
	inet_ntop(AF_INET6, a, ll, (socklen_t)n);
	struct ifaddrs *ifs = NULL;
	int found = 0;
	if (getifaddrs(&ifs) != 0)
		return 0;
	for (struct ifaddrs *i = ifs; i && !found; i = i->ifa_next)
		found = i->ifa_addr && i->ifa_addr->sa_family == AF_INET6 && !strcmp(i->ifa_name, ifname) &&
			!memcmp(((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr.s6_addr, a, 16);
	freeifaddrs(ifs);
	return found;
}

struct iface_facts {
	bool exists, xdp_native, zerocopy, has_afxdp;
	unsigned queues;
	char addr[64];
};

static void check_iface(const char *ifname, struct iface_facts *ff)
{
	printf("interface %s\n", ifname);
	int ifindex = (int)if_nametoindex(ifname);
	if (!ifindex) {
		line("exists", "no (%s)", strerror(errno));
		fix("name an existing interface (`ip link`); for a TAP: ip tuntap add %s mode tap", ifname);
		return;
	}
	ff->exists = true;
	int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ethtool_drvinfo di = { .cmd = ETHTOOL_GDRVINFO };
	bool drv = sock >= 0 && ethtool(sock, ifname, &di) == 0;
	line("driver", "%s", drv ? di.driver : "unknown");
	char path[128];
	snprintf(path, sizeof path, "/sys/class/net/%s/mtu", ifname);
	long mtu = read_long(path, 0);
	line("mtu", "%ld", mtu);
	if (mtu > 3826)
		fix("afxdp takes frames up to MTU 3826 (frame=4096): `ip link set dev %s mtu 1500`", ifname);
	struct ethtool_channels ch = { .cmd = ETHTOOL_GCHANNELS };
	unsigned rxq = 0;
	if (sock >= 0 && ethtool(sock, ifname, &ch) == 0) {
		rxq = ch.combined_count > ch.rx_count ? ch.combined_count : ch.rx_count;
		unsigned max = ch.max_combined > ch.max_rx ? ch.max_combined : ch.max_rx;
		line("queues", "%u (at most %u)", rxq, max);
		if (max > rxq)
			fix("more queues spread flows over more stack instances: ethtool -L %s combined %u", ifname, max);
	} else {
		line("queues", "1 (the driver does not say)");
	}
	ff->queues = rxq ? rxq : 1;
	long long xf = xdp_features(ifindex);
	if (xf < 0) {
		line("xdp native", "unknown (this kernel does not say: %s)", strerror((int)-xf));
	} else {
		ff->xdp_native = (xf & NETDEV_XDP_ACT_BASIC) && (xf & NETDEV_XDP_ACT_REDIRECT);
		ff->zerocopy = xf & NETDEV_XDP_ACT_XSK_ZEROCOPY;
		line("xdp native", "%s", ff->xdp_native ? "yes" : "no");
		if (!ff->xdp_native)
			fix("afxdp runs in generic mode here (slower): --backend afxdp with USNET_NETIF_OPTIONS=mode=skb, "
			    "or afpacket");
		line("af_xdp zero-copy", "%s", ff->zerocopy ? "yes (USNET_NETIF_OPTIONS=zerocopy)" :
		     "no (copy mode: each frame is copied once)");
	}
	if (sock >= 0) {
		line("offloads", "rx-checksum %s, tx-checksum %s, gro %s, tso %s",
		     ethtool_onoff(sock, ifname, ETHTOOL_GRXCSUM), ethtool_onoff(sock, ifname, ETHTOOL_GTXCSUM),
		     ethtool_onoff(sock, ifname, ETHTOOL_GGRO), ethtool_onoff(sock, ifname, ETHTOOL_GTSO));
		if (drv && !strcmp(di.driver, "veth"))
			line("veth peer", "must not offload transmit checksums (its frames reach usnet unfinished): "
			     "ethtool -K PEER tx off");
		close(sock);
	}
	kernel_address(ifname, ff->addr, sizeof ff->addr);
	if (ff->addr[0])
		line("kernel address", "%s (usnet run can share it: --ip host, with afxdp or afpacket)", ff->addr);
	else
		line("kernel address", "none (usnet run needs --ip ADDR/PREFIX)");
	char ll[INET6_ADDRSTRLEN];
	int eui = kernel_eui64_link_local(ifname, ll, sizeof ll);
	if (eui == 1) {
		line("kernel link-local", "%s, from the interface's MAC, which the stack takes with --ip6 (afxdp, "
		     "afpacket): then remove it (ip -6 addr del %s/64 dev %s; ip link set %s addrgenmode none) or "
		     "give the stack --mac", ll, ll, ifname, ifname);
	} else if (eui == 0) {
		line("kernel link-local", "none from the interface's MAC (--ip6 can take %s)", ll);
	}
	char gw[INET_ADDRSTRLEN];
	default_gateway(ifname, gw, sizeof gw);
	line("default gateway", "%s", gw[0] ? gw : "none through this interface (give --gw for destinations off-link)");
	ff->has_afxdp = strstr(usnet_netif_backends(), "afxdp") != NULL;
}

static void would_use(const char *ifname, const struct iface_facts *ff, bool page0)
{
	printf("usnet run%s%s would use\n", ifname ? " --iface " : "", ifname ? ifname : "");
	line("hook", "%s", page0 ? "auto: rewriting, Syscall User Dispatch for what it misses" :
	     "auto: Syscall User Dispatch alone (page 0 is not mappable)");
	if (!ifname || !ff->exists)
		return;
	if (ff->has_afxdp) {
		line("backend", "--backend afxdp%s: %u queue%s, one stack instance each",
		     ff->xdp_native ? "" : " with USNET_NETIF_OPTIONS=mode=skb (native mode is refused here)",
		     ff->queues, ff->queues == 1 ? "" : "s");
	} else {
		line("backend", "--backend afpacket: %u queue%s (this build has no afxdp)", ff->queues,
		     ff->queues == 1 ? "" : "s");
	}
	if (ff->addr[0] && ff->has_afxdp)
		line("address", "%s shared with the kernel (--ip host, the default with afxdp or afpacket and no --ip)",
		     ff->addr);
	else
		line("address", "--ip ADDR/PREFIX: an address of the stack's own on %s's subnet", ifname);
	line("gateway", "%s", "the kernel's default route through the interface, or --gw");
}

static void usage(FILE *f)
{
	fprintf(f, "usage: usnet doctor [IF]\n\n"
		"Says what this host and interface IF offer usnet (privileges, page 0, Syscall User\n"
		"Dispatch, protection keys; IF's driver, queues, XDP, zero-copy, offloads, address and\n"
		"gateway) and what `usnet run` would use, with a fix: line under each shortcoming.\n"
		"Exit status 0, or 1 when something needs fixing.  See docs/deploy.md.\n");
}

int cli_doctor_main(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return 0;
	}
	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		usage(stderr);
		return 2;
	}
	const char *ifname = argc == 2 ? argv[1] : NULL;
	if (ifname && strlen(ifname) >= IFNAMSIZ) {
		fprintf(stderr, "usnet doctor: interface name '%s' is too long\n", ifname);
		return 2;
	}
	bool page0 = false;
	struct iface_facts ff = { 0 };
	check_host(&page0);
	if (ifname)
		check_iface(ifname, &ff);
	would_use(ifname, &ff, page0);
	return problems ? 1 : 0;
}
