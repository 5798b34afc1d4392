#!/usr/bin/env bash
# The whole test suite. Every stage adds to one count, and the last line is always
#   tests: N passed, N failed
# Stages: C builds (gcc/clang x Lua 5.4/LuaJIT), luacheck, cppcheck, the busted specs
# under Lua 5.4 and again under LuaJIT, the pagination and retry specs under valgrind,
# the C driver under valgrind (nothing left allocated at exit), and, last, the specs
# that load the core in-process against an ASan + UBSan build of it. The fuzz targets are built and their corpora
# replayed, but not fuzzed; make fuzz and make valgrind (every spec under valgrind,
# ~8 min) are left out for time.
# Set AUDIENCE_TEST_QUICK=1 to run only the specs.
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
failures=()
log_dir=$(mktemp -d "${TMPDIR:-/tmp}/audience-test.XXXXXX")
trap 'rm -rf "$log_dir"' EXIT

pass() { passed=$((passed + 1)); echo "ok   - $1"; }
fail() { failed=$((failed + 1)); failures+=("$1"); echo "FAIL - $1"; }

# Runs a command as one counted check, showing its output only when it fails.
check() {
  local name=$1; shift
  if "$@" >"$log_dir/out" 2>&1; then pass "$name"; else fail "$name"; tail -n 40 "$log_dir/out"; fi
}

# Adds a busted run's own counts (errors count as failures).
run_busted() {
  local name=$1; shift
  local out="$log_dir/busted-$name.log"
  "$@" 2>&1 | tee "$out"
  local summary
  summary=$(grep -E '^[0-9]+ success(es)? / [0-9]+ failures? / [0-9]+ errors? / [0-9]+ pending' "$out" | tail -n 1)
  if [ -z "$summary" ]; then
    fail "$name: busted produced no summary"
    return
  fi
  local s f e
  read -r s f e <<<"$(echo "$summary" | sed -E 's#^([0-9]+) success(es)? / ([0-9]+) failures? / ([0-9]+) errors?.*#\1 \3 \4#')"
  passed=$((passed + s))
  failed=$((failed + f + e))
  if [ $((f + e)) -gt 0 ]; then failures+=("$name: $f failures, $e errors"); fi
}

if [ "${AUDIENCE_TEST_QUICK:-0}" != 1 ]; then
  check "build: gcc, Lua 5.4"   make -s BUILD=build/lua5.4
  check "build: gcc, LuaJIT"    make -s LUA=luajit BUILD=build/luajit
  check "build: clang, Lua 5.4" make -s CC=clang BUILD=build/clang-lua5.4
  check "build: clang, LuaJIT"  make -s CC=clang LUA=luajit BUILD=build/clang-luajit
  check "load: LuaJIT" env LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/luajit/?.so;;" \
    luajit -e 'local a = require "audience"; assert(a.systeme{api_key = "k"}); assert(jit)'
  check "luacheck" luacheck -q lua spec scripts examples bench
  check "luacheck: tests/" luacheck -q tests
  check "cppcheck: src/" cppcheck --enable=warning,portability --error-exitcode=1 --inline-suppr src/
  check "fuzz: targets build, corpora replay" make -s fuzz FUZZ_SECONDS=0
  # LDoc says "reading configuration" and "output written"; any other line is a warning.
  check "docs: make docs builds the API reference without a warning" bash -c \
    'out=$(make -s docs 2>&1) || { echo "$out"; exit 1; }; ! grep -v "^reading configuration\|^output written" <<<"$out"'
  check "dist: make dist, then luarocks make offline in the tarball, installs a working module and command" \
    bash scripts/dist-check.sh
else
  check "build: gcc, Lua 5.4" make -s BUILD=build/lua5.4
fi

# Prism validates the Systeme.io mock against its OpenAPI document (prism_systeme_spec);
# installed once into a cache folder, offline afterwards.
check "prism: installed (scripts/install-prism.sh)" bash scripts/install-prism.sh

run_busted "specs (Lua 5.4)" lua5.4 /usr/bin/busted

if [ "${AUDIENCE_TEST_QUICK:-0}" != 1 ]; then
  # OpenResty runs LuaJIT: the same specs against the LuaJIT build of the core.
  run_busted "specs (LuaJIT)" luajit /usr/bin/busted --cpath='build/luajit/?.so'

  check "valgrind: no leak from the core (pagination and retry specs)" bash scripts/valgrind-specs.sh \
    spec/systeme_paging_spec.lua spec/retry_spec.lua
  check "valgrind: C driver frees everything (no leaks are possible)" bash scripts/valgrind-specs.sh --driver
fi

# The ASan + UBSan run comes last, on its own: running it beside the plain specs
# would load both cores and make the timing specs (quota windows) flaky. It leaves out
# the specs whose core runs in other processes (nginx's LuaJIT build, the quota
# workers), which it could not check anyway. One check: a sanitizer report aborts the
# run, often after busted's summary.
if [ "${AUDIENCE_TEST_QUICK:-0}" != 1 ]; then
  mapfile -t asan_specs < <(ls spec/*_spec.lua | grep -v -e '/openresty_spec.lua$' -e '/ngx_transport_spec.lua$' -e '/ngx_tls_spec.lua$' -e '/scale_spec.lua$' -e '/redis_ngx_spec.lua$')
  if bash scripts/asan-specs.sh "${asan_specs[@]}" >"$log_dir/asan.log" 2>&1; then
    pass "ASan + UBSan: the specs that load the core in-process"
  else
    fail "ASan + UBSan: the specs that load the core in-process"
    tail -n 60 "$log_dir/asan.log"
  fi
fi

if [ ${#failures[@]} -gt 0 ]; then
  echo
  echo "Failed:"
  printf '  - %s\n' "${failures[@]}"
fi
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
