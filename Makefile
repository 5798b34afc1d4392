# audience — build, install and test.
#   make                      build the C core for Lua 5.4  -> build/lua5.4/audience/core.so
#   make LUA=luajit           build the C core for LuaJIT   -> build/luajit/audience/core.so
#   make install [PREFIX=..]  install the Lua modules and the core for $(LUA)
#   make install-luajit       the same for LuaJIT
#   make test                 run the whole test suite (ends with "tests: N passed, N failed")
#   make deps                 install the Debian packages the project needs (root)
#   make examples             run examples/ against the bundled mock servers
#   make docs                 the API reference from the LDoc comments -> build/docs
#   make asan                 every spec against an ASan + UBSan build of the core (build/asan)
#   make valgrind             every spec, and the C driver tests/core_driver, under valgrind
#   make fuzz [FUZZ_SECONDS=60]  each libFuzzer target in fuzz/ for FUZZ_SECONDS (clang);
#                             FUZZ_SECONDS=0 replays the corpora without fuzzing

LUA        ?= lua5.4
PREFIX     ?= /usr/local
CC         ?= cc
PKG_CONFIG ?= pkg-config

ifeq ($(LUA),luajit)
  LUA_PC      ?= luajit
  LUA_VERSION ?= 5.1
else
  LUA_PC      ?= $(LUA)
  LUA_VERSION ?= $(patsubst lua%,%,$(LUA))
endif

# Recursive (=) on purpose: `make deps install` must ask pkg-config only after deps
# has installed it. The rockspec passes LUA_INCDIR; by hand we ask pkg-config.
ifdef LUA_INCDIR
  LUA_CFLAGS = -I$(LUA_INCDIR)
else
  LUA_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(LUA_PC))
