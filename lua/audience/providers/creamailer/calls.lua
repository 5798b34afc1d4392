--- Creamailer calls that do not fit the generic resource description: the credentials
-- check, delete with its autoresponder flag, a list's custom fields and a subscriber's
-- activity (v2 only), each with the same argument checks and errors as the rest.
-- On a version 1 client the v2-only ones raise, naming the version.
-- @module audience.providers.creamailer.calls
local resource = require "audience.resource"
local options = require "audience.options"

local M = {}

local CALL_OPTIONS = { timeout = "positive", headers = "table" }

local function opts_table(fname, n, opts)
  if opts ~= nil and type(opts) ~= "table" then
    error(("audience: bad argument #%d to '%s' (opts: table or nil expected, got %s)")
      :format(n, fname, options.describe(opts)), 0)
  end
  return opts or {}
end

local function call_spec(opts, spec)
  spec.timeout, spec.headers = opts.timeout, opts.headers
  return spec
end

--- `cm:ping()`: whether the access token and shared secret are accepted.
-- @function ping
-- @tparam[opt] table opts `timeout`, `headers`
-- @treturn[1] boolean true
-- @treturn[2] nil
-- @treturn[2] Error why not (kind "auth" for refused credentials)
function M.ping_at(path)
  return function(self, opts)
    opts = opts_table("ping", 1, opts)
    options.check_call_options("ping", opts, CALL_OPTIONS)
    local value, err, res = self:_call("GET", path, call_spec(opts, {}))
    if value == nil then return nil, err, res end
    return true, nil, res
  end
end

--- `cm.subscribers:delete(list_id, email [, opts])`: removes a subscriber from a list.
-- @function delete
-- @tparam integer|string list_id the list
-- @tparam string email the subscriber's address
-- @tparam[opt] table opts `send_autoresponders` (boolean), `timeout`, `headers`
-- @treturn[1] boolean true
-- @treturn[2] nil
-- @treturn[2] Error why it failed
function M.delete_at(template)
  return function(self, list_id, email, opts)
    local fname = "subscribers:delete"
    resource.check_arg(fname, 1, "list_id", "id", list_id)
    resource.check_arg(fname, 2, "email", "string", email)
    opts = opts_table(fname, 3, opts)
    options.check_call_options(fname, opts, { send_autoresponders = "boolean", timeout = "positive",
      headers = "table" })
    local query = { email = email }
    -- The official SDKs send the flag only when it is set, as 1.
    if opts.send_autoresponders then query.send_autoresponders = 1 end
    local path = resource.fill(template, { list_id = list_id })
    local value, err, res = self._client:_call("DELETE", path, call_spec(opts, { query = query }))
    if value == nil then return nil, err, res end
    return true, nil, res
  end
end

-- A method of the v2 API, on a v1 client: raises, naming the version.
function M.v2_only(fname)
  return function()
    error(("audience: '%s' needs Creamailer API version 2 (this client uses version 1; "
      .. "pass version = 2)"):format(fname), 0)
  end
end

--- `cm.lists:fields(list_id)` (version 2): the list's custom fields.
-- @tparam table self the lists resource
-- @tparam integer|string list_id the list
-- @tparam[opt] table opts `timeout`, `headers`
-- @treturn[1] table a plain array of the fields
-- @treturn[2] nil
-- @treturn[2] Error why it failed
function M.fields(self, list_id, opts)
  local fname = "lists:fields"
  resource.check_arg(fname, 1, "list_id", "id", list_id)
  opts = opts_table(fname, 2, opts)
  options.check_call_options(fname, opts, CALL_OPTIONS)
  local path = resource.fill("/lists/{list_id}/fields", { list_id = list_id })
  local value, err, res = self._client:_call("GET", path, call_spec(opts, {}))
  if value == nil then return nil, err, res end
  local fields = self:_result(value)
  if type(fields) ~= "table" then
    return nil, self._client:_error({ kind = "decode", status = res and res.status,
      message = "fields answer has no list" }, "GET", path, self._client:_url(path)), res
  end
  return fields, nil, res
end

-- Messages come as a paginator of their own inside the answer: { current_page,
-- last_page, total, data } (or with the numbers under `meta`).
local function message_page(messages, query)
  if type(messages) ~= "table" or type(messages.data) ~= "table" then return nil end
  local meta = type(messages.meta) == "table" and messages.meta or messages
  local current = tonumber(meta.current_page) or tonumber(query.page)
  local last = tonumber(meta.last_page)
  local has_more = last ~= nil and current ~= nil and current < last and #messages.data > 0
  local nxt
  if has_more then
    nxt = {}
    for k, v in pairs(query) do nxt[k] = v end
    nxt.page = current + 1
    nxt.email = nil
  end
  return { items = messages.data, has_more = has_more, total = tonumber(meta.total), next = nxt }
end

local function activity_query(self, fname, email, params)
  resource.check_arg(fname, 1, "email", "string", email)
  if params ~= nil and type(params) ~= "table" then
    error(("audience: bad argument #2 to '%s' (params: table or nil expected, got %s)")
      :format(fname, options.describe(params)), 0)
  end
  local query = {}
  for k, v in pairs(params or {}) do
    if k ~= "page" and k ~= "pagesize" then
      error(("audience: unknown parameter '%s' in call to '%s' (page and pagesize expected)")
        :format(tostring(k), fname), 0)
    end
    query[k] = v
  end
  options.check_query(fname, 2, "params", query)
  query.email = email
  local cfg = self._client._provider.paging
  query.page = query.page or cfg.first
  return query
end

local function fetch_activity(self, query)
  local client = self._client
  local path = "/subscribers/activity"
  local rules = client._provider.paging.rules
  local bad = resource.check_params(client, "GET", path, query, rules)
  if bad then return nil, bad end
  local value, err, res = client:_call("GET", path, { query = query })
  if value == nil then return nil, err, res end
  local data = self:_result(value)
  local page = type(data) == "table" and message_page(data.messages, query)
  if not page then
    return nil, client:_error({ kind = "decode", status = res and res.status,
      message = "activity answer has no messages page" }, "GET", path, client:_url(path, query)), res
  end
  return { email = data.email, summary = data.summary, messages = page }, nil, res
end

--- `cm.subscribers:activity(email [, params])` (version 2): one page of what was sent to
-- a subscriber.
-- @tparam table self the subscribers resource
-- @tparam string email the subscriber's address
-- @tparam[opt] table params `page`, `pagesize`
-- @treturn[1] table { email =, summary =, messages = a page as `list` gives it }
-- @treturn[2] nil
-- @treturn[2] Error why it failed
function M.activity(self, email, params)
  return fetch_activity(self, activity_query(self, "subscribers:activity", email, params))
end

--- `cm.subscribers:each_activity(email [, params])` (version 2): every message sent to
-- a subscriber, all pages.
-- @tparam table self the subscribers resource
-- @tparam string email the subscriber's address
-- @tparam[opt] table params `pagesize`
-- @treturn function an iterator over messages; it raises the `Error` of a page that fails
function M.each_activity(self, email, params)
  local query = activity_query(self, "subscribers:each_activity", email, params)
  if query.pagesize == nil then query.pagesize = self._client._provider.paging.max end
  local items, i, done = {}, 0, false
  return function()
    while true do
      i = i + 1
      if items[i] ~= nil then return items[i] end
      if done then return nil end
      local answer, err = fetch_activity(self, query)
      if not answer then done = true; error(err) end
      local page = answer.messages
      items, i = page.items, 0
      if page.next then
        query.page = page.next.page
      else
        done = true
      end
    end
  end
end

return M
