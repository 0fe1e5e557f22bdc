# usnet-httpd: a static-content HTTP/1.1 server on the native usnet API (one
# stack instance per thread) or, with --kernel, on kernel sockets.  Uses
# netloop from apps/usnet-bench/build.mk (included before this fragment).
#
# Also built: build/httpd/usnet-httpd-san, the same server on kernel sockets
# only, under ASan and UBSan, for tests/httpd; and the fuzz target's objects
# (fuzz/build.mk) come from HTTPD_PURE_SRCS.
ifndef USNET_HTTPD_MK
USNET_HTTPD_MK := 1

HTTPD_DIR := $(B)/apps/usnet-httpd
HTTPD_SRCS := $(wildcard apps/usnet-httpd/*.c)
HTTPD_HDRS := $(wildcard apps/usnet-httpd/*.h)
HTTPD_OBJS := $(HTTPD_SRCS:apps/usnet-httpd/%.c=$(HTTPD_DIR)/%.o)
# What parses and answers a request, without any I/O: the fuzz target's part.
HTTPD_PURE_SRCS := apps/usnet-httpd/http_request.c apps/usnet-httpd/http_respond.c \
	apps/usnet-httpd/http_cache.c apps/usnet-httpd/http_date.c apps/usnet-httpd/http_mime.c
HTTPD_CFLAGS := $(CFLAGS_COMMON) -Iapps/usnet-httpd -Iapps/usnet-bench

ALL += $(B)/usnet-httpd

$(HTTPD_DIR)/%.o: apps/usnet-httpd/%.c $(HTTPD_HDRS) apps/usnet-bench/netloop.h
	@mkdir -p $(dir $@)
	$(CC) $(HTTPD_CFLAGS) -c -o $@ $<

$(B)/usnet-httpd: $(HTTPD_OBJS) $(NETLOOP_DEPS)
	$(CC) $(CFLAGS_COMMON) -o $@ $(HTTPD_OBJS) $(NETLOOP_LINK)

$(B)/httpd/usnet-httpd-san: $(HTTPD_SRCS) $(HTTPD_HDRS) apps/usnet-bench/netloop.c apps/usnet-bench/netloop.h
	@mkdir -p $(dir $@)
	$(CC) $(HTTPD_CFLAGS) $(SAN_FLAGS) -o $@ $(HTTPD_SRCS) apps/usnet-bench/netloop.c -lpthread

endif
