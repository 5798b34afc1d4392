-- Create a contact (or find it when it exists), tag it, and list the newest contacts.
--   SYSTEME_API_KEY=... lua5.4 examples/systeme_quickstart.lua
-- SYSTEME_BASE_URL points it at another server (the bundled mock, in `make examples`).
local audience = require "audience"

local sys = audience.systeme{
  api_key = os.getenv("SYSTEME_API_KEY") or error("set SYSTEME_API_KEY"),
  base_url = os.getenv("SYSTEME_BASE_URL"),
  timeout = 10,
}

local email = "ada@example.com"
local contact, err = sys.contacts:create{
  email = email, locale = "en",
  fields = { { slug = "first_name", value = "Ada" } },
}
if not contact then
  if err.kind ~= "validation" then error(err) end
  -- 422 on create means the email is taken: use the contact that has it.
  contact = assert(sys.contacts:list{ email = email }).items[1]
end
print(("contact %d: %s"):format(contact.id, contact.email))

local tag = assert(sys.tags:create{ name = "newsletter" })
assert(sys.contacts:add_tag(contact.id, tag.id))
print(("tagged with '%s'"):format(tag.name))

for c in sys.contacts:each{ max_items = 5 } do
  print(("  #%d %s"):format(c.id, c.email))
end

local quota = sys:rate_limit()
if quota.limit then
  print(("quota: %d of %d requests left"):format(quota.remaining, quota.limit))
end
sys:close()
