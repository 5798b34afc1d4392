-- Turns a provider's resource descriptions into resource tables on a client:
-- list/each/pages/get/create/update/delete plus named actions, with arguments checked
-- and ids percent-encoded into paths.
--
-- A resource description (all fields optional except path):
--   path = "/contacts"            collection path; may hold {scope} placeholders
--   item = "/contacts/{id}"       item path (default path .. "/{id}")
--   scope = { "list_id" }         leading arguments of every method, filling placeholders
--   key = "slug"                  what the item argument is called in errors (default "id")
--   list = true | { paginated = false, rules = {...} }   rules: see audience.params
--   get, create, delete = true  (create may be { result = function(item) -> item })
--   update = { method = "PATCH" | "PUT", merge_patch = bool, returns_true = bool,
--              required = { body fields the API refuses an update without } }
--   actions = { name = { method =, path =, args = { {name, kind}, ... },
--                        body = { json_field = "arg name" } | "arg name", query = {...},
--                        returns_true = bool (answer carries nothing worth returning),
--                        auth = false (send no credentials), secret_args = { "arg" } } }
--   methods = { name = function(resource, ...) }   provider-specific behaviour
local core = require "audience.core"
local options = require "audience.options"
local param_rules = require "audience.params"

local M = {}

local MERGE_PATCH = "application/merge-patch+json"
local NO_SCOPE = {}   -- read only: what `scope` is when a resource has none
local type, pairs, ipairs, floor, abs = type, pairs, ipairs, math.floor, math.abs
local MAX_EXACT = 2 ^ 53

local function bad(fname, n, name, expected, v)
  error(("audience: bad argument #%d to '%s' (%s: %s expected, got %s)")
    :format(n, fname, name, expected, options.describe(v)), 0)
end

local ARG_KINDS = {
  id = function(v)
    if type(v) == "string" then return v ~= "" end
    -- options.integral(v), inlined: every call that takes an id runs this.
    return type(v) == "number" and v == floor(v) and abs(v) < MAX_EXACT
  end,
  string = function(v) return type(v) == "string" and v ~= "" end,
  optional_string = function(v) return v == nil or (type(v) == "string" and v ~= "") end,
  boolean = function(v) return type(v) == "boolean" end,
  table = function(v) return type(v) == "table" end,
  optional_table = function(v) return v == nil or type(v) == "table" end,
}

local ARG_EXPECTED = {
  id = "integer or non-empty string", string = "non-empty string", table = "table",
  optional_string = "non-empty string or nil", boolean = "boolean",
  optional_table = "table or nil",
}

-- Longer than any id of these APIs, and well below what servers accept in a URL.
local MAX_SEGMENT = 4096

