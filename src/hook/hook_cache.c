/*
 * usnet hook — a per-file cache of where the system-call instructions are
 * and how each is rewritten (struct hook_plan).
 *
 * Disassembling a large library takes tens of milliseconds; the result only
 * depends on the file's contents, so it is stored once per (device, inode,
 * size, mtime, file offset, length) in a directory private to the user
 * (default /tmp/usnet-hook-cache-UID, or $USNET_HOOK_CACHE; "off" disables
 * it).  The rewriter still checks each recorded site's bytes before patching,
 * so a stale entry cannot make it patch anything but a syscall (the cache
 * directory is the user's own: a forged entry would need the user's rights,
 * which could change the program anyway).
 * Raw system calls only: this runs at start-up and inside hooked mmap calls.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "hook_internal.h"

static char cache_dir[200];
static bool cache_ready;

struct cache_header {
	char magic[8];
	struct hook_cache_key key;
	uint64_t count;
};

static const char cache_magic[8] = "USNHKC3";

void hook_cache_init(const char *dir)
{
	if (dir && (!dir[0] || !hook_strncmp(dir, "off", 4)))
		return;
	struct hook_buf b = { cache_dir, 0, sizeof cache_dir };
	if (dir) {
		hook_buf_str(&b, dir);
	} else {
		hook_buf_str(&b, "/tmp/usnet-hook-cache-");
		hook_buf_dec(&b, RAW0(SYS_getuid));
	}
	RAW2(SYS_mkdir, cache_dir, 0700);
	struct stat st;
	if (RAW2(SYS_lstat, cache_dir, &st) != 0 || !S_ISDIR(st.st_mode) ||
	    st.st_uid != (uid_t)RAW0(SYS_getuid) || (st.st_mode & 0022))
		return;   /* not ours, or writable by others: do not trust it */
	cache_ready = true;
}

static void cache_path(char *out, size_t cap, const struct hook_cache_key *k, long tmp_pid)
{
	struct hook_buf b = { out, 0, cap };
	hook_buf_str(&b, cache_dir);
	/* the format's version in the name: builds that keep another format
	 * (offsets only, USNHKC1) share the directory without undoing each
	 * other's entries */
	hook_buf_str(&b, "/p2-");
	const unsigned long *f = &k->dev;
	for (size_t i = 0; i < sizeof *k / sizeof *f; i++) {
		if (i)
			hook_buf_char(&b, '-');
		hook_buf_hex(&b, f[i]);
	}
	if (tmp_pid) {
		hook_buf_str(&b, ".tmp");
		hook_buf_dec(&b, tmp_pid);
	}
}

static bool key_equal(const struct hook_cache_key *a, const struct hook_cache_key *b)
{
	const unsigned long *x = &a->dev, *y = &b->dev;
	for (size_t i = 0; i < sizeof *a / sizeof *x; i++)
		if (x[i] != y[i])
			return false;
	return true;
}

#define REC sizeof(struct hook_plan)

long hook_cache_load(const struct hook_cache_key *key, struct hook_plan **plans)
{
	if (!cache_ready)
		return -1;
	char path[400];
	cache_path(path, sizeof path, key, 0);
	long fd = RAW3(SYS_open, path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct stat st;
	long n = -1;
	if (RAW2(SYS_fstat, fd, &st) == 0 && (size_t)st.st_size >= sizeof(struct cache_header)) {
		long r = RAW6(SYS_mmap, 0, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (r > 0 || r < -4095) {
			const struct cache_header *h = (const void *)r;
			if (!hook_strncmp(h->magic, cache_magic, 8) && key_equal(&h->key, key) &&
			    sizeof *h + h->count * REC == (size_t)st.st_size) {
				*plans = (struct hook_plan *)(h + 1);
				n = (long)h->count;
			} else {
				RAW2(SYS_munmap, r, st.st_size);
			}
		}
	}
	RAW1(SYS_close, fd);
	return n;
}

void hook_cache_free(struct hook_plan *plans, long n)
{
	uintptr_t h = (uintptr_t)plans - sizeof(struct cache_header);
	RAW2(SYS_munmap, h, sizeof(struct cache_header) + (size_t)n * REC);
}

void hook_cache_store(const struct hook_cache_key *key, const struct hook_plan *plans, long n)
{
	if (!cache_ready || n < 0)
		return;
	char path[400], tmp[420];
	long pid = RAW0(SYS_getpid);
	cache_path(path, sizeof path, key, 0);
	cache_path(tmp, sizeof tmp, key, pid);
	long fd = RAW3(SYS_open, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	struct cache_header h;
	hook_memcpy(h.magic, cache_magic, 8);
	hook_memcpy(&h.key, key, sizeof *key);
	h.count = (uint64_t)n;
	hook_write_all((int)fd, (const char *)&h, sizeof h);
	hook_write_all((int)fd, (const char *)plans, (size_t)n * REC);
	RAW1(SYS_close, fd);
	RAW2(SYS_rename, tmp, path);
}
