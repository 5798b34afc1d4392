-- One timed run of one contender, in its own process (bench/run.lua starts these):
--   lua5.4 bench/contender.lua WHO WORKLOAD ARGS...
--
--   audience  get      BASE N [CA_FILE]   N × sys.contacts:get(1)
--   audience  request  BASE N             N × sys:request("GET", "/contacts/1")
--   audience  page     BASE               for c in sys.contacts:each{ limit = 100, order = "asc" }
--   audience  post     BASE N             N × sys.tags:create{ name = ... }, one after the other
--   audience  parallel BASE N C           the same N creates through sys:parallel, concurrency C
--   core      get      URL N              N × core.http():perform + cjson.decode (no pipeline)
--   core      json     URL N              N × core.http():perform + audience's json.decode
--   core      transfer URL N              N × core.http():perform alone
--   luasocket get      URL N [CA_FILE]    N × socket.http (ssl.https with CA_FILE) + cjson.decode
--   luasocket page     BASE               the same cursor walk as `page`, decoded with cjson
--
-- BASE is the API root (http://127.0.0.1:PORT/api). Prints
-- "elapsed=SECONDS count=N hwm_kb=KB": the time covers the work only (not start-up or
-- client construction), count is requests or items, hwm_kb the process's peak RSS
-- (VmHWM) at the end.
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local root = here .. "/.."
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = root .. "/build/lua5.4/?.so;" .. package.cpath

local who, workload = arg[1], arg[2]
-- A key shaped like a real one (bench/run.lua passes the same to every contender).
local API_KEY = os.getenv("BENCH_API_KEY") or "k"

local function vm_hwm_kb()
  local f = io.open("/proc/self/status", "r")
  if not f then return 0 end
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)")) or 0
end

local function report(elapsed, count)
  io.write(("elapsed=%.6f count=%d hwm_kb=%d\n"):format(elapsed, count, vm_hwm_kb()))
end

local function usage()
  io.stderr:write("usage: contender.lua audience|core|luasocket WORKLOAD ARGS... (see the header)\n")
  os.exit(2)
end

-- ------------------------------------------------------------------ audience

local function run_audience()
  local audience = require "audience"
  local core = require "audience.core"
  local base = arg[3] or usage()
  local sys = audience.systeme{ api_key = API_KEY, base_url = base,
    ca_file = (workload == "get") and arg[5] or nil }
  local n = tonumber(arg[4])
  local count = 0
  local started = core.monotonic()
  if workload == "get" then
    local contacts = sys.contacts
    for _ = 1, n do
      local c = contacts:get(1)
      if not c then error(select(2, contacts:get(1))) end
    end
    count = n
  elseif workload == "request" then
    for _ = 1, n do assert(sys:request("GET", "/contacts/1")) end
    count = n
  elseif workload == "page" then
    for _ in sys.contacts:each{ limit = 100, order = "asc" } do count = count + 1 end
  elseif workload == "post" then
    for i = 1, n do assert(sys.tags:create{ name = "bench-" .. i }) end
    count = n
  elseif workload == "parallel" then
    local calls = {}
    for i = 1, n do calls[i] = function() return sys.tags:create{ name = "bench-" .. i } end end
    for i, r in ipairs(sys:parallel(calls, { concurrency = tonumber(arg[5]) or 8 })) do
      if r.err ~= nil then error(("call %d failed: %s"):format(i, tostring(r.err)), 0) end
    end
    count = n
  else
    usage()
  end
  report(core.monotonic() - started, count)
  sys:close()
end

-- ------------------------------------------------------------------ the core alone

-- The stages of a GET below the pipeline: the transfer alone ("transfer"), then with
-- audience's decoder ("json") or with cjson ("get").
local function run_core()
  local core = require "audience.core"
  local decode
  if workload == "get" then
    decode = require("cjson").decode
  elseif workload == "json" then
    decode = require("audience.json").decode
  elseif workload ~= "transfer" then
    usage()
  end
  local url, n = arg[3], tonumber(arg[4])
  if not url or not n then usage() end
  local h = core.http{}
  local lines = { "X-API-Key: " .. API_KEY, "Accept: application/json" }
  local started = core.monotonic()
  for _ = 1, n do
    local status, body = h:perform("GET", url, lines)
    if status ~= 200 then error("core: " .. tostring(status) .. " " .. tostring(body)) end
    if decode then decode(body) end
  end
  report(core.monotonic() - started, n)
  h:close()
end

-- ------------------------------------------------------------------ LuaSocket (+ LuaSec)

local function run_luasocket()
  local socket = require "socket"
  local http = require "socket.http"
  local ltn12 = require "ltn12"
  local cjson = require "cjson"
  local headers = { ["x-api-key"] = API_KEY, accept = "application/json" }
  -- LuaSocket's best case: TCP_NODELAY on its connections (socket.http and LuaSec's
  -- ssl.https both make them with socket.tcp). Without it, LuaSec sends the request
  -- line and the headers as two TLS records, and Nagle's algorithm holds the second
  -- until the server's delayed ACK: about 40 ms per request on Linux loopback.
  -- BENCH_LUASOCKET_NODELAY=0 measures the default.
  if os.getenv("BENCH_LUASOCKET_NODELAY") ~= "0" then
    socket.tcp = function()
      local c, err = socket.tcp4()
      if not c then return nil, err end
      c:setoption("tcp-nodelay", true)
      return c
    end
  end

  local function fetch(request, url, extra)
    local chunks = {}
    local req = { url = url, sink = ltn12.sink.table(chunks), headers = headers }
    for k, v in pairs(extra or {}) do req[k] = v end
    local ok, status = request(req)
    if not ok or status ~= 200 then error(("luasocket: %s %s"):format(url, tostring(status)), 0) end
    return cjson.decode(table.concat(chunks))
  end

  local count = 0
  local started
  if workload == "get" then
    local url, n, ca = arg[3], tonumber(arg[4]), arg[5]
    if not url or not n then usage() end
    local request, extra = http.request, nil
    if url:find("^https:") then
      request = require("ssl.https").request
      extra = { cafile = ca, verify = "peer", protocol = "any", options = "all" }
    end
    started = socket.gettime()
    for _ = 1, n do fetch(request, url, extra) end
    count = n
  elseif workload == "page" then
    local base = (arg[3] or usage()) .. "/contacts?limit=100&order=asc"
    started = socket.gettime()
    local url = base
    while true do
      local page = fetch(http.request, url)
      local items = page.items
      count = count + #items
      if page.hasMore ~= true or #items == 0 then break end
      url = ("%s&startingAfter=%d"):format(base, items[#items].id)
    end
  else
    usage()
  end
  report(socket.gettime() - started, count)
end

if who == "audience" then
  run_audience()
elseif who == "core" then
  run_core()
elseif who == "luasocket" then
  run_luasocket()
else
  usage()
end
