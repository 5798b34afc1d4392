-- One account quota shared by separate processes, through a file and through Redis:
-- nobody is refused, the quota is used to the full, and a killed process harms no one.
-- Redis is reached with a password, the way a shared server is. (bench/shared_quota.lua
-- runs the same with 8 × 100 requests at 100 per 5 s.)
local mockserver = require "support.mockserver"
local processes = require "support.processes"
local nginx = require "support.nginx"

local LIMIT, PER, WORKERS, REQUESTS = 40, 2, 8, 15
local REDIS_PASSWORD = "scale-" .. require("audience.core").random_hex(8)
local CONFIG = { accounts = { acme = { keys = { "test-key" }, limit = LIMIT, per = PER } }, refill_style = "epoch_ms" }
-- The last window starts (windows - 1) × per after the first request.
local MINIMUM = (math.ceil(WORKERS * REQUESTS / LIMIT) - 1) * PER

local function run(m, store, kill_one)
  m:reset(CONFIG)
  local g = processes.group()
  local worker = nginx.root .. "/spec/support/quota_worker.lua"
  for i = 1, WORKERS do
    -- The one to be killed has more to do than the quota allows before the kill.
    local requests = (kill_one and i == 2) and REQUESTS * 20 or REQUESTS
    g:start(("lua5.4 %s %s %s %d"):format(worker, m.url, store, requests))
  end
  if kill_one then
    os.execute("sleep 1")
    g:kill(2)
  end
  local finished = g:wait(60)
  local outputs = {}
  for i = 1, WORKERS do outputs[i] = g:output(i) end
  g:cleanup()
  local stats = m:stats()
  local first, last = math.huge, 0
  for _, entry in ipairs(stats.log) do
    first = math.min(first, entry.t)
    last = math.max(last, entry.t)
  end
  return { finished = finished, outputs = outputs, stats = stats, span = last - first }
end

describe("a quota shared across processes", function()
  local m, redis, dir

  setup(function()
    m = mockserver.start("systeme", CONFIG)
    redis = require("support.redis").start({ password = REDIS_PASSWORD })
    local p = assert(io.popen("mktemp -d /tmp/audience-quota.XXXXXX"))
    dir = p:read("l")
    p:close()
  end)

  teardown(function()
    if redis then redis:stop() end
    if m then m:stop() end
    if dir then os.execute(("rm -rf %q"):format(dir)) end
  end)

  -- A store of its own for each run: the mock's windows start afresh with m:reset.
  local runs = 0
  local stores = {
    { "file", function() runs = runs + 1; return ("file:%s/quota-%d.state"):format(dir, runs) end },
    { "redis", function() runs = runs + 1; return ("%s/%d"):format(redis.url, runs) end },
  }

  it("runs Redis with a password: without it the store is refused", function()
    local core = require "audience.core"
    local lim = core.limiter_redis("redis://127.0.0.1:" .. redis.port, "scale-probe")
    local w, err = lim:acquire()
    lim:close()
    assert.is_nil(w)
    assert.matches("NOAUTH", err)
  end)

  for _, case in ipairs(stores) do
    local name, store = case[1], case[2]

    it(("%s store: %d processes × %d requests at %d per %d s all succeed, no 429, within 110%% of the minimum")
      :format(name, WORKERS, REQUESTS, LIMIT, PER), function()
      local r = run(m, store())
      assert.is_true(r.finished)
      for i = 1, WORKERS do
        assert.matches("done " .. REQUESTS .. " 0", r.outputs[i])
      end
      assert.equal(0, r.stats.rate_limited)
      assert.equal(WORKERS * REQUESTS, r.stats.requests)
      assert.is_true(r.span <= MINIMUM * 1.10, ("span %.2f s, minimum %.2f s"):format(r.span, MINIMUM))
    end)

    it(name .. " store: a process killed with SIGKILL mid-run leaves the others finishing cleanly", function()
      local r = run(m, store(), true)
      assert.is_true(r.finished)
      for i = 1, WORKERS do
        if i ~= 2 then assert.matches("done " .. REQUESTS .. " 0", r.outputs[i]) end
      end
      assert.is_nil(r.outputs[2]:find("done", 1, true))
      assert.equal(0, r.stats.rate_limited)
    end)
  end

  it("a Redis that is down gives a clear error, without hanging", function()
    local audience = require "audience"
    local core = require "audience.core"
    local port = mockserver.free_port()
    local sys = audience.systeme{ api_key = "test-key", base_url = m.url,
      rate_limit = { store = ("redis://127.0.0.1:%d"):format(port), account = "nobody-home" } }
    local started = core.monotonic()
    local _, err = sys.tags:list()
    assert.equal("network", err.kind)
    assert.equal("quota_store", err.code)
    assert.matches("redis", err.message)
    assert.is_true(core.monotonic() - started < 3)
    sys:close()
  end)
end)
