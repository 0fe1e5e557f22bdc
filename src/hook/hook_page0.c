/*
 * usnet hook — the opt-in trampoline at address 0 (--hook page0), the set
 * of its rewritten sites, and the fast path's table (shared with the stubs'
 * gate, hook_stub.c).
 *
 * This mode is kept for comparison and for old kernels only: page 0 is
 * mapped (readable where the CPU lacks protection keys: null pointers stop
 * faulting), and `call *%rax` writes its return address into the 8 bytes
 * below the program's stack pointer (the red zone).  docs/hook.md.
 *
 * A rewritten site executes `call *%rax` with rax = the system-call number,
 * so it lands at address nr.  Every byte a valid number can land on must
 * lead, without touching the stack or any register but rip, onwards.
 * A plain nop sled costs one instruction per byte (hundreds for common
 * numbers), so the sled is a chain of short forward jumps instead:
 *
 *   pairs "eb d": entered at the eb, a 2-byte jmp +d; entered at the d byte,
 *   d is a prefix (REX 0x4f, or segment 0x26) of the next pair's jmp.
 *
 * Either way execution moves forward by about d bytes, so a few jumps reach a
 * short nop pad and what follows it.  Layout (two pages):
 *
 *   0    .. 511    chain 1: every number a 64-bit call can have, each
 *                  reaching the jump below in a few instructions
 *                  (fill_chain1)
 *   512  .. 516    jmp rel32 to the fast path (or to the stub below when
 *                  the fast path is off); 513..516 are x32 numbers, which
 *                  x86-64 never assigns to a 64-bit call
 *   517  .. 3434   chain 2 and pad: unassigned numbers, to the stub
 *   3435 .. 3447   stub: movabs $usnet_hook_entry, %r11; jmp *%r11
 *   3448 .. 3575   the fast path's code (below)
 *   3576 .. 4095   int3 (the fast path's table lived here: it moved to
 *                  usnet_hook_fast_table, so page 0 is never read and is
 *                  execute-only where the CPU has protection keys)
 *   4096 .. 8099   chain 3, pad and stub: more unassigned numbers
 *
 * The fast path (written by hook_fast_update, docs/hook.md) issues a call
 * that neither a callback nor the hook itself needs to see without a frame,
 * a stack switch or any C.  It reads the table (a byte per number: 0 sends
 * the call to the entry), checks the site in the site cache (in the same
 * 2 MiB as page 0), and issues the call; a site not found there goes to
 * the entry, which looks it up in the set of sites (and reports a stray
 * call) and puts it in the cache.  It changes no flag (mov, not, lea,
 * jrcxz only), and it uses only rcx and r11, which the kernel clobbers
 * too.  The call itself is issued by `syscall; ret` in the raw section
 * (put_fast_code says why).
 */
#include <cpuid.h>
#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "hook_internal.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define PAGE0_LEN 0x2000
#define PAD_LEN 40
#define STUB_LEN 13
#define SHORT_ZONE 84      /* last bytes of a chain use the shorter 0x26 jumps */

#define JUMP1_AT 512
#define CHAIN2_START (JUMP1_AT + 5)
#define FAST_CODE_AT 3448
#define FAST_CODE_MAX 128
#define FAST_TABLE_LEN HOOK_FAST_TABLE_LEN   /* chain 1 delivers 0 .. 512 */
#define STUB2_AT (FAST_CODE_AT - STUB_LEN)
#define FAST_YES 1
/* The site cache: a copy of part of the set of sites, in the same 2 MiB as
 * page 0, whose page-table entries the processor has just walked to run the
 * sled: a page there costs much less than one elsewhere after a TLB flush.
 * Slot site % 65536 holds the last site that maps to it (put there when it
 * is rewritten, and again when the entry finds it missing). */
#define SITE_CACHE_AT 0x100000
#define SITE_CACHE_SLOTS 65536
_Static_assert(FAST_CODE_MAX <= 128, "short jumps span the fast path's code");
_Static_assert((FAST_CODE_AT - CHAIN2_START) >> 8 == (STUB2_AT - CHAIN2_START) >> 8,
	       "turning the fast path on changes one byte of chain 1's jump");

/* Fills [a,b) with the jump chain and [b, b+PAD_LEN) with its nop pad;
 * returns the end of the pad. */
static size_t fill_sled(uint8_t *p, size_t a, size_t b)
{
	for (size_t i = a; i + 1 < b; i += 2) {
		p[i] = 0xeb;
		p[i + 1] = i + 2 + SHORT_ZONE > b ? 0x26 : 0x4f;
	}
	if ((b - a) & 1)
		p[b - 1] = 0x90;
	for (size_t i = b; i < b + PAD_LEN; i++)
		p[i] = 0x90;
	return b + PAD_LEN;
}

