-- The Redis quota store inside nginx: the same compare-and-swap as the C store
-- (src/redis_cas.c, driven through core.redis_quota), over an ngx.socket.tcp cosocket,
-- so a call waiting on Redis yields and the worker keeps serving. The methods and
-- their failure convention are those of core.limiter_redis (src/lua_store.c): a
-- Redis that is down or slow gives nil, "redis: ..."; bad arguments raise.
--
-- One deadline per operation (timeout, default 1 s) covers connecting, AUTH, SELECT,
-- writing and reading. Connections wait in the worker's cosocket pool once AUTH and
-- SELECT are done, under a name made of host, port, database and a digest of the
-- credentials (core side), so a pooled connection is always in the state the URL asks.
local core = require "audience.core"

local M = {}

local POOL_SIZE = 32      -- idle connections per worker and server
local IDLE_MS = 60000     -- how long one may wait idle in the pool
local READ_SIZE = 4096

local Store = {}
Store.__index = Store

-- Per worker: one semaphore per server and account (see Store:_step).
local semaphore = require "ngx.semaphore"
local lanes = {}

local function clock()
  local ngx = _G.ngx
  ngx.update_time()
  return ngx.now()
end

local function ms(seconds) return math.max(1, math.floor(seconds * 1000 + 0.5)) end

-- Sends bytes and feeds what comes back to run until it is over. Returns its status
-- and value, or "io", the socket's error and whether any reply byte had come.
local function exchange(sock, run, bytes, deadline)
  local replied = false
  while true do
    local left = deadline - clock()
    if left <= 0 then return "io", "timeout", replied end
    sock:settimeouts(ms(left), ms(left), ms(left))
    local sent, err = sock:send(bytes)
    if not sent then return "io", err, replied end
    while true do
      left = deadline - clock()
      if left <= 0 then return "io", "timeout", replied end
      sock:settimeouts(ms(left), ms(left), ms(left))
      local data, rerr = sock:receiveany(READ_SIZE)
      if not data then return "io", rerr, replied end
      replied = true
      local status, value = run:feed(data)
      if status == "send" then
        bytes = value
        break
      end
      if status ~= "more" then return status, value, replied end
    end
  end
end

function Store:_where() return ("%s:%d"):format(self.host, self.port) end

function Store:_io_error(what, err)
  err = tostring(err)
  if err == "timeout" then
    return ("redis: %s %s: timed out after %g s"):format(what, self:_where(), self.timeout)
  end
  if err:find("no resolver defined", 1, true) then
    return ("redis: connect %s: nginx cannot resolve the host: add a `resolver` directive "
      .. "to nginx.conf"):format(self:_where())
  end
  return ("redis: %s %s: %s"):format(what, self:_where(), err)
end

-- One connection's worth of trying: true, result; or nil, message, retry (a pooled
-- connection the server had closed before this run sent anything it answered).
function Store:_attempt(op, now, a, b, c, start, deadline)
  local ngx = _G.ngx
  local sock = ngx.socket.tcp()
  local left = deadline - clock()
  local connect_left = math.min(start + self.connect_timeout, deadline) - clock()
  if left <= 0 or connect_left <= 0 then return nil, self:_io_error("connect", "timeout") end
  sock:settimeouts(ms(connect_left), ms(left), ms(left))
  local ok, err = sock:connect(self.host, self.port, self.connect_opts)
  if not ok then return nil, self:_io_error("connect", err) end
  local reused = (sock:getreusedtimes() or 0) > 0
  if not reused then
    local setup, bytes = self.quota:setup()
    if setup then
      local status, msg = exchange(sock, setup, bytes, deadline)
      setup:close()
      if status ~= "done" then
        sock:close()
        return nil, status == "io" and self:_io_error("command", msg) or msg
      end
    end
  end
  local run, bytes = self.quota:run(op, now, self.budget_limit, self.budget_per, a, b, c)
  local status, value, replied = exchange(sock, run, bytes, deadline)
  local clean = run:pending() == 0
  run:close()
  if status == "done" then
    if clean then sock:setkeepalive(IDLE_MS) else sock:close() end
    return true, value
  end
  sock:close()
  if status == "io" then
    return nil, self:_io_error("command", value), reused and not replied and value ~= "timeout"
  end
  return nil, value
