/*
 * usnet-nc — the command line.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nc.h"

static const char usage_text[] =
"usage: usnet-nc [-l] [-u] [-v] [-6] [-w SECS] [-q SECS] --backend B --iface IF\n"
"                --ip ADDR/PREFIX [--gw ADDR] [--ip6 ADDR/PREFIX]... [--gw6 ADDR]\n"
"                [--impair SPEC] [--pcap FILE] [--stats] HOST PORT\n";

static const char help_text[] =
"\n"
"A netcat on usnet's own TCP/IP stack: connect to HOST:PORT (or, with -l,\n"
"wait for one connection on HOST:PORT; HOST may be 0.0.0.0, or :: for IPv6\n"
"and IPv4) and copy stdin to the connection and the connection to stdout.\n"
"At the end of stdin the sending side is shut down (FIN) and usnet-nc keeps\n"
"reading until the peer closes too, then closes cleanly and exits 0.  Any\n"
"error (bad arguments, backend failure, connection refused, reset or timed\n"
"out) exits non-zero with one line on stderr.\n"
"HOST is an IPv4 address (10.0.0.1) or an IPv6 one, bare or in brackets\n"
"(2001:db8::1, [2001:db8::1], fe80::1); IPv6 needs --ip6 (the stack then also\n"
"has its fe80:: address and waits for duplicate address detection first).\n"
"\n"
"options:\n"
"  -l                 listen: accept one TCP connection (UDP: receive first and\n"
"                     reply to the last sender)\n"
"  -u                 UDP: each read of stdin is sent as one datagram (at most\n"
"                     MTU - 28 bytes, MTU - 48 over IPv6); received datagrams\n"
"                     go to stdout.  UDP has no close: the session ends by -q,\n"
"                     -w or a signal\n"
"  -v                 say what happens (connected, closed) on stderr\n"
"  -6                 HOST must be an IPv6 address (with -l: :: is all of them)\n"
"  -w SECS            give up connecting after SECS (default 30); UDP: end the\n"
"                     session after SECS without traffic\n"
"  -q SECS            UDP: end the session SECS after the end of stdin and\n"
"                     the last datagram's departure (not while it waits for ARP\n"
"                     or Neighbor Discovery)\n"
"  --backend NAME     packet I/O backend: tap, memwire, afpacket, afxdp, dpdk\n"
"                     (the last three need root and an existing interface)\n"
"  --iface IF         tap: the TAP device (created when missing, needs root);\n"
"                     memwire: WIRE:SIDE, SIDE 0 or 1 (no root); afpacket,\n"
"                     afxdp, dpdk: the network interface (e.g. a veth)\n"
"  --backend-options OPTS  backend-specific key=value,... options (tap: csum,\n"
"                     bufs=N; memwire: frame=BYTES, ring=N; afpacket: rx=v3;\n"
"                     afxdp: mode=skb; dpdk: vdev=net_af_packet)\n"
"  --ip ADDR/PREFIX   this stack's IPv4 address and on-link prefix\n"
"  --gw ADDR          default gateway\n";

/* After usnet_app_ip6_usage, the options that follow --ip6 and --gw6. */
static const char help_text_tail[] =
"  --buffer BYTES     socket send and receive buffer (default 1048576)\n"
"  --impair SPEC      impair the traffic on purpose (seeded, repeatable):\n"
"                       SPEC := ITEM[,ITEM...]   ITEM := [rx:|tx:]KEY=VALUE\n"
"                     without rx:/tx: an item applies to both directions\n"
"                     (rx: frames usnet receives, tx: frames it sends).  KEYs:\n"
"                       loss=P      drop a frame with probability P\n"
"                       reorder=P   hold a frame back behind 2 later ones\n"
"                       dup=P       deliver a frame twice\n"
"                       corrupt=P   flip one random bit of a frame\n"
"                       delay=T     hold every frame for T (500us, 1ms, 0.2s;\n"
"                                   a bare number is milliseconds)\n"
"                       seed=N      random seed (default 1)\n"
"                     P is 0..1 or a percentage (2%).  Example:\n"
"                       loss=0.02,reorder=0.01,dup=0.01,corrupt=0.001,seed=7\n"
"  --pcap FILE        write every frame to FILE (tshark -r FILE reads it)\n"
"  --stats            at exit print the stack's counters on stderr, one\n"
"                     \"usnet-nc: stat NAME VALUE\" line each (as usnet stat)\n"
"  -h, --help         this text\n"
"\n"
"exit status: 0 success, 1 backend/connection/I/O error, 2 bad arguments\n";

enum {
	OPT_BACKEND = 256, OPT_IFACE, OPT_IP, OPT_GW, OPT_IMPAIR, OPT_PCAP,
	OPT_BACKEND_OPTIONS, OPT_BUFFER, OPT_IP6, OPT_GW6, OPT_STATS,
};

