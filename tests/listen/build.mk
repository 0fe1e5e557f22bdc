# Listeners under load (tests/listen/run.sh): a SYN flood against a server
# under usnet run, answered with SYN cookies.  build/tests/listen/synflood
# is the flood's raw-socket sender.
LISTEN_FLOOD := $(B)/tests/listen/synflood
TEST_DEPS += $(LISTEN_FLOOD)

$(LISTEN_FLOOD): tests/listen/synflood.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -o $@ $<

TEST_SUITES += tests/listen/run.sh
