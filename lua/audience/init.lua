-- audience: one module for the Systeme.io, Creamailer and SubscribeFlow APIs.
local core = require "audience.core"
local json = require "audience.json"
local Error = require "audience.error"
local client = require "audience.client"

local audience = {
  _VERSION = core._VERSION,
  null = json.null,
  array = json.array,
  Error = Error,
}

--- audience.systeme{ api_key = ..., ... } -> client (see the README for every option).
function audience.systeme(opts)
  return client.new(require "audience.providers.systeme", opts)
end

return audience
