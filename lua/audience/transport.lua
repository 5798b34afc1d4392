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

--- name: "curl", "ngx", "dry-run" (audience.dry_run: reads through the transport of
--- the environment, writes shown) or nil (ngx inside nginx, else curl).
function M.new(name, settings, beneath_dry_run)
  if name == "dry-run" then
    if type(settings.dry_run) ~= "function" then
      error("audience: transport \"dry-run\" needs a dry_run function to show each write to", 0)
    end
    return require("audience.dry_run").new(settings, M.new(nil, settings, true))
  end
  if settings.dry_run ~= nil and not beneath_dry_run then
    error("audience: option 'dry_run' applies only with transport = \"dry-run\"", 0)
  end
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
