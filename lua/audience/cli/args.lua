-- The command line of `audience`, read by Debian's lua-argparse: options and the values
-- given with them (--param, --data, --format, --limit...). Anything wrong in them is a
-- usage error (exit 2).
local argparse = require "argparse"
local json = require "audience.json"
local cli_errors = require "audience.cli.errors"

local usage = cli_errors.usage

local M = {}

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

-- One argparse parser knows every option; which of them an action takes is checked
-- after dispatch (check_options), so that a misplaced option is named as such instead of
-- being reported as unknown. Help texts are the command's own (cli/help.lua): they are
-- made from the same tables as dispatch.
local function new_parser()
  local p = argparse("audience"):add_help(false)
  p:argument("positional"):args("*")
  p:flag("-h --help"):target("help")
  for name in pairs(FLAGS) do
    if name ~= "help" then p:flag("--" .. name):target(name) end
  end
  for name, how in pairs(VALUES) do
    local option = p:option("--" .. name):target(name):argname("<value>")
    if how == "many" then option:count("*") end
  end
  return p
end

local parser

--- Splits argv into positionals and options. Options may come anywhere; "--" ends them.
function M.parse(argv)
  parser = parser or new_parser()
  local ok, o = parser:pparse(argv)
  -- argparse quotes option names ('--bogus'); the command's messages name them bare.
  if not ok then usage((o:gsub("'(%-[^']*)'", "%1"))) end
  o.given = {}
  for name in pairs(FLAGS) do
    if o[name] then o.given[name] = true end
  end
  for name, how in pairs(VALUES) do
    if (how == "many" and #o[name] > 0) or (how ~= "many" and o[name] ~= nil) then o.given[name] = true end
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

--- Raises a usage error for an option that `action` does not take.
function M.check_options(o, action)
  for name in pairs(o.given) do
    if not COMMON[name] and not ACTION_OPTIONS[action][name] then
      usage(("option --%s does not apply to %s"):format(name, action))
    end
  end
end

M.split_list = split_list
M.params_of = params_of
M.positive_integer = positive_integer
M.read_data = read_data
M.format_of = format_of

return M
