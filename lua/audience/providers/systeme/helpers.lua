--- Systeme.io conveniences built from the public resource methods: find and upsert a
-- contact by email, and tags by name (resolved once per client, created when missing).
-- They are methods of every Systeme.io client (`sys:upsert_contact{...}`).
-- @module audience.providers.systeme.helpers
local json = require "audience.json"
local Error = require "audience.error"
local helpers = require "audience.helpers"

local bad, check_email, check_names = helpers.bad, helpers.check_email, helpers.check_names
local text, items_of = helpers.text, helpers.items_of

local M = {}

--- The helper methods of a Systeme.io client.
-- @type Systeme
local Systeme = {}
M.methods = Systeme

--- The contact that has an email address (compared without case).
-- @tparam string email the address
-- @treturn[1] table the contact
-- @treturn[2] boolean false when no contact has it
-- @treturn[3] nil
-- @treturn[3] Error why the lookup failed
function Systeme:find_contact(email)
  return helpers.find_by_email("find_contact", self.contacts, email)
end

-- A 422 whose violation says the email is taken (the create lost a race, or the
-- contact was there all along).
function M.email_taken(err)
  if not Error.is(err) or err.kind ~= "validation" then return false end
  for _, d in ipairs(err.details or {}) do
    if d.field == "email" and tostring(d.message):lower():find("already", 1, true) then return true end
  end
  return tostring(err.message):lower():find("already used", 1, true) ~= nil
end

-- Tag names are resolved once per client: the cache maps exact names to ids.
local function tag_ids(self)
  local ids = rawget(self, "_tag_ids")
  if not ids then
    ids = {}
    self._tag_ids = ids
  end
  return ids
end

local function remember_tags(self, tags)
  local ids = tag_ids(self)
  for _, t in ipairs(tags or {}) do
    if type(t) == "table" and t.name and t.id then ids[t.name] = t.id end
  end
end

-- The tag's id; false when it does not exist and `create` is false; nil, err.
local function tag_id(self, name, create)
  local ids = tag_ids(self)
  local cached = ids[name]
  if cached then return cached end
  for _ = 1, 2 do
    -- `query` matches parts of names, so look through the matches for the exact one.
    local params = { query = name, limit = 100 }
    for _ = 1, 10000 do
      local page, err = self.tags:list(params)
      if not page then return nil, err end
      remember_tags(self, page.items)
      if ids[name] then return ids[name] end
      if not page.next then break end
      params = page.next
    end
    if not create then return false end
    local t, err = self.tags:create{ name = name }
    if t then
      ids[name] = t.id
      return t.id
    end
    -- "already used": someone created it since we looked; the second turn finds it.
    if not (err.kind == "validation" and err.status == 422) then return nil, err end
  end
  return nil, Error.new{ kind = "conflict", provider = "systeme",
    message = "tag '" .. name .. "' is neither found nor creatable" }
end

