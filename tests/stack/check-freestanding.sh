#!/usr/bin/env bash
# Checks that the stack core is freestanding and portable; prints PASS/FAIL/
# SKIP lines.  Run from the repository root after `make` (used by
# `make check-freestanding` and tests/stack/run.sh).
#  1. stack/freestanding-symbols: linked with -nostdlib, the core's only
#     undefined symbols are memcpy, memmove, memset, memcmp.
#  2. stack/no-global-state: no object has writable data (.data/.bss).
#  3. stack/aarch64: the core and its unit tests, cross-built for aarch64,
#     pass under qemu-aarch64-static.
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
B=${B:-build}
ALLOWED="memcpy memmove memset memcmp"
objs=$(ls $B/stack/obj/*.o 2>/dev/null)
if [ -z "$objs" ]; then
    fail stack/freestanding-symbols "no objects in $B/stack/obj (run make first)"
    exit 1
fi
rc=0
so=$B/stack/freestanding-check.so
if ${CC:-gcc} -nostdlib -shared -o "$so" $objs 2>/tmp/stack-fs.$$; then
    bad=""
    for u in $(nm -u "$so" | awk '{print $2}' | sed 's/@.*//' | sort -u); do
        case " $ALLOWED " in *" $u "*) ;; *) bad="$bad $u";; esac
    done
    if [ -z "$bad" ]; then pass stack/freestanding-symbols
    else fail stack/freestanding-symbols "undefined symbols outside [$ALLOWED]:$bad"; rc=1; fi
else
    fail stack/freestanding-symbols "link with -nostdlib failed: $(head -3 /tmp/stack-fs.$$)"; rc=1
fi
rm -f /tmp/stack-fs.$$
writable=""
for o in $objs; do
    sz=$(size -A "$o" | awk '$1 ~ /^\.(data|bss)($|\.)/ && $1 !~ /rel\.ro/ && $2 > 0 {print $1}')
    [ -n "$sz" ] && writable="$writable $(basename "$o"):$(echo $sz | tr ' ' ',')"
done
if [ -z "$writable" ]; then pass stack/no-global-state
else fail stack/no-global-state "writable data in$writable"; rc=1; fi

if ! need_cmd aarch64-linux-gnu-gcc qemu-aarch64-static; then
    skip stack/aarch64 "aarch64-linux-gnu-gcc or qemu-aarch64-static missing (packages gcc-aarch64-linux-gnu, qemu-user-static)"
    exit $rc
fi
out=$B/stack/aarch64
mkdir -p "$out"
bin=$out/test_stack
srcs="src/stack/*.c tests/stack/*.c"
newest=$(ls -t $srcs src/stack/*.h tests/stack/*.h tests/stack/*.def include/usnet/*.h | head -1)
if [ ! -x "$bin" ] || [ "$newest" -nt "$bin" ]; then
    # The core is built freestanding, as on x86-64; the tests are hosted.
    rm -f "$out"/*.o
    if ! (printf '%s\n' src/stack/*.c |
              xargs -P 2 -I{} sh -c 'aarch64-linux-gnu-gcc -std=gnu11 -O2 -Wall -Wextra -Werror -Iinclude \
                  -ffreestanding -c -o "$1/$(basename "$2" .c).o" "$2"' sh "$out" {} || exit 1
          aarch64-linux-gnu-gcc -std=gnu11 -O2 -Wall -Wextra -Werror -Iinclude -Itests/stack -D_GNU_SOURCE \
              -static -o "$bin" tests/stack/*.c "$out"/*.o) 2>/tmp/stack-a64.$$; then
        fail stack/aarch64 "cross build failed: $(head -5 /tmp/stack-a64.$$ | tr '\n' ' ')"
        rm -f /tmp/stack-a64.$$ "$bin"
        exit 1
    fi
    rm -f /tmp/stack-a64.$$
fi
res=$(timeout 300 qemu-aarch64-static "$bin" 2>&1)
st=$?
nfail=$(echo "$res" | grep -c '^FAIL')
npass=$(echo "$res" | grep -c '^PASS')
if [ $st -eq 0 ] && [ "$nfail" -eq 0 ] && [ "$npass" -gt 0 ]; then
    pass stack/aarch64
else
    fail stack/aarch64 "status $st, $npass passed, $nfail failed: $(echo "$res" | grep '^FAIL' | head -3 | tr '\n' ' ')"
    rc=1
fi
exit $rc
