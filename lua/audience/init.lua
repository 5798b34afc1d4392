--- One module for the Systeme.io, Creamailer and SubscribeFlow APIs.
--
-- A client per provider (`audience.systeme`, `audience.creamailer`,
-- `audience.subscribeflow`, or `audience.client` by name) offers one table per resource
-- (see `Resource`) and the calls of `Client`. Every failure of the API comes back as
-- `nil, err` with an `audience.Error`; a wrong argument raises, naming it.
-- @module audience
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

--- A client of any provider known by name: a folder of lua/audience/providers/ or one
-- given to `register_provider`.
-- @tparam string name the provider's name ("systeme", "creamailer", ...)
-- @tparam table opts the provider's credentials and the options every constructor takes
-- @treturn Client the client
-- @raise when no provider has that name, or an option is wrong
function audience.client(name, opts)
  local desc = providers.get(name)
  if not desc then
    error(("audience: bad argument #1 to 'audience.client' (name: a provider expected, got %s)")
      :format(type(name) == "string" and ("'" .. name .. "'") or type(name)), 0)
  end
  return client.new(desc, opts)
end

--- Makes a provider kept outside the module usable by name, in `client`, `webhooks`
-- and the command.
-- @function register_provider
-- @tparam string name the name it is known by
-- @tparam table|string source its description, or the name of the module returning it
audience.register_provider = providers.register

--- A Systeme.io client.
-- @tparam table opts `api_key` (required) and the options every constructor takes
-- (`base_url`, `timeout`, `connect_timeout`, `retries`, `rate_limit`, `user_agent`,
-- `proxy`, `ca_file`, `verify_tls`, `on_request`, `on_response`, `transport`)
-- @treturn Client the client, with the resources contacts, tags, contact_fields,
-- webhooks, courses, enrollments, communities, memberships and subscriptions
-- @raise when an option is wrong or the key is missing
function audience.systeme(opts)
  return client.new(require "audience.providers.systeme", opts)
end

--- A Creamailer client.
-- @tparam table opts `access_token` and `shared_secret` (required), `version` (1, the
-- default, or 2) and the options every constructor takes
-- @treturn Client the client, with the resources lists, subscribers and suppressions
-- @raise when an option is wrong or a credential is missing
function audience.creamailer(opts)
  return client.new(require "audience.providers.creamailer", opts)
end

--- A SubscribeFlow client.
-- @tparam table opts `api_key` ("sf_live_...") or `token` (a JWT), not both, and the
-- options every constructor takes
-- @treturn Client the client, with the resources subscribers, tags, preferences and webhooks
-- @raise when an option is wrong or no credential is given
function audience.subscribeflow(opts)
  return client.new(require "audience.providers.subscribeflow", opts)
end

-- Files: exports and streamed reads (see helpers.lua, csv.lua, jsonl.lua).
local helpers = require "audience.helpers"
local contact_rows = require "audience.providers.systeme.rows"

--- Streams items to a CSV or JSON-lines file.
-- @function export
-- @tparam function|table source an iterator (such as `sys.contacts:each{...}`) or a list
-- @tparam string|file file a path (created or truncated, closed at the end) or an open
-- handle (flushed, left open)
-- @tparam string format "csv" or "jsonl"
-- @tparam[opt] table opts `columns` (names; default the first item's keys, sorted, id and
-- email first), `transform` (function(item) -> row), `header` (CSV, default true),
-- `line_end` (CSV, "\r\n" by default, or "\n")
-- @treturn[1] integer the number of items written
-- @treturn[2] nil
-- @treturn[2] Error|string the iterator's error, or an I/O message
-- @treturn[2] integer the number of items written before it
audience.export = helpers.export

--- Reads a CSV file (RFC 4180) one row at a time, in constant memory.
-- @function read_csv
-- @tparam string|file src a path or an open file handle
-- @tparam[opt] table opts `header = false` for rows as lists instead of tables keyed by
-- the first row's names
-- @treturn[1] function an iterator giving (row, line number); it raises on malformed input
-- @treturn[2] nil
-- @treturn[2] string why the file cannot be read
audience.read_csv = require("audience.csv").reader

--- Reads a JSON-lines file one value at a time, in constant memory.
-- @function read_jsonl
-- @tparam string|file src a path or an open file handle
-- @treturn[1] function an iterator giving (value, line number); it raises on a line that
-- is not JSON
-- @treturn[2] nil
-- @treturn[2] string why the file cannot be read
audience.read_jsonl = require("audience.jsonl").reader

--- A Systeme.io contact as one flat row (CSV exports that import again): scalars as
-- they are, tags as names joined with ";", fields as one { slug = value } table.
-- @function flatten_contact
-- @tparam table contact a contact as the API gives it
-- @treturn table a row with every one of `CONTACT_COLUMNS` (missing values are `null`)
audience.flatten_contact = contact_rows.flatten_contact

--- A row read back as what `upsert_contact` takes: { email, locale, fields, tags, ... }.
-- @function unflatten_contact
-- @tparam table row a flattened row, a contact as the API gives it, or a plain CSV row
-- whose other columns are field slugs
-- @treturn table the contact's parts; empty cells are absent values
audience.unflatten_contact = contact_rows.unflatten_contact

--- The columns of a flattened contact, in export order.
-- @table CONTACT_COLUMNS
audience.CONTACT_COLUMNS = contact_rows.CONTACT_COLUMNS

return audience
