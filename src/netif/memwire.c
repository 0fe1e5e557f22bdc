/*
 * memwire: a shared-memory Ethernet wire (see include/usnet/netif_memwire.h).
 *
 * Layout of the shared mapping:
 *   struct mw_shared (header, one struct mw_dir per direction)
 *   per direction d (frames sent by side d):
 *     desc ring   ring_size x struct mw_desc   (sender produces, receiver consumes)
 *     return ring nbufs x uint32_t             (receiver gives buffers back)
 *     buffers     nbufs x frame_size
 * Each ring index is written by exactly one side, so no locks: the writer
 * publishes with a release store, the reader picks it up with an acquire load.
 * Free buffers of a direction are tracked by its sender in its end's own
 * state (refilled from the return ring), so tx_alloc touches the wire only
 * when that stack runs dry.
 *
 * An end's own state (its cached ring indices, the free stack) is what every
 * process driving that end updates: it lives in the end's region (one memfd,
 * struct mw_end_shared, indices only), not in the netif object, which is
 * each process's own (code pointers, fds, its mappings).  A forked child
 * inherits all of it; another process attaches with the region, the wire
 * (memfd or /dev/shm file) and the two wake-up fds (usnet/netif_share.h).
 * Only the process that opened an end leaves the wire when it closes it
 * (users count, /dev/shm files); others release their own views.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "netif_internal.h"
#include "usnet/netif_memwire.h"

#define MW_MAGIC   0x455249574d4e5355ull /* "USNMWIRE" little-endian */
#define MW_VERSION 1
#define MW_CACHELINE 64
#define MW_NAME_MAX 64
#define MW_END_MAGIC 0x444e454du    /* "MEND": an end's state */
#define MW_SHARE_MAGIC 0x4853574du  /* "MWSH": the share blob */
#define MW_SHARE_VERSION 1

/* One frame on the wire.  off: where data starts within its buffer. */
struct mw_desc {
	uint32_t buf;
	uint32_t len;
	uint16_t off;
	uint16_t flags;       /* USNET_PKT_TX_CSUM_PARTIAL or 0 */
	uint16_t csum_start;
	uint16_t csum_offset;
};

/* One direction.  Fields written by different sides sit on different cache
 * lines so that a busy sender and receiver do not bounce one line. */
struct mw_dir {
	_Alignas(MW_CACHELINE) _Atomic uint32_t prod;  /* sender: descriptors published */
	_Atomic uint32_t signals;                      /* sender: wake-ups written to the fd */
	_Alignas(MW_CACHELINE) _Atomic uint32_t cons;  /* receiver: descriptors consumed */
	_Atomic uint32_t ret_prod;                     /* receiver: buffers given back */
	_Alignas(MW_CACHELINE) _Atomic uint32_t ret_cons; /* sender: buffers taken back */
	_Alignas(MW_CACHELINE) _Atomic uint32_t sleeping; /* receiver arms, sender disarms */
	uint64_t desc_off, ret_off, buf_off;           /* from the start of the mapping */
};

struct mw_shared {
	uint64_t magic;
	uint32_t version;
	uint32_t frame_size;
	uint32_t ring_size;
	uint32_t nbufs;
	uint64_t map_size;
	_Atomic uint32_t ready;      /* creator finished initialising */
	_Atomic uint32_t users;      /* ends attached; the last to leave removes the files */
	_Atomic int32_t pid[2];      /* process holding each side (0: none) */
	_Atomic uint32_t used[2];    /* side was ever attached */
	struct mw_dir dir[2];
};

enum mw_fd_kind { MW_FD_EVENTFD, MW_FD_FIFO };

/* One end's state: whoever drives the end updates it (in the end's region,
 * so a forked child and attached processes see the same). */
struct mw_end_shared {
	uint32_t magic;
	uint32_t nbufs;
	/* sending direction */
	uint32_t tx_prod;       /* private copy of tx->prod */
	uint32_t tx_cons_seen;  /* last tx->cons read */
	uint32_t tx_ret_cons;   /* private copy of tx->ret_cons */
	uint32_t nfree;         /* free_stack[0..nfree-1]: free buffers of the sending direction */
	/* receiving direction */
	uint32_t rx_cons;
	uint32_t rx_prod_seen;
	uint32_t rx_ret_prod;
	uint32_t signals_drained;
	uint64_t free_off;      /* the free stack: nbufs x uint32_t, from the region's start */
};

/* The share blob; fds: the end's region, the wire, wait fd, signal fd. */
struct mw_share_blob {
	uint32_t magic, version;
	struct usnet_netif_info info;
	int32_t side;
	uint32_t nowake;
	uint32_t fd_kind;
	uint64_t map_size;
	uint64_t state_off;
};

