/*
 * usnet-nc — a netcat on the native API: the pieces shared by its files.
 *
 *   nc_args.c   command line and --help
 *   nc_main.c   opening the runtime, choosing the session
 *   nc_tcp.c    a TCP session (connect or accept one, copy both ways, close)
 *   nc_udp.c    a UDP session (one datagram per read of stdin)
 */
#ifndef USNET_NC_H
#define USNET_NC_H

#include <stdint.h>
#include "usnet_app.h"

/* Exit statuses. */
#define NC_EXIT_OK    0
#define NC_EXIT_ERROR 1   /* backend, connection or I/O failure */
#define NC_EXIT_USAGE 2   /* bad command line */

struct nc_options {
	int listen;             /* -l: accept one connection / receive first */
	int udp;                /* -u */
	int verbose;            /* -v: say what happens on stderr */
	int ip6_only;           /* -6: HOST must be an IPv6 address */
	int stats;              /* --stats: print the stack's counters at exit */
	const char *backend;    /* --backend */
	const char *iface;      /* --iface */
	const char *backend_options; /* --backend-options */
	const char *impair;     /* --impair SPEC */
	const char *pcap;       /* --pcap FILE */
	uint32_t ip;            /* --ip ADDR/PREFIX */
	uint8_t prefix_len;
	uint32_t gateway;       /* --gw, 0: none */
	struct usnet_app_ip6 ip6; /* --ip6, --gw6 */
	/* HOST and PORT: IPv4, or IPv6 (family USNET_AF_INET6) when HOST is
	 * an IPv6 address; 0.0.0.0 and :: only with -l. */
	struct usnet_addr addr;
	int wait_s;             /* -w: connect and idle timeout, seconds; 0: none */
	int quit_s;             /* -q: after end of stdin, seconds (UDP); -1: never */
	uint32_t bufsize;       /* --buffer: socket send/receive buffer, bytes */
};

/* Parse argv into opt.  Returns -1 when the caller should continue, or an
 * exit status (0 after --help, NC_EXIT_USAGE after a one-line error). */
int nc_parse_args(int argc, char **argv, struct nc_options *opt);

/* Run one session on an open runtime; returns the exit status.  Errors are
 * reported on stderr as one line starting with "usnet-nc: ". */
int nc_tcp_session(struct usnet_app *app, const struct nc_options *opt);
int nc_udp_session(struct usnet_app *app, const struct nc_options *opt);

/* "usnet-nc: " + printf-style message + newline on stderr. */
void nc_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same, only with -v. */
void nc_verbose(const struct nc_options *opt, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* "A.B.C.D:PORT" or "[IPV6]:PORT" into a static buffer (one at a time). */
const char *nc_addr_str(const struct usnet_addr *a);
/* Same family, address and port. */
int nc_addr_equal(const struct usnet_addr *a, const struct usnet_addr *b);
/* USNET_SOCK_V6 when HOST is IPv6, else 0: or'ed into usnet_socket()'s type. */
int nc_sock_family_flag(const struct nc_options *opt);

/* Text for a negative errno from the stack (Linux numbering). */
const char *nc_strerror(long err);

#endif
