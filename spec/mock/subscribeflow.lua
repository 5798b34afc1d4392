-- SubscribeFlow API mock (the seed's v1 contract). Runs inside nginx; see common.lua for the
-- mock interface.
--
-- Wire format:
--   Auth       Authorization: Bearer <key or token>; 401 {"error":{"code":"unauthorized",...}}
--   Envelope   {"data":{...}} | {"data":[...],"meta":{total,page,per_page,total_pages}}
--   Errors     {"error":{"code","message","details"?:[{"field","message"}]}}
--   Quota      fixed window per account; X-RateLimit-Limit/-Remaining/-Reset (epoch s) on every
--              authenticated answer; 429 rate_limited + Retry-After
--   Idempotency  Idempotency-Key on any POST, per account; replay -> same status/body plus
--              Idempotent-Replayed: true; other body/path -> 409 conflict; a request still in
--              progress -> 409 conflict ("... in progress"). Only 2xx results are stored, and
--              they are stored inside the handler, i.e. before any delay_after sleep.
--   Preferences  /v1/preferences/{token}: no auth, no quota.
--
-- Config (JSON from the harness):
--   accounts = { NAME = { keys = {...}, tokens = {...}, limit = 100, per = 60, scope = "write"|"read" } }
--   processing_delay = s   a POST carrying an Idempotency-Key stays "in progress" this long
--                          before its side effect (makes the in-progress 409 observable)
--   seed = { tags = n|{...}, subscribers = n|{...}, webhooks = n|{...}, preferences = n|{...} }
--
-- Extra admin route: GET /__admin/sf_stats -> { idempotent_replays, creates = {subscribers,
--   tags, webhooks}, rate_limited, requests, by_status, preference_requests = [{method, path,
--   authorization}] }. Log entries of preference requests (GET /__admin/stats .log) carry
--   `authorization` (bool) besides common's `api_key_present`. With a common.lua that supports
--   M.counters, /__admin/stats also reports idempotent_replays and creates_<resource>.
local M = {}

M.prefix = "/v1"
M.credential_headers = { "authorization" }
-- reported at the top level of /__admin/stats by a common.lua that supports M.counters
M.counters = { "idempotent_replays", "creates_subscribers", "creates_tags", "creates_webhooks" }

local C       -- common module
local D       -- data of the current state (replaced on reset)
local null

local DEFAULT_KEY = "sf_live_test"
local DEFAULT_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.sig"

local STATUSES = { active = true, unsubscribed = true, bounced = true, pending = true }
local STATUS_LIST = "active, unsubscribed, bounced, pending"
local WRITE_METHODS = { POST = true, PATCH = true, PUT = true, DELETE = true }
local PREF_LOG_MAX = 200

-- ---------------------------------------------------------------- helpers

local function isnil(v) return v == nil or v == null end

local function arr(t) return C.array(t or {}) end

local function copy(t)
  local o = {}
  if t then for k, v in pairs(t) do o[k] = v end end
  return o
end

local function err(status, code, message, details, headers)
  local e = { code = code, message = message }
  if details and #details > 0 then
    local ds = {}
    for i, d in ipairs(details) do ds[i] = { field = d.field, message = d.message } end
    e.details = arr(ds)
  end
  return C.json(status, { error = e }, headers)
end

local function detail(field, message, summary)
  return { field = field, message = message, summary = summary }
end

local function validation(details, message)
  return err(400, "validation_error", message or details[1].summary or "Validation failed", details)
end

local function not_found(what)
  return err(404, "not_found", (what or "Resource") .. " not found")
end

local function conflict(message, details)
  return err(409, "conflict", message, details)
end

local function unauthorized()
  return err(401, "unauthorized", "Missing or invalid authentication")
end

local function ok(status, data, headers)
  return C.json(status or 200, { data = data }, headers)
end

local function valid_email(s)
  return type(s) == "string" and #s <= 254 and s:match("^[^%s@]+@[^%s@]+%.[^%s@%.]+$") ~= nil
end

local function valid_url(s)
  return type(s) == "string" and s:match("^https?://[^%s/]+[^%s]*$") ~= nil
end

local function blank(v) return type(v) == "string" and v:match("^%s*$") ~= nil end

-- a decoded JSON object (cjson cannot tell {} from []; an empty table counts as an object)
local function is_object(v) return type(v) == "table" and (next(v) == nil or #v == 0) end

local function is_list(v)
  if type(v) ~= "table" then return false end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  return n == #v
end

local function slugify(name)
  local s = name:lower():gsub("[^%w]+", "-"):gsub("^%-+", ""):gsub("%-+$", "")
  return s
end

-- ---------------------------------------------------------------- time and ids

-- Times are integer microseconds; created_at/updated_at are ISO 8601 with 6 fraction digits.
local function iso_us(us)
  local s = math.floor(us / 1e6)
  return os.date("!%Y-%m-%dT%H:%M:%S", s) .. string.format(".%06dZ", us - s * 1e6)
end

local function now_us() return math.floor(C.now() * 1e6) end

-- strictly increasing timestamps for everything the mock creates or updates itself
local function next_us(candidate)
  candidate = math.floor(candidate or now_us())
  if candidate <= D.last_us then candidate = D.last_us + 1 end
  D.last_us = candidate
  return candidate
end

local function parse_us(s)
  local t = C.parse_iso(s)
  if not t then return nil end
  return math.floor(t * 1e6 + 0.5)
end

local function new_id(kind, taken)
  repeat
    D.uuid_seq = D.uuid_seq + 1
    local h = ngx.md5("subscribeflow:" .. kind .. ":" .. D.uuid_seq)
    local id = h:sub(1, 8) .. "-" .. h:sub(9, 12) .. "-4" .. h:sub(14, 16) .. "-8" .. h:sub(18, 20)
      .. "-" .. h:sub(21, 32)
    if not taken[id] then return id end
  until false
end

-- ---------------------------------------------------------------- collections

local function new_coll() return { list = {}, by_id = {} } end

local function coll_add(coll, rec)
  coll.list[#coll.list + 1] = rec
  coll.by_id[rec.id] = rec
  return rec
end

local function coll_remove(coll, id)
  local rec = coll.by_id[id]
  if not rec then return nil end
  coll.by_id[id] = nil
  for i, r in ipairs(coll.list) do
    if r == rec then table.remove(coll.list, i); break end
  end
  return rec
end

--- Decode the request body as a JSON object. Returns table or nil, error response.
local function body_object(req)
  local b = req.body or ""
  if b:match("^%s*$") then
    return nil, validation({ detail("body", "Request body must be a JSON object", "Request body is required") })
  end
  local v = C.decode(b)
  if type(v) ~= "table" or not b:match("^%s*{") then
    return nil, validation({ detail("body", "Request body must be a JSON object", "Malformed JSON body") })
  end
  return v
end

local function page_params(req, details)
  local q = req.query
  local page, per = 1, 20
  if q.page ~= nil then
    local n = type(q.page) == "string" and q.page:match("^%d+$") and tonumber(q.page)
    if not n or n < 1 then
      details[#details + 1] = detail("page", "Must be an integer >= 1", "Invalid page")
    else
      page = n
    end
  end
  if q.per_page ~= nil then
    local n = type(q.per_page) == "string" and q.per_page:match("^%d+$") and tonumber(q.per_page)
    if not n or n < 1 or n > 100 then
      details[#details + 1] = detail("per_page", "Must be an integer between 1 and 100", "Invalid per_page")
    else
      per = n
    end
  end
  return page, per
end

-- "-created_at,email" -> { {get=, desc=true}, {get=, desc=false} }
local function parse_sort(raw, getters, details)
  if raw == nil then return { { get = getters.created_at, desc = false } } end
  local keys, allowed = {}, {}
  for f in pairs(getters) do allowed[#allowed + 1] = f end
  table.sort(allowed)
  for part in (raw .. ","):gmatch("([^,]*),") do
    part = part:match("^%s*(.-)%s*$")
    local desc = false
    if part:sub(1, 1) == "-" then
      desc, part = true, part:sub(2)
    elseif part:sub(1, 1) == "+" then
      part = part:sub(2)
    end
    local get = getters[part]
    if not get then
      details[#details + 1] = detail("sort", string.format("Unknown sort field '%s' (allowed: %s)",
        part, table.concat(allowed, ", ")), "Invalid sort")
      return nil
    end
    keys[#keys + 1] = { get = get, desc = desc }
  end
  return keys
end

local function sort_records(list, keys)
  table.sort(list, function(a, b)
    for _, k in ipairs(keys) do
      local va, vb = k.get(a), k.get(b)
      if va ~= vb then
        if k.desc then return va > vb end
        return va < vb
      end
    end
    return a.id < b.id
  end)
end

local function paged(list, page, per, render)
  local total = #list
  local out = arr()
  local first = (page - 1) * per + 1
  for i = first, math.min(total, first + per - 1) do out[#out + 1] = render(list[i]) end
  return C.json(200, { data = out, meta = { total = total, page = page, per_page = per,
    total_pages = math.ceil(total / per) } })
end

-- own counters (for /__admin/sf_stats), mirrored into common's counters when it has them
local function count(name)
  if C.count then C.count(name) end
end

local function bump_create(resource)
  local c = C.state.stats.creates
  c[resource] = (c[resource] or 0) + 1
  count("creates_" .. resource)
end

-- ---------------------------------------------------------------- rendering

local function render_tag(t)
  return {
    id = t.id, name = t.name, slug = t.slug,
    category = isnil(t.category) and null or t.category,
    description = isnil(t.description) and null or t.description,
    created_at = iso_us(t.created_us),
  }
end

local function render_sub(s)
  local tags = arr()
  for i, slug in ipairs(s.tags) do tags[i] = slug end
  return {
    id = s.id, email = s.email, status = s.status, tags = tags,
    metadata = C.object(copy(s.metadata)),
    created_at = iso_us(s.created_us), updated_at = iso_us(s.updated_us),
  }
end

local function render_webhook(w)
  local events = arr()
  for i, e in ipairs(w.events) do events[i] = e end
  return { id = w.id, url = w.url, events = events, secret = w.secret, created_at = iso_us(w.created_us) }
end

local function sub_tag_objects(s)
  local out = arr()
  for _, slug in ipairs(s.tags) do
    local t = D.tag_by_slug[slug]
    if t then out[#out + 1] = render_tag(t) end
  end
  return out
end

-- ---------------------------------------------------------------- validation pieces

-- list of existing tag slugs (deduplicated); unknown ones become details
local function tag_slugs(v, field, details)
  if isnil(v) then return {} end
  if not is_list(v) then
    details[#details + 1] = detail(field, "Must be an array of tag slugs", "Invalid " .. field)
    return nil
  end
  local out, seen, bad = {}, {}, false
  for _, slug in ipairs(v) do
    if type(slug) ~= "string" then
      details[#details + 1] = detail(field, "Must be an array of tag slugs", "Invalid " .. field)
      return nil
    elseif not D.tag_by_slug[slug] then
      details[#details + 1] = detail(field, string.format("Unknown tag '%s'", slug), "Unknown tag")
      bad = true
    elseif not seen[slug] then
      seen[slug] = true
      out[#out + 1] = slug
    end
  end
  if bad then return nil end
  return out
end

local function string_list(v, field, details, required)
  if isnil(v) then
    if required then details[#details + 1] = detail(field, "Is required", field .. " is required") end
    return nil
  end
  if not is_list(v) or (required and #v == 0) then
    details[#details + 1] = detail(field, "Must be a non-empty array of strings", "Invalid " .. field)
    return nil
  end
  local out = {}
  for i, s in ipairs(v) do
    if type(s) ~= "string" or blank(s) then
      details[#details + 1] = detail(field, "Must be a non-empty array of strings", "Invalid " .. field)
      return nil
    end
    out[i] = s
  end
  return out
end

local function metadata_object(v, details)
  if isnil(v) then return {} end
  if not is_object(v) then
    details[#details + 1] = detail("metadata", "Must be an object", "Invalid metadata")
    return nil
  end
  local out = {}
  for k, x in pairs(v) do if x ~= null then out[k] = x end end
  return out
end

local function optional_string(v, field, details)
  if v ~= nil and v ~= null and type(v) ~= "string" then
    details[#details + 1] = detail(field, "Must be a string or null", "Invalid " .. field)
    return false
  end
  return true
end

-- ---------------------------------------------------------------- subscribers

local function insert_sub(s)
  coll_add(D.subs, s)
  D.email_index[s.email:lower()] = s.id
  return s
end

local function has_slug(s, slug)
  for _, t in ipairs(s.tags) do if t == slug then return true end end
  return false
end

local function add_slug(s, slug)
  if not has_slug(s, slug) then s.tags[#s.tags + 1] = slug; return true end
  return false
end

local function remove_slug(s, slug)
  for i, t in ipairs(s.tags) do
    if t == slug then table.remove(s.tags, i); return true end
  end
  return false
end

local SUB_SORT = {
  created_at = function(s) return s.created_us end,
  updated_at = function(s) return s.updated_us end,
  email = function(s) return s.email:lower() end,
  status = function(s) return s.status end,
}

local function list_subscribers(req)
  local q, details = req.query, {}
  local page, per = page_params(req, details)
  local keys = parse_sort(q.sort, SUB_SORT, details)
  local status, tag, email = q.status, q.tag, q.email
  if status ~= nil and not STATUSES[status] then
    details[#details + 1] = detail("status", "Must be one of " .. STATUS_LIST, "Invalid status")
  end
  if #details > 0 then return validation(details) end
  if tag == "" then tag = nil end
  if email == "" then email = nil end
  local matched = {}
  for _, s in ipairs(D.subs.list) do
    if (not status or s.status == status) and (not tag or has_slug(s, tag))
      and (not email or s.email:lower() == email:lower()) then
      matched[#matched + 1] = s
    end
  end
  sort_records(matched, keys)
  return paged(matched, page, per, render_sub)
end

local function create_subscriber(req)
  local b, e = body_object(req)
  if not b then return e end
  local details = {}
  local email = b.email
  if isnil(email) or blank(email) then
    details[#details + 1] = detail("email", "Is required", "Email is required")
  elseif not valid_email(email) then
    details[#details + 1] = detail("email", "Must be a valid email address", "Invalid email format")
  end
  local status = b.status
  if isnil(status) then
    status = "active"
  elseif not STATUSES[status] then
    details[#details + 1] = detail("status", "Must be one of " .. STATUS_LIST, "Invalid status")
  end
  local tags = tag_slugs(b.tags, "tags", details)
  local metadata = metadata_object(b.metadata, details)
  if #details > 0 then return validation(details) end
  if D.email_index[email:lower()] then
    return conflict("Subscriber with this email already exists",
      { detail("email", "Already exists") })
  end
  local us = next_us()
  local s = insert_sub({ id = new_id("subscriber", D.subs.by_id), email = email, status = status,
    tags = tags, metadata = metadata, created_us = us, updated_us = us })
  bump_create("subscribers")
  return ok(201, render_sub(s), { Location = M.prefix .. "/subscribers/" .. s.id })
end

local function get_subscriber(_, id)
  local s = D.subs.by_id[id]
  if not s then return not_found("Subscriber") end
  return ok(200, render_sub(s))
end

local function patch_subscriber(req, id)
  local s = D.subs.by_id[id]
  if not s then return not_found("Subscriber") end
  local b, e = body_object(req)
  if not b then return e end
  local details = {}
  local email, status, metadata = b.email, b.status, b.metadata
  if email ~= nil then
    if email == null or blank(email) then
      details[#details + 1] = detail("email", "Must not be empty", "Email is required")
    elseif not valid_email(email) then
      details[#details + 1] = detail("email", "Must be a valid email address", "Invalid email format")
    end
  end
  if status ~= nil and not STATUSES[status] then
    details[#details + 1] = detail("status", "Must be one of " .. STATUS_LIST, "Invalid status")
  end
  if metadata ~= nil and metadata ~= null and not is_object(metadata) then
    details[#details + 1] = detail("metadata", "Must be an object or null", "Invalid metadata")
  end
  if #details > 0 then return validation(details) end
  if email ~= nil then
    local holder = D.email_index[email:lower()]
    if holder and holder ~= s.id then
      return conflict("Subscriber with this email already exists", { detail("email", "Already exists") })
    end
    D.email_index[s.email:lower()] = nil
    s.email = email
    D.email_index[email:lower()] = s.id
  end
  if status ~= nil then s.status = status end
  if metadata == null then
    s.metadata = {}
  elseif metadata ~= nil then
    for k, v in pairs(metadata) do
      if v == null then s.metadata[k] = nil else s.metadata[k] = v end
    end
  end
  s.updated_us = next_us()
  return ok(200, render_sub(s))
end

local function delete_subscriber(_, id)
  local s = coll_remove(D.subs, id)
  if not s then return not_found("Subscriber") end
  D.email_index[s.email:lower()] = nil
  return C.empty(204)
end

local function get_subscriber_tags(_, id)
  local s = D.subs.by_id[id]
  if not s then return not_found("Subscriber") end
  return ok(200, sub_tag_objects(s))
end

local function patch_subscriber_tags(req, id)
  local s = D.subs.by_id[id]
  if not s then return not_found("Subscriber") end
  local b, e = body_object(req)
  if not b then return e end
  local details = {}
  local add = tag_slugs(b.add, "add", details)
  local remove = string_list(b.remove, "remove", details)
  if #details > 0 then return validation(details) end
  local changed = false
  for _, slug in ipairs(add or {}) do changed = add_slug(s, slug) or changed end
  for _, slug in ipairs(remove or {}) do changed = remove_slug(s, slug) or changed end
  if changed then s.updated_us = next_us() end
  return ok(200, sub_tag_objects(s))
end

-- ---------------------------------------------------------------- tags

local TAG_SORT = {
  created_at = function(t) return t.created_us end,
  name = function(t) return t.name:lower() end,
}

local function insert_tag(t)
  coll_add(D.tags, t)
  D.tag_by_slug[t.slug] = t
  return t
end

local function tag_name_taken(name, slug, except)
  for _, t in ipairs(D.tags.list) do
    if t ~= except and (t.slug == slug or t.name:lower() == name:lower()) then return true end
  end
  return false
end

local function list_tags(req)
  local q, details = req.query, {}
  local page, per = page_params(req, details)
  local keys = parse_sort(q.sort, TAG_SORT, details)
  if #details > 0 then return validation(details) end
  local category = q.category
  if category == "" then category = nil end
  local matched = {}
  for _, t in ipairs(D.tags.list) do
    if not category or t.category == category then matched[#matched + 1] = t end
  end
  sort_records(matched, keys)
  return paged(matched, page, per, render_tag)
end

local function create_tag(req)
  local b, e = body_object(req)
  if not b then return e end
  local details = {}
  local name = b.name
  local slug
  if isnil(name) or blank(name) then
    details[#details + 1] = detail("name", "Is required", "Name is required")
  elseif type(name) ~= "string" then
    details[#details + 1] = detail("name", "Must be a string", "Invalid name")
  else
    slug = slugify(name)
    if slug == "" then
      details[#details + 1] = detail("name", "Must contain at least one letter or digit", "Invalid name")
    end
  end
  optional_string(b.category, "category", details)
  optional_string(b.description, "description", details)
  if #details > 0 then return validation(details) end
  if tag_name_taken(name, slug) then
    return conflict("Tag with this name already exists", { detail("name", "Already exists") })
  end
  local t = insert_tag({ id = new_id("tag", D.tags.by_id), name = name, slug = slug,
    category = b.category, description = b.description, created_us = next_us() })
  bump_create("tags")
  return ok(201, render_tag(t), { Location = M.prefix .. "/tags/" .. t.id })
end

local function get_tag(_, id)
  local t = D.tags.by_id[id]
  if not t then return not_found("Tag") end
  return ok(200, render_tag(t))
end

local function patch_tag(req, id)
  local t = D.tags.by_id[id]
  if not t then return not_found("Tag") end
  local b, e = body_object(req)
  if not b then return e end
  local details = {}
  local name, slug = b.name, nil
  if name ~= nil then
    if name == null or blank(name) then
      details[#details + 1] = detail("name", "Must not be empty", "Name is required")
    elseif type(name) ~= "string" then
      details[#details + 1] = detail("name", "Must be a string", "Invalid name")
    else
      slug = slugify(name)
      if slug == "" then
        details[#details + 1] = detail("name", "Must contain at least one letter or digit", "Invalid name")
      end
    end
  end
  optional_string(b.category, "category", details)
  optional_string(b.description, "description", details)
  if #details > 0 then return validation(details) end
  if name ~= nil then
    if tag_name_taken(name, slug, t) then
      return conflict("Tag with this name already exists", { detail("name", "Already exists") })
    end
    if slug ~= t.slug then
      for _, s in ipairs(D.subs.list) do
        for i, x in ipairs(s.tags) do if x == t.slug then s.tags[i] = slug end end
      end
      D.tag_by_slug[t.slug] = nil
      D.tag_by_slug[slug] = t
      t.slug = slug
    end
    t.name = name
  end
  if b.category ~= nil then t.category = (b.category ~= null) and b.category or nil end
  if b.description ~= nil then t.description = (b.description ~= null) and b.description or nil end
  return ok(200, render_tag(t))
end

local function delete_tag(_, id)
  local t = coll_remove(D.tags, id)
  if not t then return not_found("Tag") end
  D.tag_by_slug[t.slug] = nil
  for _, s in ipairs(D.subs.list) do remove_slug(s, t.slug) end
  return C.empty(204)
end

-- ---------------------------------------------------------------- webhooks

local function list_webhooks()
  local out = arr()
  for i, w in ipairs(D.webhooks.list) do out[i] = render_webhook(w) end
  return ok(200, out)
end

local function insert_webhook(url, events, secret, created_us)
  local id = new_id("webhook", D.webhooks.by_id)
  return coll_add(D.webhooks, { id = id, url = url, events = events,
    secret = secret or ("whsec_" .. ngx.md5("secret:" .. id)), created_us = created_us or next_us() })
end

local function create_webhook(req)
  local b, e = body_object(req)
  if not b then return e end
  local details = {}
  if isnil(b.url) or blank(b.url) then
    details[#details + 1] = detail("url", "Is required", "URL is required")
  elseif not valid_url(b.url) then
    details[#details + 1] = detail("url", "Must be an http(s) URL", "Invalid url")
  end
  local events = string_list(b.events, "events", details, true)
  if not isnil(b.secret) and (type(b.secret) ~= "string" or blank(b.secret)) then
    details[#details + 1] = detail("secret", "Must be a non-empty string", "Invalid secret")
  end
  if #details > 0 then return validation(details) end
  local w = insert_webhook(b.url, events, not isnil(b.secret) and b.secret or nil)
  bump_create("webhooks")
  return ok(201, render_webhook(w), { Location = M.prefix .. "/webhooks/" .. w.id })
end

local function delete_webhook(_, id)
  if not coll_remove(D.webhooks, id) then return not_found("Webhook") end
  return C.empty(204)
end

-- ---------------------------------------------------------------- preferences

local function render_prefs(s)
  local tags = arr()
  for _, t in ipairs(D.tags.list) do
    tags[#tags + 1] = { slug = t.slug, name = t.name, subscribed = has_slug(s, t.slug) }
  end
  return { email = s.email, tags = tags, status = s.status }
end

local function patch_prefs(req, s)
  local b, e = body_object(req)
  if not b then return e end
  local details = {}
  local tags, status = b.tags, b.status
  if tags ~= nil then
    if not is_object(tags) then
      details[#details + 1] = detail("tags", "Must be an object of slug -> boolean", "Invalid tags")
    else
      for slug, v in pairs(tags) do
        if not D.tag_by_slug[slug] then
          details[#details + 1] = detail("tags." .. slug, "Unknown tag", "Unknown tag")
        elseif type(v) ~= "boolean" then
          details[#details + 1] = detail("tags." .. slug, "Must be true or false", "Invalid tags")
        end
      end
    end
  end
  if status ~= nil and status ~= "unsubscribed" and status ~= "active" then
    details[#details + 1] = detail("status", "Must be 'unsubscribed' or 'active'", "Invalid status")
  end
  if #details > 0 then return validation(details) end
  if tags ~= nil then
    local slugs = {}
    for slug in pairs(tags) do slugs[#slugs + 1] = slug end
    table.sort(slugs)
    for _, slug in ipairs(slugs) do
      if tags[slug] then add_slug(s, slug) else remove_slug(s, slug) end
    end
  end
  if status ~= nil then s.status = status end
  s.updated_us = next_us()
  return ok(200, render_prefs(s))
end

local function preferences(req, token)
  local has_auth = req.header("authorization") ~= nil
  req.key_label = "preferences"
  req.log_fields = { authorization = has_auth }              -- common.lua with log_fields
  if req._entry then req._entry.authorization = has_auth end  -- older common.lua
  local log = C.state.stats.preference_requests
  log[#log + 1] = { method = req.method, path = req.path, authorization = has_auth }
  if #log > PREF_LOG_MAX then table.remove(log, 1) end

  local sid = D.prefs[token]
  local s = sid and D.subs.by_id[sid]
  if req.method == "GET" then
    if not s then return not_found("Preference token") end
    return ok(200, render_prefs(s))
  elseif req.method == "PATCH" then
    if not s then return not_found("Preference token") end
    return patch_prefs(req, s)
  end
  return err(405, "method_not_allowed", "Method not allowed", nil, { Allow = "GET, PATCH" })
end

-- ---------------------------------------------------------------- routing

local ROUTES = {
  { "^/v1/subscribers$", { GET = list_subscribers, POST = create_subscriber } },
  { "^/v1/subscribers/([^/]+)$", { GET = get_subscriber, PATCH = patch_subscriber,
    DELETE = delete_subscriber } },
  { "^/v1/subscribers/([^/]+)/tags$", { GET = get_subscriber_tags, PATCH = patch_subscriber_tags } },
  { "^/v1/tags$", { GET = list_tags, POST = create_tag } },
  { "^/v1/tags/([^/]+)$", { GET = get_tag, PATCH = patch_tag, DELETE = delete_tag } },
  { "^/v1/webhooks$", { GET = list_webhooks, POST = create_webhook } },
  { "^/v1/webhooks/([^/]+)$", { DELETE = delete_webhook } },
}
M.ROUTES = ROUTES

local function dispatch(req, path)
  for _, r in ipairs(ROUTES) do
    local a = path:match(r[1])
    if a then
      local h = r[2][req.method]
      if not h then
        local allow = {}
        for m in pairs(r[2]) do allow[#allow + 1] = m end
        table.sort(allow)
        return err(405, "method_not_allowed", "Method not allowed", nil,
          { Allow = table.concat(allow, ", ") })
      end
      if a == path then a = nil end   -- pattern without captures
      return h(req, a)
    end
  end
  return not_found("Route")
end

-- turn a json response into its final raw body so a replay is byte-identical
local function freeze(resp)
  if resp.json ~= nil then
    resp.body = C.encode(resp.json)
    resp.json = nil
    resp.content_type = resp.content_type or "application/json"
  end
  return resp
end

local function safe_dispatch(req, path)
  local okd, resp = pcall(dispatch, req, path)
  if okd then return resp end
  ngx.log(ngx.ERR, "subscribeflow mock handler error: ", resp)
  return err(500, "internal_error", "Internal server error")
end

local function with_idempotency(req, account, path)
  local key = req.header("idempotency-key")
  if key == nil or key == "" then return safe_dispatch(req, path) end
  if #key > 255 then
    return validation({ detail("Idempotency-Key", "Must be at most 255 characters",
      "Invalid Idempotency-Key") })
  end
  local store = D.idem[account]
  if not store then store = {}; D.idem[account] = store end
  local hash = ngx.md5(req.method .. "\n" .. req.path .. "\n" .. (req.body or ""))
  local rec = store[key]
  if rec then
    if rec.hash ~= hash then
      return conflict("Idempotency-Key was used with a different request")
    end
    if rec.state == "in_progress" then
      return conflict("A request with this Idempotency-Key is still in progress")
    end
    rec.replays = rec.replays + 1
    local st = C.state.stats
    st.idempotent_replays = st.idempotent_replays + 1
    count("idempotent_replays")
    local headers = copy(rec.headers)
    headers["Idempotent-Replayed"] = "true"
    return { status = rec.status, body = rec.body, content_type = rec.content_type, headers = headers }
  end
  rec = { hash = hash, state = "in_progress", key = key, account = account, replays = 0,
    method = req.method, path = req.path }
  store[key] = rec
  local data = D
  if D.processing_delay > 0 then
    -- keep running when the client gives up, like a real server would
    pcall(ngx.on_abort, function() end)
    ngx.sleep(D.processing_delay)
    if D ~= data then   -- reset meanwhile: the request belongs to a state that is gone
      return err(500, "internal_error", "Internal server error")
    end
  end
  -- the side effect and the commit of the record happen in one go, before any delay_after sleep
  local resp = freeze(safe_dispatch(req, path))
  if resp.status >= 200 and resp.status < 300 then
    rec.state = "done"
    rec.status = resp.status
    rec.body = resp.body
    rec.content_type = resp.content_type
    rec.headers = copy(resp.headers)
  else
    store[key] = nil   -- nothing happened; the key may be used again
  end
  return resp
end

local function bearer(v)
  if type(v) == "table" then v = v[1] end
  if type(v) ~= "string" then return nil end
  local scheme, cred = v:match("^%s*(%S+)%s+(%S+)%s*$")
  if not scheme or scheme:lower() ~= "bearer" then return nil end
  return cred
end

function M.handle(c, req)
  C = c
  local path = req.path
  if #path > 1 and path:sub(-1) == "/" then path = path:sub(1, -2) end

  local token = path:match("^/v1/preferences/([^/]+)$")
  if token then return preferences(req, token) end

  local raw = req.header("authorization")
  local cred = bearer(raw)
  if not cred then
    req.key_label = (raw == nil or raw == "") and "none" or "invalid"
    return unauthorized()
  end
  local k = D.creds[cred]
  if not k then
    req.key_label = "invalid"
    return unauthorized()
  end
  req.key_label = k.label
  local acct = D.accounts[k.account]
  local q = C.quota("subscribeflow:" .. k.account, acct.limit, acct.per)
  local headers = {
    ["X-RateLimit-Limit"] = tostring(q.limit),
    ["X-RateLimit-Remaining"] = tostring(q.remaining),
    ["X-RateLimit-Reset"] = tostring(q.reset_epoch),
  }
  local resp
  if q.exceeded then
    headers["Retry-After"] = tostring(q.retry_after)
    resp = err(429, "rate_limited",
      string.format("Rate limit exceeded, retry in %d seconds", q.retry_after))
  elseif WRITE_METHODS[req.method] and acct.scope ~= "write" then
    resp = err(403, "forbidden", "This credential does not have write access")
  elseif req.method == "POST" then
    resp = with_idempotency(req, k.account, path)
  else
    resp = safe_dispatch(req, path)
  end
  resp.headers = resp.headers or {}
  for h, v in pairs(headers) do resp.headers[h] = v end
  return resp
end

-- ---------------------------------------------------------------- admin

function M.admin(c, req)
  C = c
  if req.path == "/__admin/sf_stats" and req.method == "GET" then
    local st = C.state.stats
    return C.json(200, {
      idempotent_replays = st.idempotent_replays,
      creates = C.object(copy(st.creates)),
      rate_limited = st.rate_limited,
      requests = st.requests,
      by_status = C.object(copy(st.by_status)),
      preference_requests = arr(copy(st.preference_requests)),
    })
  end
  return nil
end

-- ---------------------------------------------------------------- seeding

local SEEDERS = {}

local function seed_status(v)
  if isnil(v) then return "active" end
  if not STATUSES[v] then error("invalid status " .. tostring(v), 0) end
  return v
end

function SEEDERS.tags(it)
  D.tag_seq = D.tag_seq + 1
  local name = it.name or ("Tag " .. D.tag_seq)
  local slug = slugify(name)
  if slug == "" then error("tag name needs a letter or digit: " .. name, 0) end
  if tag_name_taken(name, slug) then error("tag already exists: " .. name, 0) end
  local id = it.id or new_id("tag", D.tags.by_id)
  if D.tags.by_id[id] then error("tag id already exists: " .. id, 0) end
  local category = it.category
  if category == nil then category = "general" end
  return insert_tag({ id = id, name = name, slug = slug,
    category = category ~= null and category or nil,
    description = not isnil(it.description) and it.description or nil,
    created_us = parse_us(it.created_at) or next_us(D.seed_base_us + D.tag_seq * 1000003) })
end

local function tag_for_seed(slug)
  local t = D.tag_by_slug[slug]
  if t then return t end
  return SEEDERS.tags({ name = slug })
end

function SEEDERS.subscribers(it)
  local email = it.email
  if email == nil then
    repeat
      D.sub_seq = D.sub_seq + 1
      email = string.format("sub%d@example.com", D.sub_seq)
    until not D.email_index[email]
  else
    D.sub_seq = D.sub_seq + 1
  end
  if type(email) ~= "string" then error("email must be a string", 0) end
  if D.email_index[email:lower()] then error("email already used: " .. email, 0) end
  local id = it.id or new_id("subscriber", D.subs.by_id)
  if D.subs.by_id[id] then error("subscriber id already exists: " .. id, 0) end
  local tags = {}
  for _, slug in ipairs(type(it.tags) == "table" and it.tags or {}) do
    local t = tag_for_seed(tostring(slug))
    local seen = false
    for _, x in ipairs(tags) do if x == t.slug then seen = true end end
    if not seen then tags[#tags + 1] = t.slug end
  end
  local metadata = {}
  if type(it.metadata) == "table" then
    for k, v in pairs(it.metadata) do if v ~= null then metadata[k] = v end end
  end
  local created = parse_us(it.created_at) or next_us(D.seed_base_us + D.sub_seq * 1000003)
  return insert_sub({ id = id, email = email, status = seed_status(it.status), tags = tags,
    metadata = metadata, created_us = created, updated_us = parse_us(it.updated_at) or created })
end

function SEEDERS.webhooks(it)
  D.webhook_seq = D.webhook_seq + 1
  local n = D.webhook_seq
  local events = type(it.events) == "table" and it.events or { "subscriber.created" }
  return insert_webhook(it.url or ("https://hooks.example.com/" .. n), events, it.secret,
    parse_us(it.created_at))
end

function SEEDERS.preferences(it)
  D.pref_seq = D.pref_seq + 1
  local token = it.token or string.format("pref-token-%d", D.pref_seq)
  if type(token) ~= "string" or token == "" or token:find("/", 1, true) then
    error("bad token " .. tostring(token), 0)
  end
  if D.prefs[token] then error("token already exists: " .. token, 0) end
  local sid = it.subscriber_id
  if sid == nil then
    sid = SEEDERS.subscribers({ email = it.email, status = it.status, tags = it.tags }).id
  elseif not D.subs.by_id[sid] then
    error("unknown subscriber_id " .. tostring(sid), 0)
  end
  D.prefs[token] = sid
  D.pref_order[#D.pref_order + 1] = token
  return { id = token, token = token, subscriber_id = sid }
end

local TOTALS = {
  subscribers = function() return #D.subs.list end,
  tags = function() return #D.tags.list end,
  webhooks = function() return #D.webhooks.list end,
  preferences = function() return #D.pref_order end,
}

function M.seed(c, resource, spec)
  C = c
  local seeder = SEEDERS[resource]
  if not seeder then error("unknown resource " .. tostring(resource), 0) end
  local first, last, ids = nil, nil, {}
  local items = C.seed_items(spec)
  for _, item in ipairs(items) do
    local rec = seeder(item)
    first = first or rec.id
    last = rec.id
    if #ids < 1000 then ids[#ids + 1] = rec.id end
  end
  return { resource = resource, created = #items, first_id = first or null, last_id = last or null,
    total = TOTALS[resource](), ids = arr(ids) }
end

function M.data(c, resource)
  C = c
  local out = {}
  if resource == "subscribers" then
    for i, s in ipairs(D.subs.list) do out[i] = render_sub(s) end
  elseif resource == "tags" then
    for i, t in ipairs(D.tags.list) do out[i] = render_tag(t) end
  elseif resource == "webhooks" then
    for i, w in ipairs(D.webhooks.list) do out[i] = render_webhook(w) end
  elseif resource == "preferences" then
    for i, token in ipairs(D.pref_order) do
      out[i] = { token = token, subscriber_id = D.prefs[token] or null }
    end
  elseif resource == "idempotency" then
    local accounts = {}
    for a in pairs(D.idem) do accounts[#accounts + 1] = a end
    table.sort(accounts)
    for _, a in ipairs(accounts) do
      for key, r in pairs(D.idem[a]) do
        out[#out + 1] = { account = a, key = key, state = r.state, status = r.status or null,
          method = r.method, path = r.path, replays = r.replays }
      end
    end
  else
    error("unknown resource " .. tostring(resource), 0)
  end
  return out
end

-- ---------------------------------------------------------------- reset

local function str_list(v)
  if type(v) == "string" then return { v } end
  if type(v) == "table" then return v end
  return {}
end

function M.reset(c, config)
  C = c
  null = c.null
  D = c.state.data
  local st = c.state.stats
  st.idempotent_replays = 0
  st.creates = { subscribers = 0, tags = 0, webhooks = 0 }
  st.preference_requests = {}

  D.accounts, D.creds = {}, {}
  local accounts = config.accounts
  if type(accounts) ~= "table" or next(accounts) == nil then
    accounts = { default = { keys = { DEFAULT_KEY }, tokens = { DEFAULT_TOKEN }, limit = 100000, per = 60 } }
  end
  for name, a in pairs(accounts) do
    local scope = a.scope or "write"
    if scope ~= "read" and scope ~= "write" then error("scope must be read or write", 0) end
    D.accounts[name] = { limit = tonumber(a.limit) or 100000, per = tonumber(a.per) or 60, scope = scope }
    local keys = str_list(a.keys or a.key)
    for i, k in ipairs(keys) do D.creds[k] = { account = name, label = name .. ":key" .. i } end
    local tokens = str_list(a.tokens or a.token)
    for i, t in ipairs(tokens) do D.creds[t] = { account = name, label = name .. ":token" .. i } end
  end
  D.processing_delay = tonumber(config.processing_delay) or 0

  D.subs, D.tags, D.webhooks = new_coll(), new_coll(), new_coll()
  D.email_index, D.tag_by_slug = {}, {}
  D.prefs, D.pref_order = {}, {}
  D.idem = {}
  D.uuid_seq, D.sub_seq, D.tag_seq, D.webhook_seq, D.pref_seq = 0, 0, 0, 0, 0
  D.last_us = 0
  D.seed_base_us = (math.floor(C.now()) - 30 * 86400) * 1e6

  if type(config.seed) == "table" then
    for _, r in ipairs({ "tags", "subscribers", "webhooks", "preferences" }) do
      local v = config.seed[r]
      if type(v) == "number" then M.seed(c, r, { count = v })
      elseif type(v) == "table" then M.seed(c, r, { items = v }) end
    end
  end
end

return M
