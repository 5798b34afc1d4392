--- Creamailer conveniences: a list sync that spends few requests (one read of the list,
-- then batched imports of what is new or changed), and CSV rows as import entries.
-- `sync_list` is a method of every Creamailer client.
-- @module audience.providers.creamailer.helpers
local csv = require "audience.csv"
local options = require "audience.options"
local resource = require "audience.resource"
local helpers = require "audience.helpers"

local bad, same_email, text, items_of = helpers.bad, helpers.same_email, helpers.text, helpers.items_of
local catch, present, decode_cell = helpers.catch, helpers.present, helpers.decode_cell

local M = {}

local function norm_key(v)
  return type(v) == "string" and v:lower() or text(v)
end

-- Whether importing `entry` would change `current` (only what the entry gives counts).
local function subscriber_differs(entry, current, key)
  for k, v in pairs(entry) do
    if k == "custom_fields" and type(v) == "table" then
      local cf = type(current.custom_fields) == "table" and current.custom_fields or {}
      for ck, cv in pairs(v) do
        if text(cv) ~= text(cf[ck]) then return true end
      end
    elseif k ~= key and k ~= "update_existing" and type(v) ~= "table" then
      if k == "email" then
        if not same_email(v, current.email) then return true end
      elseif text(v) ~= text(current[k]) then
        return true
      end
    end
  end
  return false
end

-- What an export holds but an import must not send back.
local READ_ONLY = { id = true, list_id = true, created = true, updated = true }

-- A CSV row as an import entry: empty cells are left out (they would clear values),
-- a custom_fields cell holds a JSON object, read-only columns are dropped.
function M.subscriber_entry(row)
  local e = {}
  for k, v in pairs(row) do
    if k == "custom_fields" then
      local cf = type(v) == "table" and v or decode_cell(v)
      if type(cf) == "table" and next(cf) ~= nil then e.custom_fields = cf end
    elseif present(v) ~= nil and not READ_ONLY[k] then
      e[k] = v
    end
  end
  return e
end

--- The helper methods of a Creamailer client.
-- @type Creamailer
local Creamailer = {}
M.methods = Creamailer

--- Reads the list once (every status, 1,000 a page), then imports only the entries that
-- are new or, with update, differ; in batches, never one request per entry.
-- @tparam integer|string list_id the list
-- @tparam function|table|string source an iterator giving entry tables, a list of them,
-- or the path of a CSV file
-- @tparam[opt] table opts `key` (the field entries are matched by, "email" by default),
-- `update` (default true), `batch_size` (at most 500)
-- @treturn[1] table the report: `added`, `updated`, `unchanged`, `failed` ({ email,
-- reason } each), `not_sent`, `batches`
-- @treturn[1] Error|nil the error that stopped it early
-- @treturn[2] nil
-- @treturn[2] Error why the list could not be read
function Creamailer:sync_list(list_id, source, opts)
  local fname = "sync_list"
  resource.check_arg(fname, 1, "list_id", "id", list_id)
  local next_entry
  if type(source) == "string" then
    local rows, msg = csv.reader(source)
    if not rows then bad(fname, 2, "source", "readable CSV file (" .. msg .. ")", source) end
    next_entry = function()
      local row = rows()
      return row and M.subscriber_entry(row)
    end
  else
    next_entry = items_of(fname, 2, "source", source)
  end
  if opts ~= nil and type(opts) ~= "table" then bad(fname, 3, "opts", "table or nil", opts) end
  opts = opts or {}
  options.check_call_options(fname, opts, { key = "string", update = "boolean", batch_size = "positive_integer" })
  local key = opts.key or "email"
  local update = opts.update ~= false

  local current = {}
  local ok, err = catch(function()
    for s in self.subscribers:each(list_id, { status = "all" }) do
      if s[key] ~= nil then current[norm_key(s[key])] = s end
    end
  end)
  if not ok then return nil, err end

  local unchanged, local_failed = 0, {}
  -- Feeds the import only what must be sent; the rest is counted on the way.
  local function changed_entries()
    for _ = 1, math.huge do
      local entry = next_entry()
      if entry == nil then return nil end
      local k = type(entry) == "table" and entry[key] or nil
      if type(entry) ~= "table" then
        local_failed[#local_failed + 1] = { reason = "entry is not a table" }
      elseif k == nil or k == "" then
        local_failed[#local_failed + 1] = { email = entry.email, reason = "entry has no " .. key }
      else
        local cur = current[norm_key(k)]
        if not cur then return entry end
        if update and subscriber_differs(entry, cur, key) then return entry end
        unchanged = unchanged + 1
      end
    end
  end

  local report, ierr = self.subscribers:import(list_id, changed_entries,
    { update_existing = update, batch_size = opts.batch_size })
  report.unchanged = unchanged
  for _, f in ipairs(local_failed) do report.failed[#report.failed + 1] = f end
  return report, ierr
end

return M
