/*
 * usnet hook — the default rewriting: every system-call site jumps to a
 * stub of its own, near the code, that makes the call and jumps back.
 * Nothing is mapped at page 0 (null pointers keep faulting) and nothing is
 * written below the program's stack pointer: the stub moves the stack
 * pointer past the 128-byte red zone before it calls anything.
 *
 * A stub (for the plan of one site, hook_rewrite.c):
 *
 *           <the instructions moved from before the syscall>
 *           lea -128(%rsp), %rsp
 *           mov $9, %ecx
 *           shrx %rcx, %rax, %rcx       number / 512
 *           jrcxz check
 *   slow:   lea SITE(%rip), %r11        the address after the syscall
 *           call ENTRY                  usnet_hook_stub_entry: rel32 or *slot
 *           jmp done
 *   check:  movabs $usnet_hook_fast_table, %rcx
 *           movzbl (%rcx,%rax), %ecx    0: a callback or the hook must see it
 *           jrcxz slow
 *   issue:  syscall; nopl 0(%rax)       or call *ISSUE_SLOT(%rip) (below)
 *   done:   lea 128(%rsp), %rsp
 *           <the instructions moved from after the syscall>
 *           jmp BACK                    the end of what the jump replaced
 *
 * The fast path (mov, shrx, jrcxz, movabs, movzbl: no flag changes, only
 * rcx and r11, which the kernel clobbers too) issues a call that nobody
 * needs to see right in the stub.  With Syscall User Dispatch on (it lets
 * through only the hook's raw section), the 6 bytes at issue are instead
 * `call *ISSUE_SLOT(%rip)` to `syscall; ret` there (usnet_hook_fast_issue):
 * auto turns SUD on after the start-up rewriting when something could not be
 * rewritten, and then rewrites those 6 bytes of every stub.  Without BMI2, or
 * with USNET_HOOK_FAST=off, the stub has no fast path: every call goes
 * through the entry, which builds the frame as the page-0 entry does.
 * Moved instructions keep their meaning: a rip-relative operand and a
 * jmp/jcc are re-aimed at their old targets (a jcc rel8 becomes rel32).
 *
 * Stubs live in arenas (256 KiB, r-x, written through a brief r-w-x) placed
 * in a free gap within reach of a rel32 from the code they serve, below it
 * when there is one (the heap grows upwards after the program).  An
 * arena's first 16 bytes hold the entry's and usnet_hook_fast_issue's
 * addresses, for stubs too far from the hook library for a rel32.
 *
 * General registers only: this runs at start-up and inside hooked mmap and
 * mprotect calls.
 */
#include <sys/mman.h>
#include <sys/syscall.h>

#include "hook_internal.h"

#define ARENA_SIZE (256 * 1024)
#define ARENA_HEADER 16
#define MAX_ARENAS 256
/* |stub - code| must fit a rel32 with room to spare */
#define REACH 0x7ff00000L
/* the most one stub can take: its fixed part and 8 moved instructions, a
 * jcc rel8 growing by 4 */
#define STUB_MAX (80 + HOOK_PLAN_MAX_INSNS * 19)
#define SLOT_ENTRY 0
#define SLOT_ISSUE 8
#define MIN_ADDR 0x10000UL

struct arena {
	uintptr_t base, used;
};
static struct arena arenas[MAX_ARENAS];
static int narenas;

bool hook_stub_owns(uintptr_t addr)
{
	for (int i = 0; i < narenas; i++)
		if (addr >= arenas[i].base && addr < arenas[i].base + ARENA_SIZE)
			return true;
	return false;
}

static long dist(uintptr_t a, uintptr_t b)
{
	return a > b ? (long)(a - b) : (long)(b - a);
}

/* Whether stubs in [a, a + ARENA_SIZE) reach all of [start, end) and back. */
static bool in_reach(uintptr_t a, uintptr_t start, uintptr_t end)
{
	return dist(a + ARENA_SIZE, start) < REACH && dist(end, a) < REACH;
}

/* The free gap nearest to [start, end) where an arena reaches it. */
struct gap_search {
	uintptr_t start, end;
	uintptr_t prev_end;       /* end of the mapping before */
	bool prev_heap;           /* ... which is [heap] */
	uintptr_t below, above;   /* best candidates (0: none) */
};

