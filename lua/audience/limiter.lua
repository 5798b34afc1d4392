-- Chooses where an account's quota state lives. Every store hands back an object with
-- the same methods as the C core's in-memory limiter:
--   acquire(now, probe) -> wait      observe(limit, remaining, reset_at, now)
--   penalize(until)         configure(limit, per)     state(now) -> { limit, ... }
local core = require "audience.core"

local M = {}

-- ---------------------------------------------------------------- ngx:DICT
-- Workers of one nginx share an account through a lua_shared_dict. The dict's own
-- operations are atomic one at a time only, so a short lock (an `add` that fails while
-- another worker holds it, expiring by itself if that worker dies) guards each
-- read-modify-write, and the C state machine (core.limiter_step) does the arithmetic.
local LOCK_TTL = 1        -- seconds a dead worker's lock can outlive it
local LOCK_TRIES = 2000   -- × 1 ms: give up after ~2 s instead of hanging

local NgxStore = {}
NgxStore.__index = NgxStore

function NgxStore:_step(op, now, a, b, c)
  local dict = self.dict
  for _ = 1, LOCK_TRIES do
    local locked, err = dict:add(self.lock_key, true, LOCK_TTL)
    if locked then
      local ok, state, result = pcall(core.limiter_step, dict:get(self.key), op, now, a, b, c)
      local stored, set_err = true, nil
      if ok then stored, set_err = dict:set(self.key, state) end
      dict:delete(self.lock_key)
      if not ok then error(state, 0) end
      if not stored then
        error("audience: lua_shared_dict '" .. self.name .. "' refused the quota state: " .. tostring(set_err), 0)
      end
      return result
    end
    if err ~= "exists" then
      error("audience: lua_shared_dict '" .. self.name .. "': " .. tostring(err), 0)
    end
    _G.ngx.sleep(0.001)
  end
  error("audience: the quota state in lua_shared_dict '" .. self.name .. "' stayed locked for 2 s", 0)
end

function NgxStore:acquire(now, probe) return self:_step("acquire", now or _G.ngx.now(), probe) end
function NgxStore:observe(limit, remaining, reset_at, now)
  self:_step("observe", now or _G.ngx.now(), limit, remaining, reset_at)
end
function NgxStore:penalize(until_) self:_step("penalize", _G.ngx.now(), until_) end
function NgxStore:configure(limit, per) self:_step("configure", _G.ngx.now(), limit, per) end
function NgxStore.close() end

-- Reading must not need the lock (hooks call it often): a stale copy is fine.
function NgxStore:state(now)
  local _, state = core.limiter_step(self.dict:get(self.key), "state", now or _G.ngx.now())
  return state
end

local function ngx_store(name, key)
  local ngx = rawget(_G, "ngx")
  if not ngx or not ngx.shared then
    error("audience: rate_limit.store \"ngx:" .. name .. "\" works only inside nginx", 0)
  end
  local dict = ngx.shared[name]
  if not dict then
    error(("audience: rate_limit.store \"ngx:%s\": no such lua_shared_dict (add `lua_shared_dict %s 1m;` "
      .. "to the http block of nginx.conf)"):format(name, name), 0)
  end
  return setmetatable({ dict = dict, name = name, key = "audience:rl:" .. key,
                        lock_key = "audience:rl-lock:" .. key }, NgxStore)
end

-- ---------------------------------------------------------------- redis://
-- The C store answers nil, "redis: ..." when Redis cannot be reached (it never raises
-- and never waits past its timeouts). The client turns a failed acquire into an error
-- of its own; a budget that could not be stored yet is stored on the next call.
local RedisStore = {}
RedisStore.__index = RedisStore

function RedisStore:_configure_pending()
  local pending = self.pending_budget
  if not pending then return true end
  local ok, err = self.c:configure(pending[1], pending[2])
  if ok == nil and err then return nil, err end
  self.pending_budget = nil
  return true
end

function RedisStore:acquire(now, probe)
  local ok, err = self:_configure_pending()
  if not ok then return nil, err end
  return self.c:acquire(now, probe)
end
function RedisStore:observe(limit, remaining, reset_at, now) return self.c:observe(limit, remaining, reset_at, now) end
function RedisStore:penalize(until_) return self.c:penalize(until_) end
function RedisStore:configure(limit, per)
  self.pending_budget = { limit, per }
  return self:_configure_pending()
end
function RedisStore:state(now)
  local state = self.c:state(now)
  return state or {}
end
function RedisStore:close() return self.c:close() end

--- `key` already names the provider and the account; it never contains a credential.
function M.new(key, settings)
  local store = settings.store or "memory"
  local limiter
  if store == "memory" then
    limiter = core.limiter(key)
  elseif store:sub(1, 4) == "ngx:" and #store > 4 then
    limiter = ngx_store(store:sub(5), key)
  elseif store:sub(1, 5) == "file:" and #store > 5 then
    limiter = core.limiter_file(store:sub(6), key)
  elseif store:find("^redis://") then
    limiter = setmetatable({ c = core.limiter_redis(store, key) }, RedisStore)
  else
    error(("audience: rate_limit.store \"%s\" is not supported (\"memory\", \"file:PATH\", "
      .. "\"redis://HOST:PORT[/DB]\" or \"ngx:DICT\")"):format(store), 0)
  end
  if settings.limit then
    limiter:configure(settings.limit, settings.per)
  end
  return limiter
end

return M
