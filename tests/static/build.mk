# Statically linked programs under usnet (tests/static/run.sh): the test
# programs built with gcc -static and -static-pie (libc.a: libc6-dev).
STATIC_TEST_DIR := $(B)/tests/static
STATIC_TEST_BINS := $(STATIC_TEST_DIR)/static_probe $(STATIC_TEST_DIR)/static_probe_pie \
	$(STATIC_TEST_DIR)/echo_server $(STATIC_TEST_DIR)/echo_server_pie
TEST_SUITES += tests/static/run.sh
TEST_DEPS += $(STATIC_TEST_BINS) $(STATIC_TEST_DIR)/unhookable_map

# a dynamic program with code the rewriter cannot reach
$(STATIC_TEST_DIR)/unhookable_map: tests/static/unhookable_map.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -o $@ $<

$(STATIC_TEST_DIR)/%: tests/static/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(OPT) $(WARN) -D_GNU_SOURCE -static -o $@ $< -lpthread

$(STATIC_TEST_DIR)/%_pie: tests/static/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(OPT) $(WARN) -D_GNU_SOURCE -static-pie -fPIE -o $@ $< -lpthread
