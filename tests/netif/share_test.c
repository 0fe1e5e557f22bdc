/*
 * Sharing one open netif with a process that did not fork from the opener
 * (usnet/netif_share.h), against a kernel across a veth pair:
 *
 *   share BACKEND IFACE OPTS MYIP PEERIP NQ
 *
 * The owner opens the netif with NQ queues, learns the peer's MAC (ARP),
 * shares the netif and sends the share over a socketpair to a child that
 * execs this program afresh ("share-child"), which receives it, attaches
 * and sends ICMP echo requests to the kernel while the owner does too, on
 * the same queues.  Both take turns under a process-shared (robust) lock,
 * as the stack's instance lock serialises them, and both receive every
 * queue: a reply lands wherever the device puts it and is counted for the
 * process whose echo id it carries, in memory the two share.  Each reply
 * must come back intact (payload, checksum) and once.  Then a second
 * attacher is SIGKILLed in the middle of its traffic, and the owner goes on
 * alone.  The last line, "sent N", is the number of frames the usnet side
 * sent, for the caller to compare with what the kernel's side received.
 *
 * The kernel must know our MAC beforehand (a permanent neighbour entry):
 * neither process answers ARP.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "usnet/netif.h"
#include "usnet/netif_open.h"
#include "usnet/netif_share.h"

/* White-box: afxdp's shared counters (src/netif/netif_internal.h). */
int netif_afxdp_queue_counters(struct usnet_netif *nif, uint16_t q, uint64_t *rx_frames, uint64_t *tx_frames);

#define MAX_SEQ 4096
#define N_IDS 4
#define ECHO_ID_BASE 0x4100 /* echo ids ECHO_ID_BASE + 0..N_IDS-1 */
#define PAYLOAD 64

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "[%d] ", (int)getpid());
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* What the owner and the attachers share (a memfd the child inherits
 * across exec). */
struct shared {
	pthread_mutex_t lock; /* robust: an attacher may die holding it */
	uint32_t me, peer;    /* IPv4, network order */
	uint8_t peer_mac[6], my_mac[6];
	uint32_t sent[N_IDS], got[N_IDS], dup, bad, lock_recovered;
	uint8_t seen[N_IDS][MAX_SEQ];
};

static void lock(struct shared *sh)
{
	int r = pthread_mutex_lock(&sh->lock);
	if (r == EOWNERDEAD) {
		/* The dead one's queue state is as it left it: usable. */
		pthread_mutex_consistent(&sh->lock);
		sh->lock_recovered++;
	} else if (r) {
		die("lock: %s", strerror(r));
	}
}

static void unlock(struct shared *sh)
{
	pthread_mutex_unlock(&sh->lock);
}

static uint16_t csum16(const uint8_t *p, size_t n, uint32_t sum)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint8_t payload_byte(uint16_t id, uint16_t seq, unsigned i)
{
	return (uint8_t)(id * 13 + seq * 7 + i * 3);
}

/* An ICMP echo request with id and seq, payload derived from both. */
static uint32_t build_echo(uint8_t *f, const struct shared *sh, uint16_t id, uint16_t seq)
{
	memcpy(f, sh->peer_mac, 6);
	memcpy(f + 6, sh->my_mac, 6);
	f[12] = 0x08; f[13] = 0x00;
	uint8_t *ip = f + 14;
	uint16_t tot = 20 + 8 + PAYLOAD;
	memset(ip, 0, 20);
	ip[0] = 0x45; ip[2] = (uint8_t)(tot >> 8); ip[3] = (uint8_t)tot;
	ip[4] = (uint8_t)(seq >> 8); ip[5] = (uint8_t)seq; ip[8] = 64; ip[9] = 1;
	memcpy(ip + 12, &sh->me, 4);
	memcpy(ip + 16, &sh->peer, 4);
	uint16_t c = csum16(ip, 20, 0);
	ip[10] = (uint8_t)(c >> 8); ip[11] = (uint8_t)c;
	uint8_t *l4 = ip + 20;
	memset(l4, 0, 8);
	l4[0] = 8;
	l4[4] = (uint8_t)(id >> 8); l4[5] = (uint8_t)id;
	l4[6] = (uint8_t)(seq >> 8); l4[7] = (uint8_t)seq;
	for (unsigned i = 0; i < PAYLOAD; i++)
		l4[8 + i] = payload_byte(id, seq, i);
	c = csum16(l4, 8 + PAYLOAD, 0);
	l4[2] = (uint8_t)(c >> 8); l4[3] = (uint8_t)c;
	return 14u + tot;
}

