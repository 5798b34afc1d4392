-- The sans-I/O Redis binding: core.redis_codec (hiredis's formatter and reader behind
-- size limits) and core.redis_quota's runs, the compare-and-swap of src/redis_cas.c as
-- bytes to send and replies to feed, with no socket at all.
local core = require "audience.core"

local function reply_of(bytes, limits)
  local c = core.redis_codec(limits)
  local ok, err = c:feed(bytes)
  if not ok then return nil, err end
  return c:next_reply()
end

describe("core.redis_codec", function()
  it("formats a command in the protocol's form, binary-safe", function()
    local c = core.redis_codec()
    assert.equal("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\na\0b\r\n", c:format({ "SET", "k", "a\0b" }))
    assert.equal("*1\r\n$0\r\n\r\n", c:format({ "" }))
  end)

  it("refuses what is not a command", function()
    local c = core.redis_codec()
    assert.has_error(function() c:format({}) end)
    assert.has_error(function() c:format({ "GET", 1 }) end, nil)
    assert.has_error(function() c:format("GET") end)
  end)

  it("parses every kind of reply", function()
    assert.equal("foo", reply_of("$3\r\nfoo\r\n"))
    assert.equal("", reply_of("$0\r\n\r\n"))
    assert.equal(42, reply_of(":42\r\n"))
    assert.equal(-7, reply_of(":-7\r\n"))
    assert.is_false(reply_of("$-1\r\n"))
    assert.is_false(reply_of("*-1\r\n"))
    assert.same({ status = "OK" }, reply_of("+OK\r\n"))
    assert.same({ err = "NOSCRIPT No matching script" }, reply_of("-NOSCRIPT No matching script\r\n"))
    assert.same({ n = 0 }, reply_of("*0\r\n"))
  end)

  it("parses nested arrays", function()
    local r = reply_of("*3\r\n:1\r\n*2\r\n$1\r\na\r\n*1\r\n+x\r\n$-1\r\n")
    assert.same({ n = 3, 1, { n = 2, "a", { n = 1, { status = "x" } } }, false }, r)
  end)

  it("refuses nesting deeper than hiredis's 7 levels", function()
    local r, err = reply_of(("*1\r\n"):rep(9) .. ":1\r\n")
    assert.is_nil(r)
    assert.matches("^redis: protocol error", err)
  end)

  it("gives each reply once it is whole, fed one byte at a time", function()
    local pieces = { "*2\r\n$5\r\nhello\r\n:9\r\n", "+PONG\r\n", "-ERR bad\r\n", "$4\r\n\r\n\r\n\r\n" }
    local stream, ends = table.concat(pieces), {}
    for i, p in ipairs(pieces) do ends[i] = (ends[i - 1] or 0) + #p end
    local c = core.redis_codec()
    local got = {}
    for i = 1, #stream do
      assert.is_true(c:feed(stream:sub(i, i)))
      local r = c:next_reply()
      if r ~= nil then got[#got + 1] = { at = i, reply = r } end
    end
    assert.same({
      { at = ends[1], reply = { n = 2, "hello", 9 } },
      { at = ends[2], reply = { status = "PONG" } },
      { at = ends[3], reply = { err = "ERR bad" } },
      { at = ends[4], reply = "\r\n\r\n" },
    }, got)
    assert.is_nil(c:next_reply())
    assert.equal(0, c:pending())
  end)

  it("says a protocol error, and stays broken after it", function()
    local c = core.redis_codec()
    assert.is_true(c:feed("?what\r\n"))
    local r, err = c:next_reply()
    assert.is_nil(r)
    assert.matches("^redis: protocol error", err)
    local ok, again = c:feed("+OK\r\n")
    assert.is_nil(ok)
    assert.is_string(again)
    for _, bad in ipairs({ ":12x\r\n", "$abc\r\n", "*x\r\n" }) do
      local v, e = reply_of(bad)
      assert.is_nil(v, bad)
      assert.matches("^redis: protocol error", e, 1, false, bad)
    end
  end)

  it("bounds the bytes waiting for a reply, arrays and strings", function()
    local c = core.redis_codec{ max_buffer = 16 }
    assert.is_true(c:feed("$100\r\n0123456789"))
    local ok, err = c:feed("0123456789")
    assert.is_nil(ok)
    assert.equal("redis: a reply of more than 16 bytes is over the limit", err)

    local r, aerr = reply_of("*3\r\n:1\r\n:2\r\n:3\r\n", { max_elements = 2 })
    assert.is_nil(r)
    assert.equal("redis: a reply array of 3 elements is over the limit", aerr)
    assert.same({ n = 2, 1, 2 }, reply_of("*2\r\n:1\r\n:2\r\n", { max_elements = 2 }))

    local s, serr = reply_of("$5\r\nhello\r\n", { max_string = 4 })
    assert.is_nil(s)
    assert.equal("redis: a reply string of 5 bytes is over the limit", serr)
    -- A huge claim is refused before anything is allocated for it.
    local big, berr = reply_of("*2000000000\r\n")
    assert.is_nil(big)
    assert.matches("over the limit", berr)
  end)

  it("checks its limits", function()
    assert.has_error(function() core.redis_codec{ max_buffer = 0 } end)
    assert.has_error(function() core.redis_codec{ max_string = 1.5 } end)
    assert.has_error(function() core.redis_codec("big") end)
  end)
end)

describe("core.redis_quota runs", function()
  local codec = core.redis_codec()
  local function parse(bytes)
    local c = core.redis_codec()
    assert(c:feed(bytes))
    local r = c:next_reply()
    assert.equal(0, c:pending())
    return r
  end
  local function command(bytes)
    -- A command is an array of bulk strings: the reader parses it like a reply.
    local t = parse(bytes)
    t.n = nil
    return t
  end

  it("needs no setup without password or database, AUTH then SELECT otherwise", function()
    assert.is_nil(core.redis_quota("redis://127.0.0.1:6379", "a"):setup())
    local run, bytes = core.redis_quota("redis://u:p%40ss@127.0.0.1/2", "a"):setup()
    assert.equal(codec:format({ "AUTH", "u", "p@ss" }) .. codec:format({ "SELECT", "2" }), bytes)
    assert.equal("more", run:feed("+OK\r\n"))
    assert.equal("done", run:feed("+OK\r\n"))
    local run2 = core.redis_quota("redis://:secret@127.0.0.1", "a"):setup()
    local kind, msg = run2:feed("-WRONGPASS invalid username-password pair\r\n")
    assert.equal("error", kind)
    assert.equal("redis: AUTH rejected: WRONGPASS invalid username-password pair", msg)
  end)

  it("GET, then EVALSHA; NOSCRIPT falls back to EVAL; a lost race starts over", function()
    local q = core.redis_quota("redis://127.0.0.1", "acct", { ttl = 60 })
    local run, bytes = q:run("acquire", 1000, nil, nil, true)
    assert.same({ "GET", "audience:rl:acct" }, command(bytes))
    local kind, swap = run:feed("$-1\r\n")
    assert.equal("send", kind)
    local args = command(swap)
    assert.equal("EVALSHA", args[1])
    assert.equal("1", args[3])
    assert.equal("audience:rl:acct", args[4])
    assert.equal("", args[5])
    assert.equal("ARL4", args[6]:sub(1, 4))
    assert.equal(116, #args[6])
    assert.equal("60", args[7])
    local k2, eval = run:feed("-NOSCRIPT No matching script\r\n")
    assert.equal("send", k2)
    local eargs = command(eval)
    assert.equal("EVAL", eargs[1])
    assert.matches("redis.call", eargs[2], 1, true)
    assert.same({ args[3], args[4], args[5], args[6], args[7] },
      { eargs[3], eargs[4], eargs[5], eargs[6], eargs[7] })
    -- Someone else wrote first: read again, and swap against what is there now.
    local k3, get = run:feed(":0\r\n")
    assert.equal("send", k3)
    assert.same({ "GET", "audience:rl:acct" }, command(get))
    local theirs = args[6]
    local k4, swap2 = run:feed("$116\r\n" .. theirs .. "\r\n")
    assert.equal("send", k4)
    assert.equal(theirs, command(swap2)[5])
    local done, wait = run:feed(":1\r\n")
    assert.equal("done", done)
    assert.is_number(wait)
  end)

  it("a state run only reads; errors come back as \"error\"", function()
    local q = core.redis_quota("redis://127.0.0.1", "acct")
    local run = q:run("state", 1000)
    local kind, st = run:feed("$-1\r\n")
    assert.equal("done", kind)
    assert.is_table(st)
    local run2 = q:run("fail", 1000, nil, nil, true)
    assert.same({ "error", "redis: LOADING Redis is loading the dataset in memory" },
      { run2:feed("-LOADING Redis is loading the dataset in memory\r\n") })
    assert.has_error(function() run2:feed("+OK\r\n") end, "redis run is over")
    local run3 = q:run("observe", 1000, nil, nil, 50, 40, 1060)
    assert.equal("send", (run3:feed("$-1\r\n")))
    assert.same({ "error", "redis: unexpected reply to the swap script" }, { run3:feed("+OK\r\n") })
  end)

  it("a stored budget too small to compute a refill from still gives a finite wait", function()
    local q = core.redis_quota("redis://127.0.0.1", "acct")
    local blob = core.limiter_step(nil, "configure", 1000, 1e-300, 1e300)
    blob = core.limiter_step(blob, "acquire", 1000)
    local run = q:run("acquire", 1000)
    assert.equal("send", (run:feed("$" .. #blob .. "\r\n" .. blob .. "\r\n")))
    local kind, wait = run:feed(":1\r\n")
    assert.equal("done", kind)
    assert.is_true(wait > 0 and wait < math.huge, tostring(wait))
  end)

  it("a reply past the one asked for, or garbage, breaks the run", function()
    local q = core.redis_quota("redis://127.0.0.1", "acct")
    local run = q:run("acquire", 1000)
    local kind, msg = run:feed("$-1\r\n:1\r\n")
    assert.equal("broken", kind)
    assert.equal("redis: more replies than commands", msg)
    local run2 = q:run("acquire", 1000)
    assert.equal("broken", (run2:feed("!!\r\n")))
  end)

  it("checks its arguments and never shows the URL", function()
    assert.has_error(function() core.redis_quota(nil, "a") end)
    assert.has_error(function() core.redis_quota("redis://127.0.0.1", "a", { timout = 1 }) end)
    local ok, err = pcall(core.redis_quota, "redis://:hunter2@127.0.0.1:0", "a")
    assert.is_false(ok)
    assert.matches("bad port", err)
    assert.is_nil(err:find("hunter2", 1, true))
    local q = core.redis_quota("redis://:hunter2@[::1]:7000/4", "a", { timeout = 0.5, connect_timeout = 2 })
    local host, port, pool, timeout, connect_timeout = q:endpoint()
    assert.same({ "::1", 7000, 0.5, 0.5 }, { host, port, timeout, connect_timeout })
    assert.matches("^audience%-redis:::1:7000:4:%x+$", pool)
    assert.is_nil(pool:find("hunter2", 1, true))
    assert.not_equal(pool, select(3, core.redis_quota("redis://:hunter3@[::1]:7000/4", "a"):endpoint()))
    assert.has_error(function() q:run("jump", 1) end)
    assert.has_error(function() q:run("penalize", 1) end)
    q:close()
    assert.has_error(function() q:run("state", 1) end, "redis quota is closed")
    assert.equal("audience.redis_quota", tostring(q))
  end)
end)
