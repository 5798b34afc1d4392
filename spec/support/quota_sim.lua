-- A deterministic simulation of clients sharing one quota, for spec/quota_sim_spec.lua.
--
--   local sim = require "support.quota_sim"
--   local result = sim.run(seed, store)   -- store: sim.stores.memory() etc.
--   result.failures  -- list of broken invariants (empty when the schedule passed)
--
-- Time is virtual: an event queue orders every arrival, answer and wake-up, so a
-- schedule runs in milliseconds and the same seed always gives the same run. A model
-- server enforces a fixed-window quota and reports X-RateLimit-Limit / -Remaining /
-- -Refill (as a delay or as a Unix time) and Retry-After. Each seed draws: the number
-- of clients, limit and window, the clock skew of the clients against the server
-- (±60 s), latencies, connection failures, answers lost after the server counted the
-- request, header-less proxy errors, lying headers, and when the clients start (so
-- roll-overs fall in the middle of bursts).
local core = require "audience.core"

local M = {}

-- ---------------------------------------------------------------- deterministic RNG

-- Park–Miller: exact in doubles, so Lua 5.4 and LuaJIT draw the same numbers.
local function rng(seed)
  local x = (seed * 7919 + 12345) % 2147483647
  if x == 0 then x = 1 end
  local r = {}
  function r.unit() x = (48271 * x) % 2147483647; return x / 2147483647 end
  function r.range(a, b) return a + (b - a) * r.unit() end
  function r.int(a, b) return math.min(b, a + math.floor((b - a + 1) * r.unit())) end
  function r.chance(p) return r.unit() < p end
  return r
end

-- ---------------------------------------------------------------- event queue

