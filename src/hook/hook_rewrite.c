/*
 * usnet hook — finding and rewriting system-call instructions.
 *
 * Each executable mapping is disassembled linearly with capstone (a real
 * decoder: the bytes 0f 05 inside another instruction are not a syscall).
 * Every `syscall` (0f 05) and `sysenter` (0f 34) becomes `call *%rax`
 * (ff d0), which has the same length.  Sites are marked in the bitmap before
 * they are patched, so the entry never sees a legitimate site it does not
 * know.  File-backed mappings are looked up in the offset cache first:
 * disassembling libc alone takes ~100 ms, a cache hit a few microseconds.
 *
 * Capstone itself is loaded with dlopen on the first cache miss only:
 * loading and relocating it costs more than the rest of the start-up, and a
 * warm cache never needs it.
 *
 * This file is ordinary code (capstone uses vector registers): at run time it
 * is reached only through usnet_hook_call_saved().
 */
#include <capstone/capstone.h>
#include <dlfcn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "hook_internal.h"
#include "hook_unhooked.h"

static csh cs_handle;
static cs_insn *cs_one;
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

static struct {
	cs_err (*open)(cs_arch, cs_mode, csh *);
	cs_insn *(*malloc)(csh);
	bool (*disasm_iter)(csh, const uint8_t **, size_t *, uint64_t *, cs_insn *);
} cs;
static bool cs_failed;

/* Set while capstone is being loaded: its own mappings are not rewritten
 * (it makes no system calls) and the rewriter's lock is held. */
HOOK_HIDDEN volatile bool hook_loading_disassembler;

static int disasm_open(void)
{
	if (cs_one)
		return 0;
	if (cs_failed)
		return -1;
	hook_loading_disassembler = true;
	void *lib = dlopen("libcapstone.so.4", RTLD_NOW | RTLD_LOCAL);
	if (!lib)
		lib = dlopen("libcapstone.so", RTLD_NOW | RTLD_LOCAL);
	hook_loading_disassembler = false;
	if (lib) {
		cs.open = (cs_err (*)(cs_arch, cs_mode, csh *))dlsym(lib, "cs_open");
		cs.malloc = (cs_insn * (*)(csh)) dlsym(lib, "cs_malloc");
		cs.disasm_iter = (bool (*)(csh, const uint8_t **, size_t *, uint64_t *, cs_insn *))dlsym(
			lib, "cs_disasm_iter");
	}
	if (!lib || !cs.open || !cs.malloc || !cs.disasm_iter ||
	    cs.open(CS_ARCH_X86, CS_MODE_64, &cs_handle) != CS_ERR_OK || !(cs_one = cs.malloc(cs_handle))) {
		cs_failed = true;
		hook_report_unhooked("cannot load the disassembler (libcapstone.so.4); code is not rewritten", 0);
		return -1;
	}
	return 0;
}

/* Collects the offsets (from base) of syscall/sysenter in [base, base+len). */
static void *raw_alloc(size_t len)
{
	long r = RAW6(SYS_mmap, 0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return r < 0 && r > -4096 ? NULL : (void *)r;
}

static int raw_mprotect(uintptr_t start, size_t len, int prot)
{
	return (int)RAW3(SYS_mprotect, start & ~4095UL, len + (start & 4095), prot);
}

static long find_sites(const uint8_t *base, size_t len, uint32_t **out, size_t *capp)
{
	size_t cap = 256, n = 0;
	uint32_t *offs = raw_alloc(cap * 4);
	if (!offs)
		return -1;
	const uint8_t *p = base;
	size_t left = len;
	uint64_t addr = 0;
	while (left) {
		if (!cs.disasm_iter(cs_handle, &p, &left, &addr, cs_one)) {
			/* undecodable byte (data, padding): step over it */
			p++;
			left--;
			addr++;
			continue;
		}
		if (cs_one->id != X86_INS_SYSCALL && cs_one->id != X86_INS_SYSENTER)
			continue;
		if (n == cap) {
			uint32_t *bigger = raw_alloc(cap * 8);
			if (!bigger)
				break;
			hook_memcpy(bigger, offs, cap * 4);
			RAW2(SYS_munmap, offs, cap * 4);
			offs = bigger;
			cap *= 2;
		}
		offs[n++] = (uint32_t)cs_one->address;
	}
	*out = offs;
	*capp = cap;
	return (long)n;
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
 * Linux >= 5.14; without it the writes fault as before.  offs ascending. */
static void populate_site_pages(uintptr_t start, uintptr_t end, const uint32_t *offs, long n)
{
	uintptr_t run_start = 0, run_end = 0;   /* the run of pages so far */
	for (long i = 0; i < n; i++) {
		uintptr_t insn = start + offs[i];
		if (insn + 2 > end)
			continue;
		/* a site may straddle two pages */
		uintptr_t first = insn & ~4095UL, last_end = ((insn + 1) & ~4095UL) + 4096;
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
	uint32_t *offs = NULL;
	size_t cap = 0;
	long n = cacheable ? hook_cache_load(&key, &offs) : -1;
	bool from_cache = n >= 0;
	if (!from_cache && disasm_open() == 0) {
		n = find_sites((const uint8_t *)start, end - start, &offs, &cap);
		if (n >= 0 && cacheable)
			hook_cache_store(&key, offs, n);
	}
	if (n > 0) {
		if (raw_mprotect(start, end - start, prot | PROT_READ | PROT_WRITE) == 0) {
			populate_site_pages(start, end, offs, n);
			for (long i = 0; i < n; i++) {
				uintptr_t insn = start + offs[i];
				if (insn + 2 > end || !site_bytes_ok((const uint8_t *)insn) ||
				    hook_addr_skipped(insn))
					continue;
				hook_bitmap_set(insn);
				hook_patch_site(insn);
				rewritten++;
			}
			raw_mprotect(start, end - start, prot);
		} else {
			hook_report_unhooked("cannot make code writable to rewrite it", start);
		}
	} else if (!readable) {
		raw_mprotect(start, end - start, prot);
	}
	if (offs) {
		if (from_cache)
			hook_cache_free(offs, n);
		else
			RAW2(SYS_munmap, offs, cap * 4);
	}
	unlock();
	return rewritten;
}

static int rewrite_cb(const struct hook_mapping *m, void *arg)
{
	long *total = arg;
	if (!(m->prot & PROT_EXEC) || m->start == 0)
		return 0;
	if (hook_strncmp(m->path, "[vdso]", 7) == 0 || hook_strncmp(m->path, "[vsyscall]", 11) == 0)
		return 0;
	/* the disassembler makes no system calls (and may be in use) */
	for (const char *p = m->path; *p; p++)
		if (hook_strncmp(p, "libcapstone", 11) == 0)
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
