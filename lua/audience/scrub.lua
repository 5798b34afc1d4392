-- Keeping secrets out of what a client hands back: errors, hook arguments and the
-- headers of last_response. Used as methods of the client (client:_scrub and so on).
local core = require "audience.core"
local Error = require "audience.error"

local M = {}

local REDACTED = "[REDACTED]"
local find, type, pairs, ipairs = string.find, type, pairs, ipairs

local function replace_plain(s, secret)
  local from = 1
  while true do
    local i, j = s:find(secret, from, true)
    if not i then return s end
    s = s:sub(1, i - 1) .. REDACTED .. s:sub(j + 1)
    from = i + #REDACTED
  end
end

-- The client's own secrets and their encoded forms, in the order _scrub replaces them,
-- worked out once: scrubbing runs on every response header of every call.
local function secret_forms(self)
  local forms = self._secret_forms
  if not forms then
    forms = {}
    for _, secret in ipairs(self._secrets) do
      forms[#forms + 1] = secret
      local encoded = core.urlencode(secret)
      if encoded ~= secret then forms[#forms + 1] = encoded end
    end
    self._secret_forms = forms
  end
  return forms
end

--- Replaces every occurrence of the client's secrets, and of the call's own secrets
--- (`extra`, e.g. a magic-link token in the path), in `s`. Secrets also appear
--- percent-encoded in URLs, so both forms are replaced.
function M.scrub(self, s, extra)
  if type(s) ~= "string" then return s end
  local forms = secret_forms(self)
  for i = 1, #forms do s = replace_plain(s, forms[i]) end
  if extra then
    for _, secret in ipairs(extra) do
      s = replace_plain(s, secret)
      local encoded = core.urlencode(secret)
      if encoded ~= secret then s = replace_plain(s, encoded) end
    end
  end
  -- A URL's user:password (a base_url given with one) is a credential too.
  return Error.drop_userinfo(s)
end

function M.error(self, fields, method, path, url, extra)
  fields.provider = self._provider.name
  fields.method = method
  fields.path = self:_scrub(path, extra)
  fields.url = self:_scrub(url, extra)
  fields.message = self:_scrub(fields.message, extra)
  fields.code = self:_scrub(fields.code, extra)
  if fields.details then
    for _, d in ipairs(fields.details) do
      d.message = self:_scrub(d.message, extra)
      d.field = self:_scrub(d.field, extra)
      d.code = self:_scrub(d.code, extra)
    end
  end
  return Error.new(fields)
end

function M.redacted_headers(self, lines, extra)
  local out = {}
  for _, line in ipairs(lines) do
    local name, value = line:match("^([^:]+):%s*(.*)$")
    if name then
      if self._secret_headers[name:lower()] then value = REDACTED end
      out[name] = self:_scrub(value, extra)
    end
  end
  return out
end

-- What callers see of a response's headers: a server that echoes a credential back
-- (in a debugging header, say) must not hand it to logs through last_response or hooks.
-- The pipeline itself reads the headers as received.
-- Copies only when something had to be replaced: the table as received is returned
-- otherwise, which costs nothing on the hot path.
function M.headers(self, headers, extra)
  local forms, out = secret_forms(self), nil
  if not extra and core.headers_clean(headers, forms) then return headers end -- the usual case
  for name, value in pairs(headers) do
    local clean, tv = value, type(value)
    if tv == "table" then
      clean = {}
      for i, v in ipairs(value) do clean[i] = self:_scrub(v, extra) end
    elseif extra or tv ~= "string" then
      clean = self:_scrub(value, extra)
    else
      for i = 1, #forms do
        if find(clean, forms[i], 1, true) then clean = replace_plain(clean, forms[i]) end
      end
    end
    if clean ~= value then
      if not out then
        out = {}
        for k, v in pairs(headers) do out[k] = v end
      end
      out[name] = clean
    end
  end
  return out or headers
end

return M
