/*
 * usnet_netif_open(): pick a backend by name, then stack the impair and pcap
 * wrappers on it when asked (see include/usnet/netif_open.h).
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "netif_internal.h"
#include "usnet/netif_wrap.h"

#ifdef USNET_NETIF_HAVE_DPDK
/* DPDK lives in a plugin, libusnet-netif-dpdk.so, so that only users of the
 * dpdk backend load DPDK.  Looked for where USNET_NETIF_DPDK_PLUGIN says, else
 * next to the program or library holding this code, else in its parent
 * directory (programs in build/<area>/), else on the library path. */
static int netif_dpdk_open(const struct usnet_netif_config *cfg, struct usnet_netif **out,
			   char *err, size_t errlen)
{
	static const char name[] = "libusnet-netif-dpdk.so";
	char path[4096] = "";
	void *h = NULL;
	const char *env = getenv("USNET_NETIF_DPDK_PLUGIN");
	if (env && env[0]) {
		snprintf(path, sizeof path, "%s", env);
		h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	} else {
		Dl_info info;
		const char *self = dladdr((void *)netif_dpdk_open, &info) && info.dli_fname ? info.dli_fname : "";
		const char *slash = strrchr(self, '/');
		int dirlen = slash ? (int)(slash - self) : 0;
		if (slash) {
			snprintf(path, sizeof path, "%.*s/%s", dirlen, self, name);
			h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
			if (!h) {
				snprintf(path, sizeof path, "%.*s/../%s", dirlen, self, name);
				h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
			}
		}
		if (!h) {
			snprintf(path, sizeof path, "%s", name);
			h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		}
	}
	if (!h)
		return netif_err(err, errlen, ENOENT, "dpdk: cannot load the DPDK plugin (set USNET_NETIF_DPDK_PLUGIN): %s",
				 dlerror());
	int (*open_fn)(const struct usnet_netif_config *, struct usnet_netif **, char *, size_t);
	*(void **)&open_fn = dlsym(h, "usnet_netif_dpdk_open");
	if (!open_fn)
		return netif_err(err, errlen, ENOENT, "dpdk: %s is not the DPDK plugin", path);
	/* The plugin stays loaded: the EAL cannot start twice in a process. */
	return open_fn(cfg, out, err, errlen);
}
#endif

struct netif_backend {
	const char *name;
	int (*open)(const struct usnet_netif_config *cfg, struct usnet_netif **out,
		    char *err, size_t errlen);
};

static const struct netif_backend backends[] = {
	{ "memwire", netif_memwire_open },
	{ "tap", netif_tap_open },
#ifdef USNET_NETIF_HAVE_AFPACKET
	{ "afpacket", netif_afpacket_open },
#endif
#ifdef USNET_NETIF_HAVE_AFXDP
	{ "afxdp", netif_afxdp_open },
#endif
#ifdef USNET_NETIF_HAVE_DPDK
	{ "dpdk", netif_dpdk_open },
#endif
};

#define NBACKENDS (sizeof backends / sizeof backends[0])

const char *usnet_netif_backends(void)
{
	static const char names[] = "memwire tap"
#ifdef USNET_NETIF_HAVE_AFPACKET
		" afpacket"
#endif
#ifdef USNET_NETIF_HAVE_AFXDP
		" afxdp"
#endif
#ifdef USNET_NETIF_HAVE_DPDK
		" dpdk"
#endif
		;
	return names;
}

