/*
 * usnet — the system-call hook contract (src/hook/).
 *
 * The hook makes every system call of the program (libc, syscall(), inline
 * `syscall`, Go's runtime, code loaded or generated later) reach one handler
 * function first.  On x86-64 it rewrites each `syscall`/`sysenter` into a
 * jump to a stub of its own near the code (moving the neighbouring
 * instructions there when the syscall's 2 bytes cannot hold the jump), which
 * calls the hook below the red zone; Syscall User Dispatch (SUD) catches
 * what rewriting could not take, or serves alone.  The zpoline-style
 * trampoline at address 0 (`call *%rax`) is an explicit opt-in
 * (USNET_HOOK_PAGE0): it maps page 0 and writes into the red zone.
 *
 * Handler rules
 *  - It is called for every system call except rt_sigreturn (which the hook
 *    issues itself).  sc->nr and sc->args[] are the call; the handler may
 *    change them before passing the call on.
 *  - It returns the call's result (a value or -errno), or USNET_HOOK_PASS to
 *    have the hook issue the (possibly changed) call itself at the original
 *    context.  Calls that change the stack or the thread — clone/clone3 with
 *    a new stack, vfork, fork, execve that succeeds — must be passed
 *    (USNET_HOOK_PASS): only the hook can issue them correctly.
 *  - It runs with only the general registers saved, so it (and everything it
 *    calls on the pass-through path) must be built with -mgeneral-regs-only.
 *    Before running code that may touch vector/FPU registers (anything built
 *    normally, like the stack), wrap it in usnet_hook_call_saved(), which
 *    saves the full extended state (XSAVE, per XCR0) around the call.
 *  - Its own system calls go through usnet_hook_syscall(), a site that is
 *    never rewritten.  It must not take the program's libc locks (stdio,
 *    malloc): signals can arrive while the program holds them.
 *
 * What the implementation (src/hook/) adds to the above
 *  - after_pass is also called in the parent of a clone/clone3 the hook
 *    issued itself (with the parent's result), never for vfork-like calls
 *    (CLONE_VM without a new stack), whose parent resumes only after the
 *    child has left the shared stack.
 *  - child_after_fork also runs in vfork children (on the parent's stack, as
 *    vfork children do) and in clone children without CLONE_VM that start on
 *    a new stack.
 *  - The hook itself intercepts: mmap/mprotect/pkey_mprotect that make
 *    memory executable (rewritten before the call returns); execve/execveat
 *    (LD_PRELOAD and USNET_* put back into an environment that lacks them;
 *    SUD is off across the call); with SUD on, rt_sigaction/rt_sigprocmask
 *    never block or take over SIGSYS, and sigaltstack is issued outside the
 *    SIGSYS handler.  The handler still sees all of these first.
 *  - Nothing is written below the program's stack pointer (its 128-byte red
 *    zone survives a hooked call) and page 0 stays unmapped, except in
 *    USNET_HOOK_PAGE0, where a rewritten `syscall` becomes `call *%rax`,
 *    whose return address lands in the red zone's last 8 bytes.
 *  - Stack: on the rewrite path the handler runs on a per-thread hook stack
 *    of 256 KiB (never on the program's stack, which may be a goroutine's
 *    few KiB), except in a signal handler that interrupted the hook (it
 *    then continues on that same hook stack) or when the stack cannot be
 *    mapped; under SUD it runs in the SIGSYS handler on a 64 KiB alternate
 *    signal stack the hook gives each thread that has none (shared with the
 *    kernel's signal frame, a few KiB).  Handlers should stay well below
 *    32 KiB of stack.
 *  - Under SUD, rt_sigprocmask changes the mask the SIGSYS handler's return
 *    restores (so it lasts); a handler that answers rt_sigprocmask itself
 *    must do the same or the change is lost.
 *  - Numbers (USNET_HOOK_PAGE0 only; otherwise every number reaches the
 *    hook and the kernel as it is): the trampoline covers 0 .. 3399 and
 *    4096 .. 8099 (invalid
 *    numbers there get -ENOSYS from the kernel), except 513..516, which
 *    x86-64 reserves for x32 and never assigns to a 64-bit call.  A rewritten
 *    site that issues 3400..4095 or 8100..8191 runs trampoline code at that
 *    address (the fast path's code and table), which the hook cannot tell
 *    from a call.  Negative numbers and numbers from 8192 on send the site
 *    to an address outside the trampoline; while the program leaves SIGSEGV
 *    at its default action the hook's SIGSEGV handler finishes such a call
 *    as Linux would (the low 32 bits' call when they name one below 512,
 *    else -ENOSYS; such a call that ends in -ENOSYS reaches no handler); a
 *    program with a SIGSEGV handler of its own gets the fault instead (and
 *    so does one whose number is an address that is mapped executable).
 *  - Registers: a hooked call leaves every register the kernel keeps as it
 *    was, the arithmetic flags included (not in the child of a clone, vfork
 *    or fork, where they are undefined); rcx and r11 are clobbered, as the
 *    kernel clobbers them (their values differ from the kernel's).
 *  - Interest set (usnet_hook_config.interest, usnet_hook_set_interest()):
 *    a handler that cares about only some calls names them, and every other
 *    call skips the handler and after_pass: it is issued by the site's stub
 *    (or the page-0 trampoline) itself, without building a frame or
 *    switching stacks.
 *    The hook's own special cases above still apply to every call.
 */
