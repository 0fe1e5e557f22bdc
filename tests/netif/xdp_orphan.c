/*
 * xdp_orphan OBJ IFACE: attach the afxdp backend's XDP program (OBJ, the
 * compiled src/netif/xdp/usnet_steer.bpf.c) to IFACE through netlink, owned by
 * a process that has already exited, and leave it there — what a usnet
 * process killed before its program could be detached leaves behind.  The
 * afxdp backend must recognise and replace it.
 */
#include <errno.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: xdp_orphan OBJ IFACE\n");
		return 2;
	}
	int ifindex = (int)if_nametoindex(argv[2]);
	if (!ifindex) {
		fprintf(stderr, "xdp_orphan: no interface %s\n", argv[2]);
		return 1;
	}
	/* A PID that certainly belongs to nobody now: a child that has exited. */
	pid_t gone = fork();
	if (gone < 0)
		return 1;
	if (gone == 0)
		_exit(0);
	waitpid(gone, NULL, 0);

	struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "xdp_orphan: cannot load %s\n", argv[1]);
		return 1;
	}
	struct bpf_program *prog = bpf_object__find_program_by_name(obj, "usnet_steer");
	int addr = bpf_object__find_map_fd_by_name(obj, "usnet_addr");
	uint32_t key = 1, pid = (uint32_t)gone;
	if (!prog || addr < 0 || bpf_map_update_elem(addr, &key, &pid, 0)) {
		fprintf(stderr, "xdp_orphan: %s lacks usnet_steer or its owner slot\n", argv[1]);
		return 1;
	}
	int r = bpf_xdp_attach(ifindex, bpf_program__fd(prog), XDP_FLAGS_DRV_MODE, NULL);
	if (r) {
		fprintf(stderr, "xdp_orphan: attach to %s: %s\n", argv[2], strerror(-r));
		return 1;
	}
	printf("attached, owner %u (gone)\n", pid);
	return 0;
}
