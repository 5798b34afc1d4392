-- client:parallel: many calls, at most n in flight, each through the same quota,
-- retries and errors as a single call, results in input order.
local audience = require "audience"
local core = require "audience.core"
local mockserver = require "support.mockserver"

describe("client:parallel", function()
  local m

  setup(function() m = mockserver.start("systeme") end)
  teardown(function() if m then m:stop() end end)
  before_each(function() m:reset() end)

  local function client(extra)
    local opts = { api_key = "test-key", base_url = m.url, timeout = 5, backoff = { base = 0.02, max = 0.05 } }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return audience.systeme(opts)
  end

  it("runs calls concurrently and returns results in input order", function()
    m:fault{ match = "/api/tags", method = "POST", times = 40, action = { delay = 0.1 } }
    local sys = client()
    local calls = {}
    for i = 1, 40 do
      calls[i] = function() return sys.tags:create{ name = "tag-" .. i } end
    end
    local started = core.monotonic()
    local results = sys:parallel(calls, { concurrency = 8 })
    local elapsed = core.monotonic() - started
    assert.equal(40, #results)
    for i = 1, 40 do
      assert.is_nil(results[i].err)
      assert.equal("tag-" .. i, results[i].value.name)
    end
    -- 40 × 0.1 s one after the other would be 4 s; 8 at a time is about 0.5 s.
    assert.is_true(elapsed < 2, ("took %.2f s"):format(elapsed))
    assert.equal(40, #m:data("tags"))
    sys:close()
  end)

  it("leaves the client as it is: its transport is the same, and a nested run works", function()
    local sys = client()
    local http_before, sleep_before = sys._http, sys._sleep
    local seen = {}
    local results = sys:parallel({
      function()
        seen.http, seen.sleep = sys._http, sys._sleep
        -- A run inside a call of a run: its own calls, its own results.
        local inner = sys:parallel({ function() return sys.tags:list() end, function() return sys.tags:list() end })
        return #inner
      end,
      function()
        -- A coroutine of the caller's own inside a call: not the scheduler's, so it blocks.
        local co = coroutine.create(function() return sys.tags:list() end)
        local ok, page = coroutine.resume(co)
        return ok and page and coroutine.status(co) == "dead"
      end,
    })
    assert.is_nil(results[1].err)
    assert.equal(2, results[1].value)
    assert.is_nil(results[2].err)
    assert.is_true(results[2].value)
    assert.equal(http_before, seen.http)
    assert.equal(sleep_before, seen.sleep)
    assert.equal(http_before, sys._http)
    assert.equal(sleep_before, sys._sleep)
    sys:close()
  end)

  it("never has more than `concurrency` requests in flight", function()
    m:fault{ match = "/api/tags", method = "GET", times = 12, action = { delay = 0.1 } }
    local in_flight, peak = 0, 0
    local sys = client{
      on_request = function() in_flight = in_flight + 1; peak = math.max(peak, in_flight) end,
      on_response = function() in_flight = in_flight - 1 end,
    }
    local calls = {}
    for i = 1, 12 do calls[i] = function() return sys.tags:list() end end
    sys:parallel(calls, { concurrency = 3 })
    assert.equal(3, peak)
    sys:close()
  end)

  it("keeps per-call errors apart and retries each call as usual", function()
    assert(client().tags:create{ name = "taken" })
    m:fault{ match = "/api/tags", method = "GET", times = 2, action = { status = 503 } }
    local sys = client()
    local results = sys:parallel({
      function() return sys.tags:create{ name = "taken" } end,
      function() return sys.tags:list() end,
      function() error("boom") end,
      { "GET", "/tags", query = { limit = 10 } },
      function() return sys.tags:create{ name = "fresh" } end,
    }, { concurrency = 2 })
    assert.equal("validation", results[1].err.kind)
    assert.is_nil(results[2].err)   -- after two 503s, retried
    local names = {}
    for _, t in ipairs(results[2].value.items) do names[t.name] = true end
    assert.is_true(names.taken)
    assert.matches("boom", results[3].err)
    assert.is_nil(results[4].err)
    assert.equal("fresh", results[5].value.name)
    sys:close()
  end)

  it("stays within the account quota with no 429", function()
    m:reset{ accounts = { acme = { keys = { "test-key" }, limit = 10, per = 1 } } }
    local sys = client{ rate_limit = { account = "parallel-quota" } }
    local calls = {}
    for i = 1, 30 do calls[i] = function() return sys.tags:list() end end
    local results = sys:parallel(calls, { concurrency = 8 })
    for i = 1, 30 do assert.is_nil(results[i].err, results[i].err and tostring(results[i].err)) end
    assert.equal(0, m:stats().rate_limited)
    assert.equal(30, m:stats().requests)
    sys:close()
  end)

  it("reports a refused connection per call", function()
    local sys = audience.systeme{ api_key = "k", base_url = "http://127.0.0.1:" .. mockserver.free_port() .. "/api",
      retries = 0 }
    local results = sys:parallel({ function() return sys.tags:list() end, function() return sys.tags:list() end })
    assert.equal("network", results[1].err.kind)
    assert.equal("network", results[2].err.kind)
    sys:close()
  end)

  it("leaves the client usable for ordinary calls", function()
    local sys = client()
    sys:parallel({ function() return sys.tags:list() end })
    assert(sys.tags:list())
    assert.same({}, sys:parallel({}))
    sys:close()
  end)

  it("checks its arguments", function()
    local sys = client()
    assert.error_matches(function() sys:parallel("x") end, "calls")
    assert.error_matches(function() sys:parallel({ 42 }) end, "calls%[1%]")
    assert.error_matches(function() sys:parallel({}, { concurrency = 0 }) end, "concurrency")
    sys:close()
  end)
end)
