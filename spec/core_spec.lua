-- Tests for the C core (audience.core). HTTP tests run against a small
-- luasocket server started from this file on 127.0.0.1 (port 0, so the
-- kernel picks a free one); it stops on /quit, after 1000 requests or
-- after 60 seconds, whichever comes first.
local core = require "audience.core"

local LUA54 = _VERSION == "Lua 5.4" and math.type ~= nil

local function is_integer(v)
  if LUA54 then return math.type(v) == "integer" end
  return type(v) == "number" and v == math.floor(v)
end

local function errmsg(ok, err)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

describe("audience.core", function()
  it("has a version and reports libcurl", function()
    assert.equal("0.1.0", core._VERSION)
    assert.matches("^libcurl/%d", core.curl_version())
  end)

  describe("isatty", function()
    -- The child writes its answer about its stdout to stderr, which stays a pipe.
    local function in_child(wrap)
      local script = os.tmpname()
      local f = assert(io.open(script, "w"))
      f:write("package.cpath = 'build/' .. (jit and 'luajit' or 'lua5.4') .. '/?.so;' .. package.cpath\n",
        "io.stderr:write(tostring(require('audience.core').isatty(1)))\n")
      f:close()
      local p = assert(io.popen("(" .. wrap((jit and "luajit " or "lua5.4 ") .. script) .. ") 2>&1"))
      local out = p:read("a")
      p:close()
      os.remove(script)
      return out:match("%a+")
    end

    it("is true on a terminal and false on a pipe or a file, without a shell", function()
      assert.equal("true", in_child(function(c) return "script -qec '" .. c .. "' /dev/null" end))
      assert.equal("false", in_child(function(c) return c .. " | cat" end))
      assert.equal("false", in_child(function(c) return c .. " >/dev/null" end))
    end)

    it("refuses what cannot be a descriptor", function()
      assert.matches("file descriptor", errmsg(pcall(core.isatty, -1)))
      assert.matches("number expected", errmsg(pcall(core.isatty, {})))
    end)
  end)

  describe("clock", function()
    it("now is epoch seconds with a fraction", function()
      local t = core.now()
      assert.is_number(t)
      assert.is_true(math.abs(t - os.time()) < 2)
    end)

    it("monotonic never goes back", function()
      local a = core.monotonic()
      local b = core.monotonic()
      assert.is_true(b >= a)
    end)

    it("sleep sleeps about as long as asked", function()
      local t0 = core.monotonic()
      core.sleep(0)
      core.sleep(0.05)
      local dt = core.monotonic() - t0
      assert.is_true(dt >= 0.05 and dt < 1, "slept " .. dt)
    end)

    it("sleep refuses negative, NaN, infinite and non-numbers", function()
      -- called from Lua so both VMs can name the function from the call site
      for _, bad in ipairs({ -1, 0 / 0, math.huge, "soon", {} }) do
        assert.matches("bad argument #1 to 'sleep'",
          errmsg(pcall(function() core.sleep(bad) end)))
      end
      assert.matches("bad argument #1 to 'sleep'", errmsg(pcall(function() core.sleep() end)))
    end)
  end)

  describe("crypto", function()
    it("random_hex gives 2n lowercase hex digits, different each time", function()
      local a, b = core.random_hex(16), core.random_hex(16)
      assert.matches("^[0-9a-f]+$", a)
      assert.equal(32, #a)
      assert.not_equal(a, b)
      assert.equal(2048, #core.random_hex(1024))
      assert.equal(2, #core.random_hex(1))
    end)

    it("random_hex rejects sizes outside 1..1024", function()
      for _, bad in ipairs({ 0, -1, 1025, 2.5, "x" }) do
        assert.matches("bad argument #1", errmsg(pcall(core.random_hex, bad)))
      end
    end)

    it("sha256_hex matches known digests", function()
      assert.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        core.sha256_hex(""))
      assert.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        core.sha256_hex("abc"))
      -- binary safe: the NUL must be hashed, not end the input
      assert.not_equal(core.sha256_hex("a"), core.sha256_hex("a\0b"))
      assert.matches("bad argument #1", errmsg(pcall(core.sha256_hex)))
    end)
  end)

  describe("urlencode", function()
    it("keeps unreserved characters", function()
      local keep = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
      assert.equal(keep, core.urlencode(keep))
    end)

    it("encodes reserved characters with uppercase hex", function()
      assert.equal("%21%2A%27%28%29%3B%3A%40%26%3D%2B%24%2C%2F%3F%23%5B%5D",
        core.urlencode("!*'();:@&=+$,/?#[]"))
      assert.equal("a%20b", core.urlencode("a b"))
      assert.equal("%25", core.urlencode("%"))
    end)

    it("encodes UTF-8 and NUL bytes, binary safe", function()
      assert.equal("caf%C3%A9", core.urlencode("café"))
      assert.equal("a%00b", core.urlencode("a\0b"))
      assert.equal("%FF%80", core.urlencode("\255\128"))
    end)

    it("handles every byte value and long strings", function()
      for b = 0, 255 do
        local c = string.char(b)
        local want = c:match("^[A-Za-z0-9%-%._~]$") and c or string.format("%%%02X", b)
        assert.equal(want, core.urlencode(c))
      end
      local long = string.rep("a/", 5000)
      assert.equal(string.rep("a%2F", 5000), core.urlencode(long))
      assert.equal("", core.urlencode(""))
    end)
  end)

  describe("build_query", function()
    it("is empty for an empty table", function()
      assert.equal("", core.build_query({}))
    end)

    it("sorts keys bytewise", function()
      assert.equal("A=3&a=2&b=1&ba=4", core.build_query({ b = 1, a = 2, A = 3, ba = 4 }))
    end)

    it("repeats array keys in order", function()
      assert.equal("a=0&tags=x&tags=y&tags=1&z=9",
        core.build_query({ z = 9, tags = { "x", "y", 1 }, a = 0 }))
      assert.equal("a=1", core.build_query({ a = 1, empty = {} }))
    end)

    it("prints booleans and numbers", function()
      assert.equal("f=false&t=true", core.build_query({ t = true, f = false }))
      assert.equal("n=5", core.build_query({ n = 5 }))
      assert.equal("n=5", core.build_query({ n = 5.0 }))
      assert.equal("n=-3", core.build_query({ n = -3 }))
      assert.equal("n=2.5", core.build_query({ n = 2.5 }))
      assert.equal("n=0.10000000000000001", core.build_query({ n = 0.1 }))
      assert.equal("n=1.0000000000000001e%2B300", core.build_query({ n = 1e300 }))
      assert.equal("n=1099511627776", core.build_query({ n = 2 ^ 40 }))
      if LUA54 then
        assert.equal("n=9223372036854775807", core.build_query({ n = math.maxinteger }))
      end
    end)

    it("encodes keys and values", function()
      assert.equal("a%20b=c%26d%3De&%C3%A9=%00", core.build_query({ ["a b"] = "c&d=e", ["é"] = "\0" }))
    end)

    it("rejects unsupported values naming the key", function()
      local cases = {
        { { fn = print }, "bad query parameter 'fn' %(string, number, boolean or array expected, got function%)" },
        { { nested = { { 1 } } }, "bad query parameter 'nested' .*got table" },
        { { map = { x = 1 } }, "bad query parameter 'map'" },
        { { nan = 0 / 0 }, "bad query parameter 'nan'" },
        { { inf = math.huge }, "bad query parameter 'inf'" },
        { { [1] = "x" }, "bad query parameter key" },
      }
      for _, case in ipairs(cases) do
        assert.matches(case[2], errmsg(pcall(core.build_query, case[1])))
      end
      assert.matches("bad argument #1", errmsg(pcall(core.build_query, "a=1")))
    end)
  end)

  describe("parse_retry_after", function()
    local now = 1700000000
    local function date(t) return os.date("!%a, %d %b %Y %H:%M:%S GMT", t) end

    it("reads delta-seconds", function()
      assert.equal(120, core.parse_retry_after("120", now))
      assert.equal(5, core.parse_retry_after(" 5 ", now))
      assert.equal(1.5, core.parse_retry_after("1.5", now))
      assert.equal(0, core.parse_retry_after("0", now))
    end)

    it("reads HTTP-dates relative to now", function()
      assert.equal(100, core.parse_retry_after(date(now + 100), now))
      assert.equal(0, core.parse_retry_after(date(now - 100), now))
      local real = core.parse_retry_after(date(os.time() + 30))
      assert.is_true(real > 25 and real <= 30)
    end)

    it("returns nil for garbage, empty and negative values", function()
      for _, bad in ipairs({ "", " ", "soon", "-5", "1.", ".5", "5s", "1e3", "0x10", "12 34", "a\0b" }) do
        assert.is_nil(core.parse_retry_after(bad, now), bad)
      end
      assert.is_nil(core.parse_retry_after(nil))
    end)

    it("caps at a day", function()
      -- The real value goes back to the caller (max_wait decides what is slept);
      -- only absurd ones are capped, to keep the arithmetic finite.
      assert.equal(99999999, core.parse_retry_after("99999999", now))
      assert.equal(1e9, core.parse_retry_after(string.rep("9", 500), now))
      assert.is_true(math.abs(core.parse_retry_after(date(now + 10 * 86400), now) - 10 * 86400) <= 1)
    end)
  end)

  describe("backoff", function()
    it("doubles from base, is capped by max and jittered by r", function()
      assert.equal(0.5, core.backoff(1, 1, 30, 0))
      assert.equal(0.75, core.backoff(1, 1, 30, 0.5))
      assert.equal(2, core.backoff(3, 1, 30, 0))
      assert.equal(15, core.backoff(10, 1, 30, 0))
      assert.equal(15, core.backoff(100000, 1, 30, 0))
      assert.is_true(core.backoff(2, 1, 30, 0.999999) < 2)
    end)

    it("draws r itself when omitted", function()
      for _ = 1, 50 do
        local v = core.backoff(4, 0.5, 30)
        assert.is_true(v >= 2 and v < 4)
      end
    end)

    it("rejects bad arguments", function()
      assert.matches("bad argument #1", errmsg(pcall(core.backoff, 0, 1, 30, 0)))
      assert.matches("bad argument #1", errmsg(pcall(core.backoff, 1.5, 1, 30, 0)))
      assert.matches("bad argument #2", errmsg(pcall(core.backoff, 1, -1, 30, 0)))
      assert.matches("bad argument #4", errmsg(pcall(core.backoff, 1, 1, 30, 2)))
    end)
  end)

  describe("parse_rate_headers", function()
    local names = { limit = "x-ratelimit-limit", remaining = "x-ratelimit-remaining",
      reset = "x-ratelimit-reset" }
    local function with_style(style)
      return { limit = names.limit, remaining = names.remaining, reset = names.reset,
        reset_style = style }
    end

    it("reads limit, remaining and a delta reset", function()
      local l, r, reset = core.parse_rate_headers({ ["x-ratelimit-limit"] = "100",
        ["x-ratelimit-remaining"] = " 42 ", ["x-ratelimit-reset"] = "30" },
        with_style("delta"), 1000)
      assert.equal(100, l)
      assert.equal(42, r)
      assert.equal(1030, reset)
      assert.is_true(is_integer(l) and is_integer(r))
    end)

    it("auto tells epochs from deltas", function()
      local h = { ["x-ratelimit-reset"] = "1700000100" }
      local _, _, reset = core.parse_rate_headers(h, with_style("auto"), 1700000000)
      assert.equal(1700000100, reset)
      h["x-ratelimit-reset"] = "2.5"
      _, _, reset = core.parse_rate_headers(h, names, 1000) -- auto by default
      assert.equal(1002.5, reset)
      _, _, reset = core.parse_rate_headers(h, with_style("epoch"), 1000)
      assert.equal(2.5, reset)
    end)

    it("gives nil for missing, garbage and negative values", function()
      local l, r, reset = core.parse_rate_headers({ ["x-ratelimit-limit"] = "ten",
        ["x-ratelimit-remaining"] = "-1" }, names, 1000)
      assert.is_nil(l)
      assert.is_nil(r)
      assert.is_nil(reset)
      l = core.parse_rate_headers({ ["x-ratelimit-limit"] = "10, 10;w=1" }, names, 1000)
      assert.is_nil(l)
      l, r = core.parse_rate_headers({ ["x-ratelimit-limit"] = "10" }, { limit = "x-ratelimit-limit" })
      assert.equal(10, l)
      assert.is_nil(r)
    end)

    it("rejects a bad reset_style", function()
      assert.matches("reset_style", errmsg(pcall(core.parse_rate_headers, {}, with_style("soon"))))
      assert.matches("bad argument #1", errmsg(pcall(core.parse_rate_headers, nil, names)))
    end)
  end)

  describe("limiter", function()
    local n = 0
    local function account()
      n = n + 1
      return "spec-account-" .. n .. "-" .. core.random_hex(4)
    end

    it("shares one state per account", function()
      local name = account()
      local a, b = core.limiter(name), core.limiter(name)
      local other = core.limiter(account())
      a:configure(1, 10, 100)
      assert.equal(0, a:acquire(100))
      local wait = b:acquire(100)
      assert.is_true(math.abs(wait - 10) < 1e-9, wait)
      assert.equal(0, other:acquire(100))
      a:close(); b:close(); other:close()
    end)

    it("subtracts requests sent before the count was known from the first count", function()
      local lim = core.limiter(account())
      -- Four requests go out before any answer (four workers, each with one probe).
      for _ = 1, 4 do assert.equal(0, lim:acquire(100)) end
      -- The first answer counts its own request; the other three may still be on the way.
      lim:observe(50, 49, 102, 100.1)
      assert.equal(46, lim:state(100.1).remaining)
      -- Later answers of the same window can only lower it.
      lim:observe(50, 47, 102, 100.2)
      assert.equal(46, lim:state(100.2).remaining)
      lim:close()
    end)

    it("lets one request probe an unknown count while the others wait for its answer", function()
      local lim = core.limiter(account())
      assert.equal(0, lim:acquire(100, true))         -- the probe
      local wait = lim:acquire(100.001, true)
      assert.is_true(wait > 0 and wait <= 0.011, wait)
      assert.equal(0, lim:acquire(100.001))           -- callers that do not probe are not held
      lim:observe(10, 9, 102, 100.05)                 -- the probe's answer
      assert.equal(0, lim:acquire(100.06, true))
      local failed = core.limiter(account())
      assert.equal(0, failed:acquire(300, true))
      assert.is_true(failed:acquire(300.01, true) > 0)
      failed:observe(nil, nil, nil, 300.02)            -- the probe failed without an answer
      assert.equal(0, failed:acquire(300.02, true))    -- the next one goes at once
      failed:close()
      local other = core.limiter(account())
      assert.equal(0, other:acquire(200, true))
      assert.equal(0, other:acquire(202.5, true))     -- a probe lost without an answer holds no one for long
      lim:close(); other:close()
    end)

    it("ignores a late answer about a window that has already ended", function()
      local lim = core.limiter(account())
      lim:observe(10, 0, 105, 100)
      assert.is_true(lim:acquire(100) > 0)
      assert.equal(0, lim:acquire(105.5))            -- rolled over: 9 left
      lim:observe(10, 0, 105, 105.6)                 -- stale answer from the old window
      assert.equal(9, lim:state(105.6).remaining)
      lim:observe(10, 8, 108, 105.7)                 -- first answer of the new window
      assert.equal(8, lim:state(105.7).remaining)
      lim:close()
    end)

    it("frees the state with the last reference", function()
      local name = account()
      local a, b = core.limiter(name), core.limiter(name)
      a:configure(5, 1, 100)
      a:close()
      assert.equal(5, b:state(100).budget_limit)
      b:close()
      local c = core.limiter(name)
      assert.is_nil(c:state(100).budget_limit)
      c:close()
    end)

    it("spaces requests at per/limit once the bucket is empty", function()
      local lim = core.limiter(account())
      lim:configure(10, 1, 100)
      for _ = 1, 10 do assert.equal(0, lim:acquire(100)) end
      local wait = lim:acquire(100)
      assert.is_true(math.abs(wait - 0.1) < 1e-9, wait)
      assert.equal(0, lim:acquire(100.1))
      assert.is_true(lim:acquire(100.1) > 0)
      local s = lim:state(101.1)
      assert.equal(10, s.budget_limit)
      assert.equal(1, s.budget_per)
      assert.is_true(math.abs(s.tokens - 10) < 1e-9)
      lim:close()
    end)

    it("keeps the tighter budget", function()
      local lim = core.limiter(account())
      lim:configure(10, 1, 100)
      lim:configure(100, 1, 100)
      assert.equal(10, lim:state(100).budget_limit)
      lim:configure(60, 60, 100)
      local s = lim:state(100)
      assert.equal(60, s.budget_limit)
      assert.equal(60, s.budget_per)
      assert.is_true(s.tokens <= 10, "switching must not refill the bucket")
      lim:close()
    end)

    it("waits for the server window to reset and rolls over", function()
      local lim = core.limiter(account())
      lim:observe(100, 0, 200, 100)
      assert.is_true(math.abs(lim:acquire(100) - 100.01) < 1e-9)
      assert.is_true(math.abs(lim:acquire(150) - 50.01) < 1e-9)
      assert.equal(0, lim:acquire(200))
      local s = lim:state(200)
      assert.equal(99, s.remaining)
      assert.equal(100, s.limit)
      assert.is_nil(s.reset_at)
      lim:close()
    end)

    it("counts remaining down and keeps the lowest count within a window", function()
      local lim = core.limiter(account())
      lim:observe(100, 50, 200, 100)
      lim:observe(100, 60, 200.5, 101) -- same window, older response
      assert.equal(50, lim:state(101).remaining)
      assert.equal(0, lim:acquire(101))
      assert.equal(49, lim:state(101).remaining)
      lim:observe(100, 90, 260, 102) -- new window
      assert.equal(90, lim:state(102).remaining)
      assert.equal(260, lim:state(102).reset_at)
      lim:close()
    end)

    it("does not block on an exhausted window with no known reset", function()
      local lim = core.limiter(account())
      lim:observe(nil, 0, nil, 100)
      assert.equal(0, lim:acquire(100))
      local s = lim:state(100)
      assert.is_nil(s.limit)
      assert.is_nil(s.reset_at)
      lim:close()
    end)

    it("honours penalties and never shortens them", function()
      local lim = core.limiter(account())
      lim:penalize(130, 100)
      lim:penalize(120, 100)
      assert.equal(30, lim:acquire(100))
      assert.equal(130, lim:state(100).blocked_until)
      assert.equal(0, lim:acquire(130))
      assert.is_nil(lim:state(131).blocked_until)
      lim:close()
    end)

    it("reports unknown fields as nil and defaults now", function()
      local lim = core.limiter(account())
      local s = lim:state()
      for _, k in ipairs({ "limit", "remaining", "reset_at", "blocked_until",
        "budget_limit", "budget_per", "tokens" }) do
        assert.is_nil(s[k], k)
      end
      lim:configure(2, 1)
      assert.equal(0, lim:acquire())
      lim:close()
    end)

    it("validates arguments and closes idempotently", function()
      local lim = core.limiter(account())
      assert.matches("bad argument #2", errmsg(pcall(lim.configure, lim, 0, 1)))
      assert.matches("bad argument #3", errmsg(pcall(lim.configure, lim, 1, -1)))
      assert.matches("bad argument #2", errmsg(pcall(lim.observe, lim, "x")))
      assert.matches("bad argument #2", errmsg(pcall(lim.penalize, lim, nil)))
      assert.matches("^audience%.limiter %(0x", tostring(lim))
      lim:close()
      lim:close()
      assert.matches("limiter is closed", errmsg(pcall(lim.acquire, lim)))
      assert.equal("audience.limiter (closed)", tostring(lim))
      assert.matches("bad argument #1", errmsg(pcall(core.limiter)))
    end)
  end)

  describe("http", function()
    -- A select()-based server so parked and keep-alive connections do not
    -- block one another. Every path's behaviour is part of the test.
    local SERVER = [==[
local socket = require "socket"
local server = assert(socket.bind("127.0.0.1", 0))
server:settimeout(0)
local _, port = server:getsockname()
io.stdout:write(port, "\n")
io.stdout:flush()

local deadline = socket.gettime() + 60
local clients, handled, next_id, running = {}, 0, 0, true

local function response(status, headers, body)
  local out = { "HTTP/1.1 " .. status .. "\r\n" }
  for _, h in ipairs(headers) do out[#out + 1] = h .. "\r\n" end
  out[#out + 1] = "Content-Length: " .. #body .. "\r\n\r\n" .. body
  return table.concat(out)
end

local function handle(c, req)
  local path, m = req.path, req.method
  local body = ""
  if path == "/hello" then
    body = response("200 OK", { "Content-Type: text/plain", "X-Multi: a", "X-Multi:  b ",
      "X-Mixed-Case: Yes", "X-Empty:", "X-Conn: " .. c.id }, "hello")
  elseif path == "/echo" then
    local h = req.headers
    body = response("200 OK", {
      "X-Method: " .. m,
      "X-Req-Content-Length: " .. (h["content-length"] or "-"),
      "X-Req-Expect: " .. (h["expect"] or "-"),
      "X-Req-User-Agent: " .. (h["user-agent"] or "-"),
      "X-Req-Custom: " .. (h["x-custom"] or "-"),
      "X-Req-Content-Type: " .. (h["content-type"] or "-"),
      "X-Conn: " .. c.id }, req.body)
  elseif path == "/status/404" then
    body = response("404 Not Found", {}, "nope")
  elseif path == "/empty" then
    body = "HTTP/1.1 204 No Content\r\n\r\n"
  elseif path == "/continue" then
    body = "HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n" ..
      response("200 OK", { "X-Final: 1" }, "ok")
  elseif path == "/slow" then
    return nil, "park"
  elseif path == "/truncated" then
    return "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", "close"
  elseif path == "/big" then
    body = response("200 OK", {}, string.rep("b", 5000))
  elseif path == "/bigchunked" then
    local chunk = string.rep("c", 1000)
    body = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" ..
      string.rep(string.format("%x\r\n%s\r\n", #chunk, chunk), 5) .. "0\r\n\r\n"
  elseif path == "/hugeheaders" then
    local pad = {}
    for i = 1, 300 do pad[i] = "X-Pad-" .. i .. ": " .. string.rep("p", 1000) end
    body = response("200 OK", pad, "x")
  elseif path == "/giantheader" then
    -- One line over libcurl's own cap (100 KB), which it refuses before our callback.
    body = response("200 OK", { "X-Giant: " .. string.rep("g", 300 * 1024) }, "x")
  elseif path == "/close" then
    return nil, "close"
  elseif path == "/quit" then
    running = false
    return response("200 OK", {}, "bye"), "close"
  else
    body = response("404 Not Found", {}, "unknown")
  end
  if m == "HEAD" then body = body:gsub("\r\n\r\n.*$", "\r\n\r\n") end
  return body, "keep"
end

-- Returns a parsed request once one is complete in c.buf.
local function parse(c)
  local head_end = c.buf:find("\r\n\r\n", 1, true)
  if not head_end then return nil end
  local head = c.buf:sub(1, head_end - 1)
  local method, path = head:match("^(%S+) (%S+) HTTP/1%.%d")
  local headers = {}
  for name, value in head:gmatch("\r\n([^:\r\n]+):[ \t]*([^\r\n]*)") do
    headers[name:lower()] = value
  end
  local len = tonumber(headers["content-length"] or "0") or 0
  if #c.buf < head_end + 3 + len then return nil end
  local body = c.buf:sub(head_end + 4, head_end + 3 + len)
  c.buf = c.buf:sub(head_end + 4 + len)
  return { method = method, path = path, headers = headers, body = body }
end

local function drop(c)
  c.sock:close()
  for i, x in ipairs(clients) do
    if x == c then table.remove(clients, i) break end
  end
end

while running and handled < 1000 and socket.gettime() < deadline do
  local watch = { server }
  for _, c in ipairs(clients) do watch[#watch + 1] = c.sock end
  local ready = socket.select(watch, nil, 0.2)
  for _, s in ipairs(ready) do
    if s == server then
      local sock = server:accept()
      if sock then
        sock:settimeout(0)
        next_id = next_id + 1
        clients[#clients + 1] = { sock = sock, buf = "", id = next_id }
      end
    else
      local c
      for _, x in ipairs(clients) do if x.sock == s then c = x end end
      if c then
        local data, err, partial = s:receive(65536)
        local chunk = data or partial
        if chunk and #chunk > 0 and not c.parked then c.buf = c.buf .. chunk end
        if err == "closed" then
          drop(c)
        elseif c.buf:find("^[^A-Z]") then -- e.g. a TLS ClientHello
          s:settimeout(1)
          s:send("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
          drop(c)
        else
          while not c.parked do
            local req = parse(c)
            if not req then break end
            handled = handled + 1
            local out, action = handle(c, req)
            if out then
              s:settimeout(5)
              s:send(out)
              s:settimeout(0)
            end
            if action == "close" then drop(c) break end
            if action == "park" then c.parked = true end
          end
        end
      end
    end
  end
end
for _, c in ipairs(clients) do c.sock:close() end
server:close()
]==]

    local proc, script, base

    setup(function()
      script = os.tmpname()
      local f = assert(io.open(script, "w"))
      f:write(SERVER)
      f:close()
      proc = assert(io.popen("exec lua5.4 " .. script, "r"))
      local port = tonumber(proc:read("*l"))
      assert(port, "test server did not start")
      base = "http://127.0.0.1:" .. port
    end)

    teardown(function()
      if base then
        local h = core.http({ timeout = 2 })
        h:perform("GET", base .. "/quit")
        h:close()
      end
      if proc then proc:close() end
      if script then os.remove(script) end
    end)

    local function closed_port()
      local socket = require "socket"
      local s = assert(socket.bind("127.0.0.1", 0))
      local _, port = s:getsockname()
      s:close()
      return port
    end

    it("returns status, body, lower-cased and joined headers, info", function()
      local h = core.http()
      local status, body, headers, info = h:perform("GET", base .. "/hello")
      assert.equal(200, status)
      assert.is_true(is_integer(status))
      assert.equal("hello", body)
      assert.equal("text/plain", headers["content-type"])
      assert.equal("a, b", headers["x-multi"])
      assert.equal("Yes", headers["x-mixed-case"])
      assert.equal("", headers["x-empty"])
      assert.is_nil(headers["X-Mixed-Case"])
      assert.is_number(info.elapsed)
      assert.is_true(info.elapsed >= 0 and info.elapsed < 5)
      assert.is_true(info.sent)
      h:close()
    end)

    it("reuses the connection between requests", function()
      local h = core.http()
      local s1, _, h1 = h:perform("GET", base .. "/hello")
      local s2, _, h2 = h:perform("GET", base .. "/hello", nil, nil, 5)
      assert.equal(200, s1)
      assert.equal(200, s2)
      assert.equal(h1["x-conn"], h2["x-conn"])
      h:close()
    end)

    it("treats any complete response as success", function()
      local h = core.http()
      local status, body = h:perform("GET", base .. "/status/404")
      assert.equal(404, status)
      assert.equal("nope", body)
      status, body = h:perform("GET", base .. "/empty")
      assert.equal(204, status)
      assert.equal("", body)
      h:close()
    end)

    it("sends binary POST bodies without Expect: 100-continue", function()
      local h = core.http()
      local payload = "a\0b\255" .. string.rep("x", 4000)
      local t0 = core.monotonic()
      local status, body, headers = h:perform("POST", base .. "/echo",
        { "Content-Type: application/octet-stream", "X-Custom: v1" }, payload)
      assert.equal(200, status)
      assert.equal(payload, body)
      assert.equal("POST", headers["x-method"])
      assert.equal(tostring(#payload), headers["x-req-content-length"])
      assert.equal("-", headers["x-req-expect"])
      assert.equal("v1", headers["x-req-custom"])
      assert.is_true(core.monotonic() - t0 < 0.9)
      h:close()
    end)

    it("sends Content-Length: 0 and no Content-Type for bodyless POST and PUT, none for DELETE", function()
      local h = core.http()
      local _, _, headers = h:perform("PUT", base .. "/echo")
      assert.equal("PUT", headers["x-method"])
      assert.equal("0", headers["x-req-content-length"])
      assert.equal("-", headers["x-req-content-type"])
      _, _, headers = h:perform("POST", base .. "/echo")
      assert.equal("0", headers["x-req-content-length"])
      assert.equal("-", headers["x-req-content-type"], "libcurl's form type went out")
      _, _, headers = h:perform("POST", base .. "/echo", { "content-type: text/plain" })
      assert.equal("text/plain", headers["x-req-content-type"])
      _, _, headers = h:perform("DELETE", base .. "/echo", {})
      assert.equal("DELETE", headers["x-method"])
      assert.equal("-", headers["x-req-content-length"])
      _, _, headers = h:perform("PATCH", base .. "/echo", nil, "{}")
      assert.equal("PATCH", headers["x-method"])
      assert.equal("2", headers["x-req-content-length"])
      h:close()
    end)

    it("does HEAD requests", function()
      local h = core.http()
      local status, body, headers = h:perform("HEAD", base .. "/hello")
      assert.equal(200, status)
      assert.equal("", body)
      assert.equal("5", headers["content-length"])
      assert.matches("HEAD request", errmsg(pcall(h.perform, h, "HEAD", base .. "/hello", nil, "x")))
      h:close()
    end)

    it("carries nothing of one request into the next on the same handle", function()
      -- The handle is not reset between requests: each one must still go out as if
      -- it were the first (no body left from a POST, no NOBODY left from a HEAD).
      local h = core.http()
      local _, body, headers = h:perform("POST", base .. "/echo", { "X-Custom: one" }, "payload")
      assert.equal("payload", body)
      assert.equal("7", headers["x-req-content-length"])
      _, body, headers = h:perform("DELETE", base .. "/echo")
      assert.equal("DELETE", headers["x-method"])
      assert.equal("-", headers["x-req-content-length"])
      assert.equal("-", headers["x-req-custom"])
      assert.equal("", body)
      local status
      status, body = h:perform("HEAD", base .. "/hello")
      assert.equal(200, status)
      assert.equal("", body)
      _, _, headers = h:perform("GET", base .. "/echo")
      assert.equal("GET", headers["x-method"])
      status, body = h:perform("GET", base .. "/hello")
      assert.equal(200, status)
      assert.equal("hello", body)
      assert.equal(200, (h:perform("HEAD", base .. "/hello")))
      _, body, headers = h:perform("POST", base .. "/echo", nil, "after head")
      assert.equal("POST", headers["x-method"])
      assert.equal("after head", body)
      _, body, headers = h:perform("POST", base .. "/echo")
      assert.equal("0", headers["x-req-content-length"])
      assert.equal("", body)
      _, _, headers = h:perform("GET", base .. "/echo")
      assert.equal("GET", headers["x-method"])
      assert.equal("-", headers["x-req-content-length"])
      h:close()
    end)

    it("keeps only the final response's headers", function()
      local h = core.http()
      local status, body, headers = h:perform("GET", base .. "/continue")
      assert.equal(200, status)
      assert.equal("ok", body)
      assert.equal("1", headers["x-final"])
      assert.is_nil(headers["x-interim"])
      h:close()
    end)

    it("sends a default and a custom User-Agent", function()
      local h = core.http()
      local _, _, headers = h:perform("GET", base .. "/echo")
      assert.equal("audience/0.1.0", headers["x-req-user-agent"])
      h:close()
      h = core.http({ user_agent = "spec/1.0" })
      _, _, headers = h:perform("GET", base .. "/echo")
      assert.equal("spec/1.0", headers["x-req-user-agent"])
      h:close()
    end)

    it("reports a timeout as sent", function()
      local h = core.http({ timeout = 10 })
      local t0 = core.monotonic()
      local ok, kind, msg, sent = h:perform("GET", base .. "/slow", nil, nil, 0.3)
      local dt = core.monotonic() - t0
      assert.is_nil(ok)
      assert.equal("timeout", kind)
      assert.is_string(msg)
      assert.is_true(sent)
      assert.is_true(dt >= 0.25 and dt < 3, "took " .. dt)
      -- the handle recovers on a fresh connection
      assert.equal(200, (h:perform("GET", base .. "/hello")))
      h:close()
    end)

    it("reports a refused connection as not sent, without leaking headers", function()
      local h = core.http()
      local ok, kind, msg, sent = h:perform("POST", "http://127.0.0.1:" .. closed_port() .. "/",
        { "Authorization: Bearer SECRET-TOKEN" }, "body")
      assert.is_nil(ok)
      assert.equal("network", kind)
      assert.is_false(sent)
      assert.is_nil(msg:find("SECRET", 1, true))
      h:close()
    end)

    it("reports a failed TLS handshake as tls, not sent", function()
      local h = core.http({ timeout = 5 })
      local ok, kind, _, sent = h:perform("GET", (base:gsub("^http:", "https:")) .. "/hello")
      assert.is_nil(ok)
      assert.equal("tls", kind)
      assert.is_false(sent)
      h:close()
    end)

    it("reports truncated bodies and dropped connections as network errors", function()
      local h = core.http()
      local ok, kind, _, sent = h:perform("GET", base .. "/truncated")
      assert.is_nil(ok)
      assert.equal("network", kind)
      assert.is_true(sent)
      ok, kind, _, sent = h:perform("GET", base .. "/close")
      assert.is_nil(ok)
      assert.equal("network", kind)
      assert.is_true(sent)
      h:close()
    end)

    it("enforces max_body and the header cap", function()
      local h = core.http({ max_body = 1000 })
      for _, path in ipairs({ "/big", "/bigchunked" }) do
        local ok, kind, msg, sent = h:perform("GET", base .. path)
        assert.is_nil(ok, path)
        assert.equal("too_large", kind)
        assert.equal("response body exceeds max_body (1000 bytes)", msg)
        assert.is_true(sent)
      end
      local ok, kind = h:perform("GET", base .. "/hugeheaders")
      assert.is_nil(ok)
      assert.equal("too_large", kind)
      local msg
      ok, kind, msg = h:perform("GET", base .. "/giantheader")
      assert.is_nil(ok)
      assert.equal("too_large", kind)
      assert.matches("header is larger than libcurl accepts", msg)
      assert.equal("hello", select(2, h:perform("GET", base .. "/hello")))
      h:close()
    end)

    it("refuses header injection and bad arguments", function()
      local h = core.http()
      local url = base .. "/hello"
      local msg = errmsg(pcall(h.perform, h, "GET", url, { "X-Ok: 1", "X-A: secret\r\nX-B: 2" }))
      assert.matches("bad argument #4 .*headers%[2%] contains CR, LF or NUL", msg)
      assert.is_nil(msg:find("secret", 1, true))
      assert.matches("headers%[1%]", errmsg(pcall(h.perform, h, "GET", url, { "X-A: \0" })))
      assert.matches("headers%[1%]", errmsg(pcall(h.perform, h, "GET", url, { "X-A: 1\n" })))
      assert.matches("headers%[1%] must be a string", errmsg(pcall(h.perform, h, "GET", url, { 1 })))
      assert.matches("bad argument #2 .*method", errmsg(pcall(h.perform, h, "GET\r\nX: y", url)))
      assert.matches("bad argument #2 .*method", errmsg(pcall(h.perform, h, "GE T", url)))
      assert.matches("bad argument #2", errmsg(pcall(h.perform, h, nil, url)))
      assert.matches("bad argument #3 .*url", errmsg(pcall(h.perform, h, "GET", url .. "\0x")))
      assert.matches("bad argument #3 .*url", errmsg(pcall(h.perform, h, "GET", url .. "\r\nX: y")))
      assert.matches("bad argument #4", errmsg(pcall(h.perform, h, "GET", url, "X-A: 1")))
      assert.matches("bad argument #5 .*body", errmsg(pcall(h.perform, h, "POST", url, nil, 5)))
      assert.matches("bad argument #6 .*timeout", errmsg(pcall(h.perform, h, "GET", url, nil, nil, 0)))
      assert.matches("bad argument #1", errmsg(pcall(h.perform, {}, "GET", url)))
      assert.equal(200, (h:perform("GET", url)))
      h:close()
    end)

    it("validates options by name", function()
      local cases = {
        { { timeout = "30" }, "bad option 'timeout' %(number expected, got string%)" },
        { { timeout = 0 }, "bad option 'timeout' %(positive number expected" },
        { { connect_timeout = -1 }, "bad option 'connect_timeout' %(positive number expected" },
        { { timeout = 0 / 0 }, "bad option 'timeout'" },
        { { verify_tls = "yes" }, "bad option 'verify_tls' %(boolean expected, got string%)" },
        { { ca_file = 1 }, "bad option 'ca_file' %(string expected, got number%)" },
        { { proxy = true }, "bad option 'proxy' %(string expected, got boolean%)" },
        { { user_agent = "a\r\nX-Evil: 1" }, "bad option 'user_agent'" },
        { { max_body = 1.5 }, "bad option 'max_body'" },
        { { max_body = 0 }, "bad option 'max_body'" },
        { { max_body = "1" }, "bad option 'max_body' %(integer expected, got string%)" },
      }
      for _, case in ipairs(cases) do
        assert.matches(case[2], errmsg(pcall(core.http, case[1])))
      end
      assert.matches("bad argument #1", errmsg(pcall(core.http, "x")))
      core.http({ timeout = 1.5, connect_timeout = 0.5, verify_tls = false,
        max_body = 10, user_agent = "x" }):close()
    end)

    it("closes idempotently", function()
      local h = core.http()
      assert.matches("^audience%.http %(0x", tostring(h))
      h:close()
      h:close()
      assert.equal("audience.http (closed)", tostring(h))
      assert.matches("http handle is closed", errmsg(pcall(h.perform, h, "GET", base .. "/hello")))
    end)

    if LUA54 then
      it("closes to-be-closed variables", function()
        local chunk = assert(load([[
          local core = ...
          local h <close> = core.http()
          local l <close> = core.limiter("spec-close")
          return h, l
        ]]))
        local h, l = chunk(core)
        assert.equal("audience.http (closed)", tostring(h))
        assert.equal("audience.limiter (closed)", tostring(l))
      end)
    end
  end)
end)
