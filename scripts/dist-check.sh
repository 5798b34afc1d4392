#!/usr/bin/env bash
# Checks the release as a user gets it: `make dist`, then, in the unpacked tarball and
# with no network, `luarocks make` into a private tree, then the installed module and the
# installed command against the bundled Systeme.io mock.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/audience-dist.XXXXXX")
trap 'rm -rf "$work"' EXIT

make -s dist
version=$(sed -n 's/^version = "\(.*\)-1"$/\1/p' build/dist/audience-*-1.rockspec)
tar -xzf "build/dist/audience-$version.tar.gz" -C "$work"
(cd "$work/audience-$version" && luarocks --lua-version=5.4 make --tree="$work/tree" >"$work/luarocks.log" 2>&1) ||
  { cat "$work/luarocks.log"; exit 1; }

tree=$work/tree
export LUA_PATH="$tree/share/lua/5.4/?.lua;$tree/share/lua/5.4/?/init.lua;;"
export LUA_CPATH="$tree/lib/lua/5.4/?.so;;"
script='local a = require "audience"
  assert(package.searchpath("audience.core", package.cpath):find(os.getenv("TREE"), 1, true), "core not from the tree")
  local s = a.systeme{ api_key = os.getenv "SYSTEME_API_KEY", base_url = os.getenv "SYSTEME_BASE_URL" }
  local n = 0
  for _ in s.contacts:each{} do n = n + 1 end
  assert(n == 25, "expected 25 contacts, got " .. n)'
TREE=$tree lua5.4 scripts/with-mock.lua --seed=25 --key=k systeme "lua5.4 -e '$script'"
out=$(lua5.4 scripts/with-mock.lua --seed=3 --key=k systeme \
  "$tree/bin/audience systeme contacts list --json --no-progress")
lines=$(printf '%s\n' "$out" | grep -c '"email"')
[ "$lines" -eq 3 ] || { echo "dist-check: the installed command listed $lines contacts, not 3"; exit 1; }
echo "dist-check: audience-$version installs offline and works"
