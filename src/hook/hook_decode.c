/*
 * usnet hook — the x86-64 instruction decoder (hook_decode.h).
 *
 * An instruction is: legacy prefixes, an optional REX, then either a VEX
 * (c4/c5), EVEX (62) or XOP (8f with a map >= 8) prefix and its opcode, or a
 * legacy opcode in one of four maps (one byte; 0f; 0f 38; 0f 3a); then a
 * ModRM byte with its SIB and displacement where the opcode takes one; then
 * an immediate whose size the opcode (and 66, 67, REX.W) sets.  The tables
 * are written as switch statements over the Intel SDM's opcode maps (volume
 * 2, appendix A), 64-bit column.
 */
#include <stdbool.h>

#include "hook_decode.h"

/* Immediate sizes. */
enum {
	IMM_NONE,
	IMM_8,
	IMM_16,
	IMM_16_8,   /* enter */
	IMM_Z,      /* 16 with 66 (and no REX.W), else 32 */
	IMM_REL,    /* near call/jmp/jcc: as IMM_Z; a CPU may ignore the 66 (Intel
		     * does), but no compiler writes it, and objdump decodes the
		     * bytes as AMD's CPUs run them */
	IMM_V,      /* mov r, imm: 64 with REX.W, 16 with 66, else 32 */
	IMM_MOFFS,  /* a0-a3: a 64-bit address, 32-bit with 67 */
	IMM_GRP3,   /* f6/f7: imm8/immz for /0 and /1 only */
	IMM_8_8,    /* SSE4a extrq/insertq: two imm8 */
	IMM_32,
};

struct op_info {
	bool valid, modrm, reg_only;   /* reg_only: mod is ignored (mov cr/dr) */
	uint8_t imm;
};

static struct op_info map0(uint8_t op)
{
	struct op_info o = { .valid = true };
	if (op < 0x40) {
		switch (op & 7) {
		case 0: case 1: case 2: case 3:
			o.modrm = true;
			return o;
		case 4:
			o.imm = IMM_8;
			return o;
		case 5:
			o.imm = IMM_Z;
			return o;
		default:
			/* push/pop es cs ss ds, daa das aaa aas: not in 64-bit mode
			 * (26 2e 36 3e are prefixes, 0f an escape: never here) */
			o.valid = false;
			return o;
		}
	}
	switch (op) {
	case 0x60: case 0x61: case 0x82: case 0x9a: case 0xce: case 0xd4: case 0xd5: case 0xd6: case 0xea:
		o.valid = false;
		break;
	case 0x63: case 0x84: case 0x85: case 0x86: case 0x87: case 0x88: case 0x89: case 0x8a: case 0x8b:
	case 0x8c: case 0x8d: case 0x8e: case 0x8f: case 0xd0: case 0xd1: case 0xd2: case 0xd3:
	case 0xd8: case 0xd9: case 0xda: case 0xdb: case 0xdc: case 0xdd: case 0xde: case 0xdf:
	case 0xfe: case 0xff:
		o.modrm = true;
		break;
	case 0x68: case 0xa9:
		o.imm = IMM_Z;
		break;
	case 0xe8: case 0xe9:
		o.imm = IMM_REL;
		break;
	case 0x69: case 0x81: case 0xc7:
		o.modrm = true;
		o.imm = IMM_Z;
		break;
	case 0x6a: case 0xa8: case 0xcd: case 0xeb:
	case 0x70: case 0x71: case 0x72: case 0x73: case 0x74: case 0x75: case 0x76: case 0x77:
	case 0x78: case 0x79: case 0x7a: case 0x7b: case 0x7c: case 0x7d: case 0x7e: case 0x7f:
	case 0xe0: case 0xe1: case 0xe2: case 0xe3: case 0xe4: case 0xe5: case 0xe6: case 0xe7:
	case 0xb0: case 0xb1: case 0xb2: case 0xb3: case 0xb4: case 0xb5: case 0xb6: case 0xb7:
		o.imm = IMM_8;
		break;
	case 0x6b: case 0x80: case 0x83: case 0xc0: case 0xc1: case 0xc6:
		o.modrm = true;
		o.imm = IMM_8;
		break;
	case 0xa0: case 0xa1: case 0xa2: case 0xa3:
		o.imm = IMM_MOFFS;
		break;
	case 0xb8: case 0xb9: case 0xba: case 0xbb: case 0xbc: case 0xbd: case 0xbe: case 0xbf:
		o.imm = IMM_V;
		break;
	case 0xc2: case 0xca:
		o.imm = IMM_16;
		break;
	case 0xc8:
		o.imm = IMM_16_8;
		break;
	case 0xf6: case 0xf7:
		o.modrm = true;
		o.imm = IMM_GRP3;
		break;
	default:
		/* 50-5f, 6c-6f, 90-9f, a4-a7, aa-af, c3, c9, cb, cc, cf, d7,
		 * ec-ef, f1, f4, f5, f8-fd: the opcode alone */
		break;
	}
	return o;
}

