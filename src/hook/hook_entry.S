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
#define F_ORDX  224
#define F_OR10  232
#define F_OR8   240
#define F_OR9   248
#define F_PREV  256
#define F_TSOFF 264
#define F_FLAGS 272
#define F_RED   280
#define FRAME   288
/* struct hook_fast (hook_internal.h): the hook-stack slot's TLS offset */
#define FAST_TSTACK_OFF 24
/* the thread's hook stack (struct hook_thread_stack, hook_internal.h) */
#define TS_TOP   0
#define TS_SAVED 8
#define HOOK_STACK_SIZE (256 * 1024)
#define HOOK_STACK_MAP  (HOOK_STACK_SIZE + 4096)   /* with the guard page */
#define RED_ZONE 128
#define SYS_rt_sigreturn 15

#define ACT_CLONE_STACK 1
#define ACT_VFORK       2
#define ACT_FORK_STACK  3
#define ACT_ISSUE       5
#define ACT_EXIT        6

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

/* The page-0 fast path's system call (hook_page0.c): the program's call,
 * straight back to the site. */
	.globl usnet_hook_fast_issue
	.hidden usnet_hook_fast_issue
	.type usnet_hook_fast_issue,@function
usnet_hook_fast_issue:
	syscall
	ret
	.size usnet_hook_fast_issue, .-usnet_hook_fast_issue

/* Save the program's call into a frame, aligned for C, and set rsp to it.
 * On entry: rax = number, args in rdi rsi rdx r10 r8 r9, (%rsp) = the
 * address after the rewritten site.  rcx and r11 are free: the kernel
 * clobbers them too.
 *
 * The frame goes at the top of this thread's hook stack, taken by swapping
 * its slot with 1 (in use); the handler then never runs on the program's
 * stack, which may be a goroutine's few KiB.  When the slot already says 1
 * (a signal handler interrupted the hook on that stack, or a thread sharing
 * this TLS has it), the frame goes below the red zone of the current stack;
 * when it says 0 (the thread's first call), the stack is allocated first.
 * F_PREV keeps what the slot held, put back by LEAVE_FRAME, and F_TSOFF the
 * slot's TLS offset.  from_fast: the offset is read from usnet_hook_fast
 * (on the page the dispatcher reads anyway: after a system call with
 * page-table isolation every page touched is a TLB miss) rather than the
 * GOT; only the rewrite path, which runs after it was published, may. */
.macro SAVE_FRAME from_fast
.if \from_fast
	mov usnet_hook_fast+FAST_TSTACK_OFF(%rip), %rcx
.else
	mov usnet_hook_tstack@gottpoff(%rip), %rcx
.endif
	mov $1, %r11d
	xchg %r11, %fs:TS_TOP(%rcx)
	cmp $1, %r11
	jbe 1f
	/* r11: the top of the free hook stack */
2:	mov %rsp, F_RSP-FRAME(%r11)
	mov %r11, F_PREV-FRAME(%r11)
	mov %rcx, F_TSOFF-FRAME(%r11)
	lea -FRAME(%r11), %rsp
	jmp 4f
1:	jb 3f
	/* in use: below the red zone of the current stack */
	mov %rsp, %r11
	lea -(RED_ZONE + FRAME)(%rsp), %rsp
	and $-16, %rsp
	mov %r11, F_RSP(%rsp)
	movq $1, F_PREV(%rsp)
	mov %rcx, F_TSOFF(%rsp)
	jmp 4f
	/* none yet: allocate one (the slot says 1 meanwhile) */
3:	lea -RED_ZONE(%rsp), %rsp
	call hook_stack_alloc
	lea RED_ZONE(%rsp), %rsp
	mov usnet_hook_tstack@gottpoff(%rip), %rcx
	test %r11, %r11
	jnz 2b
	/* no memory for it: the current stack, and try again next time */
	movq $0, %fs:TS_TOP(%rcx)
	mov %rsp, %r11
	lea -(RED_ZONE + FRAME)(%rsp), %rsp
	and $-16, %rsp
	mov %r11, F_RSP(%rsp)
	movq $0, F_PREV(%rsp)
	mov %rcx, F_TSOFF(%rsp)
