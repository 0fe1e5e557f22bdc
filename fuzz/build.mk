# Fuzzing the stack's receive path.
#   make fuzz               build build/stack/fuzz_stack (clang libFuzzer + ASan/UBSan)
#   build/stack/fuzz_stack fuzz/corpus -max_total_time=600 -jobs=1
# Crashes found are kept in fuzz/regressions/; build/stack/fuzz_replay (no
# libFuzzer, ASan/UBSan) replays them and the seed corpus in `make test`.
FUZZ_SRCS := fuzz/fuzz_stack_input.c
FUZZ_CFLAGS := -std=gnu11 -O1 -g -Iinclude -D_GNU_SOURCE -Wall -Wextra -Werror

.PHONY: fuzz
fuzz: $(B)/stack/fuzz_stack

$(B)/stack/fuzz_stack: $(FUZZ_SRCS) $(STACK_SRCS) $(STACK_HDRS)
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -ffreestanding -fsanitize=fuzzer,address,undefined -o $@ $(FUZZ_SRCS) $(STACK_SRCS)

$(B)/stack/fuzz_replay: fuzz/replay_main.c $(FUZZ_SRCS) $(B)/stack/libusnet-stack-san.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(SAN_FLAGS) -o $@ fuzz/replay_main.c $(FUZZ_SRCS) $(B)/stack/libusnet-stack-san.a

TEST_DEPS += $(B)/stack/fuzz_replay
