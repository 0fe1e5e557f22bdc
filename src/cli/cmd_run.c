/*
 * usnet run — run an unmodified program with its sockets on a provider
 * (usnet's stack by default).  The front end validates the configuration,
 * turns it into USNET_* environment variables, preloads build/libusnet.so
 * (found next to this binary) and execs the program.  Every option can also
 * be given as its environment variable; an option overrides it.
 */
#include <ctype.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>

#include "cli.h"
#include "program_kind.h"
#include "attach_proto.h"
#include "host_ports.h"
#include "ip6_list.h"
#include "usnet/netif_open.h"
#include "usnet/provider.h"

struct run_opt {
	const char *name;   /* --name */
	const char *env;    /* USNET_NAME */
	const char *help;
};

static const struct run_opt opts[] = {
	{ "backend",  "USNET_BACKEND",  "packet I/O backend: tap, memwire, afpacket, afxdp (default tap)" },
	{ "iface",    "USNET_IFACE",    "interface (memwire: WIRE:SIDE); without it and --backend: the interface of "
					"the kernel's default route, with afxdp" },
	{ "ip",       "USNET_IP",       "the stack's address, ADDR/PREFIX, or host: share the kernel's own address on "
					"--iface (afxdp, afpacket; the default there when the interface has one)" },
	{ "host-ports", "USNET_HOST_PORTS", "with --ip host: the stack's ephemeral ports, reserved from the kernel "
					"while the stack lives (default " HOST_PORTS_DEFAULT ")" },
	{ "gw",       "USNET_GW",       "default gateway ADDR (default: the gateway of the kernel's default route "
					"through --iface, when on the stack's subnet); a destination the kernel routes "
					"through another interface stays the kernel's" },
	{ "ip6",      "USNET_IP6",      "an IPv6 address of the stack, ADDR/PREFIX; repeat for more (up to 4, joined by "
					"commas in USNET_IP6); with it the stack also has fe80::/64 from its MAC, checks "
					"each by Duplicate Address Detection before PROGRAM starts and refuses a taken one" },
	{ "gw6",      "USNET_GW6",      "IPv6 default gateway ADDR (link-local or on a --ip6 prefix; by default the routers Router Advertisements name)" },
	{ "mac",      "USNET_MAC",      "the stack's MAC (default: the backend's)" },
	{ "hook",     "USNET_HOOK",     "auto (default), rewrite, rewrite+sud, sud or page0; docs/hook.md" },
	{ "provider", "USNET_PROVIDER", "usnet (default), kernel, or PATH.so of another provider" },
	{ "queues",   "USNET_QUEUES",   "receive queues to read: all (default: every queue of the interface) or N" },
	{ "pcap",     "USNET_PCAP",     "write the frames to this capture file" },
	{ "log",      "USNET_LOG",      "error, info or debug (default error)" },
	{ "spin-us",  "USNET_SPIN_US",  "spin this long before sleeping in a blocking call (default 20)" },
	{ "tx-batch", "USNET_TX_BATCH", "1: the frames a thread sends leave at its next wait or other system call, "
					"together (default); 0: at once" },
};
#define NOPTS (sizeof opts / sizeof opts[0])

static void usage(FILE *f)
{
	fprintf(f, "usage: usnet run [OPTIONS] -- PROGRAM [ARGS...]\n\n"
		"Runs PROGRAM with its AF_INET/AF_INET6 sockets on a user-space provider.\n"
		"AF_UNIX, loopback and addresses the stack does not own stay with the kernel.\n"
		"A statically linked PROGRAM (static-pie included) is started through usnet-exec\n"
		"and hooked with Syscall User Dispatch.  A program usnet cannot hook (set-user-ID,\n"
		"not x86-64) is named in one line before it runs.\n\noptions:\n");
	for (size_t i = 0; i < NOPTS; i++)
		fprintf(f, "  --%-9s %s [%s]\n", opts[i].name, opts[i].help, opts[i].env);
	fprintf(f, "  --strict    refuse to run a program usnet cannot hook, instead of saying so [USNET_STRICT=1]\n");
}

