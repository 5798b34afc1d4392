-- JSON for audience. Decoding is the core's own parser (src/json.c): integers stay
-- integers under Lua 5.4, null is audience.null, arrays carry a metatable that marks
-- them as audience.array would, and LC_NUMERIC plays no part. Encoding is one lua-cjson instance owned
-- by the module.
--
-- Debian's lua-cjson 2.1.0 cannot encode an empty array (an empty table is always `{}`),
-- prints numbers with at most 14 significant digits, which silently corrupts integers
-- from 10^14 up, and writes the decimal point of the locale (1.5 as `1,5` once a
-- program sets LC_NUMERIC to de_DE). All three are fixed the same way: such values
-- (empty arrays, big integers, every number with a fraction) are swapped for unique
-- placeholder strings before encoding and the placeholders are replaced by the exact
-- JSON text afterwards. The walk copies only the tables it has to change, so the
-- caller's table is never modified.
local cjson = require("cjson").new()
local core = require "audience.core"

cjson.encode_sparse_array(false)
cjson.encode_number_precision(14)
cjson.encode_max_depth(200)

local M = {}

M.null = cjson.null

-- Tables marked by audience.array (a user's table may have a metatable of its own),
-- and the metatable the decoder gives every array it builds.
local ARRAY = setmetatable({}, { __mode = "k" })
local DECODED_ARRAY = { __name = "audience.array" }

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
  return ARRAY[t] == true or getmetatable(t) == DECODED_ARRAY
end

local MARK = "\1audience-" .. core.random_hex(8) .. "-"
-- cjson escapes \1 as \u0001; this is how the placeholder reads once encoded.
local MARK_ENCODED = '"' .. MARK:gsub("\1", "\\u0001"):gsub("%-", "%%-") .. "(%d+)\""

local EXACT_LIMIT = 1e14
local tointeger = math.tointeger or function(n)
  if n == math.floor(n) then return n end
end

local json_number = core.json_number

-- The text of a number cjson would not write exactly, or in a locale-proof way: an
-- integer of 15 digits or more, or any number with a fraction. nil when cjson's
-- own text is right (integers below 10^14 have no decimal point to get wrong).
local function number_text(n)
  if n ~= n or n == math.huge or n == -math.huge then return nil end
  local i = tointeger(n)
  -- From 2^63 on "%d" has no integer to print (LuaJIT would print garbage).
  if i == nil or math.abs(n) >= 2 ^ 63 then return json_number(n) end
  if math.abs(n) < EXACT_LIMIT then return nil end
  return string.format("%d", i)
end

local MAX_DEPTH = 200

-- Where in the value a problem is, e.g. "fields[2].value" ("the value itself" at the top).
local function path_of(keys, n)
  if n == 0 then return "the value itself" end
  local out = {}
  for i = 1, n do
    local k = keys[i]
    if type(k) == "string" and k:find("^[%a_][%w_]*$") then
      out[#out + 1] = (i > 1 and "." or "") .. k
    elseif type(k) == "number" then
      out[#out + 1] = "[" .. (tointeger(k) or k) .. "]"
    else
      out[#out + 1] = "[" .. ("%q"):format(tostring(k)) .. "]"
    end
  end
  local path = table.concat(out)
  if #path > 200 then path = path:sub(1, 200) .. "..." end
  return path
end

-- A refusal raised from inside the walk; encode() turns it into (nil, message).
local Refusal = {}

local function refuse(keys, n, what, where)
  error(setmetatable({ message = what .. (where or " at ") .. path_of(keys, n) }, Refusal), 0)
end

local function describe_number(v)
  if v ~= v then return "NaN" end
  return v > 0 and "infinity" or "-infinity"
end

-- Returns the value to encode in place of `v` (the same object when nothing changes).
-- `keys[1..depth]` is the path to `v`; `open` holds the tables being walked, so a table
-- that contains itself is reported instead of overflowing the stack. Everything JSON
-- cannot hold is refused here, naming where it is.
local function substitute(v, fragments, keys, depth, open)
  local tv = type(v)
  if tv == "number" then
    if v ~= v or v == math.huge or v == -math.huge then
      refuse(keys, depth, describe_number(v) .. " (not a JSON number)")
    end
    local text = number_text(v)
    if text then
      fragments[#fragments + 1] = text
      return MARK .. #fragments
    end
    return v
  end
  if tv == "string" or tv == "boolean" or v == M.null then return v end
  if tv ~= "table" then refuse(keys, depth, "a " .. tv .. " (not a JSON value)") end
  if open[v] then refuse(keys, depth, "a cycle (a table that contains itself)") end
  if depth >= MAX_DEPTH then refuse(keys, depth, ("nesting deeper than %d levels"):format(MAX_DEPTH)) end
  if next(v) == nil then
    if ARRAY[v] or getmetatable(v) == DECODED_ARRAY then
      fragments[#fragments + 1] = "[]"
      return MARK .. #fragments
    end
    return v
  end
  open[v] = true
  local copy
  for k, item in pairs(v) do
    local tk = type(k)
    if tk ~= "string" and tk ~= "number" then
      refuse(keys, depth, "a key of type " .. tk .. " (JSON keys are strings)", " in ")
    end
    keys[depth + 1] = k
    local new = substitute(item, fragments, keys, depth + 1, open)
    if new ~= item then
      if not copy then
        copy = {}
        for k2, v2 in pairs(v) do copy[k2] = v2 end
      end
      copy[k] = new
    end
  end
  keys[depth + 1] = nil
  open[v] = nil
  return copy or v
end

-- Sorted keys: the same value as cjson would write, with every object's keys in order,
-- so that equal values are equal texts (an export diffed night after night changes only
-- where the data did; a body rebuilt by a resumed import matches its Idempotency-Key).
-- `v` has been through substitute(): special numbers and empty arrays are placeholders.
local function write_sorted(v, out)
  if type(v) ~= "table" then
    out[#out + 1] = cjson.encode(v)
    return
  end
  local count = 0
  for _ in pairs(v) do count = count + 1 end
  if ARRAY[v] or getmetatable(v) == DECODED_ARRAY or (count > 0 and count == #v) then
    out[#out + 1] = "["
    for i = 1, #v do
      if i > 1 then out[#out + 1] = "," end
      write_sorted(v[i], out)
    end
    out[#out + 1] = "]"
    return
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  out[#out + 1] = "{"
  for i, k in ipairs(keys) do
    if i > 1 then out[#out + 1] = "," end
    out[#out + 1] = cjson.encode(k)
    out[#out + 1] = ":"
    local item = v[k]
    if item == nil then item = v[tonumber(k)] end
    write_sorted(item, out)
  end
  out[#out + 1] = "}"
end

local function sorted_encode(value)
  local out = {}
  write_sorted(value, out)
  return table.concat(out)
end

--- Encodes `v`; returns the JSON text, or nil and a message that says what cannot be
--- sent and where (NaN, infinity, a function, a cycle...). `opts.sorted`: object keys
--- in sorted order (JSON lines, signatures of rebuilt bodies).
function M.encode(v, opts)
  local fragments = {}
  local ok, value = pcall(substitute, v, fragments, {}, 0, {})
  if not ok then
    if getmetatable(value) == Refusal then return nil, value.message end
    error(value, 0)
  end
  local text
  ok, text = pcall(opts and opts.sorted and sorted_encode or cjson.encode, value)
  if not ok then return nil, tostring(text) end
  if #fragments > 0 then
    text = text:gsub(MARK_ENCODED, function(i) return fragments[tonumber(i)] end)
  end
  return text
end

--- Decodes `text`; returns the value, or nil and a message naming the byte where the
--- text went wrong. Numbers written without a fraction or an exponent are integers
--- under Lua 5.4; null is audience.null; every array is marked as audience.array
--- marks one, so an empty list goes back out as `[]`. At most 200 levels of nesting
--- (a server answering with deeply nested garbage must not exhaust the C stack).
M.decode = core.json_decoder{ null = M.null, array_mt = DECODED_ARRAY, max_depth = MAX_DEPTH }

return M
