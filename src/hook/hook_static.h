/*
 * usnet hook — statically linked programs (hook_static.c, hook_static_entry.S).
 *
 * A static program is started by usnet-exec (src/loader/), a small dynamic
 * program that has the hook preloaded, maps the static image and jumps to
 * its entry.  The program's own libc (or Go's runtime) then points %fs at
 * its own thread block, while the hook and the handler behind it are built
 * against the loader's glibc and reach their thread-local data through %fs.
 * So each thread keeps two thread pointers: %gs base holds the hook's (the
 * loader's glibc thread block), %fs base the program's; every entry into
 * the hook from the program (the SIGSYS and SIGSEGV handlers; the program
 * runs under Syscall User Dispatch alone) swaps %fs to the hook's with
 * wrfsbase and back on the way out.  The program's arch_prctl(ARCH_SET_FS)
 * is kept as the value to go back to, its brk gets a heap of its own (the
 * loader's glibc keeps the kernel's), and a new thread or a vfork child
 * gets a thread block of the hook's own from a helper thread that issues
 * its clone (hook_static_clone.c).
 *
 * Not a public contract: usnet-exec reaches usnet_hook_static_start by
 * dlsym in the preloaded library.
 */
#ifndef USNET_HOOK_STATIC_H
#define USNET_HOOK_STATIC_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "hook_internal.h"

/* Set at install when USNET_STATIC_EXEC says usnet-exec is the program. */
HOOK_HIDDEN extern bool hook_static_on;

/* Reads USNET_STATIC_EXEC (usnet_hook_install, before SUD is enabled). */
HOOK_HIDDEN void hook_static_configure(void);

/* The address to install as the kernel's handler of sig: real itself, or
 * with static programs the entry that switches %fs around it. */
HOOK_HIDDEN unsigned long hook_static_sig_handler(int sig, void (*real)(int, siginfo_t *, void *));

/* The calls a static program makes that the hook answers itself once the
 * handler passed them (thread pointer, brk, threads, exit): an enum
 * hook_action, or -1 for calls issued as for any program.  Calls after_pass. */
HOOK_HIDDEN int hook_static_pass(struct hook_frame *f, struct usnet_syscall *sc);

/* The static program's path when path (the program's pointer) names
 * /proc/self/exe (or thread-self, or our pid's), else NULL. */
HOOK_HIDDEN const char *hook_static_own_exe(const char *path);

/* --- hook_exec_static.c --- */
/* Reads USNET_EXEC_PATH and USNET_STRICT from the start-up environment,
 * and whether the CPU and kernel allow FSGSBASE (HWCAP2). */
HOOK_HIDDEN void hook_exec_static_configure(char **envp);
/* Whether static programs can be hooked here (FSGSBASE). */
HOOK_HIDDEN bool hook_static_fsgsbase(void);
/* An execve/execveat (sc) of a statically linked program becomes one of
 * usnet-exec; *map, *map_len: memory the new call points into, for the
 * caller to unmap when it fails.  0 (sc changed or not), or -errno to
 * answer the call with (refused under USNET_STRICT=1, after one line). */
HOOK_HIDDEN long hook_exec_static_route(struct usnet_syscall *sc, void **map, size_t *map_len);

/* --- hook_static_clone.c --- */
/* A clone/clone3/vfork that shares memory or starts on a new stack, issued
 * for the program by a helper thread whose thread block the child takes:
 * the child's tid (parent's result), or -errno. */
HOOK_HIDDEN long hook_static_clone(const struct usnet_syscall *sc);
/* Unmaps the alternate stack the hook gave the thread whose thread block
 * this is (its helper calls it once the thread is gone). */
HOOK_HIDDEN void hook_static_free_altstack(void);
/* The SIGSYS handler's context (set by it in static mode): the registers
 * a clone is issued with. */
HOOK_HIDDEN extern __thread const void *hook_static_uc __attribute__((tls_model("initial-exec")));

/* --- hook_static_entry.S --- */
HOOK_HIDDEN void hook_static_sig_entry(int sig, siginfo_t *si, void *uc);
HOOK_HIDDEN void hook_static_prog_sig_entry(int sig, siginfo_t *si, void *uc);
/* The program's own handlers, by signal (0: none of its own). */
HOOK_HIDDEN extern uintptr_t hook_static_prog_real[65];
HOOK_HIDDEN extern uintptr_t hook_static_sig_real[65];
/* This thread's program thread pointer and depth of hook entries
 * (thread-local data of the hook's thread block). */
HOOK_HIDDEN extern __thread uintptr_t hook_static_program_fs __attribute__((tls_model("initial-exec")));
HOOK_HIDDEN extern __thread long hook_static_depth __attribute__((tls_model("initial-exec")));
/* The lowest byte of the program's alternate signal stack that a handler
 * run there by hook_static_prog_sig_entry may use (0: none runs there). */
HOOK_HIDDEN extern __thread uintptr_t hook_static_prog_alt_low __attribute__((tls_model("initial-exec")));
/* The program's stack pointer when the outermost SIGSYS entry took it. */
HOOK_HIDDEN extern __thread uintptr_t hook_static_prog_sp __attribute__((tls_model("initial-exec")));

/* Where hook_static_prog_sig_entry runs the program's handler of sig: 0
 * for the stack it was entered on, else a stack pointer on the program's
 * own alternate signal stack (see hook_static.c).  entry_fs: %fs as the
 * signal found it. */
HOOK_HIDDEN uintptr_t hook_static_forward_sp(int sig, const void *uc, uintptr_t entry_fs);

/* What usnet-exec tells the hook before jumping to the program. */
struct usnet_hook_static_image {
	uintptr_t brk_start;   /* the page after the image: the program's heap starts here */
	const char *path;      /* the program's absolute path: /proc/self/exe's link */
};

/* Called by usnet-exec on its main thread just before the jump: 0, or
 * -errno with a one-line reason in err. */
int usnet_hook_static_start(const struct usnet_hook_static_image *img, char *err, size_t errlen)
	__attribute__((visibility("default")));

#endif
