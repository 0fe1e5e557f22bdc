/*
 * usnet hook — the "raw" code: everything here runs with the program's
 * registers and must not be rewritten.  The rewriter skips this library's
 * mappings, and Syscall User Dispatch is told that [usnet_hook_raw_start,
 * usnet_hook_raw_end) is its allowed range, so the syscall instructions here
 * are the only ones the hook itself issues.
 *
 * Frame layout: struct hook_frame in hook_internal.h.
 */
#define F_RAX   0
#define F_RDI   8
#define F_RSI   16
#define F_RDX   24
#define F_R10   32
#define F_R8    40
#define F_R9    48
#define F_SITE  56
#define F_RSP   64
#define F_RET   72
#define F_ORDI  208
#define F_ORSI  216
#define FRAME   224
#define RED_ZONE 128
#define SYS_rt_sigreturn 15

#define ACT_CLONE_STACK 1
#define ACT_VFORK       2
#define ACT_FORK_STACK  3
#define ACT_ISSUE       5

	.section .text.usnet_hook_raw,"ax",@progbits
	.globl usnet_hook_raw_start
	.hidden usnet_hook_raw_start
usnet_hook_raw_start:

/* long usnet_hook_syscall(long nr, long a0, ..., long a5) */
	.globl usnet_hook_syscall
	.type usnet_hook_syscall,@function
	.globl hook_raw_syscall
	.hidden hook_raw_syscall
	.p2align 4
usnet_hook_syscall:
hook_raw_syscall:
	mov %rdi, %rax
	mov %rsi, %rdi
	mov %rdx, %rsi
	mov %rcx, %rdx
	mov %r8, %r10
	mov %r9, %r8
	mov 8(%rsp), %r9
	syscall
	ret
	.size usnet_hook_syscall, .-usnet_hook_syscall

/* Save the program's call into a frame below the red zone, aligned for C.
 * On entry: rax = number, args in rdi rsi rdx r10 r8 r9, (%rsp) = the
 * address after the rewritten site.  rcx and r11 are free: the kernel
 * clobbers them too. */
.macro SAVE_FRAME
	mov %rsp, %r11
	lea -(RED_ZONE + FRAME)(%rsp), %rsp
	and $-16, %rsp
	mov %rax, F_RAX(%rsp)
	mov %rdi, F_RDI(%rsp)
	mov %rdi, F_ORDI(%rsp)
	mov %rsi, F_RSI(%rsp)
	mov %rsi, F_ORSI(%rsp)
	mov %rdx, F_RDX(%rsp)
	mov %r10, F_R10(%rsp)
	mov %r8, F_R8(%rsp)
	mov %r9, F_R9(%rsp)
	mov (%r11), %rcx
	mov %rcx, F_SITE(%rsp)
	mov %r11, F_RSP(%rsp)
.endm

.macro LOAD_ARGS
	mov F_RDI(%rsp), %rdi
	mov F_RSI(%rsp), %rsi
	mov F_RDX(%rsp), %rdx
	mov F_R10(%rsp), %r10
	mov F_R8(%rsp), %r8
	mov F_R9(%rsp), %r9
.endm

/* Call a C function (no arguments) keeping every register the kernel would
 * keep, from wherever rsp is (red zone skipped, stack re-aligned). */
.macro CALL_KEEPING fn
	lea -RED_ZONE(%rsp), %rsp
	push %rbp
	mov %rsp, %rbp
	and $-16, %rsp
	push %rax
	push %rdi
	push %rsi
	push %rdx
	push %r10
	push %r8
	push %r9
	push %r9
	call \fn
	pop %r9
	pop %r9
	pop %r8
	pop %r10
	pop %rdx
	pop %rsi
	pop %rdi
	pop %rax
	mov %rbp, %rsp
	pop %rbp
	lea RED_ZONE(%rsp), %rsp
.endm

/* The trampoline's target: reached by `call *%rax` from a rewritten site
 * through the sled at address 0. */
	.globl usnet_hook_entry
	.hidden usnet_hook_entry
	.type usnet_hook_entry,@function
	.p2align 4
usnet_hook_entry:
	cmp $SYS_rt_sigreturn, %rax
	je .Lsigreturn
	SAVE_FRAME
	mov %rsp, %rdi
	call usnet_hook_dispatch
	cmp $ACT_ISSUE, %eax
	jne .Lafter_dispatch
	/* the pass-through fast path: issue the call here, then one return
	 * straight to the site (each return after a system call may be
	 * mispredicted when the kernel clears the return stack) */
	LOAD_ARGS
	mov F_RAX(%rsp), %rax
	mov F_RSP(%rsp), %rsp
	syscall
	ret
.Lafter_dispatch:
	test %eax, %eax
	jnz .Lspecial
	LOAD_ARGS
	mov F_RAX(%rsp), %rax
	mov F_RSP(%rsp), %rsp
	ret

/* rt_sigreturn must run on the signal frame exactly as the kernel left it:
 * drop the return address the call pushed and issue it here. */
.Lsigreturn:
	lea 8(%rsp), %rsp
	syscall
	ud2
	.size usnet_hook_entry, .-usnet_hook_entry

/* SUD path for calls that change the stack or the thread: the SIGSYS handler
 * has approved the call, pushed the site and sent the program here with its
 * own registers (so clone/vfork are issued from the program's context). */
	.globl usnet_hook_reissue
	.hidden usnet_hook_reissue
	.type usnet_hook_reissue,@function
	.p2align 4
