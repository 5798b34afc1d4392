-- The fake provider in the `audience` command: its one resource, its environment and
-- how an import row becomes a member.
local M = {}

M.order = { "members" }

local function import_rows(fake, o, classify)
  return function(row)
    if type(row.email) ~= "string" or row.email == "" then return "failed", "no email" end
    local found, err = fake:find_member(row.email)
    if found == nil then return classify(err) end
    if found then
      if not o.update then return "existing" end
      local updated, uerr = fake.members:update(found.id, { name = row.name })
      if not updated then return classify(uerr) end
      return "updated"
    end
    local created, cerr = fake.members:create{ email = row.email, name = row.name }
    if not created then return classify(cerr) end
    return "created"
  end
end

M.resources = {
  members = { actions = "list get create update delete export import", import_rows = import_rows },
}

M.env_help = "FAKE_API_KEY (required), FAKE_BASE_URL"

M.notes = { members = "Import creates one member per row (columns email, name)." }

function M.client_options(env, o)
  return {
    api_key = env.required("FAKE_API_KEY", "the key of the fake account"),
    base_url = o["base-url"] or env.value("FAKE_BASE_URL"),
  }
end

return M
