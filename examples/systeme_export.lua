-- Print every contact as tab-separated lines: id, email, tag names. Walks any number
-- of pages in constant memory, 100 contacts per request.
--   SYSTEME_API_KEY=... lua5.4 examples/systeme_export.lua > contacts.tsv
local audience = require "audience"

local sys = audience.systeme{
  api_key = os.getenv("SYSTEME_API_KEY") or error("set SYSTEME_API_KEY"),
  base_url = os.getenv("SYSTEME_BASE_URL"),
}

local n = 0
local ok, err = pcall(function()
  for c in sys.contacts:each{ order = "asc" } do
    local tags = {}
    for i, t in ipairs(c.tags or {}) do tags[i] = t.name end
    io.write(c.id, "\t", c.email, "\t", table.concat(tags, ","), "\n")
    n = n + 1
  end
end)
if not ok then
  io.stderr:write("export stopped after ", n, " contacts: ", tostring(err), "\n")
  os.exit(1)
end
io.stderr:write("exported ", n, " contacts\n")
