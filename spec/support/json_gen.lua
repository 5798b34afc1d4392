-- Random JSON texts for the decoder's differential spec and its fuzz seeds: a seeded
-- generator (the same seed gives the same texts on every machine) that covers what
-- the decoder must get right: every kind of value, nesting, numbers at the edges of
-- the integer and double ranges, escapes (surrogate pairs included), raw bytes of
-- every value in strings, whitespace between tokens, repeated keys.
local M = {}

local function rng(seed)
  -- Park-Miller: exact in doubles, so Lua 5.4 and LuaJIT draw the same sequence
  -- (math.random's differs between them).
  local x = seed % 2147483646 + 1
  return function(n)
    x = x * 16807 % 2147483647
    return x % n + 1
  end
end

local NUMBERS = {
  "0", "-0", "1", "-1", "7", "42", "-2147483648", "4294967296", "9007199254740991",
  "9007199254740992", "9007199254740993", "-9007199254740993", "123456789012345678",
  "9223372036854775807", "-9223372036854775808", "9223372036854775808",
  "18446744073709551615", "18446744073709551616", "123456789012345678901234567890",
  "0.5", "-0.0", "1.5", "0.1", "0.30000000000000004", "3.141592653589793", "1e2", "1E+2",
  "1e-2", "2.5E-3", "1e22", "1e23", "1.7976931348623157e308", "2.2250738585072014e-308",
  "4.9e-324", "5e-324", "1e-400", "1e400", "-1e400", "123456789.123456789",
  "0.000000000000000000000000000001", "100000000000000000000000", "1.0", "10.01",
  "8.98846567431158e307", "0.1e1", "12345678901234567890e-10",
}

local WS = { "", "", "", " ", "\n", "\t", "\r\n", "  " }

local function string_body(r)
  local parts = {}
  for _ = 1, r(12) - 1 do
    local k = r(20)
    if k <= 8 then
      parts[#parts + 1] = string.char(96 + r(26))
    elseif k == 9 then
      parts[#parts + 1] = ({ '\\"', "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t" })[r(8)]
    elseif k == 10 then
      parts[#parts + 1] = ("\\u%04x"):format(r(0xD7FF) - 1)
    elseif k == 11 then
      parts[#parts + 1] = ("\\u%04X\\u%04x"):format(0xD7FF + r(0x400), 0xDBFF + r(0x400))
    elseif k == 12 then
      parts[#parts + 1] = ("\\u%04x"):format(0xDFFF + r(0x2000))
    elseif k == 13 then
      -- A raw byte, any but the quote, the backslash and NUL: invalid UTF-8 and
      -- control characters go through as they are.
      local b = r(256) - 1
      if b == 0 or b == 34 or b == 92 then b = 120 end
      parts[#parts + 1] = string.char(b)
    elseif k == 14 then
      parts[#parts + 1] = "é€😀"
    else
      parts[#parts + 1] = ("abc XYZ 0123 ._-"):sub(r(16), r(16))
    end
  end
  return table.concat(parts)
end

local KEYS = { "id", "email", "name", "tags", "fields", "value", "a", "b", "", "items" }

-- `budget.left` bounds the values of one document, so that texts stay a few KB.
local function value(r, depth, budget)
  budget.left = budget.left - 1
  local k = r((depth > 4 or budget.left <= 0) and 6 or 9)
  local ws = WS[r(#WS)]
  if k == 1 then return NUMBERS[r(#NUMBERS)] end
  if k == 2 then return tostring(r(2000000) - 1000000) end
  if k == 3 then return ('"' .. string_body(r) .. '"') end
  if k == 4 then return ({ "true", "false", "null" })[r(3)] end
  if k == 5 then return ("%d.%d"):format(r(100000) - 50000, r(1000)) end
  if k == 6 then return ("%de%d"):format(r(1000) - 500, r(60) - 30) end
  if k == 7 or k == 8 then
    local n = r(k == 7 and 4 or 80) - 1
    local items = {}
    for i = 1, n do items[i] = ws .. value(r, depth + 1, budget) .. ws end
    return "[" .. table.concat(items, ",") .. "]"
  end
  local n = r(8) - 1
  local members = {}
  for i = 1, n do
    local key = r(3) == 1 and string_body(r) or KEYS[r(#KEYS)]
    members[i] = ws .. '"' .. key .. '"' .. ws .. ":" .. ws .. value(r, depth + 1, budget) .. ws
  end
  return "{" .. table.concat(members, ",") .. "}"
end

--- `count` JSON texts from `seed`, as a list of strings.
function M.documents(seed, count)
  local r = rng(seed)
  local out = {}
  for i = 1, count do out[i] = WS[r(#WS)] .. value(r, 0, { left = r(300) }) .. WS[r(#WS)] end
  return out
end

return M