/* Count an echo reply of ours (lock held); other frames are ignored. */
static void account(struct shared *sh, const uint8_t *f, uint32_t len)
{
	if (len < 14 + 20 + 8 || f[12] != 0x08 || f[13] != 0 || f[23] != 1 || memcmp(f + 26, &sh->peer, 4) ||
	    f[34] != 0)
		return;
	uint16_t id = (uint16_t)(f[38] << 8 | f[39]), seq = (uint16_t)(f[40] << 8 | f[41]);
	if (id < ECHO_ID_BASE || id >= ECHO_ID_BASE + N_IDS)
		return;
	unsigned k = id - ECHO_ID_BASE;
	if (seq >= MAX_SEQ)
		return; /* the killed attacher's, past what is tracked */
	int ok = len >= 14 + 20 + 8 + PAYLOAD && csum16(f + 34, 8 + PAYLOAD, 0) == 0;
	for (unsigned i = 0; ok && i < PAYLOAD; i++)
		ok = f[42 + i] == payload_byte(id, seq, i);
	if (!ok) {
		sh->bad++;
		return;
	}
	if (sh->seen[k][seq]++)
		sh->dup++;
	else
		sh->got[k]++;
}

/*
 * Echo traffic with id ECHO_ID_BASE + k until `count` replies of ours came
 * back (or the time is up): each turn, under the lock, a burst of requests
 * on the next queue (at most 64 outstanding) and a receive of every queue.
 */
static void traffic(struct usnet_netif *nif, struct shared *sh, unsigned k, uint32_t count, int timeout_ms)
{
	uint16_t nq = nif->info.nqueues, id = (uint16_t)(ECHO_ID_BASE + k);
	uint32_t turn = 0;
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		lock(sh);
		uint32_t sent = sh->sent[k], got = sh->got[k];
		if (got >= count) {
			unlock(sh);
			return;
		}
		if (sent < count && sent - got < 64) {
			uint16_t q = (uint16_t)(turn++ % nq);
			struct usnet_pkt t[16];
			unsigned want = count - sent < 16 ? count - sent : 16;
			int a = usnet_netif_tx_alloc(nif, q, t, want);
			for (int i = 0; i < a; i++)
				t[i].len = build_echo(t[i].data, sh, id, (uint16_t)(sent + (uint32_t)i));
			int n = a > 0 ? usnet_netif_tx_burst(nif, q, t, (unsigned)a) : 0;
			if (n < 0)
				die("tx_burst: %s", strerror(-n));
			if (n < a)
				usnet_netif_tx_free(nif, q, t + n, (unsigned)(a - n));
			sh->sent[k] += (uint32_t)n;
			usnet_netif_flush(nif, q);
		}
		int seen = 0;
		for (uint16_t q = 0; q < nq; q++) {
			struct usnet_pkt p[32];
			int r = usnet_netif_rx_burst(nif, q, p, 32);
			if (r < 0)
				die("rx_burst: %s", strerror(-r));
			for (int i = 0; i < r; i++)
				account(sh, p[i].data, p[i].len);
			if (r > 0)
				usnet_netif_rx_release(nif, q, p, (unsigned)r);
			seen += r;
		}
		unlock(sh);
		if (now_ms() > end)
			die("echo id %#x: %u of %u replies after %d ms (%u sent)", id, sh->got[k], count, timeout_ms,
			    sh->sent[k]);
		if (!seen)
			usleep(50);
		else
			sched_yield(); /* the other process's turn */
	}
}

/* ---- the attacher (a fresh image) ---------------------------------------- */

static void child_main(int sock, int shmfd, unsigned k, uint32_t count)
{
	struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED, shmfd, 0);
	if (sh == MAP_FAILED)
		die("child: cannot map the shared memory: %s", strerror(errno));
	struct usnet_netif_share s;
	int r = usnet_netif_share_recv(sock, &s);
	if (r)
		die("child: usnet_netif_share_recv: %s", strerror(-r));
	struct usnet_netif *nif;
	char err[256];
	if (usnet_netif_attach(&s, &nif, err, sizeof err))
		die("child: %s", err);
	if (memcmp(nif->info.mac, sh->my_mac, 6))
		die("child: the attached netif has another MAC than the owner's");
	traffic(nif, sh, k, count, 20000);
	usnet_netif_close(nif);
	exit(0);
}

/* ---- the owner ------------------------------------------------------------ */

