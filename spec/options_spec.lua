-- Misuse raises at once, with the option or argument named. No server is needed:
-- nothing here may reach the network.
local audience = require "audience"

describe("constructor options", function()
  local function err_of(opts)
    local ok, e = pcall(audience.systeme, opts)
    assert.is_false(ok)
    return e
  end

  it("require the credential", function()
    assert.equal("audience.systeme: missing option 'api_key'", err_of{})
  end)

  it("name unknown options", function()
    assert.equal("audience.systeme: unknown option 'timout'", err_of{ api_key = "k", timout = 3 })
    assert.equal("audience.systeme: unknown option 'rate_limit.limt'",
      err_of{ api_key = "k", rate_limit = { limt = 3 } })
  end)

  it("name options of the wrong type", function()
    assert.equal("audience.systeme: bad option 'timeout' (positive number expected, got string)",
      err_of{ api_key = "k", timeout = "5" })
    assert.equal("audience.systeme: bad option 'timeout' (positive number expected, got NaN)",
      err_of{ api_key = "k", timeout = 0 / 0 })
    assert.equal("audience.systeme: bad option 'retries' (non-negative integer expected, got number)",
      err_of{ api_key = "k", retries = 1.5 })
    assert.equal("audience.systeme: bad option 'verify_tls' (boolean expected, got string)",
      err_of{ api_key = "k", verify_tls = "no" })
    assert.equal("audience.systeme: bad option 'api_key' (non-empty string without CR, LF or NUL expected, got number)",
      err_of{ api_key = 42 })
    assert.matches("bad option 'api_key'", err_of{ api_key = "k\r\nX-Evil: 1" })
    assert.matches("bad option 'base_url'", err_of{ api_key = "k", base_url = "ftp://x" })
    assert.matches("bad option 'transport'", err_of{ api_key = "k", transport = "carrier-pigeon" })
    assert.matches("bad option 'rate_limit.per' %(limit and per go together%)",
      err_of{ api_key = "k", rate_limit = { limit = 5 } })
    assert.matches("bad argument #1", err_of("k"))
  end)

  it("never echo the credential", function()
    local e = err_of{ api_key = "sk-SECRET-VALUE\n" }
    assert.is_nil(e:find("SECRET", 1, true))
  end)
end)

describe("method arguments", function()
  local sys = audience.systeme{ api_key = "k", base_url = "http://127.0.0.1:9/api", retries = 0 }

  it("name the argument and what was expected", function()
    assert.has_error(function() sys.contacts:get() end,
      "audience: bad argument #1 to 'contacts:get' (id: integer or non-empty string expected, got nil)")
    assert.has_error(function() sys.contacts:get(1.5) end,
      "audience: bad argument #1 to 'contacts:get' (id: integer or non-empty string expected, got number)")
    assert.has_error(function() sys.contacts:create("ada@example.com") end,
      "audience: bad argument #1 to 'contacts:create' (body: table expected, got string)")
    assert.has_error(function() sys.contacts:update(1) end,
      "audience: bad argument #2 to 'contacts:update' (body: table expected, got nil)")
    assert.has_error(function() sys.contacts:add_tag(1, {}) end,
      "audience: bad argument #2 to 'contacts:add_tag' (tag_id: integer or non-empty string expected, got table)")
    assert.has_error(function() sys.contact_fields:delete(false) end,
      "audience: bad argument #1 to 'contact_fields:delete' (slug: integer or non-empty string expected, got boolean)")
    assert.has_error(function() sys.contacts:list("all") end,
      "audience: bad argument #1 to 'contacts:list' (params: table or nil expected, got string)")
    assert.has_error(function() sys.subscriptions:cancel(1, 2) end,
      "audience: bad argument #2 to 'subscriptions:cancel' (cancel: non-empty string expected, got number)")
    assert.error_matches(function() sys.contacts:create({ email = "x" }, { retry = true }) end,
      "unknown option 'retry' in call to 'contacts:create'")
    assert.error_matches(function() sys.contacts:list{ email = function() end } end, "email")
  end)

  it("each raises bad arguments at the call, not at the first page", function()
    assert.error_matches(function() sys.contacts:each(7) end, "params")
    assert.error_matches(function() sys.contacts:each{ max_items = -1 } end, "max_items")
  end)

  it("resources offer exactly the operations their API has", function()
    assert.is_nil(sys.courses.get)
    assert.is_nil(sys.contact_fields.get)
    assert.is_function(sys.subscriptions.cancel)
    assert.is_function(sys.communities.add_member)
  end)
end)
