-- 8 separate lua5.4 processes, 100 requests each, one account with a quota of 100 per
-- 5 s, sharing it through a file and then through Redis (with a password). Three runs
-- per store; prints each run's wall time against the quota-bound minimum (7 full
-- windows: 35 s), the median, and the 429s seen. Target: 0 × 429, median <= 105%.
--   lua5.4 bench/shared_quota.lua [RUNS]
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/../lua/?.lua;" .. here .. "/../lua/?/init.lua;" .. here .. "/../spec/?.lua;" .. package.path
package.cpath = here .. "/../build/lua5.4/?.so;" .. package.cpath

local core = require "audience.core"
local mockserver = require "support.mockserver"
local processes = require "support.processes"

local LIMIT, PER, WORKERS, REQUESTS = 100, 5, 8, 100
local RUNS = tonumber(arg[1]) or 3
local CONFIG = { accounts = { acme = { keys = { "test-key" }, limit = LIMIT, per = PER } }, refill_style = "epoch_ms" }
local MINIMUM = (math.ceil(WORKERS * REQUESTS / LIMIT) - 1) * PER

local m = mockserver.start("systeme", CONFIG)
local redis = require("support.redis").start({ password = "bench-" .. core.random_hex(8) })
local dir = assert(io.popen("mktemp -d /tmp/audience-bench.XXXXXX")):read("l")
local worker = here .. "/../spec/support/quota_worker.lua"

local ok, err = pcall(function()
  -- Each run gets a store of its own (a new file, another Redis database): the mock's
  -- windows start afresh, and a state left by the run before would describe a window
  -- the mock no longer has.
  for _, base in ipairs{ "file:" .. dir .. "/quota-%d.state", redis.url .. "/%d" } do
    local name = base:match("^(%a+)")
    local times, limited = {}, 0
    for run = 1, RUNS do
      local store = base:format(run)
      m:reset(CONFIG)
      local g = processes.group()
      local started = core.monotonic()
      for _ = 1, WORKERS do g:start(("lua5.4 %s %s %s %d"):format(worker, m.url, store, REQUESTS)) end
      assert(g:wait(240), "workers did not finish")
      local elapsed = core.monotonic() - started
      local succeeded = 0
      for i = 1, WORKERS do
        local n = g:output(i):match("done (%d+) 0")
        succeeded = succeeded + (tonumber(n) or 0)
      end
      g:cleanup()
      local stats = m:stats()
      limited = limited + stats.rate_limited
      times[run] = elapsed
      print(("%-6s run %d: %d/%d succeeded, %d × 429, %.2f s for a minimum of %d s: %.1f%%")
        :format(name, run, succeeded, WORKERS * REQUESTS, stats.rate_limited, elapsed, MINIMUM,
          100 * elapsed / MINIMUM))
    end
    table.sort(times)
    local median = times[math.floor((#times + 1) / 2)]
    print(("%-6s median %.2f s = %.1f%% of the minimum, %d × 429 in all (target 0 and <= 105%%: %s)")
      :format(name, median, 100 * median / MINIMUM, limited,
        (limited == 0 and median <= 1.05 * MINIMUM) and "met" or "NOT met"))
  end
end)
redis:stop()
m:stop()
os.execute(("rm -rf %q"):format(dir))
if not ok then error(err, 0) end
