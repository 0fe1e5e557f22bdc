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

#endif
