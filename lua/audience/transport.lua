-- Where requests go out. A transport is three things the client pipeline needs:
-- `http:perform(method, url, header_lines, body, timeout)` with the C core's results,
-- `sleep(seconds)` and `now()` (epoch seconds).
--
-- "curl": the core's libcurl handle, blocking the caller.
-- "ngx":  inside nginx, HTTP/1.1 on nginx's non-blocking sockets (audience.ngx_http):
--         a call yields the request's coroutine to the event loop instead of blocking
--         the worker; waits use ngx.sleep.
local core = require "audience.core"

local M = {}

local function in_nginx()
  return rawget(_G, "ngx") ~= nil and type(_G.ngx.get_phase) == "function"
end

--- name: "curl", "ngx" or nil (ngx inside nginx, else curl).
function M.new(name, settings)
  if name == nil then name = in_nginx() and "ngx" or "curl" end
  if name == "ngx" then
    if not in_nginx() then
      error("audience: transport \"ngx\" needs to run inside nginx (OpenResty / lua-nginx-module)", 0)
    end
    return require("audience.ngx_http").new(settings)
  end
  return { name = "curl", http = core.http(settings), sleep = core.sleep, now = core.now }
end

return M
