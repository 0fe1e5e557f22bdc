/*
 * libFuzzer target: the hook's x86-64 decoder (src/hook/hook_decode.c).  An
 * input is a stretch of would-be code; it is decoded at every offset, and
 * each answer checked: never longer than 15 bytes or than what is left; a
 * rip-relative displacement inside the instruction; and the same answer when
 * the instruction's own bytes are all there is (copied into a buffer of
 * exactly that size, so ASan catches a read past them: the decoder must never
 * look beyond the instruction it returns).  A violation aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/hook/hook_decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (size_t off = 0; off < size; off++) {
		struct hook_insn in;
		int n = hook_decode(data + off, size - off, &in);
		if (n < 0 || n > 15 || (size_t)n > size - off)
			abort();
		if (!n)
			continue;
		if (in.len != n || in.kind > HOOK_INSN_NOP)
			abort();
		if (in.disp_off && (in.disp_off + 4 > n || in.eip_rel))
			abort();
		uint8_t *own = malloc((size_t)n);
		if (!own)
			abort();
		memcpy(own, data + off, (size_t)n);
		struct hook_insn again;
		int m = hook_decode(own, (size_t)n, &again);
		free(own);
		if (m != n || memcmp(&in, &again, sizeof in))
			abort();
	}
	return 0;
}
