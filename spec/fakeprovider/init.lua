-- A fourth provider, defined only here: the description of a small "members" API that
-- spec/fakeprovider_spec.lua drives through the client, the iterators, the command and
-- the webhooks, to show that another API is one folder. Everything it needs is in this
-- folder; nothing under lua/audience/ knows it.
--
-- Its API (served by mock.lua): X-Fake-Key authentication signed per attempt with a
-- counter, {"members": [...], "paging": {page, pages, count}} pages, {"fault": {"kind",
-- "why", "fields"}} errors, X-Fake-* rate-limit headers and X-Fake-Signature webhooks.
local helpers = require "audience.helpers"
local resource = require "audience.resource"
local error_readers = require "audience.error_readers"

local KINDS = { invalid = "validation", denied = "auth", missing = "not_found", busy = "rate_limited" }

-- {"fault": {"kind": "invalid", "why": "...", "fields": {"email": "taken"}}}
local function read_error(body)
  local f = type(body) == "table" and body.fault
  if type(f) ~= "table" then return {} end
  local out = { code = error_readers.text(f.kind), message = error_readers.text(f.why) }
  out.kind = out.code and KINDS[out.code]
  if type(f.fields) == "table" then
    local names = {}
    for name in pairs(f.fields) do names[#names + 1] = name end
    table.sort(names)
    out.details = {}
    for i, name in ipairs(names) do out.details[i] = { field = name, message = error_readers.text(f.fields[name]) } end
  end
  return out
end

-- Its own scheme: the key, and the number of the attempt (a header no other API sends).
local function auth(desc, o)
  local key = o[desc.credential]
  local attempts = 0
  return function(_, _, _, _, base)
    attempts = attempts + 1
    local lines = { "X-Fake-Key: " .. key, "X-Fake-Attempt: " .. attempts }
    for i = 1, #base do lines[#lines + 1] = base[i] end
    return lines
  end, { "X-Fake-Key" }, { key }, key
end

-- fake:find_member(email) -> member | false | nil, err
local function find_member(self, email)
  return helpers.find_by_email("find_member", self.members, email)
end

-- members:ban(id, reason) -> true | nil, err
local function ban(self, id, reason)
  resource.check_arg("members:ban", 1, "id", "id", id)
  resource.check_arg("members:ban", 2, "reason", "string", reason)
  local value, err, res = self._client:_call("POST", resource.fill("/members/{id}/ban", { id = id }),
    { body = { reason = reason } })
  if value == nil then return nil, err, res end
  return true, nil, res
end

return {
  name = "fake",
  title = "Fake",
  base_url = "https://fake.invalid/v0",
  options = { api_key = "string" },
  required = { { "api_key" } },
  auth = { scheme = auth, credential = "api_key" },
  errors = read_error,
  rate_headers = {
    limit = "x-fake-limit", remaining = "x-fake-remaining", reset = "x-fake-reset", reset_style = "epoch",
  },
  paging = {
    style = "page", page = "page", size = "size", first = 1, default = 5, max = 50,
    items = "members", meta = "paging", current = "page", last = "pages", total = "count",
  },
  query_arrays = "comma",
  resources = {
    members = {
      path = "/members", list = true, get = true, create = true, delete = true,
      update = { method = "PATCH" },
      methods = { ban = ban },
    },
  },
  helpers = { find_member = find_member },
  webhook = { header = "X-Fake-Signature", signature = "hex" },
  command = "fakeprovider.command",
}
