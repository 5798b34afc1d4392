--- Checking (and, for tests, making) the signatures providers put on webhook deliveries.
-- The comparison is done in C in constant time over the raw body bytes: verify what
-- arrived, never a body that was decoded and encoded again.
-- @module audience.webhooks
local core = require "audience.core"
local Error = require "audience.error"
local providers = require "audience.providers"

local M = {}

-- A provider's webhook scheme is its description's `webhook`: { header = the header
-- that carries the signature, signature = the format core.webhook_* reads and writes }.
local function scheme_of(provider)
  local desc = type(provider) == "string" and providers.get(provider)
  return desc and desc.webhook
end

local MESSAGES = {
  missing_signature = "the delivery has no %s header",
  malformed_signature = "the %s header is not a signature in a known format",
  mismatch = "the %s header does not match the body: check the secret, and verify the raw body "
    .. "as received (a decoded and re-encoded body does not match)",
}

local function check(fname, provider, raw_body, secret)
  local scheme = scheme_of(provider)
  if scheme == nil then
    local known = {}
    for _, name in ipairs(providers.names()) do
      if scheme_of(name) then known[#known + 1] = name end
    end
    table.sort(known)
    error(("audience: bad argument #1 to '%s' (provider: one of %s expected, got %s)")
      :format(fname, table.concat(known, ", "), tostring(provider)), 0)
  end
  if type(raw_body) ~= "string" then
    error(("audience: bad argument #2 to '%s' (raw_body: string expected, got %s)"):format(fname, type(raw_body)), 0)
  end
  if type(secret) ~= "string" or secret == "" then
    error(("audience: bad argument #4 to '%s' (secret: non-empty string expected, got %s)")
      :format(fname, type(secret) == "string" and "empty string" or type(secret)), 0)
  end
  return scheme
end

-- Header tables come in every case (ngx.req.get_headers() lower-cases, others don't),
-- and a repeated header may arrive as a list.
local function header(headers, name)
  local wanted = name:lower()
  for k, v in pairs(headers) do
    if type(k) == "string" and k:lower() == wanted then
      if type(v) == "table" then v = v[1] end
      return v
    end
  end
  return nil
end

--- Checks the signature of a delivery.
-- @tparam string provider the provider's name (one whose description has a webhook scheme)
-- @tparam string raw_body the body exactly as received
-- @tparam table headers the request's headers, in any case (a list value counts by its first)
-- @tparam string secret the webhook's shared secret
-- @treturn[1] boolean true when the signature matches
-- @treturn[2] nil
-- @treturn[2] Error of kind "auth" whose code says why: "missing_signature",
-- "malformed_signature" or "mismatch"
-- @raise when an argument is wrong or the provider signs no webhooks
function M.verify(provider, raw_body, headers, secret)
  local scheme = check("webhooks.verify", provider, raw_body, secret)
  if type(headers) ~= "table" then
    error(("audience: bad argument #3 to 'webhooks.verify' (headers: table expected, got %s)"):format(type(headers)), 0)
  end
  local name = scheme.header
  local value = header(headers, name)
  if type(value) ~= "string" then value = nil end
  local ok, reason = core.webhook_verify(scheme.signature, raw_body, value, secret)
  if ok then return true end
  return nil, Error.new{
    kind = "auth", code = reason, provider = provider,
    message = MESSAGES[reason]:format(name),
  }
end

--- The headers a provider would send with `raw_body`, for your own tests.
-- @tparam string provider the provider's name
-- @tparam string raw_body the body
-- @tparam string secret the webhook's shared secret
-- @tparam[opt] string style "hex" (default) or "base64" where the provider's format allows it
-- @treturn table { [header name] = signature }
function M.sign(provider, raw_body, secret, style)
  local scheme = check("webhooks.sign", provider, raw_body, secret)
  return { [scheme.header] = core.webhook_sign(scheme.signature, raw_body, secret, style) }
end

return M
