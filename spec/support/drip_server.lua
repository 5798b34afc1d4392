-- A TCP server that answers like a Redis stuck halfway through a reply: for every
-- connection it reads what is sent, then writes the start of a bulk string and one
-- more byte every `interval` seconds, never finishing. Run by specs as
--   lua5.4 spec/support/drip_server.lua PORT [INTERVAL]
-- and killed by them; it prints "ready" once it listens.
local socket = require "socket"

local port = assert(tonumber(arg[1]), "port expected")
local interval = tonumber(arg[2]) or 0.2

local server = assert(socket.bind("127.0.0.1", port))
server:settimeout(nil)
io.stdout:write("ready\n")
io.stdout:flush()

while true do
  local conn = server:accept()
  if conn then
    conn:settimeout(2)
    conn:receive(1)
    conn:send("$100000\r\n")
    -- Long enough for any spec's call to give up first.
    for _ = 1, math.floor(30 / interval) do
      if not conn:send("x") then break end
      socket.sleep(interval)
    end
    conn:close()
  end
end