usnet_hook_reissue:
	SAVE_FRAME
	mov %rsp, %rdi
	call usnet_hook_prepare_special
	jmp .Lafter_dispatch
	.size usnet_hook_reissue, .-usnet_hook_reissue

.Lspecial:
	cmp $ACT_VFORK, %eax
	je .Lvfork
	mov %eax, %ecx
	LOAD_ARGS
	mov F_RAX(%rsp), %rax
	/* clone/clone3 whose child starts on a new stack: the site address
	 * is already on top of that stack.  The parent keeps this frame. */
	cmp $ACT_FORK_STACK, %ecx
	je .Lfork_stack
	syscall
	test %rax, %rax
	jz .Lthread_child
.Lclone_parent:
	/* the parent: report the result, give back the registers the call
	 * had to change (the child's stack, clone3's argument block) */
	mov %rax, F_RET(%rsp)
	mov %rsp, %rdi
	call usnet_hook_after_special
	LOAD_ARGS
	mov F_ORDI(%rsp), %rdi
	mov F_ORSI(%rsp), %rsi
	mov F_RET(%rsp), %rax
	mov F_RSP(%rsp), %rsp
	ret
.Lthread_child:
	CALL_KEEPING usnet_hook_thread_start
	ret
.Lfork_stack:
	syscall
	test %rax, %rax
	jnz .Lclone_parent
.Lfork_child:
	CALL_KEEPING usnet_hook_child_after_fork
	ret

/* vfork-like: the child runs on this very stack until it execs or exits, so
 * nothing the parent needs afterwards may stay in memory below the stack
 * pointer.  The return address is kept in a thread-local slot instead. */
.Lvfork:
	LOAD_ARGS
	mov F_RAX(%rsp), %rax
	mov F_RSP(%rsp), %rsp
	pop %rcx
	mov usnet_hook_vfork_ret@gottpoff(%rip), %r11
	mov %rcx, %fs:(%r11)
	syscall
	test %rax, %rax
	jnz 1f
	CALL_KEEPING usnet_hook_child_after_fork
1:	mov usnet_hook_vfork_ret@gottpoff(%rip), %r11
	jmp *%fs:(%r11)

/* SUD: a dispatched rt_sigreturn is re-issued here, on the program's stack. */
	.globl usnet_hook_sigreturn_stub
	.hidden usnet_hook_sigreturn_stub
	.type usnet_hook_sigreturn_stub,@function
	.p2align 4
usnet_hook_sigreturn_stub:
	mov $SYS_rt_sigreturn, %eax
	syscall
	ud2
	.size usnet_hook_sigreturn_stub, .-usnet_hook_sigreturn_stub

/* sa_restorer of the SIGSYS handler (inside the allowed range). */
	.globl usnet_hook_sud_restorer
	.hidden usnet_hook_sud_restorer
	.type usnet_hook_sud_restorer,@function
	.p2align 4
usnet_hook_sud_restorer:
	mov $SYS_rt_sigreturn, %eax
	syscall
	ud2
	.size usnet_hook_sud_restorer, .-usnet_hook_sud_restorer

/* struct hook_fast: read by the dispatcher's fast path (hook_internal.h). */
	.globl usnet_hook_fast
	.hidden usnet_hook_fast
	.type usnet_hook_fast,@object
	.p2align 6
usnet_hook_fast:
	.quad 0, 0, 0
	.size usnet_hook_fast, .-usnet_hook_fast

	.globl usnet_hook_raw_end
	.hidden usnet_hook_raw_end
usnet_hook_raw_end:

	.text
/* long usnet_hook_call_saved(long (*fn)(void *), void *arg): the full
 * extended state (XSAVE with the XCR0 mask) is saved around fn(arg). */
	.globl usnet_hook_call_saved
	.type usnet_hook_call_saved,@function
	.p2align 4
usnet_hook_call_saved:
	push %rbp
	mov %rsp, %rbp
	push %rbx
	push %r12
	mov %rdi, %rbx
	mov %rsi, %r12
	mov usnet_hook_xsave_size(%rip), %rcx
	sub %rcx, %rsp
	and $-64, %rsp
	/* XRSTOR wants the header after XSTATE_BV zeroed; XSAVE leaves it. */
	xor %eax, %eax
	mov %rax, 512(%rsp)
	mov %rax, 520(%rsp)
	mov %rax, 528(%rsp)
	mov %rax, 536(%rsp)
	mov %rax, 544(%rsp)
	mov %rax, 552(%rsp)
	mov %rax, 560(%rsp)
	mov %rax, 568(%rsp)
	mov usnet_hook_xcr0(%rip), %eax
	mov usnet_hook_xcr0+4(%rip), %edx
	xsave64 (%rsp)
	mov %r12, %rdi
	call *%rbx
	mov %rax, %r12
	mov usnet_hook_xcr0(%rip), %eax
	mov usnet_hook_xcr0+4(%rip), %edx
	xrstor64 (%rsp)
	mov %r12, %rax
	lea -16(%rbp), %rsp
	pop %r12
	pop %rbx
	pop %rbp
	ret
	.size usnet_hook_call_saved, .-usnet_hook_call_saved

	.section .note.GNU-stack,"",@progbits
