-- Launch nginx + Lua mock servers (spec/mock/NAME.lua) for tests.
--
--   local mockserver = require "support.mockserver"
--   local m = mockserver.start("systeme", { accounts = { ... } })
--   m.port, m.root ("http://127.0.0.1:PORT"), m.url (root .. the mock's API prefix)
--   m:admin(method, path, body) / m:reset(cfg) / m:seed(res, n_or_list[, defaults])
--   m:fault(spec) / m:stats() / m:data(res) / m:requests() / m:request(method, path, opts)
--   m:stop()
local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"
local cjson = require "cjson"
local files = require "support.files"

local M = {}

local NGINX_MODULES = "/usr/lib/nginx/modules"

-- ---------------------------------------------------------------- paths

local shell_quote, popen_read = files.quote, files.capture

local function trim(s)
  local r = (s or ""):gsub("^%s+", ""):gsub("%s+$", "")
  return r
end

local function this_dir()
  local src = debug.getinfo(1, "S").source
  local path = src:sub(1, 1) == "@" and src:sub(2) or src
  local dir = path:match("^(.*)/[^/]*$") or "."
  local abs = trim(popen_read("cd " .. shell_quote(dir) .. " && pwd -P"))
  return abs ~= "" and abs or dir
end

local SUPPORT_DIR = this_dir()
local SPEC_DIR = SUPPORT_DIR:match("^(.*)/[^/]+$") or SUPPORT_DIR .. "/.."
M.spec_dir = SPEC_DIR
M.mock_dir = SPEC_DIR .. "/mock"

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

local read_file, write_file = files.read, files.write

local function tail(s, n)
  if not s or s == "" then return "(empty)" end
  local lines = {}
  for line in s:gmatch("[^\n]+") do lines[#lines + 1] = line end
  local from = math.max(1, #lines - (n or 20) + 1)
  return table.concat(lines, "\n", from)
end

local function nginx_binary()
  local env = os.getenv("AUDIENCE_NGINX")
  if env and env ~= "" then return env end
  for _, p in ipairs({ "/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx" }) do
    if file_exists(p) then return p end
  end
  return "nginx"
end

-- ---------------------------------------------------------------- processes

-- Returns the process state letter and start time of pid, or nil if gone.
local function proc_stat(pid)
  local s = read_file("/proc/" .. tostring(pid) .. "/stat")
  if not s then return nil end
  local rest = s:match("%)%s+(.*)$")
  if not rest then return nil end
  local fields = {}
  for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
  return fields[1], fields[20]
end

local function alive(pid, start)
  if not pid then return false end
  if file_exists("/proc/self/stat") then
    local state, st = proc_stat(pid)
    if not state or state == "Z" or state == "X" then return false end
    if start and st ~= start then return false end
    return true
  end
  return os.execute("kill -0 " .. math.floor(pid) .. " 2>/dev/null") == true
end

local function signal(pid, sig)
  os.execute(string.format("kill -%s %d 2>/dev/null", sig, math.floor(pid)))
end

local function own_pid()
  local s = read_file("/proc/self/stat")
  if s then
    local pid = s:match("^(%d+)")
    local _, start = nil, nil
    local rest = s:match("%)%s+(.*)$")
    if rest then
      local fields = {}
      for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
      start = fields[20]
    end
    return tonumber(pid), start
  end
  return nil
end

local function is_root()
  return trim(popen_read("id -u 2>/dev/null")) == "0"
end

-- ---------------------------------------------------------------- JSON

-- Decode JSON turning integral floats into integers (lua-cjson 2.1 yields floats on 5.3+).
local tointeger = math.tointeger or function(v) return v end   -- luacheck: ignore 143

local function normalize(v)
  if type(v) == "number" then
    return tointeger(v) or v
  elseif type(v) == "table" then
    for k, x in pairs(v) do v[k] = normalize(x) end
  end
  return v
end

function M.decode(s)
  local ok, v = pcall(cjson.decode, s)
  if not ok then return nil, v end
  return normalize(v)
end

function M.encode(v) return cjson.encode(v) end

M.null = cjson.null

-- ---------------------------------------------------------------- HTTP client

--- Plain HTTP request through luasocket.
-- opts: headers (table), body (string, or table -> JSON with application/json unless a
-- content-type header is given), timeout (seconds, default 5).
-- Returns res = { status, headers (lowercased names), body, json (decoded or nil), elapsed }
-- or nil, err (e.g. "timeout", "closed").
function M.request(method, url, opts)
  opts = opts or {}
  local headers = {}
  for k, v in pairs(opts.headers or {}) do headers[k:lower()] = v end
  local body = opts.body
  if type(body) == "table" then
    body = cjson.encode(body)
    if headers["content-type"] == nil then headers["content-type"] = "application/json" end
  end
  if body then headers["content-length"] = tostring(#body) end
  local chunks = {}
  local saved = http.TIMEOUT
  http.TIMEOUT = opts.timeout or 5
  local t0 = socket.gettime()
  local ok, r1, code, rheaders = pcall(http.request, {
    url = url, method = method, headers = headers,
    source = body and ltn12.source.string(body) or nil,
    sink = ltn12.sink.table(chunks), redirect = false,
  })
  http.TIMEOUT = saved
  local elapsed = socket.gettime() - t0
  if not ok then return nil, tostring(r1), elapsed end
  if not r1 then return nil, tostring(code), elapsed end
  local text = table.concat(chunks)
  local res = { status = code, headers = rheaders or {}, body = text, elapsed = elapsed }
  if text ~= "" then res.json = M.decode(text) end
  return res
end

-- ---------------------------------------------------------------- ports

--- A currently free TCP port on 127.0.0.1.
function M.free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return assert(tonumber(port))
end

-- ---------------------------------------------------------------- registry

local live = {}
-- stops every server still running when the Lua state closes (busted exits with close=true)
M._sentinel = setmetatable({}, { __gc = function()
  for m in pairs(live) do pcall(m.stop, m) end
end })

function M.stop_all()
  for m in pairs(live) do pcall(m.stop, m) end
end

-- ---------------------------------------------------------------- nginx.conf

local function render(opt, ctx)
  if opt == nil then return "" end
  if type(opt) == "function" then return opt(ctx) or "" end
  return tostring(opt)
end

local function build_conf(ctx, opts)
  local d = ctx.dir
  local lines = {}
  local function add(s) lines[#lines + 1] = s end
  add("load_module " .. NGINX_MODULES .. "/ndk_http_module.so;")
  add("load_module " .. NGINX_MODULES .. "/ngx_http_lua_module.so;")
  if ctx.root then add("user root;") end
  add("daemon on;")
  add("master_process on;")
  add("worker_processes 1;")
  add("pid " .. d .. "/nginx.pid;")
  add("error_log " .. d .. "/error.log " .. (opts.log_level or "warn") .. ";")
  add("worker_shutdown_timeout 1s;")
  add(render(opts.main_snippet, ctx))
  add("events { worker_connections 1024; }")
  add("http {")
  add("  access_log off;")
  add("  server_tokens off;")
  add("  client_body_temp_path " .. d .. "/client_body;")
  add("  proxy_temp_path " .. d .. "/proxy;")
  add("  fastcgi_temp_path " .. d .. "/fastcgi;")
  add("  uwsgi_temp_path " .. d .. "/uwsgi;")
  add("  scgi_temp_path " .. d .. "/scgi;")
  add("  client_body_buffer_size 16m;")
  add("  client_max_body_size 64m;")
  add("  keepalive_requests 100000;")
  add("  keepalive_timeout 60s;")
  add("  lua_check_client_abort on;")
  add("  lua_socket_log_errors off;")
  -- A mock kept beside its provider (opts.mock_dir) still finds common.lua here.
  add('  lua_package_path "' .. (opts.mock_dir and (opts.mock_dir .. "/?.lua;") or "") .. M.mock_dir .. '/?.lua;;";')
  local cpath = "/usr/lib/x86_64-linux-gnu/lua/5.1/?.so"
  if file_exists("/usr/lib/x86_64-linux-gnu/lua/5.1/cjson.so") then
    add('  lua_package_cpath "' .. cpath .. ';;";')
  end
  add(string.format('  init_by_lua_block { require("common").boot(%q, %q, { pid = %s, start = %s }) }',
    ctx.name, d .. "/config.json", tostring(ctx.owner_pid or "nil"),
    ctx.owner_start and string.format("%q", ctx.owner_start) or "nil"))
  add('  init_worker_by_lua_block { require("common").init_worker() }')
  add(render(opts.http_snippet, ctx))
  add("  server {")
  add("    listen 127.0.0.1:" .. ctx.port .. ";")
  if ctx.ssl_port then
    add("    listen 127.0.0.1:" .. ctx.ssl_port .. " ssl;")
    add("    ssl_certificate " .. opts.ssl.cert .. ";")
    add("    ssl_certificate_key " .. opts.ssl.key .. ";")
  end
  add("    server_name _;")
  add("    default_type application/json;")
  add("    location /__admin/ { content_by_lua_block { require(\"common\").admin() } }")
  add(render(opts.server_snippet, ctx))
  add("    location / {")
  add("      content_by_lua_block { require(\"common\").handle() }")
  add("      log_by_lua_block { require(\"common\").log_phase() }")
  add("    }")
  add("  }")
  add("}")
  return table.concat(lines, "\n") .. "\n"
end

-- ---------------------------------------------------------------- server object

local Server = {}
Server.__index = Server

local function admin_call(self, method, path, body, timeout)
  local res, err = M.request(method, self.root .. path, { body = body, timeout = timeout or 10 })
  if not res then error(string.format("mock admin %s %s failed: %s", method, path, err), 2) end
  if res.status < 200 or res.status > 299 then
    error(string.format("mock admin %s %s -> %d %s", method, path, res.status, res.body), 2)
  end
  return res.json
end

--- Admin call; returns decoded JSON, raises on transport errors and non-2xx answers.
function Server:admin(method, path, body)
  return admin_call(self, method, path, body)
end

--- Wipe data, counters, faults (and quota windows); optionally replace the config.
function Server:reset(config)
  return admin_call(self, "POST", "/__admin/reset", config)
end

--- Seed a resource: a count, a list of items, or a spec table {count=|items=, defaults=};
-- defaults are merged into each item.
function Server:seed(resource, n_or_list, defaults)
  local body = { resource = resource, defaults = defaults }
  if type(n_or_list) == "number" then
    body.count = n_or_list
  elseif type(n_or_list) == "table" and (n_or_list.items ~= nil or n_or_list.count ~= nil) then
    body.items, body.count = n_or_list.items, n_or_list.count
    body.defaults = n_or_list.defaults or defaults
  else
    body.items = n_or_list
  end
  return admin_call(self, "POST", "/__admin/seed", body)
end

--- Queue a fault: { match=, method=, times=, skip=, action = {...} }.
function Server:fault(spec)
  return admin_call(self, "POST", "/__admin/fault", spec)
end

function Server:clear_faults()
  return admin_call(self, "DELETE", "/__admin/faults")
end

function Server:stats()
  return admin_call(self, "GET", "/__admin/stats")
end

--- Full stored collection of a resource (public shape plus a few hidden fields).
function Server:data(resource)
  return admin_call(self, "GET", "/__admin/data/" .. resource)
end

--- The last requests in detail (headers with credentials redacted, body).
function Server:requests()
  return admin_call(self, "GET", "/__admin/requests")
end

--- HTTP request to a path relative to m.root (e.g. "/api/contacts"); see mockserver.request.
function Server:request(method, path, opts)
  return M.request(method, self.root .. path, opts)
end

function Server:error_log()
  return read_file(self.dir .. "/error.log") or ""
end

--- Stop nginx (QUIT, then KILL after a bounded wait) and remove the temp dir. Idempotent.
function Server:stop()
  if self.stopped then return end
  self.stopped = true
  live[self] = nil
  local pid = self.pid or tonumber(trim(read_file(self.dir .. "/nginx.pid")))
  if pid and alive(pid, self.pid_start) then
    signal(pid, "QUIT")
    local deadline = socket.gettime() + 3
    while alive(pid, self.pid_start) and socket.gettime() < deadline do socket.sleep(0.02) end
    if alive(pid, self.pid_start) then signal(pid, "KILL") end
  end
  if self.worker_pid and alive(self.worker_pid, self.worker_start) then
    local deadline = socket.gettime() + 1
    while alive(self.worker_pid, self.worker_start) and socket.gettime() < deadline do socket.sleep(0.02) end
    if alive(self.worker_pid, self.worker_start) then signal(self.worker_pid, "KILL") end
  end
  if self.dir and self.dir:match("^/tmp/audience%-mock%.") and not os.getenv("AUDIENCE_KEEP_MOCK_DIR") then
    os.execute("rm -rf " .. shell_quote(self.dir))
  end
end
Server.close = Server.stop

-- ---------------------------------------------------------------- start

local function make_dir()
  local dir = trim(popen_read("mktemp -d /tmp/audience-mock.XXXXXXXX 2>/dev/null"))
  if dir == "" then error("mockserver: mktemp -d failed") end
  for _, sub in ipairs({ "client_body", "proxy", "fastcgi", "uwsgi", "scgi" }) do
    os.execute("mkdir -p " .. shell_quote(dir .. "/" .. sub))
  end
  return dir
end

local function wait_health(root, deadline)
  while socket.gettime() < deadline do
    local res = M.request("GET", root .. "/__admin/health", { timeout = 0.5 })
    if res and res.status == 200 and type(res.json) == "table" then return res.json end
    socket.sleep(0.02)
  end
  return nil
end

--- Start the mock spec/mock/NAME.lua; config is handed to it as JSON.
-- opts: ssl = {cert=, key=} (adds an HTTPS listener: m.ssl_port, m.ssl_root, m.ssl_url),
--       http_snippet / server_snippet / main_snippet (string or function(ctx) -> string,
--       ctx = {dir, port, ssl_port, name}), log_level, start_timeout (default 5 s),
--       mock_dir (where NAME.lua is, when it is not in spec/mock/).
function M.start(name, config, opts)
  opts = opts or {}
  assert(type(name) == "string" and name:match("^[%w_]+$"), "mockserver.start: bad mock name")
  local mock_dir = opts.mock_dir or M.mock_dir
  if not file_exists(mock_dir .. "/" .. name .. ".lua") then
    error("mockserver.start: no mock " .. mock_dir .. "/" .. name .. ".lua", 2)
  end
  local root_user = is_root()
  local owner_pid, owner_start = own_pid()
  local config_json = (config == nil or next(config) == nil) and "{}" or cjson.encode(config)
  local nginx = nginx_binary()
  local last_err
  for _ = 1, 5 do
    local dir = make_dir()
    local ctx = { dir = dir, name = name, port = M.free_port(), root = root_user,
      owner_pid = owner_pid, owner_start = owner_start }
    if opts.ssl then ctx.ssl_port = M.free_port() end
    write_file(dir .. "/config.json", config_json)
    write_file(dir .. "/nginx.conf", build_conf(ctx, opts))
    local cmd = string.format("%s -p %s -c %s -e %s >%s 2>&1", shell_quote(nginx), shell_quote(dir .. "/"),
      shell_quote(dir .. "/nginx.conf"), shell_quote(dir .. "/error.log"), shell_quote(dir .. "/start.log"))
    local ok = os.execute(cmd)
    local self = setmetatable({ name = name, dir = dir, port = ctx.port, ssl_port = ctx.ssl_port }, Server)
    self.root = "http://127.0.0.1:" .. ctx.port
    if ok then
      live[self] = true
      local health = wait_health(self.root, socket.gettime() + (opts.start_timeout or 5))
      if health then
        self.pid = tonumber(trim(read_file(dir .. "/nginx.pid")))
        if self.pid then self.pid_start = select(2, proc_stat(self.pid)) end
        self.worker_pid = tointeger(health.pid) or health.pid
        if self.worker_pid then self.worker_start = select(2, proc_stat(self.worker_pid)) end
        self.prefix = health.prefix or ""
        self.url = self.root .. self.prefix
        if ctx.ssl_port then
          self.ssl_root = "https://127.0.0.1:" .. ctx.ssl_port
          self.ssl_url = self.ssl_root .. self.prefix
        end
        return self
      end
      last_err = "nginx did not answer /__admin/health in time\n" .. tail(self:error_log(), 30)
      self:stop()
    else
      local log = (read_file(dir .. "/start.log") or "") .. "\n" .. (read_file(dir .. "/error.log") or "")
      last_err = "nginx failed to start\n" .. tail(log, 30)
      os.execute("rm -rf " .. shell_quote(dir))
      if not log:find("Address already in use", 1, true) then break end
    end
  end
  error("mockserver.start(" .. name .. "): " .. tostring(last_err), 2)
end

return M