/* This process's view of an end: read-only once opened or attached. */
struct memwire {
	struct usnet_netif base;
	struct mw_shared *sh;   /* this process's mapping of the wire */
	size_t map_size;
	int wire_fd;    /* the wire's memfd or /dev/shm file (handed to attachers) */
	int side;
	bool nowake;
	enum mw_fd_kind fd_kind;
	int wait_fd;    /* readable when frames for us arrived (ours to drain) */
	int signal_fd;  /* the peer's wait fd, written to wake it */
	char path[96];  /* shared file (cross-process), "" for a pair */
	pid_t owner;    /* the process that opened the end (0: attached) */
	struct netif_shm_region shm;   /* the end's state */
	struct mw_end_shared *st;
	uint32_t *free_stack;

	/* sending direction */
	struct mw_dir *tx;
	struct mw_desc *tx_desc;
	uint32_t *tx_ret;
	uint8_t *tx_bufs;

	/* receiving direction */
	struct mw_dir *rx;
	struct mw_desc *rx_desc;
	uint32_t *rx_ret;
	uint8_t *rx_bufs;

	uint32_t ring_mask, nbufs, frame_size;
};

struct mw_params {
	uint32_t frame_size, ring_size;
	bool frame_set, ring_set, nowake;
};

static const char *const mw_known_opts[] = { "frame", "ring", "nowake", NULL };

static int mw_parse_options(const char *options, struct mw_params *p, char *err, size_t errlen)
{
	int r = netif_opt_check(options, mw_known_opts, "memwire", err, errlen);
	if (r)
		return r;
	uint64_t frame = 0, ring = 0;
	if ((r = netif_opt_uint(options, "frame", 256, 65536, &frame, err, errlen)))
		return r;
	if ((r = netif_opt_uint(options, "ring", 8, 65536, &ring, err, errlen)))
		return r;
	if (ring && (ring & (ring - 1)))
		return netif_err(err, errlen, EINVAL, "memwire: ring=%llu is not a power of two",
				 (unsigned long long)ring);
	p->frame_set = frame != 0;
	p->ring_set = ring != 0;
	p->frame_size = frame ? (uint32_t)frame : 2048;
	p->ring_size = ring ? (uint32_t)ring : (p->frame_size > 2048 ? 256 : 1024);
	p->nowake = netif_opt_get(options, "nowake", NULL, 0);
	return 0;
}

static size_t mw_align(size_t x)
{
	return (x + MW_CACHELINE - 1) & ~(size_t)(MW_CACHELINE - 1);
}

/* Lay out and initialise a fresh mapping (zero-filled by the kernel). */
static size_t mw_layout_size(uint32_t frame_size, uint32_t ring_size)
{
	uint32_t nbufs = ring_size * 2;
	size_t per_dir = mw_align((size_t)ring_size * sizeof(struct mw_desc)) +
			 mw_align((size_t)nbufs * sizeof(uint32_t)) + (size_t)nbufs * frame_size;
	return mw_align(sizeof(struct mw_shared)) + 2 * mw_align(per_dir);
}

static void mw_init_shared(struct mw_shared *sh, size_t map_size, uint32_t frame_size, uint32_t ring_size)
{
	sh->version = MW_VERSION;
	sh->frame_size = frame_size;
	sh->ring_size = ring_size;
	sh->nbufs = ring_size * 2;
	sh->map_size = map_size;
	size_t off = mw_align(sizeof(struct mw_shared));
	for (int d = 0; d < 2; d++) {
		struct mw_dir *dir = &sh->dir[d];
		dir->desc_off = off;
		off += mw_align((size_t)ring_size * sizeof(struct mw_desc));
		dir->ret_off = off;
		off += mw_align((size_t)sh->nbufs * sizeof(uint32_t));
		dir->buf_off = off;
		off += mw_align((size_t)sh->nbufs * frame_size);
	}
	sh->magic = MW_MAGIC;
	atomic_store_explicit(&sh->ready, 1, memory_order_release);
}

/* ---- the data path ------------------------------------------------------ */

/* Wake the peer if it said it is about to sleep.  The fence pairs with the
 * one in mw_rx_burst(): either the peer sees our new prod, or we see its
 * sleeping flag. */
static void mw_wake_peer(struct memwire *mw)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (!atomic_load_explicit(&mw->tx->sleeping, memory_order_relaxed))
		return;
	if (!atomic_exchange_explicit(&mw->tx->sleeping, 0, memory_order_acq_rel))
		return;
	if (mw->fd_kind == MW_FD_EVENTFD) {
		uint64_t one = 1;
		(void)!write(mw->signal_fd, &one, sizeof one);
	} else {
		char one = 1;
		(void)!write(mw->signal_fd, &one, 1); /* EAGAIN: already readable */
	}
	/* After the write, so a receiver that sees the new count finds the
	 * fd readable and drains it. */
	atomic_fetch_add_explicit(&mw->tx->signals, 1, memory_order_release);
}

static void mw_drain_wait_fd(struct memwire *mw)
{
	uint32_t s = atomic_load_explicit(&mw->rx->signals, memory_order_acquire);
	if (s == mw->st->signals_drained)
		return;
	mw->st->signals_drained = s;
	char buf[64];
	if (mw->fd_kind == MW_FD_EVENTFD) {
		(void)!read(mw->wait_fd, buf, 8);
	} else {
		while (read(mw->wait_fd, buf, sizeof buf) == (ssize_t)sizeof buf)
			;
	}
}

