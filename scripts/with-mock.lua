-- Starts a bundled mock server, runs a shell command with its URL and key in the
-- environment, stops the mock, and exits with the command's status.
--   lua5.4 scripts/with-mock.lua systeme "lua5.4 examples/systeme_quickstart.lua"
-- The command sees SYSTEME_BASE_URL and SYSTEME_API_KEY (the mock's test key).
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/../spec/?.lua;" .. package.path
local mockserver = require "support.mockserver"

local provider, command, seed = arg[1], arg[2], tonumber(arg[3] or "")
if not provider or not command then
  io.stderr:write("usage: with-mock.lua PROVIDER COMMAND [CONTACTS_TO_SEED]\n")
  os.exit(2)
end

local m = mockserver.start(provider)
if seed then m:seed("contacts", seed) end
local env = ("SYSTEME_BASE_URL=%q SYSTEME_API_KEY=%q "):format(m.url, "test-key")
local ok, how, code = os.execute(env .. command)
m:stop()
if how == "signal" then os.exit(128 + code) end
os.exit(ok and 0 or code)
