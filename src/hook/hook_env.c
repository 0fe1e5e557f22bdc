/*
 * usnet hook — keeping the hook across execve.  The new image is hooked again
 * because the preloaded library loads again: that needs LD_PRELOAD and the
 * USNET_* settings in the new environment, so when a program execs with an
 * environment that lacks them (env -i, a cleaned envp), they are added back.
 * General registers only; memory from raw mmap (the process is being
 * replaced, or the array is freed when execve fails).
 */
#include <sys/mman.h>
#include <sys/syscall.h>

#include "hook_internal.h"

#define KEPT_MAX 16
static const char *kept[KEPT_MAX];   /* "NAME=value" strings from the start-up environment */
static size_t kept_n;

static bool wanted(const char *s)
{
	return !hook_strncmp(s, "LD_PRELOAD=", 11) || !hook_strncmp(s, "USNET_", 6);
}

static size_t name_len(const char *s)
{
	size_t n = 0;
	while (s[n] && s[n] != '=')
		n++;
	return n;
}

void hook_env_capture(char **envp)
{
	kept_n = 0;
	for (size_t i = 0; envp && envp[i] && kept_n < KEPT_MAX; i++)
		if (wanted(envp[i]))
			kept[kept_n++] = envp[i];
}

char **hook_env_for_exec(char **envp, size_t *map_len)
{
	*map_len = 0;
	if (!kept_n)
		return NULL;
	size_t n = 0;
	bool missing[KEPT_MAX];
	size_t add = 0;
	for (size_t k = 0; k < kept_n; k++)
		missing[k] = true;
	/* the program's array and strings are read through the kernel, a chunk
	 * at a time: with a bad pointer, execve is left to fail with EFAULT */
	char *chunk[32];
	size_t have = 0, at = 0;
	for (;; n++) {
		if (!envp)
			break;
		if (at == have) {
			size_t got = hook_user_read_some(chunk, &envp[n], sizeof chunk);
			have = got / sizeof chunk[0];
			at = 0;
			if (!have)
				return NULL;
		}
		char *entry = chunk[at++];
		if (!entry)
			break;
		char head[64];
		size_t got = hook_user_read_some(head, entry, sizeof head - 1);
		if (!got)
			return NULL;
		head[got] = 0;
		for (size_t k = 0; k < kept_n; k++) {
			size_t l = name_len(kept[k]);
			if (missing[k] && l + 1 < sizeof head && !hook_strncmp(head, kept[k], l) && head[l] == '=')
				missing[k] = false;
		}
	}
	for (size_t k = 0; k < kept_n; k++)
		add += missing[k];
	if (!add)
		return NULL;
	size_t len = ((n + add + 1) * sizeof(char *) + 4095) & ~4095UL;
	long r = RAW6(SYS_mmap, 0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r < 0 && r > -4096)
		return NULL;
	char **out = (char **)r;
	size_t j = 0;
	for (size_t i = 0; i < n; i++)
		out[j++] = envp[i];
	for (size_t k = 0; k < kept_n; k++)
		if (missing[k])
			out[j++] = (char *)kept[k];
	out[j] = NULL;
	*map_len = len;
	return out;
}
