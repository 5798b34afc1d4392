#!/usr/bin/env bash
# Runs every example against the bundled mock servers, with the installed audience
# module when there is one (after `make install`), else with the one in this tree.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! lua5.4 -e 'require "audience"' 2>/dev/null; then
  export LUA_PATH="$PWD/lua/?.lua;$PWD/lua/?/init.lua;;"
  export LUA_CPATH="$PWD/build/lua5.4/?.so;;"
fi
for example in examples/systeme_*.lua; do
  echo "== $example"
  lua5.4 scripts/with-mock.lua --seed=25 systeme "lua5.4 $example"
done
echo "examples: all ran"