/* Fork, exec this program as "share-child", send it the share. */
static pid_t spawn_attacher(const struct usnet_netif_share *s, int shmfd, unsigned k, uint32_t count)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		die("socketpair: %s", strerror(errno));
	pid_t c = fork();
	if (c < 0)
		die("fork: %s", strerror(errno));
	if (c == 0) {
		close(sv[0]);
		char a_sock[16], a_shm[16], a_k[16], a_count[16];
		snprintf(a_sock, sizeof a_sock, "%d", sv[1]);
		snprintf(a_shm, sizeof a_shm, "%d", shmfd);
		snprintf(a_k, sizeof a_k, "%u", k);
		snprintf(a_count, sizeof a_count, "%u", count);
		char *argv[] = { "netif_share_test", "share-child", a_sock, a_shm, a_k, a_count, NULL };
		execv("/proc/self/exe", argv);
		fprintf(stderr, "exec: %s\n", strerror(errno));
		_exit(127);
	}
	close(sv[1]);
	int r = usnet_netif_share_send(sv[0], s);
	if (r)
		die("usnet_netif_share_send: %s", strerror(-r));
	close(sv[0]);
	return c;
}

static int match_arp_reply(const uint8_t *f, uint32_t len, const struct shared *sh)
{
	return len >= 42 && f[12] == 0x08 && f[13] == 0x06 && f[21] == 2 && !memcmp(f, sh->my_mac, 6) &&
	       !memcmp(f + 28, &sh->peer, 4);
}

/* The peer's MAC, from an ARP exchange (before any attacher exists). */
static void learn_peer(struct usnet_netif *nif, struct shared *sh)
{
	for (int tries = 0; tries < 10; tries++) {
		struct usnet_pkt t;
		if (usnet_netif_tx_alloc(nif, 0, &t, 1) != 1)
			die("no tx buffer");
		uint8_t *f = t.data;
		memset(f, 0xff, 6);
		memcpy(f + 6, sh->my_mac, 6);
		f[12] = 0x08; f[13] = 0x06;
		static const uint8_t hdr[8] = { 0, 1, 8, 0, 6, 4, 0, 1 };
		memcpy(f + 14, hdr, 8);
		memcpy(f + 22, sh->my_mac, 6);
		memcpy(f + 28, &sh->me, 4);
		memset(f + 32, 0, 6);
		memcpy(f + 38, &sh->peer, 4);
		memset(f + 42, 0, 18);
		t.len = 60;
		if (usnet_netif_tx_burst(nif, 0, &t, 1) != 1)
			die("tx_burst refused the ARP request");
		usnet_netif_flush(nif, 0);
		uint64_t end = now_ms() + 300;
		while (now_ms() < end) {
			for (uint16_t q = 0; q < nif->info.nqueues; q++) {
				struct usnet_pkt p[16];
				int r = usnet_netif_rx_burst(nif, q, p, 16);
				int found = 0;
				for (int i = 0; i < r; i++)
					if (!found && match_arp_reply(p[i].data, p[i].len, sh)) {
						memcpy(sh->peer_mac, p[i].data + 22, 6);
						found = 1;
					}
				if (r > 0)
					usnet_netif_rx_release(nif, q, p, (unsigned)r);
				if (found)
					return;
			}
			usleep(500);
		}
	}
	die("no ARP reply from the peer");
}

/* A damaged share is refused with one line, and its fds are closed (the
 * attach takes them either way).  Copies of the owner's fds are used. */
static void attach_refused(const struct usnet_netif_share *s, const char *what, void (*damage)(struct usnet_netif_share *))
{
	struct usnet_netif_share bad = *s;
	for (uint32_t i = 0; i < bad.nfds; i++)
		if ((bad.fds[i] = dup(s->fds[i])) < 0)
			die("dup: %s", strerror(errno));
	damage(&bad);
	struct usnet_netif *nif = NULL;
	char err[256] = "";
	int r = usnet_netif_attach(&bad, &nif, err, sizeof err);
	if (r == 0)
		die("a share with %s was attached", what);
	if (!err[0] || strchr(err, '\n'))
		die("a share with %s: no one-line reason (%d)", what, r);
	for (uint32_t i = 0; i < bad.nfds; i++)
		if (fcntl(bad.fds[i], F_GETFD) != -1 || errno != EBADF)
			die("a share with %s: fd %u left open after the refusal", what, i);
	printf("  refused, %s: %s\n", what, err);
}
static void damage_blob(struct usnet_netif_share *s) { s->blob_len -= 4; }
static void damage_nfds(struct usnet_netif_share *s) { close(s->fds[--s->nfds]); }
static void damage_swap(struct usnet_netif_share *s) { int t = s->fds[0]; s->fds[0] = s->fds[1]; s->fds[1] = t; }
static void damage_sock(struct usnet_netif_share *s) { int t = s->fds[1]; s->fds[1] = s->fds[2]; s->fds[2] = t; }

static void wait_child(pid_t c, const char *what)
{
	int st;
	if (waitpid(c, &st, 0) != c)
		die("waitpid: %s", strerror(errno));
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		die("%s failed (status %#x)", what, st);
}

