-- The account quota: learned from X-RateLimit-* headers, shared by every key of the
-- account, waited for instead of spent into 429s.
local audience = require "audience"
local core = require "audience.core"
local mockserver = require "support.mockserver"

describe("rate limiting", function()
  local m

  setup(function()
    m = mockserver.start("systeme", {
      accounts = { acme = { keys = { "key-one", "key-two" }, limit = 20, per = 2 } },
    })
  end)
  teardown(function() if m then m:stop() end end)

  it("60 requests by two clients with two keys of one account all succeed with no 429", function()
    m:reset()
    local a = audience.systeme{ api_key = "key-one", base_url = m.url, rate_limit = { account = "acme" } }
    local b = audience.systeme{ api_key = "key-two", base_url = m.url, rate_limit = { account = "acme" } }
    local started = core.monotonic()
    for i = 1, 60 do
      local c = (i % 2 == 0) and a or b
      local _, err = c.tags:list()
      assert.is_nil(err, err and tostring(err))
    end
    local elapsed = core.monotonic() - started
    local stats = m:stats()
    assert.equal(0, stats.rate_limited)
    assert.equal(60, stats.requests)
    -- 60 requests at 20 per 2 s need at least two refills.
    assert.is_true(elapsed >= 3, ("took only %.2f s"):format(elapsed))
    local rl = a:rate_limit()
    assert.equal(20, rl.limit)
    assert.is_number(rl.remaining)
    assert.is_number(rl.reset_at)
    a:close(); b:close()
  end)

  it("with wait = false, returns rate_limited at once instead of waiting", function()
    m:reset()
    local c = audience.systeme{ api_key = "key-one", base_url = m.url,
      rate_limit = { account = "acme-nowait", wait = false } }
    local limited
    for _ = 1, 25 do
      local _, err = c.tags:list()
      if err then limited = err break end
    end
    assert.is_not_nil(limited)
    assert.equal("rate_limited", limited.kind)
    -- The mock rounds the refill time up to a whole second.
    assert.is_true(limited.retry_after > 0 and limited.retry_after <= 3.1, tostring(limited.retry_after))
    assert.equal(0, m:stats().rate_limited)
    c:close()
  end)

  it("honours Retry-After on a 429 before retrying", function()
    m:reset()
    -- A client that never saw the headers (another account name) meets a used-up quota.
    local hog = audience.systeme{ api_key = "key-one", base_url = m.url, rate_limit = { account = "hog" } }
    for _ = 1, 20 do assert(hog.tags:list()) end
    local times = {}
    local late = audience.systeme{ api_key = "key-two", base_url = m.url, rate_limit = { account = "late" },
      on_response = function(info) times[#times + 1] = { info.status, core.monotonic() } end }
    local _, err = late.tags:list()
    assert.is_nil(err)
    assert.equal(429, times[1][1])
    assert.equal(200, times[2][1])
    assert.is_true(times[2][2] - times[1][2] >= 0.2)
    assert.equal(1, m:stats().rate_limited)
    hog:close(); late:close()
  end)

  it("a client-side budget spaces requests without any header", function()
    m:reset()
    local c = audience.systeme{ api_key = "key-one", base_url = m.url,
      rate_limit = { limit = 5, per = 1, account = "budget" } }
    local started = core.monotonic()
    for _ = 1, 8 do assert(c.tags:list()) end
    -- 5 go at once, the next 3 wait 0.2 s each.
    assert.is_true(core.monotonic() - started >= 0.5)
    c:close()
  end)
end)
