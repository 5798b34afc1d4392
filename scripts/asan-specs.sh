#!/usr/bin/env bash
# Runs the busted specs (all of them, or the files given) against the C core built
# with AddressSanitizer + UndefinedBehaviorSanitizer into build/asan, leak checking
# on. Fails on any failing spec and on any sanitizer report: a memory error or UB
# aborts at once (abort_on_error, halt_on_error, -fno-sanitize-recover), and a leak
# aborts at exit. No LeakSanitizer suppressions are needed today; if one ever is, it
# must be provably not ours (lua5.4, libcurl's global init) and explained there.
#
# gcc, not clang: gcc's runtime is a plain shared library (libasan.so) that can be
# LD_PRELOADed into the stock, uninstrumented lua5.4, as ASan must come first in the
# library list. The mock servers are separate nginx processes and stay uninstrumented.
set -uo pipefail
cd "$(dirname "$0")/.."

CC=${ASAN_CC:-gcc}
BUILD=build/asan
# float-cast-overflow is outside gcc's -fsanitize=undefined, yet the core converts
# doubles from the network (Retry-After, rate headers) to integers.
SAN=address,undefined,float-cast-overflow
CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=$SAN -fno-sanitize-recover=all"
LDFLAGS="-fsanitize=$SAN"

# make only compares timestamps: objects built earlier with other flags would be
# taken as up to date, so the flags used are kept beside them.
stamp="$BUILD/.flags"
if [ "$(cat "$stamp" 2>/dev/null)" != "$CC $CFLAGS" ]; then rm -rf "$BUILD"; fi
make -s CC="$CC" BUILD="$BUILD" CFLAGS="$CFLAGS" LDFLAGS="$LDFLAGS" || exit 1
echo "$CC $CFLAGS" >"$stamp"

# See tests/asan_unpreload.c: keeps the runtime out of nginx, sh and friends.
unpreload="$BUILD/asan_unpreload.so"
if [ ! -e "$unpreload" ] || [ tests/asan_unpreload.c -nt "$unpreload" ]; then
  "$CC" -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -Wmissing-prototypes \
    -shared -fPIC -O1 -o "$unpreload" tests/asan_unpreload.c || exit 1
fi
runtime=$("$CC" -print-file-name=libasan.so)
if [ ! -e "$runtime" ]; then
  echo "asan-specs: $CC has no libasan.so (Debian: libasan8, pulled in by gcc)"
  exit 1
fi

log=$(mktemp "${TMPDIR:-/tmp}/audience-asan.XXXXXX")
trap 'rm -f "$log"' EXIT

# detect_stack_use_after_return: a pointer into a finished C frame (a Lua string
# buffer, a header line) is exactly the bug a binding can make.
LD_PRELOAD="$runtime $PWD/$unpreload" \
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  lua5.4 /usr/bin/busted --cpath="$BUILD/?.so" -o utfTerminal "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# The exit status already tells, but a report printed by a process that then exits
# 0 (a recoverable check, should one ever be configured) must fail the run too.
if grep -qE '^==[0-9]+==ERROR: (Address|Leak)Sanitizer|runtime error:' "$log"; then
  echo "asan-specs: sanitizer report above"
  exit 1
fi
if [ "$status" -ne 0 ]; then
  echo "asan-specs: specs failed or a sanitizer aborted (exit $status)"
  exit "$status"
fi
echo "asan-specs: ASan + UBSan: no memory error, no undefined behaviour, no leak"
