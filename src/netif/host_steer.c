/*
 * Host-address mode for afpacket: the stack shares the kernel's IPv4
 * address (and its global IPv6 ones, which afpacket passes from cfg.ipv6),
 * so both must be told which flows are whose.  The embedded BPF object (the one afxdp
 * uses, src/netif/xdp/usnet_steer.bpf.c) has, besides the XDP program, a
 * socket filter that keeps only the stack's flows on each packet socket,
 * and a tc ingress program that hides them from the kernel's IP layer
 * (which would reset them).  Both read the shared addresses (usnet_addr,
 * usnet_addr6), written here at open, and the port bitmap that every
 * process using the netif maps (netif_ports_*), as afxdp's program does.
 * Built only with libbpf (with afxdp).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "netif_internal.h"

extern const unsigned char usnet_xdp_obj[] __attribute__((visibility("hidden")));
extern const unsigned char usnet_xdp_obj_end[] __attribute__((visibility("hidden")));

#define HS_MODE_KEY 2 /* usnet_addr[2]: 1 in host-address mode */
/* Where on the interface's tc ingress the program sits: a fixed slot, so
 * that one left by a killed owner is found and replaced. */
#define HS_TC_HANDLE 0x75u
#define HS_TC_PRIORITY 0x7573u

int netif_ports_map(struct netif_host_steer *hs, int fd, char *err, size_t errlen)
{
	hs->ports_fd = fd;
	void *m = mmap(NULL, NETIF_PORTS_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return netif_err(err, errlen, errno, "cannot map the port bitmap of the steering programs: %s",
				 strerror(errno));
	hs->ports = m;
	return 0;
}

static int quiet_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	(void)fmt;
	(void)ap;
	return 0;
}

/* Whether the filter at our tc slot runs a program of ours (by name). */
static bool tc_slot_is_ours(const struct bpf_tc_hook *hook)
{
	LIBBPF_OPTS(bpf_tc_opts, q, .handle = HS_TC_HANDLE, .priority = HS_TC_PRIORITY);
	if (bpf_tc_query(hook, &q) || !q.prog_id)
		return false;
	int fd = bpf_prog_get_fd_by_id(q.prog_id);
	if (fd < 0)
		return false;
	struct bpf_prog_info info;
	uint32_t len = sizeof info;
	memset(&info, 0, sizeof info);
	bool ours = bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && !strcmp(info.name, "usnet_tc_hide");
	close(fd);
	return ours;
}

