-- The API client of an `audience` run: built from the environment (credentials are read
-- from there only) and the options, or a --dry-run stand-in that prints instead of sending.
local audience = require "audience"
local core = require "audience.core"
local json = require "audience.json"
local jsonl = require "audience.jsonl"
local cli_errors = require "audience.cli.errors"
local cli_output = require "audience.cli.output"
local cli_help = require "audience.cli.help"

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

-- Batch work may wait out a whole quota window (some providers' last an hour) rather than
-- stop half-way; the progress line says it is waiting.
local CLI_MAX_WAIT = 3900

local function make_client(ctx, provider, o)
  local env = {
    value = function(name) return env_value(ctx, name) end,
    required = function(name, what) return require_env(ctx, name, what) end,
    usage = usage,
  }
  local timeout
  if o.timeout then
    timeout = tonumber(o.timeout)
    if not timeout or timeout <= 0 then usage("--timeout expects seconds, got '" .. o.timeout .. "'") end
  end
  local opts = cli_help.command_of(provider).client_options(env, o)
  opts.timeout = timeout
  opts.rate_limit = { max_wait = CLI_MAX_WAIT,
    on_wait = function(seconds) if ctx.quota_wait then ctx.quota_wait(seconds) end end }
  return audience.client(provider, opts)
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
