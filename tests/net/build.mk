# tests/net: the stack against the Linux kernel over TAP in a private network
# namespace (root), and two stacks over an impaired memwire (no root).
# The suite drives build/usnet-nc (apps/usnet-nc/build.mk) and the test
# program build/tests/net/memwire-impaired built here.
NET_TEST_BIN := $(B)/tests/net/memwire-impaired

ifeq ($(APP_LIBS_READY),yes)
TEST_DEPS += $(NET_TEST_BIN)
endif

$(B)/tests/net/%.o: tests/net/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -MMD -MP -c -o $@ $<

-include $(B)/tests/net/memwire_impaired.d

$(NET_TEST_BIN): $(B)/tests/net/memwire_impaired.o $(B)/libusnet-stack.a $(B)/libusnet-netif.a
	$(CC) $(CFLAGS_COMMON) -o $@ $< $(B)/libusnet-stack.a $(B)/libusnet-netif.a $(NETIF_LDLIBS)

TEST_SUITES += tests/net/run.sh