int netif_host_steer_open(struct netif_host_steer *hs, const char *ifname, int ifindex, uint32_t ip_be,
			  uint8_t (*ip6)[16], unsigned nip6, char *err, size_t errlen)
{
	*hs = (struct netif_host_steer){ .ports_fd = -1, .ifindex = ifindex };
	libbpf_set_print(quiet_libbpf);
	LIBBPF_OPTS(bpf_object_open_opts, oo, .object_name = "usnet_steer");
	hs->obj = bpf_object__open_mem(usnet_xdp_obj, (size_t)(usnet_xdp_obj_end - usnet_xdp_obj), &oo);
	if (!hs->obj)
		return netif_err(err, errlen, EINVAL, "host-address mode: the embedded BPF programs do not load: %s",
				 strerror(errno));
	/* Only the two programs of this mode: the XDP one is afxdp's. */
	struct bpf_program *xdp = bpf_object__find_program_by_name(hs->obj, "usnet_steer");
	if (xdp)
		bpf_program__set_autoload(xdp, false);
	int r = bpf_object__load(hs->obj);
	if (r)
		return netif_err(err, errlen, -r, "host-address mode: the kernel refused the BPF programs: %s%s",
				 strerror(-r), r == -EPERM ? " (needs CAP_BPF and CAP_NET_ADMIN)" : "");
	struct bpf_program *tc = bpf_object__find_program_by_name(hs->obj, "usnet_tc_hide");
	struct bpf_program *keep = bpf_object__find_program_by_name(hs->obj, "usnet_sock_keep");
	int addr = bpf_object__find_map_fd_by_name(hs->obj, "usnet_addr");
	int ports = bpf_object__find_map_fd_by_name(hs->obj, "usnet_ports");
	int addr6 = bpf_object__find_map_fd_by_name(hs->obj, "usnet_addr6");
	if (!tc || !keep || addr < 0 || ports < 0 || addr6 < 0)
		return netif_err(err, errlen, EINVAL, "host-address mode: the embedded BPF object lacks its programs");
	hs->keep_fd = bpf_program__fd(keep);
	uint32_t key = 0, mode_key = HS_MODE_KEY, one = 1;
	if (bpf_map_update_elem(addr, &key, &ip_be, 0) || bpf_map_update_elem(addr, &mode_key, &one, 0))
		return netif_err(err, errlen, errno, "host-address mode: cannot set the address in the BPF map: %s",
				 strerror(errno));
	for (unsigned i = 0; i < nip6; i++) {
		uint8_t present = 1;
		if (bpf_map_update_elem(addr6, ip6[i], &present, 0)) {
			char a[INET6_ADDRSTRLEN];
			inet_ntop(AF_INET6, ip6[i], a, sizeof a);
			return netif_err(err, errlen, errno,
					 "host-address mode: cannot set the IPv6 address %s in the BPF map: %s", a,
					 strerror(errno));
		}
	}
	int own = fcntl(ports, F_DUPFD_CLOEXEC, 0);
	if (own < 0)
		return netif_err(err, errlen, errno, "host-address mode: dup: %s", strerror(errno));
	if ((r = netif_ports_map(hs, own, err, errlen)))
		return r;
	/* tc ingress: after the packet sockets took their copies. */
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	r = bpf_tc_hook_create(&hook);
	if (r && r != -EEXIST)
		return netif_err(err, errlen, -r, "host-address mode: cannot add a clsact qdisc to %s: %s", ifname,
				 strerror(-r));
	hs->hook_created = r == 0;
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = HS_TC_HANDLE, .priority = HS_TC_PRIORITY,
		    .prog_fd = bpf_program__fd(tc));
	r = bpf_tc_attach(&hook, &opts);
	if (r == -EEXIST && tc_slot_is_ours(&hook)) {
		/* Left by an owner that was killed (the interface has one owner
		 * at a time, so it is no live stack's): take its place. */
		opts.flags = BPF_TC_F_REPLACE;
		opts.prog_id = 0;
		r = bpf_tc_attach(&hook, &opts);
	}
	if (r == -EEXIST)
		return netif_err(err, errlen, EEXIST, "host-address mode: %s's tc ingress already has a filter at "
				 "priority %u handle %u: remove it (`tc filter del dev %s ingress`)", ifname,
				 HS_TC_PRIORITY, HS_TC_HANDLE, ifname);
	if (r)
		return netif_err(err, errlen, -r, "host-address mode: cannot attach the tc program to %s: %s", ifname,
				 strerror(-r));
	hs->tc_handle = opts.handle;
	hs->tc_priority = opts.priority;
	hs->attached = true;
	return 0;
}

int netif_host_steer_filter(struct netif_host_steer *hs, int sock, char *err, size_t errlen)
{
	if (setsockopt(sock, SOL_SOCKET, SO_ATTACH_BPF, &hs->keep_fd, sizeof hs->keep_fd) < 0)
		return netif_err(err, errlen, errno, "host-address mode: cannot filter a packet socket: %s",
				 strerror(errno));
	return 0;
}

void netif_host_steer_close(struct netif_host_steer *hs, bool owner)
{
	if (owner && hs->attached) {
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = hs->ifindex, .attach_point = BPF_TC_INGRESS);
		LIBBPF_OPTS(bpf_tc_opts, opts, .handle = hs->tc_handle, .priority = hs->tc_priority);
		bpf_tc_detach(&hook, &opts);
		if (hs->hook_created) {
			/* Both attach points: libbpf then deletes the clsact
			 * qdisc we added, not just the ingress filters. */
			hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
			bpf_tc_hook_destroy(&hook);
		}
	}
	hs->attached = false;
	if (hs->ports)
		munmap(hs->ports, NETIF_PORTS_BYTES);
	if (hs->ports_fd >= 0)
		close(hs->ports_fd);
	if (hs->obj)
		bpf_object__close(hs->obj);
	*hs = (struct netif_host_steer){ .ports_fd = -1 };
}
