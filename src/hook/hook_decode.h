/*
 * usnet hook — an x86-64 instruction decoder of its own: where each
 * instruction ends, and the few facts the rewriter's plans need (is it a
 * branch, and to where; does it end the flow; can it move into a stub; where
 * its rip-relative displacement sits).
 *
 * It decodes 64-bit mode only: legacy prefixes, REX, the one-, two- and
 * three-byte opcode maps, VEX, EVEX, AMD's XOP and 3DNow!.  A byte sequence the CPU would refuse in 64-bit mode
 * (06, 27, 60, 9a, ea, c6 /1...) is "invalid", as it is to a full
 * disassembler, so the linear pass steps over it the same way.  Near
 * branches take a 32-bit displacement whatever the prefixes (Intel's rule).
 * tests/hook/decode_check.c compares it, instruction by instruction, with
 * GNU objdump over real programs and libraries.
 *
 * Pure integer code with no calls: usable anywhere in the hook.
 */
#ifndef USNET_HOOK_DECODE_H
#define USNET_HOOK_DECODE_H

#include <stddef.h>
#include <stdint.h>

/* What an instruction is, as far as the rewriter cares. */
enum hook_insn_kind {
	HOOK_INSN_OTHER,     /* anything else: moves into a stub as it is */
	HOOK_INSN_JMP,       /* jmp rel8/rel32: ends the flow, a direct branch */
	HOOK_INSN_JCC,       /* jcc rel8/rel32: a direct branch */
	HOOK_INSN_CALL,      /* call rel32: a direct branch, cannot move */
	HOOK_INSN_LOOP,      /* loop/loope/loopne/jrcxz rel8, xbegin: a direct branch, cannot move */
	HOOK_INSN_CALL_IND,  /* call through a register or memory, far call: cannot move */
	HOOK_INSN_JMP_IND,   /* jmp through a register or memory: ends the flow */
	HOOK_INSN_JMP_FAR,   /* far jmp through memory: ends the flow, cannot move */
	HOOK_INSN_RET,       /* ret, retf, ud2, hlt: end the flow */
	HOOK_INSN_TRAP,      /* int, int1, int3, iret, sysret: cannot move */
	HOOK_INSN_SYSCALL,   /* syscall (0f 05) */
	HOOK_INSN_SYSENTER,  /* sysenter (0f 34) */
	HOOK_INSN_ENDBR,     /* endbr64/endbr32: an indirect branch lands here, cannot move */
	HOOK_INSN_NOP,       /* nop (90 without REX.B), nopw/nopl (0f 1f /0): padding */
};

struct hook_insn {
	uint8_t len;         /* 1..15 */
	uint8_t kind;        /* enum hook_insn_kind */
	uint8_t int3;        /* the one-byte int3 (cc): padding too */
	uint8_t disp_off;    /* rip-relative: where its disp32 starts; else 0 */
	uint8_t eip_rel;     /* addressed relative to eip (67 prefix): cannot move */
	uint8_t plain_branch;/* JMP/JCC with no prefix but 2e/3e/f2/REX: re-aimable */
	int32_t rel;         /* direct branches: target = end of instruction + rel */
};

/* Decodes the instruction at p (at most `left` bytes readable).  Returns its
 * length and fills *in, or 0 when the bytes are no valid instruction in
 * 64-bit mode (or it runs past `left`, or past 15 bytes). */
int hook_decode(const uint8_t *p, size_t left, struct hook_insn *in);

#endif