int usnet_netif_open(const struct usnet_netif_config *cfg, struct usnet_netif **out,
		     char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = 0;
	if (!cfg || !out)
		return netif_err(err, errlen, EINVAL, "netif: no configuration given");
	*out = NULL;
	if (!cfg->backend || !cfg->backend[0])
		return netif_err(err, errlen, EINVAL, "netif: no backend given (compiled in: %s)",
				 usnet_netif_backends());
	const struct netif_backend *be = NULL;
	for (size_t i = 0; i < NBACKENDS; i++)
		if (!strcmp(backends[i].name, cfg->backend))
			be = &backends[i];
	if (!be)
		return netif_err(err, errlen, ENOENT, "netif: unknown backend '%s' (compiled in: %s)",
				 cfg->backend, usnet_netif_backends());
	if (!cfg->iface || !cfg->iface[0])
		return netif_err(err, errlen, EINVAL, "%s: no interface given (--iface)", cfg->backend);
	struct usnet_netif_config resolved = *cfg;
	if (cfg->queues == USNET_NETIF_QUEUES_ALL) {
		/* Backends whose queues are the interface's RSS queues (afxdp's
		 * sockets bind to them; afpacket's fanout mirrors them) take
		 * them all; the others have one. */
		bool per_nic_queue = !strcmp(be->name, "afpacket") || !strcmp(be->name, "afxdp");
		resolved.queues = per_nic_queue ? netif_iface_rx_queues(cfg->iface) : 1;
	}
	cfg = &resolved;
	struct usnet_netif *nif = NULL;
	int r = be->open(cfg, &nif, err, errlen);
	if (r)
		return r;
	if (cfg->impair && cfg->impair[0]) {
		struct usnet_netif *w;
		if ((r = usnet_impair_wrap(nif, cfg->impair, &w, err, errlen))) {
			nif->ops->close(nif);
			return r;
		}
		nif = w;
	}
	if (cfg->pcap && cfg->pcap[0]) {
		struct usnet_netif *w;
		if ((r = usnet_pcap_wrap(nif, cfg->pcap, &w, err, errlen))) {
			nif->ops->close(nif);
			return r;
		}
		nif = w;
	}
	*out = nif;
	return 0;
}

void usnet_netif_close(struct usnet_netif *nif)
{
	if (nif)
		nif->ops->close(nif);
}

/* The backend under nif's wrappers (impair, pcap), or nif itself. */
static struct usnet_netif *backend_below_wrappers(struct usnet_netif *nif)
{
	for (struct usnet_netif *lower; nif; nif = lower) {
		lower = netif_impair_lower(nif);
		if (!lower)
			lower = netif_pcap_lower(nif);
		if (!lower)
			break;
	}
	return nif;
}

int usnet_netif_flow_queue(struct usnet_netif *nif, uint8_t proto, uint32_t src_ip, uint16_t src_port,
			   uint32_t dst_ip, uint16_t dst_port)
{
	nif = backend_below_wrappers(nif);
	if (!nif)
		return -1;
	if (nif->info.nqueues <= 1)
		return 0;
#ifdef USNET_NETIF_HAVE_AFPACKET
	if (!strcmp(nif->info.backend, "afpacket"))
		return netif_afpacket_flow_queue(nif, proto, src_ip, src_port, dst_ip, dst_port);
#endif
#ifdef USNET_NETIF_HAVE_AFXDP
	if (!strcmp(nif->info.backend, "afxdp"))
		return netif_afxdp_flow_queue(nif, proto, src_ip, src_port, dst_ip, dst_port);
#endif
	return -1;
}

int usnet_netif_steer_port(struct usnet_netif *nif, uint8_t proto, uint16_t port, int on)
{
	nif = backend_below_wrappers(nif);
	(void)proto;
	(void)port;
	(void)on;
#ifdef USNET_NETIF_HAVE_AFXDP
	if (nif && !strcmp(nif->info.backend, "afxdp"))
		return netif_afxdp_steer_port(nif, proto, port, on);
#endif
	if (nif && !strcmp(nif->info.backend, "afpacket"))
		return netif_afpacket_steer_port(nif, proto, port, on);
	return -EOPNOTSUPP;
}

