/*
 * usnet hook — what the parts of src/hook/ share (not a public contract).
 *
 * Pieces:
 *   hook_entry.S     the "raw" section: trampoline entry, the only system-call
 *                    sites the hook itself uses, clone/vfork re-issue paths,
 *                    XSAVE helper.  Never rewritten; SUD's allowed range.
 *   hook_page0.c     the trampoline at address 0 and the rewritten-site bitmap
 *   hook_maps.c      /proc/self/maps parser (no stdio)
 *   hook_rewrite.c   finding and rewriting syscall/sysenter with capstone
 *   hook_cache.c     per-file cache of syscall offsets (start-up time)
 *   hook_dispatch.c  the C dispatcher shared by both entries (general regs)
 *   hook_sud.c       Syscall User Dispatch: SIGSYS handler
 *   hook_install.c   usnet_hook_install(): choosing and enabling the mode
 *   hook_log.c       tiny formatting and raw write(2) logging
 */
#ifndef USNET_HOOK_INTERNAL_H
#define USNET_HOOK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>

#include "usnet/hook.h"

#define HOOK_HIDDEN __attribute__((visibility("hidden")))

/* Register state of a hooked call, built by the asm entry (rewrite) or from
 * the signal context (SUD).  Offsets are used by hook_entry.S.  Its first
 * eight fields have the layout of struct usnet_syscall: the rewrite path
 * hands them to the handler as they are (no copy), and the program's own
 * argument registers are kept apart (orig_*), given back on return. */
struct hook_frame {
	long rax;        /*  0: system-call number in, result out */
	long rdi;        /*  8 */
	long rsi;        /* 16 */
	long rdx;        /* 24 */
	long r10;        /* 32 */
	long r8;         /* 40 */
	long r9;         /* 48 */
	uintptr_t site;  /* 56: address after the syscall instruction */
	uintptr_t rsp;   /* 64: stack pointer at entry (points at the return address) */
	long ret;        /* 72: the parent's result of a clone issued by the asm */
	/* 80: a private copy of clone3's arguments (kernel reads it). */
	unsigned char clone3_args[128];
	/* 208: the program's argument registers, which the handler or a
	 * clone may have changed in the fields above (rewrite path) */
	long orig_rdi, orig_rsi, orig_rdx, orig_r10, orig_r8, orig_r9;
	/* 256: what this thread's hook-stack slot held before the entry took
	 * it (struct hook_thread_stack.top), put back when the frame is left */
	uintptr_t stack_prev;
	/* 264: the TLS offset of that slot (struct hook_thread_stack) */
	long tstack_off;
	/* 272: the program's arithmetic flags in the upper half (lahf's ah,
	 * and OF in al), put back before the call is issued or answered, as
	 * the kernel keeps them */
	long flags;
	long pad;
};
#define HOOK_FRAME_SIZE 288
_Static_assert(sizeof(struct hook_frame) == HOOK_FRAME_SIZE, "hook_entry.S relies on the layout");
_Static_assert(__builtin_offsetof(struct hook_frame, rdi) == __builtin_offsetof(struct usnet_syscall, args) &&
	       __builtin_offsetof(struct hook_frame, r9) == __builtin_offsetof(struct usnet_syscall, args[5]) &&
	       __builtin_offsetof(struct hook_frame, site) == __builtin_offsetof(struct usnet_syscall, site) &&
	       sizeof(long) == sizeof(uintptr_t),
	       "the frame starts with a struct usnet_syscall");

/* Each thread's hook stack (hook_entry.S): the entry builds its frame and
 * runs the handler there, not on the program's stack, which may be a
 * goroutine's few KiB.  Allocated on a thread's first hooked call, freed when
 * the thread exits through the hook.  A signal handler that runs while the
 * stack is in use (top == 1), and a thread without one, use the current
 * stack instead. */
