# bench/hook: the system-call hook's costs (run bench/hook/run.sh): helpers
# built here, the numbers printed by the script.
HOOK_BENCH := $(B)/hook/bench
ALL += $(HOOK_BENCH)/getppid_loop $(HOOK_BENCH)/getppid_pair $(HOOK_BENCH)/wrap_getppid.so \
	$(HOOK_BENCH)/answer_getppid.so

$(HOOK_BENCH)/getppid_pair: bench/hook/getppid_pair.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -o $@ $< -ldl

$(HOOK_BENCH)/getppid_loop: bench/hook/getppid_loop.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -o $@ $<

$(HOOK_BENCH)/wrap_getppid.so: bench/hook/wrap_getppid.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -shared -o $@ $< -ldl

# The handler runs on the hook's pass-through path: general registers only.
$(HOOK_BENCH)/answer_getppid.so: bench/hook/answer_getppid.c $(B)/libusnet-hook.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -mgeneral-regs-only -shared -o $@ $< $(B)/libusnet-hook.a \
		$(HOOK_LDLIBS) -Wl,-z,now
