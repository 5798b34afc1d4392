-- Runs inside an nginx worker thread (ngx.run_worker_thread), in a Lua VM of the
-- thread pool's own: the blocking libcurl call happens here, off the event loop.
-- Only plain values cross: settings and the request in, the core's results out.
local core = require "audience.core"

local M = {}

-- The thread's VM lives on between calls, so its handles keep their connections.
local handles = {}

function M.perform(settings, method, url, headers, body, timeout)
  local key = settings.key
  local http = handles[key]
  if not http then
    http = core.http(settings.options)
    handles[key] = http
  end
  return http:perform(method, url, headers, body, timeout)
end

return M
