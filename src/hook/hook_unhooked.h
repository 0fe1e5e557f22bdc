/*
 * usnet hook — code the rewriter cannot reach (hook_unhooked.c).
 */
#ifndef USNET_HOOK_UNHOOKED_H
#define USNET_HOOK_UNHOOKED_H

#include <stdint.h>

#include "hook_internal.h"

/* Code at addr (0: all of it) the rewriter cannot reach: one line, which
 * says the calls are not hooked when no SUD catches them (--hook rewrite);
 * then, under USNET_STRICT=1, the process ends. */
HOOK_HIDDEN void hook_report_unhooked(const char *what, uintptr_t addr);

#endif
