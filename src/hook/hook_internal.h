/*
 * usnet hook — what the parts of src/hook/ share (not a public contract).
 *
 * Pieces:
 *   hook_entry.S     the "raw" section: trampoline entry, the only system-call
 *                    sites the hook itself uses, clone/vfork re-issue paths,
 *                    XSAVE helper.  Never rewritten; SUD's allowed range.
 *   hook_page0.c     the opt-in trampoline at address 0 (--hook page0), the
 *                    set of its rewritten sites, the fast path's table
 *   hook_stub.c      the default rewriting: a jump from each site to a stub
 *                    of its own near the code (no page 0, red zone kept)
 *   hook_maps.c      /proc/self/maps parser (no stdio)
 *   hook_decode.c    an x86-64 instruction decoder: lengths, branches,
 *                    rip-relative operands (what the plans need)
 *   hook_rewrite.c   finding syscall/sysenter with it and planning how
 *                    each is rewritten (what is moved into its stub)
 *   hook_cache.c     per-file cache of those plans (start-up time)
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
	/* 64: where the entry returns: the stack pointer there points at the
	 * return address (the site on the page-0 and SUD paths, a place in
	 * the site's stub on the stub path) */
	uintptr_t rsp;
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
	/* 280: how far below the program's stack pointer rsp is, less the
	 * return address: 0 (page 0, SUD), or the red zone (128) that the
	 * stub path skips before it calls anything */
	long red;
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
/* Stub path (hook_stub.c): a stub calls the stub entry with rax = number,
 * r11 = the site, below the red zone, for a call it cannot issue itself;
 * the entry builds the frame. */
HOOK_HIDDEN void usnet_hook_stub_entry(void);
HOOK_HIDDEN void usnet_hook_reissue(void);        /* SUD: issue a clone/vfork from program context */
HOOK_HIDDEN void usnet_hook_sigreturn_stub(void); /* SUD: rt_sigreturn from the allowed range */
HOOK_HIDDEN void usnet_hook_sud_restorer(void);   /* SIGSYS handler's sa_restorer */
HOOK_HIDDEN void usnet_hook_fast_issue(void);     /* `syscall; ret` for the fast paths under SUD */
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
	bool rewrite_on;        /* sites are rewritten (stubs, or page 0) */
	bool page0;             /* ... to `call *%rax` into the page-0 trampoline */
	bool sud_on;            /* Syscall User Dispatch enabled */
	bool sud_rewrite;       /* auto: rewrite sites SUD catches */
	uintptr_t vdso_start, vdso_end;
	/* never rewritten: the library holding the hook, or only its raw section
	 * when the hook is linked into the program */
	uintptr_t self_start, self_end;
	unsigned long self_ino, self_dev;   /* 0 when linked into the program */
	/* slot site % 65536: a rewritten site (hook_page0.c); NULL when absent */
	uintptr_t *site_cache;
	/* what the rewriting did (start-up and later code) */
	long sites_pad, sites_fwd, sites_back, sites_left, sites_page0;
	/* the calls the handler and after_pass get (usnet_hook_set_interest) */
	bool interest_all;
	uint64_t interest[USNET_HOOK_NR_COUNT / 64];
	bool fast_allowed;      /* the page-0 fast path may be used (USNET_HOOK_FAST) */
	bool site_cache_allowed; /* ... with the site cache (USNET_HOOK_FAST) */
	bool page0_fast;        /* it is written and chain 1 leads to it */
	bool gate_fast;         /* stubs issue calls nobody needs to see themselves (BMI2) */
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
	void *spare;   /* was the page-0 site bitmap; keeps tstack_off at 24 */
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
/* One byte per number (0 .. 519): 1 when a call may be issued without the
 * entry (no callback wants it, the hook need not look at it).  Read by the
 * stubs' gate and the page-0 fast path; written by hook_fast_update. */
#define HOOK_FAST_TABLE_LEN 520
HOOK_HIDDEN extern uint8_t usnet_hook_fast_table[HOOK_FAST_TABLE_LEN];
/* Writes that table from the interest set and, in page-0 mode, the first
 * time, the fast path's code on page 0 (when allowed and the CPU has
 * BMI2); 0 or -errno. */
HOOK_HIDDEN int hook_fast_update(void);
HOOK_HIDDEN bool hook_cpu_has_bmi2(void);
/* The set of page-0 sites (the address after each rewritten instruction):
 * an open-addressing hash set that grows with the code rewritten, read
 * without a lock.  hook_sites_reserve makes room for n more (under the
 * rewriter's lock); hook_site_add returns false when there is none. */
