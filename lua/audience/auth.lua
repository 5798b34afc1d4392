-- Authentication schemes. A provider names its scheme and credential options; this
-- turns them into a function giving the header lines of one attempt, and says which
-- values and headers are secrets (kept out of errors and hook arguments).
local M = {}

local SCHEMES = {}

-- A fixed header carrying the key (Systeme.io's X-API-Key).
function SCHEMES.header(desc, o)
  local line = desc.header .. ": " .. o[desc.credential]
  return function(_, _, _, _, base)
    local lines = { line }
    for i = 1, #base do lines[i + 1] = base[i] end
    return lines
  end, { desc.header }, { o[desc.credential] }, o[desc.credential]
end

--- Returns { lines = fn(client, method, url, body, base) -> header lines,
---           secrets = {...}, secret_headers = { lower-case name = true }, credential = s }
function M.prepare(provider, o)
  local desc = provider.auth
  local scheme = SCHEMES[desc.scheme]
  if not scheme then error("audience: unknown auth scheme '" .. tostring(desc.scheme) .. "'", 0) end
  local lines, headers, secrets, credential = scheme(desc, o)
  local secret_headers = {}
  for _, h in ipairs(headers) do secret_headers[h:lower()] = true end
  return { lines = lines, secrets = secrets, secret_headers = secret_headers, credential = credential }
end

return M