-- Ids go into a single path segment: "../tags" must not climb out of it. Percent-encoding
-- alone does not ensure that: servers and proxies (nginx among them) decode %2F and %2E
-- before they route, so "a/b", "." and ".." are refused instead. Returns what was
-- expected, or nil when `v` can be a segment.
local function segment_problem(v)
  if type(v) ~= "string" then return nil end
  if v == "." or v == ".." or v:find("[/\\]") then
    return "a single path segment (without '/' or '\\', not '.' or '..')"
  end
  if #v > MAX_SEGMENT then
    return ("at most %d bytes (got %d)"):format(MAX_SEGMENT, #v)
  end
  return nil
end

local function check_segment(fname, n, name, v)
  local problem = segment_problem(v)
  if problem then
    -- The value itself is not shown: it may be a credential (a magic-link token).
    error(("audience: bad argument #%d to '%s' (%s: %s expected)"):format(n, fname, name, problem), 0)
  end
end

local function check_arg(fname, n, name, kind, v)
  if not ARG_KINDS[kind](v) then bad(fname, n, name, ARG_EXPECTED[kind], v) end
  if kind == "id" then check_segment(fname, n, name, v) end
end

local function segment(v)
  if type(v) == "number" then return string.format("%d", v) end
  return core.urlencode(v)
end

-- A template split once into { literal, name, literal, name, ..., literal }, matched
-- exactly as gsub("{([%w_]+)}") would: templates come from provider descriptions, so
-- there are few of them, and fill runs on every call.
local TEMPLATES = {}

local function template_parts(template)
  local parts = TEMPLATES[template]
  if parts then return parts end
  parts = {}
  local from = 1
  for start, name, stop in template:gmatch("(){([%w_]+)}()") do
    parts[#parts + 1] = template:sub(from, start - 1)
    parts[#parts + 1] = name
    from = stop
  end
  parts[#parts + 1] = template:sub(from)
  TEMPLATES[template] = parts
  return parts
end

local function fill(template, values)
  local parts = template_parts(template)
  local out = parts[1]
  for i = 2, #parts, 2 do
    local name = parts[i]
    local v = values[name]
    if v == nil then error("audience: no value for path placeholder {" .. name .. "}", 0) end
    local problem = segment_problem(v)
    if problem then error(("audience: bad argument '%s' (%s expected)"):format(name, problem), 0) end
    out = out .. segment(v) .. parts[i + 1]
  end
  return out
end

local CALL_OPTIONS = { idempotency_key = "string", timeout = "positive", headers = "table" }

-- `n`: the position of `opts` among the method's arguments (3 unless said).
local function call_spec(fname, opts, spec, n)
  if opts ~= nil then
    if type(opts) ~= "table" then bad(fname, n or 3, "opts", "table or nil", opts) end
    options.check_call_options(fname, opts, CALL_OPTIONS)
    spec.idempotency_key, spec.timeout, spec.headers = opts.idempotency_key, opts.timeout, opts.headers
  end
  return spec
end

local PAGING = require "audience.paging"
M.PAGING = PAGING

local Resource = {}
Resource.__index = Resource

-- What a successful call returns: `true` for answers without content (or that the
-- description says carry nothing useful), else the item out of the provider's envelope.
function Resource:_result(value, returns_true)
  if value == nil or value == true or returns_true then return value and true end
  local field = self._client._provider.unwrap
  if field and type(value) == "table" and value[field] ~= nil then return value[field] end
  return value
end

local function returns(result_of, value, err, res)
  if value == nil then return nil, err, res end
  return result_of, err, res
end

function Resource:_scope(fname, args)
  local values = {}
  for i, name in ipairs(self._def.scope or NO_SCOPE) do
    check_arg(fname, i, name, "id", args[i])
    values[name] = args[i]
  end
  return values
end

function Resource:_item_path(fname, n, id, values)
  check_arg(fname, n, self._def.key or "id", "id", id)
  values.id = id
  return fill(self._def.item or (self._def.path .. "/{id}"), values)
end

-- Worked out on the first page and kept: descriptions do not change once a client has them.
function Resource:_paging()
  local style = self._style
  if style then return style, self._cfg end
  local def, cfg = self._def, self._client._provider.paging
  if type(def.list) == "table" and def.list.paginated == false then
    style, cfg = PAGING.none, def.list.paging or cfg
  else
    style = PAGING[cfg.style]
  end
  self._style, self._cfg = style, cfg
  return style, cfg
end

local check_params = param_rules.check
M.check_params = check_params

-- One page: a table { items, has_more, total, next }.
function Resource:_page(path, query)
  local client = self._client
  local style, cfg = self:_paging()
  local own = type(self._def.list) == "table" and self._def.list.rules or nil
  local refused = check_params(client, "GET", path, query, style ~= PAGING.none and cfg.rules or nil, own)
  if refused then return nil, refused end
  local body, err, res = client:_call("GET", path, { query = query })
  if body == nil then return nil, err, res end
  local items, has_more, total, nxt = style.read(cfg, body, query)
  if items == nil then
    local e = client:_error({ kind = "decode", status = res and res.status, message = has_more },
      "GET", path, client:_url(path, query))
    return nil, e, res
  end
  return { items = items, has_more = has_more, total = total, next = nxt }, nil, res
end

local NO_PARAMS = {} -- read only: the params of a call given none

local function split_scope(self, fname, ...)
  local scope = self._def.scope
  local nscope, path, params = scope and #scope or 0, self._plain_path
  if scope or not path then
    local args = { ... }
    path = fill(self._def.path, self:_scope(fname, args))
    params = args[nscope + 1]
  else
    params = ... -- no scope: the path is fixed and the first argument is params
  end
  if params ~= nil and type(params) ~= "table" then
    bad(fname, nscope + 1, "params", "table or nil", params)
  end
  if params and params.max_items ~= nil and not (options.integral(params.max_items) and params.max_items >= 0) then
    bad(fname, nscope + 1, "params.max_items", "non-negative integer", params.max_items)
  end
  if params then options.check_query(fname, nscope + 1, "params", params) end
  return path, params or NO_PARAMS
end

local function op_name(self, op)
  local fname = self._name .. ":" .. op
  self._fnames[op] = fname
  return fname
end

local function list(self, ...)
  local fname = self._fnames.list or op_name(self, "list")
  local path, params = split_scope(self, fname, ...)
  local style, cfg = self:_paging()
  return self:_page(path, style.first(cfg, params, false))
end

-- Iterates pages lazily; only the current page is held, whatever the total.
local function pages(self, ...)
  local fname = self._fnames.pages or op_name(self, "pages")
  local path, params = split_scope(self, fname, ...)
  local style, cfg = self:_paging()
  local query = style.first(cfg, params, true)
  local done = false
  return function()
    if done then return nil end
    local page, err = self:_page(path, query)
    if not page then done = true; error(err) end
    if page.next then query = page.next else done = true end
    return page
  end
end

local function each(self, ...)
  local fname = self._fnames.each or op_name(self, "each")
  local _, params = split_scope(self, fname, ...)
  local max_items = params.max_items
  local next_page = pages(self, ...)
  local page, i, yielded = nil, 0, 0
  return function()
    if max_items and yielded >= max_items then return nil end
    while true do
      if page then
        i = i + 1
        local item = page.items[i]
        if item ~= nil then
          yielded = yielded + 1
          return item
        end
      end
      page = next_page()
      i = 0
      if page == nil then return nil end
    end
  end
end

-- What every operation starts with: its name for errors, its arguments, the values of
-- the scope arguments, and the position of the first argument after them.
function Resource:_args(op, ...)
  local fname = self._fnames[op] or op_name(self, op)
  local args = { ... }
  return fname, args, self:_scope(fname, args), #(self._def.scope or NO_SCOPE) + 1
end

local id_segment = core.id_segment

-- The literal parts around {id} of an item template that holds no other placeholder.
local function id_only(template)
  local parts = template_parts(template)
  if #parts == 3 and parts[2] == "id" then return parts[1], parts[3] end
  return nil
end

-- get and delete of a resource without scope, with a valid id: the path in one C call
-- and two concatenations. Anything else (or an id that is not one) takes the general
-- path, which raises the error naming the argument.
local function simple_item_path(self, id)
  local prefix = self._id_prefix
  if not prefix then return nil end
  local seg = id_segment(id)
  return seg and (prefix .. seg .. self._id_suffix)
end

local function get(self, ...)
  local path = simple_item_path(self, (...))
  if path then
    local value, err, res = self._client:_call("GET", path)
    if value == nil then return nil, err, res end
    return self:_result(value), err, res
  end
  local fname, args, values, n = self:_args("get", ...)
  local value, err, res = self._client:_call("GET", self:_item_path(fname, n, args[n], values))
  return returns(self:_result(value), value, err, res)
end

local function create(self, ...)
  local fname, args, values, n = self:_args("create", ...)
  check_arg(fname, n, "body", "table", args[n])
  local value, err, res = self._client:_call("POST", fill(self._def.path, values),
    call_spec(fname, args[n + 1], { body = args[n] }, n + 1))
  local result = self:_result(value)
  local how = self._def.create
  if type(how) == "table" and how.result and value ~= nil then result = how.result(result) end
  return returns(result, value, err, res)
end

local function update(self, ...)
  local fname, args, values, n = self:_args("update", ...)
  local path = self:_item_path(fname, n, args[n], values)
  check_arg(fname, n + 1, "body", "table", args[n + 1])
  local how = self._def.update
  local spec = call_spec(fname, args[n + 2], { body = args[n + 1] }, n + 2)
  local refused = param_rules.check_body(self._client, how.method, path, args[n + 1], how.required)
  if refused then return nil, refused end
  if how.merge_patch then spec.content_type = MERGE_PATCH end
  local value, err, res = self._client:_call(how.method, path, spec)
  return returns(self:_result(value, how.returns_true), value, err, res)
end

local function delete(self, ...)
  local path = simple_item_path(self, (...))
  if path then
    local value, err, res = self._client:_call("DELETE", path)
    return returns(value and true, value, err, res)
  end
  local fname, args, values, n = self:_args("delete", ...)
  local value, err, res = self._client:_call("DELETE", self:_item_path(fname, n, args[n], values))
  return returns(value and true, value, err, res)
end

-- Ids that the API wants as JSON integers may be given as digit strings.
local function json_id(v)
  if type(v) == "string" and v:find("^%d+$") and #v < 16 then return tonumber(v) end
  return v
end

local function action(name, def)
  return function(self, ...)
    local fname = self._name .. ":" .. name
    local args = { ... }
    local values = self:_scope(fname, args)
    local base = #(self._def.scope or NO_SCOPE)
    for i, arg in ipairs(def.args or {}) do
      check_arg(fname, base + i, arg[1], arg[2], args[base + i])
      -- Strings that go into the path (a magic-link token) follow the rules of ids.
      if def.path:find("{" .. arg[1] .. "}", 1, true) then
        check_segment(fname, base + i, arg[1], args[base + i])
      end
      values[arg[1]] = args[base + i]
    end
    local spec = {}
    if type(def.body) == "string" then
      spec.body = values[def.body]
    elseif type(def.body) == "table" then
      local body = {}
      for field, argname in pairs(def.body) do body[field] = json_id(values[argname]) end
      spec.body = body
    end
    if def.query then
      spec.query = {}
      for field, argname in pairs(def.query) do spec.query[field] = values[argname] end
    end
    if def.auth == false then spec.auth = false end
    if def.secret_args then
      spec.secrets = {}
      for i, argname in ipairs(def.secret_args) do spec.secrets[i] = values[argname] end
    end
    local value, err, res = self._client:_call(def.method, fill(def.path, values), spec)
    return returns(self:_result(value, def.returns_true), value, err, res)
  end
end

local OPS = { get = get, create = create, update = update, delete = delete }

local function build(client, name, def)
  local r = setmetatable({ _client = client, _def = def, _name = name, _fnames = {} }, Resource)
  if not def.scope and (def.get or def.delete) and (def.item or def.path) then
    r._id_prefix, r._id_suffix = id_only(def.item or (def.path .. "/{id}"))
  end
  if def.list then
    r.list, r.each, r.pages = list, each, pages
    -- A collection path without placeholders is the same on every call.
    if not def.scope and #template_parts(def.path) == 1 then r._plain_path = def.path end
  end
  for op, fn in pairs(OPS) do
    if def[op] then r[op] = fn end
  end
  for action_name, adef in pairs(def.actions or {}) do
    r[action_name] = action(action_name, adef)
  end
  for method_name, fn in pairs(def.methods or {}) do
    r[method_name] = fn
  end
  return r
end

-- For providers' own methods (def.methods), which need the same checks and paths.
M.check_arg = check_arg
M.fill = fill
M.call_spec = call_spec

--- Puts one resource table per described resource on `client`.
function M.attach(client, provider)
  for name, def in pairs(provider.resources) do
    client[name] = build(client, name, def)
  end
  -- Calls on the client itself (a credentials check, say).
  for name, fn in pairs(provider.client_methods or {}) do client[name] = fn end
end

return M
