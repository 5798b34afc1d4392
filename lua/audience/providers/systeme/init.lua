-- Systeme.io public API, as described by its OpenAPI document (31 operations under /api).
return {
  name = "systeme",
  title = "Systeme.io",
  base_url = "https://api.systeme.io/api",

  options = { api_key = "string" },
  required = { { "api_key" } },
  auth = { scheme = "header", header = "X-API-Key", credential = "api_key" },

  -- The quota is shared by every key of the account; Refill is a Unix time or a delay.
  rate_headers = {
    limit = "x-ratelimit-limit", remaining = "x-ratelimit-remaining",
    reset = "x-ratelimit-refill", reset_style = "auto",
  },
  errors = require "audience.providers.systeme.errors",
  helpers = require("audience.providers.systeme.helpers").methods,
  command = "audience.providers.systeme.command",
  -- Deliveries carry X-Webhook-Signature: the bare hex HMAC-SHA256 of the body.
  webhook = { header = "X-Webhook-Signature", signature = "hex" },
  paging = {
    style = "cursor", cursor = "startingAfter", size = "limit", min = 10, max = 100,
    items = "items", more = "hasMore", id = "id",
    -- The document's bounds: the API answers 422 to anything else, after counting it.
    rules = {
      limit = { integer = true, min = 10, max = 100 }, startingAfter = { integer = true },
      order = { enum = { "asc", "desc" } },
    },
  },
  -- Filters such as tags=1,2,3 are OpenAPI form/explode=false: one comma-joined value.
  query_arrays = "comma",

  resources = {
    contacts = {
      path = "/contacts", list = true, get = true, create = true, delete = true,
      update = { method = "PATCH", merge_patch = true },
      actions = {
        add_tag = {
          method = "POST", path = "/contacts/{contact_id}/tags",
          args = { { "contact_id", "id" }, { "tag_id", "id" } }, body = { tagId = "tag_id" },
          returns_true = true,
        },
        remove_tag = {
          method = "DELETE", path = "/contacts/{contact_id}/tags/{tag_id}",
          args = { { "contact_id", "id" }, { "tag_id", "id" } },
        },
      },
    },
    tags = {
      path = "/tags", list = true, get = true, create = true, delete = true,
      update = { method = "PUT" },
    },
    contact_fields = {
      path = "/contact_fields", key = "slug", item = "/contact_fields/{id}",
      list = { paginated = false }, create = true, delete = true,
      update = { method = "PATCH", merge_patch = true },
    },
    webhooks = {
      path = "/webhooks", list = { paginated = false }, get = true, create = true, delete = true,
      -- UpdateWebhookInput requires both, even in a merge-patch.
      update = { method = "PATCH", merge_patch = true, required = { "name", "secret" } },
    },
    courses = {
      path = "/school/courses", list = true,
      actions = {
        enroll = {
          method = "POST", path = "/school/courses/{course_id}/enrollments",
          args = { { "course_id", "id" }, { "body", "table" } }, body = "body",
        },
      },
    },
    enrollments = { path = "/school/enrollments", list = true, delete = true },
    communities = {
      path = "/community/communities", list = true,
      actions = {
        add_member = {
          method = "POST", path = "/community/communities/{community_id}/memberships",
          args = { { "community_id", "id" }, { "contact_id", "id" } }, body = { contactId = "contact_id" },
          -- 202 Accepted: whatever body comes with it says nothing about the membership.
          returns_true = true,
        },
      },
    },
    memberships = {
      path = "/community/memberships", delete = true,
      list = { rules = { community = { integer = true }, contact = { integer = true } } },
    },
    subscriptions = {
      path = "/payment/subscriptions",
      list = { rules = { contact = { integer = true, min = 1, required = true } } },
      actions = {
        cancel = {
          method = "POST", path = "/payment/subscriptions/{id}/cancel",
          args = { { "id", "id" }, { "cancel", "string" } }, body = { cancel = "cancel" },
          returns_true = true,
        },
      },
    },
  },
}
