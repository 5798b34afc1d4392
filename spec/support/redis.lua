-- Starts a throw-away redis-server on a free 127.0.0.1 port for specs.
--
--   local redis = require "support.redis"
--   local srv = redis.start({ password = "..." })   -- raises if it is not up within 5 s
--   srv.port, srv.url ("redis://[:password@]127.0.0.1:PORT"), srv.pid
--   srv:command("HGETALL", key)  -- one command over a fresh connection: the reply
--                                -- (string, number, table, nil) or nil, "ERR ..."
--   srv:pause() / srv:resume()   -- SIGSTOP / SIGCONT: a server that stops answering
--   srv:stop()                   -- SHUTDOWN NOSAVE, then SIGKILL; idempotent
--   srv:restart()                -- a fresh (empty) server on the same port
--
-- Nothing is persisted (--save '' --appendonly no) and every server is stopped when the
-- Lua state closes, so nothing is left running after busted exits.
local socket = require "socket"

local M = {}

local START_TIMEOUT = 5   -- seconds for a new server to answer PING
local STOP_TIMEOUT = 3    -- seconds for SHUTDOWN before SIGKILL

local files = require "support.files"
local shell_quote, read_file = files.quote, files.read

local function popen_read(cmd)
  return assert(files.capture(cmd))
end

-- A zombie (exited, not yet reaped by whoever inherited it) counts as gone.
local function alive(pid)
  local stat = read_file("/proc/" .. pid .. "/stat")
  if not stat then return false end
  local state = stat:match("%)%s+(%S)")
  return state ~= nil and state ~= "Z" and state ~= "X"
end

local function signal(pid, sig)
  os.execute(string.format("kill -%s %d 2>/dev/null", sig, pid))
end

function M.available()
  local r = os.execute("command -v redis-server >/dev/null 2>&1")
  return r == true or r == 0 -- Lua 5.4 / LuaJIT
end

function M.free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return assert(tonumber(port))
end

-- ------------------------------------------------------------------ RESP client

local function encode(args)
  local out = { "*" .. #args .. "\r\n" }
  for _, a in ipairs(args) do
    a = tostring(a)
    out[#out + 1] = "$" .. #a .. "\r\n" .. a .. "\r\n"
  end
  return table.concat(out)
end

local function read_reply(conn)
  local line, err = conn:receive("*l")
  if not line then return nil, "receive: " .. tostring(err) end
  local kind, rest = line:sub(1, 1), line:sub(2)
  if kind == "+" then return rest end
  if kind == "-" then return nil, rest end
  if kind == ":" then return tonumber(rest) end
  if kind == "$" then
    local n = tonumber(rest)
    if n < 0 then return nil end
    local data, rerr = conn:receive(n + 2)
    if not data then return nil, "receive: " .. tostring(rerr) end
    return data:sub(1, n)
  end
  if kind == "*" then
    local n = tonumber(rest)
    if n < 0 then return nil end
    local t = {}
    for i = 1, n do
      local v, verr = read_reply(conn)
      if v == nil and verr then return nil, verr end
      t[i] = v == nil and false or v
    end
    return t
  end
  return nil, "bad reply: " .. line
end

local function raw_command(port, password, timeout, ...)
  local conn = socket.tcp()
  conn:settimeout(timeout or 1)
  local ok, err = conn:connect("127.0.0.1", port)
  if not ok then conn:close() return nil, "connect: " .. tostring(err) end
  if password then
    conn:send(encode({ "AUTH", password }))
    local r, aerr = read_reply(conn)
    if not r then conn:close() return nil, aerr end
  end
  local sent, serr = conn:send(encode({ ... }))
  if not sent then conn:close() return nil, "send: " .. tostring(serr) end
  local r, rerr = read_reply(conn)
  conn:close()
  return r, rerr
end

-- ------------------------------------------------------------------ server

local live = {}
M._sentinel = setmetatable({}, { __gc = function()
  for s in pairs(live) do pcall(s.stop, s) end
end })

local Server = {}
Server.__index = Server

function Server:command(...)
  return raw_command(self.port, self.password, 2, ...)
end

local function launch(self)
  local args = {
    "redis-server", "--port", tostring(self.port), "--bind", "127.0.0.1",
    "--save", "''", "--appendonly", "no", "--daemonize", "no",
    "--dir", shell_quote(self.dir), "--protected-mode", "no",
  }
  if self.password then
    args[#args + 1] = "--requirepass"
    args[#args + 1] = shell_quote(self.password)
  end
  -- env -u LD_PRELOAD: under the ASan run the sanitizer runtime must not be forced
  -- into redis-server (env execs it, so $! is the server's pid). The shell stays
  -- to wait for the server, so it is reaped even where pid 1 reaps nothing; closing
  -- self.proc after the server exits reaps the shell.
  local cmd = string.format("env -u LD_PRELOAD %s >>%s 2>&1 </dev/null & echo $!; wait $!",
    table.concat(args, " "), shell_quote(self.dir .. "/redis.log"))
  self.proc = assert(io.popen(cmd, "r"))
  self.pid = assert(tonumber(self.proc:read("*l")), "redis-server did not start")
  live[self] = true
  self.stopped = false
  local deadline = socket.gettime() + START_TIMEOUT
  while socket.gettime() < deadline do
    if self:command("PING") == "PONG" then return self end
    if not alive(self.pid) then break end
    socket.sleep(0.02)
  end
  local log = read_file(self.dir .. "/redis.log") or ""
  self:stop()
  error("redis-server did not answer PING on port " .. self.port .. ":\n" .. log, 0)
end

--- Starts a server. opts: password (requirepass), port (default: a free one).
function M.start(opts)
  opts = opts or {}
  local dir = popen_read("mktemp -d /tmp/audience-redis.XXXXXXXX"):gsub("%s+$", "")
  assert(dir ~= "", "mktemp -d failed")
  local self = setmetatable({ dir = dir, port = opts.port or M.free_port(),
                              password = opts.password }, Server)
  self.url = string.format("redis://%s127.0.0.1:%d", self.password and (":" .. self.password .. "@") or "",
    self.port)
  return launch(self)
end

function Server:pause() signal(self.pid, "STOP") end
function Server:resume() signal(self.pid, "CONT") end

local function stop_process(self)
  if self.stopped then return end
  self.stopped = true
  if self.pid and alive(self.pid) then
    signal(self.pid, "CONT") -- a paused server cannot shut down
    raw_command(self.port, self.password, 0.5, "SHUTDOWN", "NOSAVE")
    local deadline = socket.gettime() + STOP_TIMEOUT
    while alive(self.pid) and socket.gettime() < deadline do socket.sleep(0.01) end
    if alive(self.pid) then signal(self.pid, "KILL") end
    deadline = socket.gettime() + STOP_TIMEOUT
    while alive(self.pid) and socket.gettime() < deadline do socket.sleep(0.01) end
  end
  -- Only once the server is gone: close() waits for the shell, which waits for it.
  if self.proc and not alive(self.pid) then
    self.proc:close()
    self.proc = nil
  end
end

--- Stops the server and removes its directory. Idempotent.
function Server:stop()
  stop_process(self)
  live[self] = nil
  if self.dir and self.dir:match("^/tmp/audience%-redis%.") then
    os.execute("rm -rf " .. shell_quote(self.dir))
    self.dir = nil
  end
end

--- Stops the process only (the port closes): the server is down until restart().
function Server:kill()
  stop_process(self)
end

--- A fresh, empty server on the same port.
function Server:restart()
  stop_process(self)
  return launch(self)
end

function M.stop_all()
  for s in pairs(live) do pcall(s.stop, s) end
end

return M