static void owner_main(const char *backend, const char *iface, const char *opts, const char *myip,
		       const char *peerip, uint16_t nq)
{
	struct usnet_netif_config cfg = { .backend = backend, .iface = iface, .queues = nq,
					  .options = opts && opts[0] ? opts : NULL };
	struct usnet_netif *nif;
	char err[256];
	if (usnet_netif_open(&cfg, &nif, err, sizeof err))
		die("%s", err);
	/* Not close-on-exec: the attacher inherits it across exec. */
	int shmfd = memfd_create("netif-share-test", 0);
	if (shmfd < 0 || ftruncate(shmfd, sizeof(struct shared)))
		die("memfd: %s", strerror(errno));
	struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED, shmfd, 0);
	if (sh == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&sh->lock, &ma);
	sh->me = inet_addr(myip);
	sh->peer = inet_addr(peerip);
	memcpy(sh->my_mac, nif->info.mac, 6);
	learn_peer(nif, sh);

	struct usnet_netif_share s;
	if (usnet_netif_share(nif, &s, err, sizeof err))
		die("%s", err);
	attach_refused(&s, "a short description", damage_blob);
	attach_refused(&s, "an fd missing", damage_nfds);
	attach_refused(&s, "region and UMEM swapped", damage_swap);
	attach_refused(&s, "a socket where the UMEM belongs", damage_sock);
	/* 1. An exec'd attacher and the owner, together. */
	const uint32_t count = 2000;
	pid_t c = spawn_attacher(&s, shmfd, 1, count);
	traffic(nif, sh, 0, count, 20000);
	wait_child(c, "the exec'd attacher");
	lock(sh);
	if (sh->bad || sh->dup || sh->got[0] != count || sh->got[1] != count)
		die("owner %u and attacher %u of %u replies, %u damaged, %u twice", sh->got[0], sh->got[1], count,
		    sh->bad, sh->dup);
	unlock(sh);
	printf("%s: %u queue%s shared with an exec'd process: %u echo replies each, intact, none twice\n",
	       backend, nq, nq == 1 ? "" : "s", count);

	/* 2. An attacher SIGKILLed in the middle of its traffic (perhaps
	 * holding the lock, perhaps frames); the owner goes on alone. */
	c = spawn_attacher(&s, shmfd, 2, 1000000);
	uint64_t end = now_ms() + 20000;
	for (;;) {
		lock(sh);
		uint32_t g = sh->got[2];
		unlock(sh);
		if (g >= 300)
			break;
		if (now_ms() > end)
			die("the second attacher got only %u replies", g);
		usleep(1000);
	}
	kill(c, SIGKILL);
	int st;
	waitpid(c, &st, 0);
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
		die("the second attacher was not killed (status %#x)", st);
	usleep(20000); /* its replies in flight land (and are ignored) */
	traffic(nif, sh, 3, count, 20000);
	if (sh->bad || sh->dup || sh->got[3] != count)
		die("after the SIGKILL: %u of %u replies, %u damaged, %u twice", sh->got[3], count, sh->bad, sh->dup);
	printf("%s: an attacher SIGKILLed after %u replies%s; the owner then got all %u of its own\n", backend,
	       sh->got[2], sh->lock_recovered ? " (holding the lock)" : "", count);

	/* The counters every process updates: everyone's frames in them. */
	uint64_t rx = 0, tx = 0;
	for (uint16_t q = 0; q < nq; q++) {
		uint64_t r, t;
		if (netif_afxdp_queue_counters(nif, q, &r, &t))
			die("no counters for queue %u", q);
		rx += r;
		tx += t;
	}
	uint32_t sent = sh->sent[0] + sh->sent[1] + sh->sent[2] + sh->sent[3];
	uint32_t got = sh->got[0] + sh->got[1] + sh->got[2] + sh->got[3];
	if (tx < sent || rx < got)
		die("shared counters: %" PRIu64 " frames sent, %" PRIu64 " received; the processes sent %u and got %u",
		    tx, rx, sent, got);
	printf("%s: shared counters: %" PRIu64 " frames sent, %" PRIu64 " received by all processes\n", backend, tx, rx);
	usnet_netif_close(nif);
	printf("sent %" PRIu64 "\n", tx);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc >= 8 && !strcmp(argv[1], "share"))
		owner_main(argv[2], argv[3], argv[4], argv[5], argv[6], (uint16_t)atoi(argv[7]));
	else if (argc >= 6 && !strcmp(argv[1], "share-child"))
		child_main(atoi(argv[2]), atoi(argv[3]), (unsigned)atoi(argv[4]), (uint32_t)strtoul(argv[5], NULL, 0));
	else
		die("usage: netif_share_test share BACKEND IFACE OPTS MYIP PEERIP NQ");
	return 0;
}
