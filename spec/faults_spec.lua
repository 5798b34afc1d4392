-- Reliability: every provider's client, through the real pipeline against its mock, when
-- the network or the server misbehaves. Each failure must come back as the documented
-- error kind, within a bounded time, and leave the same client able to serve the next
-- call. Timeouts and backoffs are short so the whole file stays fast.
local audience = require "audience"
local core = require "audience.core"
local mockserver = require "support.mockserver"

local CM_ACCOUNTS = { accounts = { default = { token = "test-token", secret = "test-secret",
  limit = 100000, per = 3600 } } }
local SF_ACCOUNTS = { accounts = { default = { keys = { "sf_live_test" }, limit = 100000, per = 60 } } }

local cm_accounts = 0

local PROVIDERS = {
  {
    label = "systeme", mock = "systeme", match = "/api/tags", path = "/tags",
    client = function(m, o)
      o.api_key, o.base_url = "test-key", m.url
      return audience.systeme(o)
    end,
    call = function(c) return c.tags:list() end,
  },
  {
    label = "creamailer v1", mock = "creamailer", config = CM_ACCOUNTS, match = "/v1/api/lists", path = "/lists.json",
    client = function(m, o)
      cm_accounts = cm_accounts + 1
      o.access_token, o.shared_secret, o.version = "test-token", "test-secret", 1
      o.base_url = m.root .. "/v1/api"
      -- Budgets of one account only ever tighten: one account per client.
      o.rate_limit = o.rate_limit or {}
      o.rate_limit.limit, o.rate_limit.per = 10000, 1
      o.rate_limit.account = "faults-cm-" .. cm_accounts
      return audience.creamailer(o)
    end,
    call = function(c) return c.lists:list() end,
  },
  {
    label = "creamailer v2", mock = "creamailer", config = CM_ACCOUNTS, match = "/v2/api/lists", path = "/lists",
    client = function(m, o)
      cm_accounts = cm_accounts + 1
      o.access_token, o.shared_secret, o.version = "test-token", "test-secret", 2
      o.base_url = m.root .. "/v2/api"
      o.rate_limit = o.rate_limit or {}
      o.rate_limit.limit, o.rate_limit.per = 10000, 1
      o.rate_limit.account = "faults-cm-" .. cm_accounts
      return audience.creamailer(o)
    end,
    call = function(c) return c.lists:list() end,
  },
  {
    label = "subscribeflow", mock = "subscribeflow", config = SF_ACCOUNTS, match = "/v1/tags", path = "/tags",
    client = function(m, o)
      o.api_key, o.base_url = "sf_live_test", m.url
      return audience.subscribeflow(o)
    end,
    call = function(c) return c.tags:list() end,
  },
}

local function http_date(offset)
  return os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + offset)
end

-- Runs f and returns the seconds it took, then f's results.
local function timed(f)
  local started = core.monotonic()
  local a, b, c = f()
  return core.monotonic() - started, a, b, c
end

