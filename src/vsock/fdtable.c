/*
 * usnet switch — slots (shared open-file-descriptions of user sockets), the
 * files that carry their lifetime, and the per-process fd table.
 *
 * Every user socket has a kernel file of its own, "the socket's file": an
 * unbound AF_UNIX datagram socket, marked as usnet's by a peek offset no
 * program sets (FILE_MARK).  The kernel thus allocates fd numbers (lowest
 * free, EMFILE at the limit), honours FD_CLOEXEC, lets dup2() replace the
 * fd, copies it to forked children and over SCM_RIGHTS, and counts the
 * references in every process.  When the last one goes -- the last close
 * anywhere, a process's exit or death, close-on-exec -- the kernel releases
 * the file and an inotify watch on it reports IN_CLOSE once: the process
 * that reads that event closes the provider socket.  No process keeps
 * reference counts of its own, so none can get them wrong by dying, forking
 * or passing an fd at the wrong moment.
 */
#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vsock.h"
#include "attach_proto.h"

/* SO_PEEK_OFF of a user socket's file ("usnt"); a fresh AF_UNIX socket has
 * -1, and nothing reads from these files. */
#define FILE_MARK 0x75736e74

struct vsock_shared *vsock_shm;
_Atomic int32_t *vsock_fdmap;
int vsock_fdmap_size;
_Atomic int vsock_user_fds;
/* The inotify instance watching every user socket's file: one instance for
 * the processes that share the slots (inherited over fork), so that an
 * event is read, and a socket closed, once. */
static int close_watch_fd = -1;

