/*
 * usnet switch — slots (shared open-file-descriptions of user sockets) and
 * the per-process fd table.
 *
 * Every user socket owns a real fd number: a dup of one placeholder memfd
 * named "usnet-socket".  The kernel thus allocates numbers (lowest free,
 * EMFILE at the limit), honours FD_CLOEXEC on exec, and dup2() onto a user
 * socket's number simply replaces the placeholder.
 */
#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vsock.h"

#define PLACEHOLDER_NAME "usnet-socket"

struct vsock_shared *vsock_shm;
_Atomic int32_t *vsock_fdmap;
int vsock_fdmap_size;
_Atomic int vsock_user_fds;
static int placeholder_fd = -1;

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
	void *sh = (void *)vsock_sys(SYS_mmap, 0, sizeof(struct vsock_shared), PROT_READ | PROT_WRITE,
				    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if ((long)sh < 0 && (long)sh > -4096)
		return (int)(long)sh;
	long pfd = vsock_sys(SYS_memfd_create, PLACEHOLDER_NAME, MFD_CLOEXEC, 0, 0, 0, 0);
	if (pfd < 0)
		return (int)pfd;
	/* Keep the switch's own fd out of the low numbers programs expect. */
	long hi = vsock_sys(SYS_fcntl, pfd, F_DUPFD_CLOEXEC, 512, 0, 0, 0);
	if (hi >= 0) {
		vsock_sys(SYS_close, pfd, 0, 0, 0, 0, 0);
		pfd = hi;
	}
	placeholder_fd = (int)pfd;
	vsock_shm = sh;
	vsock_fdmap_size = (int)max;
	atomic_store(&vsock_fdmap, (_Atomic int32_t *)m);
	return 0;
}

extern long vsock_pid;

static void owner_lock(struct vsock_slot *s)
{
	int zero = 0;
	while (!atomic_compare_exchange_weak(&s->owner_lock, &zero, 1)) {
		zero = 0;
		vsock_sys(SYS_sched_yield, 0, 0, 0, 0, 0, 0);
	}
}

static void owner_unlock(struct vsock_slot *s)
{
	atomic_store(&s->owner_lock, 0);
}

/* Add delta to this process's count (the caller holds the owner lock). */
static void owner_add(struct vsock_slot *s, int32_t pid, int delta)
{
	struct vsock_owner *free_one = NULL;
	for (int i = 0; i < VSOCK_OWNERS; i++) {
		if (s->owners[i].pid == pid) {
			s->owners[i].n += (uint32_t)delta;
			if (s->owners[i].n == 0)
				s->owners[i].pid = 0;
			return;
		}
		if (!s->owners[i].pid && !free_one)
			free_one = &s->owners[i];
	}
	if (delta > 0 && free_one)
		*free_one = (struct vsock_owner){ pid, (uint32_t)delta };
}

struct vsock_slot *vsock_slot_alloc(void)
{
	uint32_t start = atomic_load(&vsock_shm->alloc_hint);
	for (uint32_t i = 0; i < VSOCK_MAX_SLOTS; i++) {
		uint32_t k = (start + i) % VSOCK_MAX_SLOTS;
		struct vsock_slot *s = &vsock_shm->slots[k];
		uint32_t zero = 0;
		if (atomic_load_explicit(&s->refs, memory_order_relaxed) == 0 &&
		    atomic_compare_exchange_strong(&s->refs, &zero, 1)) {
			atomic_store(&vsock_shm->alloc_hint, k + 1);
			s->domain = s->type = s->protocol = 0;
			s->ps = 0;
			s->rcvtimeo_ns = s->sndtimeo_ns = 0;
			s->nreplay = 0;
			atomic_store(&s->status, 0);
			atomic_store(&s->wake_mask, 0);
			atomic_fetch_add(&s->gen, 1);
			owner_lock(s);
			memset(s->owners, 0, sizeof s->owners);
			s->owners[0] = (struct vsock_owner){ (int32_t)vsock_pid, 1 };
			owner_unlock(s);
			return s;
		}
	}
	return NULL;
}

