-- The core's JSON decoder against lua-cjson, the decoder it replaced, as an oracle:
-- over every input of fuzz/corpus/json (the mock servers' responses, generated texts
-- and past crashes) and thousands of freshly generated texts, both must accept the
-- same texts and build the same values, except that numbers may differ in kind
-- (integer here, float in cjson) but never in value.
local cjson = require("cjson").new()
local json = require "audience.json"
local gen = require "support.json_gen"
local mockserver = require "support.mockserver"

cjson.decode_max_depth(1000)

local CORPUS = mockserver.spec_dir .. "/../fuzz/corpus/json"
local EXACT = 2 ^ 53

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function corpus()
  local p = assert(io.popen("ls -1 '" .. CORPUS .. "'"))
  local out = {}
  for name in p:lines() do out[#out + 1] = { name = name, text = read(CORPUS .. "/" .. name) } end
  p:close()
  return out
end

-- cjson's extensions the core refuses on purpose (see src/json.h): a text that uses
-- one may be refused by the core alone.
local function uses_cjson_extension(text)
  return text:find("[%[,:%s]%s*[%+%.]%d") or text:find("^%s*[%+%.]%d")
    or text:find("%f[%w][Nn][Aa][Nn]%f[^%w]") or text:find("Infinity", 1, true)
    or text:find("%f[%w.]%-?0[xX%d]") or text:find("%d%.%D") or text:find("%d%.$")
end

-- Where two values differ, as a path, or nil when they agree.
local function differ(a, b, path)
  local ta, tb = type(a), type(b)
  if ta == "number" and tb == "number" then
    if math.type and math.type(a) == "integer" then
      -- cjson holds the nearest double: the integer, rounded once.
      if math.abs(a) > EXACT then a = a + 0.0 end
      return a ~= b and path or nil
    end
    if a ~= b then return path end
    -- (Under LuaJIT "-0" is read as the integer 0, a positive zero, where cjson keeps
    -- the sign; under 5.4 only floats reach here.)
    if a == 0 and 1 / a ~= 1 / b and math.type then return path .. " (sign of zero)" end
    return nil
  end
  if ta ~= tb then return path .. (" (%s vs %s)"):format(ta, tb) end
  if ta ~= "table" then return (a ~= b) and path or nil end
  for k, v in pairs(a) do
    local d = differ(v, b[k], path .. "." .. tostring(k))
    if d then return d end
  end
  for k in pairs(b) do
    if a[k] == nil then return path .. "." .. tostring(k) .. " (missing)" end
  end
  return nil
end

local function compare(name, text)
  local ours, err = json.decode(text)
  local ok, theirs = pcall(cjson.decode, text)
  if ours == nil then
    if ok and not uses_cjson_extension(text) then
      error(("%s: refused (%s) but cjson accepts it"):format(name, err), 0)
    end
    return false
  end
  if not ok then error(("%s: accepted but cjson refuses it: %s"):format(name, theirs), 0) end
  local where = differ(ours, theirs, "value")
  if where then error(("%s: differs from cjson at %s"):format(name, where), 0) end
  return true
end

describe("json.decode against cjson", function()
  it("agrees on every input of fuzz/corpus/json", function()
    local inputs = corpus()
    assert.is_true(#inputs > 100)
    local accepted = 0
    for _, input in ipairs(inputs) do
      if compare(input.name, input.text) then accepted = accepted + 1 end
    end
    -- Most of the corpus is JSON the mocks sent: a decoder refusing it all would
    -- agree with nothing.
    assert.is_true(accepted > #inputs * 0.8, accepted .. " of " .. #inputs .. " accepted")
  end)

  it("agrees on 5,000 generated texts", function()
    local docs = gen.documents(7, 5000)
    for i, text in ipairs(docs) do
      assert.is_true(compare("generated text " .. i, text))
    end
  end)

  it("agrees on generated texts cut short or with a byte changed", function()
    local docs = gen.documents(11, 1000)
    for i, text in ipairs(docs) do
      local cut = text:sub(1, math.floor(#text * 2 / 3))
      compare("cut text " .. i, cut)
      local at = i % #text + 1
      local changed = text:sub(1, at - 1) .. string.char((text:byte(at) + 1) % 256) .. text:sub(at + 1)
      compare("changed text " .. i, changed)
    end
  end)

  it("reads integers exactly where cjson rounds them", function()
    if not math.type then return end
    local v = json.decode("[9007199254740993,-9223372036854775808]")
    assert.equal(9007199254740993, v[1])
    assert.equal(math.mininteger, v[2])
    assert.equal(2 ^ 53, cjson.decode("9007199254740993"))
  end)
end)