4:	mov %rax, F_RAX(%rsp)
	mov %rdi, F_RDI(%rsp)
	mov %rdi, F_ORDI(%rsp)
	mov %rsi, F_RSI(%rsp)
	mov %rsi, F_ORSI(%rsp)
	mov %rdx, F_RDX(%rsp)
	mov %rdx, F_ORDX(%rsp)
	mov %r10, F_R10(%rsp)
	mov %r10, F_OR10(%rsp)
	mov %r8, F_R8(%rsp)
	mov %r8, F_OR8(%rsp)
	mov %r9, F_R9(%rsp)
	mov %r9, F_OR9(%rsp)
	mov F_RSP(%rsp), %rcx
	mov (%rcx), %rcx
	mov %rcx, F_SITE(%rsp)
.endm

/* SAVE_FRAME, keeping the program's arithmetic flags in F_FLAGS: nothing
 * before this may change them.  They ride in rax's upper half into the
 * frame; the number is below 2^32 on every path that comes here (8192 from
 * the trampoline, a clone/vfork/exit/sigaltstack from the SIGSYS handler). */
.macro SAVE_FRAME_FLAGS from_fast
	mov %rax, %r11
	lahf                    /* ah: SF ZF AF PF CF */
	seto %al                /* al: OF (the number's bits 16..31 are 0) */
	shl $32, %rax
	or %r11, %rax
	SAVE_FRAME \from_fast
	mov %rax, F_FLAGS(%rsp) /* the flags in its upper half */
	mov %eax, %eax
	mov %rax, F_RAX(%rsp)   /* the number alone (a whole word: the C code
	                         * reads it at once, from the store buffer) */
.endm

/* Back to the program's stack (rsp = where the call pushed the site), giving
 * the hook stack back only then: a signal handler that runs in between must
 * not take it while the frame is still being read.  Uses rcx, r11. */
.macro LEAVE_FRAME
	mov F_TSOFF(%rsp), %r11
	mov F_PREV(%rsp), %rcx
	mov F_RSP(%rsp), %rsp
	mov %rcx, %fs:TS_TOP(%r11)
.endm

/* The program's own argument registers, as it had them. */
.macro LOAD_ORIG
	mov F_ORDI(%rsp), %rdi
	mov F_ORSI(%rsp), %rsi
	mov F_ORDX(%rsp), %rdx
	mov F_OR10(%rsp), %r10
	mov F_OR8(%rsp), %r8
	mov F_OR9(%rsp), %r9
.endm

/* The program's arithmetic flags back from the frame (as the kernel keeps
 * them across a system call); uses rax. */
.macro LOAD_FLAGS
	mov F_FLAGS+4(%rsp), %eax
	add $0x7f, %al          /* OF from al (1 + 0x7f overflows) */
	sahf                    /* SF ZF AF PF CF from ah */
.endm

/* The arguments to issue (the handler may have changed them). */
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

/* rt_sigreturn must run on the signal frame exactly as the kernel left it:
 * drop the return address the call pushed and issue it here (just before
 * the entry: within reach of its short jump). */
	.p2align 4
.Lsigreturn:
	lea 8(%rsp), %rsp
	syscall
	ud2

/* The trampoline's target: reached by `call *%rax` from a rewritten site
 * through the sled at address 0. */
	.globl usnet_hook_entry
	.hidden usnet_hook_entry
	.type usnet_hook_entry,@function
usnet_hook_entry:
	/* nothing may change the flags before they are saved */
	lea -SYS_rt_sigreturn(%rax), %rcx
	jrcxz .Lsigreturn
	SAVE_FRAME_FLAGS 1
	movq $0, F_RED(%rsp)
