--- Creamailer's batched import, shared by both API versions: the description of the
-- version gives the path and the shape of the body.
-- @module audience.providers.creamailer.import
local resource = require "audience.resource"
local options = require "audience.options"

local MAX_BATCH = 500

--- `cm.subscribers:import(list_id, entries [, opts])`: entries in batches of at most 500.
-- The report accounts for every entry: added + updated + #failed == the entries given.
-- @function import
-- @tparam table self the subscribers resource
-- @tparam integer|string list_id the list
-- @tparam function|table entries a list of entry tables, or an iterator giving one per call
-- @tparam[opt] table opts `update_existing` (boolean), `batch_size` (at most 500)
-- @treturn table the report: `added`, `updated`, `failed` ({ email, reason } each),
-- `not_sent` (emails), `batches`
-- @treturn[opt] Error the error of a batch that failed outright (the rest is not sent)
return function(self, list_id, entries, opts)
  local fname = "subscribers:import"
  resource.check_arg(fname, 1, "list_id", "id", list_id)
  local next_entry
  if type(entries) == "table" then
    local i, n = 0, #entries
    next_entry = function()
      i = i + 1
      if i <= n then return entries[i] end
    end
  elseif type(entries) == "function" then
    next_entry = entries
  else
    error("audience: bad argument #2 to '" .. fname .. "' (entries: list or iterator expected, got "
      .. options.describe(entries) .. ")", 0)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("audience: bad argument #3 to '" .. fname .. "' (opts: table or nil expected, got " .. type(opts) .. ")", 0)
  end
  opts = opts or {}
  options.check_call_options(fname, opts, { update_existing = "boolean", batch_size = "positive_integer" })
  local batch_size = math.min(opts.batch_size or MAX_BATCH, MAX_BATCH)
  local update_existing = opts.update_existing == true

  local def = self._def.import
  local path = resource.fill(def.path, { list_id = list_id })
  local report = { added = 0, updated = 0, failed = {}, not_sent = {}, batches = 0 }
  local failure
  local batch = {}

  local function fail_entry(entry_email, reason)
    report.failed[#report.failed + 1] = { email = entry_email, reason = reason }
  end

  local function send()
    if #batch == 0 then return end
    report.batches = report.batches + 1
    local result, err = self._client:_call("POST", path, { body = def.body(batch, update_existing) })
    result = result and self:_result(result)
    if type(result) ~= "table" then
      failure = err or self._client:_error({ kind = "decode", message = "import answer has no report" },
        "POST", path, self._client:_url(path))
      for _, e in ipairs(batch) do
        fail_entry(e.email, "batch failed: " .. tostring(failure))
      end
    else
      report.added = report.added + (tonumber(result.added) or 0)
      report.updated = report.updated + (tonumber(result.updated) or 0)
      for _, f in ipairs(type(result.failed) == "table" and result.failed or {}) do
        if type(f) == "table" then fail_entry(f.email, f.reason or "rejected") end
      end
    end
    batch = {}
  end

  for entry in next_entry do
    local email = type(entry) == "table" and entry.email or nil
    if type(email) ~= "string" or email == "" then
      fail_entry(type(email) == "string" and email or nil, "entry has no email")
    elseif failure then
      -- An earlier batch failed outright: stop sending, but account for the rest.
      fail_entry(email, "not sent: an earlier batch failed")
      report.not_sent[#report.not_sent + 1] = email
    else
      local copy = {}
      for k, v in pairs(entry) do copy[k] = v end
      batch[#batch + 1] = copy
      if #batch >= batch_size then send() end
    end
  end
  send()
  return report, failure
end
