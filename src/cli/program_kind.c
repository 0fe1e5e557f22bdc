/*
 * usnet — what kind of program `usnet run` and `usnet trace` are asked to
 * start, decided before it runs: the hook reaches a program through
 * LD_PRELOAD, which only the dynamic loader honours, so a statically linked
 * program (static-pie included) must be started through usnet-exec instead,
 * and a program the loader starts in secure mode (set-user-ID, file
 * capabilities) or that is not an x86-64 ELF would run unhooked: each is
 * named here so that the caller says so in one line (or refuses, --strict).
 * A script is judged by its interpreter (#!), as execve would run it, and
 * a file that is neither ELF nor #! by /bin/sh, as execvp runs it.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "program_kind.h"

/* PATH lookup as execvp does it: a name with a slash is taken as it is. */
static int resolve(const char *name, char *out, size_t cap)
{
	if (strchr(name, '/')) {
		if ((size_t)snprintf(out, cap, "%s", name) >= cap)
			return -ENAMETOOLONG;
		return access(out, X_OK) == 0 ? 0 : -errno;
	}
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	int last = -ENOENT;
	for (const char *p = path;;) {
		size_t len = strcspn(p, ":");
		if ((size_t)snprintf(out, cap, "%.*s%s%s", (int)len, p, len ? "/" : "", name) < cap) {
			struct stat st;
			if (access(out, X_OK) == 0 && stat(out, &st) == 0 && S_ISREG(st.st_mode))
				return 0;
			if (errno != ENOENT)
				last = -errno;
		}
		if (!p[len])
			return last;
		p += len + 1;
	}
}

static int classify_elf(int fd, struct program_kind *pk)
{
	Elf64_Ehdr eh;
	if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_machine != EM_X86_64) {
		pk->kind = PROGRAM_FOREIGN;
		return 0;
	}
	if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN) {
		pk->kind = PROGRAM_FOREIGN;
		return 0;
	}
	bool interp = false;
	for (unsigned i = 0; i < eh.e_phnum && i < 256; i++) {
		Elf64_Phdr ph;
		if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (uint64_t)i * eh.e_phentsize)) !=
		    (ssize_t)sizeof ph) {
			pk->kind = PROGRAM_FOREIGN;
			return 0;
		}
		if (ph.p_type == PT_INTERP)
			interp = true;
	}
	if (interp)
		pk->kind = PROGRAM_DYNAMIC;
	else
		pk->kind = eh.e_type == ET_DYN ? PROGRAM_STATIC_PIE : PROGRAM_STATIC;
	return 0;
}

