# Fuzzing the stack's receive path, its IPv6 views alone, usnet-httpd's
# request parser and the hook's x86-64 decoder.
#   make fuzz               build build/stack/fuzz_stack, build/stack/fuzz_wire_ipv6,
#                           build/httpd/fuzz_http and build/hook/fuzz_decode
#                           (clang libFuzzer + ASan/UBSan)
#   build/stack/fuzz_stack fuzz/corpus -max_total_time=600 -jobs=1
#   build/stack/fuzz_wire_ipv6 fuzz/wire-ipv6-corpus -max_total_time=600 -jobs=1
#   build/httpd/fuzz_http fuzz/http-corpus -max_total_time=600 -jobs=1
#   build/hook/fuzz_decode fuzz/decode-corpus -max_total_time=600 -jobs=1
# Crashes found are kept in fuzz/regressions/; build/stack/fuzz_replay (no
# libFuzzer, ASan/UBSan) replays them and the seed corpus in `make test`;
# build/stack/fuzz_wire_ipv6_replay does the same for fuzz/wire-ipv6-corpus/;
# build/httpd/fuzz_http_replay does the same for fuzz/http-corpus/ and
# fuzz/http-regressions/ (tests/httpd/run.sh), build/hook/fuzz_decode_replay
# for fuzz/decode-corpus/ (tests/hook/run.sh).
FUZZ_SRCS := fuzz/fuzz_stack_input.c
FUZZ_CFLAGS := -std=gnu11 -O1 -g -Iinclude -D_GNU_SOURCE -Wall -Wextra -Werror

.PHONY: fuzz
fuzz: $(B)/stack/fuzz_stack $(B)/stack/fuzz_wire_ipv6 $(B)/httpd/fuzz_http $(B)/hook/fuzz_decode

$(B)/stack/fuzz_stack: $(FUZZ_SRCS) $(STACK_SRCS) $(STACK_HDRS)
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -ffreestanding -fsanitize=fuzzer,address,undefined -o $@ $(FUZZ_SRCS) $(STACK_SRCS)

$(B)/stack/fuzz_replay: fuzz/replay_main.c $(FUZZ_SRCS) $(B)/stack/libusnet-stack-san.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(SAN_FLAGS) -o $@ fuzz/replay_main.c $(FUZZ_SRCS) $(B)/stack/libusnet-stack-san.a

TEST_DEPS += $(B)/stack/fuzz_replay

# The IPv6 views alone: wire_ipv6.c (with wire_mld6.h) and the checksum it uses.
WIRE6_FUZZ_SRCS := fuzz/fuzz_wire_ipv6.c src/stack/wire_ipv6.c src/stack/csum.c

$(B)/stack/fuzz_wire_ipv6: $(WIRE6_FUZZ_SRCS) $(STACK_HDRS)
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -Isrc/stack -fsanitize=fuzzer,address,undefined -o $@ $(WIRE6_FUZZ_SRCS)

$(B)/stack/fuzz_wire_ipv6_replay: fuzz/replay_main.c $(WIRE6_FUZZ_SRCS) $(STACK_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -Isrc/stack $(SAN_FLAGS) -o $@ fuzz/replay_main.c $(WIRE6_FUZZ_SRCS)

TEST_DEPS += $(B)/stack/fuzz_wire_ipv6_replay

HTTP_FUZZ_SRCS := fuzz/fuzz_http_request.c $(HTTPD_PURE_SRCS)
HTTP_FUZZ_HDRS := $(wildcard apps/usnet-httpd/*.h)

$(B)/httpd/fuzz_http: $(HTTP_FUZZ_SRCS) $(HTTP_FUZZ_HDRS)
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -Iapps/usnet-httpd -fsanitize=fuzzer,address,undefined -o $@ $(HTTP_FUZZ_SRCS)

$(B)/httpd/fuzz_http_replay: fuzz/replay_main.c $(HTTP_FUZZ_SRCS) $(HTTP_FUZZ_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -Iapps/usnet-httpd $(SAN_FLAGS) -o $@ fuzz/replay_main.c $(HTTP_FUZZ_SRCS)

TEST_DEPS += $(B)/httpd/fuzz_http_replay

DECODE_FUZZ_SRCS := fuzz/fuzz_hook_decode.c src/hook/hook_decode.c

$(B)/hook/fuzz_decode: $(DECODE_FUZZ_SRCS) src/hook/hook_decode.h
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $(DECODE_FUZZ_SRCS)

$(B)/hook/fuzz_decode_replay: fuzz/replay_main.c $(DECODE_FUZZ_SRCS) src/hook/hook_decode.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(SAN_FLAGS) -o $@ fuzz/replay_main.c $(DECODE_FUZZ_SRCS)

TEST_DEPS += $(B)/hook/fuzz_decode_replay
