-- Nightly backup of every Systeme.io contact: a CSV for people and spreadsheets, and
-- JSON lines with the API's full objects, both streamed in constant memory.
--   SYSTEME_API_KEY=... EXPORT_DIR=/var/backups/contacts lua5.4 examples/nightly_export.lua
-- Then the CSV is read back and counted, so a truncated file does not go unnoticed.
local audience = require "audience"

local sys = audience.systeme{
  api_key = os.getenv("SYSTEME_API_KEY") or error("set SYSTEME_API_KEY"),
  base_url = os.getenv("SYSTEME_BASE_URL"),
}
local dir = os.getenv("EXPORT_DIR") or os.getenv("TMPDIR") or "/tmp"
local stamp = os.date("!%Y-%m-%d")
local csv_path = ("%s/contacts-%s.csv"):format(dir, stamp)
local jsonl_path = ("%s/contacts-%s.jsonl"):format(dir, stamp)

-- Oldest first: contacts that sign up during the export land at the end, not in a gap.
local n, err = audience.export(sys.contacts:each{ order = "asc" }, csv_path, "csv",
  { transform = audience.flatten_contact, columns = audience.CONTACT_COLUMNS })
if not n then
  io.stderr:write("export failed: ", tostring(err), "\n")
  os.exit(1)
end
local m = assert(audience.export(sys.contacts:each{ order = "asc" }, jsonl_path, "jsonl"))

local back, tagged = 0, 0
for row in audience.read_csv(csv_path) do
  back = back + 1
  if #audience.unflatten_contact(row).tags > 0 then tagged = tagged + 1 end
end
assert(back == n, ("%s holds %d rows, %d were written"):format(csv_path, back, n))
print(("exported %d contacts to %s (%d tagged) and %d to %s; verified"):format(n, csv_path, tagged, m, jsonl_path))
sys:close()
