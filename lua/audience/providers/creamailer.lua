-- Creamailer: v1 (the documented API: SHA-1 signatures, `.json` routes, 0-based pages,
-- 400 + Retry-After when over quota) and v2 (HMAC-SHA256, no extension, 1-based pages
-- with meta.last_page, 429). `version = 2` picks v2.
local resource = require "audience.resource"
local options = require "audience.options"
local json = require "audience.json"
local calls = require "audience.providers.creamailer_calls"

local MAX_BATCH = 500

-- subscribers:import(list_id, entries, { update_existing = bool, batch_size = n })
-- `entries` is a list or an iterator function giving one entry table per call. Entries
-- go in batches of at most 500. The report accounts for every entry:
-- added + updated + #failed == the number of entries given.
local function import(self, list_id, entries, opts)
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

-- Both official SDKs put the flag on every entry, never beside the list: a server that
-- ignores unknown keys would otherwise update nothing.
local function v1_import_body(batch, update_existing)
  for _, e in ipairs(batch) do e.update_existing = update_existing end
  return { Subscribers = json.array(batch) }
end

local function v2_import_body(batch, update_existing)
  for _, e in ipairs(batch) do e.update_existing = update_existing end
  return { subscribers = json.array(batch) }
end

-- v1 answers a create with the id as a string ("id": "1234") while get gives an
-- integer: one type for both.
local function integer_id(item)
  if type(item) == "table" and type(item.id) == "string" and item.id:find("^%d+$") and #item.id < 16 then
    item.id = tonumber(item.id)
  end
  return item
end

-- The subscriber filters both versions document.
local SUBSCRIBER_FILTERS = {
  status = { enum = { "active", "unsubscribed", "bounced", "spamreport", "deleted", "all" } },
  date = { pattern = "^%d%d%d%d%-%d%d%-%d%d$", expected = "a date YYYY-MM-DD" },
}

-- What both versions accept as pagesize: the official v1 SDK asks for 50,000 rows by
-- default, v2 documents at most 1,000.
local function page_rules(first, max)
  return { page = { integer = true, min = first }, pagesize = { integer = true, min = 1, max = max } }
end

local V1 = {
  base_url = "https://api.cmfile.net/v1/api",
  client_methods = { ping = calls.ping_at("/connection_test.json") },
  quota_refusal = { status = 400, header = "retry-after" },
  -- `each` asks for 1,000 rows a page (constant memory); a caller may ask for up to 50,000.
  paging = { style = "page", page = "page", size = "pagesize", first = 0, default = 100, max = 1000,
             rules = page_rules(0, 50000) },
  -- {"success": false} in a 200 is still a refusal.
  body_error = function(body)
    if type(body) == "table" and body.success == false then return "validation" end
  end,
  resources = {
    lists = {
      path = "/lists.json", item = "/lists/{id}.json",
      list = { paginated = false }, get = true, create = { result = integer_id }, delete = true,
      update = { method = "PUT", returns_true = true },
      methods = { fields = calls.v2_only("lists:fields") },
    },
    subscribers = {
      scope = { "list_id" }, path = "/lists/subscribers/{list_id}.json", list = { rules = SUBSCRIBER_FILTERS },
      actions = {
        add = { method = "POST", path = "/subscribers/{list_id}.json", args = { { "body", "table" } },
                body = "body", returns_true = true },
        get = { method = "GET", path = "/subscribers/{list_id}.json", args = { { "email", "string" } },
                query = { email = "email" } },
        update = { method = "PUT", path = "/subscribers/{list_id}.json", args = { { "body", "table" } },
                   body = "body", returns_true = true },
      },
      import = { path = "/subscribers/import/{list_id}.json", body = v1_import_body },
      methods = { import = import, delete = calls.delete_at("/subscribers/{list_id}.json"),
                  activity = calls.v2_only("subscribers:activity"),
                  each_activity = calls.v2_only("subscribers:each_activity") },
    },
    suppressions = {
      path = "/suppressions.json", list = true,
      actions = {
        add = { method = "POST", path = "/suppressions.json",
                args = { { "email", "string" }, { "reason", "optional_string" } },
                body = { email = "email", reason = "reason" }, returns_true = true },
        remove = { method = "DELETE", path = "/suppressions.json", args = { { "email", "string" } },
                   query = { email = "email" }, returns_true = true },
      },
    },
  },
}

local V2 = {
  base_url = "https://api.cmfile.net/v2/api",
  client_methods = { ping = calls.ping_at("/connection-test") },
  unwrap = "data",
  paging = { style = "page", page = "page", size = "pagesize", first = 1, default = 100, max = 1000,
             items = "data", meta = "meta", current = "current_page", last = "last_page", total = "total",
             rules = page_rules(1, 1000) },
  -- 100 requests an hour for each key, counted apart from v1's.
  quota_scope = "creamailer-v2",
  resources = {
    lists = {
      path = "/lists", list = { paginated = false, paging = { items = "data" } },
      get = true, create = true, delete = true, update = { method = "PUT" },
      methods = { fields = calls.fields },
    },
    subscribers = {
      scope = { "list_id" }, path = "/lists/{list_id}/subscribers", list = { rules = SUBSCRIBER_FILTERS },
      actions = {
        add = { method = "POST", path = "/lists/{list_id}/subscribers", args = { { "body", "table" } },
                body = "body", returns_true = true },
        get = { method = "GET", path = "/lists/{list_id}/subscribers/show", args = { { "email", "string" } },
                query = { email = "email" } },
        update = { method = "PUT", path = "/lists/{list_id}/subscribers", args = { { "body", "table" } },
                   body = "body" },
      },
      import = { path = "/lists/{list_id}/subscribers/import", body = v2_import_body },
      methods = { import = import, delete = calls.delete_at("/lists/{list_id}/subscribers"),
                  activity = calls.activity, each_activity = calls.each_activity },
    },
    suppressions = {
      path = "/suppressions", list = true,
      actions = {
        add = { method = "POST", path = "/suppressions",
                args = { { "email", "string" }, { "reason", "optional_string" } },
                body = { email = "email", reason = "reason" }, returns_true = true },
        remove = { method = "DELETE", path = "/suppressions", args = { { "email", "string" } },
                   query = { email = "email" }, returns_true = true },
      },
    },
  },
}

local provider = {
  name = "creamailer",
  options = { access_token = "secret", shared_secret = "secret", version = { 1, 2 } },
  required = { { "access_token" }, { "shared_secret" } },
  auth = { scheme = "creamailer", token = "access_token", secret = "shared_secret" },
  errors = "creamailer",
  -- 100 requests per hour (v2: per key), spent no faster than the API allows.
  default_budget = { limit = 100, per = 3600 },
  query_arrays = "comma",
}

local variants = {}
for version, shape in pairs{ [1] = V1, [2] = V2 } do
  local v = {}
  for k, value in pairs(provider) do v[k] = value end
  for k, value in pairs(shape) do v[k] = value end
  v.version = version
  variants[version] = v
end

function provider.variant(o)
  return variants[o.version or 1]
end

return provider
