/* Every test of the suite (registered in tests.c). */
#ifndef USNET_STACK_TESTS_H
#define USNET_STACK_TESTS_H
#define T(name) int test_##name(void);
#include "tests.def"
#undef T
#endif