#define HOOK_STACK_SIZE (256 * 1024)   /* usable bytes, above a guard page */
struct hook_thread_stack {
	uintptr_t top;    /* 0: none yet; 1: in use; else the top of this thread's stack */
	uintptr_t saved;  /* top to put back after a fork-like call (children copy 1) */
};
HOOK_HIDDEN extern __thread struct hook_thread_stack usnet_hook_tstack
	__attribute__((tls_model("initial-exec")));

/* What the asm entry must do after the dispatcher returned. */
enum hook_action {
	HOOK_ACT_DONE = 0,          /* result in frame->rax; return to the site */
	HOOK_ACT_CLONE_STACK = 1,   /* issue clone/clone3 whose child starts on a new stack
	                             * (the site address is already pushed on it) */
	HOOK_ACT_VFORK = 2,         /* issue vfork-like call (child shares this stack) */
	HOOK_ACT_FORK_STACK = 3,    /* as CLONE_STACK, for a child with its own memory */
	HOOK_ACT_REISSUE = 4,       /* SUD: send the program to usnet_hook_reissue */
	HOOK_ACT_ISSUE = 5,         /* pass-through: the entry issues the call (args unchanged)
	                             * and returns straight to the site */
	HOOK_ACT_EXIT = 6,          /* exit(2) of a thread: the entry frees the thread's hook
	                             * stack (which it is leaving) and issues it */
};

/* --- hook_entry.S --- */
HOOK_HIDDEN void usnet_hook_entry(void);          /* trampoline target */
HOOK_HIDDEN void usnet_hook_reissue(void);        /* SUD: issue a clone/vfork from program context */
HOOK_HIDDEN void usnet_hook_sigreturn_stub(void); /* SUD: rt_sigreturn from the allowed range */
HOOK_HIDDEN void usnet_hook_sud_restorer(void);   /* SIGSYS handler's sa_restorer */
HOOK_HIDDEN void usnet_hook_fast_issue(void);     /* `syscall; ret` for the page-0 fast path */
HOOK_HIDDEN extern const char usnet_hook_raw_start[], usnet_hook_raw_end[];

/* The kernel's struct sigaction (rt_sigaction with a sigsetsize of 8). */
struct k_sigaction {
	unsigned long handler, flags, restorer, mask;
};
#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000
#endif

/* --- hook_dispatch.c --- */
struct hook_state {
	struct usnet_hook_config cfg;
	bool installed;
	bool rewrite_on;        /* page 0 trampoline in place */
	bool sud_on;            /* Syscall User Dispatch enabled */
	bool sud_rewrite;       /* auto: rewrite sites SUD catches */
	uintptr_t vdso_start, vdso_end;
	/* never rewritten: the library holding the hook, or only its raw section
	 * when the hook is linked into the program */
	uintptr_t self_start, self_end;
	unsigned long self_ino, self_dev;   /* 0 when linked into the program */
	/* one bit per byte of the address space: rewritten sites (hook_page0.c) */
	uint8_t *site_bitmap;
	/* slot site % 65536: a rewritten site (hook_page0.c); NULL when absent */
	uintptr_t *site_cache;
	/* the calls the handler and after_pass get (usnet_hook_set_interest) */
	bool interest_all;
	uint64_t interest[USNET_HOOK_NR_COUNT / 64];
	bool fast_allowed;      /* the page-0 fast path may be used (USNET_HOOK_FAST) */
	bool site_cache_allowed; /* ... with the site cache (USNET_HOOK_FAST) */
	bool page0_fast;        /* it is written and chain 1 leads to it */
	bool segv_managed;      /* rt_sigaction(SIGSEGV) goes to hook_fault.c */
	bool segv_ours;         /* the SIGSEGV action is the hook's (hook_fault.c) */
};
HOOK_HIDDEN extern struct hook_state hook_state;

