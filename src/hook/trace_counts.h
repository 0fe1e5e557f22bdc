/*
 * usnet trace — the counters `usnet trace -c` shares with every traced
 * process: a file mapping (MAP_SHARED) created by the front end, named in
 * $USNET_TRACE_COUNTS, inherited across fork and re-opened after execve, so
 * threads and children all add to the same table.
 */
#ifndef USNET_TRACE_COUNTS_H
#define USNET_TRACE_COUNTS_H

#include <stdint.h>

#include "syscall_names.h"

#define USNET_TRACE_MAGIC 0x757374726163ULL   /* "ustrac" */

struct usnet_trace_counts {
	uint64_t magic;
	uint64_t calls[USNET_SYSCALL_MAX];
	uint64_t errors[USNET_SYSCALL_MAX];
};

#endif
