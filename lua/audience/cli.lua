-- The `audience` command: list, read, write, export and import audiences from a shell.
--
--   audience <provider> <resource> <action> [args] [options]
--
-- bin/audience only calls main(arg); everything is here so that it can be tested and
-- checked like the rest of the module. Credentials come only from the environment, so
-- they never show in `ps` or in shell history. Results go to stdout; progress, notes and
-- errors go to stderr, so that `audience ... --json | jq` and `> out.csv` stay clean.
local audience = require "audience"
local core = require "audience.core"
local json = require "audience.json"
local jsonl = require "audience.jsonl"
local csv = require "audience.csv"
local helpers = require "audience.helpers"
local Error = require "audience.error"

local M = {}

M.EXIT = { ok = 0, failure = 1, usage = 2, api = 3, partial = 4, interrupted = 130 }
local EXIT = M.EXIT

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

-- ===================================================================  arguments

local function usage(msg) error({ usage = msg }, 0) end

local FLAGS = { json = true, ["dry-run"] = true, help = true, resume = true, update = true, all = true,
  ["no-progress"] = true, ["no-update"] = true }
local VALUES = { ["base-url"] = 1, list = 1, data = 1, format = 1, output = 1, file = 1, checkpoint = 1,
  columns = 1, limit = 1, timeout = 1, key = 1, param = "many", tag = "many" }

-- Which options each action takes (on top of the common ones), so that a misplaced
-- option is reported instead of silently doing nothing.
local COMMON = { json = true, help = true, ["base-url"] = true, timeout = true, list = true,
  ["no-progress"] = true }
local ACTION_OPTIONS = {
  list = { param = true, limit = true, all = true, columns = true },
  get = {},
  create = { data = true, ["dry-run"] = true },
  update = { data = true, ["dry-run"] = true },
  delete = { ["dry-run"] = true },
  export = { param = true, format = true, output = true, columns = true, limit = true },
  import = { file = true, format = true, checkpoint = true, resume = true, update = true, ["dry-run"] = true },
  tag = { tag = true, file = true, format = true, ["dry-run"] = true },
  untag = { tag = true, file = true, format = true, ["dry-run"] = true },
  sync = { file = true, format = true, key = true, ["no-update"] = true, ["dry-run"] = true },
}

