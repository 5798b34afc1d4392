-- Retries, timeouts and bad answers: what is retried, what is not, and how it fails.
local audience = require "audience"
local mockserver = require "support.mockserver"
local fixtures = require "support.fixtures"

describe("retries and failures", function()
  local m

  setup(function() m = mockserver.start("systeme") end)
  teardown(function() if m then m:stop() end end)
  before_each(function() m:reset() end)

  local function client(extra)
    local opts = { api_key = "test-key", base_url = m.url, timeout = 5, backoff = { base = 0.05, max = 0.2 } }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return audience.systeme(opts)
  end

  it("a 503 then a 200 succeeds after one retry", function()
    m:seed("contacts", 3)
    m:fault{ match = "/api/contacts", method = "GET", times = 1, action = { status = 503 } }
    local attempts = {}
    local sys = client{ on_response = function(info) attempts[#attempts + 1] = info.status end }
    local page, err = sys.contacts:list()
    assert.is_nil(err)
    assert.equal(3, #page.items)
    assert.same({ 503, 200 }, attempts)
    sys:close()
  end)

  it("honours Retry-After on a 503", function()
    m:fault{ match = "/api/tags", times = 1, action = { status = 503, headers = { ["Retry-After"] = "1" } } }
    local sys = client()
    local started = require("audience.core").monotonic()
    assert(sys.tags:list())
    assert.is_true(require("audience.core").monotonic() - started >= 0.95)
    sys:close()
  end)

  it("gives up after `retries` extra attempts and reports the last error", function()
    m:fault{ match = "/api/tags", times = 5, action = { status = 502 } }
    local n = 0
    local sys = client{ retries = 2, on_request = function() n = n + 1 end }
    local _, err = sys.tags:list()
    assert.equal("server", err.kind)
    assert.equal(502, err.status)
    assert.equal(3, n)
    sys:close()
  end)

  it("does not retry a 422", function()
    local n = 0
    local sys = client{ on_request = function() n = n + 1 end }
    local _, err = sys.contacts:create{ email = "not-an-email" }
    assert.equal("validation", err.kind)
    assert.equal(422, err.status)
    assert.equal(1, n)
    sys:close()
  end)

  it("does not retry a POST that reached the server", function()
    m:fault{ match = "/api/tags", method = "POST", times = 1, action = { status = 503 } }
    local n = 0
    local sys = client{ on_request = function() n = n + 1 end }
    local _, err = sys.tags:create{ name = "once" }
    assert.equal("server", err.kind)
    assert.equal(1, n)
    assert.equal(0, #assert(sys.tags:list()).items)
    sys:close()
  end)

  it("retries a POST that never reached the server", function()
    local port = mockserver.free_port()
    local n = 0
    local sys = audience.systeme{ api_key = "k", base_url = "http://127.0.0.1:" .. port .. "/api",
      retries = 2, backoff = { base = 0.01, max = 0.02 }, on_request = function() n = n + 1 end }
    local _, err = sys.tags:create{ name = "x" }
    assert.equal("network", err.kind)
    assert.equal(3, n)
    sys:close()
  end)

  it("a stalled server hits the timeout", function()
    m:fault{ match = "/api/tags", times = 3, action = { delay = 5 } }
    local sys = client{ timeout = 0.5, retries = 0 }
    local started = os.clock()
    local _, err = sys.tags:list()
    assert.equal("timeout", err.kind)
    assert.is_nil(err.status)
    assert.is_true(os.clock() - started < 2)
    sys:close()
  end)

  it("a GET that times out is retried and can then succeed", function()
    m:fault{ match = "/api/tags", times = 1, action = { delay = 2 } }
    local sys = client{ timeout = 0.5, retries = 1 }
    assert(sys.tags:list())
    sys:close()
  end)

  it("malformed JSON gives kind decode", function()
    m:fault{ match = "/api/tags", times = 1, action = { malformed = true } }
    local sys = client()
    local _, err = sys.tags:list()
    assert.equal("decode", err.kind)
    assert.equal(200, err.status)
    sys:close()
  end)

  it("a reset connection gives kind network and the client stays usable", function()
    m:fault{ match = "/api/tags", times = 3, action = { reset = true } }
    local sys = client()
    local _, err = sys.tags:list()
    assert.equal("network", err.kind)
    assert(sys.tags:list())
    sys:close()
  end)

  it("a truncated body gives kind network", function()
    m:fault{ match = "/api/tags", times = 3, action = { truncated = true } }
    local sys = client()
    local _, err = sys.tags:list()
    assert.equal("network", err.kind)
    sys:close()
  end)

  it("treats a DELETE whose earlier attempt was lost as done", function()
    local sys = client{ timeout = 0.5 }
    local t = assert(sys.tags:create{ name = "gone" })
    m:fault{ match = "/api/tags/", method = "DELETE", times = 1, action = { delay_after = 1.5 } }
    assert.is_true(sys.tags:delete(t.id))
    sys:close()
  end)

  it("never puts the API key in errors or hook arguments", function()
    local secret = "sk-live-SECRET-0123456789"
    local seen = {}
    local sys = audience.systeme{ api_key = secret, base_url = m.url, retries = 1,
      backoff = { base = 0.01, max = 0.01 },
      on_request = function(info) seen[#seen + 1] = info end,
      on_response = function(info) seen[#seen + 1] = info end }
    local _, e1 = sys.contacts:list()                  -- 401: unknown key
    m:fault{ times = 2, action = { status = 503 } }
    local _, e2 = sys.tags:list()
    local _, e3 = sys:request("GET", "/contacts/" .. secret)
    for _, e in ipairs{ e1, e2, e3 } do
      assert.is_nil(fixtures.find_string(e, secret))
      assert.is_nil(tostring(e):find(secret, 1, true))
    end
    assert.is_nil(fixtures.find_string(seen, secret))
    assert.is_true(#seen >= 6)
    assert.equal("[REDACTED]", seen[1].headers["X-API-Key"])
    sys:close()
  end)
end)
