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
  webhooks = require "audience.webhooks",
}

--- audience.systeme{ api_key = ..., ... } -> client (see the README for every option).
function audience.systeme(opts)
  return client.new(require "audience.providers.systeme", opts)
end

--- audience.creamailer{ access_token = ..., shared_secret = ..., version = 1 | 2, ... }
function audience.creamailer(opts)
  return client.new(require "audience.providers.creamailer", opts)
end

--- audience.subscribeflow{ api_key = "sf_live_..." } or { token = "<JWT>" }
function audience.subscribeflow(opts)
  return client.new(require "audience.providers.subscribeflow", opts)
end

return audience
