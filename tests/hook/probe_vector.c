/*
 * usnet hook tests — vector registers across hooked calls: fill ymm/zmm
 * registers with known values, make an inline syscall, compare.  Returns 0
 * when unchanged (or 77 when the CPU has no AVX2), 1 otherwise.
 */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>

__attribute__((target("avx2"))) static int check_avx2(long n)
{
	static const unsigned char pattern[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
						   17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };
	for (long i = 0; i < n; i++) {
		unsigned char out[2][32];
		long nr = SYS_getppid;
		__asm__ volatile("vmovdqu %3, %%ymm1\n"
				 "vmovdqu %3, %%ymm15\n"
				 "syscall\n"
				 "vmovdqu %%ymm1, %0\n"
				 "vmovdqu %%ymm15, %1\n"
				 : "=m"(out[0]), "=m"(out[1]), "+a"(nr)
				 : "m"(pattern)
				 : "rcx", "r11", "xmm1", "xmm15", "memory");
		if (memcmp(out[0], pattern, 32) || memcmp(out[1], pattern, 32)) {
			fprintf(stderr, "probe: ymm registers changed across a syscall\n");
			return 1;
		}
	}
	return 0;
}

__attribute__((target("avx512f"))) static int check_avx512(long n)
{
	unsigned char pattern[64];
	for (int i = 0; i < 64; i++)
		pattern[i] = (unsigned char)(200 - i);
	for (long i = 0; i < n; i++) {
		unsigned char out[2][64];
		long nr = SYS_getppid;
		__asm__ volatile("vmovdqu64 %3, %%zmm7\n"
				 "vmovdqu64 %3, %%zmm31\n"
				 "syscall\n"
				 "vmovdqu64 %%zmm7, %0\n"
				 "vmovdqu64 %%zmm31, %1\n"
				 : "=m"(out[0]), "=m"(out[1]), "+a"(nr)
				 : "m"(pattern)
				 : "rcx", "r11", "xmm7", "xmm31", "memory");
		if (memcmp(out[0], pattern, 64) || memcmp(out[1], pattern, 64)) {
			fprintf(stderr, "probe: zmm registers changed across a syscall\n");
			return 1;
		}
	}
	return 0;
}

/* The same around a call that makes the hook run its normal (vector-using)
 * code: mmap(PROT_EXEC) is disassembled and rewritten before it returns,
 * inside usnet_hook_call_saved().  All 32 zmm registers are checked (the
 * hook's helpers, memset and memcpy, use the upper ones). */
#define ZMM_ALL(op) op(0) op(1) op(2) op(3) op(4) op(5) op(6) op(7) op(8) op(9) op(10) op(11) \
	op(12) op(13) op(14) op(15) op(16) op(17) op(18) op(19) op(20) op(21) op(22) op(23) op(24) \
	op(25) op(26) op(27) op(28) op(29) op(30) op(31)
#define ZMM_LOAD(i) "vmovdqu64 (%[in]), %%zmm" #i "\n"
#define ZMM_STORE(i) "vmovdqu64 %%zmm" #i ", " #i "*64(%[out])\n"
#define ZMM_CLOBBER(i) "xmm" #i,

__attribute__((target("avx512f"))) static int check_avx512_across_rewrite(long n)
{
	unsigned char pattern[64];
	for (int i = 0; i < 64; i++)
		pattern[i] = (unsigned char)(i * 3 + 1);
	static unsigned char out[32][64];
	for (long i = 0; i < n; i++) {
		long ret = SYS_mmap;
		register long flags __asm__("r10") = 0x22;   /* MAP_PRIVATE | MAP_ANONYMOUS */
		register long fd __asm__("r8") = -1;
		register long off __asm__("r9") = 0;
		__asm__ volatile(ZMM_ALL(ZMM_LOAD)
				 "syscall\n"
				 ZMM_ALL(ZMM_STORE)
				 : "+a"(ret)
				 : [in] "r"(pattern), [out] "b"(out), "D"(0L), "S"(8192L),
				   "d"(5L /* PROT_READ|PROT_EXEC */), "r"(flags), "r"(fd), "r"(off)
				 : "rcx", "r11", ZMM_ALL(ZMM_CLOBBER) "memory");
		if (ret < 0 && ret > -4096) {
			fprintf(stderr, "probe: mmap failed\n");
			return 1;
		}
		munmap((void *)ret, 8192);
		long nr = SYS_getppid;
		__asm__ volatile("syscall" : "+a"(nr) : : "rcx", "r11", "memory");
		for (int r = 0; r < 32; r++)
			if (memcmp(out[r], pattern, 64)) {
				fprintf(stderr, "probe: zmm%d changed across an mmap the hook rewrote\n", r);
				return 1;
			}
	}
	return 0;
}

int vector_rewrite_check(long n)
{
	__builtin_cpu_init();
	if (!__builtin_cpu_supports("avx512f"))
		return 77;
	return check_avx512_across_rewrite(n);
}

int vector_check(long n)
{
	__builtin_cpu_init();
	if (!__builtin_cpu_supports("avx2"))
		return 77;
	if (check_avx2(n))
		return 1;
	if (__builtin_cpu_supports("avx512f"))
		return check_avx512(n) ? 1 : 0;
	return 0;
}
