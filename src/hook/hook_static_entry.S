/*
 * usnet hook — the way into the hook from a statically linked program
 * (hook_static.h): the kernel's SIGSYS and SIGSEGV handlers, run with the
 * program's thread pointer in %fs, switch it to the hook's (kept in %gs
 * base) around the real handler, and back on the way out.  Nested entries
 * (a probe's SIGSEGV inside the SIGSYS handler) find %fs already switched:
 * the depth counter keeps the program's value from being overwritten.
 *
 * On entry: edi = signal, rsi = siginfo, rdx = ucontext, (%rsp) = the
 * restorer.  No system call here: SUD's allowed range is hook_entry.S's.
 * The outermost entry from the program keeps its %fs and stack pointer
 * (where a program signal handler goes, hook_static_forward_sp); an entry
 * that interrupted the hook itself (a program handler's sigreturn after it
 * interrupted the hook) goes back with the hook's %fs.  Every entry keeps
 * its context in hook_static_uc while it runs.
 */
/* ucontext_t's uc_mcontext.gregs[REG_RSP] (hook_static.c checks it) */
#define UC_RSP 160

	.text
	.globl hook_static_sig_entry
	.hidden hook_static_sig_entry
	.type hook_static_sig_entry,@function
	.p2align 4
hook_static_sig_entry:
	rdgsbase %rax
	test %rax, %rax
	jz 9f                   /* a thread the hook gave no thread block */
	rdfsbase %r11
	wrfsbase %rax
	mov hook_static_depth@gottpoff(%rip), %rcx
	addq $1, %fs:(%rcx)
	cmp %rax, %r11
	je 1f                   /* the hook was interrupted: %fs is its own */
	cmpq $1, %fs:(%rcx)
	jne 1f
	mov hook_static_program_fs@gottpoff(%rip), %rcx
	mov %r11, %fs:(%rcx)
	mov hook_static_prog_sp@gottpoff(%rip), %rcx
	mov UC_RSP(%rdx), %rax
	mov %rax, %fs:(%rcx)
1:	mov hook_static_uc@gottpoff(%rip), %rcx
	push %fs:(%rcx)         /* a nested entry's context is its own */
	mov %rdx, %fs:(%rcx)
	push %r11
	sub $8, %rsp            /* aligned for the call */
	movslq %edi, %rax
	lea hook_static_sig_real(%rip), %rcx
	call *(%rcx,%rax,8)
	add $8, %rsp
	pop %r11
	mov hook_static_uc@gottpoff(%rip), %rcx
	pop %fs:(%rcx)
	mov hook_static_depth@gottpoff(%rip), %rcx
	subq $1, %fs:(%rcx)
	jnz 2f
	rdgsbase %rax
	cmp %rax, %r11
	je 2f
	/* the outermost entry from the program: its pointer, which an
	 * arch_prctl(ARCH_SET_FS) may have changed meanwhile */
	mov hook_static_program_fs@gottpoff(%rip), %rcx
	mov %fs:(%rcx), %r11
2:	wrfsbase %r11
	ret
9:	movslq %edi, %rax
	lea hook_static_sig_real(%rip), %rcx
	jmp *(%rcx,%rax,8)
	.size hook_static_sig_entry, .-hook_static_sig_entry

/* The kernel's handler for every signal the program handles itself (the
 * hook's alternate stack, disarmed while a handler runs on it, took the
 * frame, or the stack the thread was on): the program's handler
 * (hook_static_prog_real) runs with the program's %fs, and on the
 * program's own signal stack when it asked for one (hook_static_forward_sp);
 * %fs and the stack are put back after it. */
	.globl hook_static_prog_sig_entry
	.hidden hook_static_prog_sig_entry
	.type hook_static_prog_sig_entry,@function
	.p2align 4
hook_static_prog_sig_entry:
	rdgsbase %rax
	test %rax, %rax
	jz 9f                   /* a thread the hook gave no thread block */
	rdfsbase %r11           /* %fs as the signal found it */
	wrfsbase %rax           /* the hook's, for the C below */
	push %r11
	push %rdi
	push %rsi
	push %rdx
	mov %rdx, %rsi
	mov %r11, %rdx
	sub $8, %rsp            /* aligned for the call */
	call hook_static_forward_sp
	add $8, %rsp
	pop %rdx
	pop %rsi
	pop %rdi
	pop %r11
	/* the program's %fs: as found, unless the signal interrupted the hook */
	mov %r11, %rcx
	rdgsbase %r9
	cmp %r9, %r11
	jne 1f
	mov hook_static_program_fs@gottpoff(%rip), %rcx
	mov %fs:(%rcx), %rcx
