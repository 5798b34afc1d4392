-- Thousands of simulated schedules (support/quota_sim.lua) over every store: clients
-- sharing one quota against a model server, with skewed clocks, lost answers, failed
-- connections, proxy errors, lying headers and roll-overs in the middle of bursts.
-- On every schedule: no 429 while the headers are honest and the skew within the
-- documented bound (docs/quotas.md), no negative count, no wait longer than a window
-- (plus latency, skew and the probe hold) unless the server said so; over long runs at
-- least 95% of the quota is used. A failing schedule names its seed:
--   AUDIENCE_SIM_SEED=123 AUDIENCE_SIM_STORE=memory busted spec/quota_sim_spec.lua
local sim = require "support.quota_sim"
local redis = require "support.redis"

local ONLY_SEED = tonumber(os.getenv("AUDIENCE_SIM_SEED") or "")
local ONLY_STORE = os.getenv("AUDIENCE_SIM_STORE")

local function run_seeds(kind, make_store, first, count, long)
  if ONLY_STORE and ONLY_STORE ~= kind then return end
  local bad = {}
  local from, to = first, first + count - 1
  if ONLY_SEED then from, to = ONLY_SEED, ONLY_SEED end
  for seed = from, to do
    local res = sim.run(seed, make_store(), long)
    if #res.failures > 0 and #bad < 3 then
      bad[#bad + 1] = ("seed %d (%s%s): %s\n    %s\n    replay: AUDIENCE_SIM_SEED=%d AUDIENCE_SIM_STORE=%s "
        .. "busted spec/quota_sim_spec.lua")
        :format(seed, kind, long and ", long" or "", table.concat(res.failures, "; "),
          sim.describe(res.params), seed, kind)
    end
  end
  assert(#bad == 0, "\n" .. table.concat(bad, "\n"))
end

describe("quota simulation", function()
  it("memory: 1200 schedules", function()
    run_seeds("memory", sim.stores.memory, 1, 1200)
  end)

  it("ngx:DICT (limiter.lua's NgxStore on an emulated dict): 600 schedules", function()
    run_seeds("dict", sim.stores.dict, 100001, 600)
  end)

  it("file: 150 schedules on a real state file", function()
    local path = os.tmpname()
    os.remove(path)
    local ok, err = pcall(run_seeds, "file", function() return sim.stores.file(path) end, 200001, 150)
    os.remove(path)
    assert(ok, err)
  end)

  it("redis: 80 schedules on a real redis-server", function()
    assert(redis.available(), "redis-server is not installed (Debian: redis-server)")
    local srv = redis.start()
    local ok, err = pcall(run_seeds, "redis", function() return sim.stores.redis(srv.url) end, 300001, 80)
    srv:stop()
    assert(ok, err)
  end)

  it("long runs use at least 95% of the quota (memory 60, ngx:DICT 20)", function()
    run_seeds("memory", sim.stores.memory, 400001, 60, true)
    run_seeds("dict", sim.stores.dict, 500001, 20, true)
  end)
end)
