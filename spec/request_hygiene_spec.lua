-- What goes out on the wire, and what comes back in errors: one line per header name
-- (a caller's header replaces the client's own), no Content-Type without a body, no
-- URL credentials in any error text, retries only when what was sent makes them safe,
-- and an oversized header refused as too large, once.
local audience = require "audience"
local mockserver = require "support.mockserver"
local fixtures = require "support.fixtures"

local function last(m)
  local all = m:requests()
  return all[#all]
end

describe("request hygiene", function()
  local sysm, sfm
  setup(function()
    sysm = mockserver.start("systeme")
    sfm = mockserver.start("subscribeflow")
  end)
  teardown(function()
    if sysm then sysm:stop() end
    if sfm then sfm:stop() end
  end)
  before_each(function()
    sysm:reset()
    sfm:reset{ accounts = { default = { keys = { "sf_live_test" }, limit = 100000, per = 60 } } }
  end)

  local function sys(extra)
    local opts = { api_key = "test-key", base_url = sysm.url, timeout = 5, backoff = { base = 0.01, max = 0.02 },
      rate_limit = { limit = 10000, per = 1, account = "hygiene-sys" } }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return audience.systeme(opts)
  end

  describe("headers", function()
    it("a per-call header replaces the client's own of the same name, whatever its case", function()
      local c = sys()
      assert(c.tags:create({ name = "one" }, { headers = { accept = "application/ld+json",
        ["CONTENT-TYPE"] = "application/json; charset=utf-8", ["X-Trace"] = "t1" } }))
      local h = last(sysm).headers
      assert.equal("application/ld+json", h.accept)
      assert.equal("application/json; charset=utf-8", h["content-type"])
      assert.equal("t1", h["x-trace"])
      -- Through request too, and a caller's Content-Type wins over content_type's default.
      assert(c:request("GET", "/tags", { headers = { Accept = "application/json; q=1" } }))
      assert.equal("application/json; q=1", last(sysm).headers.accept)
      -- The credential header is the constructor's: a second one would be a duplicate.
      assert.error_matches(function() c:request("GET", "/tags", { headers = { ["x-api-key"] = "other" } }) end,
        "header 'x%-api%-key' is the client's credential")
      c:close()
    end)

    it("sends no Content-Type when there is no body, also on a bodyless POST", function()
      sysm:seed("contacts", 1)
      sysm:seed("tags", 1)
      local c = sys()
      local _, err = c:request("POST", "/contacts")
      assert.equal("validation", err.kind)    -- answered: no body is no contact
      local req = last(sysm)
      assert.equal("POST", req.method)
      assert.is_nil(req.headers["content-type"])
      assert.equal("0", req.headers["content-length"])
      assert(c.tags:list())
      assert.is_nil(last(sysm).headers["content-type"])
      assert.is_true(c.contacts:delete(1))
      assert.is_nil(last(sysm).headers["content-type"])
      c:close()
    end)
  end)

  describe("credentials in error texts", function()
    it("drops a proxy's user:password from libcurl's message, with a scheme or without", function()
      for _, proxy in ipairs{ "http://user:Pr0xyPass@proxy.example:99999", "user:Pr0xyPass@proxy.example:99999",
        "socks5h://user:Pr0xyPass@proxy.example:99999" } do
        local seen = {}
        local c = sys{ proxy = proxy, retries = 0, on_response = function(i) seen[#seen + 1] = i end }
        local _, err = c.tags:list()
        assert.equal("network", err.kind)
        assert.is_nil(fixtures.find_string({ err, tostring(err), seen }, "Pr0xyPass"), proxy)
        assert.is_nil(tostring(err):find("user:", 1, true), tostring(err))
        c:close()
      end
    end)

    it("keeps a base_url's user:password out of hooks and errors", function()
      local seen = {}
      local c = sys{ base_url = sysm.url:gsub("^http://", "http://api:BasePw@"), retries = 0,
        on_request = function(i) seen[#seen + 1] = i end, on_response = function(i) seen[#seen + 1] = i end }
      sysm:fault{ times = 1, action = { status = 500 } }
      local _, err = c.tags:list()
      assert.equal("server", err.kind)
      assert.is_nil(fixtures.find_string({ err, tostring(err), seen, c.last_response }, "BasePw"))
      assert.matches("http://%[REDACTED%]@127%.0%.0%.1", seen[1].url)
      c:close()
    end)

    it("drops any URL userinfo from an error, whoever wrote the text", function()
      local Error = require "audience.error"
      local e = Error.new{ kind = "network", message = "redis: AUTH failed for redis://:RedisPw@10.0.0.1:6379/0; "
        .. "upstream http://u:NginxPw@10.0.0.2/x refused", url = "https://k:UrlPw@api.example/x",
        details = { { field = "proxy", message = "bad proxy 'http://p:DetailPw@h'" } } }
      for _, needle in ipairs{ "RedisPw", "NginxPw", "UrlPw", "DetailPw" } do
        assert.is_nil(fixtures.find_string({ e, tostring(e) }, needle), needle)
      end
      assert.matches("redis://%[REDACTED%]@10%.0%.0%.1:6379/0", e.message)
      -- An address with an @ and no scheme is left alone.
      local plain = Error.new{ kind = "validation", message = "ada@example.com is taken" }
      assert.equal("ada@example.com is taken", plain.message)
    end)
  end)

  describe("retries", function()
    it("a timed-out PATCH given an idempotency_key is not retried: PATCH never carries the key", function()
      local sf = audience.subscribeflow{ api_key = "sf_live_test", base_url = sfm.url, retries = 2,
        backoff = { base = 0.01, max = 0.02 }, rate_limit = { limit = 10000, per = 1, account = "hygiene-sf" } }
      local s = assert(sf.subscribers:create{ email = "ada@example.com" })
      local attempts = 0
      sf.on_request = function() attempts = attempts + 1 end
      sfm:fault{ method = "PATCH", times = 3, action = { delay = 1 } }
      local _, err = sf.subscribers:update(s.id, { status = "unsubscribed" },
        { idempotency_key = "patch-key-1", timeout = 0.3 })
      assert.equal("timeout", err.kind)
      assert.equal(1, attempts)
      assert.is_nil(last(sfm).headers["idempotency-key"])
      -- A POST does carry it, so a timed-out POST with a key is retried under that key.
      attempts = 0
      sfm:fault{ method = "POST", times = 1, action = { delay = 1 } }
      assert(sf.subscribers:create({ email = "bob@example.com" }, { idempotency_key = "post-key-1", timeout = 0.3 }))
      assert.equal(2, attempts)
      assert.equal("post-key-1", last(sfm).headers["idempotency-key"])
      sf:close()
    end)

    it("a single 300 KB response header is too large, once, and never retried", function()
      local attempts = 0
      local c = sys{ retries = 2, on_request = function() attempts = attempts + 1 end }
      sysm:fault{ times = 3, action = { headers = { ["X-Giant"] = ("g"):rep(300 * 1024) } } }
      local _, err = c.tags:list()
      assert.equal("network", err.kind)
      assert.equal("too_large", err.code)
      assert.matches("header", err.message)
      assert.equal(1, attempts)
      c:close()
    end)
  end)
end)