static int mw_rx_burst(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned max)
{
	struct memwire *mw = (struct memwire *)nif;
	if (q != 0)
		return -EINVAL;
	if (!mw->nowake)
		mw_drain_wait_fd(mw);
	uint32_t avail = mw->st->rx_prod_seen - mw->st->rx_cons;
	if (avail == 0) {
		mw->st->rx_prod_seen = atomic_load_explicit(&mw->rx->prod, memory_order_acquire);
		avail = mw->st->rx_prod_seen - mw->st->rx_cons;
		if (avail == 0) {
			if (mw->nowake || max == 0)
				return 0;
			/* Nothing here: ask the sender to signal, then look once
			 * more so a frame published meanwhile is not missed. */
			atomic_store_explicit(&mw->rx->sleeping, 1, memory_order_relaxed);
			atomic_thread_fence(memory_order_seq_cst);
			mw->st->rx_prod_seen = atomic_load_explicit(&mw->rx->prod, memory_order_acquire);
			avail = mw->st->rx_prod_seen - mw->st->rx_cons;
			if (avail == 0)
				return 0;
		}
	}
	/* Frames are here, so we are not going to sleep: withdraw an earlier
	 * request for a wake-up, or the sender would make a system call for
	 * nothing and our next sleep would end at once. */
	if (!mw->nowake && atomic_load_explicit(&mw->rx->sleeping, memory_order_relaxed))
		atomic_store_explicit(&mw->rx->sleeping, 0, memory_order_relaxed);
	unsigned n = avail < max ? avail : max;
	for (unsigned i = 0; i < n; i++) {
		const struct mw_desc *d = &mw->rx_desc[(mw->st->rx_cons + i) & mw->ring_mask];
		struct usnet_pkt *p = &pkts[i];
		p->data = mw->rx_bufs + (size_t)d->buf * mw->frame_size + d->off;
		p->len = d->len;
		p->queue = 0;
		p->id = d->buf;
		if (d->flags & USNET_PKT_TX_CSUM_PARTIAL) {
			p->flags = USNET_PKT_RX_CSUM_OK | USNET_PKT_RX_CSUM_PARTIAL;
			p->csum_start = d->csum_start;
			p->csum_offset = d->csum_offset;
		} else {
			p->flags = 0;
			p->csum_start = p->csum_offset = 0;
		}
	}
	mw->st->rx_cons += n;
	atomic_store_explicit(&mw->rx->cons, mw->st->rx_cons, memory_order_release);
	return (int)n;
}

static void mw_rx_release(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned n)
{
	struct memwire *mw = (struct memwire *)nif;
	(void)q;
	uint32_t mask = mw->nbufs - 1;
	unsigned given = 0;
	for (unsigned i = 0; i < n; i++) {
		if (pkts[i].id >= mw->nbufs)
			continue; /* not ours: ignore rather than corrupt the ring */
		/* The return ring holds nbufs slots and at most nbufs buffers
		 * exist, so it cannot overflow. */
		mw->rx_ret[(mw->st->rx_ret_prod + given) & mask] = (uint32_t)pkts[i].id;
		given++;
	}
	mw->st->rx_ret_prod += given;
	atomic_store_explicit(&mw->rx->ret_prod, mw->st->rx_ret_prod, memory_order_release);
}

static void mw_reclaim(struct memwire *mw)
{
	uint32_t prod = atomic_load_explicit(&mw->tx->ret_prod, memory_order_acquire);
	uint32_t mask = mw->nbufs - 1;
	while (mw->st->tx_ret_cons != prod && mw->st->nfree < mw->nbufs) {
		mw->free_stack[mw->st->nfree++] = mw->tx_ret[mw->st->tx_ret_cons & mask];
		mw->st->tx_ret_cons++;
	}
	atomic_store_explicit(&mw->tx->ret_cons, mw->st->tx_ret_cons, memory_order_relaxed);
}

static int mw_tx_alloc(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned n)
{
	struct memwire *mw = (struct memwire *)nif;
	if (q != 0)
		return -EINVAL;
	if (mw->st->nfree < n)
		mw_reclaim(mw);
	unsigned k = n < mw->st->nfree ? n : mw->st->nfree;
	for (unsigned i = 0; i < k; i++) {
		uint32_t b = mw->free_stack[--mw->st->nfree];
		struct usnet_pkt *p = &pkts[i];
		p->data = mw->tx_bufs + (size_t)b * mw->frame_size;
		p->len = 0;
		p->flags = 0;
		p->csum_start = p->csum_offset = 0;
		p->queue = 0;
		p->id = b;
	}
	return (int)k;
}

/* Check that a lent buffer comes back whole: the right id, data inside it. */
static int mw_tx_check(struct memwire *mw, const struct usnet_pkt *p, uint32_t *off)
{
	if (p->id >= mw->nbufs)
		return -EINVAL;
	const uint8_t *base = mw->tx_bufs + (size_t)p->id * mw->frame_size;
	if (p->data < base || p->data > base + mw->frame_size)
		return -EINVAL;
	*off = (uint32_t)(p->data - base);
	if (p->len == 0 || *off + p->len > mw->frame_size)
		return -EMSGSIZE;
	return 0;
}

