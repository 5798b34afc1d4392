-- The fuzz corpora (fuzz/corpus/TARGET: the seeds and every input that once crashed a
-- target) fed through the Lua API of the core, so that each one also runs through the
-- bindings, under LuaJIT, and under make asan and make valgrind. Inputs are cut into
-- fields as fuzz/fuzz.h does: 0xFF separates them and the last one takes the rest.
--
-- Crashes found by fuzzing, each kept as fuzz/corpus/*/regression-*:
--   retry_after/regression-backoff-llong-min: aud_backoff(LLONG_MIN, ...) computed
--     attempt - 1, a signed overflow (fixed in src/retry.c). The binding already
--     refused attempt < 1, so from Lua it is an argument error; see the test below.
local core = require "audience.core"
local mockserver = require "support.mockserver"
local digests = require "support.digests"

local LUA54 = math.type ~= nil
local SEP = "\255"

local CORPUS = mockserver.spec_dir .. "/../fuzz/corpus"

local function read(path)
  return (assert(require("support.files").read(path), path))
end

-- The files of one target's corpus, sorted, as { name =, data = }.
local function corpus(target)
  local dir = CORPUS .. "/" .. target
  local p = assert(io.popen("ls -1 '" .. dir .. "' 2>/dev/null"))
  local out = {}
  for name in p:lines() do out[#out + 1] = { name = name, data = read(dir .. "/" .. name) } end
  p:close()
  assert(#out > 0, "empty corpus " .. dir)
  return out
end

-- A reader over one input, mirroring fuzz_byte, fuzz_u64, fuzz_field and fuzz_rest.
local function reader(s)
  local pos = 1
  local r = {}
  function r.byte()
    if pos > #s then return 0 end
    pos = pos + 1
    return s:byte(pos - 1)
  end
  -- As a float: exact up to 2^53, which is all the callers below rely on.
  function r.u64()
    local v = 0
    for _ = 1, 8 do v = v * 256 + r.byte() end
    return v
  end
  function r.field()
    local at = s:find(SEP, pos, true)
    local f = s:sub(pos, (at or #s + 1) - 1)
    pos = at and at + 1 or #s + 1
    return f
  end
  function r.rest()
    local f = s:sub(pos)
    pos = #s + 1
    return f
  end
  function r.left() return #s - pos + 1 end
  return r
end

local function each(target, fn)
  for _, input in ipairs(corpus(target)) do
    local ok, err = pcall(fn, reader(input.data), input.name)
    if not ok then error(target .. "/" .. input.name .. ": " .. tostring(err), 0) end
  end
end

describe("fuzz corpora through the Lua API", function()
  it("retry_after: parse_retry_after gives nil or a wait in [0, 1e9]", function()
    each("retry_after", function(r)
      local now = r.u64() % 2 ^ 40
      local wait = core.parse_retry_after(r.rest(), now)
      assert.is_true(wait == nil or (wait >= 0 and wait <= 1e9))
    end)
  end)

  it("retry_after/regression-backoff-llong-min: backoff refuses the smallest integer", function()
    -- The crashing input read as an attempt number: 0x80 then zeros, i.e. -2^63.
    local min = LUA54 and math.mininteger or -2 ^ 63
    assert.equal(128, read(CORPUS .. "/retry_after/regression-backoff-llong-min"):byte(1))
    local ok, err = pcall(core.backoff, min, 1, 10, 0)
    assert.is_false(ok)
    assert.matches("bad argument #1", tostring(err))
    -- The other end saturates at max instead of overflowing.
    local top = core.backoff(LUA54 and math.maxinteger or 2 ^ 53, 1, 10, 0.999999)
    assert.is_true(top > 9.99 and top <= 10, top)
  end)

  it("number: parse_rate_headers gives nil or a count >= 0, and a reset instant", function()
    local styles = { [0] = "auto", "epoch", "delta" }
    each("number", function(r)
      local style = styles[r.byte() % 3]
      for _ = 1, 9 do r.byte() end -- the double to format and the room: C only
      local h = { l = r.field(), r = r.field(), t = r.field() }
      local limit, remaining, reset = core.parse_rate_headers(h,
        { limit = "l", remaining = "r", reset = "t", reset_style = style }, 1.7e9)
      assert.is_true(limit == nil or limit >= 0)
      assert.is_true(remaining == nil or remaining >= 0)
      assert.is_true(reset == nil or reset == reset) -- never NaN
    end)
  end)

  it("url_query: urlencode and build_query agree with a Lua model of them", function()
    local function encode(s)
      return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
    end
    each("url_query", function(r)
      local s = r.field()
      assert.equal(encode(s), core.urlencode(s))
      -- Repeated keys become arrays, in input order, as a caller's table would hold them.
      local params, order = {}, {}
      while r.left() > 0 do
        local k, v = r.field(), r.field()
        if params[k] == nil then params[k] = {}; order[#order + 1] = k end
        table.insert(params[k], v)
      end
      table.sort(order) -- bytewise: string comparison follows the C locale here
      local want = {}
      for _, k in ipairs(order) do
        for _, v in ipairs(params[k]) do want[#want + 1] = encode(k) .. "=" .. encode(v) end
      end
      assert.equal(table.concat(want, "&"), core.build_query(params))
    end)
  end)

  it("sign_input: sign_creamailer matches the digests of url .. body .. timestamp", function()
    each("sign_input", function(r)
      local ts = r.u64() % 2 ^ 53 -- exact in a double, so LuaJIT gets the same number
      r.byte()
      local url, secret, body = r.field(), r.field(), r.rest()
      if url == "" or secret == "" then
        assert.is_false(pcall(core.sign_creamailer, 1, secret, url, body, ts))
        return
      end
      local digits = ("%.0f"):format(ts)
      if LUA54 then ts = math.tointeger(ts) end
      assert.equal(digests.sha1_hex(url .. body .. digits .. secret), core.sign_creamailer(1, secret, url, body, ts))
      assert.equal(digests.hmac_sha256_hex(secret, url .. body .. digits),
        core.sign_creamailer(2, secret, url, body ~= "" and body or nil, ts))
    end)
  end)

  it("decode: signature texts are judged without crashing, and only a real MAC passes", function()
    each("decode", function(r)
      r.byte()
      local which = r.byte()
      local text = r.rest()
      local provider = which % 2 == 1 and "subscribeflow" or "systeme"
      local ok, why = core.webhook_verify(provider, "body", text, "secret")
      assert.is_nil(ok)
      assert.is_truthy(({ missing_signature = 1, malformed_signature = 1, mismatch = 1 })[why])
    end)
  end)

  it("webhook_verify: the verdict for every corpus input, and signed bodies pass", function()
    each("webhook_verify", function(r)
      local provider = r.byte() % 2 == 1 and "subscribeflow" or "systeme"
      local sig, secret, body = r.field(), r.field(), r.rest()
      if secret == "" then
        assert.is_false(pcall(core.webhook_verify, provider, body, sig, secret))
        return
      end
      local ok, why = core.webhook_verify(provider, body, sig, secret)
      assert.is_true(ok == true or ({ missing_signature = 1, malformed_signature = 1, mismatch = 1 })[why] ~= nil)
      assert.is_true(core.webhook_verify(provider, body, core.webhook_sign(provider, body, secret), secret))
    end)
  end)
end)
