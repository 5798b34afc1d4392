-- Where requests go out. A transport is three things the client pipeline needs:
-- `http:perform(method, url, header_lines, body, timeout)` with the C core's results,
-- `sleep(seconds)` and `now()` (epoch seconds).
local core = require "audience.core"

local M = {}

function M.new(name, settings)
  if name ~= nil and name ~= "curl" then
    error(("audience: transport '%s' is not supported"):format(tostring(name)), 0)
  end
  return { http = core.http(settings), sleep = core.sleep, now = core.now }
end

return M
