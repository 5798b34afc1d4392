-- The API client of an `audience` run: built from the environment (credentials are read
-- from there only) and the options; with --dry-run, on the transport that shows writes
-- instead of sending them.
local audience = require "audience"
local json = require "audience.json"
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

-- --dry-run: the client runs on the dry-run transport, which sends the reads and shows
-- every write exactly as it would go out (headers with their secrets redacted).
local function dry_run_printer(ctx, o)
  return function(request)
    local body = request.body
    if o.json then
      local decoded = body and json.decode(body)
      emit_json(ctx, { dry_run = true, method = request.method, url = request.url,
                       headers = request.headers, body = decoded ~= nil and decoded or body })
      return
    end
    ctx.out:write("DRY RUN ", request.method, " ", request.url, "\n")
    for _, line in ipairs(request.headers) do ctx.out:write("  ", line, "\n") end
    if body ~= nil and body ~= "" then ctx.out:write(body, "\n") end
  end
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
  if o["dry-run"] then opts.transport, opts.dry_run = "dry-run", dry_run_printer(ctx, o) end
  opts.rate_limit = { max_wait = CLI_MAX_WAIT,
    on_wait = function(seconds) if ctx.quota_wait then ctx.quota_wait(seconds) end end }
  return audience.client(provider, opts)
end

local function shallow_copy(t)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  return out
end

M.make_client = make_client
-- Also used by import, to add to a row's metadata without changing the row.
M.shallow_copy = shallow_copy

return M
