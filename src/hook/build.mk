# The x86-64 system-call hook (src/hook/): build/libusnet-hook.a, a static PIC
# library any preloaded .so can link (contract: include/usnet/hook.h), and
# build/libusnet-trace.so, the hook plus the tracer `usnet trace` preloads.
#
# The dispatcher and everything on the pass-through path are built with
# -mgeneral-regs-only (no vector register is touched without XSAVE) and
# without calls libc could be asked to make for them (memcpy/memset).

HOOK_GR_SRCS := src/hook/hook_dispatch.c src/hook/hook_sud.c src/hook/hook_log.c \
	src/hook/hook_maps.c src/hook/hook_page0.c src/hook/hook_cache.c src/hook/hook_env.c \
	src/hook/hook_fault.c src/hook/hook_stub.c src/hook/hook_static.c src/hook/hook_static_clone.c \
	src/hook/hook_exec_static.c src/hook/hook_unhooked.c src/hook/hook_decode.c
HOOK_STD_SRCS := src/hook/hook_rewrite.c src/hook/hook_install.c
HOOK_OBJS := $(HOOK_GR_SRCS:src/hook/%.c=$(B)/hook/%.o) \
	$(HOOK_STD_SRCS:src/hook/%.c=$(B)/hook/%.o) $(B)/hook/hook_entry.o $(B)/hook/hook_static_entry.o
HOOK_GR_FLAGS := -mgeneral-regs-only -fno-tree-loop-distribute-patterns -fno-stack-protector \
	-fno-strict-aliasing \
	-fno-builtin
HOOK_HDRS := src/hook/hook_internal.h src/hook/hook_static.h src/hook/hook_unhooked.h \
	src/hook/hook_decode.h include/usnet/hook.h
HOOK_LDLIBS :=

ALL += $(B)/libusnet-hook.a $(B)/libusnet-trace.so

$(HOOK_GR_SRCS:src/hook/%.c=$(B)/hook/%.o): $(B)/hook/%.o: src/hook/%.c $(HOOK_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(HOOK_GR_FLAGS) -c -o $@ $<

$(HOOK_STD_SRCS:src/hook/%.c=$(B)/hook/%.o): $(B)/hook/%.o: src/hook/%.c $(HOOK_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -fno-stack-protector -c -o $@ $<

$(B)/hook/hook_entry.o $(B)/hook/hook_static_entry.o: $(B)/hook/%.o: src/hook/%.S
	@mkdir -p $(dir $@)
	$(CC) -fPIC -c -o $@ $<

$(B)/libusnet-hook.a: $(HOOK_OBJS)
	rm -f $@ && ar rcs $@ $^

# The x86-64 system-call names, from the kernel headers.
HOOK_UNISTD := /usr/include/x86_64-linux-gnu/asm/unistd_64.h
$(B)/hook/syscall_names.c: $(HOOK_UNISTD) src/hook/build.mk
	@mkdir -p $(dir $@)
	{ echo '/* generated from $(HOOK_UNISTD) by src/hook/build.mk */'; \
	  echo '#include "syscall_names.h"'; \
	  echo 'const char *const usnet_syscall_names[USNET_SYSCALL_MAX] = {'; \
	  awk '$$1 == "#define" && $$2 ~ /^__NR_/ && $$3 ~ /^[0-9]+$$/ && $$3 < 512 { \
		sub(/^__NR_/, "", $$2); printf "\t[%s] = \"%s\",\n", $$3, $$2 }' $<; \
	  echo '};'; } > $@.tmp && mv $@.tmp $@

$(B)/hook/syscall_names.o: $(B)/hook/syscall_names.c src/hook/syscall_names.h
	$(CC) $(CFLAGS_COMMON) -Isrc/hook -c -o $@ $<

$(B)/hook/trace_preload.o: src/hook/trace_preload.c src/hook/syscall_names.h src/hook/trace_counts.h include/usnet/hook.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(HOOK_GR_FLAGS) -c -o $@ $<

$(B)/libusnet-trace.so: $(B)/hook/trace_preload.o $(B)/hook/syscall_names.o $(B)/libusnet-hook.a
	$(CC) -shared -o $@ $(B)/hook/trace_preload.o $(B)/hook/syscall_names.o \
		$(B)/libusnet-hook.a $(HOOK_LDLIBS) -Wl,-z,now -Wl,-z,noexecstack

# `usnet trace` prints names from the same table.
CLI_LIBS += $(B)/hook/syscall_names.o

# The front end's table layout and names come from here too.
$(B)/usnet: src/hook/trace_counts.h src/hook/syscall_names.h
