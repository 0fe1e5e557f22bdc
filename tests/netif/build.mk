# netif tests: a driver program, plain and with ASan/UBSan (built from the
# sources, not the library, so the sanitizers see the backends too).
NETIF_TEST := $(B)/netif/netif_test
NETIF_TEST_SAN := $(B)/netif/netif_test_san
TEST_DEPS += $(NETIF_TEST) $(NETIF_TEST_SAN)
TEST_SUITES += tests/netif/run.sh

$(NETIF_TEST): tests/netif/netif_test.c $(NETIF_LIB) $(NETIF_HDRS) | $(B)/netif
	$(CC) $(CFLAGS_COMMON) -o $@ tests/netif/netif_test.c $(NETIF_LIB) $(NETIF_LDLIBS) -lpthread

$(NETIF_TEST_SAN): tests/netif/netif_test.c $(NETIF_SRCS) $(NETIF_ASM_OBJS) $(NETIF_HDRS) | $(B)/netif
	$(CC) $(CFLAGS_COMMON) $(NETIF_DEFS) $(SAN_FLAGS) -o $@ tests/netif/netif_test.c $(NETIF_SRCS) \
		$(NETIF_ASM_OBJS) $(NETIF_LDLIBS) -lpthread

# Sharing a netif with an exec'd process (usnet/netif_share.h), plain and
# with the sanitizers.
NETIF_SHARE_TEST := $(B)/netif/netif_share_test
NETIF_SHARE_TEST_SAN := $(B)/netif/netif_share_test_san
TEST_DEPS += $(NETIF_SHARE_TEST) $(NETIF_SHARE_TEST_SAN)

$(NETIF_SHARE_TEST): tests/netif/share_test.c $(NETIF_LIB) $(NETIF_HDRS) | $(B)/netif
	$(CC) $(CFLAGS_COMMON) -o $@ tests/netif/share_test.c $(NETIF_LIB) $(NETIF_LDLIBS) -lpthread

$(NETIF_SHARE_TEST_SAN): tests/netif/share_test.c $(NETIF_SRCS) $(NETIF_ASM_OBJS) $(NETIF_HDRS) | $(B)/netif
	$(CC) $(CFLAGS_COMMON) $(NETIF_DEFS) $(SAN_FLAGS) -o $@ tests/netif/share_test.c $(NETIF_SRCS) \
		$(NETIF_ASM_OBJS) $(NETIF_LDLIBS) -lpthread

# A helper that leaves the afxdp program attached with a dead owner.
ifeq ($(NETIF_HAVE_AFXDP),yes)
NETIF_XDP_ORPHAN := $(B)/netif/xdp_orphan
TEST_DEPS += $(NETIF_XDP_ORPHAN) $(NETIF_XDP_OBJ)
$(NETIF_XDP_ORPHAN): tests/netif/xdp_orphan.c | $(B)/netif
	$(CC) $(CFLAGS_COMMON) -o $@ $< $(NETIF_LDLIBS)
endif

# The tx defer wrapper's unit test (tests/netif/run.sh), with the sanitizers.
NETIF_TX_DEFER_TEST := $(B)/netif/tx_defer_test
TEST_DEPS += $(NETIF_TX_DEFER_TEST)

$(NETIF_TX_DEFER_TEST): tests/netif/tx_defer_test.c src/netif/tx_defer.c include/usnet/netif_wrap.h include/usnet/netif.h | $(B)/netif
	$(CC) $(CFLAGS_COMMON) $(SAN_FLAGS) -o $@ tests/netif/tx_defer_test.c src/netif/tx_defer.c
