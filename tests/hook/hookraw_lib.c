/* usnet hook tests — a library the probe dlopen()s: raw inline syscalls. */
#include <sys/syscall.h>

long hookraw_getppid_n(long n)
{
	long ok = 0;
	for (long i = 0; i < n; i++) {
		long ret;
		__asm__ volatile("syscall" : "=a"(ret) : "0"((long)SYS_getppid) : "rcx", "r11", "memory");
		ok += ret > 0;
	}
	return ok;
}
