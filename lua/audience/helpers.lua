-- Conveniences built only from the public resource methods, and what every provider's
-- helpers (lua/audience/providers/NAME/helpers.lua) share: argument checks, finding an
-- item by email, lists of names in one cell, and exports to CSV / JSON lines.
--
-- Conventions, the same for every helper:
--   * a wrong argument raises, naming it;
--   * an API failure returns nil, err (an audience.Error);
--   * find_* return the item, `false` when nothing has that email, or nil, err;
--   * bulk helpers return a report that accounts for every input, plus the error that
--     stopped them early (if one did): report, err.
local json = require "audience.json"
local jsonl = require "audience.jsonl"
local csv = require "audience.csv"
local Error = require "audience.error"
local options = require "audience.options"

local M = {}

local function bad(fname, n, name, expected, v)
  error(("audience: bad argument #%d to '%s' (%s: %s expected, got %s)")
    :format(n, fname, name, expected, options.describe(v)), 0)
end

local function check_email(fname, n, name, v)
  if type(v) ~= "string" or not v:find("%S") then bad(fname, n, name, "non-empty string", v) end
end

local function check_names(fname, n, name, v)
  if type(v) ~= "table" then bad(fname, n, name, "list of non-empty strings", v) end
  for i, s in ipairs(v) do
    if type(s) ~= "string" or s == "" then
      bad(fname, n, name .. "[" .. i .. "]", "non-empty string", s)
    end
  end
end

local function same_email(a, b)
  return type(a) == "string" and type(b) == "string" and a:lower() == b:lower()
end

local function isnull(v) return v == nil or v == json.null end

-- Scalars as the APIs give them back (strings mostly), so "5" and 5 compare equal.
local function text(v)
  if isnull(v) then return "" end
  if type(v) == "number" and v == math.floor(v) then return ("%d"):format(v) end
  return tostring(v)
end

-- A list or an iterator function, as one iterator.
local function items_of(fname, n, name, source)
  if type(source) == "function" then return source end
  if type(source) ~= "table" then bad(fname, n, name, "list or iterator function", source) end
  local i = 0
  return function()
    i = i + 1
    return source[i]
  end
end

-- Errors that say something about one row (this email, this body), after which the
-- next row may well succeed. Anything else (auth, network, quota, server) would fail
-- every row the same way, so bulk helpers stop on it.
local ROW_KINDS = { validation = true, not_found = true, conflict = true }

--- Whether `err` stops a bulk operation (as opposed to failing one row).
function M.is_fatal(err)
  return not (Error.is(err) and ROW_KINDS[err.kind])
end

-- Walks a page iterator inside pcall: an iterator raises its audience.Error, which a
-- helper returns; anything else (a bug, "interrupted!") keeps going up.
local function catch(fn)
  local ok, err = pcall(fn)
  if ok then return true end
  if Error.is(err) then return nil, err end
  error(err, 0)
end

-- One page of `resource:list{ email = }`, searched for the exact address: the filter
-- may match more loosely (parts of addresses, other case).
function M.find_by_email(fname, resource, email)
  check_email(fname, 1, "email", email)
  local page, err = resource:list{ email = email }
  if not page then return nil, err end
  for _, item in ipairs(page.items) do
    if same_email(item.email, email) then return item end
  end
  return false
end

-- ---------------------------------------------------- cells