/* Whether the handler and after_pass are for this call (the interest set). */
static inline bool hook_wants(long nr)
{
	if (__atomic_load_n(&hook_state.interest_all, __ATOMIC_RELAXED))
		return true;
	return (unsigned long)nr < USNET_HOOK_NR_COUNT &&
	       ((__atomic_load_n(&hook_state.interest[nr >> 6], __ATOMIC_RELAXED) >> (nr & 63)) & 1);
}

/* Whether a callback exists that wants this call. */
static inline bool hook_callbacks_want(long nr)
{
	return (hook_state.cfg.handler || hook_state.cfg.after_pass) && hook_wants(nr);
}

/* Calls the hook must see through (the dispatcher's pass_call) rather than
 * issue blindly: they change the stack, the thread, the image or the code,
 * or (with SUD) the signal state the hook relies on. */
static inline bool hook_needs_care(long nr)
{
	switch (nr) {
	case SYS_clone:
	case SYS_clone3:
	case SYS_vfork:
	case SYS_fork:
	case SYS_execve:
	case SYS_execveat:
	case SYS_mmap:
	case SYS_mprotect:
	case SYS_pkey_mprotect:
	case SYS_rt_sigaction:
	case SYS_rt_sigprocmask:
	case SYS_sigaltstack:
	case SYS_exit:
		return true;
	default:
		return false;
	}
}

/* What the fast path reads, kept in the raw section next to the entry code
 * (hook_entry.S) so that a hooked call touches one page less: after every
 * system call each page can cost a TLB miss.  Written once at install. */
struct hook_fast {
	usnet_hook_handler handler;
	void (*after_pass)(const struct usnet_syscall *sc, long ret);
	uint8_t *site_bitmap;
	/* 24: the offset of usnet_hook_tstack from the thread pointer (the
	 * entry reads it here, not from the GOT: one page less) */
	long tstack_off;
};
_Static_assert(__builtin_offsetof(struct hook_fast, tstack_off) == 24, "hook_entry.S relies on it");
HOOK_HIDDEN extern struct hook_fast usnet_hook_fast;
/* Copies hook_state into usnet_hook_fast (makes its page writable briefly). */
HOOK_HIDDEN int hook_fast_publish(void);
/* This thread's SUD selector (hook_sud.c): BLOCK, ALLOW around the handler. */
HOOK_HIDDEN extern __thread volatile char hook_sud_selector __attribute__((tls_model("initial-exec")));
#define HOOK_SUD_ALLOW 0
#define HOOK_SUD_BLOCK 1

/* Called by the asm entry with the frame; returns an enum hook_action. */
HOOK_HIDDEN int usnet_hook_dispatch(struct hook_frame *f);
/* Called by usnet_hook_reissue (SUD path): prepares a clone/vfork already
 * approved by the handler; returns an enum hook_action. */
HOOK_HIDDEN int usnet_hook_prepare_special(struct hook_frame *f);
/* The common part for the SIGSYS handler: handler, special cases, issue
 * (special actions are then re-issued via usnet_hook_reissue).  saved_mask
 * is the signal mask in the SIGSYS frame, which the kernel restores when the
 * handler returns: rt_sigprocmask changes it instead of the live mask. */
HOOK_HIDDEN int hook_dispatch_sud(struct hook_frame *f, unsigned long *saved_mask);
/* Copies from/to the program's memory through the kernel: false (and no
 * fault) when the address is bad. */
HOOK_HIDDEN bool hook_user_read(void *dst, const void *src, size_t n);
HOOK_HIDDEN bool hook_user_write(void *dst, const void *src, size_t n);
/* As much of n bytes as is readable from src (up to the first bad page). */
HOOK_HIDDEN size_t hook_user_read_some(void *dst, const void *src, size_t n);
/* In a child after fork-like calls (asm calls this on the child's stack):
 * SUD back on (the kernel does not pass it on), then the user's callback. */
HOOK_HIDDEN void usnet_hook_child_after_fork(void);
/* In the parent after a clone issued from the asm (frame->ret is the
 * result): the after_pass callback. */
