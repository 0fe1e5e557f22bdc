# The readiness suite (tests/vsock/run.sh): the program it compares between
# the kernel and usnet, and a third-party provider built as its own .so.
TESTS_VSOCK_DIR := $(B)/tests/vsock
TEST_SUITES += tests/vsock/run.sh
TEST_DEPS += $(TESTS_VSOCK_DIR)/readiness $(TESTS_VSOCK_DIR)/libtestprov.so

$(TESTS_VSOCK_DIR)/readiness: tests/vsock/readiness.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -o $@ $< -lpthread

$(TESTS_VSOCK_DIR)/libtestprov.so: tests/vsock/testprov.c include/usnet/provider.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -fvisibility=hidden -shared -o $@ $< -lpthread
