-- Systeme.io is built on API Platform: RFC 7807 problem documents, with a list of
-- constraint `violations` on 422, and a bare `{detail}` on 401.
local readers = require "audience.error_readers"

local text, summarize = readers.text, readers.summarize

return function(body)
  if type(body) ~= "table" then return {} end
  local out = { message = text(body.detail) or text(body["hydra:description"]) or text(body.title) }
  if type(body.violations) == "table" then
    local details = readers.details(body.violations, "propertyPath", "message", "code")
    out.details = details
    if not out.message and #details > 0 then out.message = summarize(details) end
  end
  return out
end
