# Native applications (apps/): the runtime library every app links, build/
# libusnet-app.a (apps/lib/), plus one fragment per app, apps/<app>/build.mk.
#
# The per-app fragments are included at the end of this file, after the
# runtime's variables they use.  The top-level Makefile includes apps/*/build.mk
# as well, so each fragment guards itself against a second inclusion
# (ifndef USNET_<APP>_MK).  An app's fragment links $(APP_LIBS) $(APP_LDLIBS)
# and depends on $(APP_LIBS), e.g.
#     $(B)/usnet-foo: $(B)/apps/foo/main.o $(APP_LIBS)
#             $(CC) $(APP_CFLAGS) -o $@ $(B)/apps/foo/main.o $(APP_LIBS) $(APP_LDLIBS)

APP_CFLAGS := $(CFLAGS_COMMON) -Iapps/lib
# Objects also depend on every header they include (-MMD writes a .d file
# next to each object; apps/*/build.mk include theirs the same way).
APP_DEPFLAGS = -MMD -MP
APP_LIB_SRCS := apps/lib/usnet_app.c
APP_LIB_OBJS := $(APP_LIB_SRCS:apps/lib/%.c=$(B)/apps/lib/%.o)

# The stack core and the backends, in link order (the runtime needs both).
APP_LIBS := $(B)/libusnet-app.a $(B)/libusnet-stack.a $(B)/libusnet-netif.a
APP_LDLIBS = $(NETIF_LDLIBS)
# Apps are built only once the fragments of src/stack and src/netif (included
# before this one) build the libraries they link.
APP_LIBS_READY := $(if $(and $(filter $(B)/libusnet-stack.a,$(ALL)),$(filter $(B)/libusnet-netif.a,$(ALL))),yes,no)

ALL += $(B)/libusnet-app.a

$(B)/apps/lib/%.o: apps/lib/%.c apps/lib/usnet_app.h include/usnet/netif_wrap.h include/usnet/stack.h include/usnet/netif.h include/usnet/netif_open.h
	@mkdir -p $(dir $@)
	$(CC) $(APP_CFLAGS) $(APP_DEPFLAGS) -c -o $@ $<

-include $(APP_LIB_OBJS:.o=.d)

$(B)/libusnet-app.a: $(APP_LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# Per-app fragments (each guarded against the top-level Makefile including it again).
-include $(sort $(wildcard apps/*/build.mk))
