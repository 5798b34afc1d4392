-- SubscribeFlow: {"error": {"code", "message", "details": [{field, message}]}}, whose
-- code names the kind of failure better than the status does.
local readers = require "audience.error_readers"

local text = readers.text

local KINDS = {
  validation_error = "validation", unauthorized = "auth", forbidden = "forbidden",
  not_found = "not_found", conflict = "conflict", rate_limited = "rate_limited",
  internal_error = "server",
}

return function(body)
  local e = type(body) == "table" and body.error
  if type(e) ~= "table" then return {} end
  local out = { code = text(e.code), message = text(e.message) }
  out.kind = out.code and KINDS[out.code]
  if type(e.details) == "table" then
    out.details = readers.details(e.details, "field", "message", "code")
  end
  return out
end