.Lentry_dispatch:
	mov %rsp, %rdi
	call usnet_hook_dispatch
	cmp $ACT_ISSUE, %eax
	jne .Lafter_dispatch
	/* the pass-through path: issue the call here, then one return
	 * straight to the site (each return after a system call may be
	 * mispredicted when the kernel clears the return stack) */
	LOAD_ARGS
	LOAD_FLAGS
	mov F_RAX(%rsp), %rax
	LEAVE_FRAME
	syscall
	ret
.Lafter_dispatch:
	test %eax, %eax
	jnz .Lspecial
	LOAD_ORIG
	LOAD_FLAGS
	mov F_RAX(%rsp), %rax
	LEAVE_FRAME
	ret

	.size usnet_hook_entry, .-usnet_hook_entry

/* The stub path (hook_stub.c): a site's stub has moved the stack pointer
 * below the red zone and calls the stub entry with rax = number, r11 = the
 * site (the address after the syscall), (%rsp) = its own return address. */
/* rt_sigreturn must run on the signal frame exactly as the kernel left it:
 * the stub's return address and the red zone go first. */
.Lstub_sigreturn:
	lea RED_ZONE+8(%rsp), %rsp
	syscall
	ud2

/* The stub entry: the site goes where the page-0 path has it (the return
 * address's slot, here below the stub's), the frame is built as there, and
 * then the frame's rsp is moved up to the stub's return address, where
 * every way out of the entry returns. */
	.globl usnet_hook_stub_entry
	.hidden usnet_hook_stub_entry
	.type usnet_hook_stub_entry,@function
usnet_hook_stub_entry:
	lea -SYS_rt_sigreturn(%rax), %rcx
	jrcxz .Lstub_sigreturn
	push %r11
	SAVE_FRAME_FLAGS 1
	addq $8, F_RSP(%rsp)
	movq $RED_ZONE, F_RED(%rsp)
	jmp .Lentry_dispatch
	.size usnet_hook_stub_entry, .-usnet_hook_stub_entry

/* SUD path for calls that change the stack or the thread: the SIGSYS handler
 * has approved the call, pushed the site and sent the program here with its
 * own registers (so clone/vfork are issued from the program's context). */
	.globl usnet_hook_reissue
	.hidden usnet_hook_reissue
	.type usnet_hook_reissue,@function
	.p2align 4
usnet_hook_reissue:
	SAVE_FRAME_FLAGS 0
	movq $0, F_RED(%rsp)
	mov %rsp, %rdi
	call usnet_hook_prepare_special
	jmp .Lafter_dispatch
	.size usnet_hook_reissue, .-usnet_hook_reissue

.Lspecial:
	cmp $ACT_VFORK, %eax
	je .Lvfork
	cmp $ACT_EXIT, %eax
	je .Lexit
	/* a child with its own memory copies the slot as "in use": it puts
	 * back this saved value */
	mov usnet_hook_tstack@gottpoff(%rip), %r11
	mov F_PREV(%rsp), %rcx
	mov %rcx, %fs:TS_SAVED(%r11)
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
	LOAD_ORIG
	LOAD_FLAGS
	mov F_RET(%rsp), %rax
	LEAVE_FRAME
	ret
.Lthread_child:
	CALL_KEEPING usnet_hook_thread_start
	ret
.Lfork_stack:
	syscall
	test %rax, %rax
	jnz .Lclone_parent
.Lfork_child:
	mov usnet_hook_tstack@gottpoff(%rip), %r11
	mov %fs:TS_SAVED(%r11), %rcx
	mov %rcx, %fs:TS_TOP(%r11)
	CALL_KEEPING usnet_hook_child_after_fork
	ret

/* vfork-like: the child runs on this very stack until it execs or exits, so
 * nothing the parent needs afterwards may stay in memory below the stack
 * pointer.  The return address is kept in a thread-local slot instead. */
