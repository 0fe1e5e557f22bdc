# tests/fastio: the fast packet I/O backends end to end (tests/fastio/run.sh):
# the network tests of tests/net over afpacket, afxdp (native and skb) and
# dpdk across a veth pair, afxdp sharing its interface with the kernel, and
# four queues served by four stack instances (build/fastio/fastio-mq-echo).
FASTIO_MQ_ECHO := $(B)/fastio/fastio-mq-echo

ifeq ($(APP_LIBS_READY),yes)
TEST_DEPS += $(FASTIO_MQ_ECHO)
endif

$(B)/fastio/%.o: tests/fastio/%.c
	@mkdir -p $(dir $@)
	$(CC) $(APP_CFLAGS) -MMD -MP -c -o $@ $<

-include $(B)/fastio/mq_echo.d

$(FASTIO_MQ_ECHO): $(B)/fastio/mq_echo.o $(APP_LIBS)
	$(CC) $(APP_CFLAGS) -o $@ $(B)/fastio/mq_echo.o $(APP_LIBS) $(APP_LDLIBS) -lpthread

TEST_SUITES += tests/fastio/run.sh
