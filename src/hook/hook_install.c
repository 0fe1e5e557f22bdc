/*
 * usnet hook — usnet_hook_install(): chooses the mode, rewrites the code
 * already loaded (through stubs, or to the page-0 trampoline when asked)
 * and turns on Syscall User Dispatch.  Runs once, at start-up (a preloaded
 * library's constructor).
 */
#include <cpuid.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hook_internal.h"
#include "hook_static.h"

/* Read by usnet_hook_call_saved (hook_entry.S). */
HOOK_HIDDEN uint64_t usnet_hook_xsave_size = 4096;
HOOK_HIDDEN uint64_t usnet_hook_xcr0 = 3;
HOOK_HIDDEN uint8_t usnet_hook_save_ymm;

static const char *mode_name = "none";

static unsigned long now_us(void)
{
	struct { long sec, nsec; } ts;
	RAW2(SYS_clock_gettime, 1 /* CLOCK_MONOTONIC */, &ts);
	return (unsigned long)(ts.sec * 1000000 + ts.nsec / 1000);
}

/* XSAVE area size for the features enabled in XCR0 (CPUID leaf 0xD). */
__attribute__((constructor(101))) static void xsave_init(void)
{
	unsigned a, b, c, d;
	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE))
		return;
	unsigned lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	usnet_hook_xcr0 = ((uint64_t)hi << 32) | lo;
	/* x87 (bit 0) and PKRU (bit 9) aside, SSE and AVX and nothing more:
	 * ymm0-15 and MXCSR are the whole state usnet's code can change.
	 * USNET_HOOK_XSAVE (but 0) asks for XSAVE all the same. */
	const char *xsave = getenv("USNET_HOOK_XSAVE");
	usnet_hook_save_ymm = (usnet_hook_xcr0 & ~0x201ull) == 0x6 && (!xsave || !hook_strncmp(xsave, "0", 2));
	__cpuid_count(0xd, 0, a, b, c, d);
	if (b >= 576)
		usnet_hook_xsave_size = b + 64;   /* + room for the 64-byte alignment */
}

struct self_scan {
	uintptr_t probe;
	unsigned long ino, dev;
};

static int find_self(const struct hook_mapping *m, void *arg)
{
	struct self_scan *s = arg;
	if (s->probe >= m->start && s->probe < m->end) {
		s->ino = m->ino;
		s->dev = m->dev_minor;
	}
	if (!hook_strncmp(m->path, "[vdso]", 7)) {
		hook_state.vdso_start = m->start;
		hook_state.vdso_end = m->end;
	}
	return 0;
}

static int self_range(const struct hook_mapping *m, void *arg)
{
	struct self_scan *s = arg;
	if (m->ino != s->ino || m->dev_minor != s->dev)
		return 0;
	if (!hook_state.self_start || m->start < hook_state.self_start)
		hook_state.self_start = m->start;
	if (m->end > hook_state.self_end)
		hook_state.self_end = m->end;
	return 0;
}

static void set_err(char *err, size_t errlen, const char *msg)
{
	if (errlen)
		hook_copy_str(err, errlen, msg);
}

static void set_interest_bits(const struct usnet_hook_interest *set)
{
	for (int i = 0; i < USNET_HOOK_NR_COUNT / 64; i++)
		__atomic_store_n(&hook_state.interest[i], set ? set->bits[i] : ~0ULL, __ATOMIC_RELAXED);
	__atomic_store_n(&hook_state.interest_all, set == NULL, __ATOMIC_RELAXED);
}

int usnet_hook_set_interest(const struct usnet_hook_interest *interest)
{
	if (!hook_state.installed)
		return -EINVAL;
	struct usnet_hook_interest copy;
	if (interest) {
		/* through the kernel: a bad pointer is an error, not a crash */
		if (!hook_user_read(&copy, interest, sizeof copy))
			return -EFAULT;
		interest = &copy;
	}
	set_interest_bits(interest);
	return hook_fast_update();
}

/* One line at info level: the mode in force and what the rewriting did;
 * sites that could not be rewritten and that nothing else catches are
 * reported at any level. */
