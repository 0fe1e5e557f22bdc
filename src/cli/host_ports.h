/*
 * The ephemeral port range of a stack in host-address mode, reserved from
 * the kernel (net.ipv4.ip_local_reserved_ports of the network namespace) so
 * that neither the kernel nor the stack picks a port the other uses, and
 * given back when the interface's owner exits.
 */
#ifndef USNET_CLI_HOST_PORTS_H
#define USNET_CLI_HOST_PORTS_H

#include <stddef.h>
#include <stdint.h>

#define HOST_PORTS_DEFAULT "61440-65535"
#define HOST_PORTS_SAVED_MAX 4096

/* Parse "LO-HI" (1024 <= LO <= HI <= 65535): 0, or -1. */
int host_ports_parse(const char *range, uint16_t *lo, uint16_t *hi);

/* Add range to the kernel's reserved ports, the setting before it into
 * saved (for host_ports_restore).  0, or -errno with a line in err. */
int host_ports_reserve(const char *range, char *saved, size_t savedlen, char *err, size_t errlen);

/* Take range out of the kernel's reserved ports again: the setting as it
 * is now less range, when range is there as it was written (another stack
 * may have added its own range meanwhile, or taken its own out); else the
 * setting host_ports_reserve saved. */
void host_ports_restore(const char *range, const char *saved);

#endif