#ifndef USNET_HOOK_H
#define USNET_HOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Returned by a handler: "issue this call for real". A value no system call
 * returns (a non-canonical address, below every -errno). */
#define USNET_HOOK_PASS ((long)0x8000000000000000UL)

struct usnet_syscall {
	long nr;
	long args[6];
	uintptr_t site;   /* address of the instruction after the hooked syscall */
};

typedef long (*usnet_hook_handler)(struct usnet_syscall *sc);

/* A set of system-call numbers, one bit each for 0 .. USNET_HOOK_NR_COUNT-1
 * (every x86-64 number assigned to a 64-bit call is below 512).  Numbers
 * outside that range never belong to a set: a handler with an interest set
 * does not see them (the kernel answers them with -ENOSYS). */
#define USNET_HOOK_NR_COUNT 512
struct usnet_hook_interest {
	uint64_t bits[USNET_HOOK_NR_COUNT / 64];
};

/* Adds nr to the set (numbers outside 0 .. USNET_HOOK_NR_COUNT-1 are ignored). */
static inline void usnet_hook_interest_add(struct usnet_hook_interest *set, long nr)
{
	if (nr >= 0 && nr < USNET_HOOK_NR_COUNT)
		set->bits[nr >> 6] |= 1ULL << (nr & 63);
}

/* Whether nr is in the set. */
static inline bool usnet_hook_interest_has(const struct usnet_hook_interest *set, long nr)
{
	return nr >= 0 && nr < USNET_HOOK_NR_COUNT && ((set->bits[nr >> 6] >> (nr & 63)) & 1);
}

enum usnet_hook_mode {
	USNET_HOOK_AUTO = 0,  /* rewrite through stubs; SUD too when something could not be
	                       * rewritten at start-up (or nothing could) */
	USNET_HOOK_REWRITE,   /* rewriting through stubs only (the rest is not hooked) */
	USNET_HOOK_SUD,       /* Syscall User Dispatch only */
	USNET_HOOK_PAGE0,     /* the page-0 trampoline + SUD; fails if page 0 cannot be
	                       * mapped.  Null pointers stop faulting where the CPU lacks
	                       * protection keys, and the red zone's last slot is written */
	USNET_HOOK_REWRITE_SUD, /* rewrite through stubs, SUD always on (code written
	                       * into memory that is already executable, e.g. RWX JITs) */
};

struct usnet_hook_config {
	usnet_hook_handler handler;
	enum usnet_hook_mode mode;
	/* Called in the child, on the child's stack, right after a fork-like call
	 * (fork, vfork, clone without CLONE_VM) returned 0 there.  May be NULL. */
	void (*child_after_fork)(void);
	/* Called after a call passed with USNET_HOOK_PASS returned, with its
	 * result (not for calls that do not return: exit, a successful execve).
	 * For tracing; NULL when not needed (the fast path then skips it). */
	void (*after_pass)(const struct usnet_syscall *sc, long ret);
	/* Log a line of this much detail: 0 errors, 1 info, 2 debug. */
	int verbosity;
	/* The calls handler and after_pass are for (copied at install); NULL
	 * (the default): every call.  Calls outside the set are passed on as
	 * if the handler had returned USNET_HOOK_PASS, without calling it or
	 * after_pass; on the rewrite path they take the trampoline's fast path
	 * (no frame, no stack switch, no C).  Changed later with
	 * usnet_hook_set_interest(). */
	const struct usnet_hook_interest *interest;
};

/* Install the hook for the whole process (all threads that exist now and
 * later, and code mapped later).  Returns 0, or -errno with a one-line reason
 * in err (for example that page 0 cannot be mapped: "vm.mmap_min_addr is
 * 65536; run as root or set it to 0, or use --hook sud"). */
int usnet_hook_install(const struct usnet_hook_config *cfg, char *err, size_t errlen);

/* Replaces the interest set (NULL: every call) while the hook runs, for
 * instance when the handler starts or stops caring about calls on some
 * descriptors.  May be called from the handler (it makes its own system calls
 * through usnet_hook_syscall()) and from any thread; calls already past the
 * check in other threads finish under the old set.  Each change rewrites a
 * 520-byte table under a lock, so change it on rare events (the first or
 * last socket of a kind), not per call.  Returns 0, or -errno (-EINVAL
 * before usnet_hook_install()). */
int usnet_hook_set_interest(const struct usnet_hook_interest *interest);

/* The mode actually in force after install: "rewrite", "rewrite+sud",
 * "sud" or "page0+sud" (what auto chose, for USNET_HOOK_AUTO). */
const char *usnet_hook_mode_name(void);

/* Issue a system call for real, from a site that is never rewritten or
 * dispatched. */
long usnet_hook_syscall(long nr, long a0, long a1, long a2, long a3, long a4, long a5);

/* Whether the program's memory [p, p+n) can be read (write = 0) or written
 * (write = 1): 0, or -EFAULT, as the kernel answers a bad pointer.  It
 * probes one byte per page (a write probe adds 0 atomically, so the memory
 * keeps its contents), through the hook's SIGSEGV handler; while the
 * program has a SIGSEGV handler of its own it checks nothing and returns 0.
 * n = 0 always passes. */
int usnet_hook_user_check(const void *p, size_t n, int write);

/* Call fn(arg) with the full extended register state saved and restored
 * around it (XSAVE with the XCR0 mask); returns fn's result. */
long usnet_hook_call_saved(long (*fn)(void *), void *arg);

#ifdef __cplusplus
}
#endif
#endif /* USNET_HOOK_H */
