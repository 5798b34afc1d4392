-- Systeme.io public API mock (the 31 operations of the published OpenAPI document).
-- Runs inside nginx; see common.lua for the mock interface.
--
-- Config (JSON from the harness):
--   accounts = { NAME = { keys = {"k1", "k2"}, limit = 20, per = 2 } }   -- quota per account
--   refill_style = "epoch" | "epoch_ms" | "delta"                      -- X-RateLimit-Refill
--   contact_fields = { {slug=, fieldName=}, ... }                      -- replaces the defaults
--   seed = { RESOURCE = count | {items...} }                           -- seeded on reset
local M = {}

M.prefix = "/api"
M.credential_headers = { "x-api-key" }

local C       -- common module
local D       -- data of the current state (replaced on reset)
local null

local LOCALES = {}
for _, l in ipairs({ "en", "fr", "es", "it", "pt", "de", "nl", "ru", "jp", "tr", "ar", "zh", "sv",
  "ro", "cs", "hu", "sk", "dk", "id", "pl", "el", "sr", "hi", "no", "th", "sq", "sl", "ua" }) do
  LOCALES[l] = true
end

local EVENTS = {}
for _, e in ipairs({ "CONTACT_CREATED", "CONTACT_TAG_ADDED", "CONTACT_TAG_REMOVED", "CONTACT_OPT_IN",
  "SALE_NEW", "SALE_CANCELED" }) do
  EVENTS[e] = true
end

local ACCESS_TYPES = { partial_access = true, full_access = true, dripping_content = true }

local DEFAULT_FIELDS = {
  { slug = "first_name", fieldName = "First name" },
  { slug = "surname", fieldName = "Surname" },
  { slug = "phone_number", fieldName = "Phone number" },
  { slug = "country", fieldName = "Country" },
  { slug = "state", fieldName = "State" },
  { slug = "city", fieldName = "City" },
  { slug = "street_address", fieldName = "Street address" },
  { slug = "postcode", fieldName = "Postcode" },
  { slug = "company_name", fieldName = "Company name" },
}

local NOT_FOUND_DETAIL = "Not Found"

-- ---------------------------------------------------------------- helpers

local function isnil(v) return v == nil or v == null end

local function not_found()
  return C.problem(404, NOT_FOUND_DETAIL)
end

local function bad_request(detail)
  return C.problem(400, detail)
end

local function viol(path, message, code)
  return { propertyPath = path, message = message, code = code }
end

local function blank(path) return viol(path, "This value should not be blank.", C.codes.not_blank) end

local function json_type_name(v)
  local t = type(v)
  if v == null then return "null" end
  if t == "number" then return (v == math.floor(v)) and "int" or "float" end
  if t == "boolean" then return "bool" end
  if t == "table" then return "array" end
  return t
end

local function type_error(attr, expected, v)
  return bad_request(string.format('The type of the "%s" attribute must be "%s", "%s" given.',
    attr, expected, json_type_name(v)))
end

local function is_int(v) return type(v) == "number" and v == math.floor(v) end

local function to_int(s)
  if type(s) == "number" then return is_int(s) and s or nil end
  if type(s) ~= "string" or not s:match("^%-?%d+$") then return nil end
  return tonumber(s)
end

local function to_bool(s)
  if s == "true" or s == "1" then return true end
  if s == "false" or s == "0" then return false end
  return nil
end

local function valid_email(s)
  return type(s) == "string" and #s <= 255 and s:match("^[^%s@]+@[^%s@]+%.[^%s@%.]+$") ~= nil
end

local function valid_url(s)
  return type(s) == "string" and s:match("^https?://[^%s/]+[^%s]*$") ~= nil
end

local function arr(t) return C.array(t) end

--- Decode the request body as a JSON object. kind "merge" requires merge-patch+json.
-- Returns table or nil, error response.
local function body_object(req, kind, optional)
  local mt = C.media_type(req.content_type)
  if kind == "merge" then
    if mt == nil then
      return nil, C.problem(415, 'The "Content-Type" header must exist.')
    elseif mt ~= "application/merge-patch+json" then
      return nil, C.problem(415, string.format('The content-type "%s" is not supported. '
        .. 'Supported MIME types are "application/merge-patch+json".', mt))
    end
  elseif req.body ~= "" then
    if mt == nil then
      return nil, C.problem(415, 'The "Content-Type" header must exist.')
    elseif mt ~= "application/json" and mt ~= "text/html" then
      return nil, C.problem(415, string.format('The content-type "%s" is not supported. '
        .. 'Supported MIME types are "application/json", "text/html".', mt))
    end
  end
  if req.body:match("^%s*$") then
    if optional then return {} end
    return nil, bad_request("Syntax error")
  end
  local v = C.decode(req.body)
  if v == nil then return nil, bad_request("Syntax error") end
  if type(v) ~= "table" or not req.body:match("^%s*{") then
    return nil, bad_request("The input data is misformatted.")
  end
  return v
end

-- ---------------------------------------------------------------- rendering

local function contact_brief(c)
  return {
    id = c.id, email = c.email, registeredAt = c.registeredAt,
    -- The document's locale is a string from a list, never null: a contact without one
    -- has no locale key at all.
    locale = not isnil(c.locale) and c.locale or nil,
    sourceURL = isnil(c.sourceURL) and null or c.sourceURL,
    unsubscribed = c.unsubscribed, bounced = c.bounced, needsConfirmation = c.needsConfirmation,
  }
