/*
 * usnet hook — the hook's side of statically linked programs (see
 * hook_static.h for the design): the two thread pointers, the program's
 * own heap (brk) and the calls that must not reach the kernel as they are.
 * Built with -mgeneral-regs-only like the rest of the dispatcher.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>

#include "hook_static.h"

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)   /* Linux >= 4.7 */
#endif

#define ARCH_SET_GS 0x1001
#define ARCH_SET_FS 0x1002
#define ARCH_GET_FS 0x1003
#define ARCH_GET_GS 0x1004

bool hook_static_on;
uintptr_t hook_static_sig_real[65];
uintptr_t hook_static_prog_real[65];
__thread uintptr_t hook_static_program_fs __attribute__((tls_model("initial-exec")));
__thread long hook_static_depth __attribute__((tls_model("initial-exec")));
__thread uintptr_t hook_static_prog_sp __attribute__((tls_model("initial-exec")));
_Static_assert(__builtin_offsetof(ucontext_t, uc_mcontext.gregs[REG_RSP]) == 160,
	       "UC_RSP in hook_static_entry.S");

/* The alternate signal stack the program set (0, 0: none; recorded, never
 * given to the kernel), and whether it asked for SS_AUTODISARM. */
static __thread uintptr_t prog_alt_lo __attribute__((tls_model("initial-exec")));
static __thread uintptr_t prog_alt_hi __attribute__((tls_model("initial-exec")));
static __thread bool prog_alt_autodisarm __attribute__((tls_model("initial-exec")));

/* The program's heap: [brk_start, brk_cur), mapped page by page. */
static uintptr_t brk_start, brk_cur;
/* What /proc/self/exe reads as: the program, not usnet-exec. */
static char program_path[4096];
static size_t program_path_len;

extern char **environ;

/* Set by usnet_hook_static_start: the program runs. */
static bool started;

void hook_static_configure(void)
{
	/* taken out of the environment: the programs the static one execs
	 * are started as usual (and get it back from usnet-exec if static) */
	hook_exec_static_configure(environ);
	char **out = environ;
	for (char **e = environ; e && *e; e++) {
		if (!hook_strncmp(*e, "USNET_STATIC_EXEC=1", 20))
			hook_static_on = true;
		else
			*out++ = *e;
	}
	if (out)
		*out = NULL;
}

unsigned long hook_static_sig_handler(int sig, void (*real)(int, siginfo_t *, void *))
{
	if (!hook_static_on || sig <= 0 || sig > 64)
		return (unsigned long)real;
	hook_static_sig_real[sig] = (uintptr_t)real;
	return (unsigned long)hook_static_sig_entry;
}

static inline uintptr_t read_fsbase(void)
{
	uintptr_t v;
	__asm__ volatile("rdfsbase %0" : "=r"(v));
	return v;
}

static inline void write_gsbase(uintptr_t v)
{
	__asm__ volatile("wrgsbase %0" : : "r"(v) : "memory");
}

int usnet_hook_static_start(const struct usnet_hook_static_image *img, char *err, size_t errlen)
{
	if (!hook_state.installed || !hook_static_on || !hook_state.sud_on) {
		hook_copy_str(err, errlen, "the hook is not installed for a static program "
			      "(USNET_STATIC_EXEC=1 with Syscall User Dispatch)");
		return -EINVAL;
	}
	if (!hook_static_fsgsbase()) {
		hook_copy_str(err, errlen, "this CPU or kernel does not let programs use FSGSBASE, "
			      "which static programs need");
		return -ENOTSUP;
	}
	brk_start = brk_cur = (img->brk_start + 4095) & ~4095UL;
	program_path_len = hook_strlen(img->path);
	if (program_path_len >= sizeof program_path) {
		hook_copy_str(err, errlen, "the program's path is too long");
		return -ENAMETOOLONG;
	}
	hook_copy_str(program_path, sizeof program_path, img->path);
	/* this thread's hook thread block: the loader's own */
	uintptr_t tp = read_fsbase();
	hook_static_program_fs = 0;   /* usnet-exec jumps with none, as exec leaves it */
	hook_static_depth = 0;
	write_gsbase(tp);
	/* this thread's alternate stack (the hook gave it one at install)
	 * becomes SS_AUTODISARM here, outside any handler: a change made in
	 * a handler running on it would be undone at its sigreturn */
	stack_t cur;
	if (RAW2(SYS_sigaltstack, 0, &cur) == 0 && !(cur.ss_flags & SS_DISABLE) && cur.ss_size) {
		cur.ss_flags = SS_AUTODISARM;
		RAW2(SYS_sigaltstack, &cur, 0);
	}
	started = true;
	return 0;
}