HOOK_HIDDEN int hook_sites_reserve(long n);
HOOK_HIDDEN bool hook_site_add(uintptr_t insn);
HOOK_HIDDEN bool hook_site_known(uintptr_t site);
/* Whether insn is a rewritten page-0 site (its `call *%rax`). */
static inline bool hook_bitmap_test(uintptr_t insn)
{
	return hook_site_known(insn + 2);
}
/* The site cache next to page 0 (hook_page0.c); refilled by the entry. */
HOOK_HIDDEN void hook_site_cache_put(uintptr_t site);
/* Report a call into page 0 from a site that was not rewritten; never returns. */
HOOK_HIDDEN void hook_report_stray_call(uintptr_t ret_addr) __attribute__((noreturn));

/* --- hook_stub.c (general registers only) --- */
/* How one syscall/sysenter of a mapping is rewritten (hook_rewrite.c plans
 * it, hook_cache.c keeps it per file, hook_stub.c carries it out). */
enum hook_plan_kind {
	HOOK_PLAN_NONE = 0,   /* cannot be rewritten: left to SUD (or unhooked) */
	HOOK_PLAN_PAD = 1,    /* the syscall becomes `jmp rel8` to 5 dead padding
	                       * bytes nearby, which become `jmp rel32` to the stub */
	HOOK_PLAN_REGION = 2, /* the syscall and neighbouring instructions become
	                       * `jmp rel32` to the stub, which runs them moved */
};
/* desc[i]: the moved instruction's length (low 4 bits) and how it moves
 * (high 4 bits): 0 as it is, 1..14 the offset of a rip-relative disp32 to
 * adjust, 15 a relative jmp/jcc re-aimed at its old target. */
#define HOOK_DESC_BRANCH 15
#define HOOK_PLAN_MAX_INSNS 8
struct hook_plan {
	uint32_t insn;        /* the syscall's offset in the mapping */
	uint8_t kind;         /* enum hook_plan_kind */
	int8_t rel;           /* PAD: rel8 from insn + 2 to the pad; REGION: region start - insn */
	uint8_t len;          /* REGION: bytes replaced (>= 5) */
	uint8_t counts;       /* REGION: instructions moved before (low 4 bits) and after */
	uint8_t desc[HOOK_PLAN_MAX_INSNS];
};
_Static_assert(sizeof(struct hook_plan) == 16, "the cache stores plans as they are");
/* Rewrites the planned sites of [start, end) (writable now) through stubs;
 * returns how many.  The others are counted in hook_state.sites_left. */
HOOK_HIDDEN long hook_stub_apply(uintptr_t start, uintptr_t end, const struct hook_plan *plans, long n);
/* SUD has just been turned on: every stub issues its calls from the raw
 * section from now on (single-threaded, at start-up). */
HOOK_HIDDEN void hook_stub_sud_on(void);
/* Whether addr lies in one of the hook's stub arenas. */
HOOK_HIDDEN bool hook_stub_owns(uintptr_t addr);

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
/* Rewrites every syscall/sysenter in [start,end) whose protection is prot
 * (through stubs, or to `call *%rax` in page-0 mode).  m (may be NULL)
 * names the file for the cache.  Returns sites rewritten. */
HOOK_HIDDEN long hook_rewrite_region(uintptr_t start, uintptr_t end, int prot,
				     const struct hook_mapping *m);
/* The rewriter's lock, for hook_rewrite_one (a SIGSYS handler: it must
 * not wait for a lock its own thread may hold). */
HOOK_HIDDEN bool hook_rewrite_trylock(void);
HOOK_HIDDEN void hook_rewrite_unlock(void);
/* Rewrites every executable mapping of the process (start-up). */
HOOK_HIDDEN long hook_rewrite_all(void);
/* Rewrites the single syscall instruction ending at site (SUD with the
 * page-0 trampoline); general registers only.  Returns 0 or -errno. */
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
/* Sets the cache directory (NULL: the default; "" or "off": no cache). */
HOOK_HIDDEN void hook_cache_init(const char *dir);
/* Loads the plans recorded for key.  Returns the count (>= 0) with *plans
 * a mmap'ed array (free with hook_cache_free), or -1 when absent. */
HOOK_HIDDEN long hook_cache_load(const struct hook_cache_key *key, struct hook_plan **plans);
HOOK_HIDDEN void hook_cache_free(struct hook_plan *plans, long n);
HOOK_HIDDEN void hook_cache_store(const struct hook_cache_key *key, const struct hook_plan *plans, long n);

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
