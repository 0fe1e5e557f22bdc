# tests/kv: the runtime's unit test (tests/kv/run.sh runs it first), built
# with the sanitizers from the runtime's source.
KV_TX_DEFER_TEST := $(B)/tests/kv/tx_defer_test
TEST_DEPS += $(KV_TX_DEFER_TEST)

$(KV_TX_DEFER_TEST): tests/kv/tx_defer_test.c apps/lib/app_tx_defer.c apps/lib/app_tx_defer.h include/usnet/netif.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(SAN_FLAGS) -Iapps/lib -o $@ tests/kv/tx_defer_test.c apps/lib/app_tx_defer.c
