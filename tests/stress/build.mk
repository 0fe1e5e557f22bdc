# tests/stress: stream integrity under threads (tests/stress/run.sh): one
# program, build/stress/stress-streams, is both the client run under
# `usnet run` and the kernel echo peer in the other namespace.
STRESS_STREAMS := $(B)/stress/stress-streams
TEST_DEPS += $(STRESS_STREAMS)
TEST_SUITES += tests/stress/run.sh

$(STRESS_STREAMS): tests/stress/streams.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -o $@ $< -lpthread