static void log_summary(bool automatic)
{
	char line[320];
	struct hook_buf b = { line, 0, sizeof line };
	hook_buf_str(&b, "mode ");
	hook_buf_str(&b, mode_name);
	if (automatic)
		hook_buf_str(&b, " (auto)");
	if (hook_state.page0) {
		hook_buf_str(&b, " (page-0 trampoline: page 0 mapped, red zone's last slot written): ");
		hook_buf_dec(&b, hook_state.sites_page0);
		hook_buf_str(&b, " sites rewritten; fast path ");
		hook_buf_str(&b, hook_state.page0_fast ? "on" : "off");
	} else if (hook_state.rewrite_on) {
		hook_buf_str(&b, ": ");
		hook_buf_dec(&b, hook_state.sites_pad + hook_state.sites_fwd + hook_state.sites_back);
		hook_buf_str(&b, " sites jump to stubs (");
		hook_buf_dec(&b, hook_state.sites_pad);
		hook_buf_str(&b, " through padding, ");
		hook_buf_dec(&b, hook_state.sites_fwd + hook_state.sites_back);
		hook_buf_str(&b, " moving neighbours), ");
		if (hook_state.sites_left) {
			hook_buf_dec(&b, hook_state.sites_left);
			hook_buf_str(&b, hook_state.sud_on ? " left to Syscall User Dispatch"
							   : " could not be rewritten and are NOT hooked");
		} else {
			hook_buf_str(&b, hook_state.sud_on ? "none left; Syscall User Dispatch on"
							   : "none left (no Syscall User Dispatch)");
		}
		hook_buf_str(&b, "; fast path ");
		hook_buf_str(&b, hook_state.gate_fast ? "on" : "off");
	} else {
		hook_buf_str(&b, ": every call traps (Syscall User Dispatch alone)");
	}
	line[b.len < sizeof line ? b.len : sizeof line - 1] = 0;
	int level = hook_state.rewrite_on && !hook_state.sud_on && hook_state.sites_left ? 0 : 1;
	hook_log(level, line);
}

