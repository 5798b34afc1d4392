-- Tag Systeme.io contacts by what they bought, from a CSV of purchases (email,product),
-- e.g. an export from a shop. Each product's buyers get the tag "bought-<product>"
-- (created when missing); buyers without a contact are listed, not lost.
--   SYSTEME_API_KEY=... lua5.4 examples/tag_by_purchase.lua purchases.csv
local audience = require "audience"

local sys = audience.systeme{
  api_key = os.getenv("SYSTEME_API_KEY") or error("set SYSTEME_API_KEY"),
  base_url = os.getenv("SYSTEME_BASE_URL"),
}

local path = arg[1]
if not path then
  path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write("email,product\n", "user1@example.com,ebook\n", "user2@example.com,course\n",
    "user3@example.com,ebook\n", "USER2@example.com,ebook\n", "stranger@example.com,course\n")
  f:close()
end

-- Buyers per product, each email once (emails compare without case).
local buyers, seen = {}, {}
for row in audience.read_csv(path) do
  local product, email = row.product, row.email
  local key = product .. "\0" .. email:lower()
  if not seen[key] then
    seen[key] = true
    buyers[product] = buyers[product] or {}
    table.insert(buyers[product], email)
  end
end

local products = {}
for product in pairs(buyers) do products[#products + 1] = product end
table.sort(products)
local status = 0
for _, product in ipairs(products) do
  local report, err = sys:tag_contacts(buyers[product], { "bought-" .. product })
  print(("bought-%s: %d tagged, %d not found, %d failed"):format(product, report.done, #report.not_found,
    #report.failed))
  for _, email in ipairs(report.not_found) do print("  no contact: " .. email) end
  for _, f in ipairs(report.failed) do print("  failed: " .. tostring(f.email) .. ": " .. f.reason) end
  if err then
    io.stderr:write("stopped: ", tostring(err), "\n")
    status = 1
    break
  end
end
if not arg[1] then os.remove(path) end
sys:close()
os.exit(status)
