-- POST /signup (email, first_name): upserts a Systeme.io contact and tags it.
-- Runs inside nginx: audience picks the "ngx" transport, so the worker keeps serving
-- other requests while this one waits on the API.
local audience = require "audience"

local sys = audience.systeme{
  api_key = os.getenv("SYSTEME_API_KEY"),
  base_url = os.getenv("SYSTEME_BASE_URL"),
  timeout = 10,
  rate_limit = { store = "ngx:audience_quota" },
}

local function fail(status, message)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.say(require("cjson").encode{ error = message })
  return ngx.exit(status)
end

ngx.req.read_body()
local form = ngx.req.get_post_args(20) or {}
local email = type(form.email) == "string" and form.email or nil
if not email or not email:find("^[^@%s]+@[^@%s]+%.[^@%s]+$") then
  return fail(400, "a valid email is required")
end
local fields = {}
if type(form.first_name) == "string" and form.first_name ~= "" then
  fields[1] = { slug = "first_name", value = form.first_name }
end

-- Create, or update the contact that has this email already.
local contact, err = sys.contacts:create{ email = email, fields = fields }
local created = contact ~= nil
if not contact then
  if err.kind ~= "validation" then return fail(502, tostring(err)) end
  local page, find_err = sys.contacts:list{ email = email }
  if not page then return fail(502, tostring(find_err)) end
  contact = page.items[1]
  if not contact then return fail(422, err.message) end
  if #fields > 0 then
    local _, update_err = sys.contacts:update(contact.id, { fields = fields })
    if update_err then return fail(502, tostring(update_err)) end
  end
end

-- The tag, looked up by name (created once) and remembered for every worker.
local tag_name = os.getenv("SIGNUP_TAG") or "signup"
local tags = ngx.shared.signup_tags
local function find_tag()
  local page, find_err = sys.tags:list{ query = tag_name }
  if not page then return nil, find_err end
  for _, t in ipairs(page.items) do
    if t.name == tag_name then return t.id end
  end
  return false
end

local tag_id = tags:get(tag_name)
if not tag_id then
  local find_err
  tag_id, find_err = find_tag()
  if tag_id == nil then return fail(502, tostring(find_err)) end
  if not tag_id then
    local t, create_err = sys.tags:create{ name = tag_name }
    if t then
      tag_id = t.id
    elseif create_err.kind == "validation" then
      -- Another worker created it a moment ago.
      tag_id, find_err = find_tag()
      if not tag_id then return fail(502, tostring(find_err or create_err)) end
    else
      return fail(502, tostring(create_err))
    end
  end
  tags:set(tag_name, tag_id)
end
local _, tag_err = sys.contacts:add_tag(contact.id, tag_id)
if tag_err then return fail(502, tostring(tag_err)) end

ngx.status = created and 201 or 200
ngx.header["Content-Type"] = "application/json"
ngx.say(require("cjson").encode{ id = contact.id, email = contact.email, created = created, tag = tag_name })
