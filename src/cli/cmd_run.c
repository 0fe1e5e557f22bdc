/*
 * usnet run — run an unmodified program with its sockets on a provider
 * (usnet's stack by default).  The front end validates the configuration,
 * turns it into USNET_* environment variables, preloads build/libusnet.so
 * (found next to this binary) and execs the program.  Every option can also
 * be given as its environment variable; an option overrides it.
 */
#include <dlfcn.h>
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
#include <netinet/in.h>

#include "cli.h"
#include "usnet/netif_open.h"
#include "usnet/provider.h"

struct run_opt {
	const char *name;   /* --name */
	const char *env;    /* USNET_NAME */
	const char *help;
};

static const struct run_opt opts[] = {
	{ "backend",  "USNET_BACKEND",  "packet I/O backend: tap, memwire, afpacket, afxdp (default tap)" },
	{ "iface",    "USNET_IFACE",    "interface (memwire: WIRE:SIDE)" },
	{ "ip",       "USNET_IP",       "the stack's address, ADDR/PREFIX" },
	{ "gw",       "USNET_GW",       "default gateway ADDR" },
	{ "mac",      "USNET_MAC",      "the stack's MAC (default: the backend's)" },
	{ "hook",     "USNET_HOOK",     "auto, rewrite or sud (default auto)" },
	{ "provider", "USNET_PROVIDER", "usnet (default), kernel, or PATH.so of another provider" },
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
		"AF_UNIX, loopback and addresses the stack does not own stay with the kernel.\n\noptions:\n");
	for (size_t i = 0; i < NOPTS; i++)
		fprintf(f, "  --%-9s %s [%s]\n", opts[i].name, opts[i].help, opts[i].env);
}

static int fail(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "usnet run: ");
	fprintf(stderr, fmt, a, b);
	fputc('\n', stderr);
	return 2;
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
static int validate(void)
{
	const char *prov = get("USNET_PROVIDER");
	const char *hook = get("USNET_HOOK");
	const char *log = get("USNET_LOG");
	if (hook && strcmp(hook, "auto") && strcmp(hook, "rewrite") && strcmp(hook, "sud"))
		return fail("--hook must be auto, rewrite or sud (not '%s')%s", hook, "");
	if (log && strcmp(log, "error") && strcmp(log, "info") && strcmp(log, "debug") &&
	    strcmp(log, "0") && strcmp(log, "1") && strcmp(log, "2"))
		return fail("--log must be error, info or debug (not '%s')%s", log, "");
	if (hook && !strcmp(hook, "rewrite") && geteuid() != 0) {
		FILE *f = fopen("/proc/sys/vm/mmap_min_addr", "r");
		long min = 0;
		if (f) {
			if (fscanf(f, "%ld", &min) != 1)
				min = 0;
			fclose(f);
		}
		if (min > 0)
			return fail("--hook rewrite needs page 0, but vm.mmap_min_addr is %s; run as root, "
				    "set it to 0, or use --hook auto/sud%s", min == 65536 ? "65536" : "not 0", "");
	}
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
	const char *ip = get("USNET_IP"), *gw = get("USNET_GW"), *mac = get("USNET_MAC");
	const char *backend = get("USNET_BACKEND"), *iface = get("USNET_IFACE");
	if (!backend)
		setenv("USNET_BACKEND", backend = "tap", 1);
	if (!ip)
		return fail("the stack needs an address: --ip ADDR/PREFIX (or USNET_IP)%s%s", "", "");
	if (check_cidr(ip, true))
		return fail("--ip '%s' is not ADDR/PREFIX (like 10.0.0.2/24)%s", ip, "");
	if (gw && check_cidr(gw, false))
		return fail("--gw '%s' is not an IPv4 address%s", gw, "");
	uint8_t m[6];
	if (mac && parse_mac(mac, m))
		return fail("--mac '%s' is not a MAC address (like 02:00:00:00:00:01)%s", mac, "");
	if (!iface)
		return fail("--iface is missing: name the %s interface to use%s", backend, "");
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
	/* The stack's address must not be one the kernel already has here. */
	{
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
		{
			/* Open and close it once: the backend says what is wrong
			 * (privileges, busy device) in its own words. */
			struct usnet_netif_config nc = { .backend = backend, .iface = iface };
			struct usnet_netif *nif;
			char err[256];
			int r = usnet_netif_open(&nc, &nif, err, sizeof err);
			if (r < 0)
				return fail("%s%s", err, "");
			usnet_netif_close(nif);
		}
	}
	return 0;
}

int cli_run_main(int argc, char **argv)
{
	int i = 1;
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
		setenv(opts[k].env, val, 1);
	}
	if (i >= argc)
		return fail("no program to run: usnet run [OPTIONS] -- PROGRAM [ARGS...]%s%s", "", "");
	int r = validate();
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
	execvp(argv[i], argv + i);
	return fail("cannot run %s: %s", argv[i], strerror(errno));
}
