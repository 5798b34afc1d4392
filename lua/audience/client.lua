--- A client for one provider: validates options, owns the HTTP handle and the account's
-- limiter, and runs every call through one pipeline (build URL and headers, wait for
-- quota, send, learn from the rate-limit headers, retry what is safe to retry, turn
-- the answer into a value or an audience.Error). Providers only describe themselves.
-- @module audience.client
local core = require "audience.core"
local json = require "audience.json"
local Error = require "audience.error"
local readers = require "audience.error_readers"
local limiter = require "audience.limiter"
local options = require "audience.options"
local transport = require "audience.transport"
local auth = require "audience.auth"
local add_user_headers = require("audience.request_headers").add
local scrub = require "audience.scrub"

--- What every client offers, whatever its provider; its resources are `Resource`s.
-- @type Client
local Client = {}
Client.__index = Client
Client._scrub, Client._error = scrub.scrub, scrub.error
Client._redacted_headers, Client._scrub_headers = scrub.redacted_headers, scrub.headers

-- Locals for what every call uses (a global is a table lookup each time).
local type, pairs = type, pairs
local co_running = coroutine.running

-- The transport of a call: the client's own, or the one client:parallel gave the
-- coroutine the call runs in (audience.parallel); the client itself is never swapped.
local function io_of(self)
  local lanes = self._lanes
  if lanes then
    local lane = lanes[co_running()]
    if lane then return lane.http, lane.sleep end
  end
  return self._http, self._sleep
end

-- Methods whose repetition cannot do anything twice; everything else is retried only
-- when the request provably never reached the server.
local REPEATABLE = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true }
local MERGE_PATCH = "application/merge-patch+json"
local MAX_5XX_WAIT = 300
local DEFAULT_MAX_WAIT = 120 -- API.md: a longer quota wait is returned as rate_limited
-- Header-less answers in a row after which a server is taken not to send counts.
local QUIET_ANSWERS = 5
-- Read only: the lines of calls with no body, key or headers of their own; a bare call's spec.
local ACCEPT_ONLY, NO_SPEC = { "Accept: application/json" }, {}

local function user_agent()
  local lua = rawget(_G, "jit") and _G.jit.version or _VERSION
  local curl = core.curl_version():match("^(%S+)") or "libcurl"
  return ("audience/%s (%s; %s)"):format(core._VERSION, lua, curl)
end

-- Query tables may hold Lua lists; providers say whether a list is sent comma-joined
-- (`tags=1,2`) or as a repeated key (`tags=1&tags=2`, what the core does by itself).
local function prepare_query(query, style)
  if style ~= "comma" then return query end
  local copy
  for k, v in pairs(query) do
    if type(v) == "table" then
      copy = copy or {}
      local parts = {}
      for i = 1, #v do parts[i] = tostring(v[i]) end
      copy[k] = table.concat(parts, ",")
    end
  end
  if not copy then return query end
  for k, v in pairs(query) do
    if copy[k] == nil then copy[k] = v end
  end
  return copy
end

function Client:_url(path, query)
  local url = self.base_url .. path
  if query and next(query) ~= nil then
    local q = core.build_query(prepare_query(query, self._provider.query_arrays))
    if q ~= "" then url = url .. "?" .. q end
  end
  return url
end

function Client:_wait_for_quota(method, path, url, extra)
  -- A dry run sends no write, so a write spends no quota and waits for none.
  if self._transport_name == "dry-run" and method ~= "GET" and method ~= "HEAD" then return true end
  local lim, rl = self._limiter, self._rate_limit
  local waited = 0
  -- Each turn sleeps a positive time, so this ends; the bound is a guard, not a policy.
  for _ = 1, 100000 do
    -- Probing: while the account's count is unknown, one request finds it out and the
    -- others (coroutines, workers, processes) wait for it. The store reads the clock.
    local wait, store_err = lim:acquire(nil, self._probe_quota)
    if wait == nil then
      -- The shared quota store (Redis) cannot be reached: say so rather than guess.
      return nil, self:_error({ kind = "network", code = "quota_store",
        message = "rate-limit store unavailable: " .. tostring(store_err) }, method, path, url, extra)
    end
    if wait <= 0 then return true end
    -- A wait past max_wait is not slept: the caller learns the real one.
    if not rl.wait or waited + wait > rl.max_wait then
      return nil, self:_error({
        kind = "rate_limited", retry_after = wait,
        message = ("quota of the account is used up; next request allowed in %.3g s"):format(wait),
      }, method, path, url, extra)
    end
    if rl.on_wait and wait >= 0.5 then rl.on_wait(wait) end
    local _, sleep = io_of(self)
    sleep(wait)
    waited = waited + wait
  end
  return nil, self:_error({ kind = "rate_limited", message = "quota never freed up" }, method, path, url, extra)
