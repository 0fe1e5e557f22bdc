/*
 * synflood DST PORT COUNT PREFIX/LEN: COUNT TCP SYNs to DST:PORT as fast as
 * a raw socket takes them, each from a random address of PREFIX/LEN (the
 * test network's own, never .0, .1, .2 or the broadcast) and a random port
 * and sequence number.  For the SYN-cookie test: root, inside the test's
 * namespace.  Prints how many it sent.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64
#define SYN_LEN 40   /* IPv4 + TCP headers, no options */

static uint16_t csum(const uint8_t *p, size_t n, uint32_t sum)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		sum += (uint32_t)(p[n - 1] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)(v >> 16)); put16(p + 2, (uint16_t)v); }

/* xorshift: fast, and seeded from getrandom. */
static uint64_t rng;
static uint32_t next_random(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

int main(int argc, char **argv)
{
	struct in_addr dst, net;
	char prefix[64];
	int len;
	if (argc != 5 || inet_pton(AF_INET, argv[1], &dst) != 1 || sscanf(argv[4], "%63[^/]/%d", prefix, &len) != 2 ||
	    inet_pton(AF_INET, prefix, &net) != 1 || len < 8 || len > 28) {
		fprintf(stderr, "usage: synflood DST PORT COUNT PREFIX/LEN (8 <= LEN <= 28)\n");
		return 2;
	}
	uint16_t port = (uint16_t)atoi(argv[2]);
	long count = atol(argv[3]);
	int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	if (fd < 0) {
		fprintf(stderr, "synflood: raw socket: %s (needs root)\n", strerror(errno));
		return 1;
	}
	if (getrandom(&rng, sizeof rng, 0) != (ssize_t)sizeof rng || !rng)
		rng = 88172645463325252ull;
	uint32_t base = ntohl(net.s_addr) & (~0u << (32 - len)), hosts = 1u << (32 - len);
	static uint8_t pkts[BATCH][SYN_LEN];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr = dst };
	long sent = 0;
	while (sent < count) {
		int n = count - sent < BATCH ? (int)(count - sent) : BATCH;
		for (int i = 0; i < n; i++) {
			uint8_t *ip = pkts[i], *th = ip + 20;
			uint32_t src = base + 3 + next_random() % (hosts - 4);
			memset(ip, 0, SYN_LEN);
			ip[0] = 0x45;
			put16(ip + 2, SYN_LEN);
			put16(ip + 4, (uint16_t)next_random());
			ip[8] = 64;
			ip[9] = IPPROTO_TCP;
			put32(ip + 12, src);
			memcpy(ip + 16, &dst.s_addr, 4);
			put16(ip + 10, csum(ip, 20, 0));
			put16(th, (uint16_t)(1024 + next_random() % 60000));
			put16(th + 2, port);
			put32(th + 4, next_random() << 16 ^ next_random());
			th[12] = 5 << 4;
			th[13] = 0x02;   /* SYN */
			put16(th + 14, 64240);
			uint32_t pseudo = (src >> 16) + (src & 0xffff) + (ntohl(dst.s_addr) >> 16) +
					  (ntohl(dst.s_addr) & 0xffff) + IPPROTO_TCP + 20;
			put16(th + 16, csum(th, 20, pseudo));
			iov[i] = (struct iovec){ pkts[i], SYN_LEN };
			msgs[i] = (struct mmsghdr){ .msg_hdr = { .msg_name = &to, .msg_namelen = sizeof to,
								 .msg_iov = &iov[i], .msg_iovlen = 1 } };
		}
		int r = sendmmsg(fd, msgs, (unsigned)n, 0);
		if (r < 0) {
			if (errno == ENOBUFS || errno == EAGAIN)
				continue;
			fprintf(stderr, "synflood: sendmmsg: %s\n", strerror(errno));
			return 1;
		}
		sent += r;
	}
	printf("sent %ld SYNs\n", sent);
	return 0;
}