int vsock_fdtable_init(void)
{
	struct rlimit rl;
	long max = 65536;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY && (long)rl.rlim_max > max)
		max = (long)rl.rlim_max;
	if (max > (1L << 20))
		max = 1L << 20;
	void *m = (void *)vsock_sys(SYS_mmap, 0, max * sizeof(int32_t), PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if ((long)m < 0 && (long)m > -4096)
		return (int)(long)m;
	/* Attached: the slots and the close-watch instance are every attached
	 * process's (made by the first); else this process's and its forked
	 * children's. */
	struct vsock_attachment *a = &vsock_attachment;
	void *sh;
	long ifd;
	if (a->attached) {
		sh = vsock_attach_map(ATTACH_FD_SWITCH, sizeof(struct vsock_shared));
		if (!sh)
			return -ENOMEM;
		ifd = vsock_own_fd_hide(a->fds[ATTACH_FD_CLOSE_WATCH], &close_watch_fd);
	} else {
		sh = (void *)vsock_sys(SYS_mmap, 0, sizeof(struct vsock_shared), PROT_READ | PROT_WRITE,
				       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if ((long)sh < 0 && (long)sh > -4096)
			return (int)(long)sh;
		ifd = vsock_sys(SYS_inotify_init1, IN_NONBLOCK | IN_CLOEXEC, 0, 0, 0, 0, 0);
		if (ifd < 0)
			return (int)ifd;
		ifd = vsock_own_fd_hide((int)ifd, &close_watch_fd);
	}
	vsock_shm = sh;
	if (!a->attached || a->init) {
		pthread_mutexattr_t ma;
		pthread_mutexattr_init(&ma);
		pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
		pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
		pthread_mutex_init(&vsock_shm->wd_lock, &ma);
		pthread_mutexattr_destroy(&ma);
	}
	vsock_fdmap_size = (int)max;
	atomic_store(&vsock_fdmap, (_Atomic int32_t *)m);
	return 0;
}

int vsock_slots_close_fd(void)
{
	return close_watch_fd;
}

/* ---- watch descriptor -> slot ------------------------------------------ */

#define WD_TABLE (2 * VSOCK_MAX_SLOTS)

static void wd_lock(void)
{
	/* A process that died holding it left at most one entry half moved
	 * by wd_take's shift: a lookup may then miss that socket's close. */
	if (pthread_mutex_lock(&vsock_shm->wd_lock) == EOWNERDEAD)
		pthread_mutex_consistent(&vsock_shm->wd_lock);
}

static void wd_unlock(void)
{
	pthread_mutex_unlock(&vsock_shm->wd_lock);
}

static uint32_t wd_home(int32_t wd)
{
	return (uint32_t)wd * 2654435761u % WD_TABLE;
}

static void wd_insert(int32_t wd, int32_t slot)
{
	wd_lock();
	/* At most VSOCK_MAX_SLOTS entries in twice as many places: a free one
	 * is always found. */
	uint32_t i = wd_home(wd);
	while (vsock_shm->wd_table[i].wd != 0)
		i = (i + 1) % WD_TABLE;
	vsock_shm->wd_table[i] = (struct vsock_wd_entry){ wd, slot };
	wd_unlock();
}

/* Remove wd's entry; its slot, or -1 when wd has none. */
static int32_t wd_take(int32_t wd)
{
	int32_t slot = -1;
	wd_lock();
	struct vsock_wd_entry *t = vsock_shm->wd_table;
	uint32_t i = wd_home(wd);
	for (uint32_t n = 0; n < WD_TABLE && t[i].wd != 0; n++, i = (i + 1) % WD_TABLE) {
		if (t[i].wd != wd)
			continue;
		slot = t[i].slot;
		/* Backward-shift deletion: move up every later entry of the run
		 * whose home does not lie between the hole and it, so that
		 * lookups never stop at a hole before their entry. */
		uint32_t hole = i, j = i;
		for (;;) {
			j = (j + 1) % WD_TABLE;
			if (t[j].wd == 0)
				break;
			uint32_t h = wd_home(t[j].wd);
			bool stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
			if (!stays) {
				t[hole] = t[j];
				hole = j;
			}
		}
		t[hole] = (struct vsock_wd_entry){ 0, 0 };
		break;
	}
	wd_unlock();
	return slot;
}

/* ---- slots --------------------------------------------------------------- */

struct vsock_slot *vsock_slot_alloc(void)
{
	uint32_t start = atomic_load(&vsock_shm->alloc_hint);
	for (uint32_t i = 0; i < VSOCK_MAX_SLOTS; i++) {
		uint32_t k = (start + i) % VSOCK_MAX_SLOTS;
		struct vsock_slot *s = &vsock_shm->slots[k];
		uint32_t zero = 0;
		if (atomic_load_explicit(&s->used, memory_order_relaxed) == 0 &&
		    atomic_compare_exchange_strong(&s->used, &zero, 1)) {
			atomic_store(&vsock_shm->alloc_hint, k + 1);
			s->wd = 0;
			s->ino = 0;
			for (int k = 0; k < VSOCK_CALLERS; k++)
				atomic_store(&s->calls[k], 0);
			atomic_store(&s->calls_untracked, 0);
			atomic_store(&s->file_gone, SLOT_LIVE);
			s->creator = (int32_t)vsock_pid;
			s->domain = s->type = s->protocol = 0;
			s->ps = VSOCK_NO_PS;
			s->rcvtimeo_ns = s->sndtimeo_ns = 0;
			s->nreplay = 0;
			atomic_store(&s->status, 0);
			atomic_store(&s->wake_mask, 0);
			atomic_fetch_add(&s->gen, 1);
			return s;
		}
	}
	return NULL;
}

void vsock_slot_discard(struct vsock_slot *s)
{
	atomic_store(&s->used, 0);
}

int vsock_slot_open_file(struct vsock_slot *s, bool cloexec)
{
	long fd = vsock_sys(SYS_socket, AF_UNIX, SOCK_DGRAM | (cloexec ? SOCK_CLOEXEC : 0), 0, 0, 0, 0);
	if (fd < 0)
		return (int)fd;
	if (fd >= vsock_fdmap_size) {
		vsock_sys(SYS_close, fd, 0, 0, 0, 0, 0);
		return -EMFILE;
	}
	int mark = FILE_MARK;
	struct stat st;
	char path[40];
	snprintf(path, sizeof path, "/proc/self/fd/%ld", fd);
	long r = vsock_sys(SYS_setsockopt, fd, SOL_SOCKET, SO_PEEK_OFF, &mark, sizeof mark, 0);
	if (r == 0)
		r = vsock_sys(SYS_fstat, fd, &st, 0, 0, 0, 0);
	if (r == 0)
		r = vsock_sys(SYS_inotify_add_watch, close_watch_fd, path, IN_CLOSE, 0, 0, 0);
	if (r <= 0) {
		static _Atomic int said;
		if (!atomic_exchange(&said, 1))
			vsock_log(0, "cannot watch a socket's file (%s: %s); is /proc mounted, "
				  "fs.inotify.max_user_watches reached?", path, strerror((int)-r));
		vsock_sys(SYS_close, fd, 0, 0, 0, 0, 0);
		return r < 0 ? (int)r : -ENOMEM;
	}
	s->wd = (int32_t)r;
	s->ino = st.st_ino;
	wd_insert(s->wd, (int32_t)vsock_slot_index(s));
	vsock_fd_map((int)fd, s);
	/* A provider's own kernel fd behind the socket (the kernel
	 * provider's) is usnet's, not the program's. */
	vsock_own_fd_note(vsock_slot_kernel_fd(s));
	return (int)fd;
}

static bool slot_in_call(struct vsock_slot *s)
{
	if (atomic_load(&s->calls_untracked))
		return true;
	for (int k = 0; k < VSOCK_CALLERS; k++)
		if ((uint32_t)atomic_load(&s->calls[k]))
			return true;
	return false;
}

bool vsock_prov_handles_shared;

static void slot_free(struct vsock_slot *s)
{
	usnet_psock_t ps = s->ps;
	s->wd = 0;
	s->ino = 0;
	vsock_log(2, "socket %u closed (its last descriptor is gone)", vsock_slot_index(s));
	int kfd = vsock_slot_kernel_fd(s);
	if (kfd >= 0)
		vsock_own_fd_forget(kfd);
	vsock_prov->close(vsock_prov_ctx, ps);
	atomic_store(&s->used, 0);
}

/* Close the provider socket of a slot whose file is gone and that no call
 * uses, once (whoever sees both first) -- or leave it to its creator. */
static void slot_release(struct vsock_slot *s)
{
	uint32_t gone = SLOT_FILE_GONE;
	if (!atomic_compare_exchange_strong(&s->file_gone, &gone, SLOT_CLOSING))
		return;
	s->closer = (int32_t)vsock_pid;
	if (!vsock_prov_handles_shared && s->creator != (int32_t)vsock_pid) {
		if (vsock_sys(SYS_kill, s->creator, 0, 0, 0, 0, 0) != -ESRCH) {
			atomic_store(&s->file_gone, SLOT_CLOSE_OWED);
			return;
		}
		/* Its creator is gone, and its handle with it. */
		s->wd = 0;
		s->ino = 0;
		atomic_store(&s->used, 0);
		return;
	}
	slot_free(s);
}

void vsock_slots_collect(void)
{
	if (close_watch_fd < 0)
		return;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int32_t gone[sizeof buf / sizeof(struct inotify_event)];
	for (;;) {
		long n = vsock_sys(SYS_read, close_watch_fd, buf, sizeof buf, 0, 0, 0);
		if (n <= 0)
			return;
		/* First mark every slot whose file is gone: an event read is
		 * nowhere else, and a process killed from here on leaves the
		 * marks for the sweep (SLOT_FILE_GONE) rather than lose them. */
		unsigned ngone = 0;
		for (long off = 0; off < n;) {
			const struct inotify_event *e = (const void *)(buf + off);
			off += (long)sizeof *e + e->len;
			if (e->mask & IN_Q_OVERFLOW) {
				static _Atomic int said;
				if (!atomic_exchange(&said, 1))
					vsock_log(0, "closes of user sockets came faster than they were read "
						  "(fs.inotify.max_queued_events): some stay open");
				continue;
			}
			if (!(e->mask & (IN_CLOSE | IN_IGNORED)))
				continue;
			int32_t k = wd_take(e->wd);
			if (k < 0 || k >= VSOCK_MAX_SLOTS)
				continue;   /* IN_IGNORED after the close, or a file never used */
			atomic_store(&vsock_shm->slots[k].file_gone, SLOT_FILE_GONE);
			gone[ngone++] = k;
		}
		for (unsigned i = 0; i < ngone; i++) {
			struct vsock_slot *s = &vsock_shm->slots[gone[i]];
			/* A call still running on it closes it when it ends. */
			if (!slot_in_call(s))
				slot_release(s);
		}
		/* Room was left for another event: the queue was empty then (a
		 * close's event is queued before the close returns, so the
		 * caller's is in; later ones wait for the next collect), and
		 * the read that would say EAGAIN is saved: one per close of a
		 * user socket. */
		if ((size_t)n + sizeof(struct inotify_event) <= sizeof buf)
			return;
	}
}

/* Count one more (+1) or one less (-1) call of this process on s. */
static void slot_call_count(struct vsock_slot *s, int delta)
{
	uint64_t me = (uint64_t)(uint32_t)vsock_pid << 32;
	for (int k = 0; k < VSOCK_CALLERS; k++) {
		uint64_t v = atomic_load_explicit(&s->calls[k], memory_order_relaxed);
		if ((v & ~0xffffffffull) == me && (delta > 0 || (uint32_t)v)) {
			atomic_fetch_add(&s->calls[k], (uint64_t)(int64_t)delta);
			return;
		}
	}
	if (delta > 0) {
		for (int k = 0; k < VSOCK_CALLERS; k++) {
			uint64_t v = atomic_load_explicit(&s->calls[k], memory_order_relaxed);
			/* An entry whose count went to 0 is free, whoever it was. */
			if ((uint32_t)v == 0 && atomic_compare_exchange_strong(&s->calls[k], &v, me | 1))
				return;
		}
	}
	atomic_fetch_add(&s->calls_untracked, (uint32_t)delta);
}

bool vsock_slot_enter(int fd, struct vsock_slot *s)
{
	slot_call_count(s, 1);
	if (vsock_fd_slot(fd) == s && atomic_load(&s->file_gone) == SLOT_LIVE)
		return true;
	vsock_slot_leave(s);
	return false;
}

void vsock_slot_leave(struct vsock_slot *s)
{
	slot_call_count(s, -1);
	if (atomic_load(&s->file_gone) == SLOT_FILE_GONE && !slot_in_call(s))
		slot_release(s);
}

void vsock_slots_sweep(void)
{
	if (!vsock_shm)
		return;
	for (int i = 0; i < VSOCK_MAX_SLOTS; i++) {
		struct vsock_slot *s = &vsock_shm->slots[i];
		if (!atomic_load_explicit(&s->used, memory_order_relaxed))
			continue;
		uint32_t state = atomic_load(&s->file_gone);
		if (state == SLOT_LIVE && s->wd == 0 && s->creator != (int32_t)vsock_pid &&
		    vsock_sys(SYS_kill, s->creator, 0, 0, 0, 0, 0) == -ESRCH) {
			/* Its creator died while making it (before its file was
			 * watched): no fd can refer to it. */
			uint32_t live = SLOT_LIVE;
			if (!atomic_compare_exchange_strong(&s->file_gone, &live, SLOT_CLOSING))
				continue;
			s->closer = (int32_t)vsock_pid;
			if (s->ps != VSOCK_NO_PS && vsock_prov_handles_shared)
				vsock_prov->close(vsock_prov_ctx, s->ps);
			vsock_log(1, "socket %d of process %d, which died making it, closed", i, s->creator);
			atomic_store(&s->used, 0);
		} else if (state == SLOT_CLOSING && s->closer != (int32_t)vsock_pid &&
			   vsock_sys(SYS_kill, s->closer, 0, 0, 0, 0, 0) == -ESRCH) {
			/* Its closer died in the middle.  Not closed again: the
			 * provider socket may be closed already and its number
			 * another connection's now.  The slot is free again. */
			vsock_log(1, "socket %d: process %d died closing it", i, s->closer);
			atomic_store(&s->used, 0);
		} else if (state == SLOT_FILE_GONE) {
			/* Calls of processes killed inside them never end. */
			for (int k = 0; k < VSOCK_CALLERS; k++) {
				uint64_t v = atomic_load(&s->calls[k]);
				int32_t pid = (int32_t)(v >> 32);
				if ((uint32_t)v && pid != (int32_t)vsock_pid &&
				    vsock_sys(SYS_kill, pid, 0, 0, 0, 0, 0) == -ESRCH)
					atomic_compare_exchange_strong(&s->calls[k], &v, 0);
			}
			if (!slot_in_call(s))
				slot_release(s);
		} else if (state == SLOT_CLOSE_OWED && !vsock_prov_handles_shared &&
			   s->creator == (int32_t)vsock_pid) {
			uint32_t owed = SLOT_CLOSE_OWED;
			if (atomic_compare_exchange_strong(&s->file_gone, &owed, SLOT_CLOSING)) {
				s->closer = (int32_t)vsock_pid;
				slot_free(s);
			}
		}
	}
}

bool vsock_fd_is_user_file(int fd)
{
	int mark = 0;
	socklen_t len = sizeof mark;
	return vsock_sys(SYS_getsockopt, fd, SOL_SOCKET, SO_PEEK_OFF, &mark, &len, 0) == 0 && mark == FILE_MARK;
}

bool vsock_rights_adopted;

struct vsock_slot *vsock_fd_adopt(int fd)
{
	if (fd < 0 || !vsock_fd_is_user_file(fd))
		return NULL;
	/* A process that never made a socket attaches now, to the stack the
	 * socket lives on. */
	if (!vsock_shm && vsock_provider_ready() < 0)
		return NULL;
	if (fd >= vsock_fdmap_size || !vsock_shm)
		return NULL;
	struct stat st;
	if (vsock_sys(SYS_fstat, fd, &st, 0, 0, 0, 0) < 0)
		return NULL;
	for (int i = 0; i < VSOCK_MAX_SLOTS; i++) {
		struct vsock_slot *s = &vsock_shm->slots[i];
		if (atomic_load_explicit(&s->used, memory_order_acquire) && s->wd && s->ino == st.st_ino) {
			vsock_fd_map(fd, s);
			vsock_log(2, "fd %d is user socket %d (received)", fd, i);
			return s;
		}
	}
	vsock_log(0, "fd %d is a usnet socket of a stack this process does not share; "
		  "it cannot be used here", fd);
	return NULL;
}

void vsock_fd_map(int fd, struct vsock_slot *s)
{
	int32_t old = atomic_exchange(&vsock_fdmap[fd], (int32_t)vsock_slot_index(s) + 1);
	if (old == 0)
		atomic_fetch_add(&vsock_user_fds, 1);
}

void vsock_fd_unmap(int fd)
{
	int32_t old = atomic_exchange(&vsock_fdmap[fd], 0);
	if (old != 0)
		atomic_fetch_sub(&vsock_user_fds, 1);
}

void vsock_adopt_inherited(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return;
	struct dirent *e;
	int dfd = dirfd(d);
	int found[256], n = 0;
	while ((e = readdir(d)) && n < (int)(sizeof found / sizeof found[0])) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] < '0' || e->d_name[0] > '9' || fd == dfd || e->d_type != DT_LNK)
			continue;
		char path[64], target[32];
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		ssize_t len = readlink(path, target, sizeof target - 1);
		if (len <= 0)
			continue;
		target[len] = 0;
		if (!strncmp(target, "socket:", 7) && vsock_fd_is_user_file(fd))
			found[n++] = fd;
	}
	closedir(d);
	if (n == 0)
		return;
	/* The sockets of the stack this image attaches to, at the same fd
	 * numbers: attach now, not at the first socket call. */
	if (vsock_provider_ready() == 0 && vsock_attachment.attached) {
		for (int i = 0; i < n; i++)
			if (!vsock_fd_adopt(found[i]))
				vsock_sys(SYS_close, found[i], 0, 0, 0, 0, 0);
		vsock_slots_collect();
		return;
	}
	for (int i = 0; i < n; i++) {
		vsock_log(0, "fd %d was a usnet socket of the program before execve, but this image has no "
			  "owner of the interface to attach through; closing it", found[i]);
		vsock_sys(SYS_close, found[i], 0, 0, 0, 0, 0);
	}
}