for _, P in ipairs(PROVIDERS) do
  describe("faults: " .. P.label, function()
    local m
    local clients = {}

    setup(function() m = mockserver.start(P.mock, P.config) end)
    teardown(function()
      for _, c in ipairs(clients) do pcall(c.close, c) end
      if m then m:stop() end
    end)
    before_each(function() m:reset(P.config) end)

    -- A client with short timeouts and tiny backoff; `attempts.n` counts its attempts.
    local function new_client(extra)
      local attempts = { n = 0 }
      local o = {
        timeout = 1, connect_timeout = 1, retries = 0, backoff = { base = 0.02, max = 0.05 },
        on_request = function() attempts.n = attempts.n + 1 end,
      }
      for k, v in pairs(extra or {}) do o[k] = v end
      local c = P.client(m, o)
      clients[#clients + 1] = c
      return c, attempts
    end

    local function fault(action, times)
      m:fault{ match = P.match, method = "GET", times = times or 1, action = action }
    end

    -- The same client serves the next call normally.
    local function serves_next(c)
      local page, err = P.call(c)
      assert.is_nil(err, err and tostring(err))
      assert.is_table(page)
      assert.is_table(page.items)
    end

    local function fails_with(c, kind)
      local elapsed, value, err = timed(function() return P.call(c) end)
      assert.is_nil(value)
      assert.is_table(err, "expected an error")
      assert.equal("audience.Error", getmetatable(err).__name)
      assert.equal(kind, err.kind, tostring(err))
      assert.equal(P.mock, err.provider)
      return err, elapsed
    end

    it("connection refused is kind network, retried, and fast", function()
      local port = mockserver.free_port()
      local o = { timeout = 1, connect_timeout = 1, retries = 1, backoff = { base = 0.02, max = 0.05 } }
      local n = 0
      o.on_request = function() n = n + 1 end
      local c = P.client({ url = "http://127.0.0.1:" .. port .. m.prefix,
        root = "http://127.0.0.1:" .. port }, o)
      clients[#clients + 1] = c
      local elapsed, value, err = timed(function() return P.call(c) end)
      assert.is_nil(value)
      assert.equal("network", err.kind, tostring(err))
      assert.is_nil(err.status)
      assert.equal(2, n)          -- never reached a server: retried
      assert.is_true(elapsed < 1, "took " .. elapsed)
    end)

    it("a reset connection (no response) is kind network, then the client recovers", function()
      fault{ reset = true }
      local c, attempts = new_client()
      local err = fails_with(c, "network")
      assert.is_nil(err.status)
      assert.equal(1, attempts.n)
      serves_next(c)
    end)

    it("a truncated body is kind network, then the client recovers", function()
      fault{ truncated = true }
      local c = new_client()
      local err = fails_with(c, "network")
      assert.is_nil(err.status)
      serves_next(c)
    end)

    it("malformed JSON on a 200 is kind decode", function()
      fault{ malformed = true }
      local c = new_client()
      local err = fails_with(c, "decode")
      assert.equal(200, err.status)
      serves_next(c)
    end)

    it("an HTML page on a 200 is kind decode", function()
      fault{ html = true }
      local c = new_client()
      local err = fails_with(c, "decode")
      assert.equal(200, err.status)
      serves_next(c)
    end)

    it("an empty body on a 200 to a GET is kind decode", function()
      fault{ empty = true }
      local c = new_client()
      local err = fails_with(c, "decode")
      assert.equal(200, err.status)
      serves_next(c)
    end)

    it("three 503s then OK succeeds with retries = 3", function()
      fault({ status = 503 }, 3)
      local statuses = {}
      local c, attempts = new_client{ retries = 3, on_response = function(i) statuses[#statuses + 1] = i.status end }
      serves_next(c)
      assert.equal(4, attempts.n)
      assert.same({ 503, 503, 503, 200 }, statuses)
    end)

    it("three 503s with retries = 1 is kind server after exactly 2 attempts", function()
      fault({ status = 503 }, 3)
      local c, attempts = new_client{ retries = 1 }
      local err = fails_with(c, "server")
      assert.equal(503, err.status)
      assert.equal(2, attempts.n)
      assert.equal(2, m:stats().faults_applied)
      -- The third 503 is still queued: one retry gets past it.
      serves_next(c)
      assert.equal(4, attempts.n)
    end)

    for _, status in ipairs{ 503, 429 } do
      it(("waits for a Retry-After given as an HTTP-date on a %d"):format(status), function()
        fault{ status = status, headers = { ["Retry-After"] = http_date(2) } }
        local c, attempts = new_client{ retries = 1 }
        local elapsed, page, err = timed(function() return P.call(c) end)
        assert.is_nil(err, err and tostring(err))
        assert.is_table(page)
        assert.equal(2, attempts.n)
        -- The date is 1 to 2 s ahead (it has whole seconds); the backoff alone is 0.05 s.
        assert.is_true(elapsed >= 0.9, ("retried after %.3f s"):format(elapsed))
        assert.is_true(elapsed < 3, ("retried after %.3f s"):format(elapsed))
      end)
    end

    it("ignores a garbage Retry-After: normal backoff, no crash", function()
      local garbage = { "soon", "-5", "1e999", "nan", "Fri, 99 Foo 2024 99:99:99 GMT",
        ("x"):rep(300), "0x10", "" }
      for _, value in ipairs(garbage) do
        fault{ status = 503, headers = { ["Retry-After"] = value } }
      end
      local c, attempts = new_client{ retries = #garbage }
      local elapsed = timed(function() serves_next(c) end)
      assert.equal(#garbage + 1, attempts.n)
      assert.is_true(elapsed < 1.5, ("took %.3f s"):format(elapsed))

      -- Without a retry the error carries no retry_after from such a header.
      fault{ status = 503, headers = { ["Retry-After"] = "soon" } }
      local c2 = new_client()
      local err = fails_with(c2, "server")
      assert.is_nil(err.retry_after)
      serves_next(c2)
    end)

    it("a stalled server is kind timeout within the timeout, and never hangs", function()
      fault({ delay = 5 }, 2)
      local c, attempts = new_client{ timeout = 0.3, retries = 1 }
      local err, elapsed = fails_with(c, "timeout")
      assert.is_nil(err.status)
      assert.equal(2, attempts.n)
      -- Two attempts of 0.3 s plus a backoff of at most 0.05 s, plus slack.
      assert.is_true(elapsed >= 0.6, ("gave up after %.3f s"):format(elapsed))
      assert.is_true(elapsed < 1.2, ("gave up after %.3f s"):format(elapsed))
      serves_next(c)
    end)

    it("a per-call timeout bounds a stalled call too", function()
      fault{ delay = 5 }
      local c = new_client{ timeout = 30 }
      local elapsed, _, err = timed(function() return c:request("GET", P.path, { timeout = 0.3 }) end)
      assert.equal("timeout", err.kind, tostring(err))
      assert.is_true(elapsed < 0.8, ("gave up after %.3f s"):format(elapsed))
      serves_next(c)
    end)

    it("a body larger than max_body is kind network, code too_large, not retried", function()
      fault{ huge = 200000 }
      local c, attempts = new_client{ max_body = 4096, retries = 2 }
      local err = fails_with(c, "network")
      assert.equal("too_large", err.code)
      assert.matches("max_body", err.message)
      assert.matches("4096", err.message)
      assert.equal(1, attempts.n)
      serves_next(c)
    end)

    it("a slow drip that ends within the timeout succeeds", function()
      fault{ drip = { bytes = 16, interval = 0.02 } }
      local c = new_client{ timeout = 2 }
      local elapsed = timed(function() serves_next(c) end)
      assert.is_true(elapsed >= 0.1, ("the drip took only %.3f s"):format(elapsed))
      assert.equal("drip", m:stats().log[1].fault)
      serves_next(c)
    end)

    it("a slow drip beyond the timeout is kind timeout, within the timeout", function()
      fault{ drip = { bytes = 4, interval = 0.1 } }
      local c = new_client{ timeout = 0.4 }
      local err, elapsed = fails_with(c, "timeout")
      assert.is_nil(err.status)
      assert.is_true(elapsed < 0.9, ("gave up after %.3f s"):format(elapsed))
      serves_next(c)
    end)
  end)
end

describe("faults: a long Retry-After on a 5xx", function()
  local m
  setup(function() m = mockserver.start("systeme") end)
  teardown(function() if m then m:stop() end end)
  before_each(function() m:reset() end)

  it("a 502/503/504 Retry-After beyond rate_limit.max_wait is reported, not slept on",
    function()
      -- Today only a 429 consults max_wait; a 503 with Retry-After: 3600 sleeps an hour
      -- before its retry, which stalls a cron job or an nginx worker.
      m:fault{ match = "/api/tags", times = 2, action = { status = 503, headers = { ["Retry-After"] = "5" } } }
      local n = 0
      local sys = audience.systeme{ api_key = "test-key", base_url = m.url, timeout = 1, retries = 1,
        backoff = { base = 0.02, max = 0.05 }, rate_limit = { max_wait = 0.5 },
        on_request = function() n = n + 1 end }
      local elapsed, value, err = timed(function() return sys.tags:list() end)
      assert.is_nil(value)
      assert.equal("server", err.kind)
      assert.equal(503, err.status)
      assert.equal(5, err.retry_after)
      assert.equal(1, n)
      assert.is_true(elapsed < 1, ("waited %.3f s"):format(elapsed))
      sys:close()
    end)
end)
