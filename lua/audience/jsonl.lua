-- JSON lines: one JSON document per line, streamed both ways.
--
-- encode() is audience.json's encoder with object keys in sorted order (see json.lua).
local json = require "audience.json"
local options = require "audience.options"

local M = {}

local SORTED = { sorted = true }

--- Compact JSON text of `v`, object keys sorted. Raises when `v` cannot be JSON.
function M.encode(v)
  local text, err = json.encode(v, SORTED)
  if not text then error("audience: value cannot be written as JSON: " .. err, 0) end
  return text
end

--- audience.read_jsonl(path_or_handle) -> iterator over (value, line). Blank lines are
--- skipped. Returns nil, message when the file cannot be opened; a line that is not JSON
--- raises an error naming the file and the line.
function M.reader(src)
  local fname = "read_jsonl"
  local f, owned, name
  if type(src) == "string" then
    local err
    f, err = io.open(src, "rb")
    if not f then return nil, err end
    owned, name = true, src
  elseif io.type(src) == "file" then
    f, owned, name = src, false, "(file handle)"
  else
    error(("audience: bad argument #1 to '%s' (source: path or open file handle expected, got %s)")
      :format(fname, options.describe(src)), 0)
  end
  local lineno, done = 0, false
  local function close()
    done = true
    if owned and io.type(f) == "file" then f:close() end
  end
  local function step()
    while not done do
      local line = f:read("*L")
      if not line then close(); return nil end
      lineno = lineno + 1
      if lineno == 1 and line:sub(1, 3) == "\239\187\191" then line = line:sub(4) end
      if line:find("%S") then
        local value, err = json.decode(line)
        if value == nil then
          close()
          error(("audience.read_jsonl: %s: line %d: invalid JSON: %s"):format(name, lineno, err), 0)
        end
        return value, lineno
      end
    end
  end
  return step, nil, nil, setmetatable({}, { __close = close })
end

return M
