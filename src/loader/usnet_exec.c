/*
 * usnet-exec PROGRAM ARGV0 [ARGS...] — starts a statically linked program
 * (static-pie included) with the usnet hook in front of it.
 *
 * A static program has no dynamic loader to honour LD_PRELOAD, so `usnet
 * run` and `usnet trace` start this small dynamic program instead, with the
 * hook's library preloaded (its constructor installs the hook in static
 * mode: Syscall User Dispatch, see src/hook/hook_static.h).  It maps the
 * program's PT_LOAD segments as the kernel would, builds the stack the
 * kernel would have given it (the same argument and environment strings,
 * an auxiliary vector whose AT_PHDR, AT_PHNUM, AT_ENTRY, AT_BASE, AT_EXECFN
 * and AT_RANDOM describe the program), lets the hook take the program's
 * thread pointer apart from its own, and jumps to the entry point.
 *
 * Its own system calls go through usnet_hook_syscall (found in the preloaded
 * library), so that `usnet trace` counts the program's calls only.
 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../hook/hook_static.h"

typedef long (*raw_syscall_fn)(long nr, long a0, long a1, long a2, long a3, long a4, long a5);
typedef int (*static_start_fn)(const struct usnet_hook_static_image *img, char *err, size_t errlen);

static raw_syscall_fn sys;
static const char *prog;

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "usnet-exec: %s: ", prog ? prog : "?");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(127);
}

static bool failed(long r)
{
	return (unsigned long)r > -4096UL;
}

#define PAGE 4096UL
static uintptr_t page_down(uintptr_t a) { return a & ~(PAGE - 1); }
static uintptr_t page_up(uintptr_t a) { return (a + PAGE - 1) & ~(PAGE - 1); }

static void read_at(int fd, void *buf, size_t n, off_t off, const char *what)
{
	long r = sys(SYS_pread64, fd, (long)buf, (long)n, off, 0, 0);
	if (r != (long)n)
		die("cannot read its %s: %s", what, r < 0 ? strerror((int)-r) : "file too short");
}

static int prot_of(uint32_t flags)
{
	return ((flags & PF_R) ? PROT_READ : 0) | ((flags & PF_W) ? PROT_WRITE : 0) |
	       ((flags & PF_X) ? PROT_EXEC : 0);
}

struct image {
	uintptr_t bias, entry, phdr, end;
	unsigned phnum;
};

/* Maps the PT_LOAD segments as binfmt_elf does. */
static void map_image(int fd, struct image *im)
{
	Elf64_Ehdr eh;
	read_at(fd, &eh, sizeof eh, 0, "ELF header");
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_machine != EM_X86_64 || (eh.e_type != ET_EXEC && eh.e_type != ET_DYN) ||
	    eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 128)
		die("not an x86-64 ELF program");
	Elf64_Phdr ph[128];
	read_at(fd, ph, eh.e_phnum * sizeof ph[0], (off_t)eh.e_phoff, "program headers");
	uintptr_t lo = UINTPTR_MAX, hi = 0;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		if (ph[i].p_type == PT_INTERP)
			die("is dynamically linked (it has an interpreter): run it directly");
		if (ph[i].p_type != PT_LOAD)
			continue;
		if (ph[i].p_vaddr < lo)
			lo = ph[i].p_vaddr;
		if (ph[i].p_vaddr + ph[i].p_memsz > hi)
			hi = ph[i].p_vaddr + ph[i].p_memsz;
	}
	if (hi <= lo)
		die("has nothing to load");
	lo = page_down(lo);
	hi = page_up(hi);
	/* Reserve the whole span first: segments land in it, nothing else
	 * does.  A static-pie goes low, far from where mmap places things
	 * (top down), so that its heap (brk, right after it) has room to
	 * grow, as the kernel places it (ELF_ET_DYN_BASE) for the same reason. */
	uintptr_t want = lo;
	if (eh.e_type == ET_DYN) {
		uint32_t rnd = 0;
		sys(SYS_getrandom, (long)&rnd, sizeof rnd, 0, 0, 0, 0);
		want = 0x200000000UL + (rnd % (1U << 18)) * PAGE;   /* 8 GiB + up to 1 GiB */
	}
	long base = sys(SYS_mmap, (long)want, (long)(hi - lo), PROT_NONE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (eh.e_type == ET_DYN && failed(base))
		base = sys(SYS_mmap, 0, (long)(hi - lo), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (failed(base) || (eh.e_type == ET_EXEC && (uintptr_t)base != lo))
		die("cannot map its image at %#lx: %s", (unsigned long)lo,
		    failed(base) ? strerror((int)-base) : "the range is in use");
	im->bias = (uintptr_t)base - lo;
	im->phdr = 0;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		const Elf64_Phdr *p = &ph[i];
		if (p->p_type == PT_PHDR)
			im->phdr = im->bias + p->p_vaddr;
		if (p->p_type != PT_LOAD)
			continue;
		if (!im->phdr && eh.e_phoff >= p->p_offset && eh.e_phoff < p->p_offset + p->p_filesz)
			im->phdr = im->bias + p->p_vaddr + (eh.e_phoff - p->p_offset);
		uintptr_t start = im->bias + p->p_vaddr;
		uintptr_t page = page_down(start);
		uintptr_t file_end = start + p->p_filesz, mem_end = start + p->p_memsz;
		int prot = prot_of(p->p_flags);
		bool zero_tail = p->p_memsz > p->p_filesz && (file_end & (PAGE - 1));
		if (p->p_filesz) {
			long r = sys(SYS_mmap, (long)page, (long)(page_up(file_end) - page),
				     prot | (zero_tail ? PROT_WRITE : 0), MAP_PRIVATE | MAP_FIXED, fd,
				     (long)(p->p_offset - (start - page)));
			if (failed(r))
				die("cannot map a segment: %s", strerror((int)-r));
		}
		if (zero_tail) {
			memset((void *)file_end, 0, page_up(file_end) - file_end);
			if (!(prot & PROT_WRITE))
				sys(SYS_mprotect, (long)page_down(file_end), PAGE, prot, 0, 0, 0);
		}
		uintptr_t anon = p->p_filesz ? page_up(file_end) : page;
		if (page_up(mem_end) > anon) {
			long r = sys(SYS_mmap, (long)anon, (long)(page_up(mem_end) - anon), prot,
				     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			if (failed(r))
				die("cannot map its bss: %s", strerror((int)-r));
		}
	}
	if (!im->phdr)
		die("its program headers are not in a loaded segment");
	im->entry = im->bias + eh.e_entry;
	im->phnum = eh.e_phnum;
	im->end = im->bias + hi;
}

__attribute__((noreturn)) static void jump(uintptr_t sp, uintptr_t entry)
{
	/* as the kernel starts a program: rdx = 0 (no atexit function from
	 * a dynamic loader), a fresh frame, no thread pointer (the hook's
	 * stays in %gs base) */
	__asm__ volatile("mov %0, %%rsp\n\t"
			 "mov %1, %%rax\n\t"
			 "xor %%edx, %%edx\n\t"
			 "wrfsbase %%rdx\n\t"
			 "xor %%ebp, %%ebp\n\t"
			 "jmp *%%rax"
			 : : "r"(sp), "r"(entry) : "rax", "rdx", "memory");
	__builtin_unreachable();
}

/* The environment the program gets: the loader's, with the glibc tunables
 * usnet run set for the loader's own glibc put back as they were. */
static bool env_skip(const char *e)
{
	return !strncmp(e, "GLIBC_TUNABLES=", 15) || !strncmp(e, "USNET_EXEC_TUNABLES=", 20);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: usnet-exec PROGRAM ARGV0 [ARGS...] (started by usnet run and usnet trace)\n");
		return 2;
	}
	prog = argv[1];
	sys = (raw_syscall_fn)dlsym(RTLD_DEFAULT, "usnet_hook_syscall");
	static_start_fn start = (static_start_fn)dlsym(RTLD_DEFAULT, "usnet_hook_static_start");
	if (!sys || !start)
		die("the usnet hook is not preloaded (start static programs with usnet run or usnet trace)");

	long fd = sys(SYS_openat, AT_FDCWD, (long)prog, O_RDONLY | O_CLOEXEC, 0, 0, 0);
	if (fd < 0)
		die("%s", strerror((int)-fd));
	struct image im;
	map_image((int)fd, &im);
	/* the file's own path, as the kernel shows a program's exe link */
	static char exe_path[4096], fd_link[64];
	snprintf(fd_link, sizeof fd_link, "/proc/self/fd/%ld", fd);
	long len = sys(SYS_readlink, (long)fd_link, (long)exe_path, sizeof exe_path - 1, 0, 0, 0);
	if (len <= 0)
		die("cannot find its own path: %s", strerror(len < 0 ? (int)-len : ENOENT));
	exe_path[len] = 0;
	sys(SYS_close, fd, 0, 0, 0, 0, 0);

	/* the auxiliary vector the kernel gave us, adjusted */
	unsigned long aux[2 * 64];
	size_t naux = 0;
	long afd = sys(SYS_openat, AT_FDCWD, (long)"/proc/self/auxv", O_RDONLY | O_CLOEXEC, 0, 0, 0);
	if (afd < 0)
		die("cannot read /proc/self/auxv: %s", strerror((int)-afd));
	long got = sys(SYS_read, afd, (long)aux, sizeof aux - 2 * sizeof aux[0], 0, 0, 0);
	sys(SYS_close, afd, 0, 0, 0, 0, 0);
	if (got <= 0)
		die("cannot read /proc/self/auxv");
	naux = (size_t)got / (2 * sizeof aux[0]);
	static unsigned char random_bytes[16];
	sys(SYS_getrandom, (long)random_bytes, sizeof random_bytes, 0, 0, 0, 0);
	size_t keep = 0;
	for (size_t i = 0; i < naux && aux[2 * i] != AT_NULL; i++) {
		unsigned long k = aux[2 * i], v = aux[2 * i + 1];
		switch (k) {
		case AT_PHDR: v = im.phdr; break;
		case AT_PHENT: v = sizeof(Elf64_Phdr); break;
		case AT_PHNUM: v = im.phnum; break;
		case AT_ENTRY: v = im.entry; break;
		case AT_BASE: v = 0; break;   /* no interpreter */
		case AT_EXECFN: v = (unsigned long)prog; break;
		case AT_RANDOM: v = (unsigned long)random_bytes; break;
		case AT_SECURE: v = 0; break;
		default: break;
		}
		aux[2 * keep] = k;
		aux[2 * keep + 1] = v;
		keep++;
	}
	aux[2 * keep] = AT_NULL;
	aux[2 * keep + 1] = 0;
	naux = keep + 1;

	/* the stack: argc, argv, envp, auxv, below this frame (the strings
	 * are the ones the kernel put above it) */
	extern char **environ;
	size_t nenv = 0;
	for (char **e = environ; *e; e++)
		nenv++;
	int pargc = argc - 2;
	size_t words = 1 + (size_t)pargc + 1 + nenv + 2 + 2 * naux + 2;
	unsigned long area[words + 2];
	unsigned long *sp = (unsigned long *)(((uintptr_t)area + 15) & ~15UL);
	size_t w = 0;
	sp[w++] = (unsigned long)pargc;
	for (int i = 0; i < pargc; i++)
		sp[w++] = (unsigned long)argv[2 + i];
	sp[w++] = 0;
	const char *tunables = getenv("USNET_EXEC_TUNABLES");
	static char tun_entry[4096];
	for (char **e = environ; *e; e++)
		if (!env_skip(*e))
			sp[w++] = (unsigned long)*e;
	if (tunables && *tunables) {
		snprintf(tun_entry, sizeof tun_entry, "GLIBC_TUNABLES=%s", tunables);
		sp[w++] = (unsigned long)tun_entry;
	}
	sp[w++] = 0;
	memcpy(&sp[w], aux, 2 * naux * sizeof aux[0]);

	const char *slash = strrchr(argv[2], '/');
	sys(SYS_prctl, PR_SET_NAME, (long)(slash ? slash + 1 : argv[2]), 0, 0, 0, 0);

	struct usnet_hook_static_image img = { .brk_start = im.end, .path = exe_path };
	char err[256] = "";
	int r = start(&img, err, sizeof err);
	if (r < 0)
		die("%s", err);
	jump((uintptr_t)sp, im.entry);
}