HOOK_HIDDEN void usnet_hook_after_special(struct hook_frame *f);
/* In a new thread (clone with CLONE_VM and a stack): SUD back on. */
HOOK_HIDDEN void usnet_hook_thread_start(void);

/* --- hook_page0.c --- */
HOOK_HIDDEN int hook_page0_map(char *err, size_t errlen);
/* Writes the fast path's table from the interest set (and, the first time,
 * its code, leading chain 1 to it) when the fast path is allowed and the
 * CPU has BMI2; 0 or -errno. */
HOOK_HIDDEN int hook_page0_update(void);
HOOK_HIDDEN int hook_bitmap_init(void);
HOOK_HIDDEN void hook_bitmap_set(uintptr_t insn);
static inline bool hook_bitmap_test(uintptr_t insn)
{
	uint8_t *bits = usnet_hook_fast.site_bitmap;
	uintptr_t site = insn + 2;   /* the bit is set at the return address */
	if (site >> 47 || !bits)
		return false;
	return (bits[site >> 3] >> (site & 7)) & 1;
}
/* Report a call into page 0 from a site that was not rewritten; never returns. */
HOOK_HIDDEN void hook_report_stray_call(uintptr_t ret_addr) __attribute__((noreturn));

/* --- hook_fault.c --- */
HOOK_HIDDEN long hook_probe_read(const void *p);
HOOK_HIDDEN long hook_probe_write(void *p);
HOOK_HIDDEN extern const char hook_probe_read_insn[], hook_probe_write_insn[], hook_probe_fixup[];
/* Puts the hook's SIGSEGV handler in place if the action is the default. */
HOOK_HIDDEN void hook_fault_install(void);
/* rt_sigaction for SIGSEGV while page 0 is in use: the program's view. */
HOOK_HIDDEN long hook_fault_sigaction(const struct usnet_syscall *sc);

/* --- hook_maps.c --- */
struct hook_mapping {
	uintptr_t start, end;
	unsigned long offset;
	unsigned long dev_major, dev_minor, ino;
	int prot;         /* PROT_* */
	bool priv;
	char path[256];   /* "" for anonymous */
};
/* Calls fn for each line of /proc/self/maps; stops when fn returns nonzero
 * and returns that value; -errno when the file cannot be read. */
HOOK_HIDDEN int hook_maps_each(int (*fn)(const struct hook_mapping *m, void *arg), void *arg);
/* Finds the mapping containing addr; 0 when found. */
HOOK_HIDDEN int hook_maps_find(uintptr_t addr, struct hook_mapping *out);

/* --- hook_rewrite.c (normal code: call through usnet_hook_call_saved) --- */
/* Rewrites every syscall/sysenter in [start,end) whose protection is prot.
 * m (may be NULL) names the file for the cache.  Returns sites rewritten. */
HOOK_HIDDEN long hook_rewrite_region(uintptr_t start, uintptr_t end, int prot,
				     const struct hook_mapping *m);
/* True while the disassembler library is being loaded (its code is left
 * alone). */
HOOK_HIDDEN extern volatile bool hook_loading_disassembler;
/* Rewrites every executable mapping of the process (start-up). */
HOOK_HIDDEN long hook_rewrite_all(void);
/* Rewrites the single syscall instruction ending at site (SUD auto mode);
 * general registers only.  Returns 0 or -errno. */
HOOK_HIDDEN int hook_rewrite_one(uintptr_t site);
/* Patches one 2-byte instruction at insn to `call *%rax` (0xff 0xd0),
 * the page already writable. */
HOOK_HIDDEN void hook_patch_site(uintptr_t insn);
/* Whether addr lies in memory the rewriter must leave alone. */
HOOK_HIDDEN bool hook_addr_skipped(uintptr_t addr);

