# usnet-kv: a memcached-compatible server on the native usnet API (one stack
# instance per thread) or, with --kernel, on kernel sockets.  Uses netloop
# from apps/usnet-bench/build.mk (included before this fragment).
ifndef USNET_KV_MK
USNET_KV_MK := 1

KV_DIR := $(B)/apps/usnet-kv
KV_SRCS := $(wildcard apps/usnet-kv/*.c)
KV_OBJS := $(KV_SRCS:apps/usnet-kv/%.c=$(KV_DIR)/%.o)

ALL += $(B)/usnet-kv
TEST_SUITES += tests/kv/run.sh

$(KV_DIR)/%.o: apps/usnet-kv/%.c $(wildcard apps/usnet-kv/*.h) apps/usnet-bench/netloop.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -Iapps/usnet-kv -Iapps/usnet-bench -c -o $@ $<

$(B)/usnet-kv: $(KV_OBJS) $(NETLOOP_DEPS)
	$(CC) $(CFLAGS_COMMON) -o $@ $(KV_OBJS) $(NETLOOP_LINK)

endif
