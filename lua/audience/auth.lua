-- Authentication schemes. A provider names a generic scheme (or gives its own, as a
-- function of the same shape) and its credential options; this turns them into a
-- function giving the header lines of one attempt, and says which values and headers
-- are secrets (kept out of errors and hook arguments).
local M = {}

local SCHEMES = {}

-- A fixed header carrying the key (X-API-Key: ...).
function SCHEMES.header(desc, o)
  local line = desc.header .. ": " .. o[desc.credential]
  return function(_, _, _, _, base)
    local lines = { line }
    for i = 1, #base do lines[i + 1] = base[i] end
    return lines
  end, { desc.header }, { o[desc.credential] }, o[desc.credential], true
end

-- Authorization: Bearer with one of several credentials (an API key or a JWT, say).
function SCHEMES.bearer(desc, o, provider_name)
  local given = {}
  for _, name in ipairs(desc.credentials) do
    if o[name] then given[#given + 1] = name end
  end
  if #given > 1 then
    error(("audience.%s: give '%s' or '%s', not both"):format(provider_name, given[1], given[2]), 0)
  end
  local credential = o[given[1]]
  local line = "Authorization: Bearer " .. credential
  return function(_, _, _, _, base)
    local lines = { line }
    for i = 1, #base do lines[i + 1] = base[i] end
    return lines
  end, { "Authorization" }, { credential }, credential, true
end

--- Returns { lines = fn(client, method, url, body, base) -> header lines,
---           secrets = {...}, secret_headers = { lower-case name = true }, credential = s,
---           fixed = true when the lines depend on `base` only (not on the request),
---           so a client may work them out once for a base it never changes }
function M.prepare(provider, o)
  local desc = provider.auth
  local scheme = type(desc.scheme) == "function" and desc.scheme or SCHEMES[desc.scheme]
  if not scheme then error("audience: unknown auth scheme '" .. tostring(desc.scheme) .. "'", 0) end
  local lines, headers, secrets, credential, fixed = scheme(desc, o, provider.name)
  -- A proxy's user:password is a credential too, given with a scheme or without one.
  local userinfo = o.proxy and (o.proxy:match("^%a[%w+.-]*://([^/@]+)@") or o.proxy:match("^([^/@]+)@"))
  if userinfo then
    secrets[#secrets + 1] = userinfo
    local password = userinfo:match(":(.+)$")
    if password then secrets[#secrets + 1] = password end
  end
  local secret_headers = {}
  for _, h in ipairs(headers) do secret_headers[h:lower()] = true end
  return { lines = lines, secrets = secrets, secret_headers = secret_headers, credential = credential,
           fixed = fixed == true }
end

return M
