-- The core's JSON decoder (src/json.c through json.decode): the values it builds, what
-- it refuses and how it says where.
local audience = require "audience"
local json = require "audience.json"

local decode = json.decode

local function refused(text, byte, reason)
  local v, err = decode(text)
  assert.is_nil(v)
  assert.is_string(err)
  if byte then assert.matches("byte " .. byte .. "%f[^%d]", err) end
  if reason then assert.matches(reason, err, 1, true) end
  return err
end

describe("json.decode", function()
  it("gives integers for numbers without a fraction or exponent", function()
    local v = decode('{"a":0,"b":-7,"c":9007199254740993,"d":[1,2,3]}')
    assert.equal(0, v.a)
    assert.equal(-7, v.b)
    assert.same({ 1, 2, 3 }, v.d)
    if math.type then
      assert.equal("integer", math.type(v.a))
      assert.equal("integer", math.type(v.b))
      -- Exact beyond 2^53, where a double would round it.
      assert.equal(9007199254740993, v.c)
      assert.equal("integer", math.type(v.c))
      assert.equal(math.maxinteger, decode("9223372036854775807"))
      assert.equal(math.mininteger, decode("-9223372036854775808"))
    else
      assert.equal(2 ^ 53, v.c)
    end
  end)

  it("gives floats for numbers with a fraction or an exponent", function()
    assert.equal(1.5, decode("1.5"))
    assert.equal(100, decode("1e2"))
    assert.equal(-0.025, decode("-2.5E-2"))
    if math.type then
      assert.equal("float", math.type(decode("1.0")))
      assert.equal("float", math.type(decode("1e2")))
      assert.equal("float", math.type(decode("9223372036854775808")))
    end
    assert.equal(1 / 0, decode("1e400"))
    assert.equal(-1 / 0, 1 / decode("-0.0"))
    assert.equal(2 ^ 64, decode("18446744073709551616"))
    assert.equal(1.2345678901234568e+23, decode("123456789012345678901234"))
    assert.equal(0.1, decode("0.1000000000000000000000000001"))
  end)

  it("gives audience.null for null and booleans as booleans", function()
    local v = decode('{"x":null,"y":[true,false,null]}')
    assert.equal(audience.null, v.x)
    assert.equal(true, v.y[1])
    assert.equal(false, v.y[2])
    assert.equal(audience.null, v.y[3])
    assert.equal(3, #v.y)
  end)

  it("marks every array, so that one emptied after decoding still goes out as []", function()
    local v = decode('{"tags":[{"id":1},{"id":2}],"meta":{"a":1}}')
    assert.is_true(json.is_array(v.tags))
    assert.is_false(json.is_array(v.meta))
    v.tags[2], v.tags[1], v.meta.a = nil, nil, nil
    assert.equal('{"meta":{},"tags":[]}', (json.encode(v):gsub('"tags":%[%],"meta":{}', '"meta":{},"tags":[]')))
  end)

  it("marks arrays so that they go back out as arrays, empty ones included", function()
    local v = decode('{"tags":[],"meta":{},"list":[[],[1]]}')
    assert.is_true(json.is_array(v.tags))
    assert.is_false(json.is_array(v.meta))
    assert.is_true(json.is_array(v.list[1]))
    local back = decode(json.encode(v))
    assert.is_true(json.is_array(back.tags))
    assert.matches('"tags":%[%]', json.encode(v))
    assert.matches('"meta":{}', json.encode(v))
    assert.matches('%[%[%],%[1%]%]', json.encode(v))
  end)

  it("reads escapes, surrogate pairs included", function()
    assert.equal('a"b\\c/d\b\f\n\r\t', decode('"a\\"b\\\\c\\/d\\b\\f\\n\\r\\t"'))
    assert.equal("é€", decode('"\\u00e9\\u20AC"'))
    assert.equal("\240\159\152\128", decode('"\\ud83d\\ude00"'))
    assert.equal("a\0b", decode('"a\\u0000b"'))
    local long = ("x\\n"):rep(1000)
    assert.equal(("x\n"):rep(1000), decode('"' .. long .. '"'))
  end)

  it("takes the bytes of a string as they are, invalid UTF-8 included (as cjson does)", function()
    assert.equal("\255\254", decode('"\255\254"'))
    assert.equal("a\1b\tc", decode('"a\1b\tc"'))
  end)

  it("keeps the last of repeated keys", function()
    assert.equal(2, decode('{"a":1,"a":2}').a)
  end)

  it("builds big arrays and objects whole", function()
    local items, members = {}, {}
    for i = 1, 1000 do
      items[i] = tostring(i)
      members[i] = ('"k%d":[%d]'):format(i, i)
    end
    local a = decode("[" .. table.concat(items, ",") .. "]")
    assert.equal(1000, #a)
    for i = 1, 1000 do assert.equal(i, a[i]) end
    local o = decode("{" .. table.concat(members, ",") .. "}")
    for i = 1, 1000 do assert.equal(i, o["k" .. i][1]) end
  end)

  it("reads the keys of long texts right, however they repeat or collide", function()
    -- Past 4 KB the decoder keeps recent keys on its stack; keys that share a slot,
    -- escaped keys and empty keys must still come out as written.
    local records, want = {}, {}
    for i = 1, 300 do
      local a, b = "k" .. (i % 37), "key_" .. (i % 11) .. "_x"
      records[i] = ('{"%s":%d,"%s":"v%d","\\u0069d":%d,"":%d,"%s":%d}'):format(a, i, b, i, i, -i, a, i + 1)
      want[i] = { [a] = i + 1, [b] = "v" .. i, id = i, [""] = -i }
    end
    local text = "[" .. table.concat(records, ",") .. "]"
    assert.is_true(#text > 4096)
    assert.same(want, decode(text))
  end)

  it("accepts 200 levels of nesting and refuses 201", function()
    assert.is_table(decode(("["):rep(200) .. ("]"):rep(200)))
    refused(("["):rep(201) .. ("]"):rep(201), 201, "nesting deeper than the limit")
    refused(('{"a":'):rep(201) .. "1" .. ("}"):rep(201), nil, "nesting deeper than the limit")
  end)

  it("refuses what is not JSON, naming the byte", function()
    refused("", 1, "a JSON value expected")
    refused("   ", 4, "a JSON value expected")
    refused("[1,]", 4, "a JSON value expected")
    refused('{"a":1,}', 8, "object key (a string) expected")
    refused('{"a" 1}', 6, "':' expected")
    refused("[1 2]", 4, "',' or ']' expected")
    refused('{"a":1 "b":2}', 8, "',' or '}' expected")
    refused("1 2", 3, "unexpected text after the JSON value")
    refused('"abc', 1, "unterminated string")
    refused('["a\\"]', 2, "unterminated string")
    refused('"\\x"', 2, "invalid escape")
    refused('"\\u12G4"', 2, "invalid \\u escape")
    refused('"ab\\ud800"', 4, "high surrogate")
    refused('"\\ud800\\u0041"', 2, "high surrogate")
    refused('"\\udc00\\ud800"', 2, "lone low surrogate")
    refused('"a\0b"', 3, "NUL byte in a string")
    refused('"a\\n\0"', 5, "NUL byte in a string")
    refused("tru", 1, "a JSON value expected")
    refused("nulls", 5, "unexpected text")
  end)

  it("refuses cjson's number extensions", function()
    for _, text in ipairs{ "NaN", "Infinity", "-Infinity", "+1", ".5", "0x10" } do
      refused(text)
    end
    refused("01", 2, "leading zero")
    refused("1.", 3, "digit expected after the decimal point")
    refused("1e", 3, "digit expected in the exponent")
    refused("-", 2, "digit expected")
  end)

  it("says when the error is at the end of the text", function()
    local err = refused("[1,2", 5)
    assert.matches("at the end of the text", err, 1, true)
  end)

  it("raises for a value that is not text", function()
    assert.has_error(function() decode({}) end)
    assert.has_error(function() decode(nil) end)
  end)
end)