--- Splits argv into positionals and options. Options may come anywhere; "--" ends them.
function M.parse(argv)
  local o = { positional = {}, param = {}, tag = {}, given = {} }
  local i, n = 1, #argv
  local only_positional = false
  while i <= n do
    local a = argv[i]
    if only_positional or a == "-" or a:sub(1, 1) ~= "-" then
      o.positional[#o.positional + 1] = a
    elseif a == "--" then
      only_positional = true
    elseif a == "-h" then
      o.help = true
      o.given.help = true
    elseif a:sub(1, 2) == "--" then
      local name, value = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      if FLAGS[name] then
        if value then usage("option --" .. name .. " takes no value") end
        o[name] = true
      elseif VALUES[name] then
        if not value then
          i = i + 1
          value = argv[i]
          if value == nil then usage("option --" .. name .. " needs a value") end
        end
        if VALUES[name] == "many" then o[name][#o[name] + 1] = value else o[name] = value end
      else
        usage("unknown option --" .. name)
      end
      o.given[name] = true
    else
      usage("unknown option " .. a)
    end
    i = i + 1
  end
  return o
end

local function split_list(s)
  local out = {}
  for part in s:gmatch("[^,]+") do
    part = part:match("^%s*(.-)%s*$")
    if part ~= "" then out[#out + 1] = part end
  end
  return out
end

local function params_of(o)
  local params = {}
  for _, p in ipairs(o.param) do
    local k, v = p:match("^([^=]+)=(.*)$")
    if not k then usage("--param expects KEY=VALUE, got '" .. p .. "'") end
    local prev = params[k]
    if prev == nil then
      params[k] = v
    elseif type(prev) == "table" then
      prev[#prev + 1] = v
    else
      params[k] = { prev, v }   -- a repeated key is a list (tags=1 --param tags=2)
    end
  end
  return params
end

local function positive_integer(o, name)
  local v = o[name]
  if v == nil then return nil end
  local n = tonumber(v)
  if not n or n < 1 or n ~= math.floor(n) then
    usage("--" .. name .. " expects a positive integer, got '" .. v .. "'")
  end
  return n
end

local function read_data(o)
  local text = o.data
  if not text then usage("this action needs --data JSON or --data @FILE") end
  if text:sub(1, 1) == "@" then
    local f, msg = io.open(text:sub(2), "rb")
    if not f then usage("cannot read --data file: " .. msg) end
    text = f:read("*a")
    f:close()
  end
  local body, msg = json.decode(text)
  if type(body) ~= "table" then usage("--data is not a JSON object" .. (msg and (": " .. msg) or "")) end
  return body
end

local FORMATS = { csv = "csv", jsonl = "jsonl", ndjson = "jsonl", json = "jsonl" }

local function format_of(o, path, default)
  if o.format then
    if o.format ~= "csv" and o.format ~= "jsonl" then
      usage("--format expects csv or jsonl, got '" .. o.format .. "'")
    end
    return o.format
  end
  local ext = path and path:match("%.(%w+)$")
  return (ext and FORMATS[ext:lower()]) or default
end

local function is_interrupt(e)
  return tostring(e):find("interrupted!", 1, true) ~= nil
end

local function rethrow_interrupt(e)
  if is_interrupt(e) then error(e, 0) end
end

-- ===================================================================  output

-- Display width of UTF-8 text, approximately: one column per character.
local function ulen(s)
  local _, n = s:gsub("[^\128-\191]", "")
  return n
end

local function utrunc(s, width)
  if ulen(s) <= width then return s end
  local out, n = {}, 0
  for ch in s:gmatch("[%z\1-\127\194-\244][\128-\191]*") do
    if n >= width - 1 then break end
    n = n + 1
    out[n] = ch
  end
  return table.concat(out) .. "…"
end

local function display(v, width)
  local s = csv.cell_text(v):gsub("[%c]", " ")
  return utrunc(s, width)
end

local function pad(s, width)
  local n = ulen(s)
  if n >= width then return s end
  return s .. (" "):rep(width - n)
end

local function emit_json(ctx, v)
  ctx.out:write(jsonl.encode(v), "\n")
end

local function show_item(ctx, o, item)
  if o.json then return emit_json(ctx, item) end
  if type(item) ~= "table" then
    ctx.out:write(tostring(item), "\n")
    return
  end
  local keys = helpers.default_columns(item)
  local width = 0
  for _, k in ipairs(keys) do width = math.max(width, #k) end
  for _, k in ipairs(keys) do
    ctx.out:write(pad(k, width), "  ", display(item[k], 200), "\n")
  end
end

-- Aligned columns for people. Widths come from the first rows, so output streams: later
-- rows are cut to fit.
local function table_printer(ctx, columns)
  local block, widths = {}, nil
  local MAX = 32
  local function flush()
    if not columns then return end
    if not widths then
      widths = {}
      for i, c in ipairs(columns) do widths[i] = math.min(MAX, ulen(c)) end
      for _, cells in ipairs(block) do
        for i, s in ipairs(cells) do widths[i] = math.max(widths[i], math.min(MAX, ulen(s))) end
      end
      local head = {}
      for i, c in ipairs(columns) do head[i] = pad(utrunc(c, widths[i]), widths[i]) end
      ctx.out:write((table.concat(head, "  "):gsub("%s+$", "")), "\n")
    end
    for _, cells in ipairs(block) do
      local line = {}
      for i, s in ipairs(cells) do line[i] = pad(utrunc(s, widths[i]), widths[i]) end
      ctx.out:write((table.concat(line, "  "):gsub("%s+$", "")), "\n")
    end
    block = {}
  end
  return {
    add = function(row)
      columns = columns or helpers.default_columns(row)
      local cells = {}
      for i, c in ipairs(columns) do cells[i] = display(row[c], MAX) end
      block[#block + 1] = cells
      if #block >= 100 then flush() end
    end,
    finish = flush,
  }
end

-- ===================================================================  progress

local Progress = {}
Progress.__index = Progress

local PLAIN_EVERY, PLAIN_INTERVAL, BAR_INTERVAL = 1000, 5, 0.1

local function duration(s)
  s = math.floor(s + 0.5)
  if s >= 3600 then return ("%dh%02dm"):format(math.floor(s / 3600), math.floor(s % 3600 / 60)) end
  if s >= 60 then return ("%dm%02ds"):format(math.floor(s / 60), s % 60) end
  return s .. "s"
end

--- Progress on stderr: a bar redrawn in place on a terminal, plain lines otherwise
--- (every 1,000 items or 5 seconds), nothing with --no-progress.
function Progress.new(ctx, label, total)
  local now = core.monotonic()
  return setmetatable({ out = ctx.err, mode = ctx.progress, label = label, total = total, count = 0,
    started = now, drawn = nil, width = 0, line_count = 0, line_time = now }, Progress)
end

function Progress:text(now, bar)
  local elapsed = now - self.started
  local rate = elapsed > 0 and self.count / elapsed or 0
  local parts = { self.label, " " }
  local total = self.total
  if total and total > 0 then
    local frac = math.min(1, self.count / total)
    parts[#parts + 1] = ("%d/%d"):format(self.count, total)
    if bar then
      local filled = math.floor(frac * 20)
      parts[#parts + 1] = " [" .. ("#"):rep(filled) .. ("-"):rep(20 - filled) .. "]"
    end
    parts[#parts + 1] = (" %d%%"):format(math.floor(frac * 100))
  else
    parts[#parts + 1] = ("%d"):format(self.count)
  end
  parts[#parts + 1] = (", %.0f/s"):format(rate)
  if total and total > 0 then
    local left = total - self.count
    parts[#parts + 1] = ", ETA " .. ((rate > 0 and left >= 0) and duration(left / rate) or "--")
  end
  return table.concat(parts)
end

function Progress:draw(now)
  local s = self:text(now, true)
  local n = ulen(s)
  self.out:write("\r", s, n < self.width and (" "):rep(self.width - n) or "")
  self.out:flush()
  self.width, self.drawn = n, now
end

function Progress:plain(now)
  self.out:write(self:text(now, false), "\n")
  self.line_count, self.line_time = self.count, now
end

function Progress:add(n)
  self.count = self.count + (n or 1)
  if self.mode == "none" then return end
  local now = core.monotonic()
  if self.mode == "bar" then
    if not self.drawn or now - self.drawn >= BAR_INTERVAL then self:draw(now) end
  elseif math.floor(self.count / PLAIN_EVERY) > math.floor(self.line_count / PLAIN_EVERY)
    or now - self.line_time >= PLAIN_INTERVAL then
    -- On round numbers (1000, 2000...), and at least every few seconds when it is slow.
    self:plain(now)
  end
end

--- Writes a message line to stderr without garbling the bar.
function Progress:log(msg)
  if self.mode == "bar" and self.drawn then
    self.out:write("\r", (" "):rep(self.width), "\r")
    self.drawn, self.width = nil, 0
  end
  self.out:write(msg, "\n")
end

function Progress:finish()
  if self.finished then return end
  self.finished = true
  local now = core.monotonic()
  if self.mode == "bar" and (self.drawn or self.count > 0) then
    self:draw(now)
    self.out:write("\n")
  elseif self.mode == "plain" and self.count ~= self.line_count
    and (self.line_count > 0 or now - self.started >= 1) then
    -- A short run ends with its result alone; a long one with where it got to.
    self:plain(now)
  end
end

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

local function make_client(ctx, provider, o)
  local opts = {}
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

-- ===================================================================  simple actions

local function scoped(r, list, method, ...)
  if list ~= nil then return r[method](r, list, ...) end
  return r[method](r, ...)
end

local function api_failure(ctx, err)
  ctx.err:write("audience: ", tostring(err), "\n")
  return EXIT.api
end

local function display_rows(spec)
  if spec.rows == "contact" then
    return audience.flatten_contact, { "id", "email", "locale", "registeredAt", "unsubscribed", "bounced", "tags" }
  end
end

local function do_list(ctx, o, r, spec, list)
  local params = params_of(o)
  local limit = positive_integer(o, "limit") or 50
  if not o.all then params.max_items = limit end
  local transform, columns = display_rows(spec)
  if o.columns then columns = split_list(o.columns) end
  local printer = not o.json and table_printer(ctx, columns)
  local count = 0
  for item in scoped(r, list, "each", params) do
    count = count + 1
    if o.json then
      emit_json(ctx, item)
    else
      printer.add(transform and transform(item) or item)
    end
  end
  if printer then printer.finish() end
  if not o.all and count >= limit then
    ctx.err:write(("(the first %d; --limit N for more, --all for every one)\n"):format(limit))
  end
  return EXIT.ok
end

local function do_get(ctx, o, r, spec, list, id)
  local item, err
  if spec.get then item, err = spec.get(r, list, id) else item, err = scoped(r, list, "get", id) end
  if item == nil then return api_failure(ctx, err) end
  show_item(ctx, o, item)
  return EXIT.ok
end

local function do_write(ctx, o, r, spec, list, action, id)
  local result, err
  if action == "create" then
    local body = read_data(o)
    if spec.create then
      result, err = spec.create(r, list, body)
    else
      result, err = scoped(r, list, "create", body)
    end
  elseif action == "update" then
    local body = read_data(o)
    if spec.update then
      result, err = spec.update(r, list, id, body)
    else
      result, err = scoped(r, list, "update", id, body)
    end
  else
    if spec.delete then result, err = spec.delete(r, list, id) else result, err = scoped(r, list, "delete", id) end
  end
  if result == nil then return api_failure(ctx, err) end
  if o["dry-run"] then return EXIT.ok end
  if result == true then
    if o.json then
      emit_json(ctx, { ok = true, action = action, id = id })
    else
      local past = { create = "created", update = "updated", delete = "deleted" }
      ctx.out:write(past[action], id and (" " .. id) or "", "\n")
    end
  else
    show_item(ctx, o, result)
  end
  return EXIT.ok
end

local function do_export(ctx, o, r, spec, list)
  local format = format_of(o, o.output, "csv")
  local params = params_of(o)
  -- Oldest first, so that contacts added during a long export come last, not lost.
  if spec.rows == "contact" and params.order == nil then params.order = "asc" end
  local limit = positive_integer(o, "limit")
  local transform, columns
  if format == "csv" and spec.rows == "contact" then
    transform, columns = audience.flatten_contact, audience.CONTACT_COLUMNS
  end
  if o.columns then columns = split_list(o.columns) end

  local out = ctx.out
  if o.output then
    local f, msg = io.open(o.output, "wb")
    if not f then usage("cannot write --output: " .. msg) end
    out = f
  end
  local progress = Progress.new(ctx, "export", nil)
  -- A bar redrawn over rows printed to the same terminal would garble both.
  if not o.output and progress.mode == "bar" and ctx.stdout_is_tty() then progress.mode = "none" end
  local pages = scoped(r, list, "pages", params)
  local page, i, given = nil, 0, 0
  -- Items page by page, so that the first page's total (when the API gives one) can
  -- feed the progress display.
  local function next_item()
    if limit and given >= limit then return nil end
    for _ = 1, math.huge do
      if page then
        i = i + 1
        local item = page.items[i]
        if item ~= nil then
          given = given + 1
          progress:add(1)
          return item
        end
      end
      page, i = pages(), 0
      if page == nil then return nil end
      if page.total and not progress.total then progress.total = limit and math.min(limit, page.total) or page.total end
    end
  end
  local n, err = audience.export(next_item, out, format, { transform = transform, columns = columns })
  progress:finish()
  if out ~= ctx.out then out:close() end
  if not n then
    if Error.is(err) then
      rethrow_interrupt(err)
      return api_failure(ctx, err)
    end
    ctx.err:write("audience: cannot write the export: ", tostring(err), "\n")
    return EXIT.failure
  end
  if o.output then ctx.err:write(("exported %d items to %s\n"):format(n, o.output)) end
  return EXIT.ok
end

-- ===================================================================  import

local function open_rows(path, format)
  local reader = format == "csv" and audience.read_csv or audience.read_jsonl
  local rows, msg = reader(path)
  if not rows then usage("cannot read --file: " .. tostring(msg)) end
  return rows
end

-- The number of rows, for the progress display; nil when the file is large (a second
-- pass would cost too much) or unreadable (the import itself will say why).
local function count_rows(path, format)
  local f = io.open(path, "rb")
  if not f then return nil end
  local size = f:seek("end")
  f:close()
  if not size or size > 64 * 1024 * 1024 then return nil end
  local n = 0
  local ok, err = pcall(function()
    for _ in open_rows(path, format) do n = n + 1 end
  end)
  if not ok then
    rethrow_interrupt(err)
    return nil
  end
  return n
end

local function basename(path)
  return path:match("([^/]+)$") or path
end

local function read_checkpoint(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  local state = json.decode(text)
  if type(state) ~= "table" or type(state.row) ~= "number" or type(state.counts) ~= "table" then
    usage("checkpoint " .. path .. " is not readable; delete it to start over")
  end
  return state
end

-- Written to a temporary file and renamed: a crash leaves the old checkpoint or the new
-- one, never half of one.
local function save_checkpoint(path, state)
  local tmp = path .. ".tmp"
  local f = io.open(tmp, "wb")
  if not f then return false end
  f:write(jsonl.encode(state), "\n")
  f:close()
  return os.rename(tmp, path)
end

local function field_list(map)
  local slugs = {}
  for k in pairs(map) do slugs[#slugs + 1] = k end
  table.sort(slugs)
  local out = {}
  for i, slug in ipairs(slugs) do out[i] = { slug = slug, value = map[slug] } end
  return out
end

local function classify(err)
  rethrow_interrupt(err)
  if helpers.is_fatal(err) then return "fatal", err end
  return "failed", tostring(err)
end

-- Systeme.io: one create per row; a taken email is already there (or, with --update,
-- is updated). Tags named in the row are added either way.
local function systeme_row_handler(sys, o)
  local update = o.update and not o["dry-run"]
  return function(row)
    local c = helpers.unflatten_contact(row)
    if not c.email then return "failed", "no email" end
    if update then
      local contact, created = sys:upsert_contact{ email = c.email, locale = c.locale, fields = c.fields,
        tags = #c.tags > 0 and c.tags or nil }
      if not contact then return classify(created) end
      return created and "created" or "updated"
    end
    local body = { email = c.email, locale = c.locale }
    local fields = field_list(c.fields)
    if #fields > 0 then body.fields = fields end
    local contact, err = sys.contacts:create(body)
    local outcome = "created"
    if not contact then
      if not helpers.email_taken(err) then return classify(err) end
      outcome = "existing"
    end
    if #c.tags > 0 and not o["dry-run"] then
      local report, terr = sys:tag_contacts({ c.email }, c.tags)
      if terr then return classify(terr) end
      if #report.failed > 0 then return "failed", "tags: " .. report.failed[1].reason end
    end
    return outcome
  end
end

local function subscribeflow_body(row)
  local out = { email = row.email ~= "" and row.email or nil }
  if type(row.status) == "string" and row.status ~= "" then out.status = row.status end
  local metadata = row.metadata
  if type(metadata) == "string" and metadata ~= "" then metadata = json.decode(metadata) end
  metadata = type(metadata) == "table" and shallow_copy(metadata) or {}
  local tags = row.tags
  if type(tags) == "string" then
    tags = tags:find("^%s*%[") and json.decode(tags) or helpers.split_names(tags)
  end
  local slugs = {}
  for _, t in ipairs(type(tags) == "table" and tags or {}) do
    slugs[#slugs + 1] = type(t) == "table" and t.slug or t
  end
  local SKIP = { email = true, status = true, metadata = true, tags = true, id = true, created_at = true,
    updated_at = true }
  for k, v in pairs(row) do
    if type(k) == "string" and not SKIP[k] and type(v) ~= "table" and v ~= "" and v ~= json.null then
      metadata[k] = v
    end
  end
  if next(metadata) ~= nil then out.metadata = metadata end
  if #slugs > 0 then out.tags = json.array(slugs) end
  return out
end

-- SubscribeFlow: the Idempotency-Key is made from the file, the row number and the
-- row's canonical body, so a row re-sent by a resumed run replays instead of duplicating.
local function subscribeflow_row_handler(sf, o)
  local file = basename(o.file)
  return function(row, n)
    local body = subscribeflow_body(row)
    if not body.email then return "failed", "no email" end
    local key = "audience-import-" .. core.sha256_hex(file .. "\n" .. n .. "\n" .. jsonl.encode(body)):sub(1, 40)
    if o.update and not o["dry-run"] then
      local s, created = sf:upsert_subscriber(body, { idempotency_key = key })
      if not s then return classify(created) end
      return created and "created" or "updated"
    end
    local s, replayed_or_err = helpers.create_subscriber(sf, body, key)
    -- A replay answers a row an earlier run sent: it was there before this run, as a
    -- Systeme.io row whose email is taken is.
    if s then return replayed_or_err and "existing" or "created" end
    local err = replayed_or_err
    if Error.is(err) and err.kind == "conflict" then return "existing" end
    return classify(err)
  end
end

local function import_summary(ctx, o, state, how)
  local c = state.counts
  local rows = c.created + c.existing + c.updated + c.failed
  if o.json then
    emit_json(ctx, { file = o.file, rows = rows, created = c.created, existing = c.existing, updated = c.updated,
      failed = c.failed, last_row = state.row, status = how })
  end
  ctx.err:write(("import %s: %s after row %d: %d created, %d existing, %d updated, %d failed\n")
    :format(o.file, how, state.row, c.created, c.existing, c.updated, c.failed))
end

local MAX_SHOWN_FAILURES = 100

local function do_import(ctx, o, client, provider, list)
  if not o.file then usage("import needs --file FILE") end
  local format = format_of(o, o.file, "csv")
  local dry = o["dry-run"]
  local cp_path = o.checkpoint or (o.file .. ".checkpoint")
  local state = { file = basename(o.file), row = 0, counts = { created = 0, existing = 0, updated = 0, failed = 0 } }
  if not dry then
    local saved = read_checkpoint(cp_path)
    if saved and not o.resume then
      usage(("%s exists (an earlier run stopped after row %d): pass --resume to go on from there, "
        .. "or delete it to start over"):format(cp_path, saved.row))
    elseif saved then
      if saved.file ~= state.file then
        usage(cp_path .. " belongs to " .. tostring(saved.file) .. ", not " .. o.file)
      end
      state = saved
      for _, k in ipairs{ "created", "existing", "updated", "failed" } do state.counts[k] = state.counts[k] or 0 end
    elseif o.resume then
      ctx.err:write("no checkpoint at ", cp_path, ": starting at the first row\n")
    end
  end
  local rows = open_rows(o.file, format)
  local total = count_rows(o.file, format)
  local progress = Progress.new(ctx, "import", total and math.max(0, total - state.row))
  local shown = 0
  local function failed(n, reason)
    state.counts.failed = state.counts.failed + 1
    shown = shown + 1
    if shown <= MAX_SHOWN_FAILURES then
      progress:log(("row %s: %s"):format(n, reason))
    elseif shown == MAX_SHOWN_FAILURES + 1 then
      progress:log("(more failed rows are not shown; the summary counts them)")
    end
  end
  local function done_through(n)
    state.row = n
    if not dry then save_checkpoint(cp_path, state) end
  end

  local fatal
  local loop
  if provider == "creamailer" then
    local update = o.update == true
    loop = function()
      local batch, emails, last = {}, {}, nil
      local function flush()
        if #batch == 0 then return true end
        local report, err = client.subscribers:import(list, batch, { update_existing = update })
        if err then
          rethrow_interrupt(err)
          fatal = err
          return false
        end
        state.counts.created = state.counts.created + report.added
        state.counts.updated = state.counts.updated + report.updated
        for _, f in ipairs(report.failed) do
          local reason = tostring(f.reason)
          if not update and reason:lower():find("already", 1, true) then
            state.counts.existing = state.counts.existing + 1
          else
            failed(emails[tostring(f.email):lower()] or "?", tostring(f.email) .. ": " .. reason)
          end
        end
        done_through(last)
        progress:add(#batch)
        batch, emails = {}, {}
        return true
      end
      local n = 0
      for row in rows do
        n = n + 1
        if n > state.row then
          local entry = helpers.subscriber_entry(row)
          batch[#batch + 1] = entry
          last = n
          if type(entry.email) == "string" then emails[entry.email:lower()] = n end
          if #batch >= 500 and not flush() then return end
        end
      end
      flush()
    end
  else
    local handle = provider == "systeme" and systeme_row_handler(client, o) or subscribeflow_row_handler(client, o)
    loop = function()
      local n = 0
      for row in rows do
        n = n + 1
        if n > state.row then
          local outcome, detail = handle(row, n)
          if outcome == "fatal" then
            fatal = detail
            return
          elseif outcome == "failed" then
            failed(n, detail)
          else
            state.counts[outcome] = state.counts[outcome] + 1
          end
          done_through(n)
          progress:add(1)
        end
      end
    end
  end

  local ok, err = pcall(loop)
  progress:finish()
  if not ok then
    if is_interrupt(err) then
      if not dry then save_checkpoint(cp_path, state) end
      import_summary(ctx, o, state, "interrupted")
      ctx.err:write("resume with the same command and --resume\n")
      return EXIT.interrupted
    end
    if type(err) == "string" and err:find("^audience%.read_") then
      if not dry then save_checkpoint(cp_path, state) end
      ctx.err:write("audience: ", err, "\n")
      import_summary(ctx, o, state, "stopped")
      return EXIT.usage
    end
    error(err, 0)
  end
  if fatal then
    if not dry then save_checkpoint(cp_path, state) end
    ctx.err:write("audience: ", tostring(fatal), "\n")
    import_summary(ctx, o, state, "stopped")
    ctx.err:write("fix the cause, then resume with the same command and --resume\n")
    return EXIT.api
  end
  if not dry then os.remove(cp_path) end
  import_summary(ctx, o, state, dry and "dry run, nothing sent" or "done")
  return state.counts.failed > 0 and EXIT.partial or EXIT.ok
end

-- ===================================================================  tag, untag, sync

-- Emails from positionals, or from a file: a CSV with an "email" column, or a plain
-- list with one address per line (no header).
local function email_source(o, positional)
  if not o.file then
    if #positional == 0 then usage("give the emails as arguments or --file FILE") end
    return positional, #positional
  end
  local format = format_of(o, o.file, "csv")
  if format == "jsonl" then
    local rows = open_rows(o.file, "jsonl")
    return function()
      local row = rows()
      return row and row.email
    end
  end
  local rows, msg = audience.read_csv(o.file, { header = false })
  if not rows then usage("cannot read --file: " .. tostring(msg)) end
  local column, pending
  local first = rows()
  if first then
    for i, cell in ipairs(first) do
      if cell:lower() == "email" then column = i end
    end
    if not column then column, pending = 1, first[1] end
  end
  return function()
    if pending then
      local e = pending
      pending = nil
      return e
    end
    local cells = first and rows()
    return cells and cells[column]
  end
end

-- The items of a list or iterator, counted on the progress display as they are taken.
local function ticking(items, progress)
  local i = 0
  return function()
    local item
    if type(items) == "table" then
      i = i + 1
      item = items[i]
    else
      item = items()
    end
    if item ~= nil then progress:add(1) end
    return item
  end
end

local function do_tag(ctx, o, client, adding, positional)
  if #o.tag == 0 then usage((adding and "tag" or "untag") .. " needs --tag NAME") end
  local emails = email_source(o, positional)
  if o["dry-run"] then
    local list = {}
    if type(emails) == "table" then list = emails else for e in emails do list[#list + 1] = e end end
    local plan = { dry_run = true, action = adding and "tag" or "untag", tags = o.tag, emails = list }
    if o.json then emit_json(ctx, plan) else
      ctx.out:write(("DRY RUN %s %s: %d contacts: %s\n"):format(plan.action, table.concat(o.tag, ", "), #list,
        table.concat(list, ", ")))
    end
    return EXIT.ok
  end
  local progress = Progress.new(ctx, adding and "tag" or "untag", type(emails) == "table" and #emails or nil)
  local report, err
  if adding then
    report, err = client:tag_contacts(ticking(emails, progress), o.tag)
  else
    report, err = client:untag_contacts(ticking(emails, progress), o.tag)
  end
  progress:finish()
  if err then rethrow_interrupt(err) end
  for _, f in ipairs(report.failed) do ctx.err:write(("failed: %s: %s\n"):format(tostring(f.email), f.reason)) end
  for _, e in ipairs(report.not_found) do ctx.err:write("not found: ", e, "\n") end
  if o.json then
    emit_json(ctx, { done = report.done, failed = report.failed, not_found = report.not_found })
  else
    ctx.out:write(("%s: %d done, %d not found, %d failed\n"):format(adding and "tag" or "untag", report.done,
      #report.not_found, #report.failed))
  end
  if err then return api_failure(ctx, err) end
  return (#report.failed > 0 or #report.not_found > 0) and EXIT.partial or EXIT.ok
end

local function do_sync(ctx, o, client, list)
  if not o.file then usage("sync needs --file FILE") end
  local format = format_of(o, o.file, "csv")
  if o["dry-run"] then
    local msg = ("DRY RUN sync %s into list %s: reads the list, then imports the new%s rows\n")
      :format(o.file, list, o["no-update"] and "" or " and changed")
    ctx.out:write(msg)
    return EXIT.ok
  end
  local rows = open_rows(o.file, format)
  local progress = Progress.new(ctx, "sync", count_rows(o.file, format))
  local source = ticking(function()
    local row = rows()
    return row and helpers.subscriber_entry(row)
  end, progress)
  local report, err = client:sync_list(list, source, { key = o.key, update = not o["no-update"] })
  progress:finish()
  if not report then
    rethrow_interrupt(err)
    return api_failure(ctx, err)
  end
  for _, f in ipairs(report.failed) do ctx.err:write(("failed: %s: %s\n"):format(tostring(f.email), f.reason)) end
  if o.json then
    emit_json(ctx, { added = report.added, updated = report.updated, unchanged = report.unchanged,
      failed = report.failed })
  else
    ctx.out:write(("sync: %d added, %d updated, %d unchanged, %d failed\n"):format(report.added, report.updated,
      report.unchanged, #report.failed))
  end
  if err then
    rethrow_interrupt(err)
    return api_failure(ctx, err)
  end
  return #report.failed > 0 and EXIT.partial or EXIT.ok
end

-- ===================================================================  main

local function dispatch(ctx, argv)
  local o = M.parse(argv)
  local pos = o.positional
  local provider, resource_name, action = pos[1], pos[2], pos[3]

  if not provider then
    if o.help then
      ctx.out:write(TOP_HELP)
      return EXIT.ok
    end
    usage("which provider? systeme, creamailer or subscribeflow")
  end
  local resources = RESOURCES[provider]
  if not resources then usage("unknown provider '" .. provider .. "' (systeme, creamailer or subscribeflow)") end
  if not resource_name then
    if o.help then
      ctx.out:write(provider_help(provider))
      return EXIT.ok
    end
    usage("which resource? " .. table.concat(RESOURCE_ORDER[provider], ", "))
  end
  local spec = resources[resource_name]
  if not spec then
    usage(("unknown resource '%s' for %s (%s)"):format(resource_name, provider,
      table.concat(RESOURCE_ORDER[provider], ", ")))
  end
  if o.help then
    ctx.out:write(resource_help(provider, resource_name))
    return EXIT.ok
  end
  if not action then usage("which action? " .. spec.actions) end
  if not has_action(spec, action) then
    usage(("%s %s has no action '%s' (%s)"):format(provider, resource_name, action, spec.actions))
  end
  for name in pairs(o.given) do
    if not COMMON[name] and not ACTION_OPTIONS[action][name] then
      usage(("option --%s does not apply to %s"):format(name, action))
    end
  end
  local list
  if spec.scoped then
    list = o.list
    if not list then usage(provider .. " " .. resource_name .. " needs --list ID") end
  elseif o.list then
    usage("--list applies to creamailer subscribers only")
  end

  local args = {}
  for i = 4, #pos do args[#args + 1] = pos[i] end
  local id
  if action == "get" or action == "update" or action == "delete" then
    id = args[1]
    if not id or args[2] then usage(action .. " takes exactly one " .. (spec.id or "ID")) end
  elseif action ~= "tag" and action ~= "untag" and #args > 0 then
    usage(action .. " takes no argument '" .. args[1] .. "'")
  end

  local client = make_client(ctx, provider, o)
  if o["dry-run"] then make_dry(ctx, o, client) end
  local r = client[resource_name]

  if action == "list" then return do_list(ctx, o, r, spec, list)
  elseif action == "get" then return do_get(ctx, o, r, spec, list, id)
  elseif action == "create" or action == "update" or action == "delete" then
    return do_write(ctx, o, r, spec, list, action, id)
  elseif action == "export" then return do_export(ctx, o, r, spec, list)
  elseif action == "import" then return do_import(ctx, o, client, provider, list)
  elseif action == "tag" or action == "untag" then return do_tag(ctx, o, client, action == "tag", args)
  end
  return do_sync(ctx, o, client, list)
end

local function isatty(fd)
  local ok = os.execute("test -t " .. fd)
  return ok == true or ok == 0
end

--- Runs the command; returns the exit code. `ctx` (for tests) may give out, err,
--- getenv, progress ("bar", "plain" or "none") and stdout_is_tty.
function M.run(argv, ctx)
  ctx = ctx or {}
  ctx.out = ctx.out or io.stdout
  ctx.err = ctx.err or io.stderr
  ctx.getenv = ctx.getenv or os.getenv
  for _, a in ipairs(argv) do
    if a == "--no-progress" then ctx.progress = "none" end
  end
  ctx.progress = ctx.progress or (isatty(2) and "bar" or "plain")
  ctx.stdout_is_tty = ctx.stdout_is_tty or function() return isatty(1) end

  local ok, result = pcall(dispatch, ctx, argv)
  if ok then return result end
  local e = result
  if is_interrupt(e) then
    ctx.err:write("\naudience: interrupted\n")
    return EXIT.interrupted
  end
  if type(e) == "table" and e.usage then
    ctx.err:write("audience: ", e.usage, "\n(audience --help for usage)\n")
    return EXIT.usage
  end
  if Error.is(e) then return api_failure(ctx, e) end
  -- The module raises "audience...: bad argument/option" for misuse, which here can
  -- only come from what was typed (--param, --data).
  if type(e) == "string" and e:find("^audience") then
    ctx.err:write(e, "\n")
    return EXIT.usage
  end
  ctx.err:write("audience: internal error: ", tostring(e), "\n")
  return EXIT.failure
end

--- bin/audience: runs the command with the process's arguments and exits with its code.
function M.main(argv)
  local args = {}
  for i = 1, #(argv or {}) do args[i] = argv[i] end
  local code = M.run(args)
  io.stdout:flush()
  io.stderr:flush()
  os.exit(code)
end

return M
