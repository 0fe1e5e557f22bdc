/*
 * usnet switch — configuration (USNET_* environment variables, set by
 * `usnet run`), logging to stderr without stdio locks, and the clock.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>

#include "vsock.h"

int vsock_log_level;

const char *vsock_config(const char *key)
{
	char name[64] = "USNET_";
	size_t n = strlen(name);
	for (const char *p = key; *p && n + 1 < sizeof name; p++)
		name[n++] = (char)toupper((unsigned char)*p);
	name[n] = 0;
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

void vsock_log(int level, const char *fmt, ...)
{
	if (level > vsock_log_level)
		return;
	char line[512];
	int n = snprintf(line, sizeof line, "usnet[%ld]: ", vsock_sys(SYS_getpid, 0, 0, 0, 0, 0, 0));
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	n += m < 0 ? 0 : (m > (int)(sizeof line - (size_t)n - 2) ? (int)(sizeof line - (size_t)n - 2) : m);
	line[n++] = '\n';
	vsock_sys(SYS_write, 2, line, n, 0, 0, 0);
}

uint64_t vsock_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
