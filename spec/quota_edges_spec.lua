-- The quota algorithm at its edges: a window that rolled over, attempts that got no
-- answer, header numbers out of range, waits too long to sleep, a clock stepping back,
-- one header-less answer. Each case is run on the memory limiter and on the state blob
-- (core.limiter_step, what ngx:DICT keeps), which must agree.
local audience = require "audience"
local core = require "audience.core"
local mockserver = require "support.mockserver"

local n = 0
local function fresh_account()
  n = n + 1
  return "edges-" .. n .. "-" .. core.random_hex(4)
end

-- The same interface over a blob, the way NgxStore drives it.
local function blob_limiter()
  local self = { blob = nil }
  local function step(op, now, ...)
    local blob, result = core.limiter_step(self.blob, op, now, self.bl, self.bp, ...)
    self.blob = blob
    return result
  end
  function self.configure(_, limit, per, now) self.bl, self.bp = limit, per; step("configure", now) end
  function self.acquire(_, now, probe) return step("acquire", now, probe) end
  function self.observe(_, l, r, reset, now) step("observe", now, l, r, reset) end
  function self.fail(_, sent, now) step("fail", now, sent) end
  function self.penalize(_, until_, now) step("penalize", now, until_) end
  function self.state(_, now) local _, s = core.limiter_step(self.blob, "state", now, self.bl, self.bp) return s end
  return self
end

local KINDS = {
  memory = function() return core.limiter(fresh_account()) end,
  blob = blob_limiter,
}

for kind, new in pairs(KINDS) do
  describe("quota edges (" .. kind .. ")", function()
    it("holds a used-up window after a roll-over until an answer of the new window says when it resets", function()
      local lim = new()
      lim:observe(50, 0, 100, 90)
      assert.is_true(lim:acquire(95) > 4) -- waits for the reset
      -- Rolled over: 50 may go, the 51st must not, though nobody knows the reset yet.
      for i = 1, 50 do assert.equal(0, lim:acquire(100.5), "grant " .. i) end
      assert.is_true(lim:acquire(100.6) > 0, "a 51st request went out into a full window")
      -- The first answer of the new window frees them: it says when to come back.
      lim:observe(50, 0, 160, 100.7)
      local wait = lim:acquire(100.8)
      assert.is_true(wait > 59 and wait < 60, tostring(wait))
    end)

    it("bounds that hold when no answer ever comes", function()
      local lim = new()
      lim:observe(5, 0, 100, 90)
      for _ = 1, 5 do assert.equal(0, lim:acquire(100)) end
      assert.is_true(lim:acquire(101) > 0)
      assert.equal(0, lim:acquire(102.1)) -- held at most AUD_RL_PROBE_HOLD (2 s)
    end)

    it("spends nothing on attempts that got no answer, and frees the probe", function()
      local lim = new()
      -- 20 calls x 3 attempts that could not connect, before any count was known.
      for i = 1, 60 do
        assert.equal(0, lim:acquire(100 + i * 0.01, true), "attempt " .. i)
        lim:fail(false, 100 + i * 0.01)
      end
      assert.equal(0, lim:acquire(101, true))
      lim:observe(50, 40, 130, 101.1)
      assert.equal(40, lim:state(101.1).remaining)
      -- With a known count, a request never sent is given back; one that may have
      -- reached the server stays spent.
      assert.equal(0, lim:acquire(102))
      lim:fail(false, 102)
      assert.equal(40, lim:state(102).remaining)
      assert.equal(0, lim:acquire(102))
      lim:fail(true, 102)
      assert.equal(39, lim:state(102).remaining)
    end)

    it("gives the client budget back for a request never sent", function()
      local lim = new()
      lim:configure(3, 100, 100)
      for _ = 1, 10 do
        assert.equal(0, lim:acquire(100))
        lim:fail(false, 100)
      end
      assert.is_true(math.abs(lim:state(100).tokens - 3) < 1e-9)
    end)

    it("never holds for a reset in the past (a clock ahead of the server's)", function()
      local lim = new()
      -- Every answer's reset is 15 s ago by this clock: the window has rolled.
      for i = 1, 20 do
        local now = 1000 + i
        assert.equal(0, lim:acquire(now, true), "call " .. i)
        lim:observe(50, 50 - i, now - 15, now)
      end
    end)

    it("ignores a lying count: more left than the limit, or absurd numbers", function()
      local lim = new()
      lim:observe(10, 500, 200, 100)
      assert.equal(10, lim:state(100).remaining)
      lim:observe(1e15, -5, 200, 100)
      local s = lim:state(100)
      assert.equal(10, s.limit)
      assert.equal(10, s.remaining)
    end)

    it("keeps a penalty a length of time when the wall clock steps back", function()
      local lim = new()
      lim:penalize(130, 100) -- Retry-After: 30
      local wait = lim:acquire(40) -- the clock stepped back a minute
      assert.is_true(wait > 0 and wait <= 30, tostring(wait))
      assert.equal(0, lim:acquire(40 + wait))
    end)
  end)