local function resolve_tags(self, names, create)
  local out = {}
  for _, name in ipairs(names) do
    local id, err = tag_id(self, name, create)
    if id == nil then return nil, err end
    if id then out[#out + 1] = { id = id, name = name } end
  end
  return out
end

-- fields given as { slug = value } or as the API's { { slug =, value = } } -> the list.
local function field_list(fname, fields)
  if fields == nil then return {} end
  if type(fields) ~= "table" then bad(fname, 1, "spec.fields", "table", fields) end
  local out = {}
  if #fields > 0 or json.is_array(fields) then
    for i, f in ipairs(fields) do
      if type(f) ~= "table" or type(f.slug) ~= "string" then
        bad(fname, 1, "spec.fields[" .. i .. "]", "{ slug =, value = }", f)
      end
      out[i] = { slug = f.slug, value = f.value == nil and json.null or f.value }
    end
    return out
  end
  local slugs = {}
  for k in pairs(fields) do
    if type(k) ~= "string" then bad(fname, 1, "spec.fields", "map of slug to value", fields) end
    slugs[#slugs + 1] = k
  end
  table.sort(slugs)
  for i, slug in ipairs(slugs) do out[i] = { slug = slug, value = fields[slug] } end
  return out
end

-- What a merge-patch must change on `contact`; nil when it already matches.
local function contact_changes(contact, locale, fields)
  local patch
  if locale ~= nil and text(locale) ~= text(contact.locale) then
    patch = { locale = locale }
  end
  local current = {}
  for _, f in ipairs(contact.fields or {}) do current[f.slug] = f.value end
  local changed = {}
  for _, f in ipairs(fields) do
    if text(f.value) ~= text(current[f.slug]) then changed[#changed + 1] = f end
  end
  if #changed > 0 then
    patch = patch or {}
    patch.fields = changed
  end
  return patch
end

--- Finds the contact by email, creates it or merge-patches what differs, and adds the
-- tags it lacks (tags are only added, never removed; missing tags are created).
-- @tparam table spec `email` (required), `locale`, `fields` ({ slug = value } or the
-- API's list of { slug =, value = }), `tags` (names)
-- @treturn[1] table the contact as it is now
-- @treturn[1] boolean whether it was created
-- @treturn[2] nil
-- @treturn[2] Error why it failed
function Systeme:upsert_contact(spec)
  local fname = "upsert_contact"
  if type(spec) ~= "table" then bad(fname, 1, "spec", "table", spec) end
  check_email(fname, 1, "spec.email", spec.email)
  if spec.locale ~= nil and spec.locale ~= json.null and type(spec.locale) ~= "string" then
    bad(fname, 1, "spec.locale", "string or nil", spec.locale)
  end
  if spec.tags ~= nil then check_names(fname, 1, "spec.tags", spec.tags) end
  local fields = field_list(fname, spec.fields)

  -- Tags first: when one cannot be had, the contact is left as it was.
  local tags, terr = resolve_tags(self, spec.tags or {}, true)
  if not tags then return nil, terr end

  local contact, err = Systeme.find_contact(self, spec.email)
  if contact == nil then return nil, err end
  local created = false
  if not contact then
    local body = { email = spec.email, locale = spec.locale }
    if #fields > 0 then body.fields = fields end
    contact, err = self.contacts:create(body)
    if contact then
      created = true
    elseif M.email_taken(err) then
      contact, err = Systeme.find_contact(self, spec.email)
      if not contact then return nil, err or Error.new{ kind = "conflict", provider = "systeme",
        message = "email is taken but no contact has it: " .. spec.email } end
    else
      return nil, err
    end
  end
  if not created then
    local patch = contact_changes(contact, spec.locale, fields)
    if patch then
      contact, err = self.contacts:update(contact.id, patch)
      if not contact then return nil, err end
    end
  end
  remember_tags(self, contact.tags)
  local have = {}
  for _, t in ipairs(contact.tags or {}) do have[t.id] = true end
  for _, t in ipairs(tags) do
    if not have[t.id] then
      local ok, aerr = self.contacts:add_tag(contact.id, t.id)
      if not ok then return nil, aerr end
      contact.tags = contact.tags or {}
      contact.tags[#contact.tags + 1] = { id = t.id, name = t.name }
      have[t.id] = true
    end
  end
  return contact, created
end

local function retag(self, fname, emails, names, adding)
  local next_email = items_of(fname, 1, "emails", emails)
  check_names(fname, 2, "tag_names", names)
  local report = { done = 0, failed = {}, not_found = {} }
  local stop
  local tags, terr = resolve_tags(self, names, adding)
  if not tags then stop = terr end
  for email in next_email do
    if type(email) ~= "string" or email == "" then
      report.failed[#report.failed + 1] = { email = email, reason = "not an email" }
    elseif stop then
      report.failed[#report.failed + 1] = { email = email, reason = "not sent: " .. tostring(stop) }
    else
      local contact, err = Systeme.find_contact(self, email)
      if contact == false then
        report.not_found[#report.not_found + 1] = email
      elseif contact then
        remember_tags(self, contact.tags)
        local have = {}
        for _, t in ipairs(contact.tags or {}) do have[t.id] = true end
        for _, t in ipairs(tags) do
          if (have[t.id] == true) ~= adding then
            local ok
            if adding then
              ok, err = self.contacts:add_tag(contact.id, t.id)
            else
              ok, err = self.contacts:remove_tag(contact.id, t.id)
            end
            if not ok then break end
          end
        end
      end
      if err then
        report.failed[#report.failed + 1] = { email = email, reason = tostring(err) }
        if helpers.is_fatal(err) then stop = err end
      elseif contact then
        report.done = report.done + 1
      end
    end
  end
  return report, stop
end

--- Adds tags (created when missing) to each contact found by email.
-- @tparam function|{string,...} emails a list of addresses or an iterator giving them
-- @tparam {string,...} tag_names the tags' names
-- @treturn table the report: `done`, `failed` ({ email, reason } each), `not_found` (emails)
-- @treturn[opt] Error the error that stopped it early (auth, quota, network...)
function Systeme:tag_contacts(emails, tag_names)
  return retag(self, "tag_contacts", emails, tag_names, true)
end

--- Removes tags from each contact found by email. Tags that do not exist are on no
-- contact, so there is nothing to remove for them.
-- @tparam function|{string,...} emails a list of addresses or an iterator giving them
-- @tparam {string,...} tag_names the tags' names
-- @treturn table the report, as `tag_contacts` gives it
-- @treturn[opt] Error the error that stopped it early
function Systeme:untag_contacts(emails, tag_names)
  return retag(self, "untag_contacts", emails, tag_names, false)
end

return M
