# The `usnet` front end: usnet.c dispatches to cmd_*.c.  Libraries a command
# needs are added to CLI_LIBS / CLI_LDLIBS by the fragment that owns them.
CLI_SRCS := src/cli/usnet.c $(wildcard src/cli/cmd_*.c) src/cli/host_ports.c src/cli/program_kind.c src/cli/ip6_list.c
CLI_LIBS ?=
CLI_LDLIBS ?=
ALL += $(B)/usnet

$(B)/usnet: $(CLI_SRCS) $(wildcard src/cli/*.h) $(CLI_LIBS) | $(B)
	$(CC) $(CFLAGS_COMMON) -Isrc/cli $(CLI_CFLAGS_EXTRA) -o $@ $(CLI_SRCS) $(CLI_LIBS) $(CLI_LDLIBS)
