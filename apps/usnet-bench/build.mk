# usnet-bench: ping-pong and memcached-workload load generator/responder,
# on the native usnet API or (--kernel) on kernel sockets.  Also builds
# netloop, the small I/O layer usnet-kv shares.
#
# The usnet mode is compiled in once the runtime libraries are part of the
# build (APP_LIBS_READY, from apps/build.mk); before that the apps build with
# --kernel only.
ifndef USNET_BENCH_MK
USNET_BENCH_MK := 1

BENCH_DIR := $(B)/apps/usnet-bench
NETLOOP_MODE := $(if $(filter yes,$(APP_LIBS_READY)),usnet,kernel)
NETLOOP_OBJ := $(BENCH_DIR)/netloop-$(NETLOOP_MODE).o
NETLOOP_CFLAGS := $(CFLAGS_COMMON) -Iapps/lib -Iapps/usnet-bench \
	$(if $(filter usnet,$(NETLOOP_MODE)),-DNETLOOP_WITH_USNET)
# What a netloop user links after its own objects.
NETLOOP_LINK := $(NETLOOP_OBJ) $(if $(filter usnet,$(NETLOOP_MODE)),$(APP_LIBS) $(APP_LDLIBS)) -lpthread -lm
NETLOOP_DEPS := $(NETLOOP_OBJ) $(if $(filter usnet,$(NETLOOP_MODE)),$(APP_LIBS))

BENCH_SRCS := $(wildcard apps/usnet-bench/bench_*.c) apps/usnet-bench/usnet_bench.c
BENCH_OBJS := $(BENCH_SRCS:apps/usnet-bench/%.c=$(BENCH_DIR)/%.o)

ALL += $(B)/usnet-bench

$(NETLOOP_OBJ): apps/usnet-bench/netloop.c apps/usnet-bench/netloop.h apps/lib/usnet_app.h \
		include/usnet/stack.h include/usnet/netif_open.h
	@mkdir -p $(dir $@)
	$(CC) $(NETLOOP_CFLAGS) -c -o $@ $<

$(BENCH_DIR)/%.o: apps/usnet-bench/%.c $(wildcard apps/usnet-bench/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -Iapps/usnet-bench -c -o $@ $<

$(B)/usnet-bench: $(BENCH_OBJS) $(NETLOOP_DEPS)
	$(CC) $(CFLAGS_COMMON) -o $@ $(BENCH_OBJS) $(NETLOOP_LINK)

endif