static int mw_tx_burst(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned n)
{
	struct memwire *mw = (struct memwire *)nif;
	if (q != 0)
		return -EINVAL;
	uint32_t ring = mw->ring_mask + 1;
	uint32_t space = ring - (mw->st->tx_prod - mw->st->tx_cons_seen);
	if (space < n) {
		mw->st->tx_cons_seen = atomic_load_explicit(&mw->tx->cons, memory_order_acquire);
		space = ring - (mw->st->tx_prod - mw->st->tx_cons_seen);
	}
	unsigned k = n < space ? n : space;
	unsigned i;
	for (i = 0; i < k; i++) {
		const struct usnet_pkt *p = &pkts[i];
		uint32_t off;
		int r = mw_tx_check(mw, p, &off);
		if (r) {
			if (i == 0)
				return r;
			break;
		}
		struct mw_desc *d = &mw->tx_desc[(mw->st->tx_prod + i) & mw->ring_mask];
		d->buf = (uint32_t)p->id;
		d->len = p->len;
		d->off = (uint16_t)off;
		d->flags = (p->flags & USNET_PKT_TX_CSUM_PARTIAL) ? USNET_PKT_TX_CSUM_PARTIAL : 0;
		d->csum_start = p->csum_start;
		d->csum_offset = p->csum_offset;
	}
	if (i == 0)
		return 0;
	mw->st->tx_prod += i;
	atomic_store_explicit(&mw->tx->prod, mw->st->tx_prod, memory_order_release);
	if (!mw->nowake)
		mw_wake_peer(mw);
	return (int)i;
}

static void mw_tx_free(struct usnet_netif *nif, uint16_t q, struct usnet_pkt *pkts, unsigned n)
{
	struct memwire *mw = (struct memwire *)nif;
	(void)q;
	for (unsigned i = 0; i < n; i++)
		if (pkts[i].id < mw->nbufs && mw->st->nfree < mw->nbufs)
			mw->free_stack[mw->st->nfree++] = (uint32_t)pkts[i].id;
}

static int mw_wait_fd(struct usnet_netif *nif, uint16_t q)
{
	struct memwire *mw = (struct memwire *)nif;
	return q == 0 ? mw->wait_fd : -1;
}

static void mw_close(struct usnet_netif *nif)
{
	struct memwire *mw = (struct memwire *)nif;
	if (!mw)
		return;
	if (mw->sh) {
		/* Only the opener leaves the wire; a forked child or an attached
		 * process drops its own view. */
		if (mw->owner == getpid()) {
			atomic_store(&mw->sh->pid[mw->side], 0);
			bool last = atomic_fetch_sub(&mw->sh->users, 1) == 1;
			if (last && mw->path[0]) {
				char fifo[128];
				unlink(mw->path);
				for (int s = 0; s < 2; s++) {
					snprintf(fifo, sizeof fifo, "%s.wake%d", mw->path, s);
					unlink(fifo);
				}
			}
		}
		munmap(mw->sh, mw->map_size);
	}
	if (mw->wire_fd >= 0)
		close(mw->wire_fd);
	if (mw->wait_fd >= 0)
		close(mw->wait_fd);
	if (mw->signal_fd >= 0)
		close(mw->signal_fd);
	netif_shm_region_release(&mw->shm);
	free(mw);
}

static const struct usnet_netif_ops mw_ops = {
	.rx_burst = mw_rx_burst,
	.rx_release = mw_rx_release,
	.tx_alloc = mw_tx_alloc,
	.tx_burst = mw_tx_burst,
	.tx_free = mw_tx_free,
	.flush = NULL, /* tx_burst publishes at once */
	.wait_fd = mw_wait_fd,
	.after_fork = NULL, /* object, mappings and fds are inherited as they are */
	.close = mw_close,
};

/* An end with nothing yet: every fd -1. */
static struct memwire *mw_end_alloc(void)
{
	struct memwire *mw = calloc(1, sizeof *mw);
	if (!mw)
		return NULL;
	mw->base.ops = &mw_ops;
	mw->wire_fd = mw->wait_fd = mw->signal_fd = -1;
	mw->shm.fd = -1;
	return mw;
}

/* Point an end at this process's mappings of the wire (sh) and of its state
 * (st), and describe it. */
