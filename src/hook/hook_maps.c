/*
 * usnet hook — /proc/self/maps without stdio (the parser runs inside hooked
 * calls and signal handlers, where libc's FILE locks may be held).
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "hook_internal.h"

static const char *parse_hex(const char *p, const char *end, unsigned long *out)
{
	unsigned long v = 0;
	for (; p < end; p++) {
		char c = *p;
		int d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else
			break;
		v = v * 16 + (unsigned long)d;
	}
	*out = v;
	return p;
}

static const char *parse_dec(const char *p, const char *end, unsigned long *out)
{
	unsigned long v = 0;
	for (; p < end && *p >= '0' && *p <= '9'; p++)
		v = v * 10 + (unsigned long)(*p - '0');
	*out = v;
	return p;
}

/* One line "start-end perms offset maj:min inode   path". */
static int parse_line(const char *p, const char *end, struct hook_mapping *m)
{
	unsigned long v;
	p = parse_hex(p, end, &v);
	m->start = v;
	if (p >= end || *p++ != '-')
		return -1;
	p = parse_hex(p, end, &v);
	m->end = v;
	if (p + 5 >= end || *p++ != ' ')
		return -1;
	m->prot = (p[0] == 'r' ? PROT_READ : 0) | (p[1] == 'w' ? PROT_WRITE : 0) |
		  (p[2] == 'x' ? PROT_EXEC : 0);
	m->priv = p[3] == 'p';
	p += 5;
	p = parse_hex(p, end, &m->offset);
	if (p >= end || *p++ != ' ')
		return -1;
	p = parse_hex(p, end, &m->dev_major);
	if (p >= end || *p++ != ':')
		return -1;
	p = parse_hex(p, end, &m->dev_minor);
	if (p >= end || *p++ != ' ')
		return -1;
	p = parse_dec(p, end, &m->ino);
	while (p < end && *p == ' ')
		p++;
	size_t n = 0;
	for (; p < end && n + 1 < sizeof m->path; p++)
		m->path[n++] = *p;
	m->path[n] = 0;
	return 0;
}

int hook_maps_each(int (*fn)(const struct hook_mapping *m, void *arg), void *arg)
{
	char buf[4096];
	size_t have = 0;
	long fd = RAW3(SYS_open, "/proc/self/maps", O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return (int)fd;
	int ret = 0;
	for (;;) {
		long r = RAW3(SYS_read, fd, buf + have, sizeof buf - have);
		if (r == -4)
			continue;
		if (r < 0) {
			ret = (int)r;
			break;
		}
		have += (size_t)r;
		size_t start = 0;
		for (size_t i = 0; i < have; i++) {
			if (buf[i] != '\n')
				continue;
			struct hook_mapping m;
			if (parse_line(buf + start, buf + i, &m) == 0) {
				ret = fn(&m, arg);
				if (ret)
					goto out;
			}
			start = i + 1;
		}
		/* keep the partial last line */
		size_t rest = have - start;
		for (size_t i = 0; i < rest; i++)
			buf[i] = buf[start + i];
		have = rest;
		if (r == 0 || have == sizeof buf)
			break;
	}
out:
	RAW1(SYS_close, fd);
	return ret;
}

struct find_arg {
	uintptr_t addr;
	struct hook_mapping *out;
};

static int find_cb(const struct hook_mapping *m, void *arg)
{
	struct find_arg *fa = arg;
	if (fa->addr >= m->start && fa->addr < m->end) {
		hook_memcpy(fa->out, m, sizeof *m);
		return 1;
	}
	return 0;
}

int hook_maps_find(uintptr_t addr, struct hook_mapping *out)
{
	struct find_arg fa = { addr, out };
	return hook_maps_each(find_cb, &fa) == 1 ? 0 : -1;
}
