-- Starts Debian's nginx with the Lua module on free 127.0.0.1 ports for specs that
-- drive an OpenResty application over HTTP, and stops it again.
--
--   local nginx = require "support.nginx"
--   local app = nginx.start{ workers = 4, main = "...", http = "...", server = "..." }
--   app.url  -- "http://127.0.0.1:PORT"
--   app:stop()
-- The application sees this tree's lua/ and spec/ on its package.path and the LuaJIT
-- build of the core (build/luajit) on its package.cpath.
local mockserver = require "support.mockserver"

local M = {}

-- The exit status travels in the output: under LuaJIT io.popen():close() is always
-- true, so it could never report a failure.
local function sh(cmd)
  local p = assert(io.popen("(" .. cmd .. ") 2>&1; echo \"__status=$?\""))
  local out = p:read("a")
  p:close()
  local body, status = out:match("^(.-)__status=(%d+)%s*$")
  return tonumber(status) == 0, body or out
end

M.sh = sh

local function repo_root()
  local spec_dir = mockserver.spec_dir
  return (spec_dir:gsub("/spec$", ""))
end

M.root = repo_root()

--- Builds the core for LuaJIT (nginx's Lua) if it is not built yet.
function M.build_core()
  local ok, out = sh(("make -s -C %q LUA=luajit BUILD=build/luajit"):format(M.root))
  if not ok then error("cannot build the LuaJIT core: " .. out) end
end

local App = {}
App.__index = App

-- A worker that dies on a signal is a crash whatever the specs saw: nginx starts a
-- new one and the next request may well succeed.
local function crashes(log)
  local found = {}
  for line in log:gmatch("[^\n]+") do
    if line:find("exited on signal", 1, true) or line:find("[alert]", 1, true) and line:find("signal", 1, true) then
      found[#found + 1] = line
    end
  end
  return found
end

M.crashes = crashes

--- Stops nginx; raises when its error.log tells of a worker crash.
function App:stop()
  if self.stopped then return end
  self.stopped = true
  sh(("kill -QUIT $(cat %q) 2>/dev/null"):format(self.dir .. "/nginx.pid"))
  for _ = 1, 100 do
    if not sh(("kill -0 $(cat %q 2>/dev/null) 2>/dev/null"):format(self.dir .. "/nginx.pid")) then break end
    sh("sleep 0.05")
  end
  local crashed = crashes(self:error_log())
  sh(("kill -KILL $(cat %q 2>/dev/null) 2>/dev/null"):format(self.dir .. "/nginx.pid"))
  sh(("pkill -KILL -f %q"):format("nginx -p " .. self.dir .. "/"))
  sh(("rm -rf %q"):format(self.dir))
  if #crashed > 0 then error("nginx worker crashed:\n" .. table.concat(crashed, "\n"), 2) end
end

--- `nginx -s reload`: new workers take over, the old ones finish what they hold.
function App:reload()
  local ok, out = sh(("nginx -p %q -c %q -s reload"):format(self.dir .. "/", self.dir .. "/nginx.conf"))
  if not ok then error("nginx -s reload failed: " .. out) end
end

function App:error_log()
  local f = io.open(self.dir .. "/error.log")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

--- opts: workers, main (main-context lines), http (http-context lines), server
--- (lines inside the server block), env (list of variable names to pass through).
function M.start(opts)
  M.build_core()
  local _, dir = sh("mktemp -d /tmp/audience-nginx.XXXXXX")
  dir = dir:gsub("%s+$", "")
  local port = mockserver.free_port()
  local root = M.root
  local conf = {
    "load_module /usr/lib/nginx/modules/ndk_http_module.so;",
    "load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;",
    "worker_processes " .. (opts.workers or 1) .. ";",
    "daemon on;",
    "pid " .. dir .. "/nginx.pid;",
    "error_log " .. dir .. "/error.log warn;",
    opts.main or "",
    "events { worker_connections 1024; }",
    "http {",
    "  access_log off;",
    "  client_body_temp_path " .. dir .. "/body; proxy_temp_path " .. dir .. "/proxy;",
    "  fastcgi_temp_path " .. dir .. "/fcgi; uwsgi_temp_path " .. dir .. "/uwsgi; scgi_temp_path " .. dir .. "/scgi;",
    ('  lua_package_path "%s/lua/?.lua;%s/lua/?/init.lua;%s/spec/?.lua;;";'):format(root, root, root),
    ('  lua_package_cpath "%s/build/luajit/?.so;;";'):format(root),
    opts.http or "",
    "  server {",
    "    listen 127.0.0.1:" .. port .. ";",
    opts.server or "",
    "    location = /__up { return 204; }",
    "  }",
    "}",
  }
  -- As root, workers would run as nobody and could not read the tree.
  local _, uid = sh("id -u")
  if tonumber(uid) == 0 then table.insert(conf, 3, "user root;") end
  local f = assert(io.open(dir .. "/nginx.conf", "w"))
  f:write(table.concat(conf, "\n"), "\n")
  f:close()
  local app = setmetatable({ dir = dir, port = port, url = "http://127.0.0.1:" .. port }, App)
  local ok, out = sh(("nginx -p %q -c %q"):format(dir .. "/", dir .. "/nginx.conf"))
  if not ok then
    app:stop()
    error("nginx did not start: " .. out)
  end
  for _ = 1, 100 do
    local res = mockserver.request("GET", app.url .. "/__up", { timeout = 0.5 })
    if res and res.status == 204 then return app end
    sh("sleep 0.05")
  end
  local log = app:error_log()
  app:stop()
  error("nginx did not answer: " .. log)
end

return M
