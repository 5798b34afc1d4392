-- Conveniences built only from the public resource methods: upsert by email, tags by
-- name, a list sync that spends few requests, and exports to CSV / JSON lines.
--
-- Conventions, the same for every helper:
--   * a wrong argument raises, naming it;
--   * an API failure returns nil, err (an audience.Error);
--   * find_* return the item, `false` when nothing has that email, or nil, err;
--   * bulk helpers return a report that accounts for every input, plus the error that
--     stopped them early (if one did): report, err.
local json = require "audience.json"
local jsonl = require "audience.jsonl"
local csv = require "audience.csv"
local Error = require "audience.error"
local options = require "audience.options"
local resource = require "audience.resource"

local M = {}

local function bad(fname, n, name, expected, v)
  error(("audience: bad argument #%d to '%s' (%s: %s expected, got %s)")
    :format(n, fname, name, expected, options.describe(v)), 0)
end

local function check_email(fname, n, name, v)
  if type(v) ~= "string" or not v:find("%S") then bad(fname, n, name, "non-empty string", v) end
end

local function check_names(fname, n, name, v)
  if type(v) ~= "table" then bad(fname, n, name, "list of non-empty strings", v) end
  for i, s in ipairs(v) do
    if type(s) ~= "string" or s == "" then
      bad(fname, n, name .. "[" .. i .. "]", "non-empty string", s)
    end
  end
end

local function same_email(a, b)
  return type(a) == "string" and type(b) == "string" and a:lower() == b:lower()
end

local function isnull(v) return v == nil or v == json.null end

-- Scalars as the APIs give them back (strings mostly), so "5" and 5 compare equal.
local function text(v)
  if isnull(v) then return "" end
  if type(v) == "number" and v == math.floor(v) then return ("%d"):format(v) end
  return tostring(v)
end

-- A list or an iterator function, as one iterator.
local function items_of(fname, n, name, source)
  if type(source) == "function" then return source end
  if type(source) ~= "table" then bad(fname, n, name, "list or iterator function", source) end
  local i = 0
  return function()
    i = i + 1
    return source[i]
  end
end

-- Errors that say something about one row (this email, this body), after which the
-- next row may well succeed. Anything else (auth, network, quota, server) would fail
-- every row the same way, so bulk helpers stop on it.
local ROW_KINDS = { validation = true, not_found = true, conflict = true }

--- Whether `err` stops a bulk operation (as opposed to failing one row).
function M.is_fatal(err)
  return not (Error.is(err) and ROW_KINDS[err.kind])
end

-- Walks a page iterator inside pcall: an iterator raises its audience.Error, which a
-- helper returns; anything else (a bug, "interrupted!") keeps going up.
local function catch(fn)
  local ok, err = pcall(fn)
  if ok then return true end
  if Error.is(err) then return nil, err end
  error(err, 0)
end

-- =====================================================================  Systeme.io

local Systeme = {}

--- sys:find_contact(email) -> contact | false (no contact has it) | nil, err
function Systeme.find_contact(self, email)
  check_email("find_contact", 1, "email", email)
  local page, err = self.contacts:list{ email = email }
  if not page then return nil, err end
  for _, c in ipairs(page.items) do
    if same_email(c.email, email) then return c end
  end
  return false
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
local function remember_tags(self, tags)
  for _, t in ipairs(tags or {}) do
    if type(t) == "table" and t.name and t.id then self._tag_ids[t.name] = t.id end
  end
end

-- The tag's id; false when it does not exist and `create` is false; nil, err.
local function tag_id(self, name, create)
  local cached = self._tag_ids[name]
  if cached then return cached end
  for _ = 1, 2 do
    -- `query` matches parts of names, so look through the matches for the exact one.
    local params = { query = name, limit = 100 }
    for _ = 1, 10000 do
      local page, err = self.tags:list(params)
      if not page then return nil, err end
      remember_tags(self, page.items)
      if self._tag_ids[name] then return self._tag_ids[name] end
      if not page.next then break end
      params = page.next
    end
    if not create then return false end
    local t, err = self.tags:create{ name = name }
    if t then
      self._tag_ids[name] = t.id
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

--- sys:upsert_contact{ email =, locale =, fields =, tags = { names } } -> contact, created
--- Finds the contact by email, creates it or merge-patches what differs, and adds the
--- tags it lacks (tags are only added, never removed; missing tags are created).
function Systeme.upsert_contact(self, spec)
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
        if M.is_fatal(err) then stop = err end
      elseif contact then
        report.done = report.done + 1
      end
    end
  end
  return report, stop
end

