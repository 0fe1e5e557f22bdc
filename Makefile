# usnet — top-level build.  `make` builds everything into build/; `make test`
# runs every test suite and ends with one line "N passed, N failed, N skipped".
#
# Each part of the tree owns one make fragment (src/*/build.mk, apps/build.mk,
# tests/*/build.mk, ...) that appends its outputs to ALL and its test suites to
# TEST_SUITES; this file only holds the shared flags and the glue.

B        := build
CC       ?= gcc
CLANG    ?= clang
CSTD     ?= -std=gnu11
OPT      ?= -O2
WARN     := -Wall -Wextra -Werror
CFLAGS_COMMON := $(CSTD) $(OPT) -g $(WARN) -fPIC -Iinclude -D_GNU_SOURCE
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

ALL :=
TEST_SUITES :=
TEST_DEPS :=
CLEAN_EXTRA :=

.PHONY: all test clean
all: all-targets

# Fragments, one per part of the tree (sorted for a stable order).
include $(sort $(filter-out src/cli/build.mk,$(wildcard src/*/build.mk)))
# apps/build.mk and bench/build.mk include their per-program fragments.
include $(wildcard apps/build.mk)
include $(sort $(wildcard tests/*/build.mk fuzz/build.mk bench/build.mk))
# Last: the front end links what the fragments above added to CLI_LIBS.
include src/cli/build.mk

.PHONY: all-targets
all-targets: $(ALL)

# Every suite is a script that prints PASS/FAIL/SKIP lines; tests/run-all.sh
# counts them and prints the closing line.
test: deps
	@$(MAKE) --no-print-directory all $(TEST_DEPS)
	@tests/run-all.sh $(TEST_SUITES)

# The README's main job: a short demo (scripts/demo.sh).
.PHONY: demo
demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh

clean:
	rm -rf $(B) $(CLEAN_EXTRA)

$(B):
	@mkdir -p $@

# The README's commands: each installs the Debian packages it needs first.
.PHONY: deps
deps:
	@scripts/install-deps.sh
