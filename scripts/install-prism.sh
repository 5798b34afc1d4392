#!/usr/bin/env bash
# Installs Prism (the OpenAPI validating proxy, npm @stoplight/prism-cli 5.x) into a
# cache folder, once; spec/prism_systeme_spec.lua runs it between the client and the
# Systeme.io mock. Prints the path of the prism executable.
#   AUDIENCE_PRISM_DIR   where to install (default ~/.cache/audience-prism)
set -euo pipefail

VERSION="${AUDIENCE_PRISM_VERSION:-5.16.0}"
DIR="${AUDIENCE_PRISM_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/audience-prism}"
BIN="$DIR/node_modules/.bin/prism"

installed_version() {
  [ -x "$BIN" ] || return 1
  node -e 'process.stdout.write(require(process.argv[1]).version)' \
    "$DIR/node_modules/@stoplight/prism-cli/package.json" 2>/dev/null
}

mkdir -p "$DIR"
# Several test runs may share the cache: one installs, the others wait for it.
exec 9>"$DIR/.lock"
flock 9
if [ "$(installed_version || true)" != "$VERSION" ]; then
  command -v npm >/dev/null || { echo "install-prism: npm is missing (apt-get install npm)" >&2; exit 1; }
  # A private package.json keeps npm from walking up into some other project.
  [ -f "$DIR/package.json" ] || printf '{ "name": "audience-prism", "private": true }\n' >"$DIR/package.json"
  # Into a fresh folder first, so that an interrupted install never leaves a half one.
  tmp="$(mktemp -d "$DIR/.install.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  cp "$DIR/package.json" "$tmp/"
  npm install --prefix "$tmp" --no-audit --no-fund --loglevel=error \
    "@stoplight/prism-cli@$VERSION" >&2
  rm -rf "$DIR/node_modules"
  mv "$tmp/node_modules" "$DIR/node_modules"
fi
echo "$BIN"