end

describe("quota header numbers", function()
  local SYS = { limit = "x-ratelimit-limit", remaining = "x-ratelimit-remaining",
                reset = "x-ratelimit-refill", reset_style = "auto" }
  local now = 1700000000

  it("reads Refill as a delay, a Unix time, or a Unix time in milliseconds", function()
    local _, _, at = core.parse_rate_headers({ ["x-ratelimit-refill"] = "30" }, SYS, now)
    assert.equal(now + 30, at)
    _, _, at = core.parse_rate_headers({ ["x-ratelimit-refill"] = tostring(now + 30) }, SYS, now)
    assert.equal(now + 30, at)
    _, _, at = core.parse_rate_headers({ ["x-ratelimit-refill"] = tostring((now + 30) * 1000) }, SYS, now)
    assert.equal(now + 30, at)
  end)

  it("drops a reset further ahead than a day (a delay of 999999999, a misread stamp)", function()
    for _, v in ipairs({ "999999999", tostring((now + 10 * 86400) * 1000), "-5" }) do
      local _, _, at = core.parse_rate_headers({ ["x-ratelimit-refill"] = v }, SYS, now)
      assert.is_nil(at, v)
    end
  end)

  it("keeps the real Retry-After value: no silent clamp", function()
    assert.equal(999999, core.parse_retry_after("999999", now))
  end)
end)

