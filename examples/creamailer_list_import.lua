-- Create a mailing list, import subscribers in batches of 500, and show the report.
--   CREAMAILER_ACCESS_TOKEN=... CREAMAILER_SHARED_SECRET=... lua5.4 examples/creamailer_list_import.lua
-- Every call is signed; the client spends the account's 100 requests per hour no faster
-- than the API allows, so this import of 1,200 people costs 3 of them.
local audience = require "audience"

local cm = audience.creamailer{
  access_token = os.getenv("CREAMAILER_ACCESS_TOKEN") or error("set CREAMAILER_ACCESS_TOKEN"),
  shared_secret = os.getenv("CREAMAILER_SHARED_SECRET") or error("set CREAMAILER_SHARED_SECRET"),
  base_url = os.getenv("CREAMAILER_BASE_URL"),
}

local list = assert(cm.lists:create{ name = "Webinar attendees", language = "en", auto_suppress = true })
print("list " .. list.id)

local people = {}
for i = 1, 1200 do
  people[i] = { email = ("attendee%d@example.com"):format(i), name = "Attendee " .. i }
end
people[42].email = "not an address"

local report, err = cm.subscribers:import(list.id, people, { update_existing = true })
print(("added %d, updated %d, failed %d, in %d calls"):format(
  report.added, report.updated, #report.failed, report.batches))
for _, f in ipairs(report.failed) do print("  failed: " .. tostring(f.email) .. ": " .. f.reason) end
if err then
  print(("stopped early (%s); not sent: %d"):format(tostring(err), #report.not_sent))
  os.exit(1)
end
cm:close()
