/* The afxdp backend's XDP program (built by clang from
 * src/netif/xdp/usnet_steer.bpf.c), embedded in the library so that no file
 * has to be found at run time. */
	.section .rodata
	.balign 8
	.globl usnet_xdp_obj
	.hidden usnet_xdp_obj
usnet_xdp_obj:
	.incbin USNET_XDP_OBJ
	.globl usnet_xdp_obj_end
	.hidden usnet_xdp_obj_end
usnet_xdp_obj_end:
	.section .note.GNU-stack,"",@progbits