describe("quota waits in the client", function()
  local m
  setup(function() m = mockserver.start("systeme") end)
  teardown(function() if m then m:stop() end end)
  before_each(function() m:reset() end)

  it("does not sleep a Retry-After past max_wait (default 120 s): rate_limited with the real value", function()
    m:fault{ match = "/api/tags", times = 1, action = { status = 429, headers = { ["Retry-After"] = "999999" } } }
    local c = audience.systeme{ api_key = "test-key", base_url = m.url, rate_limit = { account = fresh_account() } }
    local t0 = core.monotonic()
    local _, err = c.tags:list()
    assert.is_true(core.monotonic() - t0 < 5)
    assert.equal("rate_limited", err.kind)
    assert.equal(999999, err.retry_after)
    -- The next call does not go out either: the account is penalized.
    local _, again = c.tags:list()
    assert.equal("rate_limited", again.kind)
    assert.is_true(again.retry_after > 999990, tostring(again.retry_after))
    assert.equal(1, m:stats().requests)
    c:close()
  end)

  it("sleeps a wait within max_wait, and tells on_wait", function()
    m:fault{ match = "/api/tags", times = 1, action = { status = 429, headers = { ["Retry-After"] = "1" } } }
    local told = {}
    local c = audience.systeme{ api_key = "test-key", base_url = m.url,
      rate_limit = { account = fresh_account(), max_wait = 5, on_wait = function(s) told[#told + 1] = s end } }
    assert(c.tags:list())
    assert.equal(1, #told)
    assert.is_true(told[1] > 0.5 and told[1] <= 1.01, tostring(told[1]))
    c:close()
  end)

  it("turns probing off only after several header-less answers in a row", function()
    local c = audience.systeme{ api_key = "test-key", base_url = m.url, rate_limit = { account = fresh_account() } }
    c:_observe({}) -- one proxy error page
    assert.is_true(c._probe_quota)
    c:_observe({ ["x-ratelimit-limit"] = "10", ["x-ratelimit-remaining"] = "9" })
    for _ = 1, 4 do c:_observe({}) end
    assert.is_true(c._probe_quota)
    c:_observe({})
    assert.is_false(c._probe_quota)
    c:close()
  end)
end)

describe("quota store selection", function()
  local function refusal(store)
    local ok, err = pcall(audience.systeme, { api_key = "test-key", base_url = "http://127.0.0.1:9",
      rate_limit = { store = store } })
    assert.is_false(ok, "expected an error for a store")
    return tostring(err)
  end

  it("never echoes a store URL or its password", function()
    local msg = refusal("rediss://:S3cretPass@cache.example:6380/2")
    assert.matches("TLS to Redis is not supported by this build", msg)
    assert.is_nil(msg:find("S3cretPass", 1, true), msg)
    msg = refusal("memcached://:S3cretPass@cache.example")
    assert.matches("not supported", msg)
    assert.is_nil(msg:find("S3cretPass", 1, true), msg)
    msg = refusal("redis://:S3cretPass@cache.example:99999")
    assert.matches("bad port", msg)
    assert.is_nil(msg:find("S3cretPass", 1, true), msg)
  end)

  it("raises at construction when the file store cannot be opened, naming the path", function()
    local msg = refusal("file:/nonexistent-dir/quota")
    assert.matches("/nonexistent%-dir/quota", msg)
    assert.matches("No such file or directory", msg)
  end)

  it("refuses the file store inside nginx, pointing at ngx:DICT", function()
    local limiter = require "audience.limiter"
    local ok, err = pcall(limiter.new, "systeme:x", { store = "file:/tmp/never-created" }, "ngx")
    assert.is_false(ok)
    assert.matches("ngx:DICT", tostring(err))
    assert.is_nil(io.open("/tmp/never-created"))
  end)
end)

describe("the command's progress line", function()
  it("shows a quota wait: \"waiting for quota, 34 s\"", function()
    local written = {}
    local err = {
      write = function(self, ...)
        for _, s in ipairs({ ... }) do written[#written + 1] = s end
        return self
      end,
      flush = function() end,
    }
    local ctx = { err = err, progress = "plain" }
    local p = require("audience.cli.output").Progress.new(ctx, "import", 10)
    p:add(3)
    ctx.quota_wait(33.2)
    local text = table.concat(written)
    assert.matches("import 3/10 30%%.*, waiting for quota, 34 s\n", text)
    p:finish()
    assert.is_nil(ctx.quota_wait)
  end)

  it("is told by the client: the command's client waits longer and reports it", function()
    local seen
    local ctx = { getenv = function(name) return name == "SYSTEME_API_KEY" and "k" or nil end,
                  quota_wait = function(s) seen = s end }
    local c = require("audience.cli.client").make_client(ctx, "systeme", {})
    assert.is_true(c._rate_limit.max_wait > 3600)
    c._rate_limit.on_wait(12)
    assert.equal(12, seen)
    c:close()
  end)
end)

describe("ngx:DICT store", function()
  it("reads the clock after taking its lock, not before", function()
    -- ngx.now() is cached per event-loop turn; the lock is held by another worker for
    -- 0.5 s. A clock read before the lock would be 0.5 s stale.
    local real, cached = 100.0, 100.0
    local data, busy = {}, 0
    local dict = {
      get = function(_, k) return data[k] end,
      set = function(_, k, v) data[k] = v; return true end,
      add = function(_, k, v)
        if busy > 0 then busy = busy - 1; return false, "exists" end
        data[k] = v
        return true
      end,
      delete = function(_, k) data[k] = nil end,
    }
    local fake = { shared = { q = dict }, now = function() return cached end,
                   update_time = function() cached = real end,
                   sleep = function(s) real = real + s end }
    local saved = rawget(_G, "ngx")
    rawset(_G, "ngx", fake)
    package.loaded["audience.limiter"] = nil
    local ok, err = pcall(function()
      local lim = require("audience.limiter").new("systeme:clock", { store = "ngx:q", limit = 1, per = 1 })
      assert.equal(0, lim:acquire(nil, false))      -- the bucket's one token, at 100.0
      busy = 500                                     -- 500 x ngx.sleep(0.001)
      local wait = lim:acquire(nil, false)
      assert.is_true(math.abs(wait - 0.5) < 0.01, "wait " .. wait .. " (a stale clock gives 1)")
    end)
    rawset(_G, "ngx", saved)
    package.loaded["audience.limiter"] = nil
    assert(ok, err)
  end)
end)
