-- JSON for audience: one lua-cjson instance owned by the module.
--
-- Debian's lua-cjson 2.1.0 cannot encode an empty array (an empty table is always `{}`)
-- and prints numbers with at most 14 significant digits, which silently corrupts
-- integers from 10^14 up. Both are fixed the same way: such values are swapped for
-- unique placeholder strings before encoding and the placeholders are replaced by the
-- exact JSON text afterwards. The walk copies only the tables it has to change, so the
-- caller's table is never modified.
local cjson = require("cjson").new()
local core = require "audience.core"

cjson.encode_sparse_array(false)
cjson.encode_number_precision(14)
-- A server answering with deeply nested garbage must not exhaust the C stack.
cjson.decode_max_depth(200)
cjson.encode_max_depth(200)

local M = {}

M.null = cjson.null

local ARRAY = setmetatable({}, { __mode = "k" })

--- Marks `t` as a JSON array, so that an empty `t` is sent as `[]` and not `{}`.
function M.array(t)
  if t == nil then t = {} end
  if type(t) ~= "table" then
    error("bad argument #1 to 'array' (table expected, got " .. type(t) .. ")", 2)
  end
  ARRAY[t] = true
  return t
end

function M.is_array(t)
  return ARRAY[t] == true
end

local MARK = "\1audience-" .. core.random_hex(8) .. "-"
-- cjson escapes \1 as \u0001; this is how the placeholder reads once encoded.
local MARK_ENCODED = '"' .. MARK:gsub("\1", "\\u0001"):gsub("%-", "%%-") .. "(%d+)\""

local EXACT_LIMIT = 1e14
local tointeger = math.tointeger or function(n)
  if n == math.floor(n) then return n end
end

local function integer_text(n)
  if n ~= n or n == math.huge or n == -math.huge then return nil end
  if math.abs(n) < EXACT_LIMIT then return nil end
  local i = tointeger(n)
  if i == nil then return nil end
  return string.format("%d", i)
end

-- Returns the value to encode in place of `v` (the same object when nothing changes).
local function substitute(v, fragments, depth)
  local tv = type(v)
  if tv == "number" then
    local text = integer_text(v)
    if text then
      fragments[#fragments + 1] = text
      return MARK .. #fragments
    end
    return v
  end
  if tv ~= "table" or depth > 200 then return v end
  if next(v) == nil then
    if ARRAY[v] then
      fragments[#fragments + 1] = "[]"
      return MARK .. #fragments
    end
    return v
  end
  local copy
  for k, item in pairs(v) do
    local new = substitute(item, fragments, depth + 1)
    if new ~= item then
      if not copy then
        copy = {}
        for k2, v2 in pairs(v) do copy[k2] = v2 end
      end
      copy[k] = new
    end
  end
  return copy or v
end

--- Encodes `v`; returns the JSON text, or nil and a message.
function M.encode(v)
  local fragments = {}
  local value = substitute(v, fragments, 0)
  local ok, text = pcall(cjson.encode, value)
  if not ok then return nil, tostring(text) end
  if #fragments > 0 then
    text = text:gsub(MARK_ENCODED, function(i) return fragments[tonumber(i)] end)
  end
  return text
end

--- Decodes `text`; returns the value, or nil and a message. Under Lua 5.4 integral
--- numbers come back as integers (cjson would give 5.0 for an id of 5).
function M.decode(text)
  local ok, value = pcall(cjson.decode, text)
  if not ok then return nil, tostring(value) end
  return core.integerize(value)
end

return M
