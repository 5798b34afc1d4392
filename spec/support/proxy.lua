-- Starts spec/support/proxy_server.lua (a forward proxy with CONNECT) on a free
-- 127.0.0.1 port and stops it again.
--   local proxy = require("support.proxy").start{ user = "u", password = "p" }
--   proxy.url        -- "http://u:p@127.0.0.1:PORT" (percent-encoded)
--   proxy:log()      -- { "CONNECT 127.0.0.1:443 auth=ok", ... }
--   proxy:stop()
local socket = require "socket"
local mime = require "mime"
local mockserver = require "support.mockserver"

local M = {}

local Proxy = {}
Proxy.__index = Proxy

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function encode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

function Proxy:log()
  local lines = {}
  local f = io.open(self.log_path)
  if not f then return lines end
  for line in f:lines() do lines[#lines + 1] = line end
  f:close()
  return lines
end

function Proxy:stop()
  if self.pid then os.execute("kill " .. self.pid .. " 2>/dev/null") end
  self.pid = nil
  os.remove(self.log_path)
end

--- opts: user, password (both or neither).
function M.start(opts)
  opts = opts or {}
  local port = mockserver.free_port()
  local expected = "-"
  local userinfo = ""
  if opts.user then
    expected = "Basic " .. mime.b64(opts.user .. ":" .. opts.password)
    userinfo = encode(opts.user) .. ":" .. encode(opts.password) .. "@"
  end
  local log_path = os.tmpname()
  local script = mockserver.spec_dir .. "/support/proxy_server.lua"
  local p = assert(io.popen(("lua5.4 %s %d %s %s >/dev/null 2>&1 & echo $!"):format(
    sh_quote(script), port, sh_quote(log_path), sh_quote(expected))))
  local pid = tonumber(p:read("l"))
  p:close()
  local self = setmetatable({ pid = pid, port = port, log_path = log_path,
    url = "http://" .. userinfo .. "127.0.0.1:" .. port }, Proxy)
  for _ = 1, 100 do
    local c = socket.connect("127.0.0.1", port)
    if c then
      c:close()
      return self
    end
    socket.sleep(0.02)
  end
  self:stop()
  error("the proxy did not start")
end

return M
