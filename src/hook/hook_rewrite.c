/*
 * usnet hook — finding system-call instructions and planning how each is
 * rewritten.
 *
 * Each executable mapping is decoded linearly with hook_decode.c (a real
 * decoder: the bytes 0f 05 inside another instruction are not a syscall).
 * The same pass notes what the plans need to stay safe: where instructions
 * start, every direct branch target (and endbr64, which marks an indirect
 * one), and the dead padding that follows an unconditional jump, return or
 * ud2.  Each `syscall` (0f 05) and `sysenter` (0f 34) then gets a plan
 * (struct hook_plan, hook_internal.h), tried in this order:
 *
 *   pad     the syscall becomes `jmp rel8` (the same 2 bytes) to 5 bytes of
 *           dead padding within 128 bytes, which become `jmp rel32` to the
 *           site's stub: nothing else is touched.
 *   forward the syscall and the instructions after it (none a branch
 *           target; after an unconditional transfer only padding) become
 *           `jmp rel32` to the stub, which runs the moved instructions.
 *   back    the same taking instructions before the syscall too (the
 *           syscall and every moved instruction but the first not a branch
 *           target, and not after an unconditional transfer).
 *   none    left alone: Syscall User Dispatch catches it (auto).
 *
 * Moved instructions must be relocatable: no call, loop, jrcxz, int or
 * syscall; a rip-relative operand or a jmp/jcc is re-aimed at its old
 * target.  hook_stub.c carries the plans out; in page-0 mode every site
 * becomes `call *%rax` (ff d0, same length) whatever its plan.  File-backed
 * mappings are looked up in the plan cache first (a cache hit takes a few
 * microseconds, the pass over libc a few milliseconds).
 *
 * This file is ordinary code (the compiler may use vector registers): at run
 * time it is reached only through usnet_hook_call_saved().
 */
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "hook_decode.h"
#include "hook_internal.h"
#include "hook_unhooked.h"

static int rewrite_lock;

static void lock(void)
{
	while (__atomic_exchange_n(&rewrite_lock, 1, __ATOMIC_ACQUIRE))
		__asm__ volatile("pause");
}

static void unlock(void)
{
	__atomic_store_n(&rewrite_lock, 0, __ATOMIC_RELEASE);
}

bool hook_rewrite_trylock(void)
{
	return !__atomic_exchange_n(&rewrite_lock, 1, __ATOMIC_ACQUIRE);
}

void hook_rewrite_unlock(void)
{
	unlock();
}

static void *raw_alloc(size_t len)
{
	long r = RAW6(SYS_mmap, 0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return r < 0 && r > -4096 ? NULL : (void *)r;
}

static int raw_mprotect(uintptr_t start, size_t len, int prot)
{
	return (int)RAW3(SYS_mprotect, start & ~4095UL, len + (start & 4095), prot);
}

/* A growing array in raw memory. */
struct vec {
	void *p;
	size_t n, cap, elem;
};

static bool vec_push(struct vec *v, const void *x)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 256;
		void *bigger = raw_alloc(cap * v->elem);
		if (!bigger)
			return false;
		if (v->p) {
			hook_memcpy(bigger, v->p, v->n * v->elem);
			RAW2(SYS_munmap, v->p, v->cap * v->elem);
		}
		v->p = bigger;
		v->cap = cap;
	}
	hook_memcpy((char *)v->p + v->n * v->elem, x, v->elem);
	v->n++;
	return true;
}

static void vec_free(struct vec *v)
{
	if (v->p)
		RAW2(SYS_munmap, v->p, v->cap * v->elem);
	v->p = NULL;
	v->n = v->cap = 0;
}

/* Dead padding: [start, start + len) after an unconditional transfer;
 * used: bytes at its start already taken by a pad plan. */
struct pad_run {
	uint32_t start, len, used;
};

