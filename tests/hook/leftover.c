/*
 * usnet hook tests — a system call no rewriting plan can take: it is a
 * branch target, right after a jump, the instruction after it is another
 * target, and no padding is within reach.  `leftover N` makes N getppid
 * calls there and N through libc (each checked against the other), prints
 * "ok".  auto leaves the site to Syscall User Dispatch, which it then turns
 * on; rewrite says it is not hooked (tests/hook/run.sh).
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

long leftover_getppid(void);
__asm__(".text\n"
	".macro FAR\n"              /* 150 bytes without padding */
	"  .rept 50\n"
	"  mov %rdi, %rsi\n"
	"  .endr\n"
	".endm\n"
	".globl leftover_getppid\n"
	"leftover_getppid:\n"
	"  FAR\n"
	"  mov $110, %eax\n"
	"  jmp 6f\n"
	"6: syscall\n"
	"7: test %rsp, %rsp\n"
	"  jz 7b\n"
	"  FAR\n"
	"  ret\n");

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 10;
	for (long i = 0; i < n; i++)
		if (leftover_getppid() != getppid())
			return 1;
	printf("ok\n");
	return 0;
}
