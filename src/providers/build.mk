# Providers (src/providers/): the socket implementations behind the switch.
# "kernel" (pass-through) always builds; "usnet" (the stack on a netif:
# stack.c, stack_inst.c, stack_opts.c, kernel_route.c, host_addr.c, stack_ip6.c) needs the stack core and the backends.
# src/vsock/build.mk links them into build/libusnet.so.
PROV_CFLAGS := $(CFLAGS_COMMON)
PROV_KERNEL_OBJS := $(B)/providers/kernel.o
PROV_STACK_OBJS := $(B)/providers/stack.o $(B)/providers/stack_inst.o $(B)/providers/stack_opts.o $(B)/providers/kernel_route.o $(B)/providers/host_addr.o \
                   $(B)/providers/stack_ip6.o

$(B)/providers/%.o: src/providers/%.c include/usnet/provider.h include/usnet/stack.h \
		include/usnet/netif.h include/usnet/netif_open.h $(wildcard src/providers/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(PROV_CFLAGS) -c -o $@ $<