int usnet_netif_steer_group(struct usnet_netif *nif, uint32_t group, int on)
{
	nif = backend_below_wrappers(nif);
	if (!nif)
		return -EINVAL;
#ifdef USNET_NETIF_HAVE_AFXDP
	if (!strcmp(nif->info.backend, "afxdp"))
		return netif_afxdp_steer_group(nif, group, on);
#endif
	if (!strcmp(nif->info.backend, "afpacket"))
		return netif_afpacket_steer_group(nif, group, on);
	/* memwire and tap have no filter between the wire and the stack */
	if (!strcmp(nif->info.backend, "memwire") || !strcmp(nif->info.backend, "tap"))
		return 0;
	return -EOPNOTSUPP;
}

int usnet_netif_steer_group6(struct usnet_netif *nif, const uint8_t group[16], int on)
{
	nif = backend_below_wrappers(nif);
	if (!nif)
		return -EINVAL;
#ifdef USNET_NETIF_HAVE_AFXDP
	if (!strcmp(nif->info.backend, "afxdp"))
		return netif_afxdp_steer_group6(nif, group, on);
#endif
	if (!strcmp(nif->info.backend, "afpacket"))
		return netif_afpacket_steer_group6(nif, group, on);
	if (!strcmp(nif->info.backend, "memwire") || !strcmp(nif->info.backend, "tap"))
		return 0;
	return -EOPNOTSUPP;
}

int usnet_netif_port_steered(struct usnet_netif *nif, uint8_t proto, uint16_t port)
{
	nif = backend_below_wrappers(nif);
	(void)proto;
	(void)port;
#ifdef USNET_NETIF_HAVE_AFXDP
	if (nif && !strcmp(nif->info.backend, "afxdp"))
		return netif_afxdp_port_steered(nif, proto, port);
#endif
	if (nif && !strcmp(nif->info.backend, "afpacket"))
		return netif_afpacket_port_steered(nif, proto, port);
	return -EOPNOTSUPP;
}

/* ---- sharing a netif with other processes (usnet/netif_share.h) -------- */

struct netif_sharing {
	const char *name;
	int (*share)(struct usnet_netif *nif, struct usnet_netif_share *out, char *err, size_t errlen);
	int (*attach)(const struct usnet_netif_share *sh, struct usnet_netif **out, char *err, size_t errlen);
};

/* A backend's functions are NULL (weak, netif_internal.h) until it can be
 * shared. */
static struct netif_sharing sharing_of(const char *backend)
{
	if (!strcmp(backend, "tap"))
		return (struct netif_sharing){ backend, netif_tap_share, netif_tap_attach };
	if (!strcmp(backend, "memwire"))
		return (struct netif_sharing){ backend, netif_memwire_share, netif_memwire_attach };
	if (!strcmp(backend, "afpacket"))
		return (struct netif_sharing){ backend, netif_afpacket_share, netif_afpacket_attach };
	if (!strcmp(backend, "afxdp"))
		return (struct netif_sharing){ backend, netif_afxdp_share, netif_afxdp_attach };
	return (struct netif_sharing){ backend, NULL, NULL };
}

int usnet_netif_share(struct usnet_netif *nif, struct usnet_netif_share *out, char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = 0;
	nif = backend_below_wrappers(nif);
	if (!nif || !out)
		return netif_err(err, errlen, EINVAL, "netif: nothing to share");
	memset(out, 0, sizeof *out);
	struct netif_sharing s = sharing_of(nif->info.backend);
	if (!s.share || !s.attach)
		return netif_err(err, errlen, EOPNOTSUPP, "%s: this backend cannot be shared between processes "
				 "that did not fork from each other", nif->info.backend);
	netif_set_name(out->backend, nif->info.backend);
	return s.share(nif, out, err, errlen);
}

int usnet_netif_attach(const struct usnet_netif_share *sh, struct usnet_netif **out, char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = 0;
	struct netif_sharing s = sharing_of(sh->backend);
	if (!s.attach) {
		netif_share_close_fds(sh);
		return netif_err(err, errlen, EOPNOTSUPP, "%.32s: this backend cannot be shared between processes "
				 "that did not fork from each other", sh->backend);
	}
	return s.attach(sh, out, err, errlen);
}
