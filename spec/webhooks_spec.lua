-- audience.webhooks: verifying deliveries from the raw body, for Systeme.io and
-- SubscribeFlow, and signing test payloads.
local audience = require "audience"

describe("audience.webhooks", function()
  -- As a provider sends it: with spaces that a decode/encode round trip drops.
  local body = '{"type": "CONTACT_CREATED", "data": {"contact": {"id": 7, "email": "ada@example.com"}}}'
  local secret = "whsec_test_123"
  local webhooks = audience.webhooks

  for _, case in ipairs{
    { "systeme", "X-Webhook-Signature" },
    { "subscribeflow", "X-SubscribeFlow-Signature" },
  } do
    local provider, header = case[1], case[2]
    describe(provider, function()
      it("accepts a correctly signed body", function()
        local headers = webhooks.sign(provider, body, secret)
        assert.is_string(headers[header])
        assert.is_true(webhooks.verify(provider, body, headers, secret))
      end)

      it("finds the header whatever its case, and in a list", function()
        local value = webhooks.sign(provider, body, secret)[header]
        assert.is_true(webhooks.verify(provider, body, { [header:lower()] = value }, secret))
        assert.is_true(webhooks.verify(provider, body, { [header:upper()] = { value } }, secret))
      end)

      it("rejects a one-byte change of the body", function()
        local headers = webhooks.sign(provider, body, secret)
        local changed = body:gsub("ada@", "adb@")
        local ok, err = webhooks.verify(provider, changed, headers, secret)
        assert.is_nil(ok)
        assert.equal("auth", err.kind)
        assert.equal("mismatch", err.code)
        assert.equal(audience.Error, getmetatable(err))
      end)

      it("rejects a wrong secret without showing either secret", function()
        local headers = webhooks.sign(provider, body, secret)
        local ok, err = webhooks.verify(provider, body, headers, "another-secret")
        assert.is_nil(ok)
        assert.equal("mismatch", err.code)
        assert.is_nil(tostring(err):find("another-secret", 1, true))
        assert.is_nil(tostring(err):find(secret, 1, true))
      end)

      it("rejects a missing header", function()
        local ok, err = webhooks.verify(provider, body, { ["Content-Type"] = "application/json" }, secret)
        assert.is_nil(ok)
        assert.equal("missing_signature", err.code)
        assert.truthy(err.message:find(header, 1, true))
      end)

      it("rejects a body that was decoded and encoded again", function()
        local headers = webhooks.sign(provider, body, secret)
        local reserialised = require("cjson").encode(require("cjson").decode(body))
        assert.are_not.equal(body, reserialised)
        local ok, err = webhooks.verify(provider, reserialised, headers, secret)
        assert.is_nil(ok)
        assert.matches("raw body", err.message)
      end)

      it("rejects garbage as malformed", function()
        local ok, err = webhooks.verify(provider, body, { [header] = "not a signature!" }, secret)
        assert.is_nil(ok)
        assert.equal("malformed_signature", err.code)
      end)
    end)
  end

  it("accepts SubscribeFlow's bare base64 form as well as sha256=<hex>", function()
    local hex = webhooks.sign("subscribeflow", body, secret)["X-SubscribeFlow-Signature"]
    assert.matches("^sha256=%x+$", hex)
    local b64 = webhooks.sign("subscribeflow", body, secret, "base64")["X-SubscribeFlow-Signature"]
    assert.matches("^[%w+/]+=*$", b64)
    assert.is_true(webhooks.verify("subscribeflow", body, { ["X-SubscribeFlow-Signature"] = b64 }, secret))
  end)

  it("checks its arguments", function()
    assert.error_matches(function() webhooks.verify("mailchimp", body, {}, secret) end, "provider")
    assert.error_matches(function() webhooks.verify("systeme", nil, {}, secret) end, "raw_body")
    assert.error_matches(function() webhooks.verify("systeme", body, "x", secret) end, "headers")
    assert.error_matches(function() webhooks.verify("systeme", body, {}, "") end, "secret")
  end)
end)