static void consider_gap(struct gap_search *g, uintptr_t lo, uintptr_t hi, bool before_stack)
{
	if (lo < MIN_ADDR)
		lo = MIN_ADDR;
	if (hi <= lo || hi - lo < ARENA_SIZE || before_stack)
		return;
	if (hi <= g->start) {
		/* below the code: as close to it as the gap allows */
		uintptr_t a = (hi - ARENA_SIZE) & ~4095UL;
		if (a >= lo && in_reach(a, g->start, g->end) && a > g->below)
			g->below = a;
	} else if (lo >= g->end && !g->prev_heap) {
		/* above: as close as possible, though not right after the
		 * heap, whose growth it would block */
		uintptr_t a = (lo + 4095) & ~4095UL;
		if (a + ARENA_SIZE <= hi && in_reach(a, g->start, g->end) && (!g->above || a < g->above))
			g->above = a;
	}
}

static int gap_cb(const struct hook_mapping *m, void *arg)
{
	struct gap_search *g = arg;
	bool stack = !hook_strncmp(m->path, "[stack", 6);
	consider_gap(g, g->prev_end, m->start, stack);
	g->prev_end = m->end;
	g->prev_heap = !hook_strncmp(m->path, "[heap]", 7);
	return 0;
}

static struct arena *arena_new(uintptr_t start, uintptr_t end)
{
	if (narenas == MAX_ARENAS)
		return NULL;
	for (int tries = 0; tries < 4; tries++) {
		struct gap_search g = { start, end, 0, false, 0, 0 };
		hook_maps_each(gap_cb, &g);
		consider_gap(&g, g.prev_end, 0x7ffffffff000UL, false);
		uintptr_t a = g.below ? g.below : g.above;
		if (!a)
			return NULL;
		long r = RAW6(SYS_mmap, a, ARENA_SIZE, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
		if (r == (long)a) {
			*(uintptr_t *)(a + SLOT_ENTRY) = (uintptr_t)usnet_hook_stub_entry;
			*(uintptr_t *)(a + SLOT_ISSUE) = (uintptr_t)usnet_hook_fast_issue;
			RAW3(SYS_mprotect, a, ARENA_SIZE, PROT_READ | PROT_EXEC);
			struct arena *ar = &arenas[narenas];
			ar->base = a;
			ar->used = ARENA_HEADER;
			__atomic_store_n(&narenas, narenas + 1, __ATOMIC_RELEASE);
			return ar;
		}
		if (r > 0 || r < -4095)   /* an old kernel ignoring NOREPLACE */
			RAW2(SYS_munmap, r, ARENA_SIZE);
		/* taken meanwhile (another thread): look again */
	}
	return NULL;
}

static struct arena *arena_for(uintptr_t start, uintptr_t end)
{
	for (int i = narenas - 1; i >= 0; i--)
		if (arenas[i].used + STUB_MAX <= ARENA_SIZE && in_reach(arenas[i].base, start, end))
			return &arenas[i];
	return arena_new(start, end);
}

/* --- emitting one stub --- */
struct out {
	uint8_t *p;       /* where it is written (the arena, writable) */
	size_t n;         /* bytes so far */
	bool bad;         /* a displacement did not fit */
};

static uintptr_t out_addr(const struct out *o)
{
	return (uintptr_t)o->p + o->n;
}

static void put(struct out *o, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		o->p[o->n++] = b[i];
}

static void put32(struct out *o, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		o->p[o->n++] = (uint8_t)(v >> (8 * i));
}

static int32_t rd32(const uint8_t *p)
{
	return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

/* The rel32 from next (the end of the instruction) to target. */
static uint32_t rel32(struct out *o, uintptr_t next, uintptr_t target)
{
	long d = (long)(target - next);
	if (d != (long)(int32_t)d)
		o->bad = true;
	return (uint32_t)(int32_t)d;
}

/* One moved instruction: len bytes at orig, described by desc. */
static void move_insn(struct out *o, uintptr_t orig, uint8_t desc)
{
	const uint8_t *src = (const uint8_t *)orig;
	size_t len = desc & 15;
	unsigned how = desc >> 4;
	if (how == HOOK_DESC_BRANCH) {
		const uint8_t *q = src, *end = src + len;
		while (q < end && (*q == 0x2e || *q == 0x3e || *q == 0xf2 || (*q >= 0x40 && *q <= 0x4f)))
			q++;
		uintptr_t next = orig + len;
		if (q >= end) {
			o->bad = true;
		} else if (*q == 0xeb || *q == 0xe9) {
			uintptr_t target = next + (*q == 0xeb ? (long)(int8_t)q[1] : (long)rd32(q + 1));
			put(o, (const uint8_t[]){ 0xe9 }, 1);
			put32(o, rel32(o, out_addr(o) + 4, target));
		} else if (*q >= 0x70 && *q <= 0x7f) {
			uintptr_t target = next + (long)(int8_t)q[1];
			put(o, (const uint8_t[]){ 0x0f, (uint8_t)(0x80 + (*q - 0x70)) }, 2);
			put32(o, rel32(o, out_addr(o) + 4, target));
		} else if (q + 6 <= end && q[0] == 0x0f && q[1] >= 0x80 && q[1] <= 0x8f) {
			uintptr_t target = next + (long)rd32(q + 2);
			put(o, (const uint8_t[]){ 0x0f, q[1] }, 2);
			put32(o, rel32(o, out_addr(o) + 4, target));
		} else {
			o->bad = true;
		}
		return;
	}
	uintptr_t at = out_addr(o);
	put(o, src, len);
	if (how) {
		/* rip-relative: the same target from the new place */
		uintptr_t target = orig + len + (long)rd32(src + how);
		uint32_t d = rel32(o, at + len, target);
		for (int i = 0; i < 4; i++)
			o->p[o->n - len + how + i] = (uint8_t)(d >> (8 * i));
	}
}

/* Where each stub's issue bytes are (for hook_stub_sud_on): a raw array. */
static uintptr_t *issue_at;
static size_t issue_n, issue_cap;

static void note_issue(uintptr_t at)
{
	if (issue_n == issue_cap) {
		size_t cap = issue_cap ? issue_cap * 2 : 1024;
		long r = RAW6(SYS_mmap, 0, cap * sizeof *issue_at, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (r < 0 && r > -4096)
			return;
		if (issue_at) {
			hook_memcpy((void *)r, issue_at, issue_n * sizeof *issue_at);
			RAW2(SYS_munmap, issue_at, issue_cap * sizeof *issue_at);
		}
		issue_at = (uintptr_t *)r;
		issue_cap = cap;
	}
	issue_at[issue_n++] = at;
}

/* call *slot(%rip), or a rel32 call to target when it reaches */
static void put_call(struct out *o, uintptr_t target, uintptr_t slot)
{
	long d = (long)(target - (out_addr(o) + 5));
	if (d == (long)(int32_t)d) {
		put(o, (const uint8_t[]){ 0xe8 }, 1);
		put32(o, (uint32_t)(int32_t)d);
	} else {
		put(o, (const uint8_t[]){ 0xff, 0x15 }, 2);
		put32(o, rel32(o, out_addr(o) + 4, slot));
	}
}

/* The 6 bytes at issue: the call itself, or (SUD on) a call of the raw
 * section's `syscall; ret` through the arena's slot. */
static void put_issue(uint8_t *p, uintptr_t at, uintptr_t arena)
{
	if (hook_state.sud_on) {
		int32_t d = (int32_t)(long)(arena + SLOT_ISSUE - (at + 6));
		p[0] = 0xff;
		p[1] = 0x15;
		for (int i = 0; i < 4; i++)
			p[2 + i] = (uint8_t)((uint32_t)d >> (8 * i));
	} else {
		static const uint8_t sc[6] = { 0x0f, 0x05, 0x0f, 0x1f, 0x40, 0x00 };
		for (int i = 0; i < 6; i++)
			p[i] = sc[i];
	}
}

/* Emits the stub for pl (code at base) at o; *issue: where its issue bytes
 * are (0: none, no fast path). */
static void emit_stub(struct out *o, uintptr_t base, const struct hook_plan *pl, uintptr_t arena,
		      uintptr_t *issue)
{
	uintptr_t insn = base + pl->insn, site = insn + 2, back = site;
	int nb = 0, na = 0;
	uintptr_t at = insn;
	*issue = 0;
	if (pl->kind == HOOK_PLAN_REGION) {
		nb = pl->counts & 15;
		na = pl->counts >> 4;
		at = insn + pl->rel;
		back = at + pl->len;
	}
	for (int i = 0; i < nb; i++) {
		move_insn(o, at, pl->desc[i]);
		at += pl->desc[i] & 15;
	}
	if (at != insn)
		o->bad = true;
	/* lea -128(%rsp), %rsp */
	put(o, (const uint8_t[]){ 0x48, 0x8d, 0x64, 0x24, 0x80 }, 5);
	bool fast = hook_state.gate_fast;
	size_t to_check = 0;
	if (fast) {
		/* mov $9, %ecx; shrx %rcx, %rax, %rcx; jrcxz check */
		put(o, (const uint8_t[]){ 0xb9, 0x09, 0x00, 0x00, 0x00, 0xc4, 0xe2, 0xf3, 0xf7, 0xc8, 0xe3, 0x00 },
		    12);
		to_check = o->n - 1;
	}
	size_t slow = o->n;
	/* lea SITE(%rip), %r11 */
	put(o, (const uint8_t[]){ 0x4c, 0x8d, 0x1d }, 3);
	put32(o, rel32(o, out_addr(o) + 4, site));
	put_call(o, (uintptr_t)usnet_hook_stub_entry, arena + SLOT_ENTRY);
	if (fast) {
		put(o, (const uint8_t[]){ 0xeb, 0x00 }, 2);      /* jmp done */
		size_t to_done = o->n - 1;
		o->p[to_check] = (uint8_t)(o->n - (to_check + 1));
		/* movabs $usnet_hook_fast_table, %rcx */
		put(o, (const uint8_t[]){ 0x48, 0xb9 }, 2);
		uint64_t t = (uint64_t)(uintptr_t)usnet_hook_fast_table;
		put32(o, (uint32_t)t);
		put32(o, (uint32_t)(t >> 32));
		/* movzbl (%rcx,%rax), %ecx; jrcxz slow */
		put(o, (const uint8_t[]){ 0x0f, 0xb6, 0x0c, 0x01, 0xe3 }, 5);
		long back_to_slow = (long)slow - (long)(o->n + 1);
		put(o, (const uint8_t[]){ (uint8_t)(int8_t)back_to_slow }, 1);
		*issue = out_addr(o);
		put_issue(o->p + o->n, out_addr(o), arena);
		o->n += 6;
		o->p[to_done] = (uint8_t)(o->n - (to_done + 1));
	}
	/* done: lea 128(%rsp), %rsp */
	put(o, (const uint8_t[]){ 0x48, 0x8d, 0xa4, 0x24, 0x80, 0x00, 0x00, 0x00 }, 8);
	at = site;
	for (int i = 0; i < na; i++) {
		move_insn(o, at, pl->desc[nb + i]);
		at += pl->desc[nb + i] & 15;
	}
	put(o, (const uint8_t[]){ 0xe9 }, 1);              /* jmp BACK */
	put32(o, rel32(o, out_addr(o) + 4, back));
}

/* Which arena holds addr. */
static struct arena *arena_of(uintptr_t addr)
{
	for (int i = 0; i < narenas; i++)
		if (addr >= arenas[i].base && addr < arenas[i].base + ARENA_SIZE)
			return &arenas[i];
	return NULL;
}

static void arena_open(struct arena *a);
static void arena_close(struct arena *a);

void hook_stub_sud_on(void)
{
	struct arena *open = NULL;
	for (size_t i = 0; i < issue_n; i++) {
		struct arena *a = arena_of(issue_at[i]);
		if (!a)
			continue;
		if (a != open) {
			if (open)
				arena_close(open);
			arena_open(a);
			open = a;
		}
		put_issue((uint8_t *)issue_at[i], issue_at[i], a->base);
	}
	if (open)
		arena_close(open);
}

/* Bytes of padding (int3, or the usual nops: 90, 66 90, 0f 1f /0 with
 * zero displacements, 66 2e prefixes): a stale plan does not overwrite
 * anything else. */
static bool pad_bytes_ok(const uint8_t *p)
{
	for (int i = 0; i < 5; i++)
		switch (p[i]) {
		case 0x90: case 0xcc: case 0x0f: case 0x1f: case 0x66: case 0x2e:
		case 0x00: case 0x40: case 0x44: case 0x80: case 0x84:
			break;
		default:
			return false;
		}
	return true;
}

static void put_jmp(uintptr_t at, uintptr_t target, size_t len)
{
	volatile uint8_t *p = (volatile uint8_t *)at;
	int32_t rel = (int32_t)(long)(target - (at + 5));
	/* everything but the opcode first: a thread racing through meets the
	 * old first instruction or the whole jump */
	for (int i = 0; i < 4; i++)
		p[1 + i] = (uint8_t)((uint32_t)rel >> (8 * i));
	for (size_t i = 5; i < len; i++)
		p[i] = 0xcc;
	p[0] = 0xe9;
}

static void put_jmp8(uintptr_t insn, int8_t rel)
{
	uint16_t v = (uint16_t)(0xeb | (uint16_t)(uint8_t)rel << 8);
	if ((insn & 63) != 63) {
		__atomic_store_n((uint16_t *)insn, v, __ATOMIC_RELEASE);
	} else {
		volatile uint8_t *p = (volatile uint8_t *)insn;
		p[1] = (uint8_t)rel;
		p[0] = 0xeb;
	}
}

static void arena_open(struct arena *a)
{
	RAW3(SYS_mprotect, a->base, ARENA_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC);
}

static void arena_close(struct arena *a)
{
	RAW3(SYS_mprotect, a->base, ARENA_SIZE, PROT_READ | PROT_EXEC);
}

long hook_stub_apply(uintptr_t start, uintptr_t end, const struct hook_plan *plans, long n)
{
	long rewritten = 0;
	struct arena *open = NULL;
	for (long i = 0; i < n; i++) {
		const struct hook_plan *pl = &plans[i];
		uintptr_t insn = start + pl->insn;
		if (insn + 2 > end || hook_addr_skipped(insn) || !(((const uint8_t *)insn)[0] == 0x0f &&
		    (((const uint8_t *)insn)[1] == 0x05 || ((const uint8_t *)insn)[1] == 0x34)))
			continue;   /* not (or no longer) a system call */
		uintptr_t lo = insn, hi = insn + 2;
		if (pl->kind == HOOK_PLAN_PAD) {
			uintptr_t pad = insn + 2 + pl->rel;
			if (pad < start || pad + 5 > end || !pad_bytes_ok((const uint8_t *)pad)) {
				hook_state.sites_left++;
				hook_log_hex(2, "the padding planned for a system call is gone, at ", insn);
				continue;
			}
			lo = pad < lo ? pad : lo;
			hi = pad + 5 > hi ? pad + 5 : hi;
		} else if (pl->kind == HOOK_PLAN_REGION) {
			lo = insn + pl->rel;
			hi = lo + pl->len;
			if (lo < start || hi > end || pl->len < 5) {
				hook_state.sites_left++;
				hook_log_hex(2, "a bad plan for the system call at ", insn);
				continue;
			}
		} else {
			hook_state.sites_left++;
			hook_log_hex(2, "no safe way to rewrite the system call at ", insn);
			continue;
		}
		struct arena *a = arena_for(lo, hi);
		if (!a) {
			hook_state.sites_left++;
			hook_log_hex(2, "no room for a stub within reach of ", insn);
			continue;
		}
		if (a != open) {
			if (open)
				arena_close(open);
			arena_open(a);
			open = a;
		}
		struct out o = { (uint8_t *)(a->base + a->used), 0, false };
		uintptr_t issue;
		emit_stub(&o, start, pl, a->base, &issue);
		if (o.bad) {
			hook_state.sites_left++;
			hook_log_hex(2, "a moved instruction does not reach its target from the stub, at ", insn);
			continue;   /* the bytes stay unused */
		}
		uintptr_t stub = a->base + a->used;
		if (issue)
			note_issue(issue);
		if (hook_state.cfg.verbosity >= 3) {
			char line[160];
			struct hook_buf b = { line, 0, sizeof line };
			hook_buf_str(&b, pl->kind == HOOK_PLAN_PAD ? "pad " : lo == insn ? "fwd " : "back ");
			hook_buf_hex(&b, insn);
			hook_buf_str(&b, " region ");
			hook_buf_hex(&b, lo);
			hook_buf_str(&b, "..");
			hook_buf_hex(&b, hi);
			hook_buf_str(&b, " stub ");
			hook_buf_hex(&b, stub);
			hook_buf_str(&b, " len ");
			hook_buf_dec(&b, (long)o.n);
			hook_log(3, line);
		}
		a->used = (a->used + o.n + 7) & ~7UL;
		if (pl->kind == HOOK_PLAN_PAD) {
			uintptr_t pad = insn + 2 + pl->rel;
			put_jmp(pad, stub, 5);
			put_jmp8(insn, pl->rel);
			hook_state.sites_pad++;
		} else {
			put_jmp(lo, stub, pl->len);
			if (lo == insn)
				hook_state.sites_fwd++;
			else
				hook_state.sites_back++;
		}
		rewritten++;
	}
	if (open)
		arena_close(open);
	return rewritten;
}
