/*
 * usnet — the attach protocol's messages (attach_proto.h): paths,
 * configurations, and requests and replies with their fds.  Linked into
 * libusnet.so (the attaching side) and the `usnet` front end (the owner).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attach_proto.h"

int attach_owner_path(const char *iface, char *out, size_t n)
{
	struct stat ns;
	unsigned long long ino = stat("/proc/self/ns/net", &ns) == 0 ? (unsigned long long)ns.st_ino : 0;
	char name[64];
	/* '/' cannot be in a file name; nothing else of an interface name
	 * (or a memwire "WIRE:SIDE") needs escaping. */
	size_t k = 0;
	for (const char *p = iface; *p && k + 1 < sizeof name; p++)
		name[k++] = *p == '/' ? '_' : *p;
	name[k] = 0;
	int r = snprintf(out, n, "%s/%s@%llu.sock", ATTACH_DIR, name, ino);
	return r < 0 || (size_t)r >= n ? -ENAMETOOLONG : 0;
}

void attach_config_make(const char *(*get)(const char *key), char *out, size_t n)
{
	static const char *const keys[] = { ATTACH_CONFIG_KEYS };
	size_t used = 0;
	out[0] = 0;
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		const char *v = get(keys[i]);
		int r = snprintf(out + used, n - used, "%s=%s\n", keys[i], v ? v : "");
		if (r < 0 || (size_t)r >= n - used)
			break;
		used += (size_t)r;
	}
}

/* The value of key in a configuration, as a pointer and length. */
static const char *config_value(const char *cfg, const char *key, size_t *len)
{
	size_t kl = strlen(key);
	for (const char *p = cfg; p && *p;) {
		const char *eol = strchr(p, '\n');
		if (!strncmp(p, key, kl) && p[kl] == '=') {
			*len = (size_t)((eol ? eol : p + strlen(p)) - (p + kl + 1));
			return p + kl + 1;
		}
		p = eol ? eol + 1 : NULL;
	}
	*len = 0;
	return "";
}

int attach_config_diff(const char *mine, const char *theirs, char *line, size_t n)
{
	static const char *const keys[] = { ATTACH_CONFIG_KEYS };
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		size_t la, lb;
		const char *a = config_value(mine, keys[i], &la), *b = config_value(theirs, keys[i], &lb);
		if (la == lb && !memcmp(a, b, la))
			continue;
		snprintf(line, n, "%s '%.*s' (this program) vs '%.*s' (the stack)", keys[i], (int)la, a, (int)lb, b);
		return 1;
	}
	return 0;
}

int attach_send_request(int conn, const struct attach_request *rq, int reply_fd)
{
	return usnet_fd_send(conn, rq, sizeof *rq, &reply_fd, 1);
}

int attach_recv_request(int conn, struct attach_request *rq, int *reply_fd)
{
	int r = usnet_fd_recv(conn, rq, sizeof *rq, reply_fd, 1);
	if (r == 0 && (rq->magic != ATTACH_MAGIC || rq->version != ATTACH_VERSION ||
		       !memchr(rq->config, 0, sizeof rq->config))) {
		close(*reply_fd);
		return -EPROTO;
	}
	return r;
}

int attach_send_reply(int sock, const struct attach_reply *rp, const int *fds, unsigned nfds)
{
	return usnet_fd_send(sock, rp, sizeof *rp, fds, nfds);
}

int attach_recv_reply(int sock, struct attach_reply *rp, int *fds, unsigned nfds)
{
	/* A refusal carries no fds; read the header first to know. */
	struct attach_reply peek;
	ssize_t r;
	do
		r = recv(sock, &peek, sizeof peek, MSG_PEEK);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ECONNRESET;
	if ((size_t)r == sizeof peek && peek.magic == ATTACH_MAGIC && peek.status < 0)
		nfds = 0;
	int e = usnet_fd_recv(sock, rp, sizeof *rp, fds, nfds);
	if (e == 0 && (rp->magic != ATTACH_MAGIC || rp->version != ATTACH_VERSION ||
		       !memchr(rp->message, 0, sizeof rp->message))) {
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		return -EPROTO;
	}
	return e;
}
