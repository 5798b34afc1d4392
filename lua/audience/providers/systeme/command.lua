-- Systeme.io in the `audience` command: its resources and actions, its environment,
-- and how an import row becomes a contact.
local rows = require "audience.providers.systeme.rows"
local contacts_helpers = require "audience.providers.systeme.helpers"

local ALL = "list get create update delete export"

local M = {}

M.order = { "contacts", "tags", "contact_fields", "webhooks", "courses", "enrollments", "communities",
  "memberships", "subscriptions" }
M.summary = { "contacts tags contact_fields webhooks courses enrollments communities",
  "memberships subscriptions" }

-- Contacts show and export as flat rows; an export goes oldest first, so that contacts
-- added during a long export come last, not lost.
local CONTACT_ROWS = {
  transform = rows.flatten_contact,
  display = { "id", "email", "locale", "registeredAt", "unsubscribed", "bounced", "tags" },
  columns = rows.CONTACT_COLUMNS,
  export_params = { order = "asc" },
}

M.resources = {
  contacts = { actions = ALL .. " import tag untag", rows = CONTACT_ROWS },
  tags = { actions = ALL },
  contact_fields = { actions = "list create update delete export", id = "SLUG" },
  webhooks = { actions = ALL },
  courses = { actions = "list export" },
  enrollments = { actions = "list delete export" },
  communities = { actions = "list export" },
  memberships = { actions = "list delete export" },
  subscriptions = { actions = "list export" },
}

M.env_help = "SYSTEME_API_KEY (required), SYSTEME_BASE_URL"
M.env_summary = { "SYSTEME_API_KEY, SYSTEME_BASE_URL" }

M.notes = {
  contacts = [[
CSV export columns: id, email, locale, registeredAt, sourceURL, unsubscribed, bounced,
needsConfirmation, tags (names joined with ";"), fields (a JSON object slug -> value).
Import reads that layout back, the API's JSON objects (JSON lines), or a plain CSV whose
other columns are contact field slugs (email,first_name,surname). A row whose email is
taken counts as existing; with --update it is updated (fields, locale) instead. Tags
named in a row are added (created when missing).]],
}

--- The constructor options of a run, from the environment (`env`) and the options.
function M.client_options(env, o)
  return {
    api_key = env.required("SYSTEME_API_KEY", "the API key of the Systeme.io account"),
    base_url = o["base-url"] or env.value("SYSTEME_BASE_URL"),
  }
end

local function field_list(map)
  local slugs = {}
  for k in pairs(map) do slugs[#slugs + 1] = k end
  table.sort(slugs)
  local out = {}
  for i, slug in ipairs(slugs) do out[i] = { slug = slug, value = map[slug] } end
  return out
end

-- import: one create per row; a taken email is already there (or, with --update, is updated).
-- Tags named in the row are added either way. `classify(err)` says whether an error
-- fails the row or stops the import.
local function import_rows(sys, o, classify)
  local update = o.update and not o["dry-run"]
  return function(row)
    local c = rows.unflatten_contact(row)
    if not c.email then return "failed", "no email" end
    if update then
      local contact, created = sys:upsert_contact{ email = c.email, locale = c.locale, fields = c.fields,
        tags = #c.tags > 0 and c.tags or nil }
      if not contact then return classify(created) end
      return created and "created" or "updated"
    end
    local body = { email = c.email, locale = c.locale }
    local fields = field_list(c.fields)
    if #fields > 0 then body.fields = fields end
    local contact, err = sys.contacts:create(body)
    local outcome = "created"
    if not contact then
      if not contacts_helpers.email_taken(err) then return classify(err) end
      outcome = "existing"
    end
    if #c.tags > 0 and not o["dry-run"] then
      local report, terr = sys:tag_contacts({ c.email }, c.tags)
      if terr then return classify(terr) end
      if #report.failed > 0 then return "failed", "tags: " .. report.failed[1].reason end
    end
    return outcome
  end
end

-- tag and untag: add or remove tags by name on the contacts found by email.
local function retag(sys, adding, emails, names)
  if adding then return sys:tag_contacts(emails, names) end
  return sys:untag_contacts(emails, names)
end

M.resources.contacts.import_rows = import_rows
M.resources.contacts.retag = retag

return M
