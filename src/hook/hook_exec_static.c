/*
 * usnet hook — a hooked program that execs a statically linked one.  The
 * preloaded library would not load into the new image (no dynamic loader
 * reads LD_PRELOAD there), so the program would run unhooked without a
 * word.  The execve becomes one of usnet-exec (src/loader/), which starts
 * the static program with the hook, as `usnet run` does: its path comes
 * from USNET_EXEC_PATH (set by usnet run and usnet trace, kept across
 * execve like every USNET_* setting).  Without it, the exec is named in
 * one line, or refused with EACCES under USNET_STRICT=1.
 *
 * General registers only, no libc: memory from raw mmap, freed by the
 * caller when the execve fails.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "hook_static.h"

#define EXEC_PATH_MAX 4096
#define ARGV_MAX 65536

static char exec_path[EXEC_PATH_MAX];   /* usnet-exec, or "" */
static bool strict;
static bool fsgsbase;   /* the kernel lets user code use rdfsbase/wrgsbase */

#define K_HWCAP2_FSGSBASE 2

bool hook_static_fsgsbase(void)
{
	return fsgsbase;
}

void hook_exec_static_configure(char **envp)
{
	/* at install, not on the dispatcher's path: libc may be asked */
	fsgsbase = getauxval(AT_HWCAP2) & K_HWCAP2_FSGSBASE;
	for (size_t i = 0; envp && envp[i]; i++) {
		if (!hook_strncmp(envp[i], "USNET_EXEC_PATH=", 16))
			hook_copy_str(exec_path, sizeof exec_path, envp[i] + 16);
		else if (!hook_strncmp(envp[i], "USNET_STRICT=1", 15))
			strict = true;
	}
}

/* Whether the file at path is an x86-64 ELF program without an
 * interpreter.  Anything unreadable is left to execve. */
static bool is_static_elf(const char *path)
{
	long fd = RAW4(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return false;
	Elf64_Ehdr eh;
	bool is_static = false;
	if (RAW4(SYS_pread64, fd, &eh, sizeof eh, 0) == (long)sizeof eh && eh.e_ident[EI_MAG0] == ELFMAG0 &&
	    eh.e_ident[EI_MAG1] == ELFMAG1 && eh.e_ident[EI_MAG2] == ELFMAG2 && eh.e_ident[EI_MAG3] == ELFMAG3 &&
	    eh.e_ident[EI_CLASS] == ELFCLASS64 && eh.e_machine == EM_X86_64 &&
	    (eh.e_type == ET_EXEC || eh.e_type == ET_DYN) && eh.e_phentsize == sizeof(Elf64_Phdr) &&
	    eh.e_phnum > 0 && eh.e_phnum <= 128) {
		is_static = true;
		for (unsigned i = 0; i < eh.e_phnum; i++) {
			Elf64_Phdr ph;
			if (RAW4(SYS_pread64, fd, &ph, sizeof ph, eh.e_phoff + (uint64_t)i * sizeof ph) !=
			    (long)sizeof ph || ph.p_type == PT_INTERP) {
				is_static = false;
				break;
			}
		}
	}
	RAW1(SYS_close, fd);
	return is_static;
}

static void put_str(char **at, const char *s)
{
	while ((*(*at)++ = *s++))
		;
}

long hook_exec_static_route(struct usnet_syscall *sc, void **map, size_t *map_len)
{
	*map = NULL;
	*map_len = 0;
	int a = 0;   /* execve's path argument; execveat's when relative to the cwd */
	if (sc->nr == SYS_execveat) {
		if ((int)sc->args[0] != AT_FDCWD || sc->args[4])
			return 0;   /* a descriptor's program: not looked at */
		a = 1;
	}
	char path[EXEC_PATH_MAX];
	/* a static program re-exec'ing itself: its /proc/self/exe is usnet-exec */
	const char *own = hook_static_own_exe((const char *)sc->args[a]);
	size_t got = own ? hook_strlen(own) : hook_user_read_some(path, (const char *)sc->args[a], sizeof path - 1);
	if (own && got < sizeof path)
		hook_copy_str(path, sizeof path, own);
	path[got < sizeof path ? got : sizeof path - 1] = 0;
	if (!got || hook_strlen(path) >= sizeof path - 1 || !is_static_elf(path))
		return 0;
	if (!exec_path[0] || !fsgsbase) {
		struct hook_buf b = { path, hook_strlen(path), sizeof path };
		hook_buf_str(&b, !fsgsbase ? " is statically linked and this CPU or kernel does not let programs "
					     "use FSGSBASE"
					   : " is statically linked and usnet-exec is unknown (USNET_EXEC_PATH)");
		hook_buf_str(&b, strict ? ": refusing to exec it (USNET_STRICT)" : ": it runs unhooked");
		hook_log(0, path);
		return strict ? -EACCES : 0;
	}
	/* the program's argv and envp arrays, through the kernel */
	char *const *argv = (char *const *)sc->args[a + 1], *const *envp = (char *const *)sc->args[a + 2];
	size_t argc = 0, envc = 0;
	char *p;
	while (argv && argc < ARGV_MAX && hook_user_read(&p, &argv[argc], sizeof p) && p)
		argc++;
	while (envp && envc < ARGV_MAX && hook_user_read(&p, &envp[envc], sizeof p) && p)
		envc++;
	/* usnet-exec PATH ARGV...; first in the environment (getenv finds
	 * the first): the hook in static mode, SUD, the loader's tunables */
	static const char *const added[] = {
		"USNET_STATIC_EXEC=1", "USNET_HOOK=sud", "USNET_TRACE_HOOK=sud", "GLIBC_TUNABLES=glibc.pthread.rseq=0",
	};
	const size_t nadded = sizeof added / sizeof added[0];
	size_t nargs = argc ? argc : 1;   /* usnet-exec wants an argv[0]: the path */
	size_t words = (2 + nargs + 1) + (nadded + envc + 1);
	size_t len = (words * sizeof(char *) + hook_strlen(path) + 1 + 4095) & ~4095UL;
	long r = RAW6(SYS_mmap, 0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r < 0 && r > -4096)
		return 0;
	char **nargv = (char **)r, **nenv = nargv + 2 + nargs + 1;
	char *strings = (char *)(nenv + nadded + envc + 1), *at = strings;
	put_str(&at, path);
	nargv[0] = exec_path;
	nargv[1] = strings;
	for (size_t i = 0; i < argc; i++)
		hook_user_read(&nargv[2 + i], &argv[i], sizeof nargv[0]);
	if (!argc)
		nargv[2] = strings;
	nargv[2 + nargs] = NULL;
	size_t j = 0;
	for (size_t i = 0; i < nadded; i++)
		nenv[j++] = (char *)added[i];
	for (size_t i = 0; i < envc; i++)
		hook_user_read(&nenv[j++], &envp[i], sizeof nenv[0]);
	nenv[j] = NULL;
	hook_log(1, "exec of a statically linked program: through usnet-exec");
	sc->nr = SYS_execve;
	sc->args[0] = (long)exec_path;
	sc->args[1] = (long)nargv;
	sc->args[2] = (long)nenv;
	*map = nargv;
	*map_len = len;
	return 0;
}
