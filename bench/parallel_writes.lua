-- 400 writes against a mock that answers each after 50 ms: one after the other, then
-- with client:parallel at concurrency 8, in the same run. Prints both times and the
-- ratio (target: parallel at least 6× faster).
--   lua5.4 bench/parallel_writes.lua [writes] [delay_seconds] [concurrency]
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/../lua/?.lua;" .. here .. "/../lua/?/init.lua;" .. here .. "/../spec/?.lua;" .. package.path
package.cpath = here .. "/../build/lua5.4/?.so;" .. package.cpath

local audience = require "audience"
local core = require "audience.core"
local mockserver = require "support.mockserver"

local writes = tonumber(arg[1]) or 400
local delay = tonumber(arg[2]) or 0.05
local concurrency = tonumber(arg[3]) or 8

local m = mockserver.start("systeme")
local ok, err = pcall(function()
  local function run(label, fn)
    m:reset()
    m:fault{ match = "/api/tags", method = "POST", times = writes, action = { delay = delay } }
    local sys = audience.systeme{ api_key = "test-key", base_url = m.url, timeout = 30 }
    local started = core.monotonic()
    fn(sys)
    local elapsed = core.monotonic() - started
    sys:close()
    local stored = #m:data("tags")
    assert(stored == writes, ("%s: %d of %d writes stored"):format(label, stored, writes))
    print(("%-28s %8.2f s  (%d writes)"):format(label, elapsed, writes))
    return elapsed
  end

  local sequential = run("sequential", function(sys)
    for i = 1, writes do assert(sys.tags:create{ name = "seq-" .. i }) end
  end)
  local parallel = run(("parallel, concurrency %d"):format(concurrency), function(sys)
    local calls = {}
    for i = 1, writes do calls[i] = function() return sys.tags:create{ name = "par-" .. i } end end
    for i, r in ipairs(sys:parallel(calls, { concurrency = concurrency })) do
      assert(r.err == nil, ("write %d failed: %s"):format(i, tostring(r.err)))
    end
  end)
  local ratio = sequential / parallel
  print(("ratio sequential / parallel: %.2f  (target >= 6: %s)"):format(ratio, ratio >= 6 and "met" or "NOT met"))
end)
m:stop()
if not ok then error(err, 0) end
