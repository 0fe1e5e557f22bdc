/*
 * usnet hook — logging without libc: the hook runs inside system calls the
 * program may make while holding stdio or malloc locks, so it formats into
 * caller-provided buffers and writes with a raw write(2).
 */
#include <sys/syscall.h>

#include "hook_internal.h"

size_t hook_strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

void hook_copy_str(char *dst, size_t cap, const char *src)
{
	size_t i = 0;
	if (!cap)
		return;
	for (; src[i] && i + 1 < cap; i++)
		dst[i] = src[i];
	dst[i] = 0;
}

void hook_memcpy(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	for (size_t i = 0; i < n; i++) {
		d[i] = s[i];
		/* keep the compiler from turning this loop into a memcpy call,
		 * which could use vector registers */
		__asm__ volatile("" ::: "memory");
	}
}

int hook_strncmp(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (a[i] != b[i])
			return (unsigned char)a[i] - (unsigned char)b[i];
		if (!a[i])
			return 0;
	}
	return 0;
}

void hook_buf_char(struct hook_buf *b, char c)
{
	if (b->len + 1 < b->cap)
		b->p[b->len++] = c;
	b->p[b->len] = 0;
}

void hook_buf_str(struct hook_buf *b, const char *s)
{
	while (*s)
		hook_buf_char(b, *s++);
}

void hook_buf_dec(struct hook_buf *b, long v)
{
	char tmp[24];
	int n = 0;
	unsigned long u = v < 0 ? 0UL - (unsigned long)v : (unsigned long)v;
	if (v < 0)
		hook_buf_char(b, '-');
	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	while (n)
		hook_buf_char(b, tmp[--n]);
}

void hook_buf_hex(struct hook_buf *b, unsigned long v)
{
	char tmp[16];
	int n = 0;
	hook_buf_str(b, "0x");
	do {
		tmp[n++] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	while (n)
		hook_buf_char(b, tmp[--n]);
}

void hook_write_all(int fd, const char *p, size_t len)
{
	while (len) {
		long r = RAW3(SYS_write, fd, p, len);
		if (r == -4 /* EINTR */)
			continue;
		if (r <= 0)
			return;
		p += r;
		len -= (size_t)r;
	}
}

static void log_line(int level, const char *msg, int with, unsigned long v)
{
	char line[512];
	struct hook_buf b = { line, 0, sizeof line };
	if (level > hook_state.cfg.verbosity)
		return;
	hook_buf_str(&b, "usnet-hook: ");
	hook_buf_str(&b, msg);
	if (with == 'x')
		hook_buf_hex(&b, v);
	else if (with == 'd')
		hook_buf_dec(&b, (long)v);
	hook_buf_char(&b, '\n');
	hook_write_all(2, line, b.len);
}

void hook_log(int level, const char *msg)
{
	log_line(level, msg, 0, 0);
}

void hook_log_hex(int level, const char *msg, unsigned long v)
{
	log_line(level, msg, 'x', v);
}

void hook_log_dec(int level, const char *msg, long v)
{
	log_line(level, msg, 'd', (unsigned long)v);
}