static int fail(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "usnet run: ");
	fprintf(stderr, fmt, a, b);
	fputc('\n', stderr);
	return 2;
}

/* A connection to the owner at path, or -errno. */
static int owner_connect(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static const char *config_get(const char *key)
{
	char name[64];
	snprintf(name, sizeof name, "USNET_%s", key);
	for (char *p = name; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

/* Is our configuration the stack's?  0, or the exit status after the
 * owner's one line. */
static int owner_check(int conn)
{
	struct attach_request rq = { .magic = ATTACH_MAGIC, .version = ATTACH_VERSION, .op = ATTACH_OP_CHECK };
	attach_config_make(config_get, rq.config, sizeof rq.config);
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		return fail("socketpair: %s%s", strerror(errno), "");
	struct attach_reply rp;
	int r = attach_send_request(conn, &rq, sv[1]);
	close(sv[1]);
	if (r == 0)
		r = attach_recv_reply(sv[0], &rp, NULL, 0);
	close(sv[0]);
	if (r < 0)
		return fail("the interface's owner did not answer: %s%s", strerror(-r), "");
	if (rp.status < 0) {
		char pid[16];
		snprintf(pid, sizeof pid, "%d", rp.owner_pid);
		return fail("%s (owner: process %s)", rp.message, pid);
	}
	return 0;
}

/* Start `usnet owner` for the configured interface, detached (the program
 * must not find it among its children), and put its first line in line. */
static void owner_start(char *line, size_t n)
{
	snprintf(line, n, "error cannot start the interface's owner");
	char self[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
	int p[2];
	if (len <= 0 || pipe2(p, O_CLOEXEC) != 0)
		return;
	self[len] = 0;
	pid_t child = fork();
	if (child == 0) {
		if (fork() == 0) {
			char num[16];
			snprintf(num, sizeof num, "%d", p[1]);
			fcntl(p[1], F_SETFD, 0);
			unsetenv("LD_PRELOAD");
			execl(self, "usnet", "owner", "--ready-fd", num, (char *)NULL);
			dprintf(p[1], "error cannot run %s owner: %s\n", self, strerror(errno));
		}
		_exit(0);
	}
	close(p[1]);
	if (child > 0)
		waitpid(child, NULL, 0);
	size_t got = 0;
	for (;;) {
		struct pollfd pf = { p[0], POLLIN, 0 };
		if (got + 1 >= n || poll(&pf, 1, 30000) <= 0)
			break;
		ssize_t r = read(p[0], line + got, n - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
		line[got] = 0;
		if (memchr(line, '\n', got))
			break;
	}
	close(p[0]);
	line[strcspn(line, "\n")] = 0;
	if (got == 0)
		snprintf(line, n, "error the interface's owner exited without a word");
}

static const char *get(const char *env)
{
	const char *v = getenv(env);
	return v && *v ? v : NULL;
}

static int check_cidr(const char *s, bool need_prefix)
{
	char ip[64];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	if (n >= sizeof ip || (need_prefix && !slash))
		return -1;
	memcpy(ip, s, n);
	ip[n] = 0;
	struct in_addr a;
	if (inet_pton(AF_INET, ip, &a) != 1)
		return -1;
	if (slash) {
		char *end;
		long p = strtol(slash + 1, &end, 10);
		if (*end || end == slash + 1 || p < 0 || p > 32)
			return -1;
	}
	return 0;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char extra;
	if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &extra) != 6)
		return -1;
	for (int i = 0; i < 6; i++) {
		if (v[i] > 255)
			return -1;
		mac[i] = (uint8_t)v[i];
	}
	return 0;
}

/* Everything a misconfiguration can be caught by before the program runs. */
/* dpdk's net_af_xdp device loads DPDK's own XDP program, which hands every
 * frame of the interface to the stack: unlike --backend afxdp, it cannot
 * leave the kernel its own address there (ARP included), so say so when
 * the kernel has one.  net_af_packet receives copies, the kernel keeps its
 * frames. */
static void warn_dpdk_takes_interface(const char *backend, const char *iface)
{
	const char *o = get("USNET_NETIF_OPTIONS");
	if (strcmp(backend, "dpdk") || !o || !strstr(o, "vdev=net_af_xdp"))
		return;
	struct ifaddrs *ifs = NULL;
	if (getifaddrs(&ifs) != 0)
		return;
	for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || strcmp(i->ifa_name, iface))
			continue;
		char a[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, a, sizeof a);
		fprintf(stderr, "usnet run: dpdk's net_af_xdp takes every frame of %s: the kernel's own address "
			"%s there stops answering (ARP too); --backend afxdp or vdev=net_af_packet share %s "
			"with the kernel\n", iface, a, iface);
		break;
	}
	freeifaddrs(ifs);
}

/* The kernel's first IPv4 address on iface as "ADDR/PREFIX" into out: 0,
 * or -1 when it has none. */
static int kernel_address_of(const char *iface, char *out, size_t n)
{
	struct ifaddrs *ifs = NULL;
	int r = -1;
	if (!iface || getifaddrs(&ifs) != 0)
		return -1;
	for (struct ifaddrs *i = ifs; i && r; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !i->ifa_netmask || strcmp(i->ifa_name, iface))
			continue;
		char a[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, a, sizeof a);
		uint32_t mask = ntohl(((struct sockaddr_in *)i->ifa_netmask)->sin_addr.s_addr);
		snprintf(out, n, "%s/%d", a, __builtin_popcount(mask));
		r = 0;
	}
	freeifaddrs(ifs);
	return r;
}

