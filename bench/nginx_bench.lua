-- audience inside nginx against a floor, on one front worker, with Debian's wrk.
--
--   lua5.4 bench/nginx_bench.lua                 the full run (about 4 minutes)
--   BENCH_SECONDS=2 lua5.4 bench/nginx_bench.lua shorter runs (default 4 s)
--   BENCH_REPEAT=5 lua5.4 bench/nginx_bench.lua  runs per cell, the median kept (default 3)
--   BENCH_CONNS=10,50 lua5.4 bench/nginx_bench.lua only some concurrencies
--   BENCH_RSS=0 lua5.4 bench/nginx_bench.lua     skip the 300,000-call RSS check
--
-- Two nginx: an upstream (one worker) whose /fast/tags answers a small JSON list at
-- once and /slow/tags after 100 ms, and a front (one worker) where /audience/* makes
-- that call through audience.systeme on the ngx transport and /floor/* through a
-- minimal keep-alive cosocket GET + cjson.decode (bench/nginx/app.lua). wrk drives the
-- front at each concurrency while bench/nginx/ping_probe.lua times /ping on the same
-- worker. Reported: 2xx/s, errors (non-2xx and socket errors), p50/p99 latency,
-- /ping p99, and audience's 2xx/s as a ratio of the floor's in the same run. Then the
-- worker's RSS after 100,000 and after 300,000 audience calls. The machine's other load
-- moves the absolute numbers; the ratio, from interleaved runs, moves much less.
local socket = require "socket"

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function capture(cmd)
  local p = assert(io.popen(cmd .. " 2>&1", "r"))
  local out = p:read("a")
  local ok = p:close()
  return out, ok
end

local function trim(s) return ((s or ""):gsub("^%s+", ""):gsub("%s+$", "")) end

local here = arg[0]:match("^(.*)/[^/]*$") or "."
local ROOT = trim(capture("cd " .. sh_quote(here .. "/..") .. " && pwd -P"))
local SECONDS = tonumber(os.getenv("BENCH_SECONDS") or "4")
local REPEAT = tonumber(os.getenv("BENCH_REPEAT") or "3")
local CONNS = {}
for c in (os.getenv("BENCH_CONNS") or "10,50,200,1000"):gmatch("%d+") do CONNS[#CONNS + 1] = tonumber(c) end

-- BENCH_WHO=floor,transport,audience adds the transport without the client pipeline.
local WHO = {}
for w in (os.getenv("BENCH_WHO") or "floor,audience"):gmatch("%a+") do WHO[#WHO + 1] = w end

local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return port
end

local AS_ROOT = trim(capture("id -u")) == "0"

local function start_nginx(dir, name, body)
  local conf = dir .. "/" .. name .. ".conf"
  local f = assert(io.open(conf, "w"))
  f:write(table.concat({
    AS_ROOT and "user root;" or "",
    "load_module /usr/lib/nginx/modules/ndk_http_module.so;",
    "load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;",
    "worker_processes 1;", "worker_rlimit_nofile 16384;", "daemon on;",
    ("pid %s/%s.pid;"):format(dir, name), ("error_log %s/%s.error.log warn;"):format(dir, name),
    "events { worker_connections 8192; }",
    "http {", "  access_log off;", "  keepalive_requests 100000000;", "  keepalive_timeout 120s;",
    ("  client_body_temp_path %s/%s.body; proxy_temp_path %s/%s.proxy;"):format(dir, name, dir, name),
    ("  fastcgi_temp_path %s/f; uwsgi_temp_path %s/u; scgi_temp_path %s/s;"):format(dir, dir, dir),
    body, "}",
  }, "\n"))
  f:close()
  local out, ok = capture(("nginx -p %s/ -c %s"):format(sh_quote(dir), sh_quote(conf)))
  if not ok then error("nginx " .. name .. " did not start: " .. out) end
  return { pid_file = ("%s/%s.pid"):format(dir, name), log = ("%s/%s.error.log"):format(dir, name) }
end

local function stop_nginx(n)
  capture(("kill -QUIT $(cat %s 2>/dev/null) 2>/dev/null; sleep 0.5; kill -KILL $(cat %s 2>/dev/null) 2>/dev/null")
    :format(sh_quote(n.pid_file), sh_quote(n.pid_file)))
end

local function to_ms(v, unit)
  v = tonumber(v)
  if unit == "us" then return v / 1000 elseif unit == "s" then return v * 1000 end
  return v
end

-- wrk's summary: requests, non-2xx, socket errors, p50 and p99 latency.
local function wrk(url, conns, seconds)
  local out = capture(("wrk -t1 -c%d -d%ds --timeout 10s --latency %s"):format(conns, seconds, sh_quote(url)))
  local r = { requests = tonumber(out:match("(%d+) requests in")) or 0 }
  r.seconds = tonumber(out:match("requests in ([%d.]+)s")) or seconds
  r.non2xx = tonumber(out:match("Non%-2xx or 3xx responses: (%d+)")) or 0
  local c, rd, w, t = out:match("Socket errors: connect (%d+), read (%d+), write (%d+), timeout (%d+)")
  r.socket_errors = (tonumber(c) or 0) + (tonumber(rd) or 0) + (tonumber(w) or 0) + (tonumber(t) or 0)
  local v, unit = out:match("\n%s+50%%%s+([%d.]+)(%a+)")
  r.p50 = v and to_ms(v, unit)
  v, unit = out:match("\n%s+99%%%s+([%d.]+)(%a+)")
  r.p99 = v and to_ms(v, unit)
  r.ok_per_s = (r.requests - r.non2xx) / r.seconds
  r.errors = r.non2xx + r.socket_errors
  r.raw = out
  return r
end

local function worker_rss(front)
  local master = trim(capture("cat " .. sh_quote(front.pid_file)))
  local pid = trim(capture("pgrep -P " .. master)):match("%d+")
  local status = capture("cat /proc/" .. pid .. "/status")
  return tonumber(status:match("VmRSS:%s+(%d+)")), pid
end

local dir = trim(capture("mktemp -d /tmp/audience-nginx-bench.XXXXXX"))
local up_port, front_port = free_port(), free_port()
local upstream = start_nginx(dir, "upstream", ([[
  server {
    listen 127.0.0.1:%d backlog=4096;
    default_type application/json;
    location /fast/ {
      return 200 '{"items":[{"id":1,"name":"vip","createdAt":"2024-01-01T00:00:00+00:00"}],"hasMore":false}';
    }
    location /slow/ {
      content_by_lua_block {
        ngx.sleep(0.1)
        local body = '{"items":[{"id":1,"name":"vip","createdAt":"2024-01-01T00:00:00+00:00"}],"hasMore":false}'
        ngx.header["Content-Type"] = "application/json"
        ngx.header["Content-Length"] = #body
        ngx.print(body)
      }
    }
  }]]):format(up_port))
local front = start_nginx(dir, "front", ([[
  lua_package_path "%s/lua/?.lua;%s/lua/?/init.lua;%s/bench/?.lua;;";
  lua_package_cpath "%s/build/luajit/?.so;;";
  lua_shared_dict audience_quota 1m;
  init_by_lua_block { require("nginx.app").configure(%d) }
  server {
    listen 127.0.0.1:%d backlog=4096;
    location = /ping { return 200 "pong\n"; }
    location = /audience/fast { content_by_lua_block { require("nginx.app").audience("fast") } }
    location = /audience/slow { content_by_lua_block { require("nginx.app").audience("slow") } }
    location = /floor/fast { content_by_lua_block { require("nginx.app").floor("fast") } }
    location = /floor/slow { content_by_lua_block { require("nginx.app").floor("slow") } }
    location = /transport/fast { content_by_lua_block { require("nginx.app").transport("fast") } }
    location = /transport/slow { content_by_lua_block { require("nginx.app").transport("slow") } }
  }]]):format(ROOT, ROOT, ROOT, ROOT, up_port, front_port))

local base = "http://127.0.0.1:" .. front_port
local ok, failure = pcall(function()
  socket.sleep(0.3)
  -- Every client once, so that no cell pays for a first connection or quota probe.
  for _, path in ipairs{ "/audience/fast", "/floor/fast", "/audience/slow", "/floor/slow",
                         "/transport/fast", "/transport/slow" } do
    local warm = wrk(base .. path, 10, 1)
    if warm.requests == 0 or warm.non2xx > 0 then error("warm-up of " .. path .. " failed:\n" .. warm.raw) end
  end

  local function median(list)
    table.sort(list)
    return list[math.ceil(#list / 2)]
  end

  print(("one front worker, wrk -t1, %d s per run, median of %d interleaved runs per cell; "
    .. "upstream: one nginx worker"):format(SECONDS, REPEAT))
  print("| upstream | c | client | 2xx/s | errors | p50 ms | p99 ms | /ping p99 ms | vs floor |")
  print("|---|---|---|---|---|---|---|---|---|")
  for _, delay in ipairs{ "slow", "fast" } do
    for _, c in ipairs(CONNS) do
      local cells = {}
      for _, who in ipairs(WHO) do cells[who] = { rate = {}, errors = 0, p50 = {}, p99 = {}, ping = {} } end
      for _ = 1, REPEAT do
        for _, who in ipairs(WHO) do
          local probe = io.popen(("lua5.4 %s %d %d"):format(sh_quote(ROOT .. "/bench/nginx/ping_probe.lua"),
            front_port, SECONDS))
          local r = wrk(("%s/%s/%s"):format(base, who, delay), c, SECONDS)
          local ping = probe:read("a")
          probe:close()
          local cell = cells[who]
          cell.rate[#cell.rate + 1] = r.ok_per_s
          cell.errors = cell.errors + r.errors
          cell.p50[#cell.p50 + 1] = r.p50 or -1
          cell.p99[#cell.p99 + 1] = r.p99 or -1
          cell.ping[#cell.ping + 1] = tonumber(ping:match("^%S+%s+(%S+)")) or -1
        end
      end
      local floor_rate = median(cells.floor.rate)
      for _, who in ipairs(WHO) do
        local cell = cells[who]
        local rate = median(cell.rate)
        print(("| %s | %d | %s | %.0f | %d | %.1f | %.1f | %.1f | %s |"):format(
          delay == "slow" and "100 ms" or "0 ms", c, who, rate, cell.errors, median(cell.p50), median(cell.p99),
          median(cell.ping), who ~= "floor" and floor_rate > 0 and ("%.2f"):format(rate / floor_rate) or ""))
        io.stdout:flush()
      end
    end
  end

  if os.getenv("BENCH_RSS") ~= "0" then
    -- RSS after 100,000 and after 300,000 audience calls (c = 50, no upstream delay).
    local done = 0
    local function until_calls(n)
      while done < n do
        local r = wrk(base .. "/audience/fast", 50, 2)
        if r.requests == 0 then error("no progress:\n" .. r.raw) end
        done = done + r.requests
      end
    end
    until_calls(100000)
    local rss1, pid = worker_rss(front)
    local at1 = done
    until_calls(300000)
    local rss2 = worker_rss(front)
    print(("worker %s RSS: %d kB after %d calls, %d kB after %d calls (%+.1f%%)"):format(
      pid, rss1, at1, rss2, done, (rss2 - rss1) * 100 / rss1))
  end

  local log = capture("cat " .. sh_quote(front.log))
  local crashes = 0
  for line in log:gmatch("[^\n]+") do if line:find("exited on signal", 1, true) then crashes = crashes + 1 end end
  print(("front error.log: %d worker crashes, %d lines"):format(crashes, select(2, log:gsub("\n", "\n"))))
end)

stop_nginx(front)
stop_nginx(upstream)
capture("rm -rf " .. sh_quote(dir))
if not ok then
  io.stderr:write(tostring(failure), "\n")
  os.exit(1)
end
