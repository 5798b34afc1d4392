-- Measures /ping on the front worker while the load runs: one keep-alive connection,
-- a GET every 10 ms for `seconds`, then prints "p50 p99 max count" in milliseconds.
--   lua5.4 bench/nginx/ping_probe.lua PORT SECONDS
local socket = require "socket"

local port, seconds = tonumber(arg[1]), tonumber(arg[2])
local sock = assert(socket.tcp())
sock:settimeout(10)
assert(sock:connect("127.0.0.1", port))
local took = {}
local stop = socket.gettime() + seconds
while socket.gettime() < stop do
  local t0 = socket.gettime()
  assert(sock:send("GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"))
  local length
  while true do
    local line = assert(sock:receive("*l"))
    if line == "" then break end
    local n = line:match("^[Cc]ontent%-[Ll]ength:%s*(%d+)")
    if n then length = tonumber(n) end
  end
  assert(sock:receive(length))
  took[#took + 1] = (socket.gettime() - t0) * 1000
  socket.sleep(0.01)
end
table.sort(took)
local function pct(p) return took[math.max(1, math.ceil(#took * p))] end
print(("%.2f %.2f %.2f %d"):format(pct(0.5), pct(0.99), took[#took], #took))
