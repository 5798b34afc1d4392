package = "audience"
version = "0.1.0-1"
source = {
  url = "git+file:///audience",
  tag = "v0.1.0",
}
description = {
  summary = "Email audiences on Systeme.io, Creamailer and SubscribeFlow from Lua, with a C core",
  detailed = [[
audience is one Lua module (Lua 5.4 and LuaJIT/OpenResty) with a C core on libcurl and
OpenSSL: resource tables, paginating iterators, a rate limiter that follows each API's
quota headers, retries with backoff, and typed errors.
Needs lua-cjson at run time (Debian: lua-cjson) and libcurl, libcrypto and hiredis headers
to build (Debian: libcurl4-openssl-dev, libssl-dev, libhiredis-dev).]],
  license = "MIT",
}
-- lua-cjson is required at run time too; it is not listed here so that the rock builds
-- offline against a distribution's lua-cjson, which LuaRocks does not know about.
dependencies = {
  "lua >= 5.1",
}
build = {
  type = "make",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    BUILD = "build/rock",
  },
  install_variables = {
    BUILD = "build/rock",
    INST_LUADIR = "$(LUADIR)",
    INST_LIBDIR = "$(LIBDIR)",
    INST_BINDIR = "$(BINDIR)",
  },
}
