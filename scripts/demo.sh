#!/usr/bin/env bash
# The usnet demo (`make demo`): `usnet demo` runs a stock server from Debian
# (nginx) unmodified under `usnet run`, in two private network namespaces
# joined by a veth pair, drives it with curl on the kernel's stack and prints
# what happened.  Needs root.  Options go to usnet demo (see --help).
set -u
cd "$(dirname "$0")/.."
if [ ! -x build/usnet ]; then
	echo "demo: build/usnet is not built (run make)" >&2
	exit 1
fi
exec build/usnet demo "$@"
