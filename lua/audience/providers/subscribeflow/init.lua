-- SubscribeFlow: Bearer auth (an sf_live_ key or a JWT), a {data, meta} envelope,
-- {error: {code, message, details}} errors, page/per_page paging with meta.total_pages,
-- X-RateLimit-Reset as a Unix time, and Idempotency-Key on every POST.
local calls = require "audience.providers.subscribeflow.calls"

return {
  name = "subscribeflow",
  title = "SubscribeFlow",
  base_url = "https://api.subscribeflow.net/v1",

  options = { api_key = "string", token = "string" },
  required = { { "api_key", "token" } },
  auth = { scheme = "bearer", credentials = { "api_key", "token" } },

  rate_headers = {
    limit = "x-ratelimit-limit", remaining = "x-ratelimit-remaining",
    reset = "x-ratelimit-reset", reset_style = "epoch",
  },
  errors = require "audience.providers.subscribeflow.errors",
  helpers = require("audience.providers.subscribeflow.helpers").methods,
  command = "audience.providers.subscribeflow.command",
  -- Deliveries carry X-SubscribeFlow-Signature: "sha256=<hex>" or bare base64.
  webhook = { header = "X-SubscribeFlow-Signature", signature = "sha256-hex-or-base64" },
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
      methods = { update_tags = calls.update_tags },
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