.Lvfork:
	LOAD_ARGS
	mov F_RAX(%rsp), %rax
	/* the hook stack is given back (the child may use it; whatever it
	 * leaves in the slot, the parent puts the saved value back) */
	mov usnet_hook_tstack@gottpoff(%rip), %r11
	mov F_PREV(%rsp), %rcx
	mov %rcx, %fs:TS_SAVED(%r11)
	LEAVE_FRAME
	pop %rcx
	mov usnet_hook_vfork_ret@gottpoff(%rip), %r11
	mov %rcx, %fs:(%r11)
	syscall
	test %rax, %rax
	jnz 1f
	CALL_KEEPING usnet_hook_child_after_fork
	jmp 2f
1:	mov usnet_hook_tstack@gottpoff(%rip), %r11
	mov %fs:TS_SAVED(%r11), %rcx
	mov %rcx, %fs:TS_TOP(%r11)
2:	mov usnet_hook_vfork_ret@gottpoff(%rip), %r11
	jmp *%fs:(%r11)

/* A thread's exit(2): leave the hook stack, free it when this frame had
 * taken it (not when a signal handler on it, or a thread sharing this TLS,
 * exits), then exit.  Nothing touches the program's stack: it may already
 * belong to someone else. */
.Lexit:
	mov F_RDI(%rsp), %rdx
	mov usnet_hook_tstack@gottpoff(%rip), %r11
	mov F_PREV(%rsp), %rcx
	mov F_RSP(%rsp), %rsp
	cmp $1, %rcx
	jbe 1f
	/* a thread sharing this TLS makes itself a new one */
	movq $0, %fs:TS_TOP(%r11)
	lea -HOOK_STACK_MAP(%rcx), %rdi
	mov $HOOK_STACK_MAP, %esi
	mov $11, %eax   /* munmap */
	syscall
	jmp 2f
1:	mov %rcx, %fs:TS_TOP(%r11)
2:	mov %rdx, %rdi
	mov $60, %eax   /* exit */
	syscall
	ud2

/* A hook stack for this thread: returns its top in r11 (0 when there is no
 * memory), every other register but rcx kept.  Called on the program's stack
 * below its red zone, once per thread. */
	.type hook_stack_alloc,@function
	.p2align 4
hook_stack_alloc:
	push %rax
	push %rdi
	push %rsi
	push %rdx
	push %r10
	push %r8
	push %r9
	mov $9, %eax        /* mmap */
	xor %edi, %edi
	mov $HOOK_STACK_MAP, %esi
	mov $3, %edx        /* PROT_READ | PROT_WRITE */
	/* MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK */
	mov $0x24022, %r10d
	mov $-1, %r8
	xor %r9d, %r9d
	syscall
	cmp $-4095, %rax
	jae 1f
	/* the lowest page is the guard: an overflow faults there */
	mov %rax, %rdi
	mov $4096, %esi
	xor %edx, %edx
	mov $10, %eax       /* mprotect */
	syscall
	lea HOOK_STACK_MAP(%rdi), %r11
	jmp 2f
1:	xor %r11d, %r11d
2:	pop %r9
	pop %r8
	pop %r10
	pop %rdx
	pop %rsi
	pop %rdi
	pop %rax
	ret
	.size hook_stack_alloc, .-hook_stack_alloc

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

/* Probes of the program's memory for usnet_hook_user_check (hook_fault.c):
 * long hook_probe_read(const void *p) / hook_probe_write(void *p): 0, or
 * -EFAULT when the access faults (the SIGSEGV handler resumes at
 * hook_probe_fixup).  The write probe adds 0 atomically: the byte keeps its
 * value whatever other threads do. */
	.globl hook_probe_read, hook_probe_write, hook_probe_read_insn, hook_probe_write_insn, hook_probe_fixup
	.hidden hook_probe_read, hook_probe_write, hook_probe_read_insn, hook_probe_write_insn, hook_probe_fixup
	.p2align 4
hook_probe_read:
	xor %eax, %eax
