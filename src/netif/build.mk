# netif: packet I/O backends and wrappers -> build/libusnet-netif.a (PIC).
# Users link $(NETIF_LIB) followed by $(NETIF_LDLIBS).
NETIF_SRCS := src/netif/common.c src/netif/open.c src/netif/share_io.c src/netif/memwire.c src/netif/tap.c \
              src/netif/impair.c src/netif/impair_spec.c src/netif/pcap.c src/netif/afpacket.c \
              src/netif/arp_share.c src/netif/tx_defer.c
NETIF_DEFS := -DUSNET_NETIF_HAVE_AFPACKET
NETIF_LDLIBS := -lm
NETIF_ASM :=

# afxdp: only where libxdp/libbpf and clang (for the XDP program) are there.
NETIF_HAVE_AFXDP := $(shell pkg-config --exists libxdp libbpf 2>/dev/null && command -v $(CLANG) >/dev/null 2>&1 && echo yes)
ifeq ($(NETIF_HAVE_AFXDP),yes)
NETIF_SRCS += src/netif/afxdp.c src/netif/host_steer.c
NETIF_ASM += src/netif/afxdp_prog.S
NETIF_DEFS += -DUSNET_NETIF_HAVE_AFXDP
NETIF_LDLIBS += $(shell pkg-config --libs libxdp libbpf)
endif

# dpdk: a plugin (build/libusnet-netif-dpdk.so) loaded on demand, built only
# where pkg-config finds libdpdk (Debian: libdpdk-dev).
NETIF_HAVE_DPDK := $(shell pkg-config --exists libdpdk 2>/dev/null && echo yes)
NETIF_DPDK_PLUGIN := $(B)/libusnet-netif-dpdk.so
ifeq ($(NETIF_HAVE_DPDK),yes)
NETIF_DEFS += -DUSNET_NETIF_HAVE_DPDK
ALL += $(NETIF_DPDK_PLUGIN)
endif

NETIF_XDP_OBJ := $(B)/netif/usnet_steer.bpf.o
NETIF_ASM_OBJS = $(patsubst src/netif/%.S,$(B)/netif/%.o,$(NETIF_ASM))
NETIF_OBJS = $(patsubst src/netif/%.c,$(B)/netif/%.o,$(NETIF_SRCS)) $(NETIF_ASM_OBJS)
NETIF_LIB := $(B)/libusnet-netif.a
NETIF_HDRS := src/netif/build.mk $(wildcard src/netif/*.h) include/usnet/netif.h include/usnet/netif_open.h \
              include/usnet/netif_memwire.h include/usnet/netif_wrap.h

ALL += $(NETIF_LIB)
# The front end links the backends; repeated in CLI_LDLIBS so that archives
# listed before it (providers, stack) find their netif symbols.
CLI_LIBS += $(NETIF_LIB)
CLI_LDLIBS += $(NETIF_LIB) $(NETIF_LDLIBS)

$(B)/netif:
	@mkdir -p $@

$(B)/netif/%.o: src/netif/%.c $(NETIF_HDRS) | $(B)/netif
	$(CC) $(CFLAGS_COMMON) $(NETIF_DEFS) -c -o $@ $<

# The XDP program, compiled for BPF and embedded into the library.
$(NETIF_XDP_OBJ): src/netif/xdp/usnet_steer.bpf.c | $(B)/netif
	$(CLANG) -O2 -g -target bpf -Wall -Werror -I/usr/include/$(shell $(CC) -dumpmachine) -c -o $@ $<

$(B)/netif/afxdp_prog.o: src/netif/afxdp_prog.S $(NETIF_XDP_OBJ) | $(B)/netif
	$(CC) -c -fPIC -DUSNET_XDP_OBJ='"$(NETIF_XDP_OBJ)"' -o $@ $<

# The plugin carries its own hidden copy of the helpers it uses.
$(B)/netif/dpdk_plugin/%.o: src/netif/%.c $(NETIF_HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_COMMON) -fvisibility=hidden $(shell pkg-config --cflags libdpdk 2>/dev/null) -c -o $@ $<

$(NETIF_DPDK_PLUGIN): $(B)/netif/dpdk_plugin/dpdk.o $(B)/netif/dpdk_plugin/common.o
	$(CC) -shared -o $@ $^ $(shell pkg-config --libs libdpdk 2>/dev/null) -lm

$(NETIF_LIB): $(NETIF_OBJS)
	@rm -f $@
	ar rcs $@ $^
