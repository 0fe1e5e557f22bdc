/*
 * usnet hook — usnet_hook_install(): chooses the mode, maps the trampoline,
 * rewrites the code already loaded and turns on Syscall User Dispatch.
 * Runs once, at start-up (a preloaded library's constructor).
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
	return hook_page0_update();
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

	bool want_rewrite = cfg->mode == USNET_HOOK_AUTO || cfg->mode == USNET_HOOK_REWRITE;
	bool want_sud = cfg->mode == USNET_HOOK_AUTO || cfg->mode == USNET_HOOK_SUD;
	if (hook_static_on) {   /* a static program (usnet-exec): SUD alone */
		want_rewrite = false;
		want_sud = true;
	}
	if (cfg->mode != USNET_HOOK_AUTO && cfg->mode != USNET_HOOK_REWRITE && cfg->mode != USNET_HOOK_SUD) {
		set_err(err, errlen, "unknown hook mode");
		return -EINVAL;
	}

	if (want_rewrite) {
		int r = hook_page0_map(why, sizeof why);
		if (r == 0)
			r = hook_bitmap_init();
		if (r == 0 && hook_fast_publish() < 0) {
			hook_copy_str(why, sizeof why, "cannot write the hook's own code page");
			r = -EPERM;
		}
		if (r < 0) {
			if (cfg->mode == USNET_HOOK_REWRITE) {
				set_err(err, errlen, why[0] ? why : "cannot reserve the site bitmap");
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
			hook_log_dec(1, "system-call sites rewritten at start-up: ", n);
			hook_log_dec(2, "microseconds to find the mappings: ", (long)(t1 - t0));
			hook_log_dec(2, "microseconds to rewrite them: ", (long)(now_us() - t1));
		}
	}
	if (want_sud) {
		int r = hook_sud_enable(why, sizeof why);
		if (r < 0) {
			if (!hook_state.rewrite_on) {
				set_err(err, errlen, why);
				return r;
			}
			hook_log(1, why);
		}
		hook_state.sud_rewrite = hook_state.sud_on && hook_state.rewrite_on;
	}
	if (hook_state.rewrite_on) {
		int r = hook_page0_update();
		if (r < 0)
			hook_log_dec(1, "the page-0 fast path is off: mprotect of page 0 failed with ", r);
		hook_log(1, hook_state.page0_fast ? "page-0 fast path on" : "page-0 fast path off");
	}
	/* calls beyond the trampoline, and usnet_hook_user_check */
	hook_fault_install();
	hook_state.installed = true;
	mode_name = hook_state.rewrite_on ? (hook_state.sud_on ? "rewrite+sud" : "rewrite") : "sud";
	return 0;
}

const char *usnet_hook_mode_name(void)
{
	return mode_name;
}