/* What the linear pass learns about a mapping of len bytes at base. */
struct scan {
	const uint8_t *base;
	size_t len;
	uint8_t *bits;        /* the three bitmaps below, one allocation */
	size_t bits_len;
	uint8_t *target;      /* a direct branch lands here, or endbr64 */
	uint8_t *istart;      /* an instruction starts here */
	uint8_t *claimed;     /* a plan overwrites this byte */
	struct vec sites;     /* uint32_t offsets of syscall/sysenter */
	struct vec runs;      /* struct pad_run, ascending */
};

static inline bool bit(const uint8_t *b, size_t i)
{
	return (b[i >> 3] >> (i & 7)) & 1;
}

static inline void bit_set(uint8_t *b, size_t i)
{
	b[i >> 3] |= (uint8_t)(1u << (i & 7));
}

static bool is_uncond(unsigned kind)
{
	return kind == HOOK_INSN_JMP || kind == HOOK_INSN_JMP_IND || kind == HOOK_INSN_JMP_FAR ||
	       kind == HOOK_INSN_RET;
}

static bool is_direct_branch(unsigned kind)
{
	return kind == HOOK_INSN_JMP || kind == HOOK_INSN_JCC || kind == HOOK_INSN_CALL ||
	       kind == HOOK_INSN_LOOP;
}

static void close_run(struct scan *s, long start, size_t end)
{
	if (start >= 0 && end >= (size_t)start + 5) {
		struct pad_run r = { (uint32_t)start, (uint32_t)(end - (size_t)start), 0 };
		vec_push(&s->runs, &r);
	}
}

/* The linear pass.  Padding is nop or int3 after an unconditional
 * transfer; a nop at a 16-byte boundary ends it (it may be a function's
 * first instruction: patchable entries), an int3 never does. */
static int scan_mapping(struct scan *s)
{
	s->bits_len = (s->len + 7) / 8;
	s->bits = raw_alloc(s->bits_len * 3);
	if (!s->bits)
		return -1;
	s->target = s->bits;
	s->istart = s->bits + s->bits_len;
	s->claimed = s->bits + 2 * s->bits_len;
	s->sites.elem = sizeof(uint32_t);
	s->runs.elem = sizeof(struct pad_run);
	size_t off = 0;
	bool dead = false;     /* after an unconditional transfer, in its padding */
	long run = -1;         /* where that padding started */
	while (off < s->len) {
		struct hook_insn in;
		int size = hook_decode(s->base + off, s->len - off, &in);
		if (!size) {
			/* undecodable byte (data, padding): step over it */
			if (dead)
				close_run(s, run, off);
			dead = false;
			run = -1;
			off++;
			continue;
		}
		unsigned kind = in.kind;
		bit_set(s->istart, off);
		if (dead) {
			bool pad = in.int3 || (kind == HOOK_INSN_NOP && (off & 15));
			if (!pad) {
				close_run(s, run, off);
				dead = false;
				run = -1;
			}
		}
		if (is_direct_branch(kind)) {
			long t = (long)off + size + in.rel;
			if (t >= 0 && (size_t)t < s->len)
				bit_set(s->target, (size_t)t);
		} else if (kind == HOOK_INSN_ENDBR) {
			bit_set(s->target, off);
		} else if (kind == HOOK_INSN_SYSCALL || kind == HOOK_INSN_SYSENTER) {
			uint32_t o = (uint32_t)off;
			if (!vec_push(&s->sites, &o))
				return -1;
		}
		if (!dead && is_uncond(kind)) {
			dead = true;
			run = (long)(off + (size_t)size);
		}
		off += (size_t)size;
	}
	if (dead)
		close_run(s, run, s->len);
	/* a run ends at the first branch target inside it */
	struct pad_run *r = s->runs.p;
	for (size_t i = 0; i < s->runs.n; i++)
		for (uint32_t k = 0; k < r[i].len; k++)
			if (bit(s->target, r[i].start + k)) {
				r[i].len = k;
				break;
			}
	return 0;
}