end

function Store:_step(op, now, a, b, c)
  local start = clock()
  local deadline = start + self.timeout
  -- One swap at a time per account in this worker: N light threads racing on one
  -- key would lose to each other about N^2/2 times, enough round trips to miss the
  -- deadline under a burst; queued here, only the workers race.
  local sema = self.sema
  local got, werr = sema:wait(math.max(0, deadline - clock()))
  if not got then return nil, self:_io_error("command", werr) end
  local ran, ok, value = pcall(self._swap, self, op, now, a, b, c, start, deadline)
  sema:post(1)
  if not ran then error(ok, 0) end
  if not ok then return nil, value end
  return true, value
end

function Store:_swap(op, now, a, b, c, start, deadline)
  -- An idle connection closed by a server restart or its idle timeout says nothing
  -- about the server now: the next one is tried, within the same deadline. After a
  -- restart every pooled connection is dead, and each fails at once; the pool holds
  -- at most POOL_SIZE, so the last try is on a fresh connection.
  local ok, value, retry
  for _ = 1, POOL_SIZE + 1 do
    ok, value, retry = self:_attempt(op, now, a, b, c, start, deadline)
    if ok or not retry then break end
  end
  return ok, value
end

local function result_or_error(ok, value)
  if not ok then return nil, value end
  return value
end

function Store:acquire(now, probe) return result_or_error(self:_step("acquire", now, probe)) end
function Store:state(now) return result_or_error(self:_step("state", now)) end

local function nothing_or_error(ok, value)
  if not ok then return nil, value end
end

function Store:observe(limit, remaining, reset_at, now)
  return nothing_or_error(self:_step("observe", now, limit, remaining, reset_at))
end
function Store:fail(sent, now) return nothing_or_error(self:_step("fail", now, sent)) end
function Store:penalize(until_, now) return nothing_or_error(self:_step("penalize", now, until_)) end

-- The budget lives in this object, as in the C limiters: tighter wins, and every run
-- applies it first, so a wiped key or a Redis that was down gets it back. Recording
-- it needs no round trip, which lets a client be made where nginx forbids cosockets
-- (init_by_lua).
function Store:configure(limit, per)
  if type(limit) ~= "number" or limit ~= limit or limit <= 0 then
    error("bad argument #1 to 'configure' (limit must be positive)", 2)
  end
  if type(per) ~= "number" or per ~= per or per <= 0 then
    error("bad argument #2 to 'configure' (per must be positive)", 2)
  end
  if self.budget_limit then
    local rate, old = limit / per, self.budget_limit / self.budget_per
    if not (rate < old or (rate == old and limit < self.budget_limit)) then return end
  end
  self.budget_limit, self.budget_per = limit, per
end

function Store:close() self.quota:close() end

function Store.__tostring() return "audience.limiter.redis (nginx cosocket)" end

--- url: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]; key: the account's key; opts as
--- core.limiter_redis's. Raises for a bad URL (never echoed), as core.limiter_redis.
function M.new(url, key, opts)
  local quota = core.redis_quota(url, key, opts)
  local host, port, pool, timeout, connect_timeout = quota:endpoint()
  local lane = pool .. "\0" .. key
  if not lanes[lane] then lanes[lane] = assert(semaphore.new(1)) end
  return setmetatable({
    sema = lanes[lane],
    quota = quota, host = host, port = port, timeout = timeout,
    connect_timeout = connect_timeout,
    connect_opts = { pool = pool, pool_size = POOL_SIZE },
  }, Store)
end

return M