int usnet_hook_install(const struct usnet_hook_config *cfg, char *err, size_t errlen)
{
	char why[256] = "";
	if (errlen)
		err[0] = 0;
	if (!cfg) {
		set_err(err, errlen, "no configuration");
		return -EINVAL;
	}
	if (hook_state.installed) {
		set_err(err, errlen, "the hook is already installed");
		return -EBUSY;
	}
	unsigned long t0 = now_us();
	xsave_init();
	hook_state.cfg = *cfg;
	/* the caller's set may not outlive this call: the hook keeps a copy */
	hook_state.cfg.interest = NULL;
	set_interest_bits(cfg->interest);
	/* USNET_HOOK_FAST: off (or 0) turns the page-0 fast path off, nocache
	 * keeps it without the site cache (tests, measurements) */
	const char *fast = getenv("USNET_HOOK_FAST");
	hook_state.fast_allowed = !fast || (hook_strncmp(fast, "off", 4) && hook_strncmp(fast, "0", 2));
	hook_state.site_cache_allowed = !fast || hook_strncmp(fast, "nocache", 8);

	/* What the rewriter must leave alone: this library and the vdso. */
	struct self_scan s = { (uintptr_t)usnet_hook_install, 0, 0 };
	hook_maps_each(find_self, &s);
	/* A library holding the hook is skipped whole; when the hook is linked
	 * into the program itself, only its raw section is (the program's own
	 * calls must still be rewritten). */
	struct stat exe;
	bool in_program = RAW2(SYS_stat, "/proc/self/exe", &exe) == 0 && exe.st_ino == s.ino;
	if (s.ino && !in_program) {
		hook_maps_each(self_range, &s);
		hook_state.self_ino = s.ino;
		hook_state.self_dev = s.dev;
	} else {
		hook_state.self_start = (uintptr_t)usnet_hook_raw_start;
		hook_state.self_end = (uintptr_t)usnet_hook_raw_end;
	}
	hook_cache_init(getenv("USNET_HOOK_CACHE"));
	/* before the capture: USNET_STATIC_EXEC leaves the environment */
	hook_static_configure();
	hook_env_capture(environ);

	enum usnet_hook_mode mode = cfg->mode;
	if (mode != USNET_HOOK_AUTO && mode != USNET_HOOK_REWRITE && mode != USNET_HOOK_SUD &&
	    mode != USNET_HOOK_PAGE0 && mode != USNET_HOOK_REWRITE_SUD) {
		set_err(err, errlen, "unknown hook mode");
		return -EINVAL;
	}
	bool want_rewrite = mode != USNET_HOOK_SUD;
	/* auto: SUD only for what rewriting could not take (below), since
	 * with SUD on every system call of the process, hooked or not, takes
	 * the kernel's slow entry path */
	bool want_sud = mode == USNET_HOOK_SUD || mode == USNET_HOOK_PAGE0 || mode == USNET_HOOK_REWRITE_SUD;
	if (hook_static_on) {   /* a static program (usnet-exec): SUD alone */
		want_rewrite = false;
		want_sud = true;
	}
	hook_state.page0 = mode == USNET_HOOK_PAGE0;
	hook_state.gate_fast = hook_state.fast_allowed && hook_cpu_has_bmi2();

	if (want_rewrite) {
		int r = hook_state.page0 ? hook_page0_map(why, sizeof why) : 0;
		if (r == 0 && hook_fast_publish() < 0) {
			hook_copy_str(why, sizeof why, "cannot write the hook's own code page");
			r = -EPERM;
		}
		if (r < 0) {
			if (mode != USNET_HOOK_AUTO) {
				set_err(err, errlen, why[0] ? why : "cannot set up the rewriting");
				return r;
			}
			/* auto: say it once, then rely on SUD alone */
			struct hook_buf b = { why + hook_strlen(why), 0, sizeof why - hook_strlen(why) };
			hook_buf_str(&b, "; using Syscall User Dispatch alone");
			hook_log(0, why);
		} else {
			hook_state.rewrite_on = true;
			unsigned long t1 = now_us();
			long n = hook_rewrite_all();
			hook_log_dec(2, "system-call sites rewritten at start-up: ", n);
			hook_log_dec(2, "microseconds to find the mappings: ", (long)(t1 - t0));
			hook_log_dec(2, "microseconds to rewrite them: ", (long)(now_us() - t1));
		}
	}
	if (mode == USNET_HOOK_AUTO && (!hook_state.rewrite_on || hook_state.sites_left))
		want_sud = true;
	bool stubs_issue = hook_state.rewrite_on && !hook_state.page0;
	if (want_sud) {
		int r = hook_sud_enable(why, sizeof why);
		if (r < 0) {
			if (!hook_state.rewrite_on) {
				set_err(err, errlen, why);
				return r;
			}
			hook_log(1, why);
		}
		/* SUD catches a site: the page-0 trampoline can take it at once
		 * (2 bytes); a stub needs the code around it analysed */
		hook_state.sud_rewrite = hook_state.sud_on && hook_state.rewrite_on && hook_state.page0;
		/* the stubs written so far issue calls themselves: from now
		 * on SUD lets them through only from the raw section */
		if (hook_state.sud_on && stubs_issue)
			hook_stub_sud_on();
	}
	int r = hook_fast_update();
	if (r < 0)
		hook_log_dec(1, "the page-0 fast path is off: mprotect of page 0 failed with ", r);
		/* calls beyond the trampoline, and usnet_hook_user_check */
	hook_fault_install();
	hook_state.installed = true;
	if (hook_state.page0)
		mode_name = hook_state.sud_on ? "page0+sud" : "page0";
	else
		mode_name = hook_state.rewrite_on ? (hook_state.sud_on ? "rewrite+sud" : "rewrite") : "sud";
	log_summary(mode == USNET_HOOK_AUTO);
	return 0;
}

const char *usnet_hook_mode_name(void)
{
	return mode_name;
}
