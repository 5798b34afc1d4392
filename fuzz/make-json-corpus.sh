#!/usr/bin/env bash
# Rebuilds fuzz/corpus/json: every distinct response body the mock servers send while
# the provider specs run (fuzz/json_corpus_helper.lua records those up to 16 KB), plus generated
# texts (spec/support/json_gen.lua, the generator of the differential spec).
# Regression inputs (regression-*) are kept. Needs the Lua 5.4 core built.
set -euo pipefail
cd "$(dirname "$0")/.."
out=fuzz/corpus/json
tmp=$(mktemp -d /tmp/audience-json-corpus.XXXXXXXX)
trap 'rm -rf "$tmp"' EXIT
AUDIENCE_JSON_CORPUS=$tmp lua5.4 /usr/bin/busted --helper=fuzz/json_corpus_helper.lua \
  spec/systeme_spec.lua spec/systeme_paging_spec.lua spec/creamailer_spec.lua \
  spec/subscribeflow_spec.lua spec/helpers_spec.lua spec/faults_spec.lua \
  spec/hostile_input_spec.lua spec/retry_spec.lua >/dev/null
lua5.4 - "$tmp" <<'LUA'
package.path = "spec/?.lua;" .. package.path
local docs = require("support.json_gen").documents(20240601, 80)
for i, d in ipairs(docs) do
  local f = assert(io.open(arg[1] .. ("/gen-%03d"):format(i), "wb"))
  f:write(d)
  f:close()
end
LUA
mkdir -p "$out"
find "$out" -maxdepth 1 -type f ! -name 'regression-*' -delete
cp "$tmp"/* "$out"/
echo "fuzz/corpus/json: $(ls "$out" | wc -l) inputs"
