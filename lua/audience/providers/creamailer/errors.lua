-- Creamailer: {"success": false, "message", "errors": {"field": ["message", ...]}} (v1)
-- and {"message", "errors": {...}} (v2). The field lists are the useful part.
local readers = require "audience.error_readers"

local text, summarize = readers.text, readers.summarize

return function(body)
  if type(body) ~= "table" then return {} end
  local out = { message = text(body.message) }
  if type(body.errors) == "table" then
    local fields = {}
    for field in pairs(body.errors) do fields[#fields + 1] = tostring(field) end
    table.sort(fields)
    local details = {}
    for _, field in ipairs(fields) do
      local messages = body.errors[field]
      if type(messages) ~= "table" then messages = { messages } end
      for _, m in ipairs(messages) do
        details[#details + 1] = { field = field, message = text(m) }
      end
    end
    if #details > 0 then
      out.details = details
      out.message = summarize(details)
    end
  end
  return out
end
