-- Keep a Creamailer list in step with a source of truth (a CRM export, a database query)
-- without spending the account's 100 requests per hour on it: the list is read once,
-- 1,000 subscribers a request, and only new and changed people are imported, 500 a
-- request.
--   CREAMAILER_ACCESS_TOKEN=... CREAMAILER_SHARED_SECRET=... lua5.4 examples/list_sync.lua
local audience = require "audience"

local requests = 0
local cm = audience.creamailer{
  access_token = os.getenv("CREAMAILER_ACCESS_TOKEN") or error("set CREAMAILER_ACCESS_TOKEN"),
  shared_secret = os.getenv("CREAMAILER_SHARED_SECRET") or error("set CREAMAILER_SHARED_SECRET"),
  base_url = os.getenv("CREAMAILER_BASE_URL"),
  on_response = function() requests = requests + 1 end,
}

local list = assert(cm.lists:create{ name = "Members", language = "en" })

-- Yesterday's members, already on the list.
local yesterday = {}
for i = 1, 1500 do yesterday[i] = { email = ("member%d@example.com"):format(i), name = "Member " .. i } end
assert(cm.subscribers:import(list.id, yesterday, { update_existing = true }))

-- Today's members, as an iterator: 1,500 the same, 20 renamed, 300 new, one broken.
local function today()
  local i = 0
  return function()
    i = i + 1
    if i > 1801 then return nil end
    if i == 1801 then return { name = "No email" } end
    local name = (i <= 20) and ("Renamed " .. i) or ("Member " .. i)
    return { email = ("member%d@example.com"):format(i), name = name }
  end
end

requests = 0
local report, err = cm:sync_list(list.id, today(), { update = true })
if not report then error(tostring(err)) end
print(("added %d, updated %d, unchanged %d, failed %d, in %d requests"):format(
  report.added, report.updated, report.unchanged, #report.failed, requests))
for _, f in ipairs(report.failed) do print("  failed: " .. (f.email or "(no email)") .. ": " .. f.reason) end
if err then
  io.stderr:write("stopped early: ", tostring(err), "\n")
  os.exit(1)
end
cm:close()