static struct op_info map1(uint8_t op, bool opsize, bool repne)
{
	struct op_info o = { .valid = true, .modrm = true };
	switch (op) {
	case 0x04: case 0x0a: case 0x0c: case 0x24: case 0x25: case 0x26: case 0x27: case 0x36:
	case 0x39: case 0x3b: case 0x3c: case 0x3d: case 0x3e: case 0x3f: case 0x7a: case 0x7b:
		o.valid = false;
		break;
	case 0x05: case 0x06: case 0x07: case 0x08: case 0x09: case 0x0b: case 0x0e:
	case 0x30: case 0x31: case 0x32: case 0x33: case 0x34: case 0x35: case 0x37: case 0x77:
	case 0xa0: case 0xa1: case 0xa2: case 0xa8: case 0xa9: case 0xaa:
	case 0xc8: case 0xc9: case 0xca: case 0xcb: case 0xcc: case 0xcd: case 0xce: case 0xcf:
		o.modrm = false;
		break;
	case 0x80: case 0x81: case 0x82: case 0x83: case 0x84: case 0x85: case 0x86: case 0x87:
	case 0x88: case 0x89: case 0x8a: case 0x8b: case 0x8c: case 0x8d: case 0x8e: case 0x8f:
		o.modrm = false;
		o.imm = IMM_REL;
		break;
	case 0x0f:   /* 3DNow!: the opcode comes after the operands */
	case 0x70: case 0x71: case 0x72: case 0x73: case 0xa4: case 0xac: case 0xba:
	case 0xc2: case 0xc4: case 0xc5: case 0xc6:
		o.imm = IMM_8;
		break;
	case 0x78:   /* vmread; with 66 or f2 SSE4a's extrq/insertq */
		if (opsize || repne)
			o.imm = IMM_8_8;
		break;
	case 0x20: case 0x21: case 0x22: case 0x23:
		o.reg_only = true;
		break;
	default:
		break;
	}
	return o;
}

/* VEX/EVEX: which opcodes of map 1 take an imm8 (map 3: all of them). */
static bool vex_map1_imm8(uint8_t op)
{
	return (op >= 0x70 && op <= 0x73) || op == 0xc2 || op == 0xc4 || op == 0xc5 || op == 0xc6;
}

/* One-byte opcodes whose ModRM reg field (or mod) selects an undefined
 * form: mov/xabort/xbegin c6 c7 (only /0, and f8), inc/dec fe (/0 /1), ff /7,
 * pop 8f (/0; with a reg that makes a map >= 8 it is XOP, taken earlier),
 * lea from a register. */
static bool group_reg_valid(uint8_t op, uint8_t modrm)
{
	uint8_t reg = (modrm >> 3) & 7;
	switch (op) {
	case 0xc6: case 0xc7: return reg == 0 || modrm == 0xf8;
	case 0xfe: return reg <= 1;
	case 0xff: return reg != 7;
	case 0x8f: return reg == 0;
	case 0x8d: return (modrm >> 6) != 3;
	default: return true;
	}
}