void vsock_slot_ref(struct vsock_slot *s)
{
	owner_lock(s);
	owner_add(s, (int32_t)vsock_pid, 1);
	atomic_fetch_add(&s->refs, 1);
	owner_unlock(s);
}

void vsock_slot_unref(struct vsock_slot *s)
{
	usnet_psock_t ps = s->ps;
	owner_lock(s);
	owner_add(s, (int32_t)vsock_pid, -1);
	uint32_t old = atomic_fetch_sub(&s->refs, 1);
	owner_unlock(s);
	if (old == 1)
		vsock_prov->close(vsock_prov_ctx, ps);
}

void vsock_fdtable_after_fork(void)
{
	if (!vsock_fdmap)
		return;
	for (int fd = 0; fd < vsock_fdmap_size; fd++) {
		int32_t e = atomic_load_explicit(&vsock_fdmap[fd], memory_order_relaxed);
		if (e > 0)
			vsock_slot_ref(&vsock_shm->slots[e - 1]);
	}
}

/* Gone: no such process, or a zombie (exited, not yet reaped). */
static bool process_gone(int32_t pid)
{
	if (vsock_sys(SYS_kill, pid, 0, 0, 0, 0, 0) == -ESRCH)
		return true;
	char path[48], buf[256];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	long fd = vsock_sys(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0, 0, 0);
	if (fd < 0)
		return fd == -ENOENT;
	long n = vsock_sys(SYS_read, fd, buf, sizeof buf - 1, 0, 0, 0);
	vsock_sys(SYS_close, fd, 0, 0, 0, 0, 0);
	if (n <= 0)
		return false;
	buf[n] = 0;
	const char *p = strrchr(buf, ')');
	return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

void vsock_slots_reap(void)
{
	for (int i = 0; i < VSOCK_MAX_SLOTS; i++) {
		struct vsock_slot *s = &vsock_shm->slots[i];
		if (atomic_load_explicit(&s->refs, memory_order_relaxed) == 0)
			continue;
		for (int k = 0; k < VSOCK_OWNERS; k++) {
			int32_t pid = s->owners[k].pid;
			if (!pid || pid == (int32_t)vsock_pid || !process_gone(pid))
				continue;
			usnet_psock_t ps = s->ps;
			owner_lock(s);
			uint32_t n = s->owners[k].pid == pid ? s->owners[k].n : 0;
			s->owners[k] = (struct vsock_owner){ 0, 0 };
			uint32_t old = n ? atomic_fetch_sub(&s->refs, n) : 0;
			owner_unlock(s);
			if (n && old == n) {
				vsock_log(1, "socket of process %d (gone without closing it) closed", pid);
				vsock_prov->close(vsock_prov_ctx, ps);
			}
		}
	}
}

int vsock_fd_reserve(int min, bool cloexec)
{
	long fd = vsock_sys(SYS_fcntl, placeholder_fd, cloexec ? F_DUPFD_CLOEXEC : F_DUPFD, min, 0, 0, 0);
	if (fd >= 0 && fd >= vsock_fdmap_size) {
		vsock_sys(SYS_close, fd, 0, 0, 0, 0, 0);
		return -EMFILE;
	}
	return (int)fd;
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

void vsock_close_inherited(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return;
	struct dirent *e;
	int dfd = dirfd(d);
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] < '0' || e->d_name[0] > '9' || fd == dfd)
			continue;
		char path[64], target[128];
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		ssize_t n = readlink(path, target, sizeof target - 1);
		if (n <= 0)
			continue;
		target[n] = 0;
		if (strstr(target, "memfd:" PLACEHOLDER_NAME)) {
			vsock_log(0, "fd %d was a usnet socket of the program before execve; "
				  "user-space sockets do not survive execve, closing it", fd);
			vsock_sys(SYS_close, fd, 0, 0, 0, 0, 0);
		}
	}
	closedir(d);
}
