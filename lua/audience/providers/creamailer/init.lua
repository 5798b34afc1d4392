-- Creamailer: v1 (the documented API: SHA-1 signatures, `.json` routes, 0-based pages,
-- 400 + Retry-After when over quota) and v2 (HMAC-SHA256, no extension, 1-based pages
-- with meta.last_page, 429). `version = 2` picks v2. Both versions are one description
-- built twice from what differs between them.
local json = require "audience.json"
local calls = require "audience.providers.creamailer.calls"
local import = require "audience.providers.creamailer.import"

-- Both official SDKs put the flag on every entry, never beside the list: a server that
-- ignores unknown keys would otherwise update nothing.
local function import_body(list_key)
  return function(batch, update_existing)
    for _, e in ipairs(batch) do e.update_existing = update_existing end
    return { [list_key] = json.array(batch) }
  end
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

-- What each version accepts as pagesize: the official v1 SDK asks for 50,000 rows by
-- default, v2 documents at most 1,000.
local function page_rules(first, max)
  return { page = { integer = true, min = first }, pagesize = { integer = true, min = 1, max = max } }
end

-- The resources of one version, from its routes and the few answers that differ.
local function resources(v)
  return {
    lists = {
      path = v.lists, item = v.list_item,
      list = { paginated = false, paging = v.lists_paging },
      get = true, create = v.list_create, delete = true,
      update = { method = "PUT", returns_true = v.update_returns_true },
      methods = { fields = v.fields },
    },
    subscribers = {
      scope = { "list_id" }, path = v.list_subscribers, list = { rules = SUBSCRIBER_FILTERS },
      actions = {
        add = { method = "POST", path = v.subscriber, args = { { "body", "table" } },
                body = "body", returns_true = true },
        get = { method = "GET", path = v.subscriber_show, args = { { "email", "string" } },
                query = { email = "email" } },
        update = { method = "PUT", path = v.subscriber, args = { { "body", "table" } },
                   body = "body", returns_true = v.update_returns_true },
      },
      import = { path = v.import, body = import_body(v.import_key) },
      methods = { import = import, delete = calls.delete_at(v.subscriber),
                  activity = v.activity, each_activity = v.each_activity },
    },
    suppressions = {
      path = v.suppressions, list = true,
      actions = {
        add = { method = "POST", path = v.suppressions,
                args = { { "email", "string" }, { "reason", "optional_string" } },
                body = { email = "email", reason = "reason" }, returns_true = true },
        remove = { method = "DELETE", path = v.suppressions, args = { { "email", "string" } },
                   query = { email = "email" }, returns_true = true },
      },
    },
  }
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
  resources = resources{
    lists = "/lists.json", list_item = "/lists/{id}.json", list_create = { result = integer_id },
    update_returns_true = true, fields = calls.v2_only("lists:fields"),
    list_subscribers = "/lists/subscribers/{list_id}.json", subscriber = "/subscribers/{list_id}.json",
    subscriber_show = "/subscribers/{list_id}.json",
    import = "/subscribers/import/{list_id}.json", import_key = "Subscribers",
    activity = calls.v2_only("subscribers:activity"),
    each_activity = calls.v2_only("subscribers:each_activity"),
    suppressions = "/suppressions.json",
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
  resources = resources{
    lists = "/lists", lists_paging = { items = "data" }, list_create = true, fields = calls.fields,
    list_subscribers = "/lists/{list_id}/subscribers", subscriber = "/lists/{list_id}/subscribers",
    subscriber_show = "/lists/{list_id}/subscribers/show",
    import = "/lists/{list_id}/subscribers/import", import_key = "subscribers",
    activity = calls.activity, each_activity = calls.each_activity,
    suppressions = "/suppressions",
  },
}

local provider = {
  name = "creamailer",
  title = "Creamailer",
  options = { access_token = "string", shared_secret = "string", version = { 1, 2 } },
  required = { { "access_token" }, { "shared_secret" } },
  auth = { scheme = require "audience.providers.creamailer.auth", token = "access_token", secret = "shared_secret" },
  errors = require "audience.providers.creamailer.errors",
  helpers = require("audience.providers.creamailer.helpers").methods,
  command = "audience.providers.creamailer.command",
  -- 100 requests per hour (v2: per key), spent no faster than the API allows.
  default_budget = { limit = 100, per = 3600 },
  query_arrays = "comma",
}

-- A dry run answers an import batch with the report a real one would give when every
-- entry went in (both versions send the entries under their import key, in any case).
function provider.dry_run_answer(method, url, body)
  if method ~= "POST" or not url:find("/subscribers/import", 1, true) or not body then return nil end
  local sent = require("audience.json").decode(body)
  local entries = type(sent) == "table" and (sent.subscribers or sent.Subscribers)
  if type(entries) ~= "table" then return nil end
  return 200, ('{"added":%d,"updated":0,"failed":[]}'):format(#entries)
end

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