end

local function render_contact(c)
  local out = contact_brief(c)
  local fields = arr()
  for _, slug in ipairs(D.fields.order) do
    local v = c.values[slug]
    if v ~= nil then
      fields[#fields + 1] = { fieldName = D.fields.by_slug[slug].fieldName, slug = slug, value = v }
    end
  end
  out.fields = fields
  local tags = arr()
  for _, tid in ipairs(c.tags) do
    local t = D.tags:get(tid)
    if t then tags[#tags + 1] = { id = t.id, name = t.name } end
  end
  out.tags = tags
  return out
end

local function render_tag(t)
  return { id = t.id, name = t.name, createdAt = t.createdAt }
end

local function render_field(f)
  return { slug = f.slug, fieldName = f.fieldName }
end

local function render_webhook(w, admin)
  local subs = arr()
  for _, s in ipairs(w.subscriptions) do
    subs[#subs + 1] = { id = tostring(s.id), event = s.event,
      disabledAt = s.disabledAt or null, disabledReason = s.disabledReason or null }
  end
  local out = { id = tostring(w.id), name = w.name, url = w.url, active = w.active, subscriptions = subs }
  if admin then out.secret = w.secret end
  return out
end

local function course_brief(co)
  return { id = co.id, locale = co.locale, path = co.path, active = co.active, name = co.name }
end

local function render_course(co)
  local out = course_brief(co)
  out.domainName = isnil(co.domainName) and null or co.domainName
  local mods = arr()
  for _, m in ipairs(co.modules) do mods[#mods + 1] = { id = m.id, name = m.name } end
  out.modules = mods
  return out
end

local function render_enrollment(e)
  local c = D.contacts:get(e.contact)
  local co = D.courses:get(e.course)
  return {
    id = e.id,
    contact = c and contact_brief(c) or { id = e.contact },
    course = co and course_brief(co) or { id = e.course },
    accessType = e.accessType, active = e.active,
  }
end

local function render_community(cm)
  return { id = cm.id, name = cm.name, domainName = cm.domainName, path = cm.path }
end

local function render_membership(m)
  local cm = D.communities:get(m.community)
  return { id = m.id, community = cm and render_community(cm) or { id = m.community },
    contact = { id = m.contact } }
end

local function render_subscription(s, admin)
  local out = {
    id = s.id, createdAt = s.createdAt, status = s.status,
    completedAt = s.completedAt or null, cancelledAt = s.cancelledAt or null,
    pricePlan = isnil(s.pricePlan) and null or s.pricePlan,
  }
  if admin then
    out.contact = s.contact
    out.cancelAtPeriodEnd = s.cancelAtPeriodEnd or false
  end
  return out
end

-- ---------------------------------------------------------------- collections

-- The document declares no error answer but 429 for collection GETs, so parameters
-- outside their schema are not refused: limit is brought into 10..100, an unreadable
-- startingAfter or order is ignored. (Clients check these before sending.)
local function page_params(req)
  local q = req.query
  local limit, after, order = 10, nil, "desc"
  local n = to_int(q.limit)
  if n then limit = math.max(10, math.min(100, n)) end
  if q.startingAfter ~= nil and q.startingAfter ~= "" then after = to_int(q.startingAfter) end
  if q.order == "asc" or q.order == "desc" then order = q.order end
  return { limit = limit, after = after, order = order }
end

local function collection(req, store, render, pred)
  local p = page_params(req)
  local recs, has_more = store:cursor(p.order, p.after, p.limit, pred)
  local items = arr()
  for i, r in ipairs(recs) do items[i] = render(r) end
  return C.json(200, { items = items, hasMore = has_more })
end

local function and_preds(preds)
  if #preds == 0 then return nil end
  return function(r)
    for _, p in ipairs(preds) do if not p(r) then return false end end
    return true
  end
end

local function contains_ci(hay, needle)
  return type(hay) == "string" and hay:lower():find(needle:lower(), 1, true) ~= nil
end

-- ---------------------------------------------------------------- contact fields

local function add_field(slug, name)
  if not D.fields.by_slug[slug] then D.fields.order[#D.fields.order + 1] = slug end
  D.fields.by_slug[slug] = { slug = slug, fieldName = name }
  return D.fields.by_slug[slug]
end

local function remove_field(slug)
  D.fields.by_slug[slug] = nil
  for i, s in ipairs(D.fields.order) do
    if s == slug then table.remove(D.fields.order, i); break end
  end
  for _, c in ipairs(D.contacts:all()) do c.values[slug] = nil end
end

-- Parse [{slug, value}] for a contact. Returns changes {slug -> value|null} or nil, error resp;
-- appends violations to vs.
local function parse_contact_fields(fields, vs)
  if isnil(fields) then return {} end
  if type(fields) ~= "table" then return nil, type_error("fields", "array", fields) end
  local changes = {}
  for i, f in ipairs(fields) do
    local path = string.format("fields[%d]", i - 1)
    if type(f) ~= "table" then return nil, type_error(path, "object", f) end
    local slug, value = f.slug, f.value
    if isnil(slug) then
      vs[#vs + 1] = blank(path .. ".slug")
    elseif type(slug) ~= "string" then
      return nil, type_error("slug", "string", slug)
    elseif not D.fields.by_slug[slug] then
      vs[#vs + 1] = viol(path .. ".slug", string.format('Contact field "%s" does not exist.', slug),
        C.codes.choice)
    else
      if value ~= nil and value ~= null then
        if type(value) == "number" then value = tostring(value) end
        if type(value) ~= "string" then return nil, type_error("value", "string", value) end
        if slug == "country" and not value:match("^%u%u$") then
          vs[#vs + 1] = viol(path .. ".value", "This value is not a valid country.", C.codes.country)
        end
      end
      changes[slug] = (value == nil) and null or value
    end
  end
  return changes
end

local function apply_values(c, changes)
  for slug, v in pairs(changes) do
    if v == null then c.values[slug] = nil else c.values[slug] = v end
  end
end

-- ---------------------------------------------------------------- contacts

local function new_contact(email, now)
  return {
    email = email, registeredAt = C.iso(now), ts = math.floor(now), locale = "en", sourceURL = nil,
    unsubscribed = false, bounced = false, needsConfirmation = false, values = {}, tags = {},
  }
end

local function insert_contact(c)
  D.contacts:insert(c)
  D.email_index[c.email:lower()] = c.id
  return c
end

local function list_contacts(req)
  local q, preds = req.query, {}
  if q.email ~= nil and q.email ~= "" then
    local id = D.email_index[q.email:lower()]
    preds[#preds + 1] = function(c) return c.id == id end
  end
  if q.tags ~= nil and q.tags ~= "" then
    local want = {}
    for t in q.tags:gmatch("[^,%s]+") do
      local n = to_int(t)
      if n then want[n] = true end
    end
    preds[#preds + 1] = function(c)
      for _, tid in ipairs(c.tags) do if want[tid] then return true end end
      return false
    end
  end
  for _, flag in ipairs({ "bounced", "unsubscribed", "needsConfirmation" }) do
    local b = to_bool(q[flag])
    if b ~= nil then preds[#preds + 1] = function(c) return c[flag] == b end end
  end
  local before = C.parse_iso(q.registeredBefore)
  if before then preds[#preds + 1] = function(c) return c.ts < before end end
  local after = C.parse_iso(q.registeredAfter)
  if after then preds[#preds + 1] = function(c) return c.ts > after end end
  return collection(req, D.contacts, render_contact, and_preds(preds))
end

local function create_contact(req)
  local b, err = body_object(req)
  if not b then return err end
  local vs = {}
  local email, locale = b.email, b.locale
  if not isnil(email) and type(email) ~= "string" then return type_error("email", "string", email) end
  if not isnil(locale) and type(locale) ~= "string" then return type_error("locale", "string", locale) end
  if isnil(email) or email:match("^%s*$") then
    vs[#vs + 1] = blank("email")
  elseif not valid_email(email) then
    vs[#vs + 1] = viol("email", "This value is not a valid email address.", C.codes.email)
  elseif D.email_index[email:lower()] then
    vs[#vs + 1] = viol("email", "This value is already used.", C.codes.unique)
  end
  if not isnil(locale) and not LOCALES[locale] then
    vs[#vs + 1] = viol("locale", "The value you selected is not a valid choice.", C.codes.choice)
  end
  local changes, ferr = parse_contact_fields(b.fields, vs)
  if not changes then return ferr end
  if #vs > 0 then return C.violations(vs) end
  local c = new_contact(email, C.now())
  if not isnil(locale) then c.locale = locale end
  apply_values(c, changes)
  insert_contact(c)
  return C.json(201, render_contact(c))
end

local function get_contact(_, id)
  local c = D.contacts:get(id)
  if not c then return not_found() end
  return C.json(200, render_contact(c))
end

local function patch_contact(req, id)
  local c = D.contacts:get(id)
  if not c then return not_found() end
  local b, err = body_object(req, "merge")
  if not b then return err end
  local vs = {}
  local locale = b.locale
  if locale ~= nil and locale ~= null then
    if type(locale) ~= "string" then return type_error("locale", "string", locale) end
    if not LOCALES[locale] then
      vs[#vs + 1] = viol("locale", "The value you selected is not a valid choice.", C.codes.choice)
    end
  end
  local changes, ferr = parse_contact_fields(b.fields, vs)
  if not changes then return ferr end
  if #vs > 0 then return C.violations(vs) end
  if locale == null then c.locale = nil elseif locale ~= nil then c.locale = locale end
  apply_values(c, changes)
  return C.json(200, render_contact(c))
end

local function delete_contact(_, id)
  local c = D.contacts:remove(id)
  if not c then return not_found() end
  D.email_index[c.email:lower()] = nil
  return C.empty(204)
end

local function add_contact_tag(req, id)
  local c = D.contacts:get(id)
  if not c then return not_found() end
  local b, err = body_object(req, nil, true)
  if not b then return err end
  local tid = b.tagId
  if isnil(tid) then return C.violations({ blank("tagId") }) end
  if type(tid) == "string" and to_int(tid) then tid = to_int(tid) end
  if not is_int(tid) then return type_error("tagId", "int", tid) end
  local t = D.tags:get(tid)
  if not t then
    return C.violations({ viol("tagId", "Tag not found.", C.codes.choice) })
  end
  for _, existing in ipairs(c.tags) do
    if existing == tid then return C.empty(204) end
  end
  c.tags[#c.tags + 1] = tid
  return C.empty(204)
end

local function remove_contact_tag(_, id, tag_id)
  local c = D.contacts:get(id)
  if not c then return not_found() end
  local tid = tonumber(tag_id)
  if not D.tags:get(tid) then return not_found() end
  for i, existing in ipairs(c.tags) do
    if existing == tid then table.remove(c.tags, i); break end
  end
  return C.empty(204)
end

-- ---------------------------------------------------------------- tags

local function tag_name_violations(name, vs, except_id)
  if isnil(name) or name:match("^%s*$") then
    vs[#vs + 1] = blank("name")
  elseif #name > 64 then
    vs[#vs + 1] = viol("name", "This value is too long. It should have 64 characters or less.",
      C.codes.too_long)
  else
    for _, t in ipairs(D.tags:all()) do
      if t.name == name and t.id ~= except_id then
        vs[#vs + 1] = viol("name", "This value is already used.", C.codes.unique)
        break
      end
    end
  end
end

local function list_tags(req)
  local q = req.query.query
  local pred
  if q ~= nil and q ~= "" then pred = function(t) return contains_ci(t.name, q) end end
  return collection(req, D.tags, render_tag, pred)
end

local function create_tag(req)
  local b, err = body_object(req)
  if not b then return err end
  if not isnil(b.name) and type(b.name) ~= "string" then return type_error("name", "string", b.name) end
  local vs = {}
  tag_name_violations(b.name, vs)
  if #vs > 0 then return C.violations(vs) end
  local t = D.tags:insert({ name = b.name, createdAt = C.iso(C.now()) })
  return C.json(201, render_tag(t))
end

local function get_tag(_, id)
  local t = D.tags:get(id)
  if not t then return not_found() end
  return C.json(200, render_tag(t))
end

local function put_tag(req, id)
  local t = D.tags:get(id)
  if not t then return not_found() end
  local b, err = body_object(req)
  if not b then return err end
  if not isnil(b.name) and type(b.name) ~= "string" then return type_error("name", "string", b.name) end
  local vs = {}
  tag_name_violations(b.name, vs, t.id)
  if #vs > 0 then return C.violations(vs) end
  t.name = b.name
  return C.json(200, render_tag(t))
end

local function delete_tag(_, id)
  local t = D.tags:remove(id)
  if not t then return not_found() end
  for _, c in ipairs(D.contacts:all()) do
    for i, tid in ipairs(c.tags) do
      if tid == t.id then table.remove(c.tags, i); break end
    end
  end
  return C.empty(204)
end

-- ---------------------------------------------------------------- contact fields routes

local function list_fields()
  local items = arr()
  for _, slug in ipairs(D.fields.order) do items[#items + 1] = render_field(D.fields.by_slug[slug]) end
  return C.json(200, { items = items, hasMore = false })
end

local function field_name_violations(name, vs)
  if isnil(name) or name:match("^%s*$") then
    vs[#vs + 1] = blank("fieldName")
  elseif #name > 255 then
    vs[#vs + 1] = viol("fieldName", "This value is too long. It should have 255 characters or less.",
      C.codes.too_long)
  end
end

local function create_field(req)
  local b, err = body_object(req)
  if not b then return err end
  for _, k in ipairs({ "fieldName", "slug" }) do
    if not isnil(b[k]) and type(b[k]) ~= "string" then return type_error(k, "string", b[k]) end
  end
  local vs = {}
  field_name_violations(b.fieldName, vs)
  local slug = b.slug
  if isnil(slug) or slug == "" then
    vs[#vs + 1] = blank("slug")
  elseif not slug:match("^[%w_]+$") then
    vs[#vs + 1] = viol("slug", "This value is not valid.", C.codes.regex)
  elseif D.fields.by_slug[slug] then
    vs[#vs + 1] = viol("slug", "This value is already used.", C.codes.unique)
  end
  if #vs > 0 then return C.violations(vs) end
  return C.json(201, render_field(add_field(slug, b.fieldName)))
end

local function patch_field(req, slug)
  local f = D.fields.by_slug[slug]
  if not f then return not_found() end
  local b, err = body_object(req, "merge")
  if not b then return err end
  if b.fieldName ~= nil then
    if b.fieldName ~= null and type(b.fieldName) ~= "string" then
      return type_error("fieldName", "string", b.fieldName)
    end
    local vs = {}
    field_name_violations(b.fieldName, vs)
    if #vs > 0 then return C.violations(vs) end
    f.fieldName = b.fieldName
  end
  return C.json(200, render_field(f))
end

local function delete_field(_, slug)
  if not D.fields.by_slug[slug] then return not_found() end
  remove_field(slug)
  return C.empty(204)
end

-- ---------------------------------------------------------------- webhooks

local function webhook_subs(list, vs, old)
  if type(list) ~= "table" then return nil, type_error("subscriptions", "array", list) end
  local seen, out = {}, {}
  local prev = {}
  for _, s in ipairs(old or {}) do prev[s.event] = s end
  for i, ev in ipairs(list) do
    local path = string.format("subscriptions[%d]", i - 1)
    if type(ev) ~= "string" then return nil, type_error(path, "string", ev) end
    if not EVENTS[ev] then
      vs[#vs + 1] = viol(path, "The value you selected is not a valid choice.", C.codes.choice)
    elseif seen[ev] then
      vs[#vs + 1] = viol("subscriptions", "This collection should contain only unique elements.",
        C.codes.unique_items)
    else
      seen[ev] = true
      local s = prev[ev]
      if not s then
        D.webhook_sub_seq = D.webhook_sub_seq + 1
        s = { id = D.webhook_sub_seq, event = ev }
      end
      out[#out + 1] = s
    end
  end
  return out
end

local function list_webhooks()
  local items = arr()
  for _, w in ipairs(D.webhooks:all()) do items[#items + 1] = render_webhook(w) end
  return C.json(200, { items = items, hasMore = false })
end

local function create_webhook(req)
  local b, err = body_object(req)
  if not b then return err end
  for _, k in ipairs({ "name", "secret", "url" }) do
    if not isnil(b[k]) and type(b[k]) ~= "string" then return type_error(k, "string", b[k]) end
  end
  if not isnil(b.active) and type(b.active) ~= "boolean" then return type_error("active", "bool", b.active) end
  local vs = {}
  if isnil(b.name) or b.name == "" then vs[#vs + 1] = blank("name")
  elseif #b.name > 255 then
    vs[#vs + 1] = viol("name", "This value is too long. It should have 255 characters or less.",
      C.codes.too_long)
  end
  if isnil(b.secret) or b.secret == "" then vs[#vs + 1] = blank("secret") end
  if isnil(b.url) or b.url == "" then vs[#vs + 1] = blank("url")
  elseif not valid_url(b.url) then vs[#vs + 1] = viol("url", "This value is not a valid URL.", C.codes.url) end
  local subs = {}
  if isnil(b.subscriptions) then
    vs[#vs + 1] = viol("subscriptions", "This value should not be null.", C.codes.not_null)
  else
    local s, serr = webhook_subs(b.subscriptions, vs)
    if not s then return serr end
    subs = s
  end
  if #vs > 0 then return C.violations(vs) end
  local w = D.webhooks:insert({ name = b.name, secret = b.secret, url = b.url,
    active = (b.active == nil or b.active == null) and true or b.active, subscriptions = subs })
  return C.json(201, render_webhook(w))
end

local function get_webhook(_, id)
  local w = D.webhooks:get(id)
  if not w then return not_found() end
  return C.json(200, render_webhook(w))
end

local function patch_webhook(req, id)
  local w = D.webhooks:get(id)
  if not w then return not_found() end
  local b, err = body_object(req, "merge")
  if not b then return err end
  for _, k in ipairs({ "name", "secret" }) do
    if b[k] ~= nil and b[k] ~= null and type(b[k]) ~= "string" then return type_error(k, "string", b[k]) end
  end
  if b.active ~= nil and b.active ~= null and type(b.active) ~= "boolean" then
    return type_error("active", "bool", b.active)
  end
  local vs = {}
  -- The document's UpdateWebhookInput requires name and secret, even in a merge-patch.
  for _, k in ipairs({ "name", "secret" }) do
    if b[k] == nil then vs[#vs + 1] = viol(k, "This value should not be null.", C.codes.not_null) end
  end
  if b.name ~= nil then
    if b.name == null or b.name == "" then vs[#vs + 1] = blank("name")
    elseif #b.name > 255 then
      vs[#vs + 1] = viol("name", "This value is too long. It should have 255 characters or less.",
        C.codes.too_long)
    end
  end
  if b.secret ~= nil and (b.secret == null or b.secret == "") then vs[#vs + 1] = blank("secret") end
  local subs
  if b.subscriptions ~= nil then
    if b.subscriptions == null then
      subs = {}
    else
      local s, serr = webhook_subs(b.subscriptions, vs, w.subscriptions)
      if not s then return serr end
      subs = s
    end
  end
  if #vs > 0 then return C.violations(vs) end
  if b.name ~= nil then w.name = b.name end
  if b.secret ~= nil then w.secret = b.secret end
  if subs then w.subscriptions = subs end
  if b.active ~= nil then w.active = (b.active == true) end
  return C.json(200, render_webhook(w))
end

local function delete_webhook(_, id)
  if not D.webhooks:remove(id) then return not_found() end
  return C.empty(204)
end

-- ---------------------------------------------------------------- school

local function list_courses(req)
  local q, preds = req.query, {}
  local active = to_bool(q.active)
  if active ~= nil then preds[#preds + 1] = function(co) return co.active == active end end
  if q.query ~= nil and q.query ~= "" then
    preds[#preds + 1] = function(co) return contains_ci(co.name, q.query) end
  end
  return collection(req, D.courses, render_course, and_preds(preds))
end

local function create_enrollment(req, course_id)
  local co = D.courses:get(course_id)
  if not co then return not_found() end
  local b, err = body_object(req)
  if not b then return err end
  local vs = {}
  local cid = b.contactId
  if type(cid) == "string" and to_int(cid) then cid = to_int(cid) end
  if isnil(cid) then vs[#vs + 1] = blank("contactId")
  elseif not is_int(cid) then return type_error("contactId", "int", cid)
  elseif not D.contacts:get(cid) then vs[#vs + 1] = viol("contactId", "Contact not found.", C.codes.choice) end
  local at = b.accessType
  if isnil(at) then vs[#vs + 1] = blank("accessType")
  elseif type(at) ~= "string" then return type_error("accessType", "string", at)
  elseif not ACCESS_TYPES[at] then
    vs[#vs + 1] = viol("accessType", "The value you selected is not a valid choice.", C.codes.choice)
  end
  local modules = {}
  if at == "partial_access" then
    if isnil(b.modules) or type(b.modules) ~= "table" or #b.modules == 0 then
      vs[#vs + 1] = blank("modules")
    else
      local known = {}
      for _, m in ipairs(co.modules) do known[m.id] = true end
      for i, mid in ipairs(b.modules) do
        if not known[mid] then
          vs[#vs + 1] = viol(string.format("modules[%d]", i - 1), "Module not found.", C.codes.choice)
        end
        modules[#modules + 1] = mid
      end
    end
  end
  if #vs > 0 then return C.violations(vs) end
  local e = D.enrollments:insert({ contact = cid, course = co.id, accessType = at, active = true,
    modules = modules })
  return C.json(201, render_enrollment(e))
end

local function list_enrollments(req)
  local q, preds = req.query, {}
  local course, contact = to_int(q.course), to_int(q.contact)
  if course then preds[#preds + 1] = function(e) return e.course == course end end
  if contact then preds[#preds + 1] = function(e) return e.contact == contact end end
  return collection(req, D.enrollments, render_enrollment, and_preds(preds))
end

local function delete_enrollment(_, id)
  if not D.enrollments:remove(id) then return not_found() end
  return C.empty(204)
end

-- ---------------------------------------------------------------- community

local function list_communities(req)
  local q = req.query.query
  local pred
  if q ~= nil and q ~= "" then pred = function(cm) return contains_ci(cm.name, q) end end
  return collection(req, D.communities, render_community, pred)
end

local function create_membership(req, community_id)
  local cm = D.communities:get(community_id)
  if not cm then return not_found() end
  local b, err = body_object(req)
  if not b then return err end
  local cid = b.contactId
  if type(cid) == "string" and to_int(cid) then cid = to_int(cid) end
  if isnil(cid) then return C.violations({ blank("contactId") }) end
  if not is_int(cid) then return type_error("contactId", "int", cid) end
  if not D.contacts:get(cid) then
    return C.violations({ viol("contactId", "Contact not found.", C.codes.choice) })
  end
  -- The document's 202 carries content (application/json): the membership, new or not.
  for _, m in ipairs(D.memberships:all()) do
    if m.community == cm.id and m.contact == cid then return C.json(202, render_membership(m)) end
  end
  local m = D.memberships:insert({ community = cm.id, contact = cid, createdAt = C.iso(C.now()) })
  return C.json(202, render_membership(m))
end

local function list_memberships(req)
  local q, preds = req.query, {}
  local community, contact = to_int(q.community), to_int(q.contact)
  if community then preds[#preds + 1] = function(m) return m.community == community end end
  if contact then preds[#preds + 1] = function(m) return m.contact == contact end end
  return collection(req, D.memberships, render_membership, and_preds(preds))
end

local function delete_membership(_, id)
  if not D.memberships:remove(id) then return not_found() end
  return C.empty(204)
end

-- ---------------------------------------------------------------- payment

-- `contact` is required; without a readable one no subscription matches (the document
-- declares no error answer for this GET).
local function list_subscriptions(req)
  local contact = to_int(req.query.contact)
  return collection(req, D.subscriptions, render_subscription,
    function(s) return contact ~= nil and s.contact == contact end)
end

local function cancel_subscription(req, id)
  local s = D.subscriptions:get(id)
  if not s then return not_found() end
  local b, err = body_object(req)
  if not b then return err end
  local how = b.cancel
  if isnil(how) then return C.violations({ blank("cancel") }) end
  if how ~= "Now" and how ~= "WhenBillingPeriodEnds" then
    return C.violations({ viol("cancel", "The value you selected is not a valid choice.", C.codes.choice) })
  end
  if s.status ~= "active" and s.status ~= "in_charge" then
    return C.violations({ viol("cancel", "This subscription cannot be cancelled.", C.codes.choice) })
  end
  if how == "Now" then
    s.status = "cancelled"
    s.cancelledAt = C.iso(C.now())
  else
    s.cancelAtPeriodEnd = true
  end
  return C.empty(204)
end

-- ---------------------------------------------------------------- routing

local ROUTES = {
  { "^/api/contacts$", { GET = list_contacts, POST = create_contact } },
  { "^/api/contacts/(%d+)$", { GET = get_contact, PATCH = patch_contact, DELETE = delete_contact } },
  { "^/api/contacts/(%d+)/tags$", { POST = add_contact_tag } },
  { "^/api/contacts/(%d+)/tags/(%d+)$", { DELETE = remove_contact_tag } },
  { "^/api/tags$", { GET = list_tags, POST = create_tag } },
  { "^/api/tags/(%d+)$", { GET = get_tag, PUT = put_tag, DELETE = delete_tag } },
  { "^/api/contact_fields$", { GET = list_fields, POST = create_field } },
  { "^/api/contact_fields/([^/]+)$", { PATCH = patch_field, DELETE = delete_field } },
  { "^/api/webhooks$", { GET = list_webhooks, POST = create_webhook } },
  { "^/api/webhooks/(%d+)$", { GET = get_webhook, PATCH = patch_webhook, DELETE = delete_webhook } },
  { "^/api/school/courses$", { GET = list_courses } },
  { "^/api/school/courses/(%d+)/enrollments$", { POST = create_enrollment } },
  { "^/api/school/enrollments$", { GET = list_enrollments } },
  { "^/api/school/enrollments/(%d+)$", { DELETE = delete_enrollment } },
  { "^/api/community/communities$", { GET = list_communities } },
  { "^/api/community/communities/(%d+)/memberships$", { POST = create_membership } },
  { "^/api/community/memberships$", { GET = list_memberships } },
  { "^/api/community/memberships/(%d+)$", { DELETE = delete_membership } },
  { "^/api/payment/subscriptions$", { GET = list_subscriptions } },
  { "^/api/payment/subscriptions/(%d+)/cancel$", { POST = cancel_subscription } },
}
M.ROUTES = ROUTES

local function route(req)
  local path = req.path
  if #path > 1 and path:sub(-1) == "/" then path = path:sub(1, -2) end
  for _, r in ipairs(ROUTES) do
    local a, b = path:match(r[1])
    if a then
      local h = r[2][req.method]
      if not h then
        local allow = {}
        for m in pairs(r[2]) do allow[#allow + 1] = m end
        table.sort(allow)
        local resp = C.problem(405, string.format('No route found for "%s %s": Method Not Allowed (Allow: %s)',
          req.method, req.path, table.concat(allow, ", ")))
        resp.headers = { Allow = table.concat(allow, ", ") }
        return resp
      end
      if a == path then a = nil end   -- pattern without captures
      return h(req, a, b)
    end
  end
  return not_found()
end

function M.handle(c, req)
  C = c
  local key = req.header("x-api-key")
  if key == nil or key == "" then
    req.key_label = "none"
    return C.json(401, { detail = "Full authentication is required to access this resource." })
  end
  local k = D.keys[key]
  if not k then
    req.key_label = "invalid"
    return C.json(401, { detail = "Invalid API Key." })
  end
  req.key_label = k.label
  local acct = D.accounts[k.account]
  local q = C.quota("systeme:" .. k.account, acct.limit, acct.per)
  local headers = {
    ["X-RateLimit-Limit"] = tostring(q.limit),
    ["X-RateLimit-Remaining"] = tostring(q.remaining),
    ["X-RateLimit-Refill"] = tostring(D.refill_style == "delta" and q.reset_delta
      or D.refill_style == "epoch_ms" and q.reset_epoch_ms or q.reset_epoch),
  }
  local resp
  if q.exceeded then
    headers["Retry-After"] = tostring(q.retry_after)
    resp = C.problem(429, "Too Many Requests", { status = 429 })
  else
    resp = route(req)
  end
  resp.headers = resp.headers or {}
  for h, v in pairs(headers) do resp.headers[h] = v end
  return resp
end

-- ---------------------------------------------------------------- seeding

local function seed_base() return math.floor(C.now()) - 30 * 86400 end

local function field_list(v)
  -- {slug = value} map or [{slug=, value=}] list -> list of {slug, value}
  local out = {}
  if type(v) ~= "table" then return out end
  if #v > 0 then
    for _, f in ipairs(v) do out[#out + 1] = { slug = f.slug, value = f.value } end
  else
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do out[#out + 1] = { slug = k, value = v[k] } end
  end
  return out
end

local function tag_by_name(name)
  for _, t in ipairs(D.tags:all()) do if t.name == name then return t end end
  return D.tags:insert({ name = name, createdAt = C.iso(C.now()) })
end

local SEEDERS = {}

function SEEDERS.contacts(it)
  local id = it.id or D.contacts.next_id
  local email = it.email or string.format("user%d@example.com", id)
  if D.email_index[email:lower()] then error("email already used: " .. email, 0) end
  local ts = C.parse_iso(it.registeredAt) or (seed_base() + id)
  local c = new_contact(email, ts)
  c.id = it.id
  if it.registeredAt then c.registeredAt = it.registeredAt end
  if it.locale ~= nil then c.locale = (it.locale ~= null) and it.locale or nil end
  if not isnil(it.sourceURL) then c.sourceURL = it.sourceURL end
  for _, k in ipairs({ "unsubscribed", "bounced", "needsConfirmation" }) do
    if it[k] ~= nil then c[k] = it[k] == true end
  end
  for _, f in ipairs(field_list(it.fields)) do
    if not D.fields.by_slug[f.slug] then add_field(f.slug, f.slug) end
    if not isnil(f.value) then c.values[f.slug] = tostring(f.value) end
  end
  for _, t in ipairs(type(it.tags) == "table" and it.tags or {}) do
    local tag = (type(t) == "number") and D.tags:get(t) or tag_by_name(tostring(t))
    if not tag then error("unknown tag id " .. tostring(t), 0) end
    c.tags[#c.tags + 1] = tag.id
  end
  return insert_contact(c)
end

function SEEDERS.tags(it)
  local id = it.id or D.tags.next_id
  return D.tags:insert({ id = it.id, name = it.name or ("tag" .. id),
    createdAt = it.createdAt or C.iso(C.now()) })
end

function SEEDERS.contact_fields(it)
  local n = #D.fields.order + 1
  local slug = it.slug or ("field_" .. n)
  return add_field(slug, it.fieldName or ("Field " .. n))
end

function SEEDERS.webhooks(it)
  local id = it.id or D.webhooks.next_id
  local vs = {}
  local subs = webhook_subs(it.subscriptions or { "CONTACT_CREATED" }, vs)
  if #vs > 0 then error("invalid webhook subscriptions", 0) end
  return D.webhooks:insert({ id = it.id, name = it.name or ("Webhook " .. id),
    url = it.url or ("https://hooks.example.com/" .. id), secret = it.secret or ("secret-" .. id),
    active = it.active ~= false, subscriptions = subs })
end

function SEEDERS.courses(it)
  local id = it.id or D.courses.next_id
  local modules = {}
  if type(it.modules) == "table" then
    for i, m in ipairs(it.modules) do
      D.module_seq = math.max(D.module_seq, tonumber(m.id) or 0) + (m.id and 0 or 1)
      modules[i] = { id = m.id or D.module_seq, name = m.name or ("Module " .. i) }
    end
  else
    for i = 1, 2 do
      D.module_seq = D.module_seq + 1
      modules[i] = { id = D.module_seq, name = "Module " .. i }
    end
  end
  return D.courses:insert({ id = it.id, name = it.name or ("Course " .. id), locale = it.locale or "en",
    path = it.path or ("course-" .. id), domainName = it.domainName, active = it.active ~= false,
    modules = modules })
end

function SEEDERS.communities(it)
  local id = it.id or D.communities.next_id
  return D.communities:insert({ id = it.id, name = it.name or ("Community " .. id),
    domainName = it.domainName or "community.example.com", path = it.path or ("community-" .. id) })
end

function SEEDERS.enrollments(it)
  return D.enrollments:insert({ id = it.id, contact = tonumber(it.contact) or 1,
    course = tonumber(it.course) or 1, accessType = it.accessType or "full_access",
    active = it.active ~= false, modules = it.modules or {} })
end

function SEEDERS.memberships(it)
  return D.memberships:insert({ id = it.id, contact = tonumber(it.contact) or 1,
    community = tonumber(it.community) or 1, createdAt = C.iso(C.now()) })
end

function SEEDERS.subscriptions(it)
  local id = it.id or D.subscriptions.next_id
  local plan = it.pricePlan
  if plan == nil then
    plan = { id = id, name = "Monthly plan", innerName = "monthly", statementDescriptor = "MONTHLY",
      amount = 1900, currency = "eur", type = "recurring",
      recurringOptions = { id = id, trialPeriod = 0, trialInterval = "day", interval = "month",
        intervalCount = 1, limitOfPayments = null } }
  end
  return D.subscriptions:insert({ id = it.id, contact = tonumber(it.contact) or 1,
    status = it.status or "active", createdAt = it.createdAt or C.iso(C.now()),
    completedAt = it.completedAt, cancelledAt = it.cancelledAt, pricePlan = plan })
end

local STORE_OF = {
  contacts = "contacts", tags = "tags", webhooks = "webhooks", courses = "courses",
  communities = "communities", enrollments = "enrollments", memberships = "memberships",
  subscriptions = "subscriptions",
}

local function total_of(resource)
  if resource == "contact_fields" then return #D.fields.order end
  return D[STORE_OF[resource]]:count()
end

function M.seed(c, resource, spec)
  C = c
  local seeder = SEEDERS[resource]
  if not seeder then error("unknown resource " .. tostring(resource), 0) end
  local first, last, ids = nil, nil, {}
  local items = C.seed_items(spec)
  for _, item in ipairs(items) do
    local rec = seeder(item)
    local id = rec.id or rec.slug
    first = first or id
    last = id
    if #ids < 1000 then ids[#ids + 1] = id end
  end
  return { resource = resource, created = #items, first_id = first or null, last_id = last or null,
    total = total_of(resource), ids = C.array(ids) }
end

function M.data(c, resource)
  C = c
  local out = {}
  if resource == "contact_fields" then
    for _, slug in ipairs(D.fields.order) do out[#out + 1] = render_field(D.fields.by_slug[slug]) end
    return out
  end
  local renderers = {
    contacts = render_contact, tags = render_tag,
    webhooks = function(w) return render_webhook(w, true) end,
    courses = render_course, communities = render_community,
    enrollments = render_enrollment, memberships = render_membership,
    subscriptions = function(s) return render_subscription(s, true) end,
  }
  local render = renderers[resource]
  if not render then error("unknown resource " .. tostring(resource), 0) end
  for _, r in ipairs(D[STORE_OF[resource]]:all()) do out[#out + 1] = render(r) end
  return out
end

-- ---------------------------------------------------------------- reset

function M.reset(c, config)
  C = c
  null = c.null
  D = c.state.data
  D.accounts, D.keys = {}, {}
  local accounts = config.accounts
  if type(accounts) ~= "table" or next(accounts) == nil then
    accounts = { default = { keys = { "test-key" }, limit = 100000, per = 60 } }
  end
  for name, a in pairs(accounts) do
    local keys = a.keys
    if type(keys) ~= "table" then keys = { a.key } end
    D.accounts[name] = { limit = tonumber(a.limit) or 100000, per = tonumber(a.per) or 60 }
    for i, k in ipairs(keys) do
      D.keys[k] = { account = name, label = name .. ":" .. i }
    end
  end
  D.refill_style = (config.refill_style == "delta" or config.refill_style == "epoch_ms")
    and config.refill_style or "epoch"
  for _, s in pairs(STORE_OF) do D[s] = C.new_store() end
  D.fields = { order = {}, by_slug = {} }
  D.email_index = {}
  D.webhook_sub_seq = 0
  D.module_seq = 0
  local fields = type(config.contact_fields) == "table" and config.contact_fields or DEFAULT_FIELDS
  for _, f in ipairs(fields) do add_field(f.slug, f.fieldName or f.slug) end
  if type(config.seed) == "table" then
    local order = { "contact_fields", "tags", "contacts", "courses", "communities", "webhooks",
      "enrollments", "memberships", "subscriptions" }
    for _, r in ipairs(order) do
      local v = config.seed[r]
      if type(v) == "number" then M.seed(c, r, { count = v })
      elseif type(v) == "table" then M.seed(c, r, { items = v }) end
    end
  end
end

return M
