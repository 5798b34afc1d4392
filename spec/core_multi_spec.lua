-- Tests for core.multi: parallel requests on libcurl's multi interface.
--
-- Most run against a select()-based luasocket server started from this file on
-- 127.0.0.1, which numbers its connections (so reuse shows) and answers /sleep
-- requests after a delay without blocking the others. A few run against the
-- Systeme.io nginx mock (spec/mock/systeme.lua): its faults, its stored data, and
-- HTTP/2 over TLS with a throwaway self-signed certificate made by the openssl CLI.
-- nginx cannot start with an ASan runtime in LD_PRELOAD (its launcher fails the
-- leak check), so those are pending there; scripts/asan-specs.sh, which keeps the
-- runtime out of child processes, runs them.
local core = require "audience.core"
local socket = require "socket"
local mockserver = require "support.mockserver"

local LUA54 = _VERSION == "Lua 5.4" and math.type ~= nil
-- valgrind slows the client side roughly tenfold; bounds below only guard against
-- the serial (or hung) case, so they may stretch.
local SLOW = os.getenv("AUDIENCE_UNDER_VALGRIND") and 4 or 1
local KEY = "test-key"
local unpack = table.unpack or unpack -- luacheck: ignore 113

local function is_integer(v)
  if LUA54 then return math.type(v) == "integer" end
  return type(v) == "number" and v == math.floor(v)
end

local function errmsg(ok, err)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Runs a shell command, raising with its output on failure. Without LD_PRELOAD: under
-- a preloaded ASan runtime, mktemp's and openssl's own leaks would fail them.
local function run(cmd)
  local p = assert(io.popen("(unset LD_PRELOAD; " .. cmd .. ") 2>&1; echo \"exit=$?\"", "r"))
  local out = p:read("*a")
  p:close()
  if out:match("exit=(%d+)%s*$") ~= "0" then error("command failed: " .. cmd .. "\n" .. out, 2) end
  return out
end

-- Polls until nothing is pending; results by id (each id must come back once).
local function drain(m, limit)
  local out, n = {}, 0
  local deadline = core.monotonic() + (limit or 10) * SLOW
  while m:pending() > 0 do
    assert(core.monotonic() < deadline, "transfers did not finish in time")
    for _, r in ipairs(m:poll(0.5)) do
      assert.is_nil(out[r.id], "id " .. tostring(r.id) .. " reported twice")
      out[r.id] = r
      n = n + 1
    end
  end
  return out, n
end

-- "CONNECTION PROTOCOL QUERY" bodies, from either server.
local function conn_of(body)
  return body:match("^(%d+) (%S+) (%S*)")
end

