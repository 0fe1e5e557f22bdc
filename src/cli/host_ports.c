/*
 * net.ipv4.ip_local_reserved_ports, for host-address mode (host_ports.h).
 * The kernel keeps the reserved ports out of its own ephemeral choices; an
 * explicit bind() by a kernel program still gets them, which is why the
 * range lies above the kernel's usual ephemeral range too.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "host_ports.h"

#define RESERVED_PORTS "/proc/sys/net/ipv4/ip_local_reserved_ports"

int host_ports_parse(const char *range, uint16_t *lo, uint16_t *hi)
{
	unsigned a, b;
	char tail;
	if (!range || sscanf(range, "%u-%u%c", &a, &b, &tail) != 2 || a < 1024 || b > 65535 || a > b)
		return -1;
	*lo = (uint16_t)a;
	*hi = (uint16_t)b;
	return 0;
}

static int write_setting(const char *value)
{
	int fd = open(RESERVED_PORTS, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t n = strlen(value);
	ssize_t w = write(fd, value, n);
	int e = w < 0 ? -errno : 0;
	close(fd);
	return w == (ssize_t)n ? 0 : (e ? e : -EIO);
}

int host_ports_reserve(const char *range, char *saved, size_t savedlen, char *err, size_t errlen)
{
	saved[0] = 0;
	int fd = open(RESERVED_PORTS, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot read %s: %s", RESERVED_PORTS, strerror(errno));
		return -errno;
	}
	ssize_t n = read(fd, saved, savedlen - 1);
	int e = errno;
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "cannot read %s: %s", RESERVED_PORTS, strerror(e));
		return -e;
	}
	saved[n] = 0;
	saved[strcspn(saved, "\n")] = 0;
	char want[HOST_PORTS_SAVED_MAX + 32];
	snprintf(want, sizeof want, "%s%s%s", saved, saved[0] ? "," : "", range);
	int r = write_setting(want);
	if (r < 0) {
		snprintf(err, errlen, "cannot reserve ports %s from the kernel (%s): %s", range, RESERVED_PORTS,
			 strerror(-r));
		saved[0] = 0;
		return r;
	}
	return 0;
}

void host_ports_restore(const char *range, const char *saved)
{
	char now[HOST_PORTS_SAVED_MAX], rest[HOST_PORTS_SAVED_MAX] = "";
	int fd = open(RESERVED_PORTS, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, now, sizeof now - 1) : -1;
	if (fd >= 0)
		close(fd);
	bool found = false;
	if (n > 0) {
		now[n] = 0;
		now[strcspn(now, "\n")] = 0;
		char *save = NULL;
		for (char *tok = strtok_r(now, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			if (!found && !strcmp(tok, range)) {
				found = true;
				continue;
			}
			size_t used = strlen(rest);
			snprintf(rest + used, sizeof rest - used, "%s%s", used ? "," : "", tok);
		}
	}
	const char *value = found ? rest : saved;
	/* An empty setting is written as a newline (the kernel wants one). */
	write_setting(value[0] ? value : "\n");
}
