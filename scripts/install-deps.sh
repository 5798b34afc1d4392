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
  lua-busted lua-socket lua-sec lua-check luarocks openssl
  valgrind clang libclang-rt-14-dev cppcheck
  locales
)

# The quota specs run the Redis store under a decimal-comma locale.
ensure_locale() {
  if locale -a 2>/dev/null | grep -qix 'de_DE.utf8'; then return 0; fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo sed -i 's/^# *de_DE.UTF-8 UTF-8/de_DE.UTF-8 UTF-8/' /etc/locale.gen
  grep -q '^de_DE.UTF-8 UTF-8' /etc/locale.gen || echo 'de_DE.UTF-8 UTF-8' | $sudo tee -a /etc/locale.gen >/dev/null
  $sudo locale-gen >/dev/null
}
trap ensure_locale EXIT

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

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