/* --- hook_cache.c --- */
struct hook_cache_key {
	unsigned long dev, ino, size, mtime_sec, mtime_nsec, offset, length;
};
/* Loads the offsets of the syscall instructions recorded for key.
 * Returns the count (>= 0) with *offs a mmap'ed array (free with
 * hook_cache_free), or -1 when absent. */
/* Sets the cache directory (NULL: the default; "" or "off": no cache). */
HOOK_HIDDEN void hook_cache_init(const char *dir);
HOOK_HIDDEN long hook_cache_load(const struct hook_cache_key *key, uint32_t **offs);
HOOK_HIDDEN void hook_cache_free(uint32_t *offs, long n);
HOOK_HIDDEN void hook_cache_store(const struct hook_cache_key *key, const uint32_t *offs, long n);

/* --- hook_env.c (general registers only) --- */
/* Remembers LD_PRELOAD and USNET_* from the start-up environment. */
HOOK_HIDDEN void hook_env_capture(char **envp);
/* envp plus the remembered entries it lacks (a raw mapping of *map_len
 * bytes to unmap if execve fails), or NULL when nothing is missing. */
HOOK_HIDDEN char **hook_env_for_exec(char **envp, size_t *map_len);

/* --- hook_sud.c --- */
HOOK_HIDDEN int hook_sud_enable(char *err, size_t errlen);
HOOK_HIDDEN int hook_sud_set(bool on);   /* this thread: on/off (execve) */
/* Gives this thread an alternate signal stack when it has none: SIGSYS frames
 * (several KiB with AVX-512 state) must not land on small stacks such as
 * goroutine stacks. */
HOOK_HIDDEN void hook_sud_give_altstack(void);
/* Frees that stack when the thread ends (unless a signal is running on it). */
HOOK_HIDDEN void hook_sud_take_altstack(void);

/* --- hook_log.c (general registers only) --- */
struct hook_buf {
	char *p;
	size_t len, cap;
};
HOOK_HIDDEN void hook_buf_str(struct hook_buf *b, const char *s);
HOOK_HIDDEN void hook_buf_dec(struct hook_buf *b, long v);
HOOK_HIDDEN void hook_buf_hex(struct hook_buf *b, unsigned long v);
HOOK_HIDDEN void hook_buf_char(struct hook_buf *b, char c);
/* Writes all of buf to fd with raw write(2). */
HOOK_HIDDEN void hook_write_all(int fd, const char *p, size_t len);
/* "usnet-hook: " + msg + "\n" on stderr when level <= verbosity. */
HOOK_HIDDEN void hook_log(int level, const char *msg);
HOOK_HIDDEN void hook_log_hex(int level, const char *msg, unsigned long v);
HOOK_HIDDEN void hook_log_dec(int level, const char *msg, long v);
HOOK_HIDDEN size_t hook_strlen(const char *s);
HOOK_HIDDEN void hook_copy_str(char *dst, size_t cap, const char *src);
HOOK_HIDDEN void hook_memcpy(void *dst, const void *src, size_t n);
HOOK_HIDDEN int hook_strncmp(const char *a, const char *b, size_t n);

/* usnet_hook_syscall under a hidden name: a direct call, no PLT. */
HOOK_HIDDEN long hook_raw_syscall(long nr, long a0, long a1, long a2, long a3, long a4, long a5);

/* Shorthand for the raw call. */
#define RAW0(nr) hook_raw_syscall((nr), 0, 0, 0, 0, 0, 0)
#define RAW1(nr, a) hook_raw_syscall((nr), (long)(a), 0, 0, 0, 0, 0)
#define RAW2(nr, a, b) hook_raw_syscall((nr), (long)(a), (long)(b), 0, 0, 0, 0)
#define RAW3(nr, a, b, c) hook_raw_syscall((nr), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define RAW4(nr, a, b, c, d) hook_raw_syscall((nr), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define RAW6(nr, a, b, c, d, e, f) \
	hook_raw_syscall((nr), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

#endif
