-- Signs a test payload the way each provider does (audience.webhooks.sign) and feeds
-- it to examples/webhook_receiver.lua, then feeds it a tampered copy.
-- Use the same helper in your own tests of a receiver.
local audience = require "audience"

local here = arg[0]:match("^(.*)/[^/]*$") or "."
local secret = "whsec_example"

local function deliver(provider, body, headers)
  local env = { ("WEBHOOK_PROVIDER=%q WEBHOOK_SECRET=%q CONTENT_LENGTH=%d"):format(provider, secret, #body) }
  for name, value in pairs(headers) do
    env[#env + 1] = ("HTTP_%s=%q"):format(name:upper():gsub("-", "_"), value)
  end
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "wb"))
  f:write(body)
  f:close()
  local p = assert(io.popen(table.concat(env, " ") .. " lua5.4 " .. here .. "/webhook_receiver.lua < " .. tmp))
  local answer = p:read("a")
  p:close()
  os.remove(tmp)
  return answer:match("^Status: (%d+)")
end

local failures = 0
for _, provider in ipairs{ "systeme", "subscribeflow" } do
  local body = '{"type": "CONTACT_CREATED", "data": {"contact": {"email": "ada@example.com"}}}'
  local headers = audience.webhooks.sign(provider, body, secret)
  headers["X-Webhook-Message-Id"] = "msg-1"
  local signed = deliver(provider, body, headers)
  local tampered = deliver(provider, body:gsub("ada@", "eve@"), headers)
  print(("%-13s signed -> %s, tampered -> %s"):format(provider, signed, tampered))
  if signed ~= "204" or tampered ~= "401" then failures = failures + 1 end
end
os.exit(failures == 0 and 0 or 1)