/* Chain 1 ([0, JUMP1_AT), every number a 64-bit call can have), laid out
 * so that every entry reaches the jump at JUMP1_AT in as few instructions
 * as possible: for each even position, from the end backwards, the pair
 * whose jump lands exactly on that jump or on a pair with the shortest way
 * on, or a nop where no jump does better.  Only even displacements that are
 * harmless prefixes (segment 0x26 0x2e 0x36 0x3e 0x64; REX 0x40..0x4e,
 * whose B bit is clear, so that "prefix + nop" stays a nop), so pairs stay
 * on even positions. */
static void fill_chain1(uint8_t *p)
{
	static const uint8_t disp[] = { 0x26, 0x2e, 0x36, 0x3e, 0x40, 0x42, 0x44, 0x46,
					0x48, 0x4a, 0x4c, 0x4e, 0x64 };
	unsigned short cost[JUMP1_AT + 1];
	cost[JUMP1_AT] = 0;
	for (long at = JUMP1_AT - 2; at >= 0; at -= 2) {
		unsigned best = 2u + cost[at + 2];   /* two nops */
		int pick = -1;
		for (size_t i = 0; i < sizeof disp; i++) {
			size_t to = (size_t)at + 2 + disp[i];
			if (to <= JUMP1_AT && 1u + cost[to] < best) {
				best = 1u + cost[to];
				pick = (int)i;
			}
		}
		cost[at] = (unsigned short)best;
		if (pick < 0) {
			p[at] = p[at + 1] = 0x90;
		} else {
			p[at] = 0xeb;
			p[at + 1] = disp[pick];
		}
		cost[at + 1] = (unsigned short)(1u + cost[at + 2]);
	}
}

static size_t put_u64(uint8_t *p, size_t at, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[at + i] = (uint8_t)(v >> (8 * i));
	return at + 8;
}

/* movabs $usnet_hook_entry, %r11; jmp *%r11 (r11 is clobbered by syscall
 * anyway); returns its end. */
static size_t put_stub(uint8_t *p, size_t at)
{
	p[at] = 0x49;
	p[at + 1] = 0xbb;
	at = put_u64(p, at + 2, (uint64_t)(uintptr_t)usnet_hook_entry);
	p[at] = 0x41;
	p[at + 1] = 0xff;
	p[at + 2] = 0xe3;
	return at + 3;
}

static void put_jmp32(uint8_t *p, size_t at, size_t target)
{
	int32_t rel = (int32_t)((long)target - (long)(at + 5));
	p[at] = 0xe9;
	for (int i = 0; i < 4; i++)
		__atomic_store_n(&p[at + 1 + i], (uint8_t)((uint32_t)rel >> (8 * i)), __ATOMIC_RELAXED);
}

static size_t put_bytes(uint8_t *p, size_t at, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[at + i] = b[i];
	return at + n;
}

/* A small emitter for the fast path's code. */
struct emit {
	uint8_t *p;
	size_t at;
};

static void emit_bytes(struct emit *e, const uint8_t *b, size_t n)
{
	e->at = put_bytes(e->p, e->at, b, n);
}

static void emit_u32(struct emit *e, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		e->p[e->at++] = (uint8_t)(v >> (8 * i));
}

static void emit_u64(struct emit *e, uint64_t v)
{
	e->at = put_u64(e->p, e->at, v);
}

/* jrcxz to a label not yet placed: returns where its displacement goes. */
static size_t emit_jrcxz(struct emit *e)
{
	e->p[e->at] = 0xe3;
	e->at += 2;
	return e->at - 1;
}

static void place_label(struct emit *e, size_t disp_at)
{
	/* every jump here is short: the code is under 128 bytes */
	e->p[disp_at] = (uint8_t)(e->at - (disp_at + 1));
}

/* The fast path's code at FAST_CODE_AT (see the top of the file).  On entry
 * rax = nr (<= 512: only chain 1 leads here), (%rsp) = the site.  Only mov,
 * not, lea and jrcxz: no flag changes.  Written only with the site cache. */
