-- What the providers' error readers share. A reader (a provider description's `errors`)
-- gets the decoded body (a table, or nil when it was not JSON), the status and the
-- headers, and returns a table of fields to merge into the audience.Error:
-- { code =, message =, details =, kind = }.
local M = {}

--- A non-empty string, or a number as text; nil for anything else.
function M.text(v)
  if type(v) == "string" and v ~= "" then return v end
  if type(v) == "number" then return tostring(v) end
  return nil
end

--- Joins details into one readable line for when the body has no summary of its own.
function M.summarize(details)
  local parts = {}
  for i = 1, math.min(#details, 5) do
    local d = details[i]
    parts[#parts + 1] = d.field and (d.field .. ": " .. (d.message or "invalid")) or (d.message or "invalid")
  end
  return table.concat(parts, "; ")
end

--- The reader of a provider that gives none: the status alone says what happened.
function M.none()
  return {}
end

return M