local function queue()
  local heap, seq = {}, 0
  local q = {}
  local function less(a, b) return a.t < b.t or (a.t == b.t and a.seq < b.seq) end
  function q.push(t, fn)
    seq = seq + 1
    local e = { t = t, seq = seq, fn = fn }
    heap[#heap + 1] = e
    local i = #heap
    while i > 1 do
      local p = math.floor(i / 2)
      if not less(heap[i], heap[p]) then break end
      heap[i], heap[p] = heap[p], heap[i]
      i = p
    end
  end
  function q.pop()
    local top = heap[1]
    if not top then return nil end
    local last = table.remove(heap)
    if #heap > 0 then
      heap[1] = last
      local i = 1
      while true do
        local l, r, m = 2 * i, 2 * i + 1, i
        if heap[l] and less(heap[l], heap[m]) then m = l end
        if heap[r] and less(heap[r], heap[m]) then m = r end
        if m == i then break end
        heap[i], heap[m] = heap[m], heap[i]
        i = m
      end
    end
    return top
  end
  return q
end

-- ---------------------------------------------------------------- stores

local n_accounts = 0
local function account()
  n_accounts = n_accounts + 1
  return "sim-" .. n_accounts .. "-" .. core.random_hex(4)
end

-- Each returns { new = function() -> limiter, close = function(), clocked = bool }.
-- clocked: the store reads the clock itself (under its lock); the simulation then
-- points that clock at its virtual time.
M.stores = {}

function M.stores.memory()
  return { new = function() return core.limiter(account()) end, close = function() end }
end

function M.stores.file(path)
  return {
    new = function() return assert(core.limiter_file(path, account())) end,
    close = function() end,
  }
end

function M.stores.redis(url)
  return {
    new = function() return core.limiter_redis(url, account()) end,
    close = function() end,
  }
end

-- ngx:DICT through limiter.lua's own NgxStore, on an in-process dict and a virtual
-- ngx.now(): the store reads the clock under its lock, as it does inside nginx.
function M.stores.dict()
  local clock = { now = 0 }
  local data = {}
  local dict = {}
  function dict.get(_, k) return data[k] end
  function dict.set(_, k, v) data[k] = v; return true end
  function dict.add(_, k, v) if data[k] ~= nil then return false, "exists" end data[k] = v; return true end
  function dict.delete(_, k) data[k] = nil end
  local fake = {
    shared = { sim = dict },
    now = function() return clock.now end,
    update_time = function() end,
    sleep = function() error("the simulated dict is never locked by another worker") end,
  }
  return {
    clocked = true,
    clock = clock,
    new = function()
      local saved = rawget(_G, "ngx")
      rawset(_G, "ngx", fake)
      package.loaded["audience.limiter"] = nil
      local limiter = require "audience.limiter"
      local lim = limiter.new(account(), { store = "ngx:sim" })
      local wrapped = {}
      -- NgxStore looks ngx up at each call: keep it installed around every call.
      for _, m in ipairs({ "acquire", "observe", "fail", "penalize", "state" }) do
        wrapped[m] = function(_, ...)
          rawset(_G, "ngx", fake)
          local r = lim[m](lim, ...)
          rawset(_G, "ngx", saved)
          return r
        end
      end
      rawset(_G, "ngx", saved)
      return wrapped
    end,
    close = function() end,
  }
end

-- ---------------------------------------------------------------- one schedule

local NAMES = { limit = "x-ratelimit-limit", remaining = "x-ratelimit-remaining",
                reset = "x-ratelimit-refill" }
local HOLD = 2.0          -- AUD_RL_PROBE_HOLD
local MARGIN = 0.25       -- latency and poll slack on top of one window
local QUIET = 5           -- client.lua's QUIET_ANSWERS

--- Draws the schedule for seed; `long` asks for a long, fault-free run (utilisation).
function M.draw(seed, long)
  local r = rng(seed)
  local p = {
    seed = seed,
    clients = r.int(1, 8),
    limit = r.int(3, 40),
    window = r.range(1, 10),
    phase = r.range(0, 10),
    skew = r.range(-60, 60),
    style = r.chance(0.5) and "delta" or (r.chance(0.5) and "epoch" or "epoch_ms"),
    latency = r.range(0.001, 0.08),
    p_connfail = r.chance(0.3) and r.range(0, 0.15) or 0,
    p_lost = r.chance(0.3) and r.range(0, 0.1) or 0,
    p_proxy = r.chance(0.2) and r.range(0, 0.1) or 0,
    p_lie = r.chance(0.15) and r.range(0, 0.2) or 0,
    windows = r.int(2, 5),
  }
  if long then
    p.p_connfail, p.p_lost, p.p_proxy, p.p_lie = 0, 0, 0, 0
    p.windows = 30
    p.style = "delta"
    p.window = r.range(2, 10)
    p.limit = r.int(10, 40)
  end
  p.rng = r
  return p
end

-- The documented bound: with a delay-style reset the clients' skew does not matter;
-- with a Unix-time reset a clock behind the server only waits longer, one ahead of it
-- may send early (the server's 429 and Retry-After then hold it).
function M.within_bound(p)
  return p.style == "delta" or p.skew <= 0.01
end

function M.run(seed, store, long)
  local p = M.draw(seed, long)
  local r = p.rng
  local q = queue()
  local T0 = 1.7e9 -- the server's epoch at virtual time 0
  local lim = store.new()
  local honest = p.p_lie == 0
  local failures = {}
  local stats = { ok = 0, limited = 0, sent = 0, max_wait = 0, said = 0 }
  local function fail(msg)
    if #failures < 5 then failures[#failures + 1] = msg end
  end

  local function cnow(t) return T0 + t + p.skew end -- a client's wall clock
  local function step(name, t, ...)
    -- A store that reads the clock itself reads the clients' machine's, skewed.
    if store.clocked then store.clock.now = cnow(t) end
    local now = (not store.clocked) and cnow(t) or nil
    local a, err
    if name == "acquire" then a, err = lim:acquire(now, ...)
    elseif name == "observe" then local l, rem, reset = ...; a, err = lim:observe(l, rem, reset, now)
    elseif name == "fail" then a, err = lim:fail(..., now)
    elseif name == "penalize" then a, err = lim:penalize(..., now)
    end
    if a == nil and err ~= nil then error("store: " .. tostring(err), 0) end
    return a
  end
  local function check_state(t)
    if store.clocked then store.clock.now = cnow(t) end
    local s = lim:state((not store.clocked) and cnow(t) or nil)
    if s.remaining and s.remaining < 0 then fail(("negative count %s at %.3f"):format(s.remaining, t)) end
  end

  -- The model server: fixed windows of p.window seconds from p.phase.
  local win, count = nil, 0
  local served = {}
  local function serve(t, c)
    local w = math.floor((t - p.phase) / p.window)
    if w ~= win then win, count = w, 0 end
    served[w] = served[w] or 0
    local ends = p.phase + (w + 1) * p.window
    local h = {}
    local status
    if count >= p.limit then
      status = 429
      h["retry-after"] = tostring(math.ceil(ends - t))
      count = count + 0 -- refused requests are not counted
    else
      count = count + 1
      served[w] = served[w] + 1
      status = 200
    end
    h[NAMES.limit] = tostring(p.limit)
    h[NAMES.remaining] = tostring(math.max(0, p.limit - count))
    if p.style == "delta" then
      h[NAMES.reset] = ("%.3f"):format(math.ceil((ends - t) * 1000) / 1000)
    elseif p.style == "epoch" then
      h[NAMES.reset] = ("%.3f"):format(T0 + ends)
    else
      h[NAMES.reset] = ("%d"):format(math.ceil((T0 + ends) * 1000))
    end
    if r.chance(p.p_lie) then
      local k = r.int(1, 4)
      if k == 1 then h[NAMES.remaining] = tostring(p.limit + 100)
      elseif k == 2 then h[NAMES.remaining] = "-3"
      elseif k == 3 then h[NAMES.limit] = "1e15"
      else h[NAMES.reset] = "999999999" end
    end
    if M.trace then M.trace(("%.4f c%d server w=%d count=%d -> %d"):format(t, c or 0, w, count, status)) end
    return status, h
  end

  local t_end = p.phase + p.windows * p.window + 1
  local style = p.style == "delta" and "delta" or "epoch"
  local names = { limit = NAMES.limit, remaining = NAMES.remaining, reset = NAMES.reset, reset_style = style }
  local wait_bound = p.window + HOLD + MARGIN + (p.style == "delta" and 0 or math.max(0, -p.skew))

  for c = 1, p.clients do
    local cl = { probe = true, quiet = 0, want_since = nil }
    local attempt
    local function next_request(t)
      if t >= t_end then return end
      cl.want_since = cl.want_since or t
      q.push(t, attempt)
    end
    function attempt(t)
      local wait = step("acquire", t, cl.probe)
      if wait > 0 then
        -- One wait the limiter asks for: within a window (plus what skew and
        -- latency add) unless a Retry-After said longer.
        if wait > stats.max_wait then stats.max_wait = wait end
        if honest and M.within_bound(p) and wait > wait_bound + stats.said then
          fail(("client %d told to wait %.2f s (bound %.2f)"):format(c, wait, wait_bound))
        end
        q.push(t + wait, attempt)
        return
      end
      if M.trace then
        if store.clocked then store.clock.now = cnow(t) end
        local st = lim:state((not store.clocked) and cnow(t) or nil)
        M.trace(("%.4f c%d grant -> remaining %s reset in %s"):format(t, c, tostring(st.remaining),
          tostring(st.reset_at and st.reset_at - cnow(t))))
      end
      cl.want_since = nil
      stats.sent = stats.sent + 1
      check_state(t)
      if r.chance(p.p_connfail) then
        q.push(t + 0.02, function(t2)
          step("fail", t2, false)
          next_request(t2 + r.range(0.05, 0.2))
        end)
        return
      end
      local d1, d2 = r.range(0.5, 1) * p.latency, r.range(0.5, 1) * p.latency
      if r.chance(p.p_proxy) then
        -- A proxy's error page: never reached the server, no headers.
        q.push(t + d1 + d2, function(t2)
          step("observe", t2, nil, nil, nil)
          cl.quiet = cl.quiet + 1
          if cl.quiet >= QUIET then cl.probe = false end
          next_request(t2 + r.range(0.05, 0.2))
        end)
        return
      end
      q.push(t + d1, function(ta)
        local status, h = serve(ta, c)
        if r.chance(p.p_lost) then
          q.push(ta + 1.0, function(t2) step("fail", t2, true); next_request(t2) end)
          return
        end
        q.push(ta + d2, function(t2)
          local now = cnow(t2)
          local l, rem, reset = core.parse_rate_headers(h, names, now)
          step("observe", t2, l, rem, reset)
          if M.trace then
            M.trace(("%.4f c%d observe %s %s %s"):format(t2, c, tostring(l), tostring(rem),
              tostring(reset and reset - now)))
          end
          cl.quiet, cl.probe = 0, true
          if status == 429 then
            stats.limited = stats.limited + 1
            local ra = core.parse_retry_after(h["retry-after"], now)
            if ra then
              step("penalize", t2, now + ra)
              stats.said = math.max(stats.said, ra)
            end
          else
            stats.ok = stats.ok + 1
          end
          check_state(t2)
          next_request(t2)
        end)
      end)
    end
    q.push(r.range(0, p.window), next_request)
  end

  local events = 0
  while true do
    local e = q.pop()
    if not e then break end
    events = events + 1
    if events > 2000000 then fail("runaway schedule"); break end
    e.fn(e.t)
  end
  if lim.close then lim:close() end

  if honest and M.within_bound(p) and stats.limited > 0 then
    fail(("%d x 429 with honest headers (skew %.1f s, %s)"):format(stats.limited, p.skew, p.style))
  end
  if long then
    -- Windows that start once every client is running and end before they stop.
    local got, full = 0, 0
    for w = math.ceil((p.window + HOLD - p.phase) / p.window), p.windows - 1 do
      full = full + 1
      got = got + (served[w] or 0)
    end
    stats.utilisation = full > 0 and got / (p.limit * full) or nil
    if full > 0 and got < 0.95 * p.limit * full then
      fail(("only %d of the %d requests the quota allowed (%.1f%%)"):format(got, p.limit * full,
        100 * got / (p.limit * full)))
    end
  end
  return { params = p, stats = stats, failures = failures, events = events }
end

function M.describe(p)
  return ("clients=%d limit=%d window=%.2f skew=%.1f style=%s connfail=%.2f lost=%.2f proxy=%.2f "
    .. "lie=%.2f")
    :format(p.clients, p.limit, p.window, p.skew, p.style, p.p_connfail, p.p_lost, p.p_proxy, p.p_lie)
end

return M
