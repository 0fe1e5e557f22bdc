/*
 * usnet switch — the hook handler (handler.c), built with -mgeneral-regs-only.
 */
#ifndef USNET_VSOCK_HANDLER_H
#define USNET_VSOCK_HANDLER_H

#include <stdbool.h>
#include "usnet/hook.h"

/* The function given to usnet_hook_install(). */
long vsock_handler(struct usnet_syscall *sc);

/* Around a sleep inside the switch: let calls made by signal handlers that
 * run meanwhile be dispatched (the switch holds no lock while sleeping). */
void vsock_handler_leave_switch(int *saved);
void vsock_handler_reenter_switch(int saved);

/* Whether a blocking socket call interrupted by a signal is restarted (no
 * handler of the program lacks SA_RESTART). */
bool vsock_signals_restart(void);

#endif
