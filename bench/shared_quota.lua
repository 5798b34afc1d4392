-- 4 separate lua5.4 processes, 100 requests each, one account with a quota of 100 per
-- 5 s, sharing it through a file and then through Redis. Prints the wall time of the
-- run against the quota-bound minimum (3 full windows: 15 s), and the 429s seen.
--   lua5.4 bench/shared_quota.lua
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/../lua/?.lua;" .. here .. "/../lua/?/init.lua;" .. here .. "/../spec/?.lua;" .. package.path
package.cpath = here .. "/../build/lua5.4/?.so;" .. package.cpath

local core = require "audience.core"
local mockserver = require "support.mockserver"
local processes = require "support.processes"

local LIMIT, PER, WORKERS, REQUESTS = 100, 5, 4, 100
local CONFIG = { accounts = { acme = { keys = { "test-key" }, limit = LIMIT, per = PER } }, refill_style = "epoch_ms" }
local MINIMUM = (math.ceil(WORKERS * REQUESTS / LIMIT) - 1) * PER

local m = mockserver.start("systeme", CONFIG)
local redis = require("support.redis").start()
local dir = assert(io.popen("mktemp -d /tmp/audience-bench.XXXXXX")):read("l")
local worker = here .. "/../spec/support/quota_worker.lua"

local ok, err = pcall(function()
  for _, store in ipairs{ "file:" .. dir .. "/quota.state", redis.url } do
    m:reset(CONFIG)
    local g = processes.group()
    local started = core.monotonic()
    for _ = 1, WORKERS do g:start(("lua5.4 %s %s %s %d"):format(worker, m.url, store, REQUESTS)) end
    assert(g:wait(120), "workers did not finish")
    local elapsed = core.monotonic() - started
    local succeeded = 0
    for i = 1, WORKERS do
      local n = g:output(i):match("done (%d+) 0")
      succeeded = succeeded + (tonumber(n) or 0)
    end
    g:cleanup()
    local stats = m:stats()
    print(("%-6s %d/%d succeeded, %d × 429, %.2f s for a minimum of %d s: %.1f%% (target <= 110%%: %s)")
      :format(store:match("^(%a+)"), succeeded, WORKERS * REQUESTS, stats.rate_limited, elapsed, MINIMUM,
        100 * elapsed / MINIMUM, elapsed <= 1.1 * MINIMUM and "met" or "NOT met"))
  end
end)
redis:stop()
m:stop()
os.execute(("rm -rf %q"):format(dir))
if not ok then error(err, 0) end
