-- Every example runs against the mock servers, with this tree's module, so examples
-- can never drift from the API they show.
local function run(provider, command)
  local root = assert(io.popen("pwd")):read("l")
  local env = ('LUA_PATH="%s/lua/?.lua;%s/lua/?/init.lua;;" LUA_CPATH="%s/build/lua5.4/?.so;;" ')
    :format(root, root, root)
  local p = assert(io.popen(env .. "lua5.4 scripts/with-mock.lua --seed=25 " .. provider
    .. " '" .. command .. "' 2>&1; echo \"exit=$?\""))
  local out = p:read("a")
  p:close()
  return out:match("exit=(%d+)%s*$") == "0", out
end

describe("examples", function()
  for _, case in ipairs{
    { "systeme", "lua5.4 examples/systeme_quickstart.lua", "tagged with 'newsletter'" },
    { "systeme", "lua5.4 examples/systeme_export.lua", "exported 25 contacts" },
    { "creamailer", "lua5.4 examples/creamailer_list_import.lua", "added 1199, updated 0, failed 1, in 3 calls" },
    { "creamailer", "lua5.4 examples/creamailer_subscribers.lua", "suppressed: 1" },
    { "creamailer", "CREAMAILER_VERSION=2 lua5.4 examples/creamailer_subscribers.lua", "suppressed: 1" },
    { "subscribeflow", "lua5.4 examples/subscribeflow_subscribers.lua", "tag: events" },
    { "systeme", "lua5.4 examples/webhook_test_delivery.lua", "subscribeflow signed %-> 204, tampered %-> 401" },
    { "systeme", "lua5.4 examples/nightly_export.lua", "exported 25 contacts to .* and 25 to .*; verified" },
    { "systeme", "lua5.4 examples/csv_import.lua", "second pass: created 0, found 3, failed 0" },
    { "systeme", "lua5.4 examples/tag_by_purchase.lua", "bought%-ebook: 3 tagged, 0 not found" },
    { "creamailer", "lua5.4 examples/list_sync.lua", "added 300, updated 20, unchanged 1480, failed 1, in 3 requests" },
  } do
    local provider, command, expected = case[1], case[2], case[3]
    it(command, function()
      local ok, out = run(provider, command)
      assert.is_true(ok, out)
      assert.matches(expected, out)
    end)
  end
end)
