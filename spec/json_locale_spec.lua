-- JSON under a locale whose decimal point is a comma. A host program (a GUI, an nginx
-- module, a script) may call os.setlocale(..., "numeric") after audience is loaded;
-- strtod and printf then read and write "1,5", and neither decoding nor encoding may
-- follow them. scripts/install-deps.sh generates de_DE.UTF-8, so a missing locale is a
-- failure here, not a reason to skip.
local audience = require "audience"
local json = require "audience.json"
local jsonl = require "audience.jsonl"
local mockserver = require "support.mockserver"

local COMMA_LOCALES = { "de_DE.UTF-8", "de_DE.utf8" }

local function enter_comma_locale()
  for _, name in ipairs(COMMA_LOCALES) do
    if os.setlocale(name, "numeric") then
      -- The locale really writes a comma: otherwise this spec would prove nothing.
      -- (LuaJIT formats numbers itself, so only PUC Lua shows it.)
      if not rawget(_G, "jit") then assert.equal("1,5", string.format("%.1f", 1.5)) end
      return name
    end
  end
  error("the de_DE.UTF-8 locale is missing: run scripts/install-deps.sh", 0)
end

describe("JSON under a comma locale", function()
  before_each(function() enter_comma_locale() end)
  after_each(function() os.setlocale("C", "numeric") end)

  it("decodes numbers with a decimal point", function()
    local v = assert(json.decode('{"id": 1, "ratio": 1.5, "list": [2.25e3, -0.125, 1E-2, 3]}'))
    assert.equal(1, v.id)
    assert.equal(1.5, v.ratio)
    assert.same({ 2250, -0.125, 0.01, 3 }, v.list)
    if math.type then
      assert.equal("integer", math.type(v.id))
      assert.equal("float", math.type(v.ratio))
      assert.equal("integer", math.type(v.list[4]))
    end
  end)

  it("decodes numbers that need the slow path exactly", function()
    assert.equal(0.1 + 0.2, json.decode("0.30000000000000004"))
    assert.equal(2 ^ -1074, json.decode("4.9406564584124654e-324"))
    assert.equal(1.7976931348623157e308, json.decode("1.7976931348623157e308"))
    assert.equal(123456789.123456789, json.decode("123456789.123456789"))
  end)

  it("encodes numbers with a point, never a comma", function()
    assert.equal("[1.5]", json.encode{ 1.5 })
    assert.equal('{"a":-0.125}', json.encode{ a = -0.125 })
    assert.equal("[0.30000000000000004,2,1e+300]", json.encode{ 0.1 + 0.2, 2, 1e300 })
    assert.equal("[9007199254740992]", json.encode{ 2 ^ 53 })
    assert.equal('{"a":[1.5,2.5],"b":"x"}', jsonl.encode{ b = "x", a = { 1.5, 2.5 } })
    assert.equal("0.1", jsonl.encode(0.1))
  end)

  it("round-trips what it encodes", function()
    local value = { 1.5, -2.75, 1e-7, 12345.678, 2 ^ 60, 0.1 }
    assert.same(value, json.decode(json.encode(value)))
  end)

  describe("through a client", function()
    local m, sys

    setup(function()
      m = mockserver.start("systeme")
    end)

    teardown(function()
      if sys then sys:close() end
      if m then m:stop() end
    end)

    it("sends and reads a contact", function()
      m:reset()
      sys = audience.systeme{ api_key = "test-key", base_url = m.url, timeout = 5 }
      local c = assert(sys.contacts:create{ email = "ada@example.com", locale = "en" })
      local got = assert(sys.contacts:get(c.id))
      assert.equal(c.id, got.id)
      if math.type then assert.equal("integer", math.type(got.id)) end
    end)
  end)
end)