static void mw_end_bind(struct memwire *mw, struct mw_shared *sh, size_t map_size, int side,
			struct mw_end_shared *st)
{
	mw->sh = sh;
	mw->map_size = map_size;
	mw->side = side;
	mw->st = st;
	mw->free_stack = (uint32_t *)(mw->shm.base + st->free_off);
	mw->frame_size = sh->frame_size;
	mw->nbufs = sh->nbufs;
	mw->ring_mask = sh->ring_size - 1;
	uint8_t *base = (uint8_t *)sh;
	mw->tx = &sh->dir[side];
	mw->rx = &sh->dir[1 - side];
	mw->tx_desc = (struct mw_desc *)(base + mw->tx->desc_off);
	mw->tx_ret = (uint32_t *)(base + mw->tx->ret_off);
	mw->tx_bufs = base + mw->tx->buf_off;
	mw->rx_desc = (struct mw_desc *)(base + mw->rx->desc_off);
	mw->rx_ret = (uint32_t *)(base + mw->rx->ret_off);
	mw->rx_bufs = base + mw->rx->buf_off;
	struct usnet_netif_info *in = &mw->base.info;
	netif_set_name(in->backend, "memwire");
	in->nqueues = 1;
	in->frame_size = sh->frame_size;
	in->mtu = sh->frame_size - 14;
	in->caps = USNET_NETIF_CAP_TX_CSUM | USNET_NETIF_CAP_RX_CSUM | USNET_NETIF_CAP_SHARED;
}

/* Open one end over this process's mapping of the wire (taken: unmapped by
 * mw_close()), its state in a fresh region.  NULL when out of memory (the
 * mapping is then unmapped). */
static struct memwire *mw_end_new(struct mw_shared *sh, size_t map_size, int side, bool nowake)
{
	struct memwire *mw = mw_end_alloc();
	if (!mw) {
		munmap(sh, map_size);
		return NULL;
	}
	mw->sh = sh;
	mw->map_size = map_size;
	mw->nowake = nowake;
	size_t size = 4096 + sizeof(uint32_t) * sh->nbufs + 128;
	size_t st_off = NETIF_SHM_NONE, free_off = NETIF_SHM_NONE;
	if (netif_shm_region_create(&mw->shm, "usnet-memwire", size, NULL, 0) == 0) {
		st_off = netif_shm_region_alloc(&mw->shm, sizeof(struct mw_end_shared));
		free_off = netif_shm_region_alloc(&mw->shm, sizeof(uint32_t) * sh->nbufs);
	}
	if (st_off == NETIF_SHM_NONE || free_off == NETIF_SHM_NONE) {
		mw_close(&mw->base);
		return NULL;
	}
	struct mw_end_shared *st = netif_shm_at(&mw->shm, st_off);
	*st = (struct mw_end_shared){ .magic = MW_END_MAGIC, .nbufs = sh->nbufs, .free_off = free_off };
	mw_end_bind(mw, sh, map_size, side, st);
	/* A side is attached once per wire: its sending direction starts
	 * with every buffer free and all indices at zero. */
	st->tx_prod = atomic_load(&mw->tx->prod);
	st->tx_cons_seen = atomic_load(&mw->tx->cons);
	st->tx_ret_cons = atomic_load(&mw->tx->ret_cons);
	for (uint32_t b = 0; b < sh->nbufs; b++)
		mw->free_stack[b] = sh->nbufs - 1 - b;
	st->nfree = sh->nbufs;
	st->rx_cons = atomic_load(&mw->rx->cons);
	st->rx_prod_seen = st->rx_cons;
	st->rx_ret_prod = atomic_load(&mw->rx->ret_prod);
	st->signals_drained = atomic_load(&mw->rx->signals);
	struct usnet_netif_info *in = &mw->base.info;
	in->mac[0] = 0x02;
	in->mac[5] = (uint8_t)(side + 1);
	/* Last: from here on mw_close() leaves the wire (the caller joins it). */
	mw->owner = getpid();
	return mw;
}

int usnet_memwire_pair(struct usnet_netif *ends[2], const char *options, char *err, size_t errlen)
{
	struct mw_params p;
	int r = mw_parse_options(options, &p, err, errlen);
	if (r)
		return r;
	size_t size = mw_layout_size(p.frame_size, p.ring_size);
	/* A memfd rather than anonymous memory, so that either end can be
	 * handed to another process (usnet_netif_share()). */
	int wfd = memfd_create("usnet-memwire-pair", MFD_CLOEXEC);
	if (wfd < 0)
		return netif_err(err, errlen, errno, "memwire: cannot create the wire's memory: %s", strerror(errno));
	if (ftruncate(wfd, (off_t)size) < 0) {
		r = netif_err(err, errlen, errno, "memwire: cannot size the wire (%zu bytes): %s", size, strerror(errno));
		close(wfd);
		return r;
	}
	struct memwire *m[2] = { NULL, NULL };
	int efd[2] = { -1, -1 };
	for (int s = 0; s < 2; s++) {
		efd[s] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (efd[s] < 0) {
			r = netif_err(err, errlen, errno, "memwire: eventfd: %s", strerror(errno));
			goto fail;
		}
	}
	/* Each end maps the wire on its own: it unmaps it when closed. */
	for (int s = 0; s < 2; s++) {
		struct mw_shared *sh = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, wfd, 0);
		if (sh == MAP_FAILED) {
			r = netif_err(err, errlen, ENOMEM, "memwire: cannot map %zu bytes for the wire", size);
			goto fail;
		}
		if (s == 0)
			mw_init_shared(sh, size, p.frame_size, p.ring_size);
		m[s] = mw_end_new(sh, size, s, p.nowake);
		if (!m[s]) {
			r = netif_err(err, errlen, ENOMEM, "memwire: out of memory");
			goto fail;
		}
		atomic_fetch_add(&sh->users, 1);
		atomic_store(&sh->used[s], 1);
		m[s]->fd_kind = MW_FD_EVENTFD;
		snprintf(m[s]->base.info.ifname, USNET_NETIF_NAME_MAX, "pair:%d", s);
		m[s]->wire_fd = fcntl(wfd, F_DUPFD_CLOEXEC, 0);
		m[s]->signal_fd = fcntl(efd[1 - s], F_DUPFD_CLOEXEC, 0);
		if (m[s]->wire_fd < 0 || m[s]->signal_fd < 0) {
			r = netif_err(err, errlen, errno, "memwire: dup: %s", strerror(errno));
			goto fail;
		}
	}
	for (int s = 0; s < 2; s++) {
		m[s]->wait_fd = efd[s];
		efd[s] = -1;
	}
	close(wfd);
	ends[0] = &m[0]->base;
	ends[1] = &m[1]->base;
	return 0;