hook_probe_read_insn:
	movb (%rdi), %cl
	ret
hook_probe_write:
	xor %eax, %eax
hook_probe_write_insn:
	lock addb $0, (%rdi)
	ret
hook_probe_fixup:
	mov $-14, %rax	/* -EFAULT */
	ret

/* struct hook_fast: read by the dispatcher's fast path (hook_internal.h). */
	.globl usnet_hook_fast
	.hidden usnet_hook_fast
	.type usnet_hook_fast,@object
	.p2align 6
usnet_hook_fast:
	.quad 0, 0, 0, 0
	.size usnet_hook_fast, .-usnet_hook_fast

	.globl usnet_hook_raw_end
	.hidden usnet_hook_raw_end
usnet_hook_raw_end:

	.text
/* long usnet_hook_call_saved(long (*fn)(void *), void *arg): the program's
 * extended state is saved around fn(arg).  Where XCR0 enables nothing but
 * x87, SSE, AVX and PKRU (usnet_hook_save_ymm), that is ymm0-15 and MXCSR,
 * all that usnet's code and the libc functions it calls change (none uses
 * x87 or writes PKRU): 16 stores and loads, a tenth of the cost of XSAVE
 * and XRSTOR (about 200 ns a pair) on the switch's every entry.  Otherwise
 * the full state, XSAVE with the XCR0 mask. */
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
	cmpb $0, usnet_hook_save_ymm(%rip)
	jne .Lsave_ymm
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
.Lsaved_return:
	mov %r12, %rax
	lea -16(%rbp), %rsp
	pop %r12
	pop %rbx
	pop %rbp
	ret
.Lsave_ymm:
	sub $544, %rsp
	and $-32, %rsp
	vmovdqa %ymm0, 0(%rsp)
	vmovdqa %ymm1, 32(%rsp)
	vmovdqa %ymm2, 64(%rsp)
	vmovdqa %ymm3, 96(%rsp)
	vmovdqa %ymm4, 128(%rsp)
	vmovdqa %ymm5, 160(%rsp)
	vmovdqa %ymm6, 192(%rsp)
	vmovdqa %ymm7, 224(%rsp)
	vmovdqa %ymm8, 256(%rsp)
	vmovdqa %ymm9, 288(%rsp)
	vmovdqa %ymm10, 320(%rsp)
	vmovdqa %ymm11, 352(%rsp)
	vmovdqa %ymm12, 384(%rsp)
	vmovdqa %ymm13, 416(%rsp)
	vmovdqa %ymm14, 448(%rsp)
	vmovdqa %ymm15, 480(%rsp)
	stmxcsr 512(%rsp)
	/* The program's upper halves stay saved; usnet's code starts clean
	 * (no SSE/AVX transition penalty in its SSE code). */
	vzeroupper
	mov %r12, %rdi
	call *%rbx
	mov %rax, %r12
	ldmxcsr 512(%rsp)
	vmovdqa 0(%rsp), %ymm0
	vmovdqa 32(%rsp), %ymm1
	vmovdqa 64(%rsp), %ymm2
	vmovdqa 96(%rsp), %ymm3
	vmovdqa 128(%rsp), %ymm4
	vmovdqa 160(%rsp), %ymm5
	vmovdqa 192(%rsp), %ymm6
	vmovdqa 224(%rsp), %ymm7
	vmovdqa 256(%rsp), %ymm8
	vmovdqa 288(%rsp), %ymm9
	vmovdqa 320(%rsp), %ymm10
	vmovdqa 352(%rsp), %ymm11
	vmovdqa 384(%rsp), %ymm12
	vmovdqa 416(%rsp), %ymm13
	vmovdqa 448(%rsp), %ymm14
	vmovdqa 480(%rsp), %ymm15
	jmp .Lsaved_return
	.size usnet_hook_call_saved, .-usnet_hook_call_saved

	.section .note.GNU-stack,"",@progbits
