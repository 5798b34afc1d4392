-- JSON lines: one JSON document per line, streamed both ways.
--
-- encode() writes object keys in sorted order. Two reasons: an export diffed night after
-- night only changes where the data did, and a request body built in another process
-- (a resumed import) comes out byte for byte the same, which is what an
-- Idempotency-Key replay check compares.
local json = require "audience.json"
local options = require "audience.options"

local M = {}

local function is_list(t, count)
  if json.is_array(t) then return true end
  return count > 0 and count == #t
end

local function encode(v, depth)
  if type(v) ~= "table" then
    local text, err = json.encode(v)
    if not text then error("audience: value cannot be written as JSON: " .. err, 0) end
    return text
  end
  if depth > 200 then error("audience: value cannot be written as JSON: nested too deep", 0) end
  local count = 0
  for _ in pairs(v) do count = count + 1 end
  local parts = {}
  if is_list(v, count) then
    for i = 1, #v do parts[i] = encode(v[i], depth + 1) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for i, k in ipairs(keys) do
    parts[i] = encode(tostring(k), depth + 1) .. ":" .. encode(v[k], depth + 1)
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

--- Compact JSON text of `v`, object keys sorted. Raises when `v` cannot be JSON.
function M.encode(v)
  return encode(v, 0)
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
