/*
 * usnet-nc — entry point: parse the command line, open the runtime on the
 * chosen backend, run one TCP or UDP session.
 */
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nc.h"

void nc_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("usnet-nc: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

void nc_verbose(const struct nc_options *opt, const char *fmt, ...)
{
	va_list ap;
	if (!opt->verbose)
		return;
	va_start(ap, fmt);
	fputs("usnet-nc: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

const char *nc_addr_str(const struct usnet_addr *a)
{
	static char buf[INET6_ADDRSTRLEN + 8];
	if (a->family == USNET_AF_INET6) {
		char text[INET6_ADDRSTRLEN];
		inet_ntop(AF_INET6, a->ip6, text, sizeof text);
		snprintf(buf, sizeof buf, "[%s]:%u", text, a->port);
	} else {
		snprintf(buf, sizeof buf, "%u.%u.%u.%u:%u", a->ip >> 24, (a->ip >> 16) & 255,
			 (a->ip >> 8) & 255, a->ip & 255, a->port);
	}
	return buf;
}

int nc_addr_equal(const struct usnet_addr *a, const struct usnet_addr *b)
{
	if (a->family != b->family || a->port != b->port)
		return 0;
	if (a->family == USNET_AF_INET6)
		return memcmp(a->ip6, b->ip6, 16) == 0;
	return a->ip == b->ip;
}

int nc_sock_family_flag(const struct nc_options *opt)
{
	return opt->addr.family == USNET_AF_INET6 ? USNET_SOCK_V6 : 0;
}

const char *nc_strerror(long err)
{
	/* The stack's errors use Linux numbering, so strerror() names them. */
	return strerror((int)(err < 0 ? -err : err));
}

int main(int argc, char **argv)
{
	struct nc_options opt;
	struct usnet_app_config cfg;
	struct usnet_app *app;
	char err[256];
	int rc;

	rc = nc_parse_args(argc, argv, &opt);
	if (rc >= 0)
		return rc;
	/* A closed stdout is an error to report, not a reason to die silently. */
	signal(SIGPIPE, SIG_IGN);

	usnet_app_config_init(&cfg);
	cfg.netif.backend = opt.backend;
	cfg.netif.iface = opt.iface;
	cfg.netif.impair = opt.impair;
	cfg.netif.pcap = opt.pcap;
	cfg.netif.options = opt.backend_options;
	cfg.ip = opt.ip;
	cfg.prefix_len = opt.prefix_len;
	cfg.gateway = opt.gateway;
	cfg.ip6 = opt.ip6;
	cfg.max_sockets = 16;
	cfg.sndbuf = opt.bufsize;
	cfg.rcvbuf = opt.bufsize;
	/* Room for both socket buffers plus reassembly and in-flight frames. */
	cfg.buffer_bytes = opt.bufsize * 4 + (4u << 20);
	cfg.busy_poll_us = 20;

	app = usnet_app_open(&cfg, err, sizeof err);
	if (!app) {
		nc_error("%s", err);
		return NC_EXIT_ERROR;
	}
	rc = opt.udp ? nc_udp_session(app, &opt) : nc_tcp_session(app, &opt);
	if (opt.stats)
		usnet_app_print_stats(app, stderr, "usnet-nc: stat ");
	usnet_app_close(app);
	return rc;
}
