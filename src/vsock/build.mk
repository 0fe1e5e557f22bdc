# The socket switch (src/vsock/) -> build/libusnet.so, the library `usnet run`
# preloads: hook + switch + providers + stack + backends.  The hook handler
# (handler.c) is built with -mgeneral-regs-only: it runs with only the
# general registers saved.
VSOCK_SRCS := $(filter-out src/vsock/handler.c,$(wildcard src/vsock/*.c))
VSOCK_OBJS := $(patsubst src/vsock/%.c,$(B)/vsock/%.o,$(VSOCK_SRCS)) $(B)/vsock/handler.o
VSOCK_HDRS := $(wildcard src/vsock/*.h) src/providers/builtin.h include/usnet/provider.h include/usnet/hook.h
VSOCK_CFLAGS := $(CFLAGS_COMMON) -fvisibility=hidden -Isrc/providers
HOOK_LIB ?= $(B)/libusnet-hook.a
STACK_LIB ?= $(B)/libusnet-stack.a

# What this build has: the hook is required; the stack provider comes with
# the stack and the backends.
VSOCK_HAVE_HOOK := $(if $(filter $(HOOK_LIB),$(ALL)),yes,no)
VSOCK_HAVE_STACK := $(if $(and $(wildcard src/providers/stack.c),$(filter $(STACK_LIB),$(ALL)),$(filter $(B)/libusnet-netif.a,$(ALL))),yes,no)
VSOCK_PROV_OBJS := $(PROV_KERNEL_OBJS) $(if $(filter yes,$(VSOCK_HAVE_STACK)),$(PROV_STACK_OBJS))
VSOCK_LINK_LIBS := $(HOOK_LIB) $(if $(filter yes,$(VSOCK_HAVE_STACK)),$(STACK_LIB) $(B)/libusnet-netif.a)

# The switch's objects always build (so they are always warning-free); the
# library needs the hook.
ALL += $(VSOCK_OBJS) $(PROV_KERNEL_OBJS)
ifeq ($(VSOCK_HAVE_HOOK),yes)
ALL += $(B)/libusnet.so
endif

$(B)/vsock/handler.o: src/vsock/handler.c $(VSOCK_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(VSOCK_CFLAGS) -mgeneral-regs-only -fno-stack-protector -fno-builtin -c -o $@ $<

$(B)/vsock/%.o: src/vsock/%.c $(VSOCK_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(VSOCK_CFLAGS) -c -o $@ $<

$(B)/libusnet.so: $(VSOCK_OBJS) $(VSOCK_PROV_OBJS) $(VSOCK_LINK_LIBS)
	$(CC) -shared -o $@ $(VSOCK_OBJS) $(VSOCK_PROV_OBJS) $(VSOCK_LINK_LIBS) \
		-Wl,-Bsymbolic -Wl,-z,now -Wl,-z,noexecstack -Wl,-z,defs $(HOOK_LDLIBS) $(NETIF_LDLIBS) -lpthread -ldl

# The attach protocol is spoken by the owner in the front end too.
CLI_LIBS += $(B)/vsock/attach_proto.o
CLI_CFLAGS_EXTRA += -Isrc/vsock