/* The kernel's global IPv6 addresses on iface that it uses (not
 * tentative, not failed DAD, not deprecated), as USNET_IP6 lists them
 * (ADDR/PREFIX joined by commas, at most IP6_LIST_MAX) into out: how many,
 * or -1 when netlink does not answer.  From RTM_GETADDR rather than
 * getifaddrs(), which does not tell an address's DAD state. */
static int kernel_ip6_of(const char *iface, char *out, size_t n)
{
	unsigned ifindex = if_nametoindex(iface);
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (!ifindex || fd < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	struct {
		struct nlmsghdr nh;
		struct ifaddrmsg ifa;
	} req = { .nh = { .nlmsg_len = sizeof req, .nlmsg_type = RTM_GETADDR, .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP },
		  .ifa = { .ifa_family = AF_INET6, .ifa_index = ifindex } };
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	int count = 0;
	size_t used = 0;
	out[0] = 0;
	if (sendto(fd, &req, sizeof req, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
		close(fd);
		return -1;
	}
	for (bool done = false; !done;) {
		union {
			struct nlmsghdr nh;
			char bytes[32768];   /* a dump's part fits (the kernel fills up to 32 KiB) */
		} buf;
		ssize_t len = recv(fd, &buf, sizeof buf, 0);
		if (len <= 0) {
			close(fd);
			return -1;
		}
		for (struct nlmsghdr *nh = &buf.nh; NLMSG_OK(nh, (size_t)len); nh = NLMSG_NEXT(nh, len)) {
			if (nh->nlmsg_type == NLMSG_DONE || nh->nlmsg_type == NLMSG_ERROR) {
				done = true;
				break;
			}
			const struct ifaddrmsg *ifa = NLMSG_DATA(nh);
			if (nh->nlmsg_type != RTM_NEWADDR || ifa->ifa_family != AF_INET6 || ifa->ifa_index != ifindex ||
			    ifa->ifa_scope != RT_SCOPE_UNIVERSE)
				continue;
			uint32_t flags = ifa->ifa_flags;
			const uint8_t *addr = NULL;
			int alen = (int)IFA_PAYLOAD(nh);
			for (struct rtattr *a = IFA_RTA(ifa); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
				if (a->rta_type == IFA_ADDRESS && RTA_PAYLOAD(a) == 16)
					addr = RTA_DATA(a);
				else if (a->rta_type == IFA_FLAGS && RTA_PAYLOAD(a) == 4)
					memcpy(&flags, RTA_DATA(a), 4);
			}
			if (!addr || (flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED | IFA_F_DEPRECATED)) ||
			    count == IP6_LIST_MAX)
				continue;
			char a[INET6_ADDRSTRLEN];
			inet_ntop(AF_INET6, addr, a, sizeof a);
			int w = snprintf(out + used, n - used, "%s%s/%u", count ? "," : "", a, ifa->ifa_prefixlen);
			if (w < 0 || (size_t)w >= n - used)
				continue;
			used += (size_t)w;
			count++;
		}
	}
	close(fd);
	return count;
}

/* Host-address mode: `--ip host`, or no --ip with afxdp or afpacket on an
 * interface the kernel has an address on.  The stack takes that address
 * (USNET_IP), steers by port (USNET_HOST_ADDR=1) and gets its ephemeral
 * ports from USNET_HOST_PORTS.  Returns 0 (set up, or not this mode), or
 * the exit status after an error line. */
static int host_mode_resolve(const char *backend, const char *iface)
{
	const char *ip = get("USNET_IP");
	bool asked = ip && !strcmp(ip, "host");
	if (ip && !asked) {
		unsetenv("USNET_HOST_ADDR");   /* an address of its own */
		return 0;
	}
	bool steers = !strcmp(backend, "afxdp") || !strcmp(backend, "afpacket");
	if (!asked && !steers)
		return 0;   /* the usual "needs an address" line follows */
	if (!iface)
		return fail("--ip host needs --iface: the interface whose address the stack shares%s%s", "", "");
	if (!steers)
		return fail("--ip host needs --backend afxdp or afpacket (the backends that steer by port: with %s "
			    "the kernel would see the stack's frames too and reset its connections)%s", backend, "");
	char addr[64];
	if (kernel_address_of(iface, addr, sizeof addr)) {
		if (!asked)
			return 0;
		return fail("--ip host: the kernel has no IPv4 address on %s to share%s", iface, "");
	}
	const char *range = get("USNET_HOST_PORTS");
	uint16_t lo, hi;
	if (!range)
		setenv("USNET_HOST_PORTS", range = HOST_PORTS_DEFAULT, 1);
	if (host_ports_parse(range, &lo, &hi))
		return fail("--host-ports '%s' is not a port range LO-HI (1024..65535)%s", range, "");
	setenv("USNET_IP", addr, 1);
	setenv("USNET_HOST_ADDR", "1", 1);
	/* The kernel's global IPv6 addresses are shared too: afxdp's XDP
	 * program and afpacket's filters steer them by port as the IPv4 one. */
	if (get("USNET_IP6"))
		return fail("--ip6 in host-address mode (--ip host, or no --ip with afxdp or afpacket): the stack shares "
			    "the kernel's own IPv6 addresses there; give it none, or an IPv4 address of its own with --ip "
			    "ADDR/PREFIX%s%s", "", "");
	char ip6[IP6_LIST_MAX * (INET6_ADDRSTRLEN + 5)];
	int n6 = kernel_ip6_of(iface, ip6, sizeof ip6);
	if (n6 < 0)
		return fail("--ip host: cannot read the kernel's IPv6 addresses on %s (netlink RTM_GETADDR)%s", iface, "");
	if (n6 > 0)
		setenv("USNET_IP6", ip6, 1);
	return 0;
}

/* The interface of the kernel's default routes, when they all leave by
 * one (into out, IFNAMSIZ bytes): 0; -1 when there is none or several. */
static int default_route_iface(char *out)
{
	FILE *f = fopen("/proc/net/route", "r");
	char l[256], dev[IF_NAMESIZE + 1];
	unsigned dst, gw, flags, mask;
	int found = 0;
	while (f && fgets(l, sizeof l, f)) {
		if (sscanf(l, "%16s %x %x %x %*d %*d %*d %x", dev, &dst, &gw, &flags, &mask) != 5 || dst || mask ||
		    !(flags & 1))
			continue;
		if (found && strcmp(out, dev))
			found = 2;   /* several */
		else if (!found && strlen(dev) < IF_NAMESIZE) {
			memcpy(out, dev, strlen(dev) + 1);
			found = 1;
		}
	}
	if (f)
		fclose(f);
	return found == 1 ? 0 : -1;
}

/* No --iface and no --backend: the interface of the kernel's default route,
 * with afxdp (where built), so that `usnet run -- PROGRAM` runs on the
 * host's own interface and address (host-address mode). */
static void default_interface(void)
{
	char dev[IF_NAMESIZE];
	if (get("USNET_IFACE") || get("USNET_BACKEND") || default_route_iface(dev))
		return;
	setenv("USNET_IFACE", dev, 1);
	const char *list = usnet_netif_backends();
	const char *p = strstr(list, "afxdp");
	setenv("USNET_BACKEND", p && (!p[5] || p[5] == ' ') ? "afxdp" : "afpacket", 1);
}

/* The MAC the stack will have on iface, where it is known before the
 * netif opens: --mac, or the interface's own for the backends that use it
 * (afxdp, afpacket).  0, or -1 (tap and memwire make their own). */
static int stack_mac_of(const char *backend, const char *iface, uint8_t mac[6])
{
	const char *m = get("USNET_MAC");
	if (m)
		return parse_mac(m, mac);
	if (!iface || (strcmp(backend, "afxdp") && strcmp(backend, "afpacket")))
		return -1;
	char path[PATH_MAX], line[32] = "";
	snprintf(path, sizeof path, "/sys/class/net/%s/address", iface);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	int r = fgets(line, sizeof line, f) ? 0 : -1;
	fclose(f);
	line[strcspn(line, "\n")] = 0;
	return r ? r : parse_mac(line, mac);
}

/* --ip6 and --gw6: well formed, not in host-address mode, not an address
 * the kernel has here (another node's is for Duplicate Address Detection
 * to find), and not the kernel's link-local address on iface: the stack
 * takes fe80:: from its MAC, which is the interface's own with afxdp and
 * afpacket, as the kernel does by default (its probes never reach the
 * kernel of its own interface, so DAD cannot tell).  0, or the exit status
 * after an error line. */
static int validate_ip6(bool host_mode, const char *backend, const char *iface)
{
	const char *ip6 = get("USNET_IP6"), *gw6 = get("USNET_GW6");
	uint8_t addr[IP6_LIST_MAX][16], gw[16];
	char why[200];
	if (!ip6) {
		if (gw6)
			return fail("--gw6 %s needs an IPv6 address of the stack: --ip6 ADDR/PREFIX%s", gw6, "");
		return 0;
	}
	int n = ip6_list_parse(ip6, addr, NULL, why, sizeof why);
	if (n < 0)
		return fail("--ip6 %s%s", why, "");
	if (gw6 && ip6_unicast_parse(gw6, gw))
		return fail("--gw6 '%s' is not a unicast IPv6 address%s", gw6, "");
	if (host_mode)
		return 0;   /* the kernel's own addresses, shared on purpose (host_mode_resolve) */
	uint8_t mac[6], ll[16] = { 0xfe, 0x80 };
	bool ll_known = iface && stack_mac_of(backend, iface, mac) == 0;
	if (ll_known) {   /* modified EUI-64, as the stack makes it */
		ll[8] = mac[0] ^ 0x02; ll[9] = mac[1]; ll[10] = mac[2];
		ll[11] = 0xff; ll[12] = 0xfe;
		ll[13] = mac[3]; ll[14] = mac[4]; ll[15] = mac[5];
	}
	struct ifaddrs *ifs = NULL;
	if (getifaddrs(&ifs) != 0)
		return 0;
	for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET6)
			continue;
		const uint8_t *k = ((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr.s6_addr;
		if (ll_known && !strcmp(i->ifa_name, iface) && !memcmp(k, ll, 16)) {
			char a[INET6_ADDRSTRLEN];
			inet_ntop(AF_INET6, k, a, sizeof a);
			fprintf(stderr, "usnet run: --ip6: the kernel has %s on %s, the link-local address the stack "
				"takes from the same MAC; remove it (ip -6 addr del %s/64 dev %s) and keep the kernel "
				"from making it again (ip link set %s addrgenmode none), or give the stack another "
				"MAC (--mac)\n", a, iface, a, iface, iface);
			freeifaddrs(ifs);
			return 2;
		}
		for (int j = 0; j < n; j++) {
			if (memcmp(k, addr[j], 16))
				continue;
			char a[INET6_ADDRSTRLEN];
			inet_ntop(AF_INET6, k, a, sizeof a);
			fprintf(stderr, "usnet run: --ip6 %s: the kernel has this address on %s; give the stack an "
				"address of its own\n", a, i->ifa_name);
			freeifaddrs(ifs);
			return 2;
		}
	}
	freeifaddrs(ifs);
	return 0;
}

static int validate(void)
{
	const char *prov = get("USNET_PROVIDER");
	const char *hook = get("USNET_HOOK");
	const char *log = get("USNET_LOG");
	char why[200];
	if (hook && cli_hook_check(hook, why, sizeof why) < 0)
		return fail("%s%s", why, "");
	if (log && strcmp(log, "error") && strcmp(log, "info") && strcmp(log, "debug") &&
	    strcmp(log, "0") && strcmp(log, "1") && strcmp(log, "2"))
		return fail("--log must be error, info or debug (not '%s')%s", log, "");
	if (prov && strcmp(prov, "usnet") && strcmp(prov, "kernel")) {
		void *h = dlopen(prov, RTLD_NOW | RTLD_LOCAL);
		if (!h)
			return fail("cannot load provider %s: %s", prov, dlerror());
		usnet_provider_entry e = (usnet_provider_entry)dlsym(h, USNET_PROVIDER_SYMBOL);
		const struct usnet_provider *p = e ? e() : NULL;
		if (!p)
			return fail("%s does not export %s (see docs/provider.md)", prov, USNET_PROVIDER_SYMBOL);
		if (p->abi_version != USNET_PROVIDER_ABI_VERSION)
			return fail("provider %s speaks another ABI version than this usnet%s", prov, "");
		return 0;   /* another stack: its configuration is its own business */
	}
	if (prov && !strcmp(prov, "kernel"))
		return 0;
	/* The built-in stack. */
	default_interface();
	const char *ip = get("USNET_IP"), *gw = get("USNET_GW"), *mac = get("USNET_MAC");
	const char *backend = get("USNET_BACKEND"), *iface = get("USNET_IFACE");
	if (!backend)
		setenv("USNET_BACKEND", backend = "tap", 1);
	int hr = host_mode_resolve(backend, iface);
	if (hr)
		return hr;
	ip = get("USNET_IP");
	bool host_mode = get("USNET_HOST_ADDR") && !strcmp(get("USNET_HOST_ADDR"), "1");
	if (!ip)
		return fail("the stack needs an address: --ip ADDR/PREFIX (or USNET_IP), or --ip host to share the "
			    "kernel's on --iface with --backend afxdp or afpacket%s%s", "", "");
	if (check_cidr(ip, true))
		return fail("--ip '%s' is not ADDR/PREFIX (like 10.0.0.2/24)%s", ip, "");
	if (gw && check_cidr(gw, false))
		return fail("--gw '%s' is not an IPv4 address%s", gw, "");
	int r6 = validate_ip6(host_mode, backend, iface);
	if (r6)
		return r6;
	uint8_t m[6];
	if (mac && parse_mac(mac, m))
		return fail("--mac '%s' is not a MAC address (like 02:00:00:00:00:01)%s", mac, "");
	if (!iface)
		return fail("--iface is missing: name the %s interface to use%s", backend, "");
	const char *queues = get("USNET_QUEUES");
	if (queues && strcmp(queues, "all") && (strspn(queues, "0123456789") != strlen(queues) ||
						 atoi(queues) < 1 || atoi(queues) > 64))
		return fail("--queues '%s' is not all or a count of 1 to 64%s", queues, "");
	const char *batch = get("USNET_TX_BATCH");
	if (batch && strcmp(batch, "0") && strcmp(batch, "1"))
		return fail("--tx-batch '%s' is not 0 or 1%s", batch, "");
	{
		const char *list = usnet_netif_backends();
		const char *p = strstr(list, backend);
		size_t n = strlen(backend);
		if (!p || (p[n] && p[n] != ' ') || (p != list && p[-1] != ' '))
			return fail("unknown backend '%s' (this build has: %s)", backend, list);
	}
	warn_dpdk_takes_interface(backend, iface);
	/* The stack's address must not be one the kernel already has here
	 * (but for host-address mode, which shares it on purpose). */
	if (!host_mode) {
		char ipbuf[64];
		snprintf(ipbuf, sizeof ipbuf, "%.*s", (int)strcspn(ip, "/"), ip);
		struct in_addr want;
		struct ifaddrs *ifs = NULL;
		if (inet_pton(AF_INET, ipbuf, &want) == 1 && getifaddrs(&ifs) == 0) {
			for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
				if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
					continue;
				if (((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr == want.s_addr) {
					fprintf(stderr, "usnet run: address %s is in use by the kernel on %s; "
						"give the stack an address of its own\n", ipbuf, i->ifa_name);
					freeifaddrs(ifs);
					return 2;
				}
			}
			freeifaddrs(ifs);
		}
	}
	if (strcmp(backend, "memwire")) {
		char path[PATH_MAX];
		snprintf(path, sizeof path, "/sys/class/net/%s", iface);
		struct stat st;
		if (stat(path, &st) != 0)
			return fail("interface %s not found (for tap: ip tuntap add %s mode tap; then give its "
				    "kernel side an address)", iface, iface);
	}
	return 0;
}

/* The program opens the interface itself: open and close it once here, so
 * that the backend says what is wrong (privileges, a busy device) in its
 * own words before the program runs. */
static int probe_netif(void)
{
	const char *backend = get("USNET_BACKEND"), *iface = get("USNET_IFACE");
	if (!strcmp(backend, "memwire"))
		return 0;
	struct usnet_netif_config nc = { .backend = backend, .iface = iface };
	struct usnet_netif *nif;
	char err[256];
	int r = usnet_netif_open(&nc, &nif, err, sizeof err);
	if (r < 0)
		return fail("%s%s", err, "");
	usnet_netif_close(nif);
	return 0;
}

/* A copy of fd where the program does not reach it, as the switch keeps
 * its own fds (src/vsock/ownfds.c): above the soft fd limit the program
 * inherits when the hard limit leaves room, else near the top of its range. */
static int fd_out_of_reach(int fd)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return fcntl(fd, F_DUPFD, 600);
	if (rl.rlim_max == RLIM_INFINITY || rl.rlim_cur + 1024 <= rl.rlim_max) {
		struct rlimit up = { rl.rlim_cur + 1024, rl.rlim_max };
		if (setrlimit(RLIMIT_NOFILE, &up) == 0) {
			int hi = fcntl(fd, F_DUPFD, (int)rl.rlim_cur);
			setrlimit(RLIMIT_NOFILE, &rl);
			if (hi >= 0)
				return hi;
		}
	}
	rlim_t top = rl.rlim_cur < 65536 ? rl.rlim_cur : 65536;
	return fcntl(fd, F_DUPFD, top > 2048 ? (int)(top - 1024) : top / 2 > 3 ? (int)(top / 2) : 3);
}

/* The built-in stack: the program and every process it starts attach to
 * the stack of the interface through its owner (src/vsock/attach_proto.h),
 * which is started here when the interface has none.  The connection is
 * left to the program (USNET_ATTACH_FD) as its right to attach, whatever
 * privileges it drops.  Returns 0 (attached, or the backend cannot be
 * shared: the program then opens the interface itself, as it did before
 * owners), or the exit status after an error line. */
static int attach_to_owner(void)
{
	const char *prov = get("USNET_PROVIDER");
	if (prov && strcmp(prov, "usnet"))
		return 0;
	const char *iface = get("USNET_IFACE");
	char path[108];
	if (attach_owner_path(iface, path, sizeof path) < 0)
		return fail("interface name '%s' is too long%s", iface, "");
	for (int tries = 0;; tries++) {
		int conn = owner_connect(path);
		if (conn >= 0) {
			int r = owner_check(conn);
			if (r)
				return r;
			/* Out of the program's way, open across execve. */
			int hi = fd_out_of_reach(conn);
			if (hi >= 0) {
				close(conn);
				conn = hi;
			}
			char num[16];
			snprintf(num, sizeof num, "%d", conn);
			setenv("USNET_ATTACH_FD", num, 1);
			return 0;
		}
		if (tries == 3)
			return fail("cannot reach the owner of %s at %s", iface, path);
		char line[512];
		owner_start(line, sizeof line);
		if (!strncmp(line, "ok", 2) || strstr(line, "already has an owner"))
			continue;   /* ours, or one another `usnet run` started meanwhile */
		if (!strncmp(line, "unshared ", 9) && get("USNET_HOST_ADDR")) {
			return fail("--ip host needs the interface's owner (it reserves the stack's ports from the "
				    "kernel for as long as the stack lives): %s%s", line + 9, "");
		}
		if (!strncmp(line, "unshared ", 9)) {
			if (get("USNET_LOG") && strcmp(get("USNET_LOG"), "error"))
				fprintf(stderr, "usnet run: %s: the program and its forked children have the "
					"interface to themselves\n", line + 9);
			unsetenv("USNET_ATTACH_FD");
			return probe_netif();
		}
		return fail("%s%s", strncmp(line, "error ", 6) ? line : line + 6, "");
	}
}

int cli_run_main(int argc, char **argv)
{
	int i = 1;
	bool ip6_given = false;   /* the first --ip6 replaces USNET_IP6, the next ones add to it */
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(a, "--strict")) {
			setenv("USNET_STRICT", "1", 1);
			continue;
		}
		if (strncmp(a, "--", 2)) {
			break;   /* the program */
		}
		const char *name = a + 2, *val = strchr(name, '=');
		size_t nlen = val ? (size_t)(val - name) : strlen(name);
		size_t k;
		for (k = 0; k < NOPTS; k++)
			if (strlen(opts[k].name) == nlen && !strncmp(opts[k].name, name, nlen))
				break;
		if (k == NOPTS)
			return fail("unknown option %s (try usnet run --help)%s", a, "");
		if (val)
			val++;
		else if (i + 1 < argc)
			val = argv[++i];
		else
			return fail("option %s needs a value%s", a, "");
		if (!strcmp(opts[k].name, "ip6") && ip6_given) {
			/* Repeated: one more address. */
			const char *had = getenv("USNET_IP6");
			size_t len = strlen(had) + strlen(val) + 2;
			char *both = malloc(len);
			if (!both)
				return fail("out of memory%s%s", "", "");
			snprintf(both, len, "%s,%s", had, val);
			setenv("USNET_IP6", both, 1);
			free(both);
			continue;
		}
		if (!strcmp(opts[k].name, "ip6"))
			ip6_given = true;
		setenv(opts[k].env, val, 1);
	}
	if (i >= argc)
		return fail("no program to run: usnet run [OPTIONS] -- PROGRAM [ARGS...]%s%s", "", "");
	const char *strict = get("USNET_STRICT");
	if (strict && strcmp(strict, "0") && strcmp(strict, "1"))
		return fail("USNET_STRICT '%s' is not 0 or 1%s", strict, "");
	int r = validate();
	char **prog_argv;
	if (!r)
		r = program_route("run", argv + i, strict && !strcmp(strict, "1"), "USNET_HOOK", &prog_argv);
	if (!r)
		r = attach_to_owner();
	if (r)
		return r;

	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		return fail("cannot find my own binary: %s%s", strerror(errno), "");
	self[n] = 0;
	char *slash = strrchr(self, '/');
	*slash = 0;
	char lib[PATH_MAX + 16];
	snprintf(lib, sizeof lib, "%s/libusnet.so", self);
	if (access(lib, R_OK))
		return fail("%s is missing (build it with make)%s", lib, "");
	const char *old = getenv("LD_PRELOAD");
	if (old && *old) {
		size_t len = strlen(lib) + strlen(old) + 2;
		char *both = malloc(len);
		snprintf(both, len, "%s:%s", lib, old);
		setenv("LD_PRELOAD", both, 1);
	} else {
		setenv("LD_PRELOAD", lib, 1);
	}
	execvp(prog_argv[0], prog_argv);
	return fail("cannot run %s: %s", prog_argv[0], strerror(errno));
}