static bool range_free(const struct scan *s, size_t a, size_t b)
{
	for (size_t i = a; i < b; i++)
		if (bit(s->claimed, i))
			return false;
	return true;
}

static void claim(struct scan *s, size_t a, size_t b)
{
	for (size_t i = a; i < b; i++)
		bit_set(s->claimed, i);
}

/* How the instruction at off moves into a stub: its desc byte, or -1.
 * *kind and *size describe it. */
static int classify(const struct scan *s, size_t off, unsigned *kind, size_t *size)
{
	struct hook_insn in;
	int n = hook_decode(s->base + off, s->len - off, &in);
	if (!n)
		return -1;
	*kind = in.kind;
	*size = (size_t)n;
	switch (in.kind) {
	case HOOK_INSN_CALL: case HOOK_INSN_LOOP: case HOOK_INSN_CALL_IND: case HOOK_INSN_JMP_FAR:
	case HOOK_INSN_TRAP: case HOOK_INSN_SYSCALL: case HOOK_INSN_SYSENTER: case HOOK_INSN_ENDBR:
		return -1;
	case HOOK_INSN_JMP: case HOOK_INSN_JCC:
		/* a relative jmp/jcc, re-aimed at its old target (only hint,
		 * bnd and REX prefixes: the stub rewrites the opcode) */
		return in.plain_branch ? (HOOK_DESC_BRANCH << 4) | n : -1;
	default:
		break;
	}
	if (in.eip_rel)
		return -1;
	if (in.disp_off) {
		if (in.disp_off + 4 > n || in.disp_off >= HOOK_DESC_BRANCH)
			return -1;
		return (in.disp_off << 4) | n;
	}
	return n;
}

/* The instruction that ends exactly at off (linear disassembly), or -1. */
static long insn_before(const struct scan *s, size_t off)
{
	for (size_t k = 1; k <= 15 && k <= off; k++)
		if (bit(s->istart, off - k))
			return (long)(off - k);
	return -1;
}

