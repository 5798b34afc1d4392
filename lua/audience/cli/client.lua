-- The API client of an `audience` run: built from the environment (credentials are read
-- from there only) and the options, or a --dry-run stand-in that prints instead of sending.
local audience = require "audience"
local core = require "audience.core"
local json = require "audience.json"
local jsonl = require "audience.jsonl"
local cli_errors = require "audience.cli.errors"
local cli_output = require "audience.cli.output"

local usage = cli_errors.usage
local emit_json = cli_output.emit_json

local M = {}

-- ===================================================================  clients

local function env_value(ctx, name)
  local v = ctx.getenv(name)
  if v == nil or v == "" then return nil end
  return v
end

local function require_env(ctx, name, what)
  local v = env_value(ctx, name)
  if not v then usage(name .. " is not set (" .. what .. ")") end
  return v
end

-- Batch work may wait out a whole quota window (Creamailer's is an hour) rather than
-- stop half-way; the progress line says it is waiting.
local CLI_MAX_WAIT = 3900

local function make_client(ctx, provider, o)
  local opts = { rate_limit = { max_wait = CLI_MAX_WAIT,
    on_wait = function(seconds) if ctx.quota_wait then ctx.quota_wait(seconds) end end } }
  if o.timeout then
    opts.timeout = tonumber(o.timeout)
    if not opts.timeout or opts.timeout <= 0 then usage("--timeout expects seconds, got '" .. o.timeout .. "'") end
  end
  if provider == "systeme" then
    opts.api_key = require_env(ctx, "SYSTEME_API_KEY", "the API key of the Systeme.io account")
    opts.base_url = o["base-url"] or env_value(ctx, "SYSTEME_BASE_URL")
    return audience.systeme(opts)
  elseif provider == "creamailer" then
    opts.access_token = require_env(ctx, "CREAMAILER_ACCESS_TOKEN", "the Creamailer access token")
    opts.shared_secret = require_env(ctx, "CREAMAILER_SHARED_SECRET", "the Creamailer shared secret")
    local version = env_value(ctx, "CREAMAILER_VERSION") or "1"
    if version ~= "1" and version ~= "2" then usage("CREAMAILER_VERSION must be 1 or 2, not '" .. version .. "'") end
    opts.version = tonumber(version)
    opts.base_url = o["base-url"] or (version == "2" and env_value(ctx, "CREAMAILER_V2_BASE_URL"))
      or env_value(ctx, "CREAMAILER_BASE_URL")
    return audience.creamailer(opts)
  end
  local key, token = env_value(ctx, "SUBSCRIBEFLOW_API_KEY"), env_value(ctx, "SUBSCRIBEFLOW_TOKEN")
  if not key and not token then usage("SUBSCRIBEFLOW_API_KEY or SUBSCRIBEFLOW_TOKEN is not set") end
  opts.api_key, opts.token = key, (not key) and token or nil
  opts.base_url = o["base-url"] or env_value(ctx, "SUBSCRIBEFLOW_BASE_URL")
  return audience.subscribeflow(opts)
end

local function shallow_copy(t)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  return out
end

-- --dry-run: every request the client would make is printed instead of sent, and the
-- caller gets a plausible answer (the body it sent, a report for an import batch).
local function make_dry(ctx, o, client)
  client._call = function(self, method, path, spec)
    spec = spec or {}
    local url = self.base_url .. path
    if spec.query and next(spec.query) ~= nil then url = url .. "?" .. core.build_query(spec.query) end
    local body = spec.body
    if type(body) == "string" then body = json.decode(body) or body end
    if o.json then
      emit_json(ctx, { dry_run = true, method = method, url = url, body = body })
    else
      ctx.out:write("DRY RUN ", method, " ", url, "\n")
      if body ~= nil then ctx.out:write(type(body) == "string" and body or jsonl.encode(body), "\n") end
    end
    if method == "DELETE" then return true end
    if type(body) ~= "table" then return true end
    local entries = body.Subscribers or body.subscribers
    if method == "POST" and type(entries) == "table" then
      return { added = #entries, updated = 0, failed = {} }
    end
    return shallow_copy(body)
  end
end

M.make_client = make_client
M.make_dry = make_dry
-- Also used by import, to add to a row's metadata without changing the row.
M.shallow_copy = shallow_copy

return M