local function count_keys(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

describe("core.multi", function()
  local SERVER = [==[
local socket = require "socket"
local server = assert(socket.bind("127.0.0.1", 0))
server:settimeout(0)
local _, port = server:getsockname()
io.stdout:write(port, "\n")
io.stdout:flush()

local deadline = socket.gettime() + 300
local clients, timers, next_id, running = {}, {}, 0, true

local function response(status, headers, body)
  local out = { "HTTP/1.1 " .. status .. "\r\n" }
  for _, h in ipairs(headers) do out[#out + 1] = h .. "\r\n" end
  out[#out + 1] = "Content-Length: " .. #body .. "\r\n\r\n" .. body
  return table.concat(out)
end

local function conn_reply(c, req)
  return response("200 OK", { "Content-Type: text/plain" },
    c.id .. " HTTP/1.1 " .. (req.query or "") .. "\n")
end

-- Returns the response, or nil after parking the connection on a timer.
local function handle(c, req)
  local path, h = req.path, req.headers
  if path == "/conn" then
    return conn_reply(c, req)
  elseif path == "/sleep" then
    local s = tonumber((req.query or ""):match("s=([%d.]+)")) or 0.2
    c.busy = true
    timers[#timers + 1] = { at = socket.gettime() + s, c = c, out = conn_reply(c, req) }
    return nil
  elseif path == "/echo" then
    return response("200 OK", {
      "X-Method: " .. req.method,
      "X-Req-Content-Length: " .. (h["content-length"] or "-"),
      "X-Req-Expect: " .. (h["expect"] or "-"),
      "X-Mixed-Case: Yes",
      "X-Multi: a", "X-Multi: b" }, req.body)
  elseif path == "/big" then
    return response("200 OK", {}, string.rep("b", 5000))
  elseif path == "/quit" then
    running = false
    return response("200 OK", {}, "bye")
  end
  return response("404 Not Found", {}, "unknown")
end

local function parse(c)
  local head_end = c.buf:find("\r\n\r\n", 1, true)
  if not head_end then return nil end
  local head = c.buf:sub(1, head_end - 1)
  local method, target = head:match("^(%S+) (%S+) HTTP/1%.%d")
  local headers = {}
  for name, value in head:gmatch("\r\n([^:\r\n]+):[ \t]*([^\r\n]*)") do
    headers[name:lower()] = value
  end
  local len = tonumber(headers["content-length"] or "0") or 0
  if #c.buf < head_end + 3 + len then return nil end
  local body = c.buf:sub(head_end + 4, head_end + 3 + len)
  c.buf = c.buf:sub(head_end + 4 + len)
  local path, query = target:match("^([^?]*)%??(.*)$")
  return { method = method, path = path, query = query, headers = headers, body = body }
end

local function drop(c)
  c.closed = true
  c.sock:close()
  for i, x in ipairs(clients) do
    if x == c then table.remove(clients, i) break end
  end
end

local function send(c, out)
  c.sock:settimeout(5)
  c.sock:send(out)
  c.sock:settimeout(0)
end

local function serve(c)
  while not c.busy and not c.closed do
    local req = parse(c)
    if not req then return end
    local out = handle(c, req)
    if out then send(c, out) end
  end
end

while running and socket.gettime() < deadline do
  local watch = { server }
  for _, c in ipairs(clients) do watch[#watch + 1] = c.sock end
  local wait, now = 0.2, socket.gettime()
  for _, t in ipairs(timers) do wait = math.min(wait, math.max(0, t.at - now)) end
  local ready = socket.select(watch, nil, wait)
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
        if chunk and #chunk > 0 then c.buf = c.buf .. chunk end
        if err == "closed" then
          drop(c)
        elseif c.buf:find("^[^A-Z]") then -- e.g. a TLS ClientHello
          send(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
          drop(c)
        else
          serve(c)
        end
      end
    end
  end
  now = socket.gettime()
  for i = #timers, 1, -1 do
    local t = timers[i]
    if t.at <= now then
      table.remove(timers, i)
      if not t.c.closed then
        send(t.c, t.out)
        t.c.busy = false
        serve(t.c)
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
    proc = assert(io.popen("unset LD_PRELOAD; exec lua5.4 " .. quote(script), "r"))
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
    local s = assert(socket.bind("127.0.0.1", 0))
    local _, port = s:getsockname()
    s:close()
    return port
  end

  describe("the handle", function()
    it("has a name, closes idempotently and refuses use once closed", function()
      local m = core.multi()
      assert.matches("^audience%.multi %(0x", tostring(m))
      assert.equal(0, m:pending())
      assert.is_true(is_integer(m:pending()))
      m:close()
      m:close()
      assert.equal("audience.multi (closed)", tostring(m))
      for _, f in ipairs({ "pending", "poll", "cancel" }) do
        assert.matches("multi handle is closed", errmsg(pcall(m[f], m, 1)))
      end
      assert.matches("multi handle is closed", errmsg(pcall(m.add, m, 1, "GET", base .. "/conn")))
      assert.matches("bad argument #1", errmsg(pcall(m.add, {}, 1, "GET", base .. "/conn")))
    end)

    it("validates options by name, the transport ones as core.http does", function()
      local cases = {
        { { max_connections = 0 }, "bad option 'max_connections' %(integer in 1%.%.1024 expected" },
        { { max_connections = 2.5 }, "bad option 'max_connections'" },
        { { max_connections = 5000 }, "bad option 'max_connections'" },
        { { max_connections = "8" }, "bad option 'max_connections' %(integer expected, got string%)" },
        { { timeout = "30" }, "bad option 'timeout' %(number expected, got string%)" },
        { { connect_timeout = -1 }, "bad option 'connect_timeout' %(positive number expected" },
        { { verify_tls = "yes" }, "bad option 'verify_tls' %(boolean expected, got string%)" },
        { { ca_file = 1 }, "bad option 'ca_file' %(string expected, got number%)" },
        { { proxy = true }, "bad option 'proxy' %(string expected, got boolean%)" },
        { { user_agent = "a\r\nX-Evil: 1" }, "bad option 'user_agent'" },
        { { max_body = 0 }, "bad option 'max_body'" },
      }
      for _, case in ipairs(cases) do
        assert.matches(case[2], errmsg(pcall(core.multi, case[1])))
      end
      assert.matches("bad argument #1", errmsg(pcall(core.multi, "x")))
      core.multi({ max_connections = 1, timeout = 1.5, connect_timeout = 0.5, verify_tls = false,
        max_body = 10, user_agent = "x", proxy = "" }):close()
    end)

    it("validates add's arguments like http:perform, never echoing headers", function()
      local m = core.multi()
      local url = base .. "/conn"
      -- called from Lua, not tail calls, so both VMs name the method and count self out
      local function add(...)
        local args = { n = select("#", ...), ... }
        return pcall(function()
          local ok = m:add(unpack(args, 1, args.n))
          return ok
        end)
      end
      local msg = errmsg(add(1, "GET", url, { "X-Ok: 1", "X-A: secret\r\nX-B: 2" }))
      assert.matches("bad argument #4 to 'add' %(headers%[2%] contains CR, LF or NUL%)", msg)
      assert.is_nil(msg:find("secret", 1, true))
      assert.matches("headers%[1%] must be a string", errmsg(add(1, "GET", url, { 1 })))
      assert.matches("bad argument #4 .*headers must be a table", errmsg(add(1, "GET", url, "X-A: 1")))
      assert.matches("bad argument #1 .*id must be an integer, got nil", errmsg(add(nil, "GET", url)))
      assert.matches("bad argument #1 .*id must be an integer, got string", errmsg(add("1", "GET", url)))
      assert.matches("bad argument #1 .*id must be an integer", errmsg(add(2.5, "GET", url)))
      assert.matches("bad argument #2 .*method must be a string, got nil", errmsg(add(1, nil, url)))
      assert.matches("bad argument #2 .*method", errmsg(add(1, "GET\r\nX: y", url)))
      assert.matches("bad argument #3 .*url must be a string", errmsg(add(1, "GET", {})))
      assert.matches("bad argument #3 .*url", errmsg(add(1, "GET", url .. "\r\nX: y")))
      assert.matches("bad argument #3 .*url", errmsg(add(1, "GET", "")))
      assert.matches("bad argument #5 .*body", errmsg(add(1, "POST", url, nil, 5)))
      assert.matches("bad argument #5 .*HEAD", errmsg(add(1, "HEAD", url, nil, "x")))
      assert.matches("bad argument #6 .*timeout", errmsg(add(1, "GET", url, nil, nil, 0)))
      assert.matches("bad argument #6 .*timeout", errmsg(add(1, "GET", url, nil, nil, {})))
      assert.matches("bad argument #1 .*timeout", errmsg(pcall(function() local r = m:poll(-1) return r end)))
      assert.matches("bad argument #1 .*timeout", errmsg(pcall(function() local r = m:poll("1") return r end)))
      assert.matches("bad argument #1 .*id", errmsg(pcall(function() local r = m:cancel() return r end)))
      assert.equal(0, m:pending(), "a refused add starts nothing")
      assert.is_true(m:add(1, "GET", url))
      assert.matches("bad argument #1 to 'add' %(id 1 is already in flight%)", errmsg(add(1, "GET", url)))
      local res = drain(m)
      assert.equal(200, res[1].status)
      assert.is_true(m:add(1, "GET", url), "an id is free again once reported")
      drain(m)
      m:close()
    end)

    it("returns at once when nothing is pending", function()
      local m = core.multi()
      local t0 = core.monotonic()
      assert.same({}, m:poll(0))
      assert.same({}, m:poll(5))
      assert.is_true(core.monotonic() - t0 < 1)
      m:close()
    end)

    it("returns from poll as soon as one transfer has finished", function()
      local m = core.multi()
      assert.is_true(m:add(1, "GET", base .. "/sleep?s=2"))
      assert.is_true(m:add(2, "GET", base .. "/sleep?s=0.1"))
      local t0 = core.monotonic()
      local got = {}
      while #got == 0 do got = m:poll(5) end
      assert.is_true(core.monotonic() - t0 < 1.5, "waited for the slow one")
      assert.equal(1, #got)
      assert.equal(2, got[1].id)
      assert.equal(1, m:pending())
      m:close()
    end)
  end)

  describe("results", function()
    it("carry id, status, body, lower-cased headers and elapsed", function()
      local m = core.multi()
      local id = LUA54 and math.maxinteger or 2 ^ 53
      assert.is_true(m:add(id, "GET", base .. "/echo"))
      assert.is_true(m:add(-7, "GET", base .. "/nowhere"))
      local res, n = drain(m)
      assert.equal(2, n)
      local r = res[id]
      assert.equal(id, r.id)
      assert.is_true(is_integer(r.id))
      assert.equal(200, r.status)
      assert.is_true(is_integer(r.status))
      assert.equal("", r.body)
      assert.equal("Yes", r.headers["x-mixed-case"])
      assert.equal("a, b", r.headers["x-multi"])
      assert.equal("GET", r.headers["x-method"])
      assert.is_nil(r.headers["X-Mixed-Case"])
      assert.is_number(r.elapsed)
      assert.is_true(r.elapsed >= 0 and r.elapsed < 5 * SLOW)
      assert.is_nil(r.kind)
      assert.equal(404, res[-7].status, "any complete response is a result, not a failure")
      assert.equal("unknown", res[-7].body)
      m:close()
    end)

    it("completes 20 requests at concurrency 5 with the right ids", function()
      local m = core.multi({ max_connections = 5 })
      local next_id, seen, most = 1, {}, 0
      local deadline = core.monotonic() + 10 * SLOW
      while next_id <= 20 or m:pending() > 0 do
        while next_id <= 20 and m:pending() < 5 do
          -- ids far from the loop index, so a mix-up cannot pass by accident
          assert.is_true(m:add(1000 + next_id * 7, "GET", base .. "/sleep?s=0.02&i=" .. next_id))
          next_id = next_id + 1
        end
        most = math.max(most, m:pending())
        for _, r in ipairs(m:poll(1)) do
          assert.is_nil(seen[r.id])
          assert.equal(200, r.status, r.message)
          local i = tonumber(r.body:match("i=(%d+)"))
          assert.equal(1000 + i * 7, r.id, "result carries the id of its own request")
          seen[r.id] = true
        end
        assert.is_true(core.monotonic() < deadline, "took too long")
      end
      assert.equal(20, count_keys(seen))
      assert.equal(5, most)
      m:close()
    end)

    it("answers a slow server in parallel: 16 x 0.2 s on 8 connections take ~0.4 s", function()
      local m = core.multi({ max_connections = 8 })
      local t0 = core.monotonic()
      for i = 1, 16 do assert.is_true(m:add(i, "GET", base .. "/sleep?s=0.2&i=" .. i)) end
      local res, n = drain(m)
      local dt = core.monotonic() - t0
      assert.equal(16, n)
      local conns = {}
      for i = 1, 16 do
        assert.equal(200, res[i].status, res[i].message)
        conns[conn_of(res[i].body)] = true
      end
      -- two rounds on 8 connections: never one, and far from 16 in a row
      assert.is_true(dt >= 0.38, "took " .. dt)
      assert.is_true(dt < 1.6 * SLOW, "took " .. dt)
      assert.equal(8, count_keys(conns))
      m:close()
    end)

    it("delivers request bodies intact, after the caller's string is gone", function()
      local m = core.multi({ max_connections = 4 })
      local want = {}
      for i = 1, 12 do
        want[i] = ("body %d \0 é %s"):format(i, string.rep("x", i * 1000))
        assert.is_true(m:add(i, "POST", base .. "/echo", { "Content-Type: application/octet-stream" },
          want[i]:sub(1))) -- a fresh string, unreachable after this call
      end
      collectgarbage()
      collectgarbage()
      local payload = "a\0b\255" .. string.rep("z", 100000)
      assert.is_true(m:add(100, "PUT", base .. "/echo", nil, payload:sub(1)))
      assert.is_true(m:add(101, "POST", base .. "/echo"))
      assert.is_true(m:add(102, "DELETE", base .. "/echo", {}))
      local res = drain(m)
      for i = 1, 12 do
        assert.equal(want[i], res[i].body)
        assert.equal("POST", res[i].headers["x-method"])
        assert.equal("-", res[i].headers["x-req-expect"], "no Expect: 100-continue round trip")
      end
      assert.equal(payload, res[100].body)
      assert.equal("PUT", res[100].headers["x-method"])
      assert.equal(tostring(#payload), res[100].headers["x-req-content-length"])
      assert.equal("0", res[101].headers["x-req-content-length"], "bodyless POST sends Content-Length: 0")
      assert.equal("DELETE", res[102].headers["x-method"])
      assert.equal("-", res[102].headers["x-req-content-length"])
      m:close()
    end)
  end)

  describe("failures", function()
    it("reports a timeout as sent, per request or from the options", function()
      local m = core.multi({ timeout = 0.3 })
      local t0 = core.monotonic()
      assert.is_true(m:add(1, "GET", base .. "/sleep?s=3"))
      assert.is_true(m:add(2, "GET", base .. "/sleep?s=3", nil, nil, 0.5))
      local res = drain(m)
      local dt = core.monotonic() - t0
      for id, min in pairs({ [1] = 0.25, [2] = 0.45 }) do
        local r = res[id]
        assert.equal("timeout", r.kind)
        assert.is_string(r.message)
        assert.is_true(r.sent)
        assert.is_nil(r.status)
        assert.is_true(r.elapsed >= min and r.elapsed < 2.5, "elapsed " .. r.elapsed)
      end
      assert.is_true(dt < 2.5, "took " .. dt)
      m:close()
    end)

    it("reports a transfer that timed out waiting for a connection as not sent", function()
      local m = core.multi({ max_connections = 1 })
      assert.is_true(m:add(1, "GET", base .. "/sleep?s=1", nil, nil, 5))
      m:poll(0) -- the first transfer takes the only connection
      assert.is_true(m:add(2, "POST", base .. "/echo", nil, "x", 0.3))
      local res = drain(m)
      assert.equal(200, res[1].status)
      assert.equal("timeout", res[2].kind)
      assert.is_false(res[2].sent)
      m:close()
    end)

    it("reports a refused connection as not sent, without leaking headers", function()
      local m = core.multi()
      local url = "http://127.0.0.1:" .. closed_port() .. "/"
      assert.is_true(m:add(1, "POST", url, { "Authorization: Bearer SECRET-TOKEN" }, "body"))
      local r = drain(m)[1]
      assert.equal("network", r.kind)
      assert.is_false(r.sent)
      assert.is_nil(r.message:find("SECRET", 1, true))
      assert.is_number(r.elapsed)
      m:close()
    end)

    it("reports a failed TLS handshake as tls, not sent", function()
      local m = core.multi({ timeout = 5 })
      assert.is_true(m:add(1, "GET", (base:gsub("^http:", "https:")) .. "/conn"))
      local r = drain(m)[1]
      assert.equal("tls", r.kind, r.message)
      assert.is_false(r.sent)
      m:close()
    end)

    it("enforces max_body and keeps going", function()
      local m = core.multi({ max_body = 1000 })
      assert.is_true(m:add(1, "GET", base .. "/big"))
      local r = drain(m)[1]
      assert.equal("too_large", r.kind)
      assert.equal("response body exceeds max_body (1000 bytes)", r.message)
      assert.is_true(r.sent)
      assert.is_true(m:add(2, "GET", base .. "/conn"))
      assert.equal(200, drain(m)[2].status)
      m:close()
    end)
  end)

  describe("cancel and close", function()
    it("cancels a transfer in flight, and only that one", function()
      local m = core.multi()
      assert.is_true(m:add(1, "GET", base .. "/sleep?s=1"))
      assert.is_true(m:add(2, "GET", base .. "/sleep?s=0.1"))
      m:poll(0)
      assert.is_true(m:cancel(1))
      assert.is_false(m:cancel(1))
      assert.is_false(m:cancel(99))
      assert.equal(1, m:pending())
      local t0 = core.monotonic()
      local res, n = drain(m)
      assert.equal(1, n)
      assert.equal(200, res[2].status)
      assert.is_true(core.monotonic() - t0 < 0.9 * SLOW, "did not wait for the cancelled transfer")
      assert.is_true(m:add(1, "GET", base .. "/conn"), "a cancelled id is free again")
      assert.equal(200, drain(m)[1].status)
      m:close()
    end)

    it("cancels a finished transfer not yet polled", function()
      local m = core.multi()
      assert.is_true(m:add(1, "GET", "http://127.0.0.1:" .. closed_port() .. "/"))
      local deadline = core.monotonic() + 5
      -- the refusal is seen within a poll; cancel the next one before reading it
      while #m:poll(0.1) == 0 do assert.is_true(core.monotonic() < deadline) end
      assert.is_true(m:add(2, "GET", "http://127.0.0.1:" .. closed_port() .. "/"))
      assert.equal(1, m:pending())
      assert.is_true(m:cancel(2))
      assert.equal(0, m:pending())
      m:close()
    end)

    it("closes with transfers in flight, and the collector does too", function()
      local m = core.multi({ max_connections = 2 })
      for i = 1, 6 do
        assert.is_true(m:add(i, "POST", base .. "/sleep?s=2", { "X-A: 1" }, string.rep("b", 1000)))
      end
      m:poll(0.05)
      assert.equal(6, m:pending())
      m:close()
      assert.matches("closed", errmsg(pcall(m.pending, m)))
      m:close()

      local g = core.multi()
      assert.is_true(g:add(1, "GET", base .. "/sleep?s=2"))
      g:poll(0.05)
      g = nil -- luacheck: ignore 311
      collectgarbage()
      collectgarbage()
    end)

    if LUA54 then
      it("closes to-be-closed variables", function()
        local chunk = assert(load([[
          local core, url = ...
          local m <close> = core.multi()
          m:add(1, "GET", url)
          m:poll(0)
          return m
        ]]))
        local m = chunk(core, base .. "/sleep?s=2")
        assert.equal("audience.multi (closed)", tostring(m))
      end)
    end
  end)

  describe("connections", function()
    it("runs 200 transfers over a few reused connections", function()
      local m = core.multi({ max_connections = 4 })
      local t0 = core.monotonic()
      for i = 1, 200 do assert.is_true(m:add(i, "GET", base .. "/conn?i=" .. i)) end
      local res, n = drain(m, 20)
      local dt = core.monotonic() - t0
      assert.equal(200, n)
      local conns = {}
      for i = 1, 200 do
        assert.equal(200, res[i].status, res[i].message)
        local conn, _, query = conn_of(res[i].body)
        assert.equal("i=" .. i, query)
        conns[conn] = true
      end
      assert.is_true(count_keys(conns) <= 4, count_keys(conns) .. " connections")
      assert.is_true(dt < 5 * SLOW, "took " .. dt)
      -- and a later batch reuses them rather than connecting again
      for i = 1, 8 do assert.is_true(m:add(i, "GET", base .. "/conn")) end
      for _, r in pairs(drain(m)) do
        assert.is_true(conns[conn_of(r.body)], "a new connection: " .. r.body)
      end
      m:close()
    end)
  end)

  -- libasan.so, libubsan.so...; valgrind's own preloads do nginx no harm.
  if (os.getenv("LD_PRELOAD") or ""):find("lib%a*san[^/]*%.so") then
    pending("nginx mock tests: nginx cannot start with a sanitizer preloaded (scripts/asan-specs.sh runs them)")
    return
  end

  describe("against the nginx mock", function()
    local mock, dir, cert, h2_root

    setup(function()
      dir = run("mktemp -d /tmp/audience-multi.XXXXXXXX"):match("^(%S+)")
      assert(dir and dir:match("^/tmp/audience%-multi%."), "mktemp gave no directory")
      cert = dir .. "/cert.pem"
      run(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
        .. " -keyout %s -out %s -days 2 -subj /CN=127.0.0.1 -addext %s"):format(
        quote(dir .. "/key.pem"), quote(cert), quote("subjectAltName = IP:127.0.0.1")))
      local h2_port = mockserver.free_port()
      mock = mockserver.start("systeme", nil, {
        ssl = { cert = cert, key = dir .. "/key.pem" },
        server_snippet = table.concat({
          "    listen 127.0.0.1:" .. h2_port .. " ssl http2;",
          "    location = /sleep { content_by_lua_block { ngx.sleep(tonumber(ngx.var.arg_s) or 0.2) "
            .. 'ngx.say(ngx.var.connection, " ", ngx.var.server_protocol, " ", ngx.var.args or "") } }',
        }, "\n"),
      })
      h2_root = "https://127.0.0.1:" .. h2_port
    end)

    teardown(function()
      if mock then mock:stop() end
      if dir and dir:match("^/tmp/audience%-multi%.") then os.execute("rm -rf " .. quote(dir)) end
    end)

    it("creates 16 tags through a server that answers after 0.2 s, in ~0.4 s", function()
      mock:reset({})
      mock:fault({ match = "/api/tags", times = 16, action = { delay = 0.2 } })
      local m = core.multi({ max_connections = 8 })
      local names = {}
      local t0 = core.monotonic()
      for i = 1, 16 do
        names[i] = ("tag %d é \"quoted\" %s"):format(i, string.rep("x", i * 2))
        local body = '{"name":"' .. names[i]:gsub('"', '\\"') .. '"}'
        assert.is_true(m:add(i, "POST", mock.url .. "/tags",
          { "X-API-Key: " .. KEY, "Content-Type: application/json" }, body))
      end
      local res, n = drain(m)
      local dt = core.monotonic() - t0
      assert.equal(16, n)
      for i = 1, 16 do assert.equal(201, res[i].status, res[i].body) end
      assert.is_true(dt >= 0.38, "took " .. dt)
      assert.is_true(dt < 1.6 * SLOW, "took " .. dt)
      assert.equal(16, mock:stats().faults_applied)
      local stored = {}
      for _, t in ipairs(mock:data("tags")) do stored[t.name] = true end
      for i = 1, 16 do assert.is_true(stored[names[i]], names[i]) end
      m:close()
    end)

    it("multiplexes HTTP/2 over TLS on one connection", function()
      local m = core.multi({ max_connections = 8, ca_file = cert })
      local t0 = core.monotonic()
      for i = 1, 16 do assert.is_true(m:add(i, "GET", h2_root .. "/sleep?s=0.2&i=" .. i)) end
      local res, n = drain(m)
      local dt = core.monotonic() - t0
      assert.equal(16, n)
      local conns = {}
      for i = 1, 16 do
        assert.equal(200, res[i].status, res[i].message)
        local conn, proto, query = conn_of(res[i].body)
        assert.equal("HTTP/2.0", proto)
        assert.equal("s=0.2&i=" .. i, query)
        conns[conn] = true
      end
      assert.equal(1, count_keys(conns))
      assert.is_true(dt < 1.6 * SLOW, "took " .. dt)
      m:close()
    end)

    it("refuses a certificate it cannot verify as tls, not sent", function()
      local m = core.multi({ timeout = 5 })
      assert.is_true(m:add(1, "GET", h2_root .. "/sleep?s=0"))
      local r = drain(m)[1]
      assert.equal("tls", r.kind, r.message)
      assert.is_false(r.sent)
      m:close()
    end)
  end)
end)
