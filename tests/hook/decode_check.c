/*
 * decode_check FILE... — the hook's own decoder (src/hook/hook_decode.c)
 * against GNU objdump, instruction by instruction, over every code section of
 * real x86-64 ELF files.
 *
 * objdump's linear pass leads: at each instruction it lists, the decoder
 * must agree on validity ("(bad)"), length, kind (direct branch, call, end
 * of flow, trap, syscall, endbr, nop), branch target, and whether an operand
 * is rip- or eip-relative.  Allowed differences: objdump calls the reserved
 * opcodes 0f 19-1e "nop" where the decoder sees a plain instruction (which
 * only makes the rewriter's padding rule stricter); it shows fwait and the
 * x87 instruction after it on one line; and it never decodes across a
 * symbol (".byte" lines, skipped), which a linear pass over a mapping that
 * knows no symbols cannot do; and bytes objdump calls "(bad)" may decode
 * (data in a code section, such as OpenSSL's AES tables, where objdump
 * also refuses holes in the x87 and VEX maps): counted, not failed.
 *
 * Prints one line per file (instructions, bytes, disagreements) and the
 * first disagreements with their bytes; exit 0 when none, 1 otherwise.
 */
#include <elf.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/hook/hook_decode.h"

static const char *kind_name(int k)
{
	static const char *n[] = { "other", "jmp", "jcc", "call", "loop", "call-ind", "jmp-ind",
				   "jmp-far", "ret", "trap", "syscall", "sysenter", "endbr", "nop" };
	return k >= 0 && k < (int)(sizeof n / sizeof n[0]) ? n[k] : "?";
}

static bool is_prefix_word(const char *w)
{
	static const char *const words[] = { "bnd", "notrack", "rep", "repz", "repnz", "repe", "repne",
					     "data16", "data32", "addr32", "cs", "ds", "es", "ss", "fs",
					     "gs", "lock", "xacquire", "xrelease", NULL };
	if (!strncmp(w, "rex", 3) || !strncmp(w, "{", 1))
		return true;
	for (int i = 0; words[i]; i++)
		if (!strcmp(w, words[i]))
			return true;
	return false;
}

/* The kind objdump's text names: mnemonic and operands (AT&T syntax). */
static int ref_kind(const char *mn, const char *ops)
{
	char m[32];
	snprintf(m, sizeof m, "%s", mn);
	char *comma = strchr(m, ',');   /* jne,pt */
	if (comma)
		*comma = 0;
	bool indirect = ops[0] == '*';
	size_t ml = strlen(m);
	if (ml > 3 && (m[ml - 1] == 'w' || m[ml - 1] == 'q') && strcmp(m, "retq") && strcmp(m, "lretq") &&
	    (!strncmp(m, "jmp", 3) || !strncmp(m, "ljmp", 4) || !strncmp(m, "call", 4) ||
	     !strncmp(m, "lcall", 5) || !strncmp(m, "ret", 3) || !strncmp(m, "lret", 4)))
		m[ml - 1] = 0;   /* jmpw, callq, lretw: the operand size */
	if (!strcmp(m, "jmp"))
		return indirect ? HOOK_INSN_JMP_IND : HOOK_INSN_JMP;
	if (!strcmp(m, "ljmp"))
		return HOOK_INSN_JMP_FAR;
	if (!strcmp(m, "call"))
		return indirect ? HOOK_INSN_CALL_IND : HOOK_INSN_CALL;
	if (!strcmp(m, "lcall"))
		return HOOK_INSN_CALL_IND;
	if (!strcmp(m, "jrcxz") || !strcmp(m, "jecxz") || !strncmp(m, "loop", 4) || !strcmp(m, "xbegin"))
		return HOOK_INSN_LOOP;
	if (m[0] == 'j')
		return HOOK_INSN_JCC;
	if (!strcmp(m, "ret") || !strcmp(m, "retq") || !strcmp(m, "lret") || !strcmp(m, "lretq") ||
	    !strcmp(m, "ud2") || !strcmp(m, "hlt"))
		return HOOK_INSN_RET;
	if (!strcmp(m, "int") || !strcmp(m, "int1") || !strcmp(m, "icebp") || !strcmp(m, "int3") ||
	    !strcmp(m, "into") || !strncmp(m, "iret", 4) || !strncmp(m, "sysret", 6))
		return HOOK_INSN_TRAP;
	if (!strcmp(m, "syscall"))
		return HOOK_INSN_SYSCALL;
	if (!strcmp(m, "sysenter"))
		return HOOK_INSN_SYSENTER;
	if (!strncmp(m, "endbr", 5))
		return HOOK_INSN_ENDBR;
	if (!strncmp(m, "nop", 3) || (!strcmp(m, "xchg") && !strcmp(ops, "%ax,%ax")))
		return HOOK_INSN_NOP;
	return HOOK_INSN_OTHER;
}

