#!/usr/bin/env bash
# Runs specs under valgrind and fails on any memory error and on any definite,
# indirect or possible leak anywhere in the process (the core, libcurl, OpenSSL, Lua).
# Memory still reachable at exit (library globals) is not a leak and is not counted.
#
#   scripts/valgrind-specs.sh SPEC...   those specs only
#   scripts/valgrind-specs.sh           every spec, then the C driver (make valgrind)
#   scripts/valgrind-specs.sh --driver  the C driver only
#
# The driver, tests/core_driver, is a Lua 5.4 host linked with the core's objects that
# runs tests/core_driver.lua (HTTP and HTTPS against the mocks, headers, queries,
# Retry-After, the limiter, signing, webhook checks) and then frees everything,
# libcurl's and OpenSSL's globals included. Under valgrind it must end with "All heap
# blocks were freed -- no leaks are possible": stricter than the specs, where lua5.4
# keeps libcurl and OpenSSL loaded, with their globals, until the process ends.
set -uo pipefail
cd "$(dirname "$0")/.."
make -s BUILD=build/lua5.4 >/dev/null || exit 1
log=$(mktemp "${TMPDIR:-/tmp}/audience-valgrind.XXXXXX")
trap 'rm -f "$log"' EXIT

run_specs() {
  AUDIENCE_UNDER_VALGRIND=1 valgrind --quiet --leak-check=full \
    --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible \
    --error-exitcode=99 --num-callers=40 --log-file="$log" \
    lua5.4 /usr/bin/busted -o utfTerminal "$@"
  local status=$?
  if [ "$status" -eq 99 ] || [ -s "$log" ]; then
    echo "valgrind found memory errors or leaks:"
    cat "$log"
    return 1
  fi
  [ "$status" -eq 0 ] || { echo "specs failed under valgrind (exit $status)"; return "$status"; }
  echo "valgrind: no memory error, no leak"
}

# Every leak kind counts here, "still reachable" included, and the summary line must
# say so in valgrind's own words.
run_driver() {
  local driver=build/lua5.4/tests/core_driver
  make -s BUILD=build/lua5.4 "$driver" >/dev/null || return 1
  AUDIENCE_UNDER_VALGRIND=1 LUA_PATH="lua/?.lua;lua/?/init.lua;spec/?.lua;;" \
    valgrind --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all \
    --error-exitcode=99 --num-callers=40 --log-file="$log" \
    "$driver" tests/core_driver.lua
  local status=$?
  if [ "$status" -ne 0 ] || ! grep -q 'All heap blocks were freed -- no leaks are possible' "$log"; then
    echo "valgrind: the C driver failed (exit $status) or left memory in use:"
    cat "$log"
    return 1
  fi
  # valgrind's own lines: "in use at exit: 0 bytes", "All heap blocks were freed -- ..."
  grep -E 'in use at exit|All heap blocks were freed|ERROR SUMMARY' "$log" |
    sed 's/^==[0-9]*== /valgrind (core driver): /'
}

case "${1:-}" in
  --driver) run_driver ;;
  # Both, whatever the first gives: they judge different things.
  "")
    run_specs; specs=$?
    run_driver; driver=$?
    [ "$specs" -eq 0 ] && [ "$driver" -eq 0 ] ;;
  *) run_specs "$@" ;;
esac
