-- SubscribeFlow in the `audience` command: its resources and actions, its environment,
-- and how an import row becomes a subscriber.
local core = require "audience.core"
local json = require "audience.json"
local jsonl = require "audience.jsonl"
local Error = require "audience.error"
local helpers = require "audience.helpers"
local sf_helpers = require "audience.providers.subscribeflow.helpers"

local ALL = "list get create update delete export"

local M = {}

M.order = { "subscribers", "tags", "webhooks" }

M.resources = {
  subscribers = { actions = ALL .. " import" },
  tags = { actions = ALL },
  webhooks = { actions = "list create delete export" },
}

M.env_help = "SUBSCRIBEFLOW_API_KEY or SUBSCRIBEFLOW_TOKEN (required), SUBSCRIBEFLOW_BASE_URL"
M.env_summary = { "SUBSCRIBEFLOW_API_KEY or SUBSCRIBEFLOW_TOKEN, SUBSCRIBEFLOW_BASE_URL" }

M.notes = {
  subscribers = [[
Import creates each row with an Idempotency-Key made from the file name, the row number
and the row, so a row re-sent after an interruption is answered from the server's record
instead of creating a duplicate. Columns: email, status, tags (slugs joined with ";" or
a JSON list), metadata (a JSON object); other columns become metadata keys.]],
}

--- The constructor options of a run, from the environment (`env`) and the options.
function M.client_options(env, o)
  local key, token = env.value("SUBSCRIBEFLOW_API_KEY"), env.value("SUBSCRIBEFLOW_TOKEN")
  if not key and not token then env.usage("SUBSCRIBEFLOW_API_KEY or SUBSCRIBEFLOW_TOKEN is not set") end
  return {
    api_key = key, token = (not key) and token or nil,
    base_url = o["base-url"] or env.value("SUBSCRIBEFLOW_BASE_URL"),
  }
end

local SKIP = { email = true, status = true, metadata = true, tags = true, id = true, created_at = true,
  updated_at = true }

local function body_of(row)
  local out = { email = row.email ~= "" and row.email or nil }
  if type(row.status) == "string" and row.status ~= "" then out.status = row.status end
  local metadata = row.metadata
  if type(metadata) == "string" and metadata ~= "" then metadata = json.decode(metadata) end
  local copy = {}
  for k, v in pairs(type(metadata) == "table" and metadata or {}) do copy[k] = v end
  local tags = row.tags
  if type(tags) == "string" then
    tags = tags:find("^%s*%[") and json.decode(tags) or helpers.split_names(tags)
  end
  local slugs = {}
  for _, t in ipairs(type(tags) == "table" and tags or {}) do
    slugs[#slugs + 1] = type(t) == "table" and t.slug or t
  end
  for k, v in pairs(row) do
    if type(k) == "string" and not SKIP[k] and type(v) ~= "table" and v ~= "" and v ~= json.null then
      copy[k] = v
    end
  end
  if next(copy) ~= nil then out.metadata = copy end
  if #slugs > 0 then out.tags = json.array(slugs) end
  return out
end

-- import: the Idempotency-Key is made from the file, the row number and the row's
-- canonical body, so a row re-sent by a resumed run replays instead of duplicating.
local function import_rows(sf, o, classify)
  local file = o.file:match("([^/]+)$") or o.file
  return function(row, n)
    local body = body_of(row)
    if not body.email then return "failed", "no email" end
    local key = "audience-import-" .. core.sha256_hex(file .. "\n" .. n .. "\n" .. jsonl.encode(body)):sub(1, 40)
    if o.update and not o["dry-run"] then
      local s, created = sf:upsert_subscriber(body, { idempotency_key = key })
      if not s then return classify(created) end
      return created and "created" or "updated"
    end
    local s, replayed_or_err = sf_helpers.create_subscriber(sf, body, key)
    -- A replay answers a row an earlier run sent: it was there before this run, as a
    -- row whose email is taken is.
    if s then return replayed_or_err and "existing" or "created" end
    local err = replayed_or_err
    if Error.is(err) and err.kind == "conflict" then return "existing" end
    return classify(err)
  end
end

M.resources.subscribers.import_rows = import_rows

return M