fail:
	for (int s = 0; s < 2; s++)
		if (efd[s] >= 0)
			close(efd[s]);
	close(wfd);
	for (int s = 0; s < 2; s++)
		if (m[s])
			mw_close(&m[s]->base);
	return r;
}

/* ---- across processes: a named wire in /dev/shm ------------------------- */

static bool mw_pid_alive(int32_t pid)
{
	if (pid <= 0 || (kill(pid, 0) < 0 && errno != EPERM))
		return false;
	/* A killed process nobody reaped yet still answers kill(): look at
	 * its state. */
	char path[64], buf[256];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return true;
	buf[n] = 0;
	const char *end = strrchr(buf, ')'); /* the name may hold spaces and ')' */
	return !(end && end[1] == ' ' && (end[2] == 'Z' || end[2] == 'X'));
}

static int mw_parse_iface(const char *iface, char *name, int *side, char *err, size_t errlen)
{
	const char *colon = iface ? strrchr(iface, ':') : NULL;
	if (!colon || colon == iface || (colon[1] != '0' && colon[1] != '1') || colon[2])
		return netif_err(err, errlen, EINVAL,
				 "memwire: iface must be NAME:0 or NAME:1 (got '%s')", iface ? iface : "");
	size_t n = (size_t)(colon - iface);
	if (n >= MW_NAME_MAX)
		return netif_err(err, errlen, ENAMETOOLONG, "memwire: wire name longer than %d characters",
				 MW_NAME_MAX - 1);
	for (size_t i = 0; i < n; i++) {
		char c = iface[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return netif_err(err, errlen, EINVAL,
					 "memwire: wire name '%.*s' may only use letters, digits, '-', '_' and '.'",
					 (int)n, iface);
	}
	memcpy(name, iface, n);
	name[n] = 0;
	*side = colon[1] - '0';
	return 0;
}

/* Open (creating if needed) the wire file and map it.  Returns the mapping
 * and the open file in *wire_fd (kept, to hand the wire to attached
 * processes), or NULL with r set. */
static struct mw_shared *mw_attach_file(const char *path, const struct mw_params *p, int side,
					size_t *map_size, int *wire_fd, int *r, char *err, size_t errlen)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0) {
			size_t size = mw_layout_size(p->frame_size, p->ring_size);
			if (ftruncate(fd, (off_t)size) < 0) {
				*r = netif_err(err, errlen, errno, "memwire: cannot size %s: %s", path, strerror(errno));
				close(fd);
				unlink(path);
				return NULL;
			}
			struct mw_shared *sh = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			if (sh == MAP_FAILED) {
				*r = netif_err(err, errlen, errno, "memwire: cannot map %s: %s", path, strerror(errno));
				close(fd);
				unlink(path);
				return NULL;
			}
			mw_init_shared(sh, size, p->frame_size, p->ring_size);
			*map_size = size;
			*wire_fd = fd;
			return sh;
		}
		if (errno != EEXIST) {
			*r = netif_err(err, errlen, errno, "memwire: cannot create %s: %s", path, strerror(errno));
			return NULL;
		}
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT)
				continue; /* the other side just removed it: create afresh */
			*r = netif_err(err, errlen, errno, "memwire: cannot open %s: %s", path, strerror(errno));
			return NULL;
		}
		/* The creator sizes, maps and initialises: wait up to 2 s. */
		struct mw_shared *sh = NULL;
		size_t size = 0;
		for (int i = 0; i < 2000; i++) {
			struct stat st;
			if (fstat(fd, &st) == 0 && (size_t)st.st_size >= sizeof(struct mw_shared)) {
				if (!sh) {
					size = (size_t)st.st_size;
					sh = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
					if (sh == MAP_FAILED) {
						*r = netif_err(err, errlen, errno, "memwire: cannot map %s: %s",
							       path, strerror(errno));
						close(fd);
						return NULL;
					}
				}
				if (atomic_load_explicit(&sh->ready, memory_order_acquire))
					break;
			}
			usleep(1000);
		}
		if (!sh || !atomic_load_explicit(&sh->ready, memory_order_acquire) ||
		    sh->magic != MW_MAGIC || sh->version != MW_VERSION || sh->map_size != size) {
			if (sh)
				munmap(sh, size);
			close(fd);
			*r = netif_err(err, errlen, EPROTO,
				       "memwire: %s is not a usable wire (remove it and retry)", path);
			return NULL;
		}
		/* Left behind by processes that are gone?  Start afresh. */
		int32_t me = atomic_load(&sh->pid[side]), peer = atomic_load(&sh->pid[1 - side]);
		if (!mw_pid_alive(me) && !mw_pid_alive(peer) &&
		    (atomic_load(&sh->used[side]) || atomic_load(&sh->used[1 - side])) &&
		    (me || peer)) {
			munmap(sh, size);
			close(fd);
			unlink(path);
			continue;
		}
		if (mw_pid_alive(me)) {
			munmap(sh, size);
			close(fd);
			*r = netif_err(err, errlen, EBUSY, "memwire: side %d of %s is in use by process %d",
				       side, path, (int)me);
			return NULL;
		}
		if (atomic_load(&sh->used[side])) {
			munmap(sh, size);
			close(fd);
			*r = netif_err(err, errlen, EBUSY,
				       "memwire: side %d of %s was used before; close both ends to reset the wire",
				       side, path);
			return NULL;
		}
		if ((p->frame_set && p->frame_size != sh->frame_size) ||
		    (p->ring_set && p->ring_size != sh->ring_size)) {
			*r = netif_err(err, errlen, EINVAL,
				       "memwire: %s has frame=%u ring=%u, not what was asked",
				       path, sh->frame_size, sh->ring_size);
			munmap(sh, size);
			close(fd);
			return NULL;
		}
		*map_size = size;
		*wire_fd = fd;
		return sh;
	}
	*r = netif_err(err, errlen, EBUSY, "memwire: %s keeps changing; retry", path);
	return NULL;
}