end

-- Feeds the limiter what an attempt taught. headers is nil when no answer came (sent:
-- it may have reached the server); that spends nothing needlessly and frees the probe.
function Client:_observe(headers, sent)
  if not headers then return self._limiter:fail(sent) end
  local names = self._provider.rate_headers
  if not names then return end
  local limit, remaining, reset_at
  if headers[names.limit or ""] or headers[names.remaining or ""] or headers[names.reset or ""] then
    limit, remaining, reset_at = core.parse_rate_headers(headers, names, self._now())
  end
  if limit or remaining or reset_at then
    self._quiet = 0
    self._probe_quota = true
  elseif self._probe_quota then
    self._quiet = (self._quiet or 0) + 1
    -- Several in a row (not one proxy error page): waiting for a count that never
    -- comes would only slow every call down.
    if self._quiet >= QUIET_ANSWERS then self._probe_quota = false end
  end
  self._limiter:observe(limit, remaining, reset_at) -- nothing learned also frees the probe
end

local function snippet(body)
  local s = body:sub(1, 160):gsub("[%c]+", " ")
  if #body > 160 then s = s .. "…" end
  return s
end

-- Turns a complete HTTP answer into (value) or (nil, err fields, retryable, delay).
-- repeatable: the request may be sent again; maybe_done: an earlier attempt may have
-- been carried out although its answer never came.
function Client:_interpret(method, status, body, headers, repeatable, maybe_done)
  local provider = self._provider
  if status >= 200 and status < 300 then
    if body == "" or method == "HEAD" then
      if method == "GET" then
        return nil, { kind = "decode", status = status, message = "empty response body" }
      end
      return true
    end
    local value, msg = json.decode(body)
    if value == nil then
      return nil, { kind = "decode", status = status, message = "invalid JSON in response: " .. msg }
    end
    -- Some APIs say "no" inside a 200 ({"success": false, ...}).
    local refusal = provider.body_error and provider.body_error(value)
    if refusal then
      local fields = (provider.errors or readers.none)(value, status, headers) or {}
      fields.status = status
      fields.kind = fields.kind or refusal
      fields.message = fields.message or "the API reported a failure"
      return nil, fields, false
    end
    return value
  end

  if method == "DELETE" and status == 404 and maybe_done then
    -- An earlier attempt may have deleted it before its answer was lost: gone is gone.
    return true
  end

  local decoded = body ~= "" and json.decode(body) or nil
  local fields = (provider.errors or readers.none)(decoded, status, headers) or {}
  fields.status = status
  fields.kind = fields.kind or Error.kind_for_status(status)
  if not fields.message then
    fields.message = (decoded == nil and body ~= "") and snippet(body) or ("HTTP " .. status)
  end
  fields.retry_after = core.parse_retry_after(headers["retry-after"] or "", self._now())

  -- Some APIs refuse over-quota calls with another status (400 + Retry-After), not 429.
  local refusal = provider.quota_refusal
  local limited = fields.kind == "rate_limited"
    or (refusal and status == refusal.status and headers[refusal.header] ~= nil)
  if limited then
    fields.kind = "rate_limited"
    if fields.retry_after then
      self._limiter:penalize(self._now() + fields.retry_after)
    end
    -- The server refused it, so repeating is safe whatever the method; the limiter
    -- makes the next attempt wait for the Retry-After.
    if not self._rate_limit.wait then return nil, fields, false end
    if (fields.retry_after or 0) > self._rate_limit.max_wait then
      return nil, fields, false
    end
    return nil, fields, true, fields.retry_after and 0 or nil
  end

  if status == 502 or status == 503 or status == 504 then
    -- "Come back in an hour" from a failing server is reported, not slept on: a cron
    -- job or an nginx worker would stall. max_wait sets the bound (default 5 minutes).
    local bound = self._max_5xx_wait
    if fields.retry_after and fields.retry_after > bound then return nil, fields, false end
    return nil, fields, repeatable, fields.retry_after
  end
  return nil, fields, false
end

function Client:_hook(name, info)
  local hook = self[name]
  if hook then hook(info) end
end

