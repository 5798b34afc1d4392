-- SubscribeFlow: Bearer auth (an sf_live_ key or a JWT), a {data, meta} envelope,
-- {error: {code, message, details}} errors, page/per_page paging with meta.total_pages,
-- X-RateLimit-Reset as a Unix time, and Idempotency-Key on every POST.
local resource = require "audience.resource"
local options = require "audience.options"
local json = require "audience.json"

-- subscribers:update_tags(id, { add = {...}, remove = {...} }) -> the subscriber's tags
local function update_tags(self, id, changes, opts)
  local fname = "subscribers:update_tags"
  resource.check_arg(fname, 1, "id", "id", id)
  resource.check_arg(fname, 2, "changes", "table", changes)
  local body = {}
  for key, list in pairs(changes) do
    if key ~= "add" and key ~= "remove" then
      error(("audience: bad argument #2 to '%s' (changes: only 'add' and 'remove' expected, got '%s')")
        :format(fname, tostring(key)), 0)
    end
    if type(list) ~= "table" then
      error(("audience: bad argument #2 to '%s' (changes.%s: list expected, got %s)")
        :format(fname, key, options.describe(list)), 0)
    end
    local copy = json.array{}
    for i, tag in ipairs(list) do copy[i] = tag end
    body[key] = copy
  end
  local path = resource.fill("/subscribers/{id}/tags", { id = id })
  local value, err, res = self._client:_call("PATCH", path, resource.call_spec(fname, opts, { body = body }))
  if value == nil then return nil, err, res end
  return self:_result(value), nil, res
end

return {
  name = "subscribeflow",
  base_url = "https://api.subscribeflow.net/v1",

  options = { api_key = "secret", token = "secret" },
  required = { { "api_key", "token" } },
  auth = { scheme = "bearer", credentials = { "api_key", "token" } },

  rate_headers = {
    limit = "x-ratelimit-limit", remaining = "x-ratelimit-remaining",
    reset = "x-ratelimit-reset", reset_style = "epoch",
  },
  errors = "envelope",
  unwrap = "data",
  paging = {
    style = "page", page = "page", size = "per_page", first = 1, default = 20, max = 100,
    items = "data", meta = "meta", current = "page", last = "total_pages", total = "total",
  },
  -- sort = { "-created_at", "email" } goes out as sort=-created_at,email.
  query_arrays = "comma",
  -- The server keeps the answer of each key, so a POST repeated with its key is safe.
  idempotency_header = "Idempotency-Key",

  resources = {
    subscribers = {
      path = "/subscribers", list = true, get = true, create = true, delete = true,
      update = { method = "PATCH" },
      actions = {
        tags = { method = "GET", path = "/subscribers/{id}/tags", args = { { "id", "id" } } },
      },
      methods = { update_tags = update_tags },
    },
    tags = {
      path = "/tags", list = true, get = true, create = true, delete = true,
      update = { method = "PATCH" },
    },
    -- Magic-link pages: the token is the credential, so no API key is sent, and the
    -- token is kept out of errors and hooks like a key would be.
    preferences = {
      actions = {
        get = { method = "GET", path = "/preferences/{token}", args = { { "token", "string" } },
                auth = false, secret_args = { "token" } },
        update = { method = "PATCH", path = "/preferences/{token}",
                   args = { { "token", "string" }, { "prefs", "table" } }, body = "prefs",
                   auth = false, secret_args = { "token" } },
      },
    },
    webhooks = {
      path = "/webhooks", list = { paginated = false }, create = true, delete = true,
    },
  },
}
