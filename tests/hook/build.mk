# Tests of the system-call hook (tests/hook/run.sh): the probe program and the
# library it dlopen()s.
HOOK_TEST_DIR := $(B)/hook/tests
TEST_SUITES += tests/hook/run.sh
TEST_DEPS += $(HOOK_TEST_DIR)/probe $(HOOK_TEST_DIR)/libhookraw.so $(HOOK_TEST_DIR)/api_probe \
	$(HOOK_TEST_DIR)/semantics $(HOOK_TEST_DIR)/leftover \
	$(HOOK_TEST_DIR)/interest_probe $(HOOK_TEST_DIR)/decode_check

HOOK_PROBE_SRCS := tests/hook/probe.c tests/hook/probe_vector.c tests/hook/probe_sigmask.c
$(HOOK_TEST_DIR)/probe: $(HOOK_PROBE_SRCS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -o $@ $(HOOK_PROBE_SRCS) -ldl -lpthread

$(HOOK_TEST_DIR)/libhookraw.so: tests/hook/hookraw_lib.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -shared -o $@ $<

# The contract used directly, the hook linked into the program.
$(HOOK_TEST_DIR)/api_probe: tests/hook/api_probe.c $(B)/libusnet-hook.a include/usnet/hook.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -mgeneral-regs-only -o $@ $< $(B)/libusnet-hook.a $(HOOK_LDLIBS)

# The interest set, the hook linked into the program.
$(HOOK_TEST_DIR)/interest_probe: tests/hook/interest_probe.c $(B)/libusnet-hook.a include/usnet/hook.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -mgeneral-regs-only -o $@ $< $(B)/libusnet-hook.a $(HOOK_LDLIBS) -lpthread

# What a program must not notice (tests/hook/semantics.c): null reads still
# fault, the red zone survives a system call (liburing's too, when
# liburing-dev is installed), mlockall returns.
HOOK_URING_FLAGS := $(if $(wildcard /usr/include/liburing.h),-DHAVE_LIBURING -luring)
$(HOOK_TEST_DIR)/semantics: tests/hook/semantics.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -o $@ $< $(HOOK_URING_FLAGS)

# A system call no rewriting plan can take (tests/hook/leftover.c).
$(HOOK_TEST_DIR)/leftover: tests/hook/leftover.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -o $@ $<

# The hook's decoder against GNU objdump over real programs' code.
$(HOOK_TEST_DIR)/decode_check: tests/hook/decode_check.c src/hook/hook_decode.c src/hook/hook_decode.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -o $@ tests/hook/decode_check.c src/hook/hook_decode.c