static void put_fast_code(uint8_t *p)
{
	struct emit e = { p, FAST_CODE_AT };
	/* movabs $usnet_hook_fast_table, %rcx; movzbl (%rcx,%rax), %ecx: 0
	 * for a call the entry must see */
	emit_bytes(&e, (const uint8_t[]){ 0x48, 0xb9 }, 2);
	emit_u64(&e, (uint64_t)(uintptr_t)usnet_hook_fast_table);
	emit_bytes(&e, (const uint8_t[]){ 0x0f, 0xb6, 0x0c, 0x01 }, 4);
	size_t to_slow = emit_jrcxz(&e);
	emit_bytes(&e, (const uint8_t[]){ 0x4c, 0x8b, 0x1c, 0x24 }, 4);   /* mov (%rsp), %r11: the site */
	/* the site cache: slot site % 65536 holds a rewritten site */
	static const uint8_t probe1[] = {
		0x41, 0x0f, 0xb7, 0xcb,          /* movzwl %r11w, %ecx */
		0x48, 0x8b, 0x0c, 0xcd,          /* mov SITE_CACHE_AT(,%rcx,8), %rcx */
	};
	emit_bytes(&e, probe1, sizeof probe1);
	emit_u32(&e, SITE_CACHE_AT);
	static const uint8_t probe2[] = {
		0x49, 0xf7, 0xd3,                /* not %r11 */
		0x4a, 0x8d, 0x4c, 0x19, 0x01,    /* lea 1(%rcx,%r11), %rcx: slot - site */
	};
	emit_bytes(&e, probe2, sizeof probe2);
	size_t to_issue = emit_jrcxz(&e);
	/* not in the cache: the entry looks it up (and reports a stray call) */
	emit_bytes(&e, (const uint8_t[]){ 0xeb, 0x00 }, 2);
	size_t to_slow2 = e.at - 1;
	place_label(&e, to_issue);
	/* The call is issued by `syscall; ret` in the raw section, not here:
	 * where the system call empties the TLB (page-table isolation without
	 * PCID), code on page 0 after it would cost a second walk of page 0's
	 * tables, whereas the raw section sits among the libraries the program
	 * returns to.  It is also the range Syscall User Dispatch allows. */
	emit_bytes(&e, (const uint8_t[]){ 0x48, 0xb9 }, 2);      /* movabs $usnet_hook_fast_issue, %rcx */
	emit_u64(&e, (uint64_t)(uintptr_t)usnet_hook_fast_issue);
	emit_bytes(&e, (const uint8_t[]){ 0xff, 0xe1 }, 2);      /* jmp *%rcx */
	place_label(&e, to_slow);
	place_label(&e, to_slow2);
	size_t end = put_stub(p, e.at);
	for (; end < FAST_CODE_AT + FAST_CODE_MAX; end++)
		p[end] = 0xcc;
}

/* Whether nr may take the fast path: no callback wants it and the hook
 * itself need not look at it (the dispatcher's needs_care, and
 * rt_sigreturn, which the entry issues on the signal frame). */
static bool fast_number(long nr)
{
	if (nr >= USNET_HOOK_NR_COUNT || hook_needs_care(nr) || nr == SYS_rt_sigreturn)
		return false;
	return !hook_callbacks_want(nr);
}

bool hook_cpu_has_bmi2(void)
{
	unsigned a, b, c, d;
	if (__get_cpuid_max(0, NULL) < 7)
		return false;
	__cpuid_count(7, 0, a, b, c, d);
	return (b >> 8) & 1;
}

/* A spin lock around the trampoline's rewrites (usnet_hook_set_interest can
 * run in several threads), holding the id of the process that took it: a
 * child forked while another thread of its parent held it takes it over. */
static volatile long page0_lock;

static void page0_lock_take(void)
{
	long self = RAW0(SYS_getpid);
	for (;;) {
		long holder = 0;
		if (__atomic_compare_exchange_n(&page0_lock, &holder, self, false, __ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED))
			return;
		if (holder != self &&
		    __atomic_compare_exchange_n(&page0_lock, &holder, self, false, __ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED))
			return;
		__builtin_ia32_pause();
	}
}

HOOK_HIDDEN uint8_t usnet_hook_fast_table[HOOK_FAST_TABLE_LEN] __attribute__((aligned(64)));

