-- Creamailer API mock: v1 (/v1/api, ".json" routes, SHA-1 signatures) and v2 (/v2/api,
-- Laravel-style, HMAC-SHA256 signatures) over one shared data store.
-- Runs inside nginx; see common.lua for the mock interface.
--
-- Config (JSON from the harness):
--   accounts = { NAME = { token = "tok", secret = "sec", limit = 100, per = 3600,
--                         access = "write" | "read" } }
--              (default: default = { token = "test-token", secret = "test-secret",
--               limit = 100000, per = 3600 }); each entry is one key. v1 and v2 count their
--               quotas apart (v2: 100 an hour per key). A "read" key may only GET: any
--               other method is refused with 403, as the v2 API does.
--   skew = 300                       -- seconds X-Request-Timestamp may differ from now
--   seed = { lists = n | {...}, subscribers = {...}, suppressions = n | {...}, messages = {...} }
--
-- Signatures (hex, lowercase), URL = "http://" .. Host .. request_uri (path + raw query):
--   v1: sha1(URL .. body .. timestamp .. secret)
--   v2: HMAC-SHA256(key = secret, URL .. body .. timestamp)
--
-- Seeding: lists {name, language, auto_suppress, fields = { {name, type} }}; messages
-- (v2 subscribers/activity) {email, campaign_name, subject, sender_name, sender_email,
-- sent_date, opens, clicks = { {url, count} }, bounced, unsubscribed}; subscribers {list_id (default: the first
-- list, created if none), email (default sub<i>@example.com, i counting the list's
-- subscribers), name, ..., status, created, updated}; suppressions {email (default
-- suppressed<i>@example.com), reason, created}.
-- Stats: common's, plus signature_failures and autoresponders_sent (deletes asking for
-- them); every stats.log entry has api ("v1"/"v2"),
-- auth ("ok"/"invalid_token"/"invalid_signature"/"expired") and signature_valid.
-- Extra admin route: GET /__admin/creamailer -> { hmac_impl, skew, accounts }.
local M = {}

M.prefix = "/v1/api"
M.credential_headers = { "x-access-token" }
M.counters = { "signature_failures", "autoresponders_sent" }

local V1, V2 = "/v1/api", "/v2/api"

local C       -- common module
local D       -- data of the current state (replaced on reset)
local null

-- v2 documents at most 1,000 rows a page; v1 serves the 50,000 the official v1 SDK asks
-- for by default.
local MAX_PAGESIZE = { [1] = 50000, [2] = 1000 }
local DEFAULT_PAGESIZE = 100
local MAX_IMPORT = 500

local STATUSES = { active = true, unsubscribed = true, bounced = true, spamreport = true, deleted = true }
local REASONS = { unsubscribed = true, bounced = true, spamreport = true, deleted = true }
local STRING_FIELDS = { "name", "company", "address", "city", "zip_code", "country", "phone",
  "customer_number" }

-- ---------------------------------------------------------------- helpers

local function isnil(v) return v == nil or v == null end

local function is_int(v) return type(v) == "number" and v == math.floor(v) end

local function to_int(s)
  if type(s) == "number" then return is_int(s) and s or nil end
  if type(s) ~= "string" or not s:match("^%-?%d+$") then return nil end
  return tonumber(s)
end

local function utf8_len(s)
  local _, n = s:gsub("[^\128-\191]", "")
  return n
end

local function valid_email(s)
  return type(s) == "string" and #s <= 255 and s:match("^[^%s@]+@[^%s@]+%.[^%s@%.]+$") ~= nil
end

local function lc(s) return s:lower() end

local function is_list(t)
  if type(t) ~= "table" then return false end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end

local function is_object(t)
  if type(t) ~= "table" then return false end
  return #t == 0
end