static int mw_open_fifo(const char *path, char *err, size_t errlen)
{
	if (mkfifo(path, 0600) < 0 && errno != EEXIST)
		return netif_err(err, errlen, errno, "memwire: cannot create %s: %s", path, strerror(errno));
	/* O_RDWR: never blocks on a FIFO and keeps it open at both ends. */
	int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return netif_err(err, errlen, errno, "memwire: cannot open %s: %s", path, strerror(errno));
	return fd;
}

int netif_memwire_open(const struct usnet_netif_config *cfg, struct usnet_netif **out,
		       char *err, size_t errlen)
{
	struct mw_params p;
	char name[MW_NAME_MAX];
	int side = 0, r;
	if ((r = mw_parse_iface(cfg->iface, name, &side, err, errlen)))
		return r;
	if ((r = mw_parse_options(cfg->options, &p, err, errlen)))
		return r;
	if (cfg->queues > 1)
		return netif_err(err, errlen, EINVAL, "memwire: one queue only (asked for %u)", cfg->queues);
	char path[96];
	snprintf(path, sizeof path, "/dev/shm/usnet-memwire-%s", name);
	size_t size = 0;
	int wire_fd = -1;
	struct mw_shared *sh = mw_attach_file(path, &p, side, &size, &wire_fd, &r, err, errlen);
	if (!sh)
		return r;
	struct memwire *mw = mw_end_new(sh, size, side, p.nowake);
	if (!mw) {
		close(wire_fd);
		return netif_err(err, errlen, ENOMEM, "memwire: out of memory");
	}
	atomic_fetch_add(&sh->users, 1);
	atomic_store(&sh->used[side], 1);
	atomic_store(&sh->pid[side], (int32_t)getpid());
	mw->wire_fd = wire_fd;
	snprintf(mw->path, sizeof mw->path, "%s", path);
	mw->fd_kind = MW_FD_FIFO;
	char fifo[128];
	snprintf(fifo, sizeof fifo, "%s.wake%d", path, side);
	if ((r = mw_open_fifo(fifo, err, errlen)) < 0)
		goto fail;
	mw->wait_fd = r;
	snprintf(fifo, sizeof fifo, "%s.wake%d", path, 1 - side);
	if ((r = mw_open_fifo(fifo, err, errlen)) < 0)
		goto fail;
	mw->signal_fd = r;
	netif_set_name(mw->base.info.ifname, cfg->iface);
	/* A MAC from the wire's name, so both processes can predict it. */
	uint32_t h = 2166136261u;
	for (const char *c = name; *c; c++)
		h = (h ^ (uint8_t)*c) * 16777619u;
	uint8_t *mac = mw->base.info.mac;
	mac[0] = 0x02;
	mac[1] = (uint8_t)(h >> 16);
	mac[2] = (uint8_t)(h >> 8);
	mac[3] = (uint8_t)h;
	mac[4] = 0;
	mac[5] = (uint8_t)(side + 1);
	if (cfg->has_mac)
		memcpy(mac, cfg->mac, 6);
	*out = &mw->base;
	return 0;
fail:
	mw_close(&mw->base);
	return r;
}

