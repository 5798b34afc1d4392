-- A forward HTTP proxy for the specs, in one luasocket process:
--   lua5.4 spec/support/proxy_server.lua PORT LOG EXPECTED_AUTH
-- CONNECT host:port opens a tunnel; any other request (absolute-form) is relayed to
-- the host:port of its URL as is (nginx accepts absolute-form too). A request whose
-- Proxy-Authorization is not EXPECTED_AUTH ("-" for none) gets 407. Each request head
-- is logged to LOG as "METHOD TARGET auth=ok|bad", never with the credentials.
local socket = require "socket"

local port, log_path, expected = tonumber(arg[1]), arg[2], arg[3]
local server = assert(socket.bind("127.0.0.1", port))
server:settimeout(0)

local function log(line)
  local f = assert(io.open(log_path, "a"))
  f:write(line, "\n")
  f:close()
end

local peers = {}      -- socket -> { peer = other socket } once relaying, or { head = "" }
local sockets = { server }

local function add(s, state)
  s:settimeout(0)
  peers[s] = state
  sockets[#sockets + 1] = s
end

local function drop(s)
  peers[s] = nil
  for i, x in ipairs(sockets) do if x == s then table.remove(sockets, i) break end end
  s:close()
end

local function start(client, head)
  local method, target = head:match("^(%S+) (%S+)")
  local auth = head:match("\r\n[Pp]roxy%-[Aa]uthorization: ([^\r]*)\r\n") or "-"
  local ok = auth == expected
  log(("%s %s auth=%s"):format(method, target, ok and "ok" or "bad"))
  if not ok then
    client:send("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    return drop(client)
  end
  local host, p
  if method == "CONNECT" then
    host, p = target:match("^([^:]+):(%d+)$")
  else
    host, p = target:match("^http://([^:/]+):?(%d*)")
  end
  local up = host and socket.connect(host, tonumber(p) or 80)
  if not up then
    client:send("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    return drop(client)
  end
  add(up, { peer = client })
  peers[client] = { peer = up }
  if method == "CONNECT" then
    client:send("HTTP/1.1 200 Connection established\r\n\r\n")
  else
    up:send(head)
  end
end

while true do
  local readable = socket.select(sockets, nil, 1)
  for _, s in ipairs(readable) do
    if s == server then
      local c = server:accept()
      if c then add(c, { head = "" }) end
    elseif peers[s] then
      local data, err, partial = s:receive(8192)
      data = data or partial
      local state = peers[s]
      if state.peer then
        if data and #data > 0 then state.peer:send(data) end
        if err == "closed" then
          local other = state.peer
          drop(s)
          if peers[other] then drop(other) end
        end
      else
        state.head = state.head .. (data or "")
        local at = state.head:find("\r\n\r\n", 1, true)
        if at then
          local head = state.head
          start(s, head)
        elseif err == "closed" then
          drop(s)
        end
      end
    end
  end
end
