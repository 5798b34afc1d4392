--- SubscribeFlow conveniences: find and upsert a subscriber by email, and creates whose
-- body is canonical JSON so that an Idempotency-Key replays them exactly. They are
-- methods of every SubscribeFlow client (`sf:upsert_subscriber{...}`).
-- @module audience.providers.subscribeflow.helpers
local json = require "audience.json"
local jsonl = require "audience.jsonl"
local Error = require "audience.error"
local options = require "audience.options"
local helpers = require "audience.helpers"

local bad, check_email, check_names, text = helpers.bad, helpers.check_email, helpers.check_names, helpers.text

local M = {}

--- Creates a subscriber from `body`, sent as canonical JSON, so that the same body and
-- Idempotency-Key give the same bytes in any process (the server compares bytes).
-- @tparam Client sf a SubscribeFlow client
-- @tparam table body the subscriber
-- @tparam[opt] string idempotency_key the key the server remembers the answer by
-- @treturn[1] table the subscriber
-- @treturn[1] boolean whether the server replayed an earlier answer to that key
-- @treturn[2] nil
-- @treturn[2] Error why it failed
function M.create_subscriber(sf, body, idempotency_key)
  local value, err, res = sf:request("POST", "/subscribers",
    { body = jsonl.encode(body), idempotency_key = idempotency_key })
  if value == nil then return nil, err end
  if type(value) == "table" and value.data ~= nil then value = value.data end
  local replayed = res and res.headers and res.headers["idempotent-replayed"] == "true"
  return value, replayed or false
end

--- The helper methods of a SubscribeFlow client.
-- @type SubscribeFlow
local SubscribeFlow = {}
M.methods = SubscribeFlow

--- The subscriber that has an email address (compared without case).
-- @tparam string email the address
-- @treturn[1] table the subscriber
-- @treturn[2] boolean false when no subscriber has it
-- @treturn[3] nil
-- @treturn[3] Error why the lookup failed
function SubscribeFlow:find_subscriber(email)
  return helpers.find_by_email("find_subscriber", self.subscribers, email)
end

local function slugs_of(tags)
  local out = {}
  for i, t in ipairs(tags or {}) do out[i] = type(t) == "table" and t.slug or t end
  return out
end

--- Creates a subscriber, or patches its status and metadata (merged key by key) where
-- they differ and adds the tags it lacks (tags are never removed).
-- @tparam table spec `email` (required), `status`, `metadata`, `tags` (slugs)
-- @tparam[opt] table opts `idempotency_key` for the create
-- @treturn[1] table the subscriber as it is now
-- @treturn[1] boolean whether it was created
-- @treturn[2] nil
-- @treturn[2] Error why it failed
function SubscribeFlow:upsert_subscriber(spec, opts)
  local fname = "upsert_subscriber"
  if type(spec) ~= "table" then bad(fname, 1, "spec", "table", spec) end
  check_email(fname, 1, "spec.email", spec.email)
  if spec.status ~= nil and type(spec.status) ~= "string" then
    bad(fname, 1, "spec.status", "string or nil", spec.status)
  end
  if spec.metadata ~= nil and type(spec.metadata) ~= "table" then
    bad(fname, 1, "spec.metadata", "table or nil", spec.metadata)
  end
  if spec.tags ~= nil then check_names(fname, 1, "spec.tags", spec.tags) end
  if opts ~= nil and type(opts) ~= "table" then bad(fname, 2, "opts", "table or nil", opts) end
  opts = opts or {}
  options.check_call_options(fname, opts, { idempotency_key = "string" })

  local s, err = SubscribeFlow.find_subscriber(self, spec.email)
  if s == nil then return nil, err end
  if not s then
    local body = { email = spec.email, status = spec.status, metadata = spec.metadata }
    if spec.tags and #spec.tags > 0 then body.tags = json.array(spec.tags) end
    local created
    created, err = M.create_subscriber(self, body, opts.idempotency_key)
    if created then return created, true end
    if err.kind ~= "conflict" then return nil, err end
    -- Created by someone else meanwhile: update that one instead.
    s, err = SubscribeFlow.find_subscriber(self, spec.email)
    if not s then return nil, err or Error.new{ kind = "conflict", provider = "subscribeflow",
      message = "conflict on create but no subscriber has " .. spec.email } end
  end
  local patch = {}
  if spec.status and spec.status ~= s.status then patch.status = spec.status end
  if spec.metadata then
    local md = type(s.metadata) == "table" and s.metadata or {}
    for k, v in pairs(spec.metadata) do
      if text(v) ~= text(md[k]) then patch.metadata = spec.metadata; break end
    end
  end
  if next(patch) ~= nil then
    s, err = self.subscribers:update(s.id, patch)
    if not s then return nil, err end
  end
  local have, missing = {}, {}
  for _, slug in ipairs(slugs_of(s.tags)) do have[slug] = true end
  for _, slug in ipairs(spec.tags or {}) do
    if not have[slug] then missing[#missing + 1] = slug; have[slug] = true end
  end
  if #missing > 0 then
    local tags, terr = self.subscribers:update_tags(s.id, { add = missing })
    if not tags then return nil, terr end
    s.tags = slugs_of(tags)
  end
  return s, false
end

return M