/* The pad run that starts exactly at off, or NULL. */
static struct pad_run *run_at(struct scan *s, size_t off)
{
	struct pad_run *r = s->runs.p;
	size_t lo = 0, hi = s->runs.n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (r[mid].start < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->runs.n && r[lo].start == off ? &r[lo] : NULL;
}

static bool plan_pad(struct scan *s, size_t insn, struct hook_plan *pl)
{
	struct pad_run *r = s->runs.p;
	long best = -1, best_dist = 1L << 30;
	for (size_t i = 0; i < s->runs.n; i++) {
		size_t pad = r[i].start + r[i].used;
		if (r[i].len - r[i].used < 5)
			continue;
		long rel = (long)pad - (long)(insn + 2);
		if (rel < -128)
			continue;
		if (rel > 127)
			break;
		if (!range_free(s, pad, pad + 5))
			continue;
		long dist = rel < 0 ? -rel : rel;
		if (dist < best_dist) {
			best_dist = dist;
			best = (long)i;
		}
	}
	if (best < 0)
		return false;
	size_t pad = r[best].start + r[best].used;
	r[best].used += 5;
	claim(s, pad, pad + 5);
	claim(s, insn, insn + 2);
	pl->kind = HOOK_PLAN_PAD;
	pl->rel = (int8_t)((long)pad - (long)(insn + 2));
	return true;
}

/* A region of nb instructions before the syscall, the syscall, and as many
 * after it as it takes to hold a 5-byte jump. */
static bool plan_region(struct scan *s, size_t insn, int nb, struct hook_plan *pl)
{
	uint8_t before[3], after[HOOK_PLAN_MAX_INSNS];
	int na = 0;
	size_t start = insn;
	unsigned kind;
	size_t size;
	for (int k = 0; k < nb; k++) {
		/* the instruction at start follows the one taken: no branch may
		 * land on it */
		if (bit(s->target, start))
			return false;
		long q = insn_before(s, start);
		if (q < 0)
			return false;
		int d = classify(s, (size_t)q, &kind, &size);
		if (d < 0 || (size_t)q + size != start || is_uncond(kind))
			return false;
		before[nb - 1 - k] = (uint8_t)d;
		start = (size_t)q;
	}
	size_t end = insn + 2;
	bool dead = false;
	while (end - start < 5) {
		if (dead) {
			/* the padding after an unconditional transfer: dead, so
			 * the region may end inside an instruction there */
			struct pad_run *r = run_at(s, end);
			if (!r || r->used || r->start + r->len < start + 5)
				return false;
			end = start + 5;
			break;
		}
		if (end >= s->len || bit(s->target, end) || nb + na >= HOOK_PLAN_MAX_INSNS)
			return false;
		int d = classify(s, end, &kind, &size);
		if (d < 0)
			return false;
		after[na++] = (uint8_t)d;
		end += size;
		dead = is_uncond(kind);
	}
	if (end - start > 255 || end > s->len || !range_free(s, start, end))
		return false;
	claim(s, start, end);
	pl->kind = HOOK_PLAN_REGION;
	pl->rel = (int8_t)((long)start - (long)insn);
	pl->len = (uint8_t)(end - start);
	pl->counts = (uint8_t)(nb | (na << 4));
	for (int i = 0; i < nb; i++)
		pl->desc[i] = before[i];
	for (int i = 0; i < na; i++)
		pl->desc[nb + i] = after[i];
	return true;
}

/* Whether the bytes 0f 05 (syscall) or 0f 34 (sysenter) occur at all: most
 * fresh JIT memory (zeros) and many libraries have none, and need no pass. */
static bool may_have_sites(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++)
		if (__builtin_expect(p[i] == 0x0f, 0) && (p[i + 1] == 0x05 || p[i + 1] == 0x34))
			return true;
	return false;
}

/* Plans for every syscall/sysenter of [base, base + len): a raw array of
 * *cap entries (munmap cap * 16 bytes); returns the count or -1. */
static long plan_sites(const uint8_t *base, size_t len, struct hook_plan **out, size_t *capp)
{
	struct scan s = { .base = base, .len = len };
	long n = -1;
	if (!may_have_sites(base, len)) {
		*out = NULL;
		*capp = 0;
		return 0;
	}
	if (scan_mapping(&s) < 0)
		goto done;
	size_t cap = s.sites.n ? s.sites.n : 1;
	struct hook_plan *plans = raw_alloc(cap * sizeof *plans);
	if (!plans)
		goto done;
	const uint32_t *sites = s.sites.p;
	for (size_t i = 0; i < s.sites.n; i++) {
		struct hook_plan *pl = &plans[i];
		size_t insn = sites[i];
		pl->insn = sites[i];
		if (insn + 2 > len || !range_free(&s, insn, insn + 2))
			continue;   /* HOOK_PLAN_NONE (zeroed) */
		if (plan_pad(&s, insn, pl) || plan_region(&s, insn, 0, pl) || plan_region(&s, insn, 1, pl) ||
		    plan_region(&s, insn, 2, pl) || plan_region(&s, insn, 3, pl))
			continue;
	}
	*out = plans;
	*capp = cap;
	n = (long)s.sites.n;
done:
	if (s.bits)
		RAW2(SYS_munmap, s.bits, s.bits_len * 3);
	vec_free(&s.sites);
	vec_free(&s.runs);
	return n;
}

