/*
 * usnet hook — x86-64 system-call names, generated at build time from
 * <asm/unistd_64.h> (build/hook/syscall_names.c).
 */
#ifndef USNET_SYSCALL_NAMES_H
#define USNET_SYSCALL_NAMES_H

#define USNET_SYSCALL_MAX 512

/* usnet_syscall_names[nr] is the name of system call nr, or NULL where no
 * call has that number (nr < USNET_SYSCALL_MAX). */
extern const char *const usnet_syscall_names[USNET_SYSCALL_MAX];

#endif