endif
# hiredis: the Redis-backed limiter (store_redis.c).
CURL_CFLAGS   = $(shell $(PKG_CONFIG) --cflags libcurl libcrypto hiredis)
CURL_LIBS     = $(shell $(PKG_CONFIG) --libs libcurl libcrypto hiredis)

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS   ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_POSIX_C_SOURCE=200809L -fPIC $(WARN) $(CFLAGS) $(LUA_CFLAGS) $(CURL_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS  ?=
ALL_LDFLAGS = -shared $(LDFLAGS) $(EXTRA_LDFLAGS)

BUILD    ?= build/$(LUA)
SOURCES  := $(wildcard src/*.c)
OBJECTS  := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(SOURCES))
CORE     := $(BUILD)/audience/core.so

INST_LUADIR ?= $(PREFIX)/share/lua/$(LUA_VERSION)
INST_LIBDIR ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
INST_BINDIR ?= $(PREFIX)/bin

.PHONY: all install install-luajit uninstall test deps examples clean dist docs

all: $(CORE)

$(BUILD)/obj/%.o: src/%.c $(wildcard src/*.h) | $(BUILD)/obj
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(CORE): $(OBJECTS) | $(BUILD)/audience
	$(CC) $(ALL_LDFLAGS) -o $@ $(OBJECTS) $(CURL_LIBS) -lpthread

$(BUILD)/obj $(BUILD)/audience:
	mkdir -p $@

# Every module under lua/audience, whatever folders it is split into. The command's
# first line names the interpreter it was installed for, so that after install-luajit it
# runs under LuaJIT and finds the LuaJIT build of the core.
LUA_MODULES := $(shell find lua/audience -name '*.lua' | sort)
LUA_INTERPRETER ?= $(LUA)

install: $(CORE)
	install -d $(DESTDIR)$(INST_LIBDIR)/audience $(DESTDIR)$(INST_BINDIR)
	for f in $(LUA_MODULES); do \
	  install -D -m 644 "$$f" "$(DESTDIR)$(INST_LUADIR)/$${f#lua/}" || exit 1; \
	done
	install -m 755 $(CORE) $(DESTDIR)$(INST_LIBDIR)/audience/core.so
	case "$(LUA_INTERPRETER)" in /*) shebang="$(LUA_INTERPRETER)";; *) shebang="/usr/bin/env $(LUA_INTERPRETER)";; esac; \
	  sed "1s|^#!.*|#!$$shebang|" bin/audience > $(BUILD)/audience.bin
	install -m 755 $(BUILD)/audience.bin $(DESTDIR)$(INST_BINDIR)/audience

# The same sources for LuaJIT (OpenResty, luajit): share/lua/5.1 and lib/lua/5.1.
install-luajit:
	$(MAKE) LUA=luajit install

uninstall:
	rm -rf $(DESTDIR)$(INST_LUADIR)/audience $(DESTDIR)$(INST_LIBDIR)/audience
	rm -f $(DESTDIR)$(INST_BINDIR)/audience

deps:
	bash scripts/install-deps.sh

test:
	bash scripts/test.sh

examples: all
	bash scripts/run-examples.sh

clean:
	rm -rf build

# `make docs`: the API reference, from the LDoc comments (config.ld), in build/docs.
# Any warning fails it.
docs:
	rm -rf build/docs
	ldoc --fatalwarnings --testing .

# ---- release --------------------------------------------------------------------
# `make dist [DIST_URL=https://host/path]`: build/dist/audience-VERSION.tar.gz from the
# committed tree, and the rockspec whose source is that tarball (its md5 included): the
# address it is published at, or without DIST_URL the local file, so that
# `luarocks build build/dist/audience-VERSION-1.rockspec` works offline.
VERSION  := $(patsubst audience-%-1.rockspec,%,$(wildcard audience-*-1.rockspec))
DIST     := build/dist
DIST_URL ?= file://$(abspath $(DIST))
DIST_TAR := $(DIST)/audience-$(VERSION).tar.gz
DIST_ROCKSPEC := $(DIST)/audience-$(VERSION)-1.rockspec

dist:
	mkdir -p $(DIST)
	git archive --format=tar.gz --prefix=audience-$(VERSION)/ -o $(DIST_TAR) HEAD
	md5=$$(md5sum $(DIST_TAR) | cut -d' ' -f1); \
	url=$(DIST_URL)/audience-$(VERSION).tar.gz; \
	sed -e "s|^  url = \".*\",|  url = \"$$url\",\n  md5 = \"$$md5\",|" \
	  audience-$(VERSION)-1.rockspec > $(DIST_ROCKSPEC)
	grep -q '^  md5 = ' $(DIST_ROCKSPEC)
	@echo "dist: $(DIST_TAR) $(DIST_ROCKSPEC)"

# ---- memory safety and fuzzing ------------------------------------------------------

.PHONY: asan valgrind driver fuzz fuzz-build

asan:
	bash scripts/asan-specs.sh

valgrind:
	bash scripts/valgrind-specs.sh

# A Lua 5.4 host linked with the core's objects, so that under valgrind the process can
# end with nothing allocated (see tests/core_driver.c). Lua 5.4 only.
LUA_LIBS = $(shell $(PKG_CONFIG) --libs $(LUA_PC))
DRIVER   := $(BUILD)/tests/core_driver

driver: $(DRIVER)

$(DRIVER): tests/core_driver.c $(OBJECTS) | $(BUILD)/tests
	$(CC) $(filter-out -fPIC,$(ALL_CFLAGS)) $(LDFLAGS) -o $@ $< $(OBJECTS) $(LUA_LIBS) $(CURL_LIBS) -lpthread -lm

$(BUILD)/tests:
	mkdir -p $@

# libFuzzer targets, one per parser or builder of the core. Each links the plain C
# modules it exercises (never the Lua bindings), built here with the fuzzer's own
# instrumentation. fuzz/run.sh runs them on a copy of fuzz/corpus/ under build/.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_BUILD   ?= build/fuzz
FUZZ_TARGETS := headers retry_after number url_query sign_input decode webhook_verify json http1 rl_state redis_reply
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS   = -std=c11 -D_POSIX_C_SOURCE=200809L $(WARN) -g -O1 -fno-omit-frame-pointer \
               $(FUZZ_SAN) $(CURL_CFLAGS) -Isrc
FUZZ_CORE    := buf headers http1 url retry number encoding sign crypto ratelimit json redis_codec redis_cas clock
FUZZ_OBJECTS := $(patsubst %,$(FUZZ_BUILD)/core/%.o,$(FUZZ_CORE))
# The HTTP/1.1 target runs libhttp-parser on the same bytes as a reference.
FUZZ_LIBS_http1 := -lhttp_parser
FUZZ_BINS    := $(patsubst %,$(FUZZ_BUILD)/fuzz_%,$(FUZZ_TARGETS))

$(FUZZ_BUILD)/core/%.o: src/%.c $(wildcard src/*.h) | $(FUZZ_BUILD)/core
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz.h $(FUZZ_OBJECTS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJECTS) $(CURL_LIBS) $(FUZZ_LIBS_$*) -lm

$(FUZZ_BUILD)/core:
	mkdir -p $@

# Otherwise make deletes them as intermediates and rebuilds them every time.
.SECONDARY: $(FUZZ_OBJECTS)

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	bash fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# ---- benchmarks ---------------------------------------------------------------------
# `make bench`: the workloads of README "Performance" against local nginx servers it
# starts and stops itself. Builds the Lua 5.4 core and the C floor (bench/floor.c, with
# this project's flags, libcurl and the Lua 5.4 library), then runs bench/run.lua.

.PHONY: bench

bench:
	$(MAKE) --no-print-directory LUA=lua5.4 BUILD=build/lua5.4 all
	mkdir -p build/bench
	$(CC) -std=c11 -D_POSIX_C_SOURCE=200809L $(WARN) $(CFLAGS) $(EXTRA_CFLAGS) \
	  $$($(PKG_CONFIG) --cflags lua5.4 libcurl) -o build/bench/floor bench/floor.c \
	  $$($(PKG_CONFIG) --libs lua5.4 libcurl) $(LDFLAGS)
	lua5.4 bench/run.lua
