/*
 * usnet — the providers built into libusnet.so (src/providers/), chosen by
 * name with USNET_PROVIDER / `usnet run --provider`.
 */
#ifndef USNET_PROVIDERS_BUILTIN_H
#define USNET_PROVIDERS_BUILTIN_H

#include "usnet/provider.h"

/* "kernel": real kernel sockets behind the switch (kernel.c). */
const struct usnet_provider *usnet_provider_kernel(void);

/* "usnet": the stack on a netif (stack.c); weak, because a build without the
 * stack core or the backends has no such provider. */
const struct usnet_provider *usnet_provider_stack(void) __attribute__((weak));

/* Transmit batching in the "usnet" provider, for the switch built with it
 * (weak, as the provider).  Once turned on, sendmsg and recvmsg leave the
 * frames they queue on the netif (data, ACKs, window updates) for the next
 * flush: any other call into the provider, usnet_stack_prov_flush(), or
 * progress().  The switch then flushes before the thread sleeps or makes
 * any system call other than I/O on a user socket, so that no reply is held
 * while its sender waits, and a server's replies to one batch of requests
 * leave with one netif kick. */
void usnet_stack_prov_tx_batch(int on) __attribute__((weak));
/* Make every queued frame leave now.  With `wait` 0 it gives up (returns
 * -EBUSY) when another thread is inside the stack. */
int usnet_stack_prov_flush(int wait) __attribute__((weak));

/* A process attached to its interface's owner (src/vsock/attach.c): the
 * "usnet" provider keeps its state in the memfd state_fd, shared by every
 * attached process (made by this one when `init`, else joined), on the
 * netif `share` describes.  Called before the provider's init. */
struct usnet_netif_share;
void usnet_stack_prov_attach(int state_fd, int init, const struct usnet_netif_share *share)
	__attribute__((weak));

#endif
