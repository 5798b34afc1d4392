-- One of several processes sharing an account's quota through a store.
--   lua5.4 spec/support/quota_worker.lua BASE_URL STORE REQUESTS [API_KEY]
-- Prints "done OK FAILED" at the end; errors go to stderr.
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = (os.getenv("AUDIENCE_CPATH") or (here .. "/../../build/lua5.4/?.so")) .. ";" .. package.cpath

local audience = require "audience"

local base_url, store, requests, key = arg[1], arg[2], tonumber(arg[3]), arg[4] or "test-key"
local sys = audience.systeme{ api_key = key, base_url = base_url, timeout = 10,
  rate_limit = { store = store, account = "shared-account" } }
local ok, failed = 0, 0
for _ = 1, requests do
  local _, err = sys.tags:list()
  if err then
    failed = failed + 1
    io.stderr:write(tostring(err), "\n")
  else
    ok = ok + 1
  end
end
sys:close()
io.write(("done %d %d\n"):format(ok, failed))
