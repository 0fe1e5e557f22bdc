/*
 * Small helpers every backend uses: error lines, option strings, checksum
 * filling for offloaded frames, random MAC addresses.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "netif_internal.h"

int netif_err(char *err, size_t errlen, int errnum, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -errnum;
}

void netif_set_name(char dst[USNET_NETIF_NAME_MAX], const char *src)
{
	snprintf(dst, USNET_NETIF_NAME_MAX, "%s", src ? src : "");
}

/* Walk "k=v,k2,k3=v3": calls fn for each item with key and value spans. */
static int opt_walk(const char *options,
		    int (*fn)(const char *k, size_t klen, const char *v, size_t vlen, void *arg),
		    void *arg)
{
	const char *p = options;
	if (!p)
		return 0;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (n) {
			const char *eq = memchr(p, '=', n);
			size_t klen = eq ? (size_t)(eq - p) : n;
			const char *v = eq ? eq + 1 : p + n;
			size_t vlen = eq ? n - klen - 1 : 0;
			int r = fn(p, klen, v, vlen, arg);
			if (r)
				return r;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

struct opt_check_arg {
	const char *const *known;
	const char *bad;
	size_t badlen;
};

static int opt_check_one(const char *k, size_t klen, const char *v, size_t vlen, void *arg)
{
	struct opt_check_arg *a = arg;
	(void)v; (void)vlen;
	for (const char *const *kn = a->known; *kn; kn++)
		if (strlen(*kn) == klen && !memcmp(*kn, k, klen))
			return 0;
	a->bad = k;
	a->badlen = klen;
	return 1;
}

int netif_opt_check(const char *options, const char *const known[], const char *backend,
		    char *err, size_t errlen)
{
	struct opt_check_arg a = { known, NULL, 0 };
	if (!opt_walk(options, opt_check_one, &a))
		return 0;
	char list[256] = "";
	for (const char *const *kn = known; *kn; kn++) {
		strncat(list, *kn, sizeof list - strlen(list) - 1);
		if (kn[1])
			strncat(list, " ", sizeof list - strlen(list) - 1);
	}
	return netif_err(err, errlen, EINVAL, "%s: unknown option '%.*s' (known: %s)",
			 backend, (int)a.badlen, a.bad, list[0] ? list : "none");
}

struct opt_get_arg {
	const char *key;
	char *val;
	size_t vallen;
	int found;
};

static int opt_get_one(const char *k, size_t klen, const char *v, size_t vlen, void *arg)
{
	struct opt_get_arg *a = arg;
	if (strlen(a->key) != klen || memcmp(a->key, k, klen))
		return 0;
	if (a->vallen) {
		size_t n = vlen < a->vallen - 1 ? vlen : a->vallen - 1;
		memcpy(a->val, v, n);
		a->val[n] = 0;
	}
	a->found = 1;
	return 0; /* the last occurrence wins */
}

int netif_opt_get(const char *options, const char *key, char *val, size_t vallen)
{
	struct opt_get_arg a = { key, val, vallen, 0 };
	if (val && vallen)
		val[0] = 0;
	opt_walk(options, opt_get_one, &a);
	return a.found;
}

int netif_opt_uint(const char *options, const char *key, uint64_t min, uint64_t max,
		   uint64_t *out, char *err, size_t errlen)
{
	char v[64];
	if (!netif_opt_get(options, key, v, sizeof v))
		return 0;
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	if (!v[0] || *end || errno || v[0] == '-' || x < min || x > max)
		return netif_err(err, errlen, EINVAL, "option %s=%s: want a whole number from %llu to %llu",
				 key, v, (unsigned long long)min, (unsigned long long)max);
	*out = x;
	return 0;
}

int netif_csum_compute(const uint8_t *frame, uint32_t len, uint16_t csum_start,
		       uint16_t csum_offset, uint8_t out[2])
{
	uint32_t field = (uint32_t)csum_start + csum_offset;
	if (csum_start >= len || field + 2 > len)
		return -EINVAL;
	uint64_t sum = 0;
	const uint8_t *p = frame + csum_start;
	uint32_t n = len - csum_start;
	while (n >= 2) {
		sum += (uint32_t)p[0] << 8 | p[1];
		p += 2;
		n -= 2;
	}
	if (n)
		sum += (uint32_t)p[0] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	uint16_t c = (uint16_t)~sum;
	if (c == 0)
		c = 0xffff; /* UDP reserves 0 for "no checksum"; TCP accepts either */
	out[0] = (uint8_t)(c >> 8);
	out[1] = (uint8_t)c;
	return 0;
}

int netif_csum_fill(uint8_t *frame, uint32_t len, uint16_t csum_start, uint16_t csum_offset)
{
	uint8_t c[2];
	int r = netif_csum_compute(frame, len, csum_start, csum_offset, c);
	if (r)
		return r;
	/* The field holds the pseudo-header sum and is part of the summed span,
	 * exactly as CHECKSUM_PARTIAL leaves it. */
	memcpy(frame + csum_start + csum_offset, c, 2);
	return 0;
}

void netif_random_mac(uint8_t mac[6])
{
	if (getrandom(mac, 6, GRND_NONBLOCK) != 6) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t x = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid() << 20;
		memcpy(mac, &x, 6);
	}
	mac[0] = (uint8_t)((mac[0] & 0xfe) | 0x02); /* unicast, locally administered */
}

/* The mapping's length sits in front of what the caller gets. */
#define SHM_HDR 64

void *netif_shm_calloc(size_t size)
{
	size_t len = size + SHM_HDR;
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	memcpy(p, &len, sizeof len);
	return p + SHM_HDR;
}

void netif_shm_free(void *ptr)
{
	if (!ptr)
		return;
	uint8_t *p = (uint8_t *)ptr - SHM_HDR;
	size_t len;
	memcpy(&len, p, sizeof len);
	munmap(p, len);
}

int netif_shm_region_create(struct netif_shm_region *r, const char *name, size_t size, char *err, size_t errlen)
{
	*r = (struct netif_shm_region){ .fd = -1 };
	size = (size + 4095) & ~(size_t)4095;
	int fd = memfd_create(name, MFD_CLOEXEC);
	if (fd < 0)
		return netif_err(err, errlen, errno, "%s: cannot create its shared memory: %s", name, strerror(errno));
	if (ftruncate(fd, (off_t)size) != 0) {
		int e = errno;
		close(fd);
		return netif_err(err, errlen, e, "%s: cannot size its shared memory (%zu MiB): %s", name, size >> 20,
				 strerror(e));
	}
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (p == MAP_FAILED) {
		int e = errno;
		close(fd);
		return netif_err(err, errlen, e, "%s: cannot map its shared memory: %s", name, strerror(e));
	}
	*r = (struct netif_shm_region){ .fd = fd, .base = p, .size = size, .used = 64 };
	return 0;
}

int netif_shm_region_map(struct netif_shm_region *r, int fd, char *err, size_t errlen)
{
	*r = (struct netif_shm_region){ .fd = -1 };
	struct stat st;
	if (fstat(fd, &st) != 0 || st.st_size <= 0) {
		int e = errno ? errno : EINVAL;
		close(fd);
		return netif_err(err, errlen, e, "the shared memory of a netif received is not one");
	}
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (p == MAP_FAILED) {
		int e = errno;
		close(fd);
		return netif_err(err, errlen, e, "cannot map the shared memory of a netif: %s", strerror(e));
	}
	*r = (struct netif_shm_region){ .fd = fd, .base = p, .size = (size_t)st.st_size, .used = (size_t)st.st_size };
	return 0;
}

void netif_share_close_fds(const struct usnet_netif_share *sh)
{
	for (uint32_t i = 0; i < sh->nfds && i < USNET_NETIF_SHARE_FDS; i++)
		close(sh->fds[i]);
}

size_t netif_shm_region_alloc(struct netif_shm_region *r, size_t size)
{
	size_t off = (r->used + 63) & ~(size_t)63;
	if (off > r->size || size > r->size - off)
		return NETIF_SHM_NONE;
	r->used = off + size;
	/* Already zero: a fresh memfd reads as zeros and the bump allocator
	 * never hands out a byte twice, so no memset (which would make every
	 * page resident, against the region's sparseness). */
	return off;
}

void netif_shm_region_release(struct netif_shm_region *r)
{
	if (r->base)
		munmap(r->base, r->size);
	if (r->fd >= 0)
		close(r->fd);
	*r = (struct netif_shm_region){ .fd = -1 };
}

uint32_t netif_toeplitz(const uint8_t *key, size_t keylen, const uint8_t *in, size_t len)
{
	if (keylen < len + 4)
		return 0;
	/* A 32-bit window slides over the key one bit per input bit; every
	 * set input bit XORs the window into the result. */
	uint32_t window = (uint32_t)key[0] << 24 | (uint32_t)key[1] << 16 | (uint32_t)key[2] << 8 | key[3];
	uint32_t hash = 0;
	for (size_t i = 0; i < len; i++) {
		uint8_t next = key[i + 4];
		for (int b = 7; b >= 0; b--) {
			if (in[i] & (1u << b))
				hash ^= window;
			window = window << 1 | ((next >> b) & 1u);
		}
	}
	return hash;
}

int netif_iface_lookup(const char *backend, const char *ifname, int *ifindex,
		       uint32_t *mtu, uint8_t mac[6], char *err, size_t errlen)
{
	if (strlen(ifname) >= IFNAMSIZ)
		return netif_err(err, errlen, ENAMETOOLONG, "%s: interface name '%s' is too long", backend, ifname);
	*ifindex = (int)if_nametoindex(ifname);
	if (!*ifindex)
		return netif_err(err, errlen, ENODEV, "%s: interface %s not found (check `ip link`)", backend, ifname);
	*mtu = 1500;
	memset(mac, 0, 6);
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s >= 0) {
		struct ifreq ifr;
		memset(&ifr, 0, sizeof ifr);
		snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
		if (ioctl(s, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu > 0)
			*mtu = (uint32_t)ifr.ifr_mtu;
		memset(&ifr, 0, sizeof ifr);
		snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
		if (ioctl(s, SIOCGIFHWADDR, &ifr) == 0)
			memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
		close(s);
	}
	return 0;
}

uint16_t netif_iface_rx_queues(const char *ifname)
{
	if (strlen(ifname) >= IFNAMSIZ)
		return 1;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return 1;
	struct ethtool_channels ch = { .cmd = ETHTOOL_GCHANNELS };
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
	ifr.ifr_data = (void *)&ch;
	uint32_t have = 0;
	if (ioctl(s, SIOCETHTOOL, &ifr) == 0)
		have = ch.combined_count > ch.rx_count ? ch.combined_count : ch.rx_count;
	close(s);
	return have == 0 ? 1 : have > 0xfffe ? 0xfffe : (uint16_t)have;
}

/* ---- the port bitmap of host-address mode (netif_internal.h) ------------ */

int netif_ports_set(uint64_t *ports, uint8_t proto, uint16_t port, int on)
{
	if (!ports)
		return -EOPNOTSUPP;
	if (proto != 6 && proto != 17)
		return -EINVAL;
	/* The programs read the words as they change: one atomic bit at a time. */
	uint64_t *w = &ports[(proto == 17 ? NETIF_PORT_WORDS : 0) + (port >> 6)];
	uint64_t bit = 1ull << (port & 63);
	if (on)
		__atomic_fetch_or(w, bit, __ATOMIC_RELEASE);
	else
		__atomic_fetch_and(w, ~bit, __ATOMIC_RELEASE);
	return 0;
}

int netif_ports_get(const uint64_t *ports, uint8_t proto, uint16_t port)
{
	if (!ports)
		return -EOPNOTSUPP;
	if (proto != 6 && proto != 17)
		return -EINVAL;
	const uint64_t *w = &ports[(proto == 17 ? NETIF_PORT_WORDS : 0) + (port >> 6)];
	return (int)((__atomic_load_n(w, __ATOMIC_ACQUIRE) >> (port & 63)) & 1);
}

/* ---- usnet's IPv6 addresses (netif_internal.h) --------------------------- */

unsigned netif_ipv6_addrs(const struct usnet_netif_config *cfg, const uint8_t mac[6],
			  uint8_t out[USNET_NETIF_IPV6_MAX + 1][16])
{
	unsigned n = 0;
	if (cfg->ipv6_link_local) {
		/* fe80::/64, the interface identifier the MAC with the
		 * universal/local bit flipped and ff:fe in its middle. */
		static const uint8_t prefix[8] = { 0xfe, 0x80 };
		memcpy(out[n], prefix, 8);
		out[n][8] = mac[0] ^ 0x02;
		out[n][9] = mac[1];
		out[n][10] = mac[2];
		out[n][11] = 0xff;
		out[n][12] = 0xfe;
		memcpy(&out[n][13], &mac[3], 3);
		n++;
	}
	for (unsigned i = 0; i < cfg->ipv6_count && i < USNET_NETIF_IPV6_MAX; i++)
		memcpy(out[n++], cfg->ipv6[i], 16);
	return n;
}
