# usnet-exec (src/loader/): the loader `usnet run` and `usnet trace` start a
# statically linked program with.  A dynamic PIE, so that the hook's library
# can be preloaded into it and the program's fixed addresses stay free.
ALL += $(B)/usnet-exec

$(B)/usnet-exec: src/loader/usnet_exec.c src/hook/hook_static.h src/hook/hook_internal.h | $(B)
	$(CC) $(CFLAGS_COMMON) -fPIE -pie -o $@ $< -ldl
