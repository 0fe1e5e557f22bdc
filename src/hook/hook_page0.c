/*
 * usnet hook — the trampoline at address 0 and the map of rewritten sites.
 *
 * A rewritten site executes `call *%rax` with rax = the system-call number,
 * so it lands at address nr.  Every byte from 0 on must lead, without
 * touching the stack or any register but rip, to a jump to the entry.
 * A plain nop sled costs one instruction per byte (hundreds for common
 * numbers), so the sled is a chain of short forward jumps instead:
 *
 *   pairs "eb d": entered at the eb, a 2-byte jmp +d; entered at the d byte,
 *   d is a prefix (REX 0x4f, or segment 0x26) of the next pair's jmp.
 *
 * Either way execution moves forward by about d bytes, so a few jumps reach a
 * short nop pad and `movabs $usnet_hook_entry, %r11; jmp *%r11` (r11 is
 * clobbered by syscall anyway).  Two such chains fill two pages, so every
 * number below 8100 reaches the entry (the kernel answers ENOSYS to the
 * invalid ones).
 */
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "hook_internal.h"

#define PAGE0_LEN 0x2000
#define PAD_LEN 40
#define STUB_LEN 13
#define SHORT_ZONE 84      /* last bytes of a chain use the shorter 0x26 jumps */


/* Fills [a,b) with the jump chain, then the pad and the stub; returns the
 * end of the stub. */
static size_t fill_chain(uint8_t *p, size_t a, size_t b)
{
	for (size_t i = a; i + 1 < b; i += 2) {
		p[i] = 0xeb;
		p[i + 1] = i + 2 + SHORT_ZONE > b ? 0x26 : 0x4f;
	}
	if ((b - a) & 1)
		p[b - 1] = 0x90;
	for (size_t i = b; i < b + PAD_LEN; i++)
		p[i] = 0x90;
	size_t s = b + PAD_LEN;
	uint64_t target = (uint64_t)(uintptr_t)usnet_hook_entry;
	p[s] = 0x49;           /* movabs $target, %r11 */
	p[s + 1] = 0xbb;
	for (int i = 0; i < 8; i++)
		p[s + 2 + i] = (uint8_t)(target >> (8 * i));
	p[s + 10] = 0x41;      /* jmp *%r11 */
	p[s + 11] = 0xff;
	p[s + 12] = 0xe3;
	return s + STUB_LEN;
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
			     "); run as root or set it to 0, or use --hook sud");
		return r < 0 ? (int)r : -22;
	}
	uint8_t *p = (uint8_t *)0;
	/* The compiler must not see a store through a null pointer. */
	__asm__ volatile("" : "+r"(p));
	/* The first stub sits at 520..532, inside 512..547: numbers that x86-64
	 * reserves for x32 variants and never gives to a 64-bit call, so no
	 * valid call lands inside the stub's bytes. */
	size_t end1 = fill_chain(p, 0, 480);
	size_t end2 = fill_chain(p, end1, PAGE0_LEN - PAD_LEN - STUB_LEN - 16);
	for (size_t i = end2; i < PAGE0_LEN; i++)
		p[i] = 0xcc;
	RAW3(SYS_mprotect, 0, PAGE0_LEN, PROT_EXEC);
	return 0;
}

/* One bit per byte of the 47-bit user address space: 16 TiB reserved, only
 * the pages that hold bits of rewritten code are ever touched. */
int hook_bitmap_init(void)
{
	if (hook_state.site_bitmap)
		return 0;
	long r = RAW6(SYS_mmap, 0, 1UL << 44, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r < 0 && r > -4096)
		return (int)r;
	hook_state.site_bitmap = (uint8_t *)r;
	return 0;
}

void hook_bitmap_set(uintptr_t insn)
{
	if (insn >> 47)
		return;
	__atomic_fetch_or(&hook_state.site_bitmap[insn >> 3], (uint8_t)(1u << (insn & 7)), __ATOMIC_RELAXED);
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