-- The one path every call takes. `spec`: query, body (table or string), content_type,
-- headers, timeout, idempotency_key, auth (false: send no credentials), secrets (values
-- of this call to keep out of errors and hooks).
function Client:_call(method, path, spec)
  spec = spec or NO_SPEC
  local provider = self._provider
  local http, sleep = io_of(self)
  local extra = spec.secrets
  local url = self:_url(path, spec.query)
  local body, content_type = spec.body, spec.content_type
  if type(body) == "table" then
    local text, msg = json.encode(body)
    if not text then error("audience: request body cannot be sent as JSON: " .. msg, 3) end
    body = text
  end
  if body ~= nil then content_type = content_type or "application/json" end

  -- Only a key that goes out makes a repeat safe: a PATCH never carries one.
  local idempotency_key
  local idempotent_post = provider.idempotency_header and method == "POST"
  local base = (content_type or idempotent_post or spec.headers) and { ACCEPT_ONLY[1] } or ACCEPT_ONLY
  if content_type then base[#base + 1] = "Content-Type: " .. content_type end
  if idempotent_post then
    idempotency_key = spec.idempotency_key or core.random_hex(16)
    base[#base + 1] = provider.idempotency_header .. ": " .. idempotency_key
  end
  if spec.headers then add_user_headers(base, spec.headers, spec.auth ~= false and self._secret_headers) end

  local repeatable = REPEATABLE[method] or content_type == MERGE_PATCH
    or (provider.idempotency_header ~= nil and idempotency_key ~= nil)
  local maybe_done = false
  local hooked = self.on_request or self.on_response
  local attempts = self.retries + 1
  local attempt = 0
  while true do
    attempt = attempt + 1
    local ok, quota_err = self:_wait_for_quota(method, path, url, extra)
    if not ok then return nil, quota_err end

    local lines = spec.auth == false and base or (base == ACCEPT_ONLY and self._auth_fixed)
      or self._auth(self, method, url, body, base)
    local info
    if hooked then
      info = {
        provider = provider.name, method = method, url = self:_scrub(url, extra),
        path = self:_scrub(path, extra), attempt = attempt,
        headers = self:_redacted_headers(lines, extra),
        rate_limit = self:rate_limit(),
      }
      self:_hook("on_request", info)
    end

    local started = hooked and core.monotonic() -- only the hooks are told how long it took
    local status, rbody, rheaders, fourth = http:perform(method, url, lines, body, spec.timeout)
    local elapsed = hooked and core.monotonic() - started

    local res, value, fields, retryable, delay
    if status then
      res = { status = status, headers = self:_scrub_headers(rheaders, extra) }
      self:_observe(rheaders)
      value, fields, retryable, delay = self:_interpret(method, status, rbody, rheaders, repeatable, maybe_done)
      if status >= 500 then maybe_done = true end
    else
      -- rbody is the failure kind, rheaders the message, fourth whether it was sent.
      local kind, message, sent = rbody, rheaders, fourth
      self:_observe(nil, sent)
      fields = { kind = (kind == "timeout") and "timeout" or "network", message = message }
      if kind == "tls" or kind == "too_large" then
        fields.code = kind
        retryable = false
      else
        retryable = (not sent) or repeatable
      end
      if sent then maybe_done = true end
    end
    self.last_response = res

    local err = fields and self:_error(fields, method, path, url, extra)
    if hooked then
      info.status = status
      info.elapsed = elapsed
      info.error = err
      info.response_headers = res and res.headers or nil
      info.rate_limit = self:rate_limit()
      self:_hook("on_response", info)
    end

    if not err then return value, nil, res end
    if not retryable or attempt >= attempts then return nil, err, res end
    sleep(delay or core.backoff(attempt, self._backoff.base, self._backoff.max))
  end
end

local function check_request_args(method, path, opts)
  if type(method) ~= "string" or not method:find("^%a+$") then
    error("audience: bad argument #1 to 'request' (method: HTTP method name expected, got "
      .. type(method) .. ")", 0)
  end
  if type(path) ~= "string" or path:sub(1, 1) ~= "/" or path:find("[%z\r\n ]") then
    error("audience: bad argument #2 to 'request' (path: string starting with '/' expected, got "
      .. (type(path) == "string" and ("%q"):format(path) or type(path)) .. ")", 0)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("audience: bad argument #3 to 'request' (opts: table expected, got " .. type(opts) .. ")", 0)
  end
end

--- The escape hatch: any route of the API, with the same auth, quota and retries.
-- @tparam string method "GET", "POST", "PUT", "PATCH", "DELETE", ...
-- @tparam string path the route below the client's base_url, such as "/contacts/7"
-- @tparam[opt] table opts `query`, `body` (a table sent as JSON, or the exact bytes),
-- `headers`, `timeout`, `content_type`, `idempotency_key`
-- @treturn[1] any the decoded body (true for an answer without one)
-- @treturn[1] nil
-- @treturn[1] table the response: status, headers
-- @treturn[2] nil
-- @treturn[2] Error why it failed
-- @treturn[2] table|nil the response, when there was one
function Client:request(method, path, opts)
  check_request_args(method, path, opts)
  opts = opts or {}
  options.check_call_options("request", opts, { query = "table", body = "body", headers = "table",
    timeout = "positive", content_type = "string", idempotency_key = "string" })
  if opts.query then options.check_query("request", 3, "opts.query", opts.query) end
  return self:_call(method:upper(), path, opts)
end

--- The account's quota as last known.
-- @treturn table `limit`, `remaining`, `reset_at` (a Unix time) and `blocked_until`,
-- each nil while unknown
function Client:rate_limit()
  local s = self._limiter:state(self._now())
  return { limit = s.limit, remaining = s.remaining, reset_at = s.reset_at,
           blocked_until = s.blocked_until }
end

--- Runs many independent calls with at most `opts.concurrency` (default 8) requests in
-- flight, each through the same quota, retries and errors as a single call.
-- @tparam {function|table,...} calls functions that use this client, or request tables
-- { method, path, query =, body =, headers =, ... }
-- @tparam[opt] table opts `concurrency`
-- @treturn {table,...} one { value =, err = } per call, in input order
function Client:parallel(calls, opts)
  return require("audience.parallel").run(self, calls, opts)
end

--- Releases the connections. Calling it twice is harmless; calls after it raise.
function Client:close()
  self._http:close()
  if self._multi then self._multi:close() end
end

Client.__close = Client.close

local M = {}

-- Builds a client for `provider` (a description from audience.providers.*).
function M.new(provider, opts)
  local o = options.check_constructor("audience." .. provider.name, provider, opts)
  -- One API in several shapes (versions): the options pick the description.
  if provider.variant then provider = provider.variant(o) end

  local self = setmetatable({}, Client)
  self._provider = provider
  self.base_url = (o.base_url or provider.base_url):gsub("/+$", "")
  self.retries = o.retries or 2
  self.on_request, self.on_response = o.on_request, o.on_response
  self._backoff = { base = (o.backoff and o.backoff.base) or 0.25, max = (o.backoff and o.backoff.max) or 20 }

  local a = auth.prepare(provider, o)
  self._auth, self._secrets, self._secret_headers = a.lines, a.secrets, a.secret_headers
  self._auth_fixed = a.fixed and a.lines(self, nil, nil, nil, ACCEPT_ONLY) or nil -- read only

  self._transport_settings = {
    timeout = o.timeout, connect_timeout = o.connect_timeout, verify_tls = o.verify_tls,
    ca_file = o.ca_file, proxy = o.proxy, user_agent = o.user_agent or user_agent(),
    max_body = o.max_body,
    -- The ngx transport's connection pools (libcurl keeps its own cache).
    keepalive_pool = o.keepalive_pool, keepalive_timeout = o.keepalive_timeout,
    dry_run = o.dry_run, dry_run_answer = provider.dry_run_answer, secret_headers = self._secret_headers,
    redact = function(text) return self:_scrub(text) end,
  }
  local t = transport.new(o.transport, self._transport_settings)
  self._http, self._sleep, self._now, self._transport_name = t.http, t.sleep, t.now, t.name

  local rl = {}
  for k, v in pairs(o.rate_limit or {}) do rl[k] = v end
  if rl.wait == nil then rl.wait = true end
  self._max_5xx_wait = rl.max_wait or MAX_5XX_WAIT
  rl.max_wait = rl.max_wait or DEFAULT_MAX_WAIT
  if not rl.limit and provider.default_budget then
    rl.limit, rl.per = provider.default_budget.limit, provider.default_budget.per
  end
  self._rate_limit = rl
  -- The account is named by a digest of the credential, so the key itself is never
  -- used as a name anywhere (a file, a Redis key, a shared dict).
  local account = rl.account or ("key-" .. core.sha256_hex(a.credential):sub(1, 24))
  -- quota_scope: a version of the API whose quota is counted apart from the others.
  local key = (provider.quota_scope or provider.name) .. ":" .. account
  self._limiter = limiter.new(key, rl, self._transport_name)
  self._probe_quota = provider.rate_headers ~= nil

  require("audience.resource").attach(self, provider)
  require("audience.helpers").attach(self)
  return self
end

return M