struct seg {
	uint64_t vaddr, memsz, offset, filesz;
};

struct tally {
	unsigned long insns, bytes, bad, nop_only, data;
	int shown;
};

static void show(struct tally *t, const char *file, const uint8_t *p, size_t avail, uint64_t addr,
		 const char *what)
{
	t->bad++;
	if (t->shown++ >= 10)
		return;
	printf("  %s 0x%lx: %s:", file, (unsigned long)addr, what);
	for (size_t i = 0; i < 15 && i < avail; i++)
		printf(" %02x", p[i]);
	printf("\n");
}

static int check_file(const char *file)
{
	int fd = open(file, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		perror(file);
		return -1;
	}
	const uint8_t *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		perror(file);
		return -1;
	}
	const Elf64_Ehdr *eh = (const void *)m;
	if ((size_t)st.st_size < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_X86_64) {
		fprintf(stderr, "%s: not an x86-64 ELF file\n", file);
		return -1;
	}
	struct seg segs[32];
	int nsegs = 0;
	for (int i = 0; i < eh->e_phnum && nsegs < 32; i++) {
		const Elf64_Phdr *ph = (const void *)(m + eh->e_phoff + (size_t)i * eh->e_phentsize);
		if (ph->p_type == PT_LOAD && ph->p_offset + ph->p_filesz <= (uint64_t)st.st_size)
			segs[nsegs++] = (struct seg){ ph->p_vaddr, ph->p_memsz, ph->p_offset, ph->p_filesz };
	}

	char cmd[4200];
	snprintf(cmd, sizeof cmd, "objdump -d -w -z '%s'", file);
	FILE *od = popen(cmd, "r");
	if (!od) {
		perror("objdump");
		return -1;
	}
	struct tally t = { 0 };
	char line[8192];
	while (fgets(line, sizeof line, od)) {
		/* "  addr:\tbytes \tmnemonic operands" */
		char *tab1 = strchr(line, '\t');
		if (!tab1 || tab1 == line || tab1[-1] != ':')
			continue;
		char *end;
		uint64_t addr = strtoull(line, &end, 16);
		if (end != tab1 - 1)
			continue;
		char *tab2 = strchr(tab1 + 1, '\t');
		int len = 0;
		for (char *b = tab1 + 1; *b && b != tab2; b++)
			if (b[0] != ' ' && b[0] != '\n' && (b == tab1 + 1 || b[-1] == ' '))
				len++;
		char text[512] = "";
		if (tab2)
			snprintf(text, sizeof text, "%s", tab2 + 1);
		text[strcspn(text, "\n")] = 0;
		/* the mnemonic: the first word that is no prefix */
		char *mn = strtok(text, " "), *ops = NULL;
		while (mn && is_prefix_word(mn))
			mn = strtok(NULL, " ");
		if (mn) {
			ops = strtok(NULL, "");
			while (ops && *ops == ' ')
				ops++;
		}
		if (!ops)
			ops = "";
		const uint8_t *p = NULL;
		size_t avail = 0;
		for (int i = 0; i < nsegs; i++)
			if (addr >= segs[i].vaddr && addr < segs[i].vaddr + segs[i].filesz) {
				p = m + segs[i].offset + (addr - segs[i].vaddr);
				avail = segs[i].filesz - (addr - segs[i].vaddr);
			}
		if (!p)
			continue;
		/* objdump's padding before a symbol: it never decodes across one */
		if (mn && !strcmp(mn, ".byte"))
			continue;
		struct hook_insn in;
		int n = hook_decode(p, avail, &in);
		/* objdump shows fwait (9b) and the x87 instruction after it as one */
		if (n == 1 && p[0] == 0x9b && len > 1) {
			int n2 = hook_decode(p + 1, avail - 1, &in);
			n = n2 ? 1 + n2 : 0;
		}
		char why[300] = "";
		bool bad = !mn || !strcmp(mn, "(bad)") || (tab2 && strstr(tab2, "(bad)"));
		if (bad) {
			/* data between code: where objdump is strict about encodings
			 * no assembler writes (holes in the x87 and VEX maps) */
			if (n)
				t.data++;
		} else {
			t.insns++;
			t.bytes += (unsigned long)len;
			int rk = ref_kind(mn, ops);
			bool riprel = strstr(ops, "(%rip)") != NULL, eiprel = strstr(ops, "(%eip)") != NULL;
			if (!n) {
				snprintf(why, sizeof why, "refused, objdump: %.200s %.60s", mn, ops);
			} else if (n != len) {
				snprintf(why, sizeof why, "length %d, objdump %d (%.100s %.100s)", n, len, mn, ops);
			} else if (in.kind != rk) {
				if (rk == HOOK_INSN_NOP && in.kind == HOOK_INSN_OTHER && p[0] == 0x0f)
					t.nop_only++;
				else
					snprintf(why, sizeof why, "%s, objdump %s (%.100s %.100s)", kind_name(in.kind),
						 kind_name(rk), mn, ops);
			} else if (rk == HOOK_INSN_JMP || rk == HOOK_INSN_JCC || rk == HOOK_INSN_CALL ||
				   rk == HOOK_INSN_LOOP) {
				uint64_t want = strtoull(ops, NULL, 16);
				uint64_t got = addr + (uint64_t)n + (uint64_t)(int64_t)in.rel;
				/* jmpw/callw rel16 (66, data): objdump keeps 16 bits */
				if (got != want && !(want < 0x10000 && (got & 0xffff) == want))
					snprintf(why, sizeof why, "target 0x%lx, objdump %.100s", (unsigned long)got,
						 ops);
			}
			if (!why[0] && n && ((in.disp_off != 0) != riprel || in.eip_rel != eiprel))
				snprintf(why, sizeof why, "rip-relative %d, eip-relative %d; objdump: %.100s %.100s",
					 in.disp_off != 0, in.eip_rel, mn, ops);
			if (!why[0] && in.disp_off && (in.disp_off + 4 > n))
				snprintf(why, sizeof why, "displacement at %d in %d bytes", in.disp_off, n);
		}
		if (why[0])
			show(&t, file, p, avail, addr, why);
	}
	int st_od = pclose(od);
	munmap((void *)m, (size_t)st.st_size);
	if (st_od != 0 || t.insns == 0) {
		fprintf(stderr, "%s: objdump listed no instructions (status %d)\n", file, st_od);
		return -1;
	}
	printf("%s: %lu instructions, %lu bytes, %lu disagreements (allowed: %lu reserved nops, "
	       "%lu (bad) decoded)\n", file, t.insns, t.bytes, t.bad, t.nop_only, t.data);
	return t.bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: decode_check ELF-FILE...\n");
		return 2;
	}
	int rc = 0;
	for (int i = 1; i < argc; i++) {
		int r = check_file(argv[i]);
		if (r < 0)
			rc = 2;
		else if (r > 0 && rc == 0)
			rc = 1;
	}
	return rc;
}
