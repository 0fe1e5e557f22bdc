/*
 * usnet switch — the statistics file `usnet stat` reads: each process with
 * an active provider rewrites /dev/shm/usnet-PID.stat about once a second
 * (from the progress thread): the stack it is attached to, its sockets and
 * the provider's counters (the stack's: the same in every process on it).
 * The first publication also removes the files of processes that died
 * without removing theirs (SIGKILL).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>

#include "vsock.h"

extern long vsock_pid;

static void stat_path(char *p, size_t n, long pid)
{
	snprintf(p, n, "/dev/shm/usnet-%ld.stat", pid);
}

static void addr_str(const struct sockaddr_storage *ss, char *out, size_t n)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)ss;
		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
		port = ntohs(a->sin_port);
		snprintf(out, n, "%s:%u", ip, port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)ss;
		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
		port = ntohs(a->sin6_port);
		snprintf(out, n, "[%s]:%u", ip, port);
	} else {
		snprintf(out, n, "-");
	}
}

/* Linux's TCP state numbers (TCP_INFO's tcpi_state). */
static const char *tcp_state_name(unsigned st)
{
	static const char *const names[] = {
		"?", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
		"CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING",
	};
	return st < sizeof names / sizeof names[0] ? names[st] : "?";
}

/* Remove the files of processes that are gone (killed before they could
 * remove their own): once per process, at its first publication. */
static void stat_sweep(void)
{
	static char dents[8192];
	long dfd = vsock_sys(SYS_openat, AT_FDCWD, "/dev/shm", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0, 0);
	if (dfd < 0)
		return;
	for (;;) {
		long n = vsock_sys(SYS_getdents64, dfd, dents, sizeof dents, 0, 0, 0);
		if (n <= 0)
			break;
		for (long off = 0; off < n;) {
			struct { uint64_t ino; int64_t off; unsigned short reclen; unsigned char type; char name[]; }
				*d = (void *)(dents + off);
			off += d->reclen;
			long pid;
			char tail[8], path[300];
			if (sscanf(d->name, "usnet-%ld.%7s", &pid, tail) != 2 || strcmp(tail, "stat") || pid <= 0)
				continue;
			if (vsock_sys(SYS_kill, pid, 0, 0, 0, 0, 0) != -ESRCH)
				continue;
			snprintf(path, sizeof path, "/dev/shm/%s", d->name);
			vsock_sys(SYS_unlink, path, 0, 0, 0, 0, 0);
		}
	}
	vsock_sys(SYS_close, dfd, 0, 0, 0, 0, 0);
}

void vsock_stat_publish(void)
{
	static char buf[65536];
	static bool swept;
	size_t len = 0;
	if (!swept) {
		swept = true;
		stat_sweep();
	}
	len += (size_t)snprintf(buf + len, sizeof buf - len, "pid %ld\nprovider %s\n", vsock_pid, vsock_prov->name);
	if (vsock_attachment.attached)
		len += (size_t)snprintf(buf + len, sizeof buf - len, "stack %s owner %d address %s\n",
					vsock_attachment.stack, vsock_attachment.owner_pid,
					vsock_config("ip") ? vsock_config("ip") : "-");
	if (vsock_prov->stats)
		len += vsock_prov->stats(vsock_prov_ctx, buf + len, sizeof buf - len - 1);
	for (int fd = 0; fd < vsock_fdmap_size && len + 256 < sizeof buf; fd++) {
		int32_t e = vsock_fd_entry(fd);
		if (e <= 0)
			continue;
		struct vsock_slot *s = &vsock_shm->slots[e - 1];
		struct sockaddr_storage l = { 0 }, p = { 0 };
		socklen_t ll = sizeof l, pl = sizeof p;
		char ls[80], ps[80];
		if (vsock_prov->getsockname(vsock_prov_ctx, s->ps, (struct sockaddr *)&l, &ll) < 0)
			l.ss_family = 0;
		if (vsock_prov->getpeername(vsock_prov_ctx, s->ps, (struct sockaddr *)&p, &pl) < 0)
			p.ss_family = 0;
		addr_str(&l, ls, sizeof ls);
		addr_str(&p, ps, sizeof ps);
		const char *state = "-";
		/* Linux's struct tcp_info: glibc's, then (from byte 104) the
		 * pacing rates, bytes acked and received, segments out and in. */
		union { struct tcp_info ti; uint8_t b[144]; } u;
		memset(&u, 0, sizeof u);
		socklen_t tl = sizeof u;
		char tcp[200] = "";
		if (s->type == SOCK_STREAM &&
		    vsock_prov->getsockopt(vsock_prov_ctx, s->ps, IPPROTO_TCP, TCP_INFO, &u, &tl) == 0) {
			state = tcp_state_name(u.ti.tcpi_state);
		}
		if (u.ti.tcpi_state && u.ti.tcpi_state != 10) {   /* a connection: as `ss -ti` shows it */
			uint64_t acked = 0, received = 0;
			if (tl >= 136) {
				memcpy(&acked, u.b + 120, 8);
				memcpy(&received, u.b + 128, 8);
			}
			snprintf(tcp, sizeof tcp,
				 " rtt=%u.%03u/%u.%03u cwnd=%u ssthresh=%u mss=%u retrans=%u/%u bytes_acked=%llu"
				 " bytes_received=%llu",
				 u.ti.tcpi_rtt / 1000, u.ti.tcpi_rtt % 1000, u.ti.tcpi_rttvar / 1000,
				 u.ti.tcpi_rttvar % 1000, u.ti.tcpi_snd_cwnd, u.ti.tcpi_snd_ssthresh, u.ti.tcpi_snd_mss,
				 u.ti.tcpi_retransmits, u.ti.tcpi_total_retrans, (unsigned long long)acked,
				 (unsigned long long)received);
		}
		len += (size_t)snprintf(buf + len, sizeof buf - len,
					"socket fd=%d %s %s local=%s peer=%s events=0x%x%s\n",
					fd, s->type == SOCK_STREAM ? "tcp" : "udp", state, ls, ps,
					vsock_prov->poll(vsock_prov_ctx, s->ps), tcp);
	}
	char path[64], tmp[80];
	stat_path(path, sizeof path, vsock_pid);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	long fd = vsock_sys(SYS_openat, AT_FDCWD, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644, 0, 0);
	if (fd < 0)
		return;
	vsock_sys(SYS_write, fd, buf, len, 0, 0, 0);
	vsock_sys(SYS_close, fd, 0, 0, 0, 0, 0);
	vsock_sys(SYS_rename, tmp, path, 0, 0, 0, 0);
}

void vsock_stat_remove(void)
{
	if (!vsock_prov)
		return;
	char path[64];
	stat_path(path, sizeof path, vsock_sys(SYS_getpid, 0, 0, 0, 0, 0, 0));
	vsock_sys(SYS_unlink, path, 0, 0, 0, 0, 0);
}
