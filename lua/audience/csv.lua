-- CSV as RFC 4180 has it, for exports and imports of any size.
--
-- Reading streams: one physical line is read at a time, so memory stays flat however
-- many rows the file has. Only a quoted cell that spans lines is gathered across reads.
-- Writing quotes a cell only when it must (a comma, a quote, CR or LF in it), so plain
-- exports stay readable by `cut` and friends.
local json = require "audience.json"
local jsonl = require "audience.jsonl"
local input_open = require("audience.input").open
local options = require "audience.options"

local M = {}

local COMMA, QUOTE, LF, CR = 44, 34, 10, 13

local function bad(fname, n, name, expected, v)
  error(("audience: bad argument #%d to '%s' (%s: %s expected, got %s)")
    :format(n, fname, name, expected, options.describe(v)), 0)
end

--- audience.read_csv(path_or_handle [, { header = true }]) -> iterator
--- Each step gives (row, line): row is a table keyed by the header's names (or a plain
--- list with header = false), line is the physical line the record starts on.
--- Returns nil, message when the file cannot be opened. Malformed input raises an error
--- that names the file and the line.
function M.reader(src, opts)
  local fname = "read_csv"
  if opts ~= nil and type(opts) ~= "table" then bad(fname, 2, "opts", "table or nil", opts) end
  opts = opts or {}
  options.check_call_options(fname, opts, { header = "boolean" })
  local input, err = input_open(fname, src)
  if not input then return nil, err end

  local use_header = opts.header ~= false
  local names, nnames
  local function fail(at, msg) input:fail(at, msg) end
  local function readline() return input:line() end

  -- One record as a list of cells, and the line it starts on; nil at the end.
  local function record()
    local line
    repeat
      line = readline()
      if not line then return nil end
    until not (line == "\n" or line == "\r\n")   -- blank lines separate nothing: skip them
    local start = input.lineno
    local cells, n, pos = {}, 0, 1
    while true do
      if line:byte(pos) == QUOTE then
        local parts, np, p = {}, 0, pos + 1
        while true do
          local q = line:find('"', p, true)
          if not q then
            -- The cell goes on past this line: its line end is part of the value.
            np = np + 1
            parts[np] = line:sub(p)
            line = readline()
            if not line then fail(start, "unterminated quoted field (no closing quote before the end of the file)") end
            p = 1
          elseif line:byte(q + 1) == QUOTE then
            np = np + 1
            parts[np] = line:sub(p, q)
            p = q + 2
          else
            np = np + 1
            parts[np] = line:sub(p, q - 1)
            pos = q + 1
            break
          end
        end
        n = n + 1
        cells[n] = table.concat(parts)
        local c = line:byte(pos)
        if c == COMMA then
          pos = pos + 1
        elseif c == nil or c == LF or (c == CR and (line:byte(pos + 1) == LF or line:byte(pos + 1) == nil)) then
          return cells, start
        else
          fail(input.lineno, "unexpected character after a closing quote")
        end
      else
        local s = line:find("[,\n]", pos)
        if s and line:byte(s) == COMMA then
          n = n + 1
          cells[n] = line:sub(pos, s - 1)
          pos = s + 1
        else
          local e = (s or #line + 1) - 1
          if e >= pos and line:byte(e) == CR then e = e - 1 end
          n = n + 1
          cells[n] = line:sub(pos, e)
          return cells, start
        end
      end
    end
  end

  if use_header then
    local cells = record()
    if cells then
      names, nnames = cells, #cells
    else
      input:close()
    end
  end

  local function step()
    if input.done then return nil end
    local cells, start = record()
    if not cells then input:close(); return nil end
    if not use_header then return cells, start end
    if #cells > nnames then
      fail(start, ("%d fields, but the header has %d"):format(#cells, nnames))
    end
    local row = {}
    for i = 1, #cells do row[names[i]] = cells[i] end
    return row, start
  end
  return step, nil, nil, input:closer()
end

local function number_text(v)
  if v == math.floor(v) and v > -2 ^ 53 and v < 2 ^ 53 then return ("%d"):format(v) end
  return tostring(v)
end

--- The text of one cell: nil, audience.null and empty tables are empty, booleans are
--- true/false, other tables are JSON with sorted keys. (An empty list and an empty
--- object decode alike, so "[]" or "{}" would be a guess; an empty cell is not.)
function M.cell_text(v)
  local t = type(v)
  if v == nil or v == json.null then return "" end
  if t == "string" then return v end
  if t == "number" then return number_text(v) end
  if t == "table" then return next(v) == nil and "" or jsonl.encode(v) end
  return tostring(v)
end

local function quote(s)
  if s:find('[,"\r\n]') then return '"' .. s:gsub('"', '""') .. '"' end
  return s
end

--- One CSV line for `values[1..n]` (holes are empty cells), ending with `eol`.
function M.format_row(values, n, eol)
  local out = {}
  for i = 1, n or #values do out[i] = quote(M.cell_text(values[i])) end
  return table.concat(out, ",") .. (eol or "\r\n")
end

return M
