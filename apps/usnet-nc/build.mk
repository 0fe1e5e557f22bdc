# usnet-nc: a netcat on the native API (apps/usnet-nc/), linked with the
# runtime, the stack core and the backends (APP_LIBS from apps/build.mk).
ifndef USNET_NC_MK
USNET_NC_MK := 1

NC_SRCS := $(wildcard apps/usnet-nc/*.c)
NC_OBJS := $(NC_SRCS:apps/usnet-nc/%.c=$(B)/apps/usnet-nc/%.o)

ifeq ($(APP_LIBS_READY),yes)
ALL += $(B)/usnet-nc
endif

$(B)/apps/usnet-nc/%.o: apps/usnet-nc/%.c apps/usnet-nc/nc.h apps/lib/usnet_app.h include/usnet/stack.h include/usnet/netif.h
	@mkdir -p $(dir $@)
	$(CC) $(APP_CFLAGS) $(APP_DEPFLAGS) -c -o $@ $<

-include $(NC_OBJS:.o=.d)

$(B)/usnet-nc: $(NC_OBJS) $(APP_LIBS)
	$(CC) $(APP_CFLAGS) -o $@ $(NC_OBJS) $(APP_LIBS) $(APP_LDLIBS)

endif