static const struct option long_options[] = {
	{ "backend", required_argument, NULL, OPT_BACKEND },
	{ "iface", required_argument, NULL, OPT_IFACE },
	{ "ip", required_argument, NULL, OPT_IP },
	{ "gw", required_argument, NULL, OPT_GW },
	{ "ip6", required_argument, NULL, OPT_IP6 },
	{ "gw6", required_argument, NULL, OPT_GW6 },
	{ "stats", no_argument, NULL, OPT_STATS },
	{ "impair", required_argument, NULL, OPT_IMPAIR },
	{ "pcap", required_argument, NULL, OPT_PCAP },
	{ "backend-options", required_argument, NULL, OPT_BACKEND_OPTIONS },
	{ "buffer", required_argument, NULL, OPT_BUFFER },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int usage_error(const char *fmt, const char *arg)
{
	fputs("usnet-nc: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs(" (usnet-nc --help for usage)\n", stderr);
	return NC_EXIT_USAGE;
}

/* A decimal number in [min,max]; -1 when it is not one. */
static long parse_number(const char *s, long min, long max)
{
	char *end;
	long v;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	return v;
}

int nc_parse_args(int argc, char **argv, struct nc_options *opt)
{
	const char *cidr = NULL, *gw = NULL;
	char err[160];
	long v;
	int c;

	memset(opt, 0, sizeof *opt);
	opt->wait_s = 0;
	opt->quit_s = -1;
	opt->bufsize = 1u << 20;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":luv6w:q:h", long_options, NULL)) != -1) {
		switch (c) {
		case 'l': opt->listen = 1; break;
		case 'u': opt->udp = 1; break;
		case 'v': opt->verbose = 1; break;
		case '6': opt->ip6_only = 1; break;
		case 'w':
			if ((v = parse_number(optarg, 1, 86400)) < 0)
				return usage_error("-w wants whole seconds 1..86400, not '%s'", optarg);
			opt->wait_s = (int)v;
			break;
		case 'q':
			if ((v = parse_number(optarg, 0, 86400)) < 0)
				return usage_error("-q wants whole seconds 0..86400, not '%s'", optarg);
			opt->quit_s = (int)v;
			break;
		case OPT_BACKEND: opt->backend = optarg; break;
		case OPT_IFACE: opt->iface = optarg; break;
		case OPT_IP: cidr = optarg; break;
		case OPT_GW: gw = optarg; break;
		case OPT_IP6:
		case OPT_GW6:
			if (usnet_app_ip6_option(&opt->ip6, c == OPT_IP6 ? "--ip6" : "--gw6", optarg,
						 err, sizeof err) != 0)
				return usage_error("%s", err);
			break;
		case OPT_STATS: opt->stats = 1; break;
		case OPT_IMPAIR: opt->impair = optarg; break;
		case OPT_PCAP: opt->pcap = optarg; break;
		case OPT_BACKEND_OPTIONS: opt->backend_options = optarg; break;
		case OPT_BUFFER:
			if ((v = parse_number(optarg, 4096, 64L << 20)) < 0)
				return usage_error("--buffer wants bytes 4096..67108864, not '%s'", optarg);
			opt->bufsize = (uint32_t)v;
			break;
		case 'h':
			fputs(usage_text, stdout);
			fputs(help_text, stdout);
			fputs(usnet_app_ip6_usage, stdout);
			fputs(help_text_tail, stdout);
			return NC_EXIT_OK;
		case ':':
			if (optopt > 0 && optopt < 256)
				return usage_error("option -%s needs a value", (char[]){ (char)optopt, 0 });
			return usage_error("option %s needs a value", argv[optind - 1]);
		default:
			if (optopt > 0 && optopt < 256)
				return usage_error("unknown option -%s", (char[]){ (char)optopt, 0 });
			return usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (!opt->backend)
		return usage_error("%s", "--backend is required (tap or memwire)");
	if (!opt->iface)
		return usage_error("%s", "--iface is required");
	if (!cidr)
		return usage_error("%s", "--ip ADDR/PREFIX is required");
	if (usnet_app_parse_cidr(cidr, &opt->ip, &opt->prefix_len))
		return usage_error("--ip wants ADDR/PREFIX like 10.0.0.2/24, not '%s'", cidr);
	if (opt->ip == 0)
		return usage_error("--ip %s: 0.0.0.0 is not an address for this stack", cidr);
	if (gw && usnet_app_parse_ip(gw, &opt->gateway))
		return usage_error("--gw wants an IPv4 address like 10.0.0.1, not '%s'", gw);
	if (argc - optind != 2)
		return usage_error("%s", argc - optind < 2 ? "HOST and PORT are required"
							  : "too many arguments: want HOST PORT");
	const char *host = argv[optind];
	if (!opt->ip6_only && usnet_app_parse_ip(host, &opt->addr.ip) == 0) {
		opt->addr.family = USNET_AF_INET;
		if (!opt->listen && opt->addr.ip == 0)
			return usage_error("%s", "HOST 0.0.0.0 is only allowed with -l");
	} else if (usnet_app_parse_ip6(host, opt->addr.ip6) == 0) {
		static const uint8_t any[16];
		opt->addr.family = USNET_AF_INET6;
		if (!opt->listen && memcmp(opt->addr.ip6, any, 16) == 0)
			return usage_error("%s", "HOST :: is only allowed with -l");
		if (opt->ip6.n == 0)
			return usage_error("HOST %s is IPv6: give the stack an address with --ip6 ADDR/PREFIX",
					   host);
	} else if (opt->ip6_only) {
		return usage_error("-6: HOST must be an IPv6 address like 2001:db8::1, not '%s'", host);
	} else {
		return usage_error("HOST must be an IPv4 address like 10.0.0.1 or an IPv6 address "
				   "like 2001:db8::1, not '%s'", host);
	}
	if ((v = parse_number(argv[optind + 1], 1, 65535)) < 0)
		return usage_error("PORT must be 1..65535, not '%s'", argv[optind + 1]);
	opt->addr.port = (uint16_t)v;
	if (!opt->udp && opt->quit_s >= 0)
		return usage_error("%s", "-q is for UDP (-u); TCP ends when both sides have closed");
	return -1;
}
