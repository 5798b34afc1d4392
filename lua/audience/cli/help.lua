-- What the `audience` command offers: providers, their resources and actions, and the
-- help texts made from them, so that help and dispatch cannot disagree.
local M = {}

-- ===================================================================  providers

local ALL = "list get create update delete export"

-- Per resource: the actions offered, what the item argument is, and calls that differ
-- from the generic resource methods.
local RESOURCES = {
  systeme = {
    contacts = { actions = ALL .. " import tag untag", rows = "contact" },
    tags = { actions = ALL },
    contact_fields = { actions = "list create update delete export", id = "SLUG" },
    webhooks = { actions = ALL },
    courses = { actions = "list export" },
    enrollments = { actions = "list delete export" },
    communities = { actions = "list export" },
    memberships = { actions = "list delete export" },
    subscriptions = { actions = "list export" },
  },
  creamailer = {
    lists = { actions = ALL },
    subscribers = {
      actions = ALL .. " import sync", id = "EMAIL", scoped = true,
      create = function(r, list, body) return r:add(list, body) end,
      update = function(r, list, id, body)
        body.email = id
        return r:update(list, body)
      end,
    },
    suppressions = {
      actions = "list create delete export", id = "EMAIL",
      create = function(r, _, body)
        if type(body.email) ~= "string" then
          error({ usage = "suppressions create needs --data '{\"email\": \"...\", \"reason\": \"...\"}'" })
        end
        return r:add(body.email, body.reason)
      end,
      delete = function(r, _, id) return r:remove(id) end,
    },
  },
  subscribeflow = {
    subscribers = { actions = ALL .. " import" },
    tags = { actions = ALL },
    webhooks = { actions = "list create delete export" },
  },
}

local RESOURCE_ORDER = {
  systeme = { "contacts", "tags", "contact_fields", "webhooks", "courses", "enrollments", "communities",
    "memberships", "subscriptions" },
  creamailer = { "lists", "subscribers", "suppressions" },
  subscribeflow = { "subscribers", "tags", "webhooks" },
}

local ENV_HELP = {
  systeme = "SYSTEME_API_KEY (required), SYSTEME_BASE_URL",
  creamailer = "CREAMAILER_ACCESS_TOKEN and CREAMAILER_SHARED_SECRET (required), CREAMAILER_VERSION (1 or 2),\n"
    .. "  CREAMAILER_BASE_URL (with version 2, CREAMAILER_V2_BASE_URL is used when set)",
  subscribeflow = "SUBSCRIBEFLOW_API_KEY or SUBSCRIBEFLOW_TOKEN (required), SUBSCRIBEFLOW_BASE_URL",
}

local function has_action(spec, action)
  for a in spec.actions:gmatch("%S+") do
    if a == action then return true end
  end
  return false
end

-- ===================================================================  help

local TOP_HELP = [==[
audience - manage email audiences on Systeme.io, Creamailer and SubscribeFlow

usage: audience <provider> <resource> <action> [args] [options]
       audience [<provider> [<resource>]] --help

providers and resources:
  systeme        contacts tags contact_fields webhooks courses enrollments communities
                 memberships subscriptions
  creamailer     lists subscribers suppressions   (subscribers need --list ID)
  subscribeflow  subscribers tags webhooks

actions:
  list     print items: a table, or JSON lines with --json
  get      print one item
  create   create from --data
  update   change an item from --data
  delete   delete an item
  export   stream every item to CSV or JSON lines (stdout or --output FILE)
  import   create (or, with --update, update) one item per row of --file; resumable
  tag, untag   add or remove tags by name on contacts found by email (systeme contacts)
  sync     import only new and changed rows into a list (creamailer subscribers)

options:
  --json               output for scripts: one JSON document, or JSON lines for list
  --param KEY=VALUE    a filter, named as the API names it (repeatable)
  --data JSON|@FILE    the body of create and update
  --dry-run            print what a write would send (method, URL, body); send nothing
  --base-url URL       the API root (default: $<PROVIDER>_BASE_URL, else the provider's)
  --timeout SECONDS    time limit of each request (default 30)
  --no-progress        no progress display on stderr
  -h, --help           this help; also after a provider or a resource

environment (credentials are read from here only):
  SYSTEME_API_KEY, SYSTEME_BASE_URL
  CREAMAILER_ACCESS_TOKEN, CREAMAILER_SHARED_SECRET, CREAMAILER_VERSION (1 or 2),
  CREAMAILER_BASE_URL (CREAMAILER_V2_BASE_URL is used with version 2 when set)
  SUBSCRIBEFLOW_API_KEY or SUBSCRIBEFLOW_TOKEN, SUBSCRIBEFLOW_BASE_URL

exit codes:
  0 success, 1 other failure (a file that cannot be written), 2 usage error (bad command,
  option or input file; missing credential), 3 API error, 4 some rows failed (import,
  tag, sync), 130 interrupted
]==]

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

local RESOURCE_NOTES = {
  ["systeme contacts"] = [[
CSV export columns: id, email, locale, registeredAt, sourceURL, unsubscribed, bounced,
needsConfirmation, tags (names joined with ";"), fields (a JSON object slug -> value).
Import reads that layout back, the API's JSON objects (JSON lines), or a plain CSV whose
other columns are contact field slugs (email,first_name,surname). A row whose email is
taken counts as existing; with --update it is updated (fields, locale) instead. Tags
named in a row are added (created when missing).]],
  ["creamailer subscribers"] = [[
Every action needs --list ID. Import sends batches of 500 (one request each, of the
account's 100 per hour); --update sets update_existing. sync reads the list once, then
imports only new and changed rows. A custom_fields cell holds a JSON object.]],
  ["subscribeflow subscribers"] = [[
Import creates each row with an Idempotency-Key made from the file name, the row number
and the row, so a row re-sent after an interruption is answered from the server's record
instead of creating a duplicate. Columns: email, status, tags (slugs joined with ";" or
a JSON list), metadata (a JSON object); other columns become metadata keys.]],
}

local function provider_help(provider)
  local lines = { ("audience %s <resource> <action> [args] [options]"):format(provider), "", "resources:" }
  for _, name in ipairs(RESOURCE_ORDER[provider]) do
    lines[#lines + 1] = ("  %-15s %s"):format(name, RESOURCES[provider][name].actions)
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "environment: " .. ENV_HELP[provider]
  lines[#lines + 1] = "see: audience " .. provider .. " <resource> --help"
  return table.concat(lines, "\n") .. "\n"
end

local function resource_help(provider, name)
  local spec = RESOURCES[provider][name]
  local prefix = ("audience %s %s "):format(provider, name)
  local lines = { "usage:" }
  for a in spec.actions:gmatch("%S+") do
    local line = ACTION_SYNOPSIS[a]:format(spec.id or "ID")
    if spec.scoped then line = line .. " --list ID" end
    lines[#lines + 1] = "  " .. prefix .. line
  end
  local note = RESOURCE_NOTES[provider .. " " .. name]
  if note then
    lines[#lines + 1] = ""
    lines[#lines + 1] = note
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "environment: " .. ENV_HELP[provider]
  lines[#lines + 1] = "common options: --json --base-url URL --timeout SECONDS --no-progress (audience --help)"
  return table.concat(lines, "\n") .. "\n"
end

M.RESOURCES = RESOURCES
M.RESOURCE_ORDER = RESOURCE_ORDER
M.has_action = has_action
M.TOP_HELP = TOP_HELP
M.provider_help = provider_help
M.resource_help = resource_help

return M
