-- Subscribers of a list: add, rename, page through, unsubscribe, suppress.
-- Works with the v1 API (default) and the v2 API (CREAMAILER_VERSION=2).
local audience = require "audience"

local version = tonumber(os.getenv("CREAMAILER_VERSION") or "1")
local cm = audience.creamailer{
  access_token = os.getenv("CREAMAILER_ACCESS_TOKEN") or error("set CREAMAILER_ACCESS_TOKEN"),
  shared_secret = os.getenv("CREAMAILER_SHARED_SECRET") or error("set CREAMAILER_SHARED_SECRET"),
  version = version,
  base_url = os.getenv(version == 2 and "CREAMAILER_V2_BASE_URL" or "CREAMAILER_BASE_URL"),
}

assert(cm:ping())   -- the token and secret are accepted
local list = assert(cm.lists:create{ name = "Customers", language = "fi" })
assert(cm.subscribers:add(list.id, { email = "ada@example.com", name = "Ada" }))
assert(cm.subscribers:add(list.id, { email = "bob@example.com", name = "Bob" }))
assert(cm.subscribers:update(list.id, { email = "ada@example.com", new_email = "ada@lovelace.org" }))

for s in cm.subscribers:each(list.id, { status = "active" }) do
  print(("%-20s %s"):format(s.email, s.name or ""))
end

assert(cm.subscribers:delete(list.id, "bob@example.com"))
assert(cm.suppressions:add("bob@example.com", "unsubscribed"))
print("suppressed: " .. #assert(cm.suppressions:list()).items)
cm:close()