/* ---- sharing with processes that did not fork (usnet/netif_share.h) ---- */

int netif_memwire_share(struct usnet_netif *nif, struct usnet_netif_share *out, char *err, size_t errlen)
{
	struct memwire *mw = (struct memwire *)nif;
	if (nif->ops != &mw_ops)
		return netif_err(err, errlen, EINVAL, "memwire: not a memwire netif");
	if (mw->wire_fd < 0 || mw->shm.fd < 0 || mw->wait_fd < 0 || mw->signal_fd < 0)
		return netif_err(err, errlen, EOPNOTSUPP, "memwire: %s lacks an fd to share", nif->info.ifname);
	struct mw_share_blob b = { .magic = MW_SHARE_MAGIC, .version = MW_SHARE_VERSION, .info = nif->info,
				   .side = mw->side, .nowake = mw->nowake, .fd_kind = mw->fd_kind,
				   .map_size = mw->map_size,
				   .state_off = (uint64_t)((uint8_t *)mw->st - mw->shm.base) };
	_Static_assert(sizeof b <= USNET_NETIF_SHARE_BLOB, "memwire share blob too large");
	out->nfds = 4;
	out->fds[0] = mw->shm.fd;
	out->fds[1] = mw->wire_fd;
	out->fds[2] = mw->wait_fd;
	out->fds[3] = mw->signal_fd;
	out->blob_len = sizeof b;
	memcpy(out->blob, &b, sizeof b);
	return 0;
}

int netif_memwire_attach(const struct usnet_netif_share *sh, struct usnet_netif **out, char *err, size_t errlen)
{
	struct mw_share_blob b;
	if (sh->nfds != 4 || sh->blob_len != sizeof b) {
		netif_share_close_fds(sh);
		return netif_err(err, errlen, EPROTO, "memwire: the share received is not a memwire's (%u fds, %u bytes)",
				 sh->nfds, sh->blob_len);
	}
	memcpy(&b, sh->blob, sizeof b);
	struct memwire *mw = mw_end_alloc();
	if (!mw) {
		for (uint32_t i = 0; i < 4; i++)
			close(sh->fds[i]);
		return netif_err(err, errlen, ENOMEM, "memwire: out of memory");
	}
	/* From here mw owns the fds (mw_close() closes them). */
	mw->wire_fd = sh->fds[1];
	mw->wait_fd = sh->fds[2];
	mw->signal_fd = sh->fds[3];
	int r;
	if (b.magic != MW_SHARE_MAGIC || b.version != MW_SHARE_VERSION || (b.side != 0 && b.side != 1) ||
	    (b.fd_kind != MW_FD_EVENTFD && b.fd_kind != MW_FD_FIFO)) {
		close(sh->fds[0]);
		r = netif_err(err, errlen, EPROTO, "memwire: the share received is of another version");
		goto fail;
	}
	if ((r = netif_shm_region_map(&mw->shm, sh->fds[0], err, errlen)))
		goto fail;
	struct stat st;
	if (fstat(mw->wire_fd, &st) != 0 || (uint64_t)st.st_size != b.map_size ||
	    b.map_size < sizeof(struct mw_shared)) {
		r = netif_err(err, errlen, EPROTO, "memwire: the wire received for %.32s is not %llu bytes long",
			      b.info.ifname, (unsigned long long)b.map_size);
		goto fail;
	}
	struct mw_shared *wsh = mmap(NULL, b.map_size, PROT_READ | PROT_WRITE, MAP_SHARED, mw->wire_fd, 0);
	if (wsh == MAP_FAILED) {
		r = netif_err(err, errlen, errno, "memwire: cannot map the wire of %.32s: %s", b.info.ifname,
			      strerror(errno));
		goto fail;
	}
	mw->sh = wsh;
	mw->map_size = b.map_size;
	struct mw_end_shared *est = NULL;
	if (mw->shm.size >= sizeof *est && b.state_off <= mw->shm.size - sizeof *est)
		est = netif_shm_at(&mw->shm, b.state_off);
	if (wsh->magic != MW_MAGIC || wsh->version != MW_VERSION || wsh->map_size != b.map_size ||
	    wsh->frame_size != b.info.frame_size || wsh->nbufs == 0 || (wsh->ring_size & (wsh->ring_size - 1)) ||
	    !est || est->magic != MW_END_MAGIC || est->nbufs != wsh->nbufs || est->free_off > mw->shm.size ||
	    (uint64_t)est->nbufs * sizeof(uint32_t) > mw->shm.size - est->free_off) {
		r = netif_err(err, errlen, EPROTO, "memwire: the memory received does not hold side %d of %.32s",
			      (int)b.side, b.info.ifname);
		goto fail;
	}
	mw_end_bind(mw, wsh, b.map_size, b.side, est);
	mw->nowake = b.nowake != 0;
	mw->fd_kind = (enum mw_fd_kind)b.fd_kind;
	mw->base.info = b.info;
	*out = &mw->base;
	return 0;
fail:
	mw_close(&mw->base);
	return r;
}
