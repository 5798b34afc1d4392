-- audience: one module for the Systeme.io, Creamailer and SubscribeFlow APIs.
local core = require "audience.core"
local json = require "audience.json"
local Error = require "audience.error"
local client = require "audience.client"
local providers = require "audience.providers"

local audience = {
  _VERSION = core._VERSION,
  null = json.null,
  array = json.array,
  Error = Error,
  webhooks = require "audience.webhooks",
}

--- audience.client(name, opts) -> a client of any provider known by name: a folder of
--- lua/audience/providers/ or one given to audience.register_provider.
function audience.client(name, opts)
  local desc = providers.get(name)
  if not desc then
    error(("audience: bad argument #1 to 'audience.client' (name: a provider expected, got %s)")
      :format(type(name) == "string" and ("'" .. name .. "'") or type(name)), 0)
  end
  return client.new(desc, opts)
end

--- audience.register_provider(name, description_or_module_name): a provider kept
--- outside the module, usable by name in audience.client, webhooks and the command.
audience.register_provider = providers.register

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

-- Files: exports and streamed reads (see helpers.lua, csv.lua, jsonl.lua).
local helpers = require "audience.helpers"
local contact_rows = require "audience.providers.systeme.rows"

--- audience.export(iterator_or_list, path_or_handle, "csv" | "jsonl" [, opts]) -> count | nil, err, count
audience.export = helpers.export
--- audience.read_csv(path_or_handle [, { header = false }]) -> iterator over (row, line)
audience.read_csv = require("audience.csv").reader
--- audience.read_jsonl(path_or_handle) -> iterator over (value, line)
audience.read_jsonl = require("audience.jsonl").reader
--- Systeme.io contacts as flat rows and back (CSV exports that import again).
audience.flatten_contact = contact_rows.flatten_contact
audience.unflatten_contact = contact_rows.unflatten_contact
audience.CONTACT_COLUMNS = contact_rows.CONTACT_COLUMNS

return audience