static bool site_bytes_ok(const uint8_t *p)
{
	return p[0] == 0x0f && (p[1] == 0x05 || p[1] == 0x34);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* Makes the private copies of the pages that hold sites in a few calls (one
 * per run of such pages) instead of one copy-on-write fault per page: each
 * fault is a trip into the kernel, expensive with page-table isolation.
 * Linux >= 5.14; without it the writes fault as before.  Plans ascending. */
static void populate_site_pages(uintptr_t start, uintptr_t end, const struct hook_plan *plans, long n)
{
	uintptr_t run_start = 0, run_end = 0;   /* the run of pages so far */
	for (long i = 0; i < n; i++) {
		uintptr_t insn = start + plans[i].insn;
		if (insn + 2 > end)
			continue;
		/* a site (and its region or pad) may straddle two pages */
		uintptr_t lo = insn >= 256 ? insn - 256 : 0, hi = insn + 256;
		if (lo < start)
			lo = start;
		if (hi > end)
			hi = end;
		uintptr_t first = lo & ~4095UL, last_end = ((hi - 1) & ~4095UL) + 4096;
		if (run_end && first >= run_start && first <= run_end) {
			if (last_end > run_end)
				run_end = last_end;
			continue;
		}
		if (run_end)
			RAW3(SYS_madvise, run_start, run_end - run_start, MADV_POPULATE_WRITE);
		run_start = first;
		run_end = last_end;
	}
	if (run_end)
		RAW3(SYS_madvise, run_start, run_end - run_start, MADV_POPULATE_WRITE);
}

/* Page-0 mode: every site becomes `call *%rax`, whatever its plan. */
static long apply_page0(uintptr_t start, uintptr_t end, const struct hook_plan *plans, long n)
{
	long rewritten = 0;
	if (hook_sites_reserve(n) < 0) {
		hook_log(0, "no memory for the set of rewritten sites");
		return 0;
	}
	for (long i = 0; i < n; i++) {
		uintptr_t insn = start + plans[i].insn;
		if (insn + 2 > end || !site_bytes_ok((const uint8_t *)insn) || hook_addr_skipped(insn))
			continue;
		/* in the set before it is patched: the entry never sees a
		 * legitimate site it does not know */
		if (!hook_site_add(insn))
			continue;
		hook_patch_site(insn);
		rewritten++;
	}
	hook_state.sites_page0 += rewritten;
	return rewritten;
}

long hook_rewrite_region(uintptr_t start, uintptr_t end, int prot, const struct hook_mapping *m)
{
	if (!hook_state.rewrite_on || end <= start)
		return 0;
	if (hook_addr_skipped(start) && hook_addr_skipped(end - 1))
		return 0;
	if (m && m->path[0] && hook_strncmp(m->path, "[", 1) == 0 &&
	    hook_strncmp(m->path, "[heap]", 6) != 0 && hook_strncmp(m->path, "[stack", 6) != 0 &&
	    hook_strncmp(m->path, "[anon", 5) != 0)
		return 0;   /* [vdso], [vsyscall], [uprobes]... */
	if (m && m->ino && m->ino == hook_state.self_ino && m->dev_minor == hook_state.self_dev)
		return 0;
	bool readable = prot & PROT_READ;
	long rewritten = 0;
	struct { long sec, nsec; } t0, t1;
	if (hook_state.cfg.verbosity >= 2)
		RAW2(SYS_clock_gettime, 1 /* CLOCK_MONOTONIC */, &t0);
	lock();
	if (!readable && raw_mprotect(start, end - start, prot | PROT_READ) < 0) {
		unlock();
		hook_report_unhooked("cannot read execute-only code to rewrite it", start);
		return -1;
	}

	/* The cache: only whole file-backed mappings have a stable identity. */
	struct hook_cache_key key;
	bool cacheable = false;
	if (m && m->ino && m->path[0] == '/') {
		struct stat st;
		if (RAW2(SYS_stat, m->path, &st) == 0 && st.st_ino == m->ino) {
			key.dev = st.st_dev;
			key.ino = st.st_ino;
			key.size = (unsigned long)st.st_size;
			key.mtime_sec = (unsigned long)st.st_mtim.tv_sec;
			key.mtime_nsec = (unsigned long)st.st_mtim.tv_nsec;
			key.offset = m->offset;
			key.length = end - start;
			cacheable = true;
		}
	}
	struct hook_plan *plans = NULL;
	size_t cap = 0;
	long n = cacheable ? hook_cache_load(&key, &plans) : -1;
	bool from_cache = n >= 0;
	if (!from_cache && !may_have_sites((const uint8_t *)start, end - start)) {
		n = 0;
		if (cacheable)
			hook_cache_store(&key, NULL, 0);
	} else if (!from_cache) {
		n = plan_sites((const uint8_t *)start, end - start, &plans, &cap);
		if (n >= 0 && cacheable)
			hook_cache_store(&key, plans, n);
	}
	if (n > 0) {
		if (raw_mprotect(start, end - start, prot | PROT_READ | PROT_WRITE) == 0) {
			populate_site_pages(start, end, plans, n);
			long left = hook_state.sites_left;
			if (hook_state.page0)
				rewritten = apply_page0(start, end, plans, n);
			else
				rewritten = hook_stub_apply(start, end, plans, n);
			raw_mprotect(start, end - start, prot);
			/* code that came later (dlopen, JIT), with sites nothing
			 * catches: never silently (at start-up the summary says it) */
			if (hook_state.installed && !hook_state.sud_on && hook_state.sites_left > left) {
				char line[400];
				struct hook_buf b = { line, 0, sizeof line };
				hook_buf_dec(&b, hook_state.sites_left - left);
				hook_buf_str(&b, " system calls in ");
				hook_buf_str(&b, m && m->path[0] ? m->path : "code mapped at ");
				if (!m || !m->path[0])
					hook_buf_hex(&b, start);
				hook_buf_str(&b, " could not be rewritten and are NOT hooked (--hook rewrite+sud "
					     "would catch them)");
				hook_log(0, line);
			}
		} else {
			hook_report_unhooked("cannot make code writable to rewrite it", start);
		}
	} else if (!readable) {
		raw_mprotect(start, end - start, prot);
	}
	if (plans) {
		if (from_cache)
			hook_cache_free(plans, n);
		else
			RAW2(SYS_munmap, plans, cap * sizeof *plans);
	}
	unlock();
	if (hook_state.cfg.verbosity >= 2) {
		RAW2(SYS_clock_gettime, 1, &t1);
		char line[400];
		struct hook_buf b = { line, 0, sizeof line };
		hook_buf_dec(&b, rewritten);
		hook_buf_str(&b, " of ");
		hook_buf_dec(&b, n);
		hook_buf_str(&b, " sites rewritten in ");
		hook_buf_hex(&b, start);
		hook_buf_str(&b, " (");
		hook_buf_dec(&b, (long)((end - start) >> 10));
		hook_buf_str(&b, from_cache ? " KiB, cached) " : " KiB) ");
		hook_buf_str(&b, m && m->path[0] ? m->path : "[anonymous]");
		hook_buf_str(&b, " in us: ");
		hook_log_dec(2, line, (t1.sec - t0.sec) * 1000000 + (t1.nsec - t0.nsec) / 1000);
	}
	return rewritten;
}

static int rewrite_cb(const struct hook_mapping *m, void *arg)
{
	long *total = arg;
	if (!(m->prot & PROT_EXEC) || m->start == 0)
		return 0;
	if (hook_strncmp(m->path, "[vdso]", 7) == 0 || hook_strncmp(m->path, "[vsyscall]", 11) == 0)
		return 0;
	/* the hook's own stubs */
	if (hook_stub_owns(m->start))
		return 0;
	long r = hook_rewrite_region(m->start, m->end, m->prot, m);
	if (r > 0)
		*total += r;
	return 0;
}

long hook_rewrite_all(void)
{
	long total = 0;
	hook_maps_each(rewrite_cb, &total);
	return total;
}
