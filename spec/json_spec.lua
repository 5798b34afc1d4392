-- JSON details that reach the wire: null, empty arrays and big integers.
local audience = require "audience"
local json = require "audience.json"

describe("json", function()
  it("sends audience.null as null", function()
    assert.equal('{"a":null}', json.encode{ a = audience.null })
  end)

  it("sends audience.array{} as [] and a plain empty table as {}", function()
    assert.equal("[]", json.encode(audience.array{}))
    assert.equal("{}", json.encode{})
    local text = json.encode{ tags = audience.array{}, meta = {}, deep = { list = audience.array() } }
    local back = json.decode(text)
    assert.matches('"tags":%[%]', text)
    assert.matches('"meta":{}', text)
    assert.matches('"list":%[%]', text)
    assert.same({}, back.tags)
  end)

  it("keeps non-empty marked arrays as arrays", function()
    assert.equal("[1,2]", json.encode(audience.array{ 1, 2 }))
  end)

  it("does not modify the caller's table", function()
    local body = { tags = audience.array{}, n = 2 ^ 53 }
    json.encode(body)
    assert.is_true(json.is_array(body.tags))
    assert.equal(2 ^ 53, body.n)
  end)

  it("encodes integers beyond 14 digits exactly", function()
    assert.equal("[9007199254740992]", json.encode{ 2 ^ 53 })
    if math.type then
      assert.equal('{"id":123456789012345678}', json.encode{ id = 123456789012345678 })
    end
    assert.equal("[1.5]", json.encode{ 1.5 })
  end)

  it("is not fooled by strings that look like its placeholders", function()
    local s = "\1audience-0000000000000000-1"
    assert.equal(s, json.decode(json.encode{ s, audience.array{} })[1])
  end)

  it("decodes integers as integers under Lua 5.4", function()
    local v = json.decode('{"id":5,"ratio":0.5,"list":[1,2,{"n":3}]}')
    assert.equal(5, v.id)
    if math.type then
      assert.equal("integer", math.type(v.id))
      assert.equal("integer", math.type(v.list[3].n))
      assert.equal("float", math.type(v.ratio))
      assert.equal("5", tostring(v.id))
    end
  end)

  it("returns nil and a message for malformed JSON", function()
    local v, err = json.decode('{"a": [1, 2,')
    assert.is_nil(v)
    assert.is_string(err)
  end)

  it("audience.array refuses what is not a table", function()
    assert.has_error(function() audience.array("x") end, "bad argument #1 to 'array' (table expected, got string)")
  end)

describe("audience.json sorted encoding (JSON lines)", function()
  local jsonl = require "audience.jsonl"

  it("is the one encoder with keys in order: same values as unsorted, same text for equal values", function()
    local v = { z = 1, a = { c = audience.array{}, b = { 3, 2, 1 }, e = {} }, m = audience.null,
                big = 2 ^ 53, f = 0.5, s = "\"q\"\n", t = true }
    local sorted = jsonl.encode(v)
    assert.equal('{"a":{"b":[3,2,1],"c":[],"e":{}},"big":9007199254740992,"f":0.5,"m":null,'
      .. '"s":"\\"q\\"\\n","t":true,"z":1}', sorted)
    assert.same(json.decode(assert(json.encode(v))), json.decode(sorted))
    assert.equal(sorted, jsonl.encode(json.decode(sorted)))
    assert.equal(sorted, assert(json.encode(v, { sorted = true })))
  end)

  it("refuses what JSON cannot hold, naming where, in both modes", function()
    local _, err = json.encode({ a = { f = print } }, { sorted = true })
    assert.matches("a%.f", err)
    assert.matches("cannot be written as JSON.*a%.f", select(2, pcall(jsonl.encode, { a = { f = print } })))
  end)
end)
end)
