--- audience.Error: the one shape every failed call returns (and every iterator raises).
-- Its fields: `kind` (one of `KINDS`), `provider`, `status`, `code`, `message`,
-- `details` ({ field, message, code } each), `method`, `path`, `url` (secrets removed),
-- `retry_after`, `attempts`. `tostring(err)` gives one readable line.
-- @module audience.error
local Error = {}
Error.__index = Error
Error.__name = "audience.Error"

--- The kinds of failure, as a set.
-- @table KINDS
Error.KINDS = {
  network = true, timeout = true, rate_limited = true, auth = true, forbidden = true, validation = true,
  not_found = true, conflict = true, server = true, decode = true, http = true,
}

-- "scheme://user:password@host" -> "scheme://[REDACTED]@host": libcurl, Redis and
-- nginx quote URLs (a proxy's, a store's) in their messages, credentials and all.
local function drop_userinfo(s)
  if type(s) ~= "string" or not s:find("@", 1, true) then return s end
  return (s:gsub("(%a[%w+.-]*://)[^/%s@'\"<>]+@", "%1[REDACTED]@"))
end
Error.drop_userinfo = drop_userinfo

--- An error from its fields (URLs and messages lose any user:password in them).
-- @tparam table fields `kind` (required, one of `KINDS`) and the others
-- @treturn Error the error
function Error.new(fields)
  assert(Error.KINDS[fields.kind], "unknown error kind")
  for _, k in ipairs{ "message", "url", "path", "code" } do fields[k] = drop_userinfo(fields[k]) end
  if type(fields.details) == "table" then
    for _, d in ipairs(fields.details) do
      if type(d) == "table" then d.message = drop_userinfo(d.message) end
    end
  end
  return setmetatable(fields, Error)
end

--- Whether a value is an audience.Error.
-- @param v any value
-- @treturn boolean
function Error.is(v)
  return getmetatable(v) == Error
end

-- The kind an HTTP status means when the provider's body says nothing more precise.
function Error.kind_for_status(status)
  if status == 400 or status == 422 or status == 415 then return "validation" end
  -- 401: who you are (a bad key); 403: what you may do (a read-only key writing).
  if status == 401 then return "auth" end
  if status == 403 then return "forbidden" end
  if status == 404 or status == 410 then return "not_found" end
  if status == 409 then return "conflict" end
  if status == 429 then return "rate_limited" end
  if status >= 500 then return "server" end
  return "http"
end

-- "NAME: 422 validation: email: This value is already used (POST /contacts)"
function Error:__tostring()
  local out = { self.provider or "audience", ": " }
  if self.status then out[#out + 1] = tostring(self.status) .. " " end
  out[#out + 1] = self.kind
  if self.message and self.message ~= "" then
    out[#out + 1] = ": " .. self.message
  end
  if self.retry_after then
    out[#out + 1] = string.format(" (retry after %.3g s)", self.retry_after)
  end
  if self.method and self.path then
    out[#out + 1] = " (" .. self.method .. " " .. self.path .. ")"
  end
  return table.concat(out)
end

return Error
