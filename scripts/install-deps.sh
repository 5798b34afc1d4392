#!/usr/bin/env bash
# Installs the Debian packages audience needs to build, run, test and benchmark.
# Safe to run again: it only calls apt-get when something is missing.
set -euo pipefail

PACKAGES=(
  gcc make pkg-config
  lua5.4 liblua5.4-dev liblua5.1-0-dev lua-cjson
  luajit2 libluajit2-5.1-dev
  libcurl4-openssl-dev libssl-dev libhiredis-dev redis-server
  nginx libnginx-mod-http-lua
  lua-argparse lua-busted lua-socket lua-sec lua-check lua-ldoc luarocks openssl
  valgrind clang libclang-rt-14-dev cppcheck
  nodejs locales
  libhttp-parser-dev wrk
)

here="$(cd "$(dirname "$0")" && pwd)"
# Prism (npm), for the spec that validates the Systeme.io mock against its OpenAPI document.
install_prism() { bash "$here/install-prism.sh" >/dev/null; }

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Debian ships npm apart from nodejs; some nodejs builds bring their own npm instead,
# and Debian's npm package would conflict with those.
command -v npm >/dev/null 2>&1 || missing+=(npm)
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# spec/json_locale_spec.lua runs the JSON code under a locale whose decimal point is a
# comma; it fails rather than skip when that locale is missing, so make sure it exists.
ensure_comma_locale() {
  if locale -a 2>/dev/null | grep -qix 'de_DE\.utf-\?8'; then return 0; fi
  echo "install-deps: generating the de_DE.UTF-8 locale"
  if grep -q '^# *de_DE\.UTF-8 UTF-8' /etc/locale.gen 2>/dev/null; then
    $SUDO sed -i 's/^# *de_DE\.UTF-8 UTF-8/de_DE.UTF-8 UTF-8/' /etc/locale.gen
  elif ! grep -q '^de_DE\.UTF-8 UTF-8' /etc/locale.gen 2>/dev/null; then
    echo 'de_DE.UTF-8 UTF-8' | $SUDO tee -a /etc/locale.gen >/dev/null
  fi
  $SUDO locale-gen >/dev/null
  locale -a | grep -qix 'de_DE\.utf-\?8' || { echo "install-deps: de_DE.UTF-8 is still missing"; exit 1; }
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  ensure_comma_locale
  install_prism
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
# Package scripts must not start a system-wide nginx on port 80: tests start their own.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod +x "$policy"
  created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then $SUDO rm -f "$policy"; fi; ensure_locale; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
ensure_comma_locale
install_prism