-- errors: { field = {msg, ...} } in insertion order irrelevant
local function add_err(errs, field, msg)
  errs[field] = errs[field] or C.array()
  local list = errs[field]
  list[#list + 1] = msg
end

local function has_errs(errs) return next(errs) ~= nil end

local function first_err(errs)
  local keys = {}
  for k in pairs(errs) do keys[#keys + 1] = k end
  table.sort(keys)
  return errs[keys[1]][1]
end

-- ---------------------------------------------------------------- version flavours

local API = {}

API[1] = {
  name = "v1",
  ok = function(status, message, extra)
    local b = { success = true, message = message }
    if extra then for k, v in pairs(extra) do b[k] = v end end
    return C.json(status, b)
  end,
  fail = function(status, message) return C.json(status, { success = false, message = message }) end,
  invalid = function(errs)
    return C.json(400, { success = false, message = "Validation failed", errors = C.object(errs) })
  end,
  not_found = function() return C.json(404, { success = false, message = "Not found" }) end,
  unauthorized = function(reason)
    local msg = ({ invalid_token = "Invalid access token", expired = "Request timestamp expired" })[reason]
    return C.json(401, { success = false, message = msg or "Invalid signature" })
  end,
  rate_limited = function(q)
    return C.json(400, { success = false, message = "Rate limit exceeded" },
      { ["Retry-After"] = tostring(q.retry_after) })
  end,
  bad_content_type = function()
    return C.json(400, { success = false, message = "Content-Type must be application/json" })
  end,
  bad_json = function() return C.json(400, { success = false, message = "Malformed JSON body" }) end,
  method_not_allowed = function(allow)
    return C.json(405, { success = false, message = "Method not allowed" }, { Allow = allow })
  end,
  forbidden = function()
    return C.json(403, { success = false, message = "This API key may only read" })
  end,
}

API[2] = {
  name = "v2",
  invalid = function(errs)
    return C.json(422, { message = "The given data was invalid.", errors = C.object(errs) })
  end,
  not_found = function() return C.json(404, { message = "Not found." }) end,
  unauthorized = function() return C.json(401, { message = "Unauthenticated." }) end,
  rate_limited = function(q)
    return C.json(429, { message = "Too Many Attempts." }, { ["Retry-After"] = tostring(q.retry_after) })
  end,
  bad_content_type = function()
    return C.json(422, { message = "The given data was invalid.",
      errors = { body = C.array({ "The request body must be JSON (Content-Type: application/json)." }) } })
  end,
  bad_json = function()
    return C.json(422, { message = "The given data was invalid.",
      errors = { body = C.array({ "The request body must be a JSON object." }) } })
  end,
  method_not_allowed = function(allow, req)
    return C.json(405, { message = string.format("The %s method is not supported for this route. "
      .. "Supported methods: %s.", req.method, allow) }, { Allow = allow })
  end,
  forbidden = function() return C.json(403, { message = "This action is unauthorized." }) end,
}

--- The JSON object in the request body ({} when there is none), or nil, error response.
local function body_object(req, api)
  if req.body:match("^%s*$") then return {} end
  if C.media_type(req.content_type) ~= "application/json" then return nil, api.bad_content_type() end
  local v = C.decode(req.body)
  if type(v) ~= "table" or not req.body:match("^%s*{") then return nil, api.bad_json() end
  return v
end

-- ---------------------------------------------------------------- rendering

local function active_count(list)
  local n = 0
  for _, s in ipairs(D.list_subs[list.id]:all()) do
    if s.status == "active" then n = n + 1 end
  end
  return n
end

local function render_list(l)
  return { id = l.id, name = l.name, language = l.language, auto_suppress = l.auto_suppress,
    subscribers = active_count(l) }
end

local function render_sub(s, admin)
  local out = { email = s.email }
  for _, f in ipairs(STRING_FIELDS) do out[f] = isnil(s[f]) and null or s[f] end
  local cf = C.object()
  for k, v in pairs(s.custom_fields) do cf[k] = v end
  out.custom_fields = cf
  out.status = s.status
  out.created = C.iso(s.created_ts)
  out.updated = C.iso(s.updated_ts)
  if admin then out.id = s.id; out.list_id = s.list_id end
  return out
end

local function render_supp(p)
  return { email = p.email, reason = p.reason, created = C.iso(p.created_ts) }
end

-- ---------------------------------------------------------------- pagination

local function page_params(req, base, errs, max)
  local q = req.query
  local page, size = base, DEFAULT_PAGESIZE
  if q.page ~= nil and q.page ~= "" then
    local n = to_int(q.page)
    if not n or n < base then
      add_err(errs, "page", string.format("The page must be an integer of at least %d.", base))
    else
      page = n
    end
  end
  if q.pagesize ~= nil and q.pagesize ~= "" then
    local n = to_int(q.pagesize)
    if not n or n < 1 then
      add_err(errs, "pagesize", "The pagesize must be an integer of at least 1.")
    elseif n > max then
      add_err(errs, "pagesize", string.format("The pagesize may not be greater than %d.", max))
    else
      size = n
    end
  end
  return page, size
end

-- recs of a Store page; page is 0-based for v1, 1-based for v2
local function paged(api_v, req, store, render, pred, errs)
  local api = API[api_v]
  local base = (api_v == 1) and 0 or 1
  local page, size = page_params(req, base, errs, MAX_PAGESIZE[api_v])
  if has_errs(errs) then return api.invalid(errs) end
  local recs, total = store:page(page - base + 1, size, pred)
  local items = C.array()
  for i, r in ipairs(recs) do items[i] = render(r) end
  if api_v == 1 then return C.json(200, items) end
  return C.json(200, { data = items, meta = { current_page = page,
    last_page = math.max(1, math.ceil(total / size)), per_page = size, total = total } })
end

-- ---------------------------------------------------------------- lists

local function validate_list(b, partial, errs)
  local out = {}
  local name = b.name
  if isnil(name) then
    if not partial then add_err(errs, "name", "The name field is required.") end
  elseif type(name) ~= "string" then
    add_err(errs, "name", "The name must be a string.")
  elseif utf8_len(name) < 2 or utf8_len(name) > 50 then
    add_err(errs, "name", "The name must be between 2 and 50 characters.")
  else
    out.name = name
  end
  local lang = b.language
  if isnil(lang) then
    if not partial then add_err(errs, "language", "The language field is required.") end
  elseif type(lang) ~= "string" or not lang:match("^%l%l$") then
    add_err(errs, "language", "The language must be a 2-letter language code.")
  else
    out.language = lang
  end
  local as = b.auto_suppress
  if as ~= nil and as ~= null then
    if type(as) ~= "boolean" then
      add_err(errs, "auto_suppress", "The auto_suppress field must be true or false.")
    else
      out.auto_suppress = as
    end
  elseif not partial then
    out.auto_suppress = false
  end
  return out
end

local function insert_list(fields, id)
  local l = D.lists:insert({ id = id, name = fields.name, language = fields.language,
    auto_suppress = fields.auto_suppress == true, created_ts = math.floor(C.now()) })
  D.list_subs[l.id] = C.new_store()
  D.sub_index[l.id] = {}
  return l
end

local function delete_list(l)
  for _, s in ipairs(D.list_subs[l.id]:all()) do D.subs:remove(s.id) end
  D.list_subs[l.id], D.sub_index[l.id] = nil, nil
  D.lists:remove(l.id)
end

local function lists_index(api_v, req)
  if api_v == 1 then
    local out = C.array()
    for i, l in ipairs(D.lists:all()) do out[i] = render_list(l) end
    return C.json(200, out)
  end
  return paged(2, req, D.lists, render_list, nil, {})
end

local function lists_create(api_v, req)
  local api = API[api_v]
  local b, err = body_object(req, api)
  if not b then return err end
  local errs = {}
  local fields = validate_list(b, false, errs)
  if has_errs(errs) then return api.invalid(errs) end
  local l = insert_list(fields)
  -- The same integer id that show gives.
  if api_v == 1 then return api.ok(201, "List added", { id = l.id }) end
  return C.json(201, { data = render_list(l) })
end

local function lists_show(api_v, _, id)
  local l = D.lists:get(id)
  if not l then return API[api_v].not_found() end
  if api_v == 1 then return C.json(200, render_list(l)) end
  return C.json(200, { data = render_list(l) })
end

local function lists_update(api_v, req, id)
  local api = API[api_v]
  local l = D.lists:get(id)
  if not l then return api.not_found() end
  local b, err = body_object(req, api)
  if not b then return err end
  local errs = {}
  local fields = validate_list(b, true, errs)
  if has_errs(errs) then return api.invalid(errs) end
  for k, v in pairs(fields) do l[k] = v end
  if api_v == 1 then return api.ok(200, "List updated") end
  return C.json(200, { data = render_list(l) })
end

local function lists_delete(api_v, _, id)
  local api = API[api_v]
  local l = D.lists:get(id)
  if not l then return api.not_found() end
  delete_list(l)
  if api_v == 1 then return api.ok(200, "List deleted") end
  return C.empty(204)
end

-- ---------------------------------------------------------------- subscribers

local function find_sub(list_id, email)
  if type(email) ~= "string" then return nil end
  local id = D.sub_index[list_id][lc(email)]
  return id and D.subs:get(id) or nil
end

--- Validate the non-email subscriber fields of b into changes (null = clear).
local function validate_sub_fields(b, errs)
  local ch = {}
  for _, f in ipairs(STRING_FIELDS) do
    local v = b[f]
    if v == null then
      ch[f] = null
    elseif v ~= nil then
      if type(v) == "number" then v = is_int(v) and string.format("%d", v) or tostring(v) end
      if type(v) ~= "string" then
        add_err(errs, f, string.format("The %s must be a string.", f))
      elseif utf8_len(v) > 255 then
        add_err(errs, f, string.format("The %s may not be greater than 255 characters.", f))
      else
        ch[f] = v
      end
    end
  end
  local cf = b.custom_fields
  if cf == null then
    ch.custom_fields = {}
    ch.replace_custom = true
  elseif cf ~= nil then
    if not is_object(cf) then
      add_err(errs, "custom_fields", "The custom_fields must be an object.")
    else
      for k, v in pairs(cf) do
        local t = type(v)
        if not (t == "string" or t == "number" or t == "boolean" or v == null) then
          add_err(errs, "custom_fields", string.format("The custom field %s must be a scalar.", tostring(k)))
        end
      end
      ch.custom_fields = cf
    end
  end
  local st = b.status
  if st ~= nil and st ~= null then
    if not STATUSES[st] then
      add_err(errs, "status", "The selected status is invalid.")
    else
      ch.status = st
    end
  end
  return ch
end

local function apply_sub(s, ch)
  for _, f in ipairs(STRING_FIELDS) do
    if ch[f] == null then s[f] = nil elseif ch[f] ~= nil then s[f] = ch[f] end
  end
  if ch.replace_custom then s.custom_fields = {} end
  if ch.custom_fields then
    for k, v in pairs(ch.custom_fields) do
      if v == null then s.custom_fields[k] = nil else s.custom_fields[k] = v end
    end
  end
  if ch.status then s.status = ch.status end
end

local function insert_sub(list_id, email, ch, ts)
  ts = ts or math.floor(C.now())
  local s = { list_id = list_id, email = email, status = "active", custom_fields = {},
    created_ts = ts, updated_ts = ts }
  apply_sub(s, ch)
  D.subs:insert(s)
  D.list_subs[list_id]:insert(s)
  D.sub_index[list_id][lc(email)] = s.id
  return s
end

local function touch(s) s.updated_ts = math.floor(C.now()) end

local function email_errs(email, errs)
  if isnil(email) or (type(email) == "string" and email:match("^%s*$")) then
    add_err(errs, "email", "The email field is required.")
  elseif not valid_email(email) then
    add_err(errs, "email", "The email must be a valid email address.")
  else
    return true
  end
  return false
end

local function list_or_404(api_v, list_id)
  local l = D.lists:get(list_id)
  if not l then return nil, API[api_v].not_found() end
  return l
end

local function subs_index(api_v, req, list_id)
  local l, nf = list_or_404(api_v, list_id)
  if not l then return nf end
  local q, errs = req.query, {}
  local status = "active"
  if q.status ~= nil and q.status ~= "" then
    if q.status == "all" or STATUSES[q.status] then
      status = q.status
    else
      add_err(errs, "status", "The selected status is invalid.")
    end
  end
  local since
  if q.date ~= nil and q.date ~= "" then
    local m, d = q.date:match("^%d%d%d%d%-(%d%d)%-(%d%d)$")
    if m and tonumber(m) >= 1 and tonumber(m) <= 12 and tonumber(d) >= 1 and tonumber(d) <= 31 then
      since = C.parse_iso(q.date)
    else
      add_err(errs, "date", "The date does not match the format Y-m-d.")
    end
  end
  local function pred(s)
    if status ~= "all" and s.status ~= status then return false end
    if since and s.created_ts < since and s.updated_ts < since then return false end
    return true
  end
  return paged(api_v, req, D.list_subs[l.id], render_sub, pred, errs)
end

local function subs_create(api_v, req, list_id)
  local api = API[api_v]
  local l, nf = list_or_404(api_v, list_id)
  if not l then return nf end
  local b, err = body_object(req, api)
  if not b then return err end
  local errs = {}
  if email_errs(b.email, errs) and find_sub(l.id, b.email) then
    add_err(errs, "email", api_v == 1 and "Subscriber already exists in this list."
      or "The email has already been taken.")
  end
  local ch = validate_sub_fields(b, errs)
  if has_errs(errs) then return api.invalid(errs) end
  local s = insert_sub(l.id, b.email, ch)
  if api_v == 1 then return api.ok(201, "Subscriber added") end
  return C.json(201, { data = render_sub(s) })
end

local function email_param(api_v, req)
  local email = req.query.email
  if email == nil or email == "" then
    local errs = {}
    add_err(errs, "email", "The email field is required.")
    return nil, API[api_v].invalid(errs)
  end
  return email
end

local function subs_show(api_v, req, list_id)
  local l, nf = list_or_404(api_v, list_id)
  if not l then return nf end
  local email, err = email_param(api_v, req)
  if not email then return err end
  local s = find_sub(l.id, email)
  if not s then return API[api_v].not_found() end
  if api_v == 1 then return C.json(200, render_sub(s)) end
  return C.json(200, { data = render_sub(s) })
end

local function subs_update(api_v, req, list_id)
  local api = API[api_v]
  local l, nf = list_or_404(api_v, list_id)
  if not l then return nf end
  local b, err = body_object(req, api)
  if not b then return err end
  local errs = {}
  if not email_errs(b.email, errs) then return api.invalid(errs) end
  local s = find_sub(l.id, b.email)
  if not s then return api.not_found() end
  local new_email = b.new_email
  if not isnil(new_email) then
    if not valid_email(new_email) then
      add_err(errs, "new_email", "The new email must be a valid email address.")
    else
      local other = find_sub(l.id, new_email)
      if other and other ~= s then
        add_err(errs, "new_email", api_v == 1 and "Email address is already used in this list."
          or "The new email has already been taken.")
      end
    end
  end
  local ch = validate_sub_fields(b, errs)
  if has_errs(errs) then return api.invalid(errs) end
  apply_sub(s, ch)
  if not isnil(new_email) and new_email ~= s.email then
    D.sub_index[l.id][lc(s.email)] = nil
    s.email = new_email
    D.sub_index[l.id][lc(new_email)] = s.id
  end
  touch(s)
  if api_v == 1 then return api.ok(200, "Subscriber updated") end
  return C.json(200, { data = render_sub(s) })
end

local function subs_delete(api_v, req, list_id)
  local l, nf = list_or_404(api_v, list_id)
  if not l then return nf end
  local email, err = email_param(api_v, req)
  if not email then return err end
  local s = find_sub(l.id, email)
  if not s then return API[api_v].not_found() end
  local send = req.query.send_autoresponders
  if send ~= nil and send ~= "0" and send ~= "1" then
    local errs = {}
    add_err(errs, "send_autoresponders", "The send_autoresponders field must be 0 or 1.")
    return API[api_v].invalid(errs)
  end
  if send == "1" then C.count("autoresponders_sent") end
  s.status = "deleted"
  touch(s)
  if api_v == 1 then return API[1].ok(200, "Subscriber deleted") end
  return C.empty(204)
end

-- Import entries into list l; flag(entry) -> update_existing for that entry.
local function import_entries(l, entries, flag)
  local added, updated, failed = 0, 0, C.array()
  for _, e in ipairs(entries) do
    local email = type(e) == "table" and e.email or nil
    local reason
    if type(e) ~= "table" or not is_object(e) then
      reason = "Invalid entry"
    elseif not valid_email(email) then
      reason = "Invalid email address"
    else
      local errs = {}
      local ch = validate_sub_fields(e, errs)
      if has_errs(errs) then
        reason = first_err(errs)
      else
        local s = find_sub(l.id, email)
        if s then
          if flag(e) then
            apply_sub(s, ch)
            touch(s)
            updated = updated + 1
          else
            reason = "Subscriber already exists"
          end
        else
          insert_sub(l.id, email, ch)
          added = added + 1
        end
      end
    end
    if reason then
      failed[#failed + 1] = { email = type(email) == "string" and email or null, reason = reason }
    end
  end
  return added, updated, failed
end

local function subs_import(api_v, req, list_id)
  local api = API[api_v]
  local l, nf = list_or_404(api_v, list_id)
  if not l then return nf end
  local b, err = body_object(req, api)
  if not b then return err end
  local key = (api_v == 1) and "Subscribers" or "subscribers"
  local entries = b[key]
  local errs = {}
  if isnil(entries) then
    add_err(errs, key, string.format("The %s field is required.", key))
  elseif not is_list(entries) then
    add_err(errs, key, string.format("The %s must be an array.", key))
  end
  -- Both versions read update_existing on each entry (as the official SDKs send it); a
  -- key beside the list is unknown and ignored, as the API ignores unknown keys.
  if has_errs(errs) then return api.invalid(errs) end
  if #entries > MAX_IMPORT then
    if api_v == 1 then
      return api.fail(400, "Too many subscribers: at most 500 per import")
    end
    add_err(errs, "subscribers", "The subscribers may not have more than 500 items.")
    return api.invalid(errs)
  end
  local added, updated, failed = import_entries(l, entries, function(e) return e.update_existing == true end)
  if api_v == 1 then
    return C.json(200, { success = true, added = added, updated = updated, failed = failed })
  end
  return C.json(200, { data = { added = added, updated = updated, failed = failed } })
end

-- ---------------------------------------------------------------- suppressions

local function insert_supp(email, reason, ts)
  local p = D.supps:insert({ email = email, reason = reason, created_ts = ts or math.floor(C.now()) })
  D.supp_index[lc(email)] = p.id
  return p
end

local function supps_index(api_v, req)
  return paged(api_v, req, D.supps, render_supp, nil, {})
end

local function supps_create(api_v, req)
  local api = API[api_v]
  local b, err = body_object(req, api)
  if not b then return err end
  local errs = {}
  if email_errs(b.email, errs) and D.supp_index[lc(b.email)] then
    add_err(errs, "email", api_v == 1 and "Address is already suppressed."
      or "The email has already been taken.")
  end
  local reason = "unsubscribed"
  if not isnil(b.reason) then
    if not REASONS[b.reason] then
      add_err(errs, "reason", "The selected reason is invalid.")
    else
      reason = b.reason
    end
  end
  if has_errs(errs) then return api.invalid(errs) end
  local p = insert_supp(b.email, reason)
  if api_v == 1 then return api.ok(201, "Address suppressed") end
  return C.json(201, { data = render_supp(p) })
end

local function supps_delete(api_v, req)
  local email, err = email_param(api_v, req)
  if not email then return err end
  local id = D.supp_index[lc(email)]
  if not id then return API[api_v].not_found() end
  D.supps:remove(id)
  D.supp_index[lc(email)] = nil
  if api_v == 1 then return API[1].ok(200, "Suppression removed") end
  return C.empty(204)
end

local function connection_test(api_v)
  if api_v == 1 then return API[1].ok(200, "Connection OK") end
  return C.json(200, { message = "Connection successful." })
end

-- ---------------------------------------------------------------- v2: fields, activity

-- A list's custom fields: those it was seeded with, then any other name its subscribers
-- carry in custom_fields (as text), in name order.
local function lists_fields(api_v, _, id)
  local l, nf = list_or_404(api_v, id)
  if not l then return nf end
  local seen, out = {}, C.array()
  for _, f in ipairs(l.fields or {}) do
    seen[f.name] = true
    out[#out + 1] = { name = f.name, type = f.type or "text" }
  end
  local extra = {}
  for _, s in ipairs(D.list_subs[l.id]:all()) do
    for k in pairs(s.custom_fields) do
      if not seen[k] then seen[k] = true; extra[#extra + 1] = k end
    end
  end
  table.sort(extra)
  for _, name in ipairs(extra) do out[#out + 1] = { name = name, type = "text" } end
  for i, f in ipairs(out) do f.id = i end
  return C.json(200, { data = out })
end

local function render_message(msg)
  local clicks = C.array()
  for i, c in ipairs(msg.clicks or {}) do clicks[i] = { url = c.url, count = c.count or 1 } end
  return { campaign_name = msg.campaign_name, subject = msg.subject, sender_name = msg.sender_name,
    sender_email = msg.sender_email, sent_date = C.iso(msg.sent_ts), opens = msg.opens or 0,
    clicks = clicks, web_version_url = "https://mock.cmfile.net/web/" .. msg.id }
end

local function subscribed_anywhere(email)
  for _, l in ipairs(D.lists:all()) do
    if find_sub(l.id, email) then return true end
  end
  return false
end

-- A subscriber's messages across all lists, newest first, with totals.
local function activity(api_v, req)
  local email, err = email_param(api_v, req)
  if not email then return err end
  local mine = {}
  for _, msg in ipairs(D.messages:all()) do
    if lc(msg.email) == lc(email) then mine[#mine + 1] = msg end
  end
  if #mine == 0 and not subscribed_anywhere(email) then return API[api_v].not_found() end
  table.sort(mine, function(a, b)
    if a.sent_ts ~= b.sent_ts then return a.sent_ts > b.sent_ts end
    return a.id > b.id
  end)
  local errs = {}
  local page, size = page_params(req, 1, errs, MAX_PAGESIZE[2])
  if has_errs(errs) then return API[api_v].invalid(errs) end
  local summary = { total_messages = #mine, total_opens = 0, total_clicks = 0, total_bounces = 0,
    total_unsubscribes = 0, first_message_date = null }
  local first
  for _, msg in ipairs(mine) do
    summary.total_opens = summary.total_opens + (msg.opens or 0)
    for _, c in ipairs(msg.clicks or {}) do summary.total_clicks = summary.total_clicks + (c.count or 1) end
    if msg.bounced then summary.total_bounces = summary.total_bounces + 1 end
    if msg.unsubscribed then summary.total_unsubscribes = summary.total_unsubscribes + 1 end
    if not first or msg.sent_ts < first then first = msg.sent_ts end
  end
  if first then summary.first_message_date = C.iso(first) end
  local data = C.array()
  for i = (page - 1) * size + 1, math.min(#mine, page * size) do data[#data + 1] = render_message(mine[i]) end
  return C.json(200, { data = { email = email, summary = summary, messages = {
    current_page = page, last_page = math.max(1, math.ceil(#mine / size)), per_page = size,
    total = #mine, data = data } } })
end

-- ---------------------------------------------------------------- routing

local ROUTES = {
  [1] = {
    { "^/lists%.json$", { GET = lists_index, POST = lists_create } },
    { "^/lists/(%d+)%.json$", { GET = lists_show, PUT = lists_update, DELETE = lists_delete } },
    { "^/lists/subscribers/(%d+)%.json$", { GET = subs_index } },
    { "^/subscribers/import/(%d+)%.json$", { POST = subs_import } },
    { "^/subscribers/(%d+)%.json$", { GET = subs_show, POST = subs_create, PUT = subs_update,
      DELETE = subs_delete } },
    { "^/suppressions%.json$", { GET = supps_index, POST = supps_create, DELETE = supps_delete } },
    { "^/connection_test%.json$", { GET = connection_test } },
  },
  [2] = {
    { "^/lists$", { GET = lists_index, POST = lists_create } },
    { "^/lists/(%d+)$", { GET = lists_show, PUT = lists_update, PATCH = lists_update,
      DELETE = lists_delete } },
    { "^/lists/(%d+)/subscribers$", { GET = subs_index, POST = subs_create, PUT = subs_update,
      DELETE = subs_delete } },
    { "^/lists/(%d+)/subscribers/show$", { GET = subs_show } },
    { "^/lists/(%d+)/subscribers/import$", { POST = subs_import } },
    { "^/lists/(%d+)/fields$", { GET = lists_fields } },
    { "^/subscribers/activity$", { GET = activity } },
    { "^/suppressions$", { GET = supps_index, POST = supps_create, DELETE = supps_delete } },
    { "^/connection%-test$", { GET = connection_test } },
  },
}
M.ROUTES = ROUTES

local function route(api_v, req, rest)
  if #rest > 1 and rest:sub(-1) == "/" then rest = rest:sub(1, -2) end
  for _, r in ipairs(ROUTES[api_v]) do
    local a = rest:match(r[1])
    if a then
      local h = r[2][req.method]
      if not h then
        local allow = {}
        for m in pairs(r[2]) do allow[#allow + 1] = m end
        table.sort(allow)
        return API[api_v].method_not_allowed(table.concat(allow, ", "), req)
      end
      if a == rest then a = nil end
      return h(api_v, req, a and tonumber(a) or nil)
    end
  end
  return API[api_v].not_found()
end

-- ---------------------------------------------------------------- auth

local function authenticate(api_v, req)
  local token = req.header("x-access-token")
  local ts_raw = req.header("x-request-timestamp")
  local sig = req.header("x-request-signature")
  local log = { api = API[api_v].name, signature_valid = false }
  req.log_fields = log
  local acct = (type(token) == "string") and D.tokens[token] or nil
  if not acct then
    req.key_label = (token == nil or token == "") and "none" or "invalid"
    log.auth = "invalid_token"
    return nil, "invalid_token"
  end
  req.key_label = acct.name
  local valid = false
  if type(sig) == "string" and type(ts_raw) == "string" and sig ~= "" and ts_raw ~= "" then
    local url = "http://" .. (req.header("host") or "") .. (req.request_uri or req.path)
    local expected
    if api_v == 1 then
      expected = C.sha1_hex(url .. req.body .. ts_raw .. acct.secret)
    else
      expected = C.hmac_sha256_hex(acct.secret, url .. req.body .. ts_raw)
    end
    valid = (sig == expected)
  end
  log.signature_valid = valid
  if not valid then
    C.count("signature_failures")
    log.auth = "invalid_signature"
    return nil, "invalid_signature"
  end
  local ts = ts_raw:match("^%d+$") and tonumber(ts_raw)
  if not ts or math.abs(C.now() - ts) > D.skew then
    log.auth = "expired"
    return nil, "expired"
  end
  log.auth = "ok"
  return acct
end

function M.handle(c, req)
  C = c
  local api_v, rest
  local p = req.path
  if p:sub(1, #V1 + 1) == V1 .. "/" then
    api_v, rest = 1, p:sub(#V1 + 1)
  elseif p:sub(1, #V2 + 1) == V2 .. "/" then
    api_v, rest = 2, p:sub(#V2 + 1)
  else
    req.key_label = "none"
    return C.json(404, { message = "Not found." })
  end
  local api = API[api_v]
  local acct, reason = authenticate(api_v, req)
  if not acct then return api.unauthorized(reason) end
  local q = C.quota("creamailer-" .. api.name .. ":" .. acct.name, acct.limit, acct.per)
  if q.exceeded then
    req.rate_limited = true
    return api.rate_limited(q)
  end
  if acct.access == "read" and req.method ~= "GET" and req.method ~= "HEAD" then return api.forbidden() end
  return route(api_v, req, rest)
end

-- ---------------------------------------------------------------- admin

function M.admin(c, req)
  C = c
  if req.method == "GET" and req.path == "/__admin/creamailer" then
    local names = C.array()
    for name in pairs(D.accounts) do names[#names + 1] = name end
    table.sort(names)
    local ok, impl = pcall(C.hmac_impl)
    return C.json(200, { hmac_impl = ok and impl or ("unavailable: " .. tostring(impl)),
      skew = D.skew, accounts = names })
  end
  return nil
end

-- ---------------------------------------------------------------- seeding

local function seed_base() return math.floor(C.now()) - 30 * 86400 end

local SEEDERS = {}

function SEEDERS.lists(it)
  local id = it.id or D.lists.next_id
  local errs = {}
  local fields = validate_list({ name = it.name or ("List " .. id), language = it.language or "en",
    auto_suppress = it.auto_suppress }, false, errs)
  if has_errs(errs) then error("invalid list: " .. first_err(errs), 0) end
  local l = insert_list(fields, it.id)
  for _, f in ipairs(it.fields or {}) do
    if type(f) ~= "table" or type(f.name) ~= "string" then error("list fields need a name", 0) end
    l.fields = l.fields or {}
    l.fields[#l.fields + 1] = { name = f.name, type = f.type }
  end
  return l
end

function SEEDERS.subscribers(it)
  if it.id then error("subscriber ids are assigned by the mock", 0) end
  local list_id = tonumber(it.list_id)
  local l
  if list_id then
    l = D.lists:get(list_id)
    if not l then error("unknown list_id " .. tostring(it.list_id), 0) end
  else
    l = D.lists:all()[1] or SEEDERS.lists({})
  end
  local email = it.email or string.format("sub%d@example.com", D.list_subs[l.id]:count() + 1)
  if not valid_email(email) then error("invalid email " .. tostring(email), 0) end
  if find_sub(l.id, email) then error("email already in list " .. l.id .. ": " .. email, 0) end
  local errs = {}
  local ch = validate_sub_fields(it, errs)
  if has_errs(errs) then error("invalid subscriber: " .. first_err(errs), 0) end
  local s = insert_sub(l.id, email, ch, seed_base() + D.subs.next_id)
  if it.created then s.created_ts = C.parse_iso(it.created) or error("bad created " .. it.created, 0) end
  s.updated_ts = s.created_ts
  if it.updated then s.updated_ts = C.parse_iso(it.updated) or error("bad updated " .. it.updated, 0) end
  return s
end

function SEEDERS.messages(it)
  if not valid_email(it.email) then error("message needs a valid email, got " .. tostring(it.email), 0) end
  local n = D.messages.next_id
  local ts = it.sent_date and (C.parse_iso(it.sent_date) or error("bad sent_date " .. it.sent_date, 0))
    or (seed_base() + n * 3600)
  return D.messages:insert({ email = it.email, campaign_name = it.campaign_name or ("Campaign " .. n),
    subject = it.subject or ("Subject " .. n), sender_name = it.sender_name or "Sender",
    sender_email = it.sender_email or "sender@example.com", sent_ts = ts, opens = it.opens or 0,
    clicks = it.clicks, bounced = it.bounced == true, unsubscribed = it.unsubscribed == true })
end

function SEEDERS.suppressions(it)
  local email = it.email or string.format("suppressed%d@example.com", D.supps.next_id)
  if not valid_email(email) then error("invalid email " .. tostring(email), 0) end
  if D.supp_index[lc(email)] then error("already suppressed: " .. email, 0) end
  local reason = it.reason or "unsubscribed"
  if not REASONS[reason] then error("invalid reason " .. tostring(reason), 0) end
  local ts = it.created and C.parse_iso(it.created) or (seed_base() + D.supps.next_id)
  return insert_supp(email, reason, ts)
end

local STORE_OF = { lists = "lists", subscribers = "subs", suppressions = "supps", messages = "messages" }

function M.seed(c, resource, spec)
  C = c
  local seeder = SEEDERS[resource]
  if not seeder then error("unknown resource " .. tostring(resource), 0) end
  local first, last, ids, emails = nil, nil, {}, {}
  local items = C.seed_items(spec)
  for _, item in ipairs(items) do
    local rec = seeder(item)
    first = first or rec.id
    last = rec.id
    if #ids < 1000 then
      ids[#ids + 1] = rec.id
      if rec.email then emails[#emails + 1] = rec.email end
    end
  end
  return { resource = resource, created = #items, first_id = first or null, last_id = last or null,
    total = D[STORE_OF[resource]]:count(), ids = C.array(ids), emails = C.array(emails) }
end

function M.data(c, resource)
  C = c
  local out = {}
  if resource == "lists" then
    for i, l in ipairs(D.lists:all()) do out[i] = render_list(l) end
  elseif resource == "subscribers" then
    for i, s in ipairs(D.subs:all()) do out[i] = render_sub(s, true) end
  elseif resource == "suppressions" then
    for i, p in ipairs(D.supps:all()) do out[i] = render_supp(p) end
  else
    error("unknown resource " .. tostring(resource), 0)
  end
  return out
end

-- ---------------------------------------------------------------- reset

function M.reset(c, config)
  C = c
  null = c.null
  D = c.state.data
  D.accounts, D.tokens = {}, {}
  local accounts = config.accounts
  if type(accounts) ~= "table" or next(accounts) == nil then
    accounts = { default = { token = "test-token", secret = "test-secret", limit = 100000, per = 3600 } }
  end
  for name, a in pairs(accounts) do
    if type(a.token) ~= "string" or type(a.secret) ~= "string" then
      error("account " .. name .. " needs token and secret", 0)
    end
    if a.access ~= nil and a.access ~= "read" and a.access ~= "write" then
      error("account " .. name .. ": access must be \"read\" or \"write\"", 0)
    end
    local acct = { name = name, token = a.token, secret = a.secret, access = a.access or "write",
      limit = tonumber(a.limit) or 100000, per = tonumber(a.per) or 3600 }
    D.accounts[name] = acct
    D.tokens[a.token] = acct
  end
  D.skew = tonumber(config.skew) or 300
  D.lists = C.new_store()
  D.subs = C.new_store()
  D.supps = C.new_store()
  D.messages = C.new_store()
  D.list_subs, D.sub_index, D.supp_index = {}, {}, {}
  if type(config.seed) == "table" then
    for _, r in ipairs({ "lists", "subscribers", "suppressions", "messages" }) do
      local v = config.seed[r]
      if type(v) == "number" then M.seed(c, r, { count = v })
      elseif type(v) == "table" then M.seed(c, r, { items = v }) end
    end
  end
end

return M
