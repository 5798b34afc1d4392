-- The caller's own header lines (a call's `headers`), checked and merged into the
-- client's.
local M = {}

local HEADER_NAME = "^[%w!#$%%&'*+.^_`|~-]+$"

-- A caller's header replaces the client's own of the same name (names are
-- case-insensitive): two Accept or Content-Type lines are refused by strict servers.
function M.add(lines, headers, credential_headers)
  for name, value in pairs(headers) do
    if type(name) ~= "string" or not name:find(HEADER_NAME) then
      error(("audience: bad header name %q"):format(tostring(name)), 0)
    end
    if credential_headers and credential_headers[name:lower()] then
      error(("audience: header '%s' is the client's credential; give it to the constructor"):format(name), 0)
    end
    if type(value) == "number" then value = tostring(value) end
    if type(value) ~= "string" or value:find("[%z\r\n]") then
      error(("audience: bad value for header '%s' (string without CR, LF or NUL expected)"):format(name), 0)
    end
    local lower = name:lower()
    for i = #lines, 1, -1 do
      if lines[i]:match("^([^:]*):"):lower() == lower then table.remove(lines, i) end
    end
    lines[#lines + 1] = name .. ": " .. value
  end
end

return M