int hook_fast_update(void)
{
	page0_lock_take();
	/* read byte by byte: old or new, either is fine */
	for (long nr = 0; nr < FAST_TABLE_LEN; nr++)
		__atomic_store_n(&usnet_hook_fast_table[nr], fast_number(nr) ? FAST_YES : 0, __ATOMIC_RELAXED);
	long r = 0;
	if (hook_state.page0 && hook_state.rewrite_on && hook_state.fast_allowed && hook_state.site_cache &&
	    !hook_state.page0_fast) {
		/* never without PROT_EXEC: other threads may be running on page 0 */
		r = RAW3(SYS_mprotect, 0, 0x1000, PROT_READ | PROT_WRITE | PROT_EXEC);
		if (r == 0) {
			uint8_t *p = (uint8_t *)0;
			__asm__ volatile("" : "+r"(p));
			/* the code, then the jump that leads to it (the old and
			 * new jump differ in one byte, written at once) */
			put_fast_code(p);
			put_jmp32(p, JUMP1_AT, FAST_CODE_AT);
			hook_state.page0_fast = true;
			/* execute-only where the CPU has protection keys */
			r = RAW3(SYS_mprotect, 0, 0x1000, PROT_EXEC);
		}
	}
	__atomic_store_n(&page0_lock, 0, __ATOMIC_RELEASE);
	return (int)r;
}

bool hook_addr_skipped(uintptr_t addr)
{
	if (addr < 0x10000)
		return true;
	if (addr >= hook_state.vdso_start && addr < hook_state.vdso_end)
		return true;
	if (addr >= hook_state.self_start && addr < hook_state.self_end)
		return true;
	if (addr >= 0xffffffffff600000UL)  /* vsyscall */
		return true;
	return false;
}

void hook_patch_site(uintptr_t insn)
{
	volatile uint8_t *p = (volatile uint8_t *)insn;
	/* the second byte first: a thread racing through sees either the old
	 * instruction or (ff d0), never a half-written one starting with ff */
	p[1] = 0xd0;
	p[0] = 0xff;
}

static void site_cache_init(void);

