# usnet-httpd: a static-content HTTP/1.1 server on the native usnet API (one
# stack instance per thread) or, with --kernel, on kernel sockets.  Uses
# netloop from apps/usnet-bench/build.mk (included before this fragment).
#
# Also built for tests/httpd, under ASan and UBSan: build/httpd/usnet-httpd-san,
# the server on kernel sockets only, and build/httpd/usnet-httpd-usnet-san,
# the whole server down to the backends (these and the runtime compiled here
# with the sanitizers, the stack's own sanitizer build linked).  The fuzz
# target (fuzz/build.mk) takes HTTPD_PURE_SRCS.
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

ifeq ($(APP_LIBS_READY),yes)
HTTPD_USNET_SAN_SRCS := $(HTTPD_SRCS) apps/usnet-bench/netloop.c $(APP_LIB_SRCS) $(NETIF_SRCS)

$(B)/httpd/usnet-httpd-usnet-san: $(HTTPD_USNET_SAN_SRCS) $(HTTPD_HDRS) apps/usnet-bench/netloop.h \
		apps/lib/usnet_app.h $(NETIF_HDRS) $(NETIF_ASM_OBJS) $(B)/stack/libusnet-stack-san.a
	@mkdir -p $(dir $@)
	$(CC) $(HTTPD_CFLAGS) -Iapps/lib $(NETIF_DEFS) -DNETLOOP_WITH_USNET $(SAN_FLAGS) -o $@ \
		$(HTTPD_USNET_SAN_SRCS) $(NETIF_ASM_OBJS) $(B)/stack/libusnet-stack-san.a $(NETIF_LDLIBS) -lpthread
endif

endif
