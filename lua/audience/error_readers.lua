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

--- A list of field errors as audience.Error details ({ field, message, code }), read
--- with the keys the API names them by; entries that are not tables are skipped.
function M.details(list, field_key, message_key, code_key)
  local details = {}
  for _, d in ipairs(list) do
    if type(d) == "table" then
      details[#details + 1] = { field = M.text(d[field_key]), message = M.text(d[message_key]),
        code = M.text(d[code_key]) }
    end
  end
  return details
end

--- The reader of a provider that gives none: the status alone says what happened.
function M.none()
  return {}
end

return M