int hook_page0_map(char *err, size_t errlen)
{
	long r = RAW6(SYS_mmap, 0, PAGE0_LEN, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (r != 0) {
		if (r > 0)   /* an old kernel ignoring NOREPLACE put it elsewhere */
			RAW2(SYS_munmap, r, PAGE0_LEN);
		char min[32] = "?";
		long fd = RAW3(SYS_open, "/proc/sys/vm/mmap_min_addr", 0, 0);
		if (fd >= 0) {
			long n = RAW3(SYS_read, fd, min, sizeof min - 1);
			RAW1(SYS_close, fd);
			min[n > 0 ? n : 0] = 0;
			for (long i = 0; i < n; i++)
				if (min[i] == '\n')
					min[i] = 0;
		}
		struct hook_buf b = { err, 0, errlen };
		if (errlen)
			err[0] = 0;
		hook_buf_str(&b, "page 0 cannot be mapped (vm.mmap_min_addr is ");
		hook_buf_str(&b, min);
		hook_buf_str(&b, r == -17 ? "; something already uses it)" :
			     "); run as root or set it to 0, or leave --hook at auto");
		return r < 0 ? (int)r : -22;
	}
	uint8_t *p = (uint8_t *)0;
	/* The compiler must not see a store through a null pointer. */
	__asm__ volatile("" : "+r"(p));
	fill_chain1(p);
	put_jmp32(p, JUMP1_AT, STUB2_AT);
	fill_sled(p, CHAIN2_START, STUB2_AT - PAD_LEN);
	put_stub(p, STUB2_AT);
	for (size_t i = FAST_CODE_AT; i < 0x1000; i++)
		p[i] = 0xcc;
	size_t end3 = put_stub(p, fill_sled(p, 0x1000, PAGE0_LEN - PAD_LEN - STUB_LEN - 16));
	for (size_t i = end3; i < PAGE0_LEN; i++)
		p[i] = 0xcc;
	RAW3(SYS_mprotect, 0, PAGE0_LEN, PROT_EXEC);
	site_cache_init();
	return hook_sites_reserve(0);
}

/* The site cache: 64 Ki slots at SITE_CACHE_AT, a copy of part of the set
 * of sites for the fast path.  Skipped when something is there already. */
static void site_cache_init(void)
{
	if (hook_state.site_cache || !hook_state.site_cache_allowed)
		return;
	long r = RAW6(SYS_mmap, SITE_CACHE_AT, SITE_CACHE_SLOTS * sizeof(uintptr_t), PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (r == SITE_CACHE_AT) {
		hook_state.site_cache = (uintptr_t *)r;
		/* the sites of the libraries alone touch most of its pages: one
		 * call instead of a page fault each (ignored where unsupported) */
		RAW3(SYS_madvise, r, SITE_CACHE_SLOTS * sizeof(uintptr_t), MADV_POPULATE_WRITE);
	} else if (r > 0 || r < -4095) {
		/* an old kernel ignoring NOREPLACE put it elsewhere */
		RAW2(SYS_munmap, r, SITE_CACHE_SLOTS * sizeof(uintptr_t));
	}
}

void hook_site_cache_put(uintptr_t site)
{
	uintptr_t *c = hook_state.site_cache;
	if (c && __atomic_load_n(&c[site % SITE_CACHE_SLOTS], __ATOMIC_RELAXED) != site)
		__atomic_store_n(&c[site % SITE_CACHE_SLOTS], site, __ATOMIC_RELAXED);
}

/* The set of sites: open addressing with linear probing, at most half
 * full.  Slots hold the address after a rewritten instruction (0: empty).
 * Readers (the entry, the SIGSEGV handler) take no lock; a writer adds
 * with a compare-and-swap, and growing copies into a table twice the size
 * under the rewriter's lock (hook_sites_reserve), after which the old one
 * is left mapped: a reader may still be walking it. */
struct site_set {
	uintptr_t *slots;
	unsigned long mask;    /* slots - 1 */
	long used;
};
static struct site_set *volatile site_set;

static unsigned long site_hash(uintptr_t site)
{
	return (unsigned long)((site * 0x9e3779b97f4a7c15UL) >> 20);
}

static struct site_set *site_set_new(unsigned long slots)
{
	size_t len = sizeof(struct site_set) + slots * sizeof(uintptr_t);
	long r = RAW6(SYS_mmap, 0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r < 0 && r > -4096)
		return NULL;
	struct site_set *s = (struct site_set *)r;
	s->slots = (uintptr_t *)(s + 1);
	s->mask = slots - 1;
	s->used = 0;
	return s;
}

static bool site_set_put(struct site_set *s, uintptr_t site)
{
	for (unsigned long i = site_hash(site);; i++) {
		uintptr_t *slot = &s->slots[i & s->mask];
		uintptr_t cur = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
		if (cur == site)
			return true;
		if (cur)
			continue;
		if (__atomic_compare_exchange_n(slot, &cur, site, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED)) {
			__atomic_fetch_add(&s->used, 1, __ATOMIC_RELAXED);
			return true;
		}
		if (cur == site)
			return true;
	}
}

int hook_sites_reserve(long n)
{
	struct site_set *s = site_set;
	if (s && (unsigned long)(s->used + n) * 2 <= s->mask + 1)
		return 0;
	unsigned long slots = 4096;
	while ((unsigned long)((s ? s->used : 0) + n) * 2 > slots)
		slots *= 2;
	struct site_set *big = site_set_new(slots);
	if (!big)
		return -12;   /* ENOMEM */
	if (s)
		for (unsigned long i = 0; i <= s->mask; i++)
			if (s->slots[i])
				site_set_put(big, s->slots[i]);
	__atomic_store_n(&site_set, big, __ATOMIC_RELEASE);
	return 0;
}

bool hook_site_add(uintptr_t insn)
{
	uintptr_t site = insn + 2;   /* the return address's (what the entry sees) */
	struct site_set *s = __atomic_load_n(&site_set, __ATOMIC_ACQUIRE);
	if (!s || (unsigned long)(s->used + 1) * 2 > s->mask + 1)
		return false;
	site_set_put(s, site);
	hook_site_cache_put(site);
	return true;
}

bool hook_site_known(uintptr_t site)
{
	struct site_set *s = __atomic_load_n(&site_set, __ATOMIC_ACQUIRE);
	if (!s || !site)
		return false;
	for (unsigned long i = site_hash(site);; i++) {
		uintptr_t cur = __atomic_load_n(&s->slots[i & s->mask], __ATOMIC_ACQUIRE);
		if (cur == site)
			return true;
		if (!cur)
			return false;
	}
}

void hook_report_stray_call(uintptr_t ret_addr)
{
	char line[256];
	struct hook_buf b = { line, 0, sizeof line };
	hook_buf_str(&b, "usnet-hook: call into page 0 from ");
	hook_buf_hex(&b, ret_addr - 2);
	hook_buf_str(&b, ", which is not a rewritten system call (a null function pointer?); aborting\n");
	hook_write_all(2, line, b.len);
	/* SIGABRT with its default action, unblocked, then exit if it is not fatal */
	struct { void *h; unsigned long flags; void *restorer; unsigned long mask; } sa = { 0, 0, 0, 0 };
	RAW4(SYS_rt_sigaction, SIGABRT, &sa, 0, 8);
	unsigned long set = 1UL << (SIGABRT - 1);
	RAW4(SYS_rt_sigprocmask, SIG_UNBLOCK, &set, 0, 8);
	RAW3(SYS_tgkill, RAW0(SYS_getpid), RAW0(SYS_gettid), SIGABRT);
	for (;;)
		RAW1(SYS_exit_group, 134);
}