static unsigned imm_size(uint8_t imm, bool opsize, bool addrsize, bool rexw, uint8_t reg, uint8_t op)
{
	switch (imm) {
	case IMM_8: return 1;
	case IMM_16: return 2;
	case IMM_16_8: return 3;
	case IMM_Z: case IMM_REL: return opsize && !rexw ? 2 : 4;
	case IMM_V: return rexw ? 8 : opsize ? 2 : 4;
	case IMM_MOFFS: return addrsize ? 4 : 8;
	case IMM_GRP3: return reg > 1 ? 0 : op == 0xf6 ? 1 : opsize ? 2 : 4;
	case IMM_8_8: return 2;
	case IMM_32: return 4;
	default: return 0;
	}
}

static int32_t read_rel(const uint8_t *p, unsigned n)
{
	if (n == 1)
		return (int8_t)p[0];
	if (n == 2)
		return (int16_t)(p[0] | p[1] << 8);
	return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

int hook_decode(const uint8_t *p, size_t left, struct hook_insn *in)
{
	size_t max = left < 15 ? left : 15, i = 0;
	bool opsize = false, addrsize = false, rep = false, repne = false, odd_prefix = false;
	uint8_t rex = 0;
	*in = (struct hook_insn){ 0 };

	/* prefixes; a REX must come right before the opcode (the CPU would
	 * ignore a misplaced one, but no assembler writes it: such bytes are
	 * data, as they are to objdump) */
	for (;; i++) {
		if (i >= max)
			return 0;
		uint8_t b = p[i];
		if ((b & 0xf0) == 0x40) {
			if (rex)
				return 0;
			rex = b;
			continue;
		}
		switch (b) {
		case 0x66: opsize = true; odd_prefix = true; break;
		case 0x67: addrsize = true; odd_prefix = true; break;
		case 0xf2: repne = true; break;
		case 0xf3: rep = true; odd_prefix = true; break;
		case 0xf0: case 0x26: case 0x36: case 0x64: case 0x65: odd_prefix = true; break;
		case 0x2e: case 0x3e: break;
		default: goto opcode;
		}
		if (rex)
			return 0;
	}
opcode:;
	uint8_t op = p[i++];
	unsigned map = 0;
	struct op_info o;
	bool rexw = rex & 8;
	if (op == 0xc4 || op == 0xc5 || op == 0x62 ||
	    (op == 0x8f && i < max && (p[i] & 0x1f) >= 8)) {
		/* VEX, EVEX, XOP: no 66/f2/f3 may come before them (a REX is
		 * refused by the CPU too, but objdump lets it pass: data) */
		if (opsize || rep || repne)
			return 0;
		unsigned nbytes = op == 0xc5 ? 1 : op == 0x62 ? 3 : 2;
		if (i + nbytes >= max)
			return 0;
		if (op == 0xc5) {
			map = 1;
		} else if (op == 0x62) {
			map = p[i] & 7;
			rexw = p[i + 1] & 0x80;
			if (!(p[i + 1] & 4) || map == 0 || map == 4 || map == 7)
				return 0;
		} else {
			map = p[i] & 0x1f;
			rexw = p[i + 1] & 0x80;
			if (op == 0xc4 ? (map < 1 || map > 3) : (map < 8 || map > 10))
				return 0;
		}
		i += nbytes;
		uint8_t vop = p[i++];
		o = (struct op_info){ .valid = true, .modrm = true };
		if (op != 0x62 && map == 1 && vop == 0x77) {
			o.modrm = false;   /* vzeroupper, vzeroall */
		} else if (map == 3 || map == 8 || (map == 1 && vex_map1_imm8(vop))) {
			o.imm = IMM_8;
		} else if (map == 10) {
			o.imm = IMM_32;
		}
		op = vop;
		map = 16 + map;   /* not a legacy map: kind stays OTHER */
	} else if (op == 0x0f) {
		if (i >= max)
			return 0;
		op = p[i++];
		if (op == 0x38 || op == 0x3a) {
			if (i >= max)
				return 0;
			map = op == 0x38 ? 2 : 3;
			op = p[i++];
			o = (struct op_info){ .valid = true, .modrm = true, .imm = map == 3 ? IMM_8 : IMM_NONE };
		} else {
			map = 1;
			o = map1(op, opsize, repne);
		}
	} else {
		o = map0(op);
	}
	if (!o.valid)
		return 0;

	uint8_t modrm = 0, reg = 0;
	if (o.modrm) {
		if (i >= max)
			return 0;
		modrm = p[i++];
		reg = (modrm >> 3) & 7;
		unsigned mod = modrm >> 6, rm = modrm & 7, disp = 0;
		if (map == 0 && !group_reg_valid(op, modrm))
			return 0;
		if (mod != 3 && !o.reg_only) {
			if (rm == 4) {
				if (i >= max)
					return 0;
				uint8_t sib = p[i++];
				if (mod == 0 && (sib & 7) == 5)
					disp = 4;
			}
			if (mod == 0 && rm == 5) {
				disp = 4;
				if (addrsize)
					in->eip_rel = 1;
				else
					in->disp_off = (uint8_t)i;
			} else if (mod == 1) {
				disp = 1;
			} else if (mod == 2) {
				disp = 4;
			}
		}
		i += disp;
	}
	unsigned imm = imm_size(o.imm, opsize, addrsize, rexw, reg, op);
	if (map == 0 && op == 0xc7 && modrm == 0xf8)
		imm = opsize && !rexw ? 2 : 4;   /* xbegin rel16/rel32 */
	if (i + imm > max)
		return 0;
	size_t len = i + imm;
	in->len = (uint8_t)len;

	/* what it is */
	uint8_t kind = HOOK_INSN_OTHER;
	bool rel = false;
	if (map == 0) {
		if (op >= 0x70 && op <= 0x7f) {
			kind = HOOK_INSN_JCC;
			rel = true;
		} else if (op == 0xeb || op == 0xe9) {
			kind = HOOK_INSN_JMP;
			rel = true;
		} else if (op == 0xe8) {
			kind = HOOK_INSN_CALL;
			rel = true;
		} else if ((op >= 0xe0 && op <= 0xe3) || (op == 0xc7 && modrm == 0xf8)) {
			kind = HOOK_INSN_LOOP;
			rel = true;
		} else if (op == 0xc2 || op == 0xc3 || op == 0xca || op == 0xcb || op == 0xf4) {
			kind = HOOK_INSN_RET;
		} else if (op == 0xcc || op == 0xcd || op == 0xf1 || op == 0xcf) {
			kind = HOOK_INSN_TRAP;
			in->int3 = op == 0xcc;
		} else if (op == 0x90 && !(rex & 1) && !rep) {
			kind = HOOK_INSN_NOP;
		} else if (op == 0xff && (reg == 2 || reg == 3)) {
			kind = HOOK_INSN_CALL_IND;
		} else if (op == 0xff && reg == 4) {
			kind = HOOK_INSN_JMP_IND;
		} else if (op == 0xff && reg == 5) {
			kind = HOOK_INSN_JMP_FAR;
		}
	} else if (map == 1) {
		if (op >= 0x80 && op <= 0x8f) {
			kind = HOOK_INSN_JCC;
			rel = true;
		} else if (op == 0x05) {
			kind = HOOK_INSN_SYSCALL;
		} else if (op == 0x34) {
			kind = HOOK_INSN_SYSENTER;
		} else if (op == 0x07) {
			kind = HOOK_INSN_TRAP;
		} else if (op == 0x0b) {
			kind = HOOK_INSN_RET;
		} else if (op == 0x1e && rep && (modrm == 0xfa || modrm == 0xfb)) {
			kind = HOOK_INSN_ENDBR;
		} else if (op == 0x1f && reg == 0) {
			kind = HOOK_INSN_NOP;
		}
	}
	in->kind = kind;
	if (rel) {
		unsigned n = imm;
		in->rel = read_rel(p + len - n, n);
		in->plain_branch = (kind == HOOK_INSN_JMP || kind == HOOK_INSN_JCC) && !odd_prefix;
	}
	return (int)len;
}
