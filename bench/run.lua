-- `make bench`: starts its own API server (Debian's nginx + Lua module, on free
-- 127.0.0.1 ports, with an HTTPS listener on a self-signed certificate made now with
-- the openssl CLI), runs every workload against it with each contender in fresh
-- processes, prints the median wall time of the runs and the ratios, and stops the
-- server. The C floor (build/bench/floor) and the Lua 5.4 core are built by the
-- Makefile target before this runs.
--
--   lua5.4 bench/run.lua            what `make bench` runs
--   BENCH_RUNS=3 lua5.4 bench/run.lua          fewer runs per contender (default 7)
--   BENCH_NICE=0 lua5.4 bench/run.lua          do not raise the priority of the contenders
--                                              and of the server (root only; on by default)
--   BENCH_ONLY=1,3 lua5.4 bench/run.lua        only some workloads
--   BENCH_QUICK=1 lua5.4 bench/run.lua         a smoke test: every workload, tiny sizes
--
-- Workloads (see README "Performance"):
--   1  5,000 GETs of a small JSON object, keep-alive HTTP
--   2  `each` over 100,000 contacts, 1,000 cursor pages of 100
--   3  workload 1 over HTTPS (local self-signed CA)
--   4  2,000 POSTs answered after 20 ms: sequential vs client:parallel (concurrency 8)
--   5  peak RSS of `each` over 1,000,000 contacts, and its growth from 100,000
--   6  callgrind instructions per request: the floor, then each stage of a GET (transfer,
--      decode, pipeline, resource layer)
local socket = require "socket"

local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/../spec/?.lua;" .. package.path
local files = require "support.files"
local sh_quote = files.quote

