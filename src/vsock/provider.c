/*
 * usnet switch — choosing, loading and initialising the provider.
 *
 * USNET_PROVIDER is "usnet" (the built-in stack, default), "kernel"
 * (pass-through sockets behind the switch, for testing the switch itself) or
 * the path of a provider .so exporting USNET_PROVIDER_SYMBOL.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>

#include "vsock.h"
#include "builtin.h"
#include "attach_proto.h"


const struct usnet_provider *vsock_prov;
void *vsock_prov_ctx;

static atomic_int prov_state;      /* 0 not tried, 1 busy, 2 ready, 3 failed */
static int prov_error;

static void host_notify(void *host, uint64_t cookie, uint32_t events)
{
	(void)host;
	(void)events;
	if (cookie < VSOCK_MAX_SLOTS) {
		struct vsock_slot *s = &vsock_shm->slots[cookie];
		atomic_fetch_add(&s->gen, 1);
		vsock_wake_slot(s);
	} else {
		vsock_bell_ring();
	}
}

static void host_log(void *host, int level, const char *msg)
{
	(void)host;
	vsock_log(level, "%s: %s", vsock_prov ? vsock_prov->name : "provider", msg);
}

static const char *host_config(void *host, const char *key)
{
	(void)host;
	return vsock_config(key);
}

static const struct usnet_provider_host host = {
	.abi_version = USNET_PROVIDER_ABI_VERSION,
	.size = sizeof(struct usnet_provider_host),
	.notify = host_notify,
	.log = host_log,
	.config = host_config,
	.syscall = usnet_hook_syscall,
};

static int load(char *err, size_t errlen)
{
	const char *name = vsock_config("provider");
	const struct usnet_provider *p = NULL;
	if (!name || !strcmp(name, "usnet")) {
		if (!usnet_provider_stack) {
			snprintf(err, errlen, "this build has no usnet stack provider; use --provider kernel or a .so");
			return -ENOSYS;
		}
		p = usnet_provider_stack();
	} else if (!strcmp(name, "kernel")) {
		p = usnet_provider_kernel();
	} else {
		void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
		if (!h) {
			snprintf(err, errlen, "cannot load provider %s: %s", name, dlerror());
			return -ENOENT;
		}
		usnet_provider_entry entry = (usnet_provider_entry)dlsym(h, USNET_PROVIDER_SYMBOL);
		if (!entry) {
			snprintf(err, errlen, "%s does not export %s", name, USNET_PROVIDER_SYMBOL);
			return -ENOENT;
		}
		p = entry();
	}
	if (!p || p->abi_version != USNET_PROVIDER_ABI_VERSION || p->size < USNET_PROVIDER_V1_SIZE) {
		snprintf(err, errlen, "provider %s speaks ABI %u (size %u), the switch ABI %d",
			 name, p ? p->abi_version : 0, p ? p->size : 0, USNET_PROVIDER_ABI_VERSION);
		return -EPROTO;
	}
	vsock_prov = p;
	vsock_prov_handles_shared = usnet_provider_stack && p == usnet_provider_stack();
	int r = p->init(&host, &vsock_prov_ctx, err, errlen);
	if (r < 0)
		return r;
	const char *batch = vsock_config("tx_batch");
	if (usnet_provider_stack && p == usnet_provider_stack() && usnet_stack_prov_tx_batch &&
	    usnet_stack_prov_flush && !(batch && !strcmp(batch, "0"))) {
		usnet_stack_prov_tx_batch(1);
		vsock_tx_batching = true;
	}
	return 0;
}

bool vsock_provider_up(void)
{
	return atomic_load_explicit(&prov_state, memory_order_acquire) == 2;
}

int vsock_provider_ready(void)
{
	int st = atomic_load(&prov_state);
	if (st == 2)
		return 0;
	if (st == 3)
		return prov_error;
	int zero = 0;
	if (atomic_compare_exchange_strong(&prov_state, &zero, 1)) {
		char err[256] = "";
		/* The built-in stack is shared by every process on the
		 * interface, through its owner; another provider is the
		 * process's own. */
		const char *name = vsock_config("provider");
		int r = 0;
		if (!name || !strcmp(name, "usnet")) {
			r = vsock_attach(err, sizeof err);
			if (r > 0 && usnet_stack_prov_attach)
				usnet_stack_prov_attach(vsock_attachment.fds[ATTACH_FD_PROVIDER], vsock_attachment.init,
							&vsock_attachment.share);
			r = r > 0 ? 0 : r;
		}
		if (r == 0)
			r = vsock_fdtable_init();
		if (r == 0)
			r = vsock_bell_init();
		if (r == 0)
			r = load(err, sizeof err);
		if (vsock_attachment.attached)
			vsock_attach_done(r == 0);
		if (r < 0) {
			vsock_log(0, "%s", err[0] ? err : strerror(-r));
			prov_error = r == -ENOSYS || r == -ENOENT || r == -EPROTO ? -EAFNOSUPPORT : r;
			atomic_store(&prov_state, 3);
			return prov_error;
		}
		vsock_log(1, "provider %s ready", vsock_prov->name);
		atomic_store(&prov_state, 2);
		vsock_progress_start();
		return 0;
	}
	while ((st = atomic_load(&prov_state)) == 1)
		vsock_sys(SYS_sched_yield, 0, 0, 0, 0, 0, 0);
	return st == 2 ? 0 : prov_error;
}

int vsock_slot_kernel_fd(struct vsock_slot *s)
{
	return vsock_prov->kernel_fd ? vsock_prov->kernel_fd(vsock_prov_ctx, s->ps) : -1;
}

uint32_t vsock_slot_events(struct vsock_slot *s)
{
	return vsock_prov->poll(vsock_prov_ctx, s->ps);
}

_Atomic uint64_t vsock_app_progress_ns;

void vsock_provider_progress(void)
{
	if (vsock_prov && vsock_prov->progress) {
		uint64_t now = vsock_now_ns();
		atomic_store_explicit(&vsock_app_progress_ns, now, memory_order_relaxed);
		atomic_store_explicit(&vsock_shm->netif_poller_ns, now, memory_order_relaxed);
		vsock_prov->progress(vsock_prov_ctx, now);
	}
}
