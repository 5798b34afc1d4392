-- Chooses where an account's quota state lives. Every store hands back an object with
-- the methods of the C core's limiters (src/lua_store.c):
--   acquire(now, probe) -> wait     observe(limit, remaining, reset_at, now)
--   fail(sent, now)     penalize(until, now)     configure(limit, per)
--   state(now) -> { limit, ... }    close()
-- A nil `now` means "read the clock under the store's lock". The arithmetic is always
-- ratelimit.c's; a store only loads, steps and saves one state blob.
local core = require "audience.core"

local M = {}

-- ---------------------------------------------------------------- ngx:DICT
-- Workers of one nginx share an account through a lua_shared_dict. The dict's own
-- operations are atomic one at a time only, so a short lock (an `add` that fails while
-- another worker holds it, expiring by itself if that worker dies) guards each
-- load -> core.limiter_step -> save. Nothing here blocks the worker: the dict calls
-- never wait, and a held lock is waited for with ngx.sleep, which yields.
local LOCK_TTL = 1        -- seconds a dead worker's lock can outlive it
local LOCK_TRIES = 2000   -- × 1 ms: give up after ~2 s instead of hanging

local NgxStore = {}
NgxStore.__index = NgxStore

function NgxStore:_step(op, now, a, b, c)
  local dict, ngx = self.dict, _G.ngx
  for _ = 1, LOCK_TRIES do
    local locked, err = dict:add(self.lock_key, true, LOCK_TTL)
    if locked then
      -- Read under the lock: a clock read before it (ngx.now() is cached per event
      -- loop turn) would move the bucket's refill stamp back for a late caller.
      if not now then ngx.update_time(); now = ngx.now() end
      local ok, state, result = pcall(core.limiter_step, dict:get(self.key), op, now,
        self.budget_limit, self.budget_per, a, b, c)
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
    ngx.sleep(0.001)
  end
  error("audience: the quota state in lua_shared_dict '" .. self.name .. "' stayed locked for 2 s", 0)
end

function NgxStore:acquire(now, probe) return self:_step("acquire", now, probe) end
function NgxStore:observe(limit, remaining, reset_at, now) self:_step("observe", now, limit, remaining, reset_at) end
function NgxStore:fail(sent, now) self:_step("fail", now, sent) end
function NgxStore:penalize(until_, now) self:_step("penalize", now, until_) end
function NgxStore:configure(limit, per)
  if self.budget_limit then
    local rate, old = limit / per, self.budget_limit / self.budget_per
    if not (rate < old or (rate == old and limit < self.budget_limit)) then return end
  end
  self.budget_limit, self.budget_per = limit, per
  self:_step("configure")
end
function NgxStore.close() end

-- Reading must not need the lock (hooks call it often): a stale copy is fine.
function NgxStore:state(now)
  local _, state = core.limiter_step(self.dict:get(self.key), "state", now or _G.ngx.now(),
    self.budget_limit, self.budget_per)
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

-- ---------------------------------------------------------------- selection

--- `key` already names the provider and the account; it never contains a credential.
--- `transport` is the client's transport name ("curl" or "ngx").
function M.new(key, settings, transport)
  local store = settings.store or "memory"
  local limiter
  if store == "memory" then
    limiter = core.limiter(key)
  elseif store:sub(1, 4) == "ngx:" and #store > 4 then
    limiter = ngx_store(store:sub(5), key)
  elseif store:sub(1, 5) == "file:" and #store > 5 then
    if transport == "ngx" then
      -- flock() and its waits would stall every request of the worker.
      error("audience: rate_limit.store \"file:...\" would block nginx's event loop; "
        .. "use \"ngx:DICT\" (a lua_shared_dict) inside nginx", 0)
    end
    local err
    limiter, err = core.limiter_file(store:sub(6), key)
    if not limiter then error("audience: rate_limit.store: " .. tostring(err), 0) end
  elseif store:find("^rediss?://") then
    -- Inside nginx the swap runs on a cosocket: the blocking socket would stall
    -- every request of the worker while Redis answers.
    local make = transport == "ngx" and require("audience.redis_ngx").new or core.limiter_redis
    local ok, lim = pcall(make, store, key)
    if not ok then
      -- The C side never quotes the URL; the message is rebuilt anyway so nothing of
      -- it can leak through a wrapper.
      local msg = tostring(lim)
      msg = msg:match("%((url.*)%)$") or msg:match("(url.*)$") or msg:match("(redis: .*)$") or "cannot be used"
      error("audience: rate_limit.store (redis): " .. msg, 0)
    end
    limiter = lim
  else
    -- Never echo the value: it may be a URL with a password in it.
    error("audience: rate_limit.store is not supported (\"memory\", \"file:PATH\", "
      .. "\"redis://[:PASSWORD@]HOST:PORT[/DB]\" or \"ngx:DICT\")", 0)
  end
  if settings.limit then
    -- A store that is down now gets the budget at its next run: the object keeps it.
    limiter:configure(settings.limit, settings.per)
  end
  return limiter
end

return M
