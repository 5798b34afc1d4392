-- The OpenResty application driven by spec/openresty_spec.lua: handlers that call the
-- Systeme.io mock through audience from inside nginx.
local audience = require "audience"

local M = {}

local settings = {}
local client

--- Called from init_by_lua with what the spec decided (mock URL, quota store...).
function M.configure(s)
  settings = s
end

-- One client per worker, made on first use (the init phase cannot do I/O anyway).
local function sys()
  if not client then
    client = audience.systeme{
      api_key = settings.api_key, base_url = settings.base_url, timeout = 10,
      rate_limit = settings.rate_limit,
    }
  end
  return client
end

function M.ping()
  ngx.say("pong")
end

-- One API call; the answer says whether it worked.
function M.call()
  local page, err = sys().tags:list()
  if not page then
    ngx.status = 502
    ngx.say(tostring(err))
    return
  end
  ngx.say("ok ", #page.items)
end

-- Walks pages with each(): iterators work inside nginx too.
function M.walk()
  local n = 0
  for _ in sys().contacts:each{ limit = 10 } do n = n + 1 end
  ngx.say(n)
end

-- An API call from a timer, reported through a shared dict.
function M.from_timer()
  local ok, err = ngx.timer.at(0, function()
    local page, call_err = sys().tags:list()
    ngx.shared.results:set("timer", page and ("ok " .. #page.items) or tostring(call_err))
  end)
  if not ok then error(err) end
  ngx.say("scheduled")
end

function M.result(key)
  ngx.say(ngx.shared.results:get(key) or "none")
end

-- An API call where nginx forbids waiting: log_by_lua.
function M.call_in_log_phase()
  local ok, err = pcall(function() return sys().tags:list() end)
  ngx.shared.results:set("log", ok and "no error" or tostring(err))
end

return M
