-- luacheck: globals ngx
-- The benchmark's API server: handlers run by Debian's nginx + Lua module (LuaJIT),
-- started and stopped by bench/run.lua. Small answers are static `return 200 '...'`
-- locations in the generated nginx.conf; this module makes the rest:
--   contacts()   Systeme-style cursor pages of `$bench_total` contacts (ids 1..total):
--                GET .../api/contacts?limit=100&order=asc&startingAfter=N
--                -> {"items":[...],"hasMore":true|false}
--   slow_post()  answers a POST with 201 and a small JSON object after 20 ms
--   watchdog()   stops this nginx when the benchmark driver is gone, so nothing
--                outlives an interrupted `make bench`
local M = {}

local ITEM = '{"id":%d,"email":"contact%d@example.com","registeredAt":"2024-01-%02dT09:%02d:00+00:00",'
  .. '"locale":"en","sourceURL":null,"unsubscribed":false,"bounced":false,"needsConfirmation":false,'
  .. '"fields":[{"fieldName":"First name","slug":"first_name","value":"Ada %d"},'
  .. '{"fieldName":"Surname","slug":"surname","value":"Lovelace"}],'
  .. '"tags":[{"id":%d,"name":"tag-%d"}]}'

-- Pages are the same whatever the total (only hasMore differs), so the items of the
-- first pages are kept: workload 2 walks them several times. Deeper pages (the
-- 1,000,000-item walk) are made on the fly.
local cache, cached = {}, 0
local MAX_CACHED = 1100

local function items_text(after, n)
  local key = after * 1000 + n
  local text = cache[key]
  if text then return text end
  local parts = {}
  for i = 1, n do
    local id = after + i
    parts[i] = ITEM:format(id, id, id % 28 + 1, id % 60, id, id % 7 + 1, id % 7 + 1)
  end
  text = table.concat(parts, ",")
  if cached < MAX_CACHED then
    cache[key] = text
    cached = cached + 1
  end
  return text
end

function M.contacts()
  local ngx = ngx
  local total = tonumber(ngx.var.bench_total) or 100000
  local limit = tonumber(ngx.var.arg_limit) or 10
  if limit < 1 or limit > 100 then
    ngx.status = 422
    ngx.say('{"type":"validation","detail":"limit: out of range"}')
    return
  end
  local after = tonumber(ngx.var.arg_startingAfter) or 0
  local n = math.max(0, math.min(limit, total - after))
  local body = '{"items":[' .. items_text(after, n) .. '],"hasMore":'
    .. ((after + n < total) and "true" or "false") .. "}"
  ngx.header["Content-Length"] = #body
  ngx.print(body)
end

local next_id = 0

function M.slow_post()
  local ngx = ngx
  ngx.req.read_body()
  ngx.sleep(0.02)
  next_id = next_id + 1
  local body = ('{"id":%d,"name":"tag-%d","createdAt":"2024-01-01T00:00:00+00:00"}'):format(next_id, next_id)
  ngx.status = 201
  ngx.header["Content-Length"] = #body
  ngx.print(body)
end

-- /proc/PID/stat's start time tells a live driver from a new process with its pid.
local function start_time(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  local rest = s:match("%)%s+(.*)$")
  if not rest then return nil end
  local i = 0
  for w in rest:gmatch("%S+") do
    i = i + 1
    if i == 20 then return w end
  end
end

function M.watchdog(owner_pid, owner_start)
  local ffi = require "ffi"
  pcall(ffi.cdef, "int kill(int pid, int sig); int getppid(void);")
  local function check(premature)
    if premature then return end
    if start_time(owner_pid) ~= owner_start then
      ffi.C.kill(ffi.C.getppid(), 3)   -- SIGQUIT to the master: a graceful stop
    end
  end
  ngx.timer.every(1, check)
end

return M
