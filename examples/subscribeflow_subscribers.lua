-- SubscribeFlow: tags, a subscriber with tags, a tag change, and a sorted walk.
--   SUBSCRIBEFLOW_API_KEY=sf_live_... lua5.4 examples/subscribeflow_subscribers.lua
local audience = require "audience"

local sf = audience.subscribeflow{
  api_key = os.getenv("SUBSCRIBEFLOW_API_KEY") or error("set SUBSCRIBEFLOW_API_KEY"),
  base_url = os.getenv("SUBSCRIBEFLOW_BASE_URL"),
}

for _, name in ipairs{ "Product updates", "Events" } do
  local _, err = sf.tags:create({ name = name, category = "newsletter" })
  if err and err.kind ~= "conflict" then error(err) end
end

-- A POST carries an Idempotency-Key: if the answer is lost and the call is retried,
-- the server replays it instead of creating the subscriber twice.
local s, err = sf.subscribers:create{ email = "ada@example.com", tags = { "product-updates" } }
if not s then
  if err.kind ~= "conflict" then error(err) end
  s = assert(sf.subscribers:list{ sort = "email" }).items[1]
end

local tags = assert(sf.subscribers:update_tags(s.id, { add = { "events" } }))
for _, t in ipairs(tags) do print("tag: " .. t.slug) end

for sub in sf.subscribers:each{ sort = { "-created_at", "email" }, max_items = 10 } do
  print(sub.created_at, sub.email, sub.status)
end
local quota = sf:rate_limit()
if quota.limit then print(("quota: %d of %d left"):format(quota.remaining, quota.limit)) end
sf:close()
