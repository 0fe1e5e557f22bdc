/* The parsed form of an impair spec (grammar in include/usnet/netif_wrap.h). */
#ifndef USNET_NETIF_IMPAIR_SPEC_H
#define USNET_NETIF_IMPAIR_SPEC_H

#include <stddef.h>
#include <stdint.h>

struct impair_dir_spec {
	double loss, reorder, dup, corrupt; /* probabilities */
	uint64_t delay_ns;
};

struct impair_spec {
	struct impair_dir_spec dir[2]; /* 0: rx, 1: tx */
	uint64_t seed;
};

/* Parse spec into out; 0, or -EINVAL with a one-line reason in err. */
int impair_spec_parse(const char *spec, struct impair_spec *out, char *err, size_t errlen);

#endif
