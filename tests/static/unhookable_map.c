/*
 * Code the rewriter cannot reach (tests/static): `syscall; ret` mapped
 * executable from a file opened read-only with MAP_SHARED, which cannot be
 * made writable.  Prints what a getppid through that code returned.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: unhookable_map SCRATCH-FILE\n");
		return 2;
	}
	static const unsigned char code[] = { 0x0f, 0x05, 0xc3 };   /* syscall; ret */
	int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, code, sizeof code) != (ssize_t)sizeof code || ftruncate(fd, 4096)) {
		perror("unhookable_map: scratch file");
		return 1;
	}
	close(fd);
	fd = open(argv[1], O_RDONLY);
	void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		perror("unhookable_map: mmap");
		return 1;
	}
	long (*call)(long) = (long (*)(long))p;
	long r;
	/* rax = the number: the asm passes it in the register the code uses */
	__asm__ volatile("call *%1" : "=a"(r) : "r"(call), "a"((long)SYS_getppid) : "rcx", "r11", "memory");
	printf("getppid %s\n", r == getppid() ? "right" : "wrong");
	return 0;
}
