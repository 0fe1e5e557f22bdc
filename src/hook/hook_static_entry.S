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
 */
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
	cmpq $1, %fs:(%rcx)
	jne 1f
	mov hook_static_program_fs@gottpoff(%rip), %rcx
	mov %r11, %fs:(%rcx)
1:	push %r11               /* also aligns the stack for the call */
	movslq %edi, %rax
	lea hook_static_sig_real(%rip), %rcx
	call *(%rcx,%rax,8)
	pop %r11
	mov hook_static_depth@gottpoff(%rip), %rcx
	subq $1, %fs:(%rcx)
	jnz 2f
	/* the outermost entry: the program's pointer, which an
	 * arch_prctl(ARCH_SET_FS) may have changed meanwhile */
	mov hook_static_program_fs@gottpoff(%rip), %rcx
	mov %fs:(%rcx), %r11
2:	wrfsbase %r11
	ret
9:	movslq %edi, %rax
	lea hook_static_sig_real(%rip), %rcx
	jmp *(%rcx,%rax,8)
	.size hook_static_sig_entry, .-hook_static_sig_entry

/* The kernel's handler for every signal the program handles itself: the
 * program's handler (hook_static_prog_real) must run with the program's
 * %fs, also when the signal interrupted the hook (%fs = %gs base then);
 * the hook's pointer is put back after it. */
	.globl hook_static_prog_sig_entry
	.hidden hook_static_prog_sig_entry
	.type hook_static_prog_sig_entry,@function
	.p2align 4
hook_static_prog_sig_entry:
	rdgsbase %rax
	rdfsbase %r11
	test %rax, %rax
	jz 9f
	cmp %rax, %r11
	jne 9f                  /* the program's own %fs: nothing to switch */
	mov hook_static_program_fs@gottpoff(%rip), %rcx
	mov %fs:(%rcx), %rcx
	push %r11
	wrfsbase %rcx
	movslq %edi, %rax
	lea hook_static_prog_real(%rip), %rcx
	call *(%rcx,%rax,8)
	pop %r11
	wrfsbase %r11
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
