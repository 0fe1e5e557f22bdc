/* The registry of tests (names from tests.def). */
#include "harness.h"
#include "tests.h"

const struct test_case stack_tests[] = {
#define T(name) { #name, test_##name },
#include "tests.def"
#undef T
	{ NULL, NULL },
};