-- Names (of tags, say) in one cell, joined with ";" (a ";" or "\" inside a name is
-- escaped with "\").
function M.join_names(names)
  local out = {}
  for i, n in ipairs(names) do out[i] = (n:gsub("\\", "\\\\"):gsub(";", "\\;")) end
  return table.concat(out, ";")
end

function M.split_names(s)
  local out, cur, i = {}, {}, 1
  while i <= #s do
    local c = s:sub(i, i)
    if c == "\\" and i < #s then
      cur[#cur + 1] = s:sub(i + 1, i + 1)
      i = i + 2
    else
      if c == ";" then
        out[#out + 1] = table.concat(cur)
        cur = {}
      else
        cur[#cur + 1] = c
      end
      i = i + 1
    end
  end
  out[#out + 1] = table.concat(cur)
  local names = {}
  for _, n in ipairs(out) do
    n = n:match("^%s*(.-)%s*$")
    if n ~= "" then names[#names + 1] = n end
  end
  return names
end

-- An empty cell is an absent value.
local function present(v)
  if isnull(v) or v == "" then return nil end
  return v
end

-- A cell holding a JSON object or list; nil when it holds anything else.
local function decode_cell(v)
  if type(v) ~= "string" then return v end
  local t = json.decode(v)
  if type(t) == "table" then return t end
  return nil
end


M.bad, M.check_email, M.check_names, M.same_email = bad, check_email, check_names, same_email
M.isnull, M.text, M.items_of, M.catch = isnull, text, items_of, catch
M.present, M.decode_cell = present, decode_cell

-- =====================================================================  exports

local function default_columns(row)
  local keys = {}
  for k in pairs(row) do
    if type(k) == "string" and k ~= "id" and k ~= "email" then keys[#keys + 1] = k end
  end
  table.sort(keys)
  if row.email ~= nil then table.insert(keys, 1, "email") end
  if row.id ~= nil then table.insert(keys, 1, "id") end
  return keys
end
M.default_columns = default_columns

--- audience.export(source, file, format [, opts]) -> count | nil, err, count
--- source: an iterator (e.g. sys.contacts:each{...}) or a list; file: a path (created or
--- truncated, closed at the end) or an open handle (flushed, left open); format: "csv" or
--- "jsonl". opts: columns (list of names; default the first item's keys, sorted, id and
--- email first), transform (function(item) -> row), header (CSV, default true),
--- line_end (CSV, default "\r\n"). err is the iterator's audience.Error or an I/O message.
function M.export(source, file, format, opts)
  local fname = "export"
  local next_item = items_of(fname, 1, "source", source)
  if type(file) ~= "string" and io.type(file) ~= "file" then
    bad(fname, 2, "file", "path or open file handle", file)
  end
  if format ~= "csv" and format ~= "jsonl" then bad(fname, 3, "format", "'csv' or 'jsonl'", format) end
  if opts ~= nil and type(opts) ~= "table" then bad(fname, 4, "opts", "table or nil", opts) end
  opts = opts or {}
  options.check_call_options(fname, opts, { columns = "table", transform = "function", header = "boolean",
    line_end = "any" })
  if opts.columns then check_names(fname, 4, "opts.columns", opts.columns) end
  if opts.line_end ~= nil and opts.line_end ~= "\r\n" and opts.line_end ~= "\n" then
    bad(fname, 4, "opts.line_end", "\"\\r\\n\" or \"\\n\"", opts.line_end)
  end

  local out, owned = file, false
  if type(file) == "string" then
    local f, msg = io.open(file, "wb")
    if not f then return nil, msg, 0 end
    out, owned = f, true
  end
  local columns, header = opts.columns, opts.header ~= false
  local eol = opts.line_end or "\r\n"
  local count = 0
  local io_failure = {}
  local function write(s)
    local ok, msg = out:write(s)
    if not ok then io_failure.message = msg; error(io_failure) end
  end
  local ok, err = pcall(function()
    if format == "csv" and columns and header then write(csv.format_row(columns, #columns, eol)) end
    for item in next_item do
      local row = opts.transform and opts.transform(item) or item
      if format == "csv" then
        if not columns then
          columns = default_columns(row)
          if header then write(csv.format_row(columns, #columns, eol)) end
        end
        local values = {}
        for i, c in ipairs(columns) do values[i] = row[c] end
        write(csv.format_row(values, #columns, eol))
      else
        if columns then
          local picked = {}
          for _, c in ipairs(columns) do picked[c] = row[c] end
          row = picked
        end
        write(jsonl.encode(row) .. "\n")
      end
      count = count + 1
    end
  end)
  if owned then out:close() else out:flush() end
  if ok then return count end
  if err == io_failure then return nil, io_failure.message, count end
  if Error.is(err) then return nil, err, count end
  error(err, 0)
end


-- =====================================================================  attach

--- Puts the provider's helper methods (its description's `helpers`) on a new client.
function M.attach(client)
  for name, fn in pairs(client._provider.helpers or {}) do client[name] = fn end
  return client
end

return M