int program_kind_of(const char *name, struct program_kind *pk)
{
	memset(pk, 0, sizeof *pk);
	int r = resolve(name, pk->path, sizeof pk->path);
	if (r < 0)
		return r;
	snprintf(pk->judged, sizeof pk->judged, "%s", pk->path);
	/* a script: its interpreter (one level, as Linux allows a few) */
	for (int depth = 0; depth < 4; depth++) {
		int fd = open(pk->judged, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		/* what makes the dynamic loader run in secure mode (AT_SECURE):
		 * privileges the exec gains, never through a script */
		struct stat st;
		if (depth == 0 && fstat(fd, &st) == 0 &&
		    (((st.st_mode & S_ISUID) && st.st_uid != geteuid()) ||
		     ((st.st_mode & S_ISGID) && (st.st_mode & S_IXGRP) && st.st_gid != getegid())))
			pk->secure = true;
		if (depth == 0 && geteuid() != 0 && fgetxattr(fd, "security.capability", NULL, 0) > 0)
			pk->secure = true;
		struct statvfs vfs;
		if (depth == 0 && fstatvfs(fd, &vfs) == 0 && (vfs.f_flag & ST_NOSUID))
			pk->secure = false;   /* the kernel ignores both there */
		char head[256];
		ssize_t n = pread(fd, head, sizeof head - 1, 0);
		if (n >= 2 && head[0] == '#' && head[1] == '!') {
			close(fd);
			head[n] = 0;
			char *p = head + 2;
			p += strspn(p, " \t");
			size_t len = strcspn(p, " \t\n");
			if (!len)
				return -ENOEXEC;
			p[len] = 0;
			pk->script = true;
			pk->secure = false;
			snprintf(pk->judged, sizeof pk->judged, "%s", p);
			continue;
		}
		if (n < 4 || memcmp(head, ELFMAG, SELFMAG)) {
			/* neither ELF nor #!: execvp runs it with /bin/sh */
			close(fd);
			pk->script = true;
			snprintf(pk->judged, sizeof pk->judged, "/bin/sh");
			continue;
		}
		r = classify_elf(fd, pk);
		close(fd);
		return r;
	}
	return -ELOOP;
}

const char *program_kind_name(enum program_kind_id k)
{
	switch (k) {
	case PROGRAM_DYNAMIC: return "dynamically linked";
	case PROGRAM_STATIC: return "statically linked";
	case PROGRAM_STATIC_PIE: return "statically linked (static-pie)";
	case PROGRAM_FOREIGN: return "not an x86-64 ELF program";
	}
	return "unknown";
}

int program_exec_path(char *out, size_t cap)
{
	const char *env = getenv("USNET_EXEC");
	if (env && *env) {
		if ((size_t)snprintf(out, cap, "%s", env) >= cap)
			return -ENAMETOOLONG;
		return access(out, X_OK) == 0 ? 0 : -errno;
	}
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		return -errno;
	self[n] = 0;
	char *slash = strrchr(self, '/');
	if (slash)
		*slash = 0;
	if ((size_t)snprintf(out, cap, "%s/usnet-exec", self) >= cap)
		return -ENAMETOOLONG;
	return access(out, X_OK) == 0 ? 0 : -errno;
}

bool program_static_supported(char *why, size_t cap)
{
	/* the hook switches the thread pointer with rdfsbase/wrfsbase, which
	 * the kernel allows user code when it reports HWCAP2_FSGSBASE */
	unsigned long hwcap2 = 0;
	FILE *f = fopen("/proc/self/auxv", "r");
	if (f) {
		unsigned long kv[2];
		while (fread(kv, sizeof kv, 1, f) == 1 && kv[0] != AT_NULL)
			if (kv[0] == AT_HWCAP2)
				hwcap2 = kv[1];
		fclose(f);
	}
	if (!(hwcap2 & 2)) {
		snprintf(why, cap, "this CPU or kernel does not let programs use FSGSBASE");
		return false;
	}
	char exe[PATH_MAX];
	int r = program_exec_path(exe, sizeof exe);
	if (r < 0) {
		snprintf(why, cap, "usnet-exec is missing next to usnet: %s", strerror(-r));
		return false;
	}
	return true;
}

/* GLIBC_TUNABLES for usnet-exec's own glibc: no rseq area (the program's
 * libc registers its own; a thread has one), the program's value kept in
 * USNET_EXEC_TUNABLES and put back by usnet-exec. */
static void set_loader_tunables(void)
{
	const char *old = getenv("GLIBC_TUNABLES");
	if (old && *old)
		setenv("USNET_EXEC_TUNABLES", old, 1);
	else
		unsetenv("USNET_EXEC_TUNABLES");
	setenv("GLIBC_TUNABLES", "glibc.pthread.rseq=0", 1);
}

int program_route(const char *tool, char **argv, bool strict, const char *hook_env, char ***exec_argv)
{
	*exec_argv = argv;
	/* for the hook: a static program the program execs goes through it too */
	char loader[PATH_MAX];
	if (program_exec_path(loader, sizeof loader) == 0)
		setenv("USNET_EXEC_PATH", loader, 1);
	if (strict)
		setenv("USNET_STRICT", "1", 1);
	struct program_kind pk;
	if (program_kind_of(argv[0], &pk) < 0)
		return 0;   /* execvp says what is wrong */
	char why[256] = "";
	const char *what = NULL;
	if (pk.kind == PROGRAM_DYNAMIC && !pk.secure)
		return 0;
	if (pk.secure) {
		what = "is set-user-ID, set-group-ID or has file capabilities: the dynamic loader "
		       "ignores LD_PRELOAD for it";
	} else if (pk.kind == PROGRAM_FOREIGN) {
		what = pk.script ? "runs through an interpreter that is not an x86-64 ELF program"
				 : "is not an x86-64 ELF program";
	} else if (pk.script) {
		what = "runs through a statically linked interpreter, which usnet-exec does not start";
	} else if (!program_static_supported(why, sizeof why)) {
		what = why;
	} else {
		/* statically linked: through usnet-exec, with SUD */
		char exe[PATH_MAX];
		program_exec_path(exe, sizeof exe);
		const char *mode = getenv(hook_env);
		if (mode && !strcmp(mode, "rewrite"))
			fprintf(stderr, "usnet %s: %s is %s: hooked with Syscall User Dispatch, not rewriting\n",
				tool, argv[0], program_kind_name(pk.kind));
		setenv(hook_env, "sud", 1);
		setenv("USNET_STATIC_EXEC", "1", 1);
		set_loader_tunables();
		size_t n = 0;
		while (argv[n])
			n++;
		char **v = calloc(n + 3, sizeof *v);
		if (!v) {
			fprintf(stderr, "usnet %s: out of memory\n", tool);
			return 1;
		}
		v[0] = strdup(exe);
		v[1] = strdup(pk.path);
		for (size_t i = 0; i < n; i++)
			v[2 + i] = argv[i];
		*exec_argv = v;
		return 0;
	}
	if (strict) {
		fprintf(stderr, "usnet %s: %s %s, so usnet cannot hook it: refusing to run it (--strict)\n",
			tool, argv[0], what);
		return 2;
	}
	fprintf(stderr, "usnet %s: %s %s: it runs unhooked, its sockets are the kernel's "
		"(--strict refuses instead)\n", tool, argv[0], what);
	return 0;
}
