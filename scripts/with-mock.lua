-- Starts a bundled mock server, runs a shell command with the mock's URL and
-- credentials in the environment, stops the mock, and exits with the command's status.
--
--   lua5.4 scripts/with-mock.lua [--seed=N] [--key=KEY]... PROVIDER COMMAND
--
-- PROVIDER is systeme, creamailer or subscribeflow. The command sees:
--   systeme:       SYSTEME_BASE_URL, SYSTEME_API_KEY
--   creamailer:    CREAMAILER_BASE_URL (v1), CREAMAILER_V2_BASE_URL, CREAMAILER_ACCESS_TOKEN,
--                  CREAMAILER_SHARED_SECRET
--   subscribeflow: SUBSCRIBEFLOW_BASE_URL, SUBSCRIBEFLOW_API_KEY
-- --seed=N creates N contacts (Systeme.io) or subscribers (SubscribeFlow) first; each
-- --key adds an accepted API key (Systeme.io, SubscribeFlow).
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/../spec/?.lua;" .. package.path
local mockserver = require "support.mockserver"

local PROVIDERS = {
  systeme = {
    default_key = "test-key", seed = "contacts",
    config = function(keys) return { accounts = { demo = { keys = keys } } } end,
    env = function(m, keys) return { SYSTEME_BASE_URL = m.url, SYSTEME_API_KEY = keys[1] } end,
  },
  creamailer = {
    config = function() return { accounts = { demo = { token = "test-token", secret = "test-secret" } } } end,
    env = function(m)
      return { CREAMAILER_BASE_URL = m.url, CREAMAILER_V2_BASE_URL = m.root .. "/v2/api",
               CREAMAILER_ACCESS_TOKEN = "test-token", CREAMAILER_SHARED_SECRET = "test-secret" }
    end,
  },
  subscribeflow = {
    default_key = "sf_live_test", seed = "subscribers",
    config = function(keys) return { accounts = { demo = { keys = keys } } } end,
    env = function(m, keys) return { SUBSCRIBEFLOW_BASE_URL = m.url, SUBSCRIBEFLOW_API_KEY = keys[1] } end,
  },
}

local seed, keys, rest = nil, {}, {}
for _, a in ipairs(arg) do
  local n = a:match("^%-%-seed=(%d+)$")
  local k = a:match("^%-%-key=(.+)$")
  if n then seed = tonumber(n) elseif k then keys[#keys + 1] = k else rest[#rest + 1] = a end
end
local name, command = rest[1], rest[2]
local provider = PROVIDERS[name or ""]
if not provider or not command or rest[3] then
  io.stderr:write("usage: with-mock.lua [--seed=N] [--key=KEY]... systeme|creamailer|subscribeflow COMMAND\n")
  os.exit(2)
end
if #keys == 0 then keys[1] = provider.default_key end

local m = mockserver.start(name, provider.config(keys))
if seed and provider.seed then m:seed(provider.seed, seed) end
local env = {}
for k, v in pairs(provider.env(m, keys)) do env[#env + 1] = ("%s=%q"):format(k, v) end
local ok, how, code = os.execute(table.concat(env, " ") .. " " .. command)
m:stop()
if how == "signal" then os.exit(128 + code) end
os.exit(ok and 0 or code)
