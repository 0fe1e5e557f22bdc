/*
 * Unit-test runner for the stack core: `test_stack` runs every test and
 * prints PASS/FAIL lines; `test_stack NAME...` runs the named ones;
 * `test_stack -l` lists them.  A prefix for the printed names comes from
 * the environment (STACK_TEST_PREFIX, default "stack/").
 */
#include "harness.h"

int main(int argc, char **argv)
{
	const char *prefix = getenv("STACK_TEST_PREFIX");
	if (!prefix)
		prefix = "stack/";
	if (argc > 1 && strcmp(argv[1], "-l") == 0) {
		for (const struct test_case *t = stack_tests; t->name; t++)
			printf("%s\n", t->name);
		return 0;
	}
	int failed = 0;
	for (const struct test_case *t = stack_tests; t->name; t++) {
		if (argc > 1) {
			int want = 0;
			for (int i = 1; i < argc; i++)
				if (strcmp(argv[i], t->name) == 0)
					want = 1;
			if (!want)
				continue;
		}
		t_why[0] = 0;
		int r = t->fn();
		if (r == 0) {
			printf("PASS %s%s\n", prefix, t->name);
		} else {
			printf("FAIL %s%s: %s\n", prefix, t->name, t_why[0] ? t_why : "failed");
			failed++;
		}
		fflush(stdout);
	}
	return failed ? 1 : 0;
}
