#!/usr/bin/env bash
# Runs specs under valgrind and fails on any memory error and on any definite,
# indirect or possible leak anywhere in the process (the core, libcurl, OpenSSL, Lua).
# Memory still reachable at exit (library globals) is not a leak and is not counted.
set -uo pipefail
cd "$(dirname "$0")/.."
make -s BUILD=build/lua5.4 >/dev/null || exit 1
log=$(mktemp "${TMPDIR:-/tmp}/audience-valgrind.XXXXXX")
trap 'rm -f "$log"' EXIT
AUDIENCE_UNDER_VALGRIND=1 valgrind --quiet --leak-check=full \
  --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible \
  --error-exitcode=99 --num-callers=40 --log-file="$log" \
  lua5.4 /usr/bin/busted -o utfTerminal "$@"
status=$?
if [ "$status" -eq 99 ] || [ -s "$log" ]; then
  echo "valgrind found memory errors or leaks:"
  cat "$log"
  exit 1
fi
[ "$status" -eq 0 ] || { echo "specs failed under valgrind (exit $status)"; exit "$status"; }
echo "valgrind: no memory error, no leak"
