# bench/stack: the stack core's throughput, round trips and memory per
# connection, two instances over an in-process memwire (build/bench-stack;
# run it with bench/stack/run.sh).
BENCH_STACK_OBJS := $(B)/bench/stack/bench_stack.o $(B)/bench/stack/kernel_ref.o

ifeq ($(APP_LIBS_READY),yes)
ALL += $(B)/bench-stack
endif

$(B)/bench/stack/%.o: bench/stack/%.c
	@mkdir -p $(dir $@)
	$(CC) $(APP_CFLAGS) $(APP_DEPFLAGS) -c -o $@ $<

-include $(BENCH_STACK_OBJS:.o=.d)

$(B)/bench-stack: $(BENCH_STACK_OBJS) $(APP_LIBS)
	$(CC) $(APP_CFLAGS) -o $@ $(BENCH_STACK_OBJS) $(APP_LIBS) $(APP_LDLIBS)
