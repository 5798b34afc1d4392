-- Starts a bundled mock server, runs a shell command with the mock's URL and key in the
-- environment, stops the mock, and exits with the command's status.
--
--   lua5.4 scripts/with-mock.lua [--seed=N] [--key=KEY]... PROVIDER COMMAND
--
-- The command sees SYSTEME_BASE_URL and SYSTEME_API_KEY. --seed creates N contacts
-- first; each --key adds an accepted API key (default: test-key).
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/../spec/?.lua;" .. package.path
local mockserver = require "support.mockserver"

local seed, keys, rest = nil, {}, {}
for _, a in ipairs(arg) do
  local n = a:match("^%-%-seed=(%d+)$")
  local k = a:match("^%-%-key=(.+)$")
  if n then seed = tonumber(n) elseif k then keys[#keys + 1] = k else rest[#rest + 1] = a end
end
local provider, command = rest[1], rest[2]
if not provider or not command or rest[3] then
  io.stderr:write("usage: with-mock.lua [--seed=N] [--key=KEY]... PROVIDER COMMAND\n")
  os.exit(2)
end
if #keys == 0 then keys[1] = "test-key" end

local m = mockserver.start(provider, { accounts = { demo = { keys = keys } } })
if seed then m:seed("contacts", seed) end
local env = ("SYSTEME_BASE_URL=%q SYSTEME_API_KEY=%q "):format(m.url, keys[1])
local ok, how, code = os.execute(env .. command)
m:stop()
if how == "signal" then os.exit(128 + code) end
os.exit(ok and 0 or code)