--- sys:tag_contacts(emails, tag_names) -> { done =, failed = { {email, reason} }, not_found = { emails } }
--- Adds the tags (created when missing) to each contact found by email.
function Systeme.tag_contacts(self, emails, tag_names)
  return retag(self, "tag_contacts", emails, tag_names, true)
end

--- sys:untag_contacts(emails, tag_names) -> report, as tag_contacts. Tags that do not
--- exist are on no contact, so there is nothing to remove for them.
function Systeme.untag_contacts(self, emails, tag_names)
  return retag(self, "untag_contacts", emails, tag_names, false)
end

-- ---------------------------------------------------- Systeme contacts as flat rows

-- The columns of a flattened contact, in export order.
M.CONTACT_COLUMNS = { "id", "email", "locale", "registeredAt", "sourceURL", "unsubscribed",
  "bounced", "needsConfirmation", "tags", "fields" }

local CONTACT_KNOWN = {}
for _, c in ipairs(M.CONTACT_COLUMNS) do CONTACT_KNOWN[c] = true end
local BOOLEAN_COLUMNS = { unsubscribed = true, bounced = true, needsConfirmation = true }

-- Tag names joined with ";" (a ";" or "\" inside a name is escaped with "\").
function M.join_names(names)
  local out = {}
  for i, n in ipairs(names) do out[i] = (n:gsub("\\", "\\\\"):gsub(";", "\\;")) end
  return table.concat(out, ";")
end

function M.split_names(s)
  local out, cur, i = {}, {}, 1
  while i <= #s do
    local c = s:sub(i, i)
    if c == "\\" and i < #s then
      cur[#cur + 1] = s:sub(i + 1, i + 1)
      i = i + 2
    else
      if c == ";" then
        out[#out + 1] = table.concat(cur)
        cur = {}
      else
        cur[#cur + 1] = c
      end
      i = i + 1
    end
  end
  out[#out + 1] = table.concat(cur)
  local names = {}
  for _, n in ipairs(out) do
    n = n:match("^%s*(.-)%s*$")
    if n ~= "" then names[#names + 1] = n end
  end
  return names
end

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
  row.tags = M.join_names(names)
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

local function present(v)
  if isnull(v) or v == "" then return nil end
  return v
end

local function decode_cell(v)
  if type(v) ~= "string" then return v end
  local t = json.decode(v)
  if type(t) == "table" then return t end
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
    tags = tags:find("^%s*%[") and decode_cell(tags) or M.split_names(tags)
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

-- =====================================================================  Creamailer

local Creamailer = {}

local function norm_key(v)
  return type(v) == "string" and v:lower() or text(v)
end

-- Whether importing `entry` would change `current` (only what the entry gives counts).
local function subscriber_differs(entry, current, key)
  for k, v in pairs(entry) do
    if k == "custom_fields" and type(v) == "table" then
      local cf = type(current.custom_fields) == "table" and current.custom_fields or {}
      for ck, cv in pairs(v) do
        if text(cv) ~= text(cf[ck]) then return true end
      end
    elseif k ~= key and k ~= "update_existing" and type(v) ~= "table" then
      if k == "email" then
        if not same_email(v, current.email) then return true end
      elseif text(v) ~= text(current[k]) then
        return true
      end
    end
  end
  return false
end

-- What an export holds but an import must not send back.
local READ_ONLY = { id = true, list_id = true, created = true, updated = true }

-- A CSV row as an import entry: empty cells are left out (they would clear values),
-- a custom_fields cell holds a JSON object, read-only columns are dropped.
function M.subscriber_entry(row)
  local e = {}
  for k, v in pairs(row) do
    if k == "custom_fields" then
      local cf = type(v) == "table" and v or decode_cell(v)
      if type(cf) == "table" and next(cf) ~= nil then e.custom_fields = cf end
    elseif present(v) ~= nil and not READ_ONLY[k] then
      e[k] = v
    end
  end
  return e
end

--- cm:sync_list(list_id, source, { key = "email", update = true, batch_size = 500 })
--- -> { added, updated, unchanged, failed = { {email, reason} }, not_sent, batches }, err
--- Reads the list once (every status, 1,000 a page), then imports only the entries that
--- are new or, with update, differ; in batches, never one request per entry.
--- source: an iterator function, a list of entry tables, or the path of a CSV file.
function Creamailer.sync_list(self, list_id, source, opts)
  local fname = "sync_list"
  resource.check_arg(fname, 1, "list_id", "id", list_id)
  local next_entry
  if type(source) == "string" then
    local rows, msg = csv.reader(source)
    if not rows then bad(fname, 2, "source", "readable CSV file (" .. msg .. ")", source) end
    next_entry = function()
      local row = rows()
      return row and M.subscriber_entry(row)
    end
  else
    next_entry = items_of(fname, 2, "source", source)
  end
  if opts ~= nil and type(opts) ~= "table" then bad(fname, 3, "opts", "table or nil", opts) end
  opts = opts or {}
  options.check_call_options(fname, opts, { key = "string", update = "boolean", batch_size = "positive_integer" })
  local key = opts.key or "email"
  local update = opts.update ~= false

  local current = {}
  local ok, err = catch(function()
    for s in self.subscribers:each(list_id, { status = "all" }) do
      if s[key] ~= nil then current[norm_key(s[key])] = s end
    end
  end)
  if not ok then return nil, err end

  local unchanged, local_failed = 0, {}
  -- Feeds the import only what must be sent; the rest is counted on the way.
  local function changed_entries()
    for _ = 1, math.huge do
      local entry = next_entry()
      if entry == nil then return nil end
      local k = type(entry) == "table" and entry[key] or nil
      if type(entry) ~= "table" then
        local_failed[#local_failed + 1] = { reason = "entry is not a table" }
      elseif k == nil or k == "" then
        local_failed[#local_failed + 1] = { email = entry.email, reason = "entry has no " .. key }
      else
        local cur = current[norm_key(k)]
        if not cur then return entry end
        if update and subscriber_differs(entry, cur, key) then return entry end
        unchanged = unchanged + 1
      end
    end
  end

  local report, ierr = self.subscribers:import(list_id, changed_entries,
    { update_existing = update, batch_size = opts.batch_size })
  report.unchanged = unchanged
  for _, f in ipairs(local_failed) do report.failed[#report.failed + 1] = f end
  return report, ierr
end

-- =====================================================================  SubscribeFlow

local SubscribeFlow = {}

--- sf:find_subscriber(email) -> subscriber | false | nil, err
function SubscribeFlow.find_subscriber(self, email)
  check_email("find_subscriber", 1, "email", email)
  local page, err = self.subscribers:list{ email = email }
  if not page then return nil, err end
  for _, s in ipairs(page.items) do
    if same_email(s.email, email) then return s end
  end
  return false
end

--- Creates a subscriber from `body`, sent as canonical JSON, so that the same body and
--- Idempotency-Key give the same bytes in any process (the server compares bytes).
--- Returns subscriber, replayed (bool) | nil, err.
function M.create_subscriber(sf, body, idempotency_key)
  local value, err, res = sf:request("POST", "/subscribers",
    { body = jsonl.encode(body), idempotency_key = idempotency_key })
  if value == nil then return nil, err end
  if type(value) == "table" and value.data ~= nil then value = value.data end
  local replayed = res and res.headers and res.headers["idempotent-replayed"] == "true"
  return value, replayed or false
end

local function slugs_of(tags)
  local out = {}
  for i, t in ipairs(tags or {}) do out[i] = type(t) == "table" and t.slug or t end
  return out
end

--- sf:upsert_subscriber{ email =, status =, metadata =, tags = { slugs } } [, { idempotency_key = }]
--- -> subscriber, created | nil, err. Creates, or patches status and metadata (merged
--- key by key) where they differ and adds the tags it lacks (tags are never removed).
function SubscribeFlow.upsert_subscriber(self, spec, opts)
  local fname = "upsert_subscriber"
  if type(spec) ~= "table" then bad(fname, 1, "spec", "table", spec) end
  check_email(fname, 1, "spec.email", spec.email)
  if spec.status ~= nil and type(spec.status) ~= "string" then
    bad(fname, 1, "spec.status", "string or nil", spec.status)
  end
  if spec.metadata ~= nil and type(spec.metadata) ~= "table" then
    bad(fname, 1, "spec.metadata", "table or nil", spec.metadata)
  end
  if spec.tags ~= nil then check_names(fname, 1, "spec.tags", spec.tags) end
  if opts ~= nil and type(opts) ~= "table" then bad(fname, 2, "opts", "table or nil", opts) end
  opts = opts or {}
  options.check_call_options(fname, opts, { idempotency_key = "string" })

  local s, err = SubscribeFlow.find_subscriber(self, spec.email)
  if s == nil then return nil, err end
  if not s then
    local body = { email = spec.email, status = spec.status, metadata = spec.metadata }
    if spec.tags and #spec.tags > 0 then body.tags = json.array(spec.tags) end
    local created
    created, err = M.create_subscriber(self, body, opts.idempotency_key)
    if created then return created, true end
    if err.kind ~= "conflict" then return nil, err end
    -- Created by someone else meanwhile: update that one instead.
    s, err = SubscribeFlow.find_subscriber(self, spec.email)
    if not s then return nil, err or Error.new{ kind = "conflict", provider = "subscribeflow",
      message = "conflict on create but no subscriber has " .. spec.email } end
  end
  local patch = {}
  if spec.status and spec.status ~= s.status then patch.status = spec.status end
  if spec.metadata then
    local md = type(s.metadata) == "table" and s.metadata or {}
    for k, v in pairs(spec.metadata) do
      if text(v) ~= text(md[k]) then patch.metadata = spec.metadata; break end
    end
  end
  if next(patch) ~= nil then
    s, err = self.subscribers:update(s.id, patch)
    if not s then return nil, err end
  end
  local have, missing = {}, {}
  for _, slug in ipairs(slugs_of(s.tags)) do have[slug] = true end
  for _, slug in ipairs(spec.tags or {}) do
    if not have[slug] then missing[#missing + 1] = slug; have[slug] = true end
  end
  if #missing > 0 then
    local tags, terr = self.subscribers:update_tags(s.id, { add = missing })
    if not tags then return nil, terr end
    s.tags = slugs_of(tags)
  end
  return s, false
end

-- =====================================================================  exports

local function default_columns(row)
  local keys = {}
  for k in pairs(row) do
    if type(k) == "string" and k ~= "id" and k ~= "email" then keys[#keys + 1] = k end
  end
  table.sort(keys)
  if row.email ~= nil then table.insert(keys, 1, "email") end
  if row.id ~= nil then table.insert(keys, 1, "id") end
  return keys
end
M.default_columns = default_columns

--- audience.export(source, file, format [, opts]) -> count | nil, err, count
--- source: an iterator (e.g. sys.contacts:each{...}) or a list; file: a path (created or
--- truncated, closed at the end) or an open handle (flushed, left open); format: "csv" or
--- "jsonl". opts: columns (list of names; default the first item's keys, sorted, id and
--- email first), transform (function(item) -> row), header (CSV, default true),
--- line_end (CSV, default "\r\n"). err is the iterator's audience.Error or an I/O message.
function M.export(source, file, format, opts)
  local fname = "export"
  local next_item = items_of(fname, 1, "source", source)
  if type(file) ~= "string" and io.type(file) ~= "file" then
    bad(fname, 2, "file", "path or open file handle", file)
  end
  if format ~= "csv" and format ~= "jsonl" then bad(fname, 3, "format", "'csv' or 'jsonl'", format) end
  if opts ~= nil and type(opts) ~= "table" then bad(fname, 4, "opts", "table or nil", opts) end
  opts = opts or {}
  options.check_call_options(fname, opts, { columns = "table", transform = "function", header = "boolean",
    line_end = "any" })
  if opts.columns then check_names(fname, 4, "opts.columns", opts.columns) end
  if opts.line_end ~= nil and opts.line_end ~= "\r\n" and opts.line_end ~= "\n" then
    bad(fname, 4, "opts.line_end", "\"\\r\\n\" or \"\\n\"", opts.line_end)
  end

  local out, owned = file, false
  if type(file) == "string" then
    local f, msg = io.open(file, "wb")
    if not f then return nil, msg, 0 end
    out, owned = f, true
  end
  local columns, header = opts.columns, opts.header ~= false
  local eol = opts.line_end or "\r\n"
  local count = 0
  local io_failure = {}
  local function write(s)
    local ok, msg = out:write(s)
    if not ok then io_failure.message = msg; error(io_failure) end
  end
  local ok, err = pcall(function()
    if format == "csv" and columns and header then write(csv.format_row(columns, #columns, eol)) end
    for item in next_item do
      local row = opts.transform and opts.transform(item) or item
      if format == "csv" then
        if not columns then
          columns = default_columns(row)
          if header then write(csv.format_row(columns, #columns, eol)) end
        end
        local values = {}
        for i, c in ipairs(columns) do values[i] = row[c] end
        write(csv.format_row(values, #columns, eol))
      else
        if columns then
          local picked = {}
          for _, c in ipairs(columns) do picked[c] = row[c] end
          row = picked
        end
        write(jsonl.encode(row) .. "\n")
      end
      count = count + 1
    end
  end)
  if owned then out:close() else out:flush() end
  if ok then return count end
  if err == io_failure then return nil, io_failure.message, count end
  if Error.is(err) then return nil, err, count end
  error(err, 0)
end

-- =====================================================================  attach

local BY_PROVIDER = { systeme = Systeme, creamailer = Creamailer, subscribeflow = SubscribeFlow }

--- Puts the provider's helper methods on a new client (called by client.new).
function M.attach(client)
  local methods = BY_PROVIDER[client._provider.name]
  if not methods then return client end
  for name, fn in pairs(methods) do client[name] = fn end
  if methods == Systeme then client._tag_ids = {} end
  return client
end

return M