1:	mov %rsp, %r8           /* the stack to come back to */
	mov hook_static_prog_alt_low@gottpoff(%rip), %r9
	mov %fs:(%r9), %r10     /* the program's signal stack in use down to here */
	test %rax, %rax
	jz 2f
	mov %rax, %fs:(%r9)     /* ... and now down to the handler's frames */
	mov %rax, %rsp
2:	and $-16, %rsp
	push %r8
	push %r11
	push %r10
	/* the program's handler is the program: its calls are dispatched,
	 * also when it interrupted the handler (whose own calls pass) */
	mov hook_sud_selector@gottpoff(%rip), %r9
	movzbl %fs:(%r9), %eax
	push %rax
	movb $1, %fs:(%r9)      /* SYSCALL_DISPATCH_FILTER_BLOCK */
	wrfsbase %rcx
	movslq %edi, %rax
	lea hook_static_prog_real(%rip), %rcx
	call *(%rcx,%rax,8)
	pop %rcx
	pop %r10
	pop %r11
	pop %r8
	rdgsbase %rax
	wrfsbase %rax
	mov hook_sud_selector@gottpoff(%rip), %r9
	mov %cl, %fs:(%r9)
	mov hook_static_prog_alt_low@gottpoff(%rip), %r9
	mov %r10, %fs:(%r9)
	wrfsbase %r11
	mov %r8, %rsp
	ret
9:	movslq %edi, %rax
	lea hook_static_prog_real(%rip), %rcx
	jmp *(%rcx,%rax,8)
	.size hook_static_prog_sig_entry, .-hook_static_prog_sig_entry

/* long hook_static_clone_issue(const struct clone_regs *r)
 * (hook_static_clone.c): issues the program's clone with its registers and
 * %fs, from a helper thread without SUD.  A child does not inherit SUD: it
 * turns it on first, with the selector in its thread block (the helper's,
 * found through the %gs base it inherited), keeping the program's argument
 * registers on its stack meanwhile, after taking the program parent's
 * signal mask, and its `ret` pops the site its stack was given.  The parent gets its own registers and %fs again. */
#define R_RBX 0
#define R_RBP 8
#define R_R12 16
#define R_R13 24
#define R_R14 32
#define R_R15 40
#define R_RDI 48
#define R_RSI 56
#define R_RDX 64
#define R_R10 72
#define R_R8  80
#define R_R9  88
#define R_RAX 96
#define R_FS  104
	.globl hook_static_clone_issue
	.hidden hook_static_clone_issue
	.type hook_static_clone_issue,@function
	.p2align 4
hook_static_clone_issue:
	push %rbx
	push %rbp
	push %r12
	push %r13
	push %r14
	push %r15
	rdfsbase %rax
	push %rax
	mov R_FS(%rdi), %rax
	wrfsbase %rax
	mov R_RBX(%rdi), %rbx
	mov R_RBP(%rdi), %rbp
	mov R_R12(%rdi), %r12
	mov R_R13(%rdi), %r13
	mov R_R14(%rdi), %r14
	mov R_R15(%rdi), %r15
	mov R_RSI(%rdi), %rsi
	mov R_RDX(%rdi), %rdx
	mov R_R10(%rdi), %r10
	mov R_R8(%rdi), %r8
	mov R_R9(%rdi), %r9
	mov R_RAX(%rdi), %rax
	mov R_RDI(%rdi), %rdi
	syscall
	test %rax, %rax
	jz 1f
	pop %rcx
	wrfsbase %rcx
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbp
	pop %rbx
	ret
	/* the child, on the program's stack (the site on top) */
1:	push %rdi
	push %rsi
	push %rdx
	push %r10
	push %r8
	/* the parent's signal mask (the helper blocks every signal) */
	mov $14, %eax           /* rt_sigprocmask(SIG_SETMASK, &mask, NULL, 8) */
	mov $2, %edi
	mov hook_static_child_mask@gottpoff(%rip), %rsi
	rdgsbase %rcx
	add %rcx, %rsi
	xor %edx, %edx
	mov $8, %r10d
	syscall
	mov $157, %eax          /* prctl(PR_SET_SYSCALL_USER_DISPATCH, ON, ...) */
	mov $59, %edi
	mov $1, %esi
	lea usnet_hook_raw_start(%rip), %rdx
	lea usnet_hook_raw_end(%rip), %r10
	sub %rdx, %r10
	mov hook_sud_selector@gottpoff(%rip), %r8
	rdgsbase %rcx
	add %rcx, %r8
	syscall
	pop %r8
	pop %r10
	pop %rdx
	pop %rsi
	pop %rdi
	xor %eax, %eax
	ret
	.size hook_static_clone_issue, .-hook_static_clone_issue

	.section .note.GNU-stack,"",@progbits
