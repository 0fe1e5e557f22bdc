# Unit tests of the stack core (tests/stack/): build/stack/test_stack (plain)
# and build/stack/test_stack_san (ASan + UBSan), run by tests/stack/run.sh.
STACK_TEST_SRCS := $(sort $(wildcard tests/stack/*.c))
STACK_TEST_HDRS := $(wildcard tests/stack/*.h tests/stack/*.def) include/usnet/stack.h include/usnet/netif.h
STACK_TEST_CFLAGS := $(CFLAGS_COMMON) -Itests/stack

$(B)/stack/test_stack: $(STACK_TEST_SRCS) $(STACK_TEST_HDRS) $(B)/libusnet-stack.a
	@mkdir -p $(dir $@)
	$(CC) $(STACK_TEST_CFLAGS) -o $@ $(STACK_TEST_SRCS) $(B)/libusnet-stack.a

$(B)/stack/test_stack_san: $(STACK_TEST_SRCS) $(STACK_TEST_HDRS) $(B)/stack/libusnet-stack-san.a
	@mkdir -p $(dir $@)
	$(CC) $(STACK_TEST_CFLAGS) $(SAN_FLAGS) -o $@ $(STACK_TEST_SRCS) $(B)/stack/libusnet-stack-san.a

# kill_repair (tests/stack/kill/): processes killed inside stack calls on
# shared instances, then usnet_stack_repair(); with the harness's netif.
KILL_TEST_SRCS := tests/stack/kill/kill_repair.c tests/stack/harness.c

$(B)/stack/kill_repair: $(KILL_TEST_SRCS) $(STACK_TEST_HDRS) $(B)/libusnet-stack.a
	@mkdir -p $(dir $@)
	$(CC) $(STACK_TEST_CFLAGS) -o $@ $(KILL_TEST_SRCS) $(B)/libusnet-stack.a -lpthread

$(B)/stack/kill_repair_san: $(KILL_TEST_SRCS) $(STACK_TEST_HDRS) $(B)/stack/libusnet-stack-san.a
	@mkdir -p $(dir $@)
	$(CC) $(STACK_TEST_CFLAGS) $(SAN_FLAGS) -o $@ $(KILL_TEST_SRCS) $(B)/stack/libusnet-stack-san.a -lpthread

STACK_TEST_BINS := $(B)/stack/test_stack $(B)/stack/test_stack_san $(B)/stack/kill_repair $(B)/stack/kill_repair_san
TEST_DEPS += $(STACK_TEST_BINS) $(STACK_OBJS)
TEST_SUITES += tests/stack/run.sh
