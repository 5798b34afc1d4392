-- Import a CSV of people into Systeme.io: one upsert per row, so running it twice
-- changes nothing the second time, and a row that was already there is updated.
--   SYSTEME_API_KEY=... lua5.4 examples/csv_import.lua people.csv
-- The CSV has an email column; locale and tags (names joined with ";") are optional, and
-- every other column is a contact field slug (first_name, surname, ...). Without an
-- argument, a small sample file is written and imported.
local audience = require "audience"

local sys = audience.systeme{
  api_key = os.getenv("SYSTEME_API_KEY") or error("set SYSTEME_API_KEY"),
  base_url = os.getenv("SYSTEME_BASE_URL"),
}

local path = arg[1]
if not path then
  path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write("email,locale,first_name,surname,tags\r\n",
    "ada@example.com,en,Ada,Lovelace,customers;newsletter\r\n",
    "grace@example.com,en,Grace,\"Hopper, RADM\",customers\r\n",
    "user3@example.com,fr,Jean,,newsletter\r\n")
  f:close()
end

local function import()
  local created, found, failed = 0, 0, 0
  for row, line in audience.read_csv(path) do
    local contact = audience.unflatten_contact(row)
    local c, was_created = sys:upsert_contact{
      email = contact.email, locale = contact.locale, fields = contact.fields, tags = contact.tags,
    }
    if not c then
      failed = failed + 1
      io.stderr:write(("line %d (%s): %s\n"):format(line, tostring(contact.email), tostring(was_created)))
    elseif was_created then
      created = created + 1
    else
      found = found + 1   -- and merge-patched where the row differs
    end
  end
  return created, found, failed
end

print(("first pass: created %d, found %d, failed %d"):format(import()))
-- The tags are known by now: the second pass makes no tag lookups at all.
print(("second pass: created %d, found %d, failed %d"):format(import()))
if not arg[1] then os.remove(path) end
sys:close()
