#!/usr/bin/env bash
# Runs every example against the bundled mock servers, with the installed audience
# module when there is one (after `make install`), else with the one in this tree
# (always the tree's with AUDIENCE_TREE=1).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${AUDIENCE_TREE:-0}" = 1 ] || ! lua5.4 -e 'require "audience"' 2>/dev/null; then
  export LUA_PATH="$PWD/lua/?.lua;$PWD/lua/?/init.lua;;"
  export LUA_CPATH="$PWD/build/lua5.4/?.so;;"
fi
run() { echo "== $2"; lua5.4 scripts/with-mock.lua --seed=25 "$1" "lua5.4 $2"; }
for example in examples/systeme_*.lua; do run systeme "$example"; done
for example in examples/creamailer_*.lua; do run creamailer "$example"; done
echo "== examples/creamailer_subscribers.lua (v2)"
lua5.4 scripts/with-mock.lua creamailer "CREAMAILER_VERSION=2 lua5.4 examples/creamailer_subscribers.lua"
for example in examples/subscribeflow_*.lua; do run subscribeflow "$example"; done
for example in examples/nightly_export.lua examples/csv_import.lua examples/tag_by_purchase.lua; do
  run systeme "$example"
done
run creamailer examples/list_sync.lua
echo "== examples/webhook_test_delivery.lua"
lua5.4 examples/webhook_test_delivery.lua
echo "examples: all ran"
