-- Systeme.io contacts as flat rows and back, so that a CSV export imports again.
local json = require "audience.json"
local helpers = require "audience.helpers"

local bad, isnull, present, decode_cell = helpers.bad, helpers.isnull, helpers.present, helpers.decode_cell

local M = {}

-- The columns of a flattened contact, in export order.
M.CONTACT_COLUMNS = { "id", "email", "locale", "registeredAt", "sourceURL", "unsubscribed",
  "bounced", "needsConfirmation", "tags", "fields" }

local CONTACT_KNOWN = {}
for _, c in ipairs(M.CONTACT_COLUMNS) do CONTACT_KNOWN[c] = true end
local BOOLEAN_COLUMNS = { unsubscribed = true, bounced = true, needsConfirmation = true }

--- audience.flatten_contact(contact) -> row with the CONTACT_COLUMNS: scalars as they
--- are, tags as names joined with ";", fields as one { slug = value } table (a JSON
--- object once written to CSV). Missing values are audience.null, so every column
--- is present.
function M.flatten_contact(c)
  if type(c) ~= "table" then bad("flatten_contact", 1, "contact", "table", c) end
  local row = {}
  for _, col in ipairs(M.CONTACT_COLUMNS) do
    local v = c[col]
    row[col] = v == nil and json.null or v
  end
  local names = {}
  for _, t in ipairs(type(c.tags) == "table" and c.tags or {}) do
    names[#names + 1] = type(t) == "table" and tostring(t.name) or tostring(t)
  end
  row.tags = helpers.join_names(names)
  local fields, any = {}, false
  for _, f in ipairs(type(c.fields) == "table" and c.fields or {}) do
    if type(f) == "table" and f.slug and not isnull(f.value) then
      fields[f.slug] = f.value
      any = true
    end
  end
  row.fields = any and fields or json.null
  return row
end

local function boolean(v)
  if type(v) == "boolean" then return v end
  if type(v) ~= "string" then return nil end
  v = v:lower()
  if v == "true" or v == "1" or v == "yes" then return true end
  if v == "false" or v == "0" or v == "no" then return false end
  return nil
end

--- audience.unflatten_contact(row) -> { email =, locale =, fields = { slug = value },
--- tags = { names }, id =, registeredAt =, sourceURL =, unsubscribed =, bounced =,
--- needsConfirmation = }: the shape upsert_contact takes. Reads a flattened row, a
--- contact as the API gives it, or a plain CSV row whose other columns are field slugs.
--- Empty cells are absent values.
function M.unflatten_contact(row)
  if type(row) ~= "table" then bad("unflatten_contact", 1, "row", "table", row) end
  local out = { tags = {}, fields = {} }
  out.id = tonumber(present(row.id))
  out.email = present(row.email)
  out.locale = present(row.locale)
  out.registeredAt = present(row.registeredAt)
  out.sourceURL = present(row.sourceURL)
  for col in pairs(BOOLEAN_COLUMNS) do out[col] = boolean(row[col]) end

  local tags = present(row.tags)
  if type(tags) == "string" then
    tags = tags:find("^%s*%[") and decode_cell(tags) or helpers.split_names(tags)
  end
  for _, t in ipairs(type(tags) == "table" and tags or {}) do
    local name = type(t) == "table" and t.name or t
    if type(name) == "string" and name ~= "" then out.tags[#out.tags + 1] = name end
  end

  local fields = present(row.fields)
  if type(fields) == "string" then fields = decode_cell(fields) end
  if type(fields) == "table" then
    if #fields > 0 then
      for _, f in ipairs(fields) do
        if type(f) == "table" and f.slug then out.fields[f.slug] = f.value end
      end
    else
      for k, v in pairs(fields) do out.fields[k] = v end
    end
  end
  for k, v in pairs(row) do
    if type(k) == "string" and not CONTACT_KNOWN[k] and present(v) ~= nil and type(v) ~= "table" then
      out.fields[k] = v
    end
  end
  return out
end

return M
