-- Known-answer tests for request signing and webhook signatures in
-- audience.core. Every expected value comes from the openssl command line
-- tool, fed from a temporary file so that NUL bytes reach it intact.
local core = require "audience.core"

local function errmsg(ok, err)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

local digests = require "support.digests"
local sha1, hmac_hex, hmac_base64 = digests.sha1_hex, digests.hmac_sha256_hex, digests.hmac_sha256_base64

local SECRET = "s3cr3t"
local TS = 1700000000
local POST_URL = "https://api.cmfile.net/v1/api/lists.json"
local POST_BODY = '{"name":"My list","language":"fi","auto_suppress":true}'
local GET_URL = "https://api.cmfile.net/v1/api/lists/subscribers/123.json?status=all&page=0"
-- UTF-8 (ä, €) and a NUL in the middle: everything after it must count.
local BINARY_BODY = '{"name":"Sähköposti €"}\0tail\255'

describe("audience.core signing", function()
  describe("sign_creamailer", function()
    it("signs the worked example (POST with a JSON body), version 1 and 2", function()
      local input = POST_URL .. POST_BODY .. "1700000000"
      local v1 = core.sign_creamailer(1, SECRET, POST_URL, POST_BODY, TS)
      local v2 = core.sign_creamailer(2, SECRET, POST_URL, POST_BODY, TS)
      assert.equal(sha1(input .. SECRET), v1)
      assert.equal(hmac_hex(SECRET, input), v2)
      assert.matches("^%x+$", v1)
      assert.equal(40, #v1)
      assert.equal(64, #v2)
      assert.equal(v1:lower(), v1)
      assert.equal(v2:lower(), v2)
    end)

    it("signs a GET with a query string and no body; nil body is the empty body", function()
      local input = GET_URL .. "1700000000"
      assert.equal(sha1(input .. SECRET), core.sign_creamailer(1, SECRET, GET_URL, nil, TS))
      assert.equal(sha1(input .. SECRET), core.sign_creamailer(1, SECRET, GET_URL, "", TS))
      assert.equal(hmac_hex(SECRET, input), core.sign_creamailer(2, SECRET, GET_URL, nil, TS))
      assert.equal(hmac_hex(SECRET, input), core.sign_creamailer(2, SECRET, GET_URL, "", TS))
    end)

    it("is binary safe: UTF-8 and a NUL byte in the body are signed", function()
      local input = POST_URL .. BINARY_BODY .. "1700000000"
      assert.equal(sha1(input .. SECRET), core.sign_creamailer(1, SECRET, POST_URL, BINARY_BODY, TS))
      assert.equal(hmac_hex(SECRET, input), core.sign_creamailer(2, SECRET, POST_URL, BINARY_BODY, TS))
      local cut = BINARY_BODY:sub(1, BINARY_BODY:find("\0", 1, true) - 1)
      assert.are_not.equal(core.sign_creamailer(2, SECRET, POST_URL, cut, TS),
        core.sign_creamailer(2, SECRET, POST_URL, BINARY_BODY, TS))
    end)

    it("prints the timestamp as a decimal integer, whatever its number subtype", function()
      local input = GET_URL .. "1700000000"
      assert.equal(hmac_hex(SECRET, input), core.sign_creamailer(2, SECRET, GET_URL, nil, 1700000000.0))
      assert.equal(hmac_hex(SECRET, GET_URL .. "0"), core.sign_creamailer(2, SECRET, GET_URL, nil, 0))
      assert.equal(sha1(GET_URL .. "4102444800" .. SECRET), core.sign_creamailer(1, SECRET, GET_URL, nil, 4102444800))
    end)

    it("every input changes the signature", function()
      local base = core.sign_creamailer(2, SECRET, POST_URL, POST_BODY, TS)
      assert.are_not.equal(base, core.sign_creamailer(2, SECRET .. "x", POST_URL, POST_BODY, TS))
      assert.are_not.equal(base, core.sign_creamailer(2, SECRET, POST_URL .. "?a=1", POST_BODY, TS))
      assert.are_not.equal(base, core.sign_creamailer(2, SECRET, POST_URL, POST_BODY .. " ", TS))
      assert.are_not.equal(base, core.sign_creamailer(2, SECRET, POST_URL, POST_BODY, TS + 1))
    end)

    it("rejects bad arguments naming them, and never echoes the secret", function()
      local secret = "SENTINEL-secret-value"
      local function err(...)
        local msg = errmsg(pcall(core.sign_creamailer, ...))
        assert.is_nil(msg:find(secret, 1, true), "secret leaked into: " .. msg)
        return msg
      end
      assert.matches("bad argument #1 .*version", err(3, secret, GET_URL, nil, TS))
      assert.matches("bad argument #1 .*version", err(0, secret, GET_URL, nil, TS))
      assert.matches("bad argument #1 .*version", err(1.5, secret, GET_URL, nil, TS))
      assert.matches("bad argument #1 .*version", err("1", secret, GET_URL, nil, TS))
      assert.matches("bad argument #1 .*version", err(nil, secret, GET_URL, nil, TS))
      assert.matches("bad argument #2 .*secret", err(1, nil, GET_URL, nil, TS))
      assert.matches("bad argument #2 .*secret", err(1, "", GET_URL, nil, TS))
      assert.matches("bad argument #2 .*secret", err(1, 12345, GET_URL, nil, TS))
      assert.matches("bad argument #3 .*url", err(1, secret, nil, nil, TS))
      assert.matches("bad argument #3 .*url", err(1, secret, "", nil, TS))
      assert.matches("bad argument #4 .*body", err(1, secret, GET_URL, 5, TS))
      assert.matches("bad argument #4 .*body", err(1, secret, GET_URL, {}, TS))
      assert.matches("bad argument #5 .*timestamp", err(1, secret, GET_URL, nil, -1))
      assert.matches("bad argument #5 .*timestamp", err(1, secret, GET_URL, nil, 1.5))
      assert.matches("bad argument #5 .*timestamp", err(1, secret, GET_URL, nil, 0 / 0))
      assert.matches("bad argument #5 .*timestamp", err(1, secret, GET_URL, nil, math.huge))
      assert.matches("bad argument #5 .*timestamp", err(1, secret, GET_URL, nil, "1700000000"))
      assert.matches("bad argument #5 .*timestamp", err(1, secret, GET_URL, nil, nil))
    end)
  end)

  describe("webhooks", function()
    local BODY = '{"event":"contact.created","data":{"id":42,"email":"a@example.com"}}'
    local KEY = "whsec_0123456789"

    it("webhook_sign gives each provider's header value", function()
      local hex = hmac_hex(KEY, BODY)
      assert.equal(hex, core.webhook_sign("systeme", BODY, KEY))
      assert.equal(hex, core.webhook_sign("systeme", BODY, KEY, "hex"))
      assert.equal("sha256=" .. hex, core.webhook_sign("subscribeflow", BODY, KEY))
      assert.equal("sha256=" .. hex, core.webhook_sign("subscribeflow", BODY, KEY, "hex"))
      assert.equal(hmac_base64(KEY, BODY), core.webhook_sign("subscribeflow", BODY, KEY, "base64"))
    end)

    it("webhook_sign is binary safe", function()
      assert.equal(hmac_hex(KEY, BINARY_BODY), core.webhook_sign("systeme", BINARY_BODY, KEY))
      assert.equal(hmac_base64(KEY, BINARY_BODY), core.webhook_sign("subscribeflow", BINARY_BODY, KEY, "base64"))
      assert.equal(hmac_hex(KEY, ""), core.webhook_sign("systeme", "", KEY))
    end)

    local cases = {
      { "systeme" },
      { "subscribeflow", "hex" },
      { "subscribeflow", "base64" },
    }

    for _, case in ipairs(cases) do
      local provider, style = case[1], case[2]
      local name = provider .. (style and " (" .. style .. ")" or "")

      it(name .. ": sign then verify round-trips, binary bodies too", function()
        for _, body in ipairs({ BODY, "", BINARY_BODY }) do
          local sig = core.webhook_sign(provider, body, KEY, style)
          local ok, why = core.webhook_verify(provider, body, sig, KEY)
          assert.is_true(ok, why)
          assert.is_nil(why)
        end
      end)

      it(name .. ": a one-byte body change or a wrong secret is a mismatch", function()
        local sig = core.webhook_sign(provider, BODY, KEY, style)
        local changed = BODY:gsub("42", "43")
        assert.are.same({ nil, "mismatch" }, { core.webhook_verify(provider, changed, sig, KEY) })
        assert.are.same({ nil, "mismatch" }, { core.webhook_verify(provider, BODY .. " ", sig, KEY) })
        assert.are.same({ nil, "mismatch" }, { core.webhook_verify(provider, BODY, sig, KEY .. "x") })
        assert.are.same({ nil, "mismatch" }, { core.webhook_verify(provider, BODY, sig, "other") })
      end)

      it(name .. ": a missing or empty signature is missing_signature", function()
        assert.are.same({ nil, "missing_signature" }, { core.webhook_verify(provider, BODY, nil, KEY) })
        assert.are.same({ nil, "missing_signature" }, { core.webhook_verify(provider, BODY, "", KEY) })
        assert.are.same({ nil, "missing_signature" }, { core.webhook_verify(provider, BODY, " \t\r\n", KEY) })
      end)

      it(name .. ": surrounding whitespace is trimmed", function()
        local sig = core.webhook_sign(provider, BODY, KEY, style)
        assert.is_true(core.webhook_verify(provider, BODY, " \t" .. sig .. "\r\n", KEY))
      end)
    end

    it("accepts uppercase hex and a case-insensitive sha256= prefix", function()
      local hex = hmac_hex(KEY, BODY)
      assert.is_true(core.webhook_verify("systeme", BODY, hex:upper(), KEY))
      assert.is_true(core.webhook_verify("systeme", BODY, "sha256=" .. hex, KEY))
      assert.is_true(core.webhook_verify("systeme", BODY, "SHA256=" .. hex:upper(), KEY))
      assert.is_true(core.webhook_verify("subscribeflow", BODY, "sha256=" .. hex:upper(), KEY))
      assert.is_true(core.webhook_verify("subscribeflow", BODY, "SHA256=" .. hex, KEY))
    end)

    it("accepts subscribeflow base64 without padding and in the URL-safe alphabet", function()
      -- find a body whose MAC's base64 uses '+' or '/', so the URL-safe form differs
      local body, b64
      for i = 1, 200 do
        body = BODY .. i
        b64 = hmac_base64(KEY, body)
        if b64:find("[+/]") then break end
      end
      assert.matches("[+/]", b64)
      assert.equal("=", b64:sub(-1))
      local unpadded = b64:gsub("=+$", "")
      local urlsafe = b64:gsub("[+/]", { ["+"] = "-", ["/"] = "_" })
      assert.is_true(core.webhook_verify("subscribeflow", body, b64, KEY))
      assert.is_true(core.webhook_verify("subscribeflow", body, unpadded, KEY))
      assert.is_true(core.webhook_verify("subscribeflow", body, urlsafe, KEY))
      assert.is_true(core.webhook_verify("subscribeflow", body, (urlsafe:gsub("=+$", "")), KEY))
    end)

    it("refuses garbage and wrong lengths as malformed_signature", function()
      local hex = hmac_hex(KEY, BODY)
      local b64 = hmac_base64(KEY, BODY)
      local malformed = {
        systeme = {
          "garbage", "zz" .. hex:sub(3), hex:sub(1, 62), hex .. "00", hex:sub(2), "sha256=",
          "sha256=" .. hex:sub(1, 62), b64, "sha1=" .. hex, hex:sub(1, 32) .. " " .. hex:sub(33, 63),
        },
        subscribeflow = {
          "garbage!", "sha256=", "sha256=" .. hex:sub(1, 62), "sha256=" .. b64, hex,
          b64:sub(1, 40), b64 .. "=", "=" .. b64:sub(1, 43), b64:sub(1, 20) .. " " .. b64:sub(21),
          -- both alphabets at once
          "+_" .. b64:sub(3),
          -- 43 characters whose last one has non-zero unused bits
          b64:sub(1, 42) .. (b64:sub(43, 43) == "B" and "C" or "B"),
        },
      }
      for provider, sigs in pairs(malformed) do
        for _, sig in ipairs(sigs) do
          assert.are.same({ nil, "malformed_signature" }, { core.webhook_verify(provider, BODY, sig, KEY) },
            provider .. " accepted " .. sig)
        end
      end
    end)

    it("raises on misuse naming the argument, and never echoes the secret", function()
      local secret = "SENTINEL-secret-value"
      local function err(f, ...)
        local msg = errmsg(pcall(f, ...))
        assert.is_nil(msg:find(secret, 1, true), "secret leaked into: " .. msg)
        return msg
      end
      local sign, verify = core.webhook_sign, core.webhook_verify
      assert.matches("bad argument #1 .*provider", err(sign, "mailchimp", BODY, secret))
      assert.matches("bad argument #1 .*provider", err(sign, nil, BODY, secret))
      assert.matches("bad argument #1 .*provider", err(sign, "systeme\0x", BODY, secret))
      assert.matches("bad argument #2 .*body", err(sign, "systeme", nil, secret))
      assert.matches("bad argument #2 .*body", err(sign, "systeme", 5, secret))
      assert.matches("bad argument #3 .*secret", err(sign, "systeme", BODY, nil))
      assert.matches("bad argument #3 .*secret", err(sign, "systeme", BODY, ""))
      assert.matches("bad argument #4 .*style", err(sign, "subscribeflow", BODY, secret, "b64"))
      assert.matches("bad argument #4 .*style", err(sign, "subscribeflow", BODY, secret, 1))
      assert.matches("bad argument #4 .*base64", err(sign, "systeme", BODY, secret, "base64"))

      assert.matches("bad argument #1 .*provider", err(verify, "other", BODY, "x", secret))
      assert.matches("bad argument #2 .*body", err(verify, "systeme", nil, "x", secret))
      assert.matches("bad argument #3 .*signature", err(verify, "systeme", BODY, 5, secret))
      assert.matches("bad argument #3 .*signature", err(verify, "systeme", BODY, {}, secret))
      assert.matches("bad argument #4 .*secret", err(verify, "systeme", BODY, "x", ""))
      assert.matches("bad argument #4 .*secret", err(verify, "systeme", BODY, nil, ""))
      assert.matches("bad argument #4 .*secret", err(verify, "subscribeflow", BODY, "x", nil))
    end)

    it("verdicts never carry the expected signature", function()
      local expected = hmac_hex(KEY, BODY)
      for _, sig in ipairs({ "garbage", ("0"):rep(64), "" }) do
        local ok, why = core.webhook_verify("systeme", BODY, sig, KEY)
        assert.is_nil(ok)
        assert.is_nil(why:find(expected, 1, true))
        assert.matches("^[a-z_]+$", why)
      end
    end)
  end)
end)
