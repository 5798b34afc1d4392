-- Handlers of the front nginx in bench/nginx_bench.lua: the same GET of a small JSON
-- list made by audience (ngx transport) and by the floor, a minimal cosocket client.
local audience = require "audience"
local cjson = require "cjson.safe"

local ngx = _G.ngx
local M = {}

local upstream_port
local POOL = 1000

function M.configure(port)
  upstream_port = port
end

local clients = {}

-- /audience/fast and /audience/slow: the upstream answers at once or after 100 ms.
function M.audience(which)
  local client = clients[which]
  if not client then
    -- One account per path: two clients of one account share its quota state, and a
    -- client's first calls would wait on the other's quota probe.
    client = audience.systeme{
      api_key = "bench-key-" .. which, base_url = ("http://127.0.0.1:%d/%s"):format(upstream_port, which),
      timeout = 30, keepalive_pool = POOL,
      -- The bench measures the transport, not the account's quota.
      rate_limit = { limit = 1000000000, per = 1 },
    }
    clients[which] = client
  end
  local page, err = client.tags:list()
  if not page then
    ngx.status = 502
    ngx.say(tostring(err))
    return
  end
  ngx.say(#page.items)
end

-- The floor: one keep-alive cosocket GET, the status line, headers up to the blank
-- line, a Content-Length body, cjson.decode. Nothing audience does beyond that.
function M.floor(which)
  local sock = ngx.socket.tcp()
  sock:settimeouts(10000, 30000, 30000)
  local ok, err = sock:connect("127.0.0.1", upstream_port, { pool = "floor", pool_size = POOL })
  if not ok then
    ngx.status = 502
    ngx.say(err)
    return
  end
  sock:send("GET /" .. which .. "/tags HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n"
    .. "User-Agent: floor\r\n\r\n")
  local status = sock:receive("*l")
  local length
  while true do
    local line = sock:receive("*l")
    if not line or line == "" then break end
    local n = line:match("^[Cc]ontent%-[Ll]ength:%s*(%d+)")
    if n then length = tonumber(n) end
  end
  local body = length and sock:receive(length)
  local value = body and cjson.decode(body)
  if not (status and status:find(" 200 ", 1, true) and value) then
    sock:close()
    ngx.status = 502
    ngx.say("bad answer")
    return
  end
  sock:setkeepalive(60000, POOL)
  ngx.say(#value.items)
end

-- The ngx transport alone (no client pipeline): where the ratio to the floor goes.
local transport
function M.transport(which)
  transport = transport or require("audience.transport").new("ngx", { user_agent = "bench", keepalive_pool = POOL })
  local status, body = transport.http:perform("GET", ("http://127.0.0.1:%d/%s/tags"):format(upstream_port, which),
    { "Accept: application/json", "X-API-Key: bench-key" })
  local value = status == 200 and cjson.decode(body)
  if not value then
    ngx.status = 502
    ngx.say("bad answer")
    return
  end
  ngx.say(#value.items)
end

return M
