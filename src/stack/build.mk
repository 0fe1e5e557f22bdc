# The portable TCP/IP stack core: build/libusnet-stack.a.
#
# The core is freestanding: compiled with -ffreestanding, it may reference
# only these C library symbols (checked by `make check-freestanding`):
STACK_ALLOWED_UNDEF := memcpy memmove memset memcmp
#
# Variants: the plain library (what applications link), a sanitizer build for
# the unit tests (build/stack/libusnet-stack-san.a), and an aarch64 build made
# by tests/stack/run.sh through check-freestanding.

STACK_SRCS := $(sort $(wildcard src/stack/*.c))
STACK_HDRS := $(wildcard src/stack/*.h) include/usnet/stack.h include/usnet/netif.h
STACK_CFLAGS := $(CFLAGS_COMMON) -ffreestanding
STACK_OBJS := $(STACK_SRCS:src/stack/%.c=$(B)/stack/obj/%.o)
STACK_SAN_OBJS := $(STACK_SRCS:src/stack/%.c=$(B)/stack/san/%.o)

ALL += $(B)/libusnet-stack.a

$(B)/stack/obj/%.o: src/stack/%.c $(STACK_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(STACK_CFLAGS) -c -o $@ $<

$(B)/stack/san/%.o: src/stack/%.c $(STACK_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(STACK_CFLAGS) $(SAN_FLAGS) -c -o $@ $<

$(B)/libusnet-stack.a: $(STACK_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(B)/stack/libusnet-stack-san.a: $(STACK_SAN_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# Freestanding and portability checks (tests/stack/check-freestanding.sh):
# linked with -nostdlib the core references only STACK_ALLOWED_UNDEF, it
# has no writable global data, and it passes its unit tests built for
# aarch64 under qemu-aarch64-static.  Prints PASS/FAIL/SKIP lines.
.PHONY: check-freestanding
check-freestanding: $(STACK_OBJS)
	@tests/stack/check-freestanding.sh