local function capture(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local ok, how, code = p:close()
  return out, ok, how, code
end

local function trim(s) return ((s or ""):gsub("^%s+", ""):gsub("%s+$", "")) end

local ROOT = trim(capture("cd " .. sh_quote(here .. "/..") .. " && pwd -P"))
local BENCH = ROOT .. "/bench"
local FLOOR = ROOT .. "/build/bench/floor"
local LUA = "lua5.4"
local CONTENDER = LUA .. " " .. sh_quote(BENCH .. "/contender.lua")

local QUICK = os.getenv("BENCH_QUICK") == "1"
local RUNS = tonumber(os.getenv("BENCH_RUNS") or "") or (QUICK and 1 or 7)
local ONLY = {}
for w in (os.getenv("BENCH_ONLY") or "1,2,3,4,5,6"):gmatch("%d+") do ONLY[tonumber(w)] = true end

-- Sizes of the workloads (BENCH_QUICK shrinks them to check the harness only).
local SIZE = {
  gets = QUICK and 200 or 5000,
  contacts = QUICK and 2000 or 100000,
  posts = QUICK and 80 or 2000,
  rss_small = QUICK and 2000 or 100000,
  rss_big = QUICK and 20000 or 1000000,
  callgrind = QUICK and { 20, 120 } or { 200, 1200 },
}
-- The long runs get fewer repetitions: LuaSec pays a TLS handshake per request, and
-- 2,000 sequential POSTs take 2,000 × 20 ms.
local RUNS_LONG = math.min(RUNS, 3)

-- Every contender sends the same key, shaped like a real one (a one-letter key would
-- also be found, and scrubbed, inside "keep-alive" in every response's headers).
local API_KEY = "sk_bench_" .. ("7f3a9c2e5b8d1f4a6c0e9b2d5f8a1c4e"):rep(2)
-- audience's own User-Agent, which the floor sends too.
local USER_AGENT = trim(capture(LUA .. " -e " .. sh_quote(
  "package.path = '" .. ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;' .. package.path; "
  .. "package.cpath = '" .. ROOT .. "/build/lua5.4/?.so;' .. package.cpath; "
  .. "io.write(require('audience').systeme{ api_key = 'x' }._transport_settings.user_agent)") .. " 2>/dev/null"))
-- As root, the contenders and the server run at nice -20, so that other work on the
-- machine (a test suite, say) disturbs the timings less.
local IS_ROOT = trim(capture("id -u")) == "0"
local NICE = IS_ROOT and os.getenv("BENCH_NICE") ~= "0"
local ENV = ("env BENCH_API_KEY=%s BENCH_USER_AGENT=%s %s"):format(sh_quote(API_KEY), sh_quote(USER_AGENT),
  NICE and "nice -n -20 " or "")

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

local read_file, write_file = files.read, files.write

local function log(fmt, ...)
  io.stderr:write((fmt):format(...), "\n")
  io.stderr:flush()
end

local function median(xs)
  local s = {}
  for i, x in ipairs(xs) do s[i] = x end
  table.sort(s)
  local n = #s
  if n == 0 then return nil end
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

-- ------------------------------------------------------------------ the server

local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return assert(tonumber(port))
end

local function own_pid_and_start()
  local s = read_file("/proc/self/stat") or ""
  local pid = s:match("^(%d+)")
  local rest = s:match("%)%s+(.*)$") or ""
  local i = 0
  for w in rest:gmatch("%S+") do
    i = i + 1
    if i == 20 then return pid, w end
  end
  return pid, nil
end

local function small_contact(id)
  return ('{"id":%d,"email":"ada@example.com","registeredAt":"2024-01-01T09:00:00+00:00","locale":"en",'
    .. '"sourceURL":null,"unsubscribed":false,"bounced":false,"needsConfirmation":false,'
    .. '"fields":[{"fieldName":"First name","slug":"first_name","value":"Ada"}],'
    .. '"tags":[{"id":7,"name":"buyers"}]}'):format(id)
end

local Server = {}
Server.__index = Server

function Server.start()
  local dir = trim(capture("mktemp -d /tmp/audience-bench.XXXXXXXX"))
  assert(dir:find("^/tmp/audience%-bench%."), "mktemp failed")
  local self = setmetatable({ dir = dir }, Server)
  local ok, failure = pcall(function()
    for _, sub in ipairs{ "client_body", "proxy", "fastcgi", "uwsgi", "scgi" } do
      os.execute("mkdir -p " .. sh_quote(dir .. "/" .. sub))
    end
    -- A self-signed certificate for 127.0.0.1, made for this run only.
    local out, made = capture(("openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 "
      .. "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1,DNS:localhost "
      .. "-keyout %s -out %s 2>&1"):format(sh_quote(dir .. "/key.pem"), sh_quote(dir .. "/cert.pem")))
    if not made then error("openssl req failed: " .. out, 0) end
    self.ca_file = dir .. "/cert.pem"

    local owner_pid, owner_start = own_pid_and_start()
    for _ = 1, 5 do
      self.port, self.ssl_port = free_port(), free_port()
      local conf = {
        "load_module /usr/lib/nginx/modules/ndk_http_module.so;",
        "load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;",
        -- As root, workers would run as nobody and could not read bench/.
        IS_ROOT and "user root;" or "",
        NICE and "worker_priority -20;" or "",
        "daemon on;",
        "worker_processes 1;",
        "pid " .. dir .. "/nginx.pid;",
        "error_log " .. dir .. "/error.log warn;",
        "worker_shutdown_timeout 1s;",
        "events { worker_connections 1024; }",
        "http {",
        "  access_log off;",
        "  server_tokens off;",
        "  client_body_temp_path " .. dir .. "/client_body;",
        "  proxy_temp_path " .. dir .. "/proxy; fastcgi_temp_path " .. dir .. "/fastcgi;",
        "  uwsgi_temp_path " .. dir .. "/uwsgi; scgi_temp_path " .. dir .. "/scgi;",
        "  keepalive_requests 10000000;",
        "  keepalive_timeout 300s;",
        ('  lua_package_path "%s/?.lua;;";'):format(BENCH),
        ("  init_worker_by_lua_block { require('server').watchdog(%s, %q) }")
          :format(owner_pid, owner_start or ""),
        "  server {",
        "    listen 127.0.0.1:" .. self.port .. ";",
        "    listen 127.0.0.1:" .. self.ssl_port .. " ssl;",
        "    ssl_certificate " .. dir .. "/cert.pem;",
        "    ssl_certificate_key " .. dir .. "/key.pem;",
        "    server_name _;",
        "    default_type application/json;",
        "    location = /__up { return 204; }",
        "    location = /api/contacts/1 { return 200 '" .. small_contact(1) .. "'; }",
        "    location = /api/contacts { set $bench_total 100000;"
          .. " content_by_lua_block { require('server').contacts() } }",
        "    location = /big/api/contacts { set $bench_total 1000000;"
          .. " content_by_lua_block { require('server').contacts() } }",
        "    location = /small/api/contacts { set $bench_total " .. SIZE.rss_small .. ";"
          .. " content_by_lua_block { require('server').contacts() } }",
        "    location = /quick/api/contacts { set $bench_total " .. SIZE.contacts .. ";"
          .. " content_by_lua_block { require('server').contacts() } }",
        "    location = /sized/api/contacts { set $bench_total " .. SIZE.rss_big .. ";"
          .. " content_by_lua_block { require('server').contacts() } }",
        "    location = /api/tags { content_by_lua_block { require('server').slow_post() } }",
        "  }",
        "}",
      }
      write_file(dir .. "/nginx.conf", table.concat(conf, "\n") .. "\n")
      local out2, started = capture(("nginx -p %s -c %s -e %s 2>&1"):format(
        sh_quote(dir .. "/"), sh_quote(dir .. "/nginx.conf"), sh_quote(dir .. "/error.log")))
      if started then
        self.running = true
        local deadline = socket.gettime() + 5
        while socket.gettime() < deadline do
          local c = socket.tcp()
          c:settimeout(0.2)
          if c:connect("127.0.0.1", self.port) then
            c:send("GET /__up HTTP/1.0\r\n\r\n")
            local line = c:receive("*l")
            c:close()
            if line and line:find(" 204 ", 1, true) then
              self.pid = tonumber(trim(read_file(dir .. "/nginx.pid")))
              return
            end
          else
            c:close()
          end
          socket.sleep(0.05)
        end
        error("nginx did not answer in time:\n" .. (read_file(dir .. "/error.log") or ""), 0)
      end
      if not (out2 .. (read_file(dir .. "/error.log") or "")):find("Address already in use", 1, true) then
        error("nginx did not start:\n" .. out2, 0)
      end
    end
    error("nginx: no free port pair found", 0)
  end)
  if not ok then
    self:stop()
    error(failure, 0)
  end
  local http = "http://127.0.0.1:" .. self.port
  local https = "https://127.0.0.1:" .. self.ssl_port
  self.api = http .. "/api"
  self.api_tls = https .. "/api"
  self.small_url = http .. "/api/contacts/1"
  self.small_url_tls = https .. "/api/contacts/1"
  self.pages = QUICK and (http .. "/quick/api") or self.api
  self.rss_small = http .. "/small/api"
  self.rss_big = QUICK and (http .. "/sized/api") or (http .. "/big/api")
  return self
end

function Server:stop()
  if self.stopped then return end
  self.stopped = true
  local pid = self.pid or tonumber(trim(read_file(self.dir .. "/nginx.pid") or ""))
  if pid then
    os.execute(("kill -QUIT %d 2>/dev/null"):format(pid))
    local deadline = socket.gettime() + 5
    while socket.gettime() < deadline and file_exists("/proc/" .. pid .. "/stat") do
      local st = (read_file("/proc/" .. pid .. "/stat") or ""):match("%)%s+(%a)")
      if st == "Z" then break end
      socket.sleep(0.05)
    end
    if file_exists("/proc/" .. pid .. "/stat") then os.execute(("kill -KILL %d 2>/dev/null"):format(pid)) end
  end
  if self.dir:find("^/tmp/audience%-bench%.") then os.execute("rm -rf " .. sh_quote(self.dir)) end
end

-- ------------------------------------------------------------------ running contenders

-- Runs one contender process; returns its "key=value" fields as numbers.
local function run_one(cmd)
  local out, ok = capture(ENV .. cmd .. " 2>&1")
  local r = {}
  for k, v in out:gmatch("([%w_]+)=([%d.]+)") do r[k] = tonumber(v) end
  if not ok or not r.elapsed then error("benchmark run failed: " .. cmd .. "\n" .. out, 0) end
  return r
end

-- Runs each contender `runs` times, interleaved (A B C A B C ...) so that a slow
-- moment of the machine does not land on one contender only. `expect` checks counts.
local function measure(contenders, runs, expect)
  local times = {}
  for _, c in ipairs(contenders) do times[c.name] = {} end
  for r = 1, runs do
    for _, c in ipairs(contenders) do
      if not c.runs or r <= c.runs then
        local res = run_one(c.cmd)
        if expect and res.count ~= expect then
          error(("%s: %s counted %s, expected %d"):format(c.name, c.cmd, tostring(res.count), expect), 0)
        end
        times[c.name][#times[c.name] + 1] = res.elapsed
        log("  %-22s run %d: %.3f s", c.name, r, res.elapsed)
      end
    end
  end
  local med = {}
  for name, ts in pairs(times) do med[name] = median(ts) end
  return med, times
end

local rows = {}
local function row(workload, contender, value, ratio, target, met)
  local result = met == nil and "" or (met and "met" or "NOT met")
  rows[#rows + 1] = { workload, contender, value, ratio or "", target or "", result }
end

local function secs(t) return ("%.3f s"):format(t) end

local function have_luasec()
  return pcall(require, "ssl.https")
end

-- ------------------------------------------------------------------ workloads

local W = {}

W[1] = function(s)
  local n = SIZE.gets
  log("workload 1: %d GETs of a small JSON object, keep-alive HTTP", n)
  local med = measure({
    { name = "floor", cmd = ("%s get %s %d"):format(FLOOR, s.small_url, n) },
    { name = "audience", cmd = ("%s audience get %s %d"):format(CONTENDER, s.api, n) },
    { name = "luasocket", cmd = ("%s luasocket get %s %d"):format(CONTENDER, s.small_url, n) },
  }, RUNS, n)
  local label = ("1. %d GETs, HTTP keep-alive"):format(n)
  row(label, "floor (C, libcurl + cjson)", secs(med.floor), "1.00")
  local r = med.audience / med.floor
  row(label, "audience (Lua 5.4)", secs(med.audience), ("%.2f × floor"):format(r), "≤ 1.15 × floor", r <= 1.15)
  row(label, "LuaSocket", secs(med.luasocket), ("%.2f × floor"):format(med.luasocket / med.floor))
end

W[2] = function(s)
  local n = SIZE.contacts
  log("workload 2: each over %d contacts, %d pages of 100", n, n // 100)
  local med = measure({
    { name = "floor", cmd = ("%s page %s"):format(FLOOR, s.pages .. "/contacts") },
    { name = "audience", cmd = ("%s audience page %s"):format(CONTENDER, s.pages) },
    { name = "luasocket", cmd = ("%s luasocket page %s"):format(CONTENDER, s.pages) },
  }, RUNS, n)
  local label = ("2. each over %d contacts (%d pages)"):format(n, n // 100)
  row(label, "floor (C, libcurl + cjson)", secs(med.floor), "1.00")
  local r = med.audience / med.floor
  row(label, "audience (Lua 5.4)", secs(med.audience), ("%.2f × floor"):format(r), "≤ 0.90 × floor", r <= 0.90)
  row(label, "LuaSocket", secs(med.luasocket), ("%.2f × floor"):format(med.luasocket / med.floor))
end

W[3] = function(s)
  local n = SIZE.gets
  log("workload 3: %d GETs over HTTPS (self-signed CA)", n)
  local contenders = {
    { name = "floor", cmd = ("%s get %s %d %s"):format(FLOOR, s.small_url_tls, n, sh_quote(s.ca_file)) },
    { name = "audience", cmd = ("%s audience get %s %d %s"):format(CONTENDER, s.api_tls, n, sh_quote(s.ca_file)) },
  }
  local luasec = have_luasec()
  if luasec then
    contenders[3] = { name = "luasocket", runs = RUNS_LONG,
      cmd = ("%s luasocket get %s %d %s"):format(CONTENDER, s.small_url_tls, n, sh_quote(s.ca_file)) }
  end
  local med = measure(contenders, RUNS, n)
  local label = ("3. %d GETs, HTTPS"):format(n)
  row(label, "floor (C, libcurl + cjson)", secs(med.floor), "1.00")
  row(label, "audience (Lua 5.4)", secs(med.audience), ("%.2f × floor"):format(med.audience / med.floor))
  if luasec then
    local r = med.luasocket / med.audience
    row(label, "LuaSocket + LuaSec", secs(med.luasocket), ("audience %.1f× faster"):format(r),
      "audience ≥ 10× faster", r >= 10)
  else
    row(label, "LuaSocket + LuaSec", "skipped", "lua-sec (ssl.https) is not installed",
      "audience ≥ 10× faster", false)
  end
end

W[4] = function(s)
  local n = SIZE.posts
  log("workload 4: %d POSTs answered after 20 ms, sequential vs parallel (8)", n)
  local med = measure({
    { name = "sequential", runs = QUICK and 1 or 1,
      cmd = ("%s audience post %s %d"):format(CONTENDER, s.api, n) },
    { name = "parallel", cmd = ("%s audience parallel %s %d 8"):format(CONTENDER, s.api, n) },
  }, RUNS_LONG, n)
  local label = ("4. %d POSTs, 20 ms each"):format(n)
  row(label, "audience sequential", secs(med.sequential), "1.00")
  local r = med.sequential / med.parallel
  row(label, "audience parallel (8)", secs(med.parallel), ("%.2f× faster"):format(r), "≥ 6× faster", r >= 6)
end

W[5] = function(s)
  log("workload 5: peak RSS of each over %d and %d contacts", SIZE.rss_small, SIZE.rss_big)
  local small = {}
  for r = 1, RUNS_LONG do
    local res = run_one(("%s audience page %s"):format(CONTENDER, s.rss_small))
    if res.count ~= SIZE.rss_small then error("workload 5: counted " .. tostring(res.count), 0) end
    small[r] = res.hwm_kb
    log("  %-22s run %d: %d kB peak RSS (%.3f s)", "100k", r, res.hwm_kb, res.elapsed)
  end
  local hwm_small = median(small)
  local big = run_one(("%s audience page %s"):format(CONTENDER, s.rss_big))
  if big.count ~= SIZE.rss_big then error("workload 5: counted " .. tostring(big.count), 0) end
  log("  %-22s run 1: %d kB peak RSS (%.3f s)", "1M", big.hwm_kb, big.elapsed)
  local mib = big.hwm_kb / 1024
  local growth = (big.hwm_kb - hwm_small) / hwm_small * 100
  local label = ("5. each over %d contacts, peak RSS"):format(SIZE.rss_big)
  row(label, ("audience, %d items"):format(SIZE.rss_small), ("%.1f MiB"):format(hwm_small / 1024))
  row(label, ("audience, %d items"):format(SIZE.rss_big), ("%.1f MiB"):format(mib),
    ("%.1f s walk"):format(big.elapsed), "< 64 MiB", mib < 64)
  row(label, ("growth %d → %d items"):format(SIZE.rss_small, SIZE.rss_big), ("%+.1f %%"):format(growth), "",
    "< 10 %", growth < 10)
end

-- Instructions (callgrind's Ir) of a whole process.
local function instructions(cmd, out)
  local text, ok = capture((ENV .. "valgrind --tool=callgrind --callgrind-out-file=%s %s 2>&1")
    :format(sh_quote(out), cmd))
  local data = read_file(out) or ""
  os.remove(out)
  local ir = tonumber(data:match("\nsummary:%s*(%d+)") or data:match("\ntotals:%s*(%d+)"))
  if not ok or not ir then error("callgrind run failed: " .. cmd .. "\n" .. text, 0) end
  return ir
end

W[6] = function(s)
  local n1, n2 = SIZE.callgrind[1], SIZE.callgrind[2]
  log("workload 6: callgrind instructions per request (%d and %d GETs, the difference)", n1, n2)
  if not capture("command -v valgrind") :find("valgrind") then
    row("6. instructions per GET (callgrind)", "all", "skipped", "valgrind is not installed")
    return
  end
  local out = s.dir .. "/callgrind.out"
  -- The stages of one GET, each program adding one to the one before (the floor and
  -- the rows in parentheses are for comparison): the transfer through the core,
  -- audience's JSON decoder, then the resource layer and the client pipeline
  -- (arguments, path, quota, auth lines, retries, errors).
  local function core_cmd(what)
    return function(n) return ("%s core %s %s %d"):format(CONTENDER, what, s.small_url, n) end
  end
  local progs = {
    { name = "floor", label = "floor (C, libcurl + cjson)",
      cmd = function(n) return ("%s get %s %d"):format(FLOOR, s.small_url, n) end },
    { name = "transfer", label = "stage 1: core.http():perform", cmd = core_cmd("transfer") },
    { name = "decode", label = "stage 2: + json.decode", after = "transfer", cmd = core_cmd("json") },
    { name = "cjson", label = "(stage 2 with cjson.decode)", after = "transfer", cmd = core_cmd("get") },
    { name = "audience", label = "stage 3: + pipeline, sys.contacts:get", after = "decode",
      cmd = function(n) return ("%s audience get %s %d"):format(CONTENDER, s.api, n) end },
    { name = "request", label = "(stage 3 through sys:request)", after = "decode",
      cmd = function(n) return ("%s audience request %s %d"):format(CONTENDER, s.api, n) end },
  }
  local per = {}
  for _, p in ipairs(progs) do
    local a = instructions(p.cmd(n1), out)
    local b = instructions(p.cmd(n2), out)
    per[p.name] = (b - a) / (n2 - n1)
    log("  %-22s %d GETs: %d Ir, %d GETs: %d Ir -> %.0f Ir/request", p.name, n1, a, n2, b, per[p.name])
  end
  local label = "6. instructions per GET (callgrind)"
  for _, p in ipairs(progs) do
    local v = per[p.name]
    local ratio = p.name == "floor" and "1.00" or ("%.2f × floor"):format(v / per.floor)
    if p.after then ratio = ratio .. (" (%+.0f)"):format(v - per[p.after]) end
    if p.name == "audience" then
      row(label, p.label, ("%.0f Ir"):format(v), ratio, "≤ 1.25 × floor", v / per.floor <= 1.25)
    else
      row(label, p.label, ("%.0f Ir"):format(v), ratio)
    end
  end
end

-- ------------------------------------------------------------------ main

local function machine()
  local cpu = (read_file("/proc/cpuinfo") or ""):match("model name%s*:%s*([^\n]+)") or "?"
  local mem = tonumber((read_file("/proc/meminfo") or ""):match("MemTotal:%s*(%d+)") or 0)
  local debian = trim(read_file("/etc/debian_version") or "?")
  local cc = trim(capture("cc --version 2>/dev/null | head -1"))
  local versions = trim(capture(LUA .. " -e " .. sh_quote(
    "package.cpath = '" .. ROOT .. "/build/lua5.4/?.so;' .. package.cpath; "
    .. "io.write(require('audience.core').curl_version())") .. " 2>/dev/null"))
  local nginx = trim(capture("nginx -v 2>&1")):gsub("^nginx version: ", "")
  local luasec = select(2, pcall(function() return require("ssl")._VERSION end))
  return {
    ("%s core(s) (nproc), %s, %.1f GiB RAM, Debian %s"):format(trim(capture("nproc")), cpu, mem / 1048576, debian),
    ("%s; %s; %s (%s); LuaSocket %s, LuaSec %s; server %s"):format(cc, versions, _VERSION,
      trim(capture(LUA .. " -v 2>&1")), require("socket")._VERSION or "?", tostring(luasec), nginx),
  }
end

local function print_table()
  local header = { "workload", "contender", "median", "ratio", "target", "result" }
  local widths = {}
  local function width(s) return utf8.len(s) or #s end
  for i, h in ipairs(header) do widths[i] = width(h) end
  for _, r in ipairs(rows) do
    for i, c in ipairs(r) do widths[i] = math.max(widths[i], width(c)) end
  end
  local function line(cells)
    local out = {}
    for i, c in ipairs(cells) do out[i] = c .. (" "):rep(widths[i] - width(c)) end
    return "| " .. table.concat(out, " | ") .. " |"
  end
  local sep = {}
  for i = 1, #header do sep[i] = ("-"):rep(widths[i]) end
  local lines = { line(header), line(sep) }
  for _, r in ipairs(rows) do lines[#lines + 1] = line(r) end
  return table.concat(lines, "\n")
end

local started = socket.gettime()
for _, prog in ipairs{ FLOOR, ROOT .. "/build/lua5.4/audience/core.so" } do
  if not file_exists(prog) then
    io.stderr:write("bench: " .. prog .. " is missing; run `make bench`\n")
    os.exit(1)
  end
end
local info = machine()
for _, l in ipairs(info) do log("%s", l) end

-- `lua5.4 bench/run.lua serve`: only the server, for profiling by hand; it stops when
-- standard input closes (or this process dies: the server's watchdog sees to that).
if arg[1] == "serve" then
  local s = Server.start()
  print(("small   %s\nsmall   %s (CA %s)\napi     %s\napi     %s\nbig     %s\nserver  %s"):format(
    s.small_url, s.small_url_tls, s.ca_file, s.api, s.api_tls, s.rss_big, s.dir))
  io.stdout:flush()
  pcall(io.read, "a")
  s:stop()
  os.exit(0)
end

local server
local ok, failure = pcall(function()
  server = Server.start()
  log("server: nginx on 127.0.0.1:%d (HTTP) and :%d (HTTPS), %s", server.port, server.ssl_port, server.dir)
  for i = 1, 6 do
    if ONLY[i] then W[i](server) end
  end
end)
if server then server:stop() end
if not ok then
  io.stderr:write("bench: ", tostring(failure), "\n")
  os.exit(1)
end

local results = print_table()
local total = socket.gettime() - started
print("")
print(("Machine: %s"):format(info[1]))
print(("Software: %s"):format(info[2]))
print(("Runs: median of %d (%d for LuaSec, sequential POSTs: 1, peak RSS: %d + 1); whole bench %.0f s"):format(
  RUNS, RUNS_LONG, RUNS_LONG, total))
print("")
print(results)
local failed = 0
for _, r in ipairs(rows) do if r[6] == "NOT met" then failed = failed + 1 end end
print("")
print(failed == 0 and "bench: every target met" or ("bench: %d target(s) NOT met"):format(failed))
