-- What the `audience` command offers: providers, their resources and actions, and the
-- help texts made from them, so that help and dispatch cannot disagree.
local providers = require "audience.providers"

local M = {}

-- ===================================================================  providers

-- Each provider says what the command offers on it in the module its description
-- names as `command`: resources (actions, the item argument, calls that differ from the
-- generic resource methods), their order, notes and the environment it reads.
--- The command description of a provider, or nil when no provider has that name.
function M.command_of(name)
  local desc = providers.get(name)
  if not desc or not desc.command then return nil end
  if type(desc.command) == "string" then return require(desc.command) end
  return desc.command
end

--- The providers the command can drive, in help order.
function M.names()
  local out = {}
  for _, name in ipairs(providers.names()) do
    if M.command_of(name) then out[#out + 1] = name end
  end
  return out
end

-- "a, b or c"
local function either(list, word)
  if #list <= 1 then return list[1] or "" end
  return table.concat(list, ", ", 1, #list - 1) .. " " .. word .. " " .. list[#list]
end
M.either = either

local function has_action(spec, action)
  for a in spec.actions:gmatch("%S+") do
    if a == action then return true end
  end
  return false
end

-- ===================================================================  help

-- Which "provider resource" pairs offer `action` (for the lines that name them).
local function offered(action)
  local where = {}
  for _, name in ipairs(M.names()) do
    local cmd = M.command_of(name)
    for _, r in ipairs(cmd.order) do
      if has_action(cmd.resources[r], action) then where[#where + 1] = name .. " " .. r end
    end
  end
  return table.concat(where, ", ")
end

--- The resources whose items belong to a list (--list ID), as "provider resource".
function M.scoped_resources()
  local where = {}
  for _, name in ipairs(M.names()) do
    local cmd = M.command_of(name)
    for _, r in ipairs(cmd.order) do
      if cmd.resources[r].scoped then where[#where + 1] = name .. " " .. r end
    end
  end
  return table.concat(where, ", ")
end

--- The text of `audience --help`, made from the providers' command descriptions.
function M.top_help()
  local names, titles = M.names(), {}
  for i, name in ipairs(names) do titles[i] = providers.get(name).title or name end
  local width = 0
  for _, name in ipairs(names) do width = math.max(width, #name) end
  local lines = {
    "audience - manage email audiences on " .. either(titles, "and"),
    "",
    "usage: audience <provider> <resource> <action> [args] [options]",
    "       audience [<provider> [<resource>]] --help",
    "",
    "providers and resources:",
  }
  for _, name in ipairs(names) do
    local cmd = M.command_of(name)
    local summary = cmd.summary or { table.concat(cmd.order, " ") }
    for i, text in ipairs(summary) do
      lines[#lines + 1] = ("  %-" .. (width + 1) .. "s %s"):format(i == 1 and name or "", text)
    end
  end
  local env = {}
  for _, name in ipairs(names) do
    local cmd = M.command_of(name)
    for _, line in ipairs(cmd.env_summary or { cmd.env_help }) do env[#env + 1] = "  " .. line end
  end
  return table.concat(lines, "\n") .. "\n" .. ([==[

actions:
  list     print items: a table, or JSON lines with --json
  get      print one item
  create   create from --data
  update   change an item from --data
  delete   delete an item
  export   stream every item to CSV or JSON lines (stdout or --output FILE)
  import   create (or, with --update, update) one item per row of --file; resumable
  tag, untag   add or remove tags by name on contacts found by email (%s)
  sync     import only new and changed rows into a list (%s)

options:
  --json               output for scripts: one JSON document, or JSON lines for list
  --param KEY=VALUE    a filter, named as the API names it (repeatable)
  --data JSON|@FILE    the body of create and update
  --dry-run            print each write as it would go out (method, URL, headers with
                       secrets redacted, body) instead of sending it; reads are sent
  --base-url URL       the API root (default: $<PROVIDER>_BASE_URL, else the provider's)
  --timeout SECONDS    time limit of each request (default 30)
  --no-progress        no progress display on stderr
  -h, --help           this help; also after a provider or a resource

environment (credentials are read from here only):
%s

exit codes:
  0 success, 1 other failure (a file that cannot be written), 2 usage error (bad command,
  option or input file; missing credential), 3 API error, 4 some rows failed (import,
  tag, sync), 130 interrupted
]==]):format(offered("tag"), offered("sync"), table.concat(env, "\n"))
end

local ACTION_SYNOPSIS = {
  list = "list [--param KEY=VALUE]... [--limit N | --all] [--columns A,B,...] [--json]",
  get = "get %s [--json]",
  create = "create --data JSON|@FILE [--dry-run] [--json]",
  update = "update %s --data JSON|@FILE [--dry-run] [--json]",
  delete = "delete %s [--dry-run]",
  export = "export [--format csv|jsonl] [--output FILE] [--param KEY=VALUE]... [--columns A,B,...] [--limit N]",
  import = "import --file FILE [--format csv|jsonl] [--checkpoint FILE] [--resume] [--update] [--dry-run]",
  tag = "tag --tag NAME [--tag NAME]... (EMAIL... | --file FILE) [--dry-run]",
  untag = "untag --tag NAME [--tag NAME]... (EMAIL... | --file FILE) [--dry-run]",
  sync = "sync --file FILE [--format csv|jsonl] [--key FIELD] [--no-update] [--dry-run]",
}

local function provider_help(provider)
  local cmd = M.command_of(provider)
  local lines = { ("audience %s <resource> <action> [args] [options]"):format(provider), "", "resources:" }
  for _, name in ipairs(cmd.order) do
    lines[#lines + 1] = ("  %-15s %s"):format(name, cmd.resources[name].actions)
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "environment: " .. cmd.env_help
  lines[#lines + 1] = "see: audience " .. provider .. " <resource> --help"
  return table.concat(lines, "\n") .. "\n"
end

local function resource_help(provider, name)
  local cmd = M.command_of(provider)
  local spec = cmd.resources[name]
  local prefix = ("audience %s %s "):format(provider, name)
  local lines = { "usage:" }
  for a in spec.actions:gmatch("%S+") do
    local line = ACTION_SYNOPSIS[a]:format(spec.id or "ID")
    if spec.scoped then line = line .. " --list ID" end
    lines[#lines + 1] = "  " .. prefix .. line
  end
  local note = cmd.notes and cmd.notes[name]
  if note then
    lines[#lines + 1] = ""
    lines[#lines + 1] = note
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "environment: " .. cmd.env_help
  lines[#lines + 1] = "common options: --json --base-url URL --timeout SECONDS --no-progress (audience --help)"
  return table.concat(lines, "\n") .. "\n"
end

M.has_action = has_action
M.provider_help = provider_help
M.resource_help = resource_help

return M