/* brk as Linux answers it: the new end, or the old one when it cannot move. */
static long program_brk(uintptr_t want)
{
	if (want < brk_start)
		return (long)brk_cur;
	uintptr_t old_top = (brk_cur + 4095) & ~4095UL, new_top = (want + 4095) & ~4095UL;
	if (new_top > old_top) {
		long p = RAW6(SYS_mmap, old_top, new_top - old_top, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (p != (long)old_top) {
			if (p > 0 || p < -4095)
				RAW2(SYS_munmap, p, new_top - old_top);
			return (long)brk_cur;
		}
	} else if (new_top < old_top) {
		RAW2(SYS_munmap, new_top, old_top - new_top);
	}
	brk_cur = want;
	return (long)brk_cur;
}

static long program_arch_prctl(long code, uintptr_t addr)
{
	uintptr_t zero = 0;
	switch (code) {
	case ARCH_SET_FS:
		if (addr >= (1UL << 47))
			return -EPERM;
		hook_static_program_fs = addr;
		return 0;
	case ARCH_GET_FS:
		return hook_user_write((void *)addr, &hook_static_program_fs, sizeof hook_static_program_fs)
			       ? 0 : -EFAULT;
	case ARCH_GET_GS:
		return hook_user_write((void *)addr, &zero, sizeof zero) ? 0 : -EFAULT;
	case ARCH_SET_GS:
		hook_log(0, "a static program set its GS base, which usnet keeps for itself; refused");
		return -EINVAL;
	default:
		return USNET_HOOK_PASS;
	}
}

/*
 * Alternate signal stacks.  The SIGSYS handler runs on an alternate stack
 * of the hook's (a goroutine's stack is too small for the frame), and the
 * handler behind it may move to a stack of its own (the switch's).  A
 * signal arriving then would find the kernel thinking the thread is off its
 * alternate stack and put its frame at the top, over the live SIGSYS frame;
 * so the hook's alternate stack is SS_AUTODISARM (off while a handler runs
 * on it: a signal then lands on the stack the thread is on).  The one the
 * program sets with sigaltstack is recorded, never given to the kernel:
 * hook_static_prog_sig_entry runs the program's SA_ONSTACK handlers there,
 * below where the program was when it was on it, as the kernel would (Go's
 * runtime insists on running its handlers there).  The main thread's stack
 * is made SS_AUTODISARM by usnet_hook_static_start; a thread made by
 * hook_static_clone.c starts without one, and its first SIGSYS (on the
 * thread's own stack) sets one in the frame's uc_stack, which the kernel
 * installs at sigreturn.  (A handler running on the alternate stack cannot
 * change it that way: the kernel refuses while the stack is in use.)
 */
#define ALTSTACK_SIZE (64 * 1024)
#define RED_ZONE 128
#define K_MINSIGSTKSZ 2048

/* The program's alternate stack [lo, hi) (0, 0: none), its flags, and which
 * of its handlers want it (SA_ONSTACK). */
static __thread uintptr_t prog_alt_lo __attribute__((tls_model("initial-exec")));
static __thread uintptr_t prog_alt_hi __attribute__((tls_model("initial-exec")));
static __thread bool prog_alt_autodisarm __attribute__((tls_model("initial-exec")));
__thread uintptr_t hook_static_prog_alt_low __attribute__((tls_model("initial-exec")));
static bool prog_onstack[65];
static __thread bool altstack_checked __attribute__((tls_model("initial-exec")));
static __thread void *altstack_given __attribute__((tls_model("initial-exec")));

void hook_static_free_altstack(void)
{
	if (altstack_given)
		RAW2(SYS_munmap, altstack_given, ALTSTACK_SIZE);
	altstack_given = NULL;
}

static inline uintptr_t read_gsbase(void)
{
	uintptr_t v;
	__asm__ volatile("rdgsbase %0" : "=r"(v));
	return v;
}

/* A thread's first passed call: an alternate stack given to a thread
 * without one (made by hook_static_clone.c). */
static void altstack_check(void)
{
	ucontext_t *uc = (ucontext_t *)hook_static_uc;
	if (!uc || hook_static_depth != 1)
		return;
	altstack_checked = true;
	stack_t *st = &uc->uc_stack;
	/* none: SS_DISABLE, or (a thread that never had one) all zero */
	if (!(st->ss_flags & SS_DISABLE) && st->ss_size)
		return;
	long p = RAW6(SYS_mmap, 0, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (p < 0 && p > -4096)
		return;
	st->ss_sp = (void *)p;
	st->ss_size = ALTSTACK_SIZE;
	st->ss_flags = SS_AUTODISARM;
	altstack_given = (void *)p;
}

static bool on_prog_alt(uintptr_t sp)
{
	return sp > prog_alt_lo && sp <= prog_alt_hi;
}

uintptr_t hook_static_forward_sp(int sig, const void *ucv, uintptr_t entry_fs)
{
	if (sig <= 0 || sig > 64 || !prog_onstack[sig] || !prog_alt_hi)
		return 0;
	char here;
	if (on_prog_alt((uintptr_t)&here))
		return 0;   /* nested in a handler there: below it, where the kernel put it */
	const ucontext_t *uc = ucv;
	/* Where the program was: as interrupted; when the hook was, where it
	 * was when it entered the hook (between two handlers: nowhere). */
	uintptr_t was = 0;
	if (entry_fs != read_gsbase())
		was = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
	else if (hook_static_depth > 0)
		was = hook_static_prog_sp;
	uintptr_t to = on_prog_alt(was) ? was - RED_ZONE : prog_alt_hi;
	/* below a handler this wrapper runs there */
	uintptr_t low = hook_static_prog_alt_low;
	if (low && on_prog_alt(low) && low - RED_ZONE < to)
		to = low - RED_ZONE;
	to &= ~15UL;
	return to >= prog_alt_lo + K_MINSIGSTKSZ ? to : 0;
}

/* sigaltstack of the program: recorded, answered as Linux would. */
static long program_sigaltstack(const stack_t *ss, stack_t *old)
{
	const ucontext_t *uc = hook_static_uc;
	if (!uc)
		return USNET_HOOK_PASS;
	bool on = on_prog_alt((uintptr_t)uc->uc_mcontext.gregs[REG_RSP]);
	stack_t want;
	if (ss && !hook_user_read(&want, ss, sizeof want))
		return -EFAULT;
	if (old) {
		stack_t o;
		o.ss_sp = (void *)prog_alt_lo;
		o.ss_size = prog_alt_hi - prog_alt_lo;
		o.ss_flags = (prog_alt_hi ? (on ? SS_ONSTACK : 0) : SS_DISABLE) |
			     (prog_alt_autodisarm ? SS_AUTODISARM : 0);
		if (!hook_user_write(old, &o, sizeof o))
			return -EFAULT;
	}
	if (!ss)
		return 0;
	if (on)
		return -EPERM;
	int mode = want.ss_flags & ~SS_AUTODISARM;
	if (mode != SS_DISABLE && mode != SS_ONSTACK && mode != 0)
		return -EINVAL;
	if (mode == SS_DISABLE) {
		prog_alt_lo = prog_alt_hi = 0;
		prog_alt_autodisarm = false;
		return 0;
	}
	if (want.ss_size < K_MINSIGSTKSZ)
		return -ENOMEM;
	prog_alt_lo = (uintptr_t)want.ss_sp;
	prog_alt_hi = prog_alt_lo + want.ss_size;
	prog_alt_autodisarm = want.ss_flags & SS_AUTODISARM;
	return 0;
}

/* Whether the program's path string p names this process's exe link. */
static bool names_own_exe(const char *p)
{
	char s[40];
	size_t n = hook_user_read_some(s, p, sizeof s - 1);
	s[n] = 0;
	if (!hook_strncmp(s, "/proc/self/exe", 15) || !hook_strncmp(s, "/proc/thread-self/exe", 22))
		return true;
	/* /proc/PID/exe with our own pid */
	if (hook_strncmp(s, "/proc/", 6))
		return false;
	long pid = 0;
	size_t i = 6;
	for (; s[i] >= '0' && s[i] <= '9' && i < 20; i++)
		pid = pid * 10 + (s[i] - '0');
	return i > 6 && !hook_strncmp(s + i, "/exe", 5) && pid == RAW0(SYS_getpid);
}

const char *hook_static_own_exe(const char *path)
{
	return started && names_own_exe(path) ? program_path : NULL;
}

/* readlink of /proc/self/exe: the program's path, as the kernel would
 * give it had it exec'd the program itself. */
static long program_readlink(const char *path, char *buf, long size)
{
	if (!names_own_exe(path))
		return USNET_HOOK_PASS;
	if (size <= 0)
		return -EINVAL;
	size_t n = program_path_len < (size_t)size ? program_path_len : (size_t)size;
	return hook_user_write(buf, program_path, n) ? (long)n : -EFAULT;
}

/* rt_sigaction of a signal other than SIGSYS: the program's handler runs
 * behind hook_static_prog_sig_entry, and reading the action back gives the
 * program's handler.  SIGSEGV goes on to hook_fault.c with the substituted
 * action (USNET_HOOK_PASS); the others are answered here.  act_copy: room
 * for the substituted action, which sc then points at. */
static long program_sigaction(struct usnet_syscall *sc, struct k_sigaction *act_copy)
{
	long sig = sc->args[0];
	if (sig <= 0 || sig > 64 || sig == SIGSYS || sc->args[3] != 8)
		return USNET_HOOK_PASS;
	if (sc->args[1]) {
		if (!hook_user_read(act_copy, (const void *)sc->args[1], sizeof *act_copy))
			return USNET_HOOK_PASS;   /* the kernel's EFAULT */
		uintptr_t h = act_copy->handler;
		prog_onstack[sig] = act_copy->flags & SA_ONSTACK;
		if (h > 1) {   /* not SIG_DFL, SIG_IGN */
			__atomic_store_n(&hook_static_prog_real[sig], h, __ATOMIC_RELEASE);
			act_copy->handler = (unsigned long)hook_static_prog_sig_entry;
		}
		act_copy->mask &= ~(1UL << (SIGSYS - 1));
		sc->args[1] = (long)act_copy;
	}
	if (sig == SIGSEGV)
		return USNET_HOOK_PASS;
	struct k_sigaction old;
	long r = RAW4(SYS_rt_sigaction, sig, sc->args[1], sc->args[2] ? &old : 0, 8);
	if (r == 0 && sc->args[2]) {
		if (old.handler == (unsigned long)hook_static_prog_sig_entry)
			old.handler = hook_static_prog_real[sig];
		if (!hook_user_write((void *)sc->args[2], &old, sizeof old))
			r = -EFAULT;
	}
	return r;
}

int hook_static_pass(struct hook_frame *f, struct usnet_syscall *sc)
{
	long r;
	if (!started)
		return -1;   /* usnet-exec itself */
	if (__builtin_expect(!altstack_checked, 0))
		altstack_check();
	switch (sc->nr) {
	case SYS_rt_sigaction: {
		static __thread struct k_sigaction act_copy __attribute__((tls_model("initial-exec")));
		r = program_sigaction(sc, &act_copy);
		if (r == USNET_HOOK_PASS)
			return -1;
		break;
	}
	case SYS_sigaltstack:
		r = program_sigaltstack((const stack_t *)sc->args[0], (stack_t *)sc->args[1]);
		if (r == USNET_HOOK_PASS)
			return -1;
		break;
	case SYS_readlink:
	case SYS_readlinkat: {
		int at = sc->nr == SYS_readlinkat;
		r = program_readlink((const char *)sc->args[at], (char *)sc->args[at + 1], sc->args[at + 2]);
		if (r == USNET_HOOK_PASS)
			return -1;
		break;
	}
	case SYS_arch_prctl:
		r = program_arch_prctl(sc->args[0], (uintptr_t)sc->args[1]);
		if (r == USNET_HOOK_PASS)
			return -1;
		break;
	case SYS_brk:
		r = program_brk((uintptr_t)sc->args[0]);
		break;
	case SYS_clone:
		if (!sc->args[1] && !((unsigned long)sc->args[0] & CLONE_VM))
			return -1;   /* fork-like: issued in the SIGSYS handler */
		r = hook_static_clone(sc);
		break;
	case SYS_clone3: {
		uint64_t ca[6];
		if ((size_t)sc->args[1] >= sizeof ca && hook_user_read(ca, (const void *)sc->args[0], sizeof ca) &&
		    !ca[5] && !(ca[0] & CLONE_VM))
			return -1;
		r = hook_static_clone(sc);
		break;
	}
	case SYS_vfork:
		r = hook_static_clone(sc);
		break;
	case SYS_exit:
		/* a thread ends: from the SIGSYS handler itself, which nothing
		 * has to leave (its alternate stack is the helper's to free) */
		RAW1(SYS_exit, sc->args[0]);
		return -1;
	default:
		return -1;
	}
	if (hook_state.cfg.after_pass && hook_wants(sc->nr))
		hook_state.cfg.after_pass(sc, r);
	f->rax = r;
	return HOOK_ACT_DONE;
}
