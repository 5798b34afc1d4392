-- What the layout promises: provider knowledge lives in lua/audience/providers/NAME/
-- (and the constructors of init.lua), and no Lua file of the module grows past 500 lines.
local files = require "support.files"

local function module_files(pattern)
  local out = {}
  for path in assert(files.capture("find lua -type f -name " .. files.quote(pattern) .. " | sort")):gmatch("[^\n]+") do
    out[#out + 1] = path
  end
  return out
end

describe("the module's layout", function()
  it("names a provider only in its folder and in init.lua", function()
    local names = { "systeme", "creamailer", "subscribeflow" }
    local offenders = {}
    for _, path in ipairs(module_files("*")) do
      if not path:find("^lua/audience/providers/") and path ~= "lua/audience/init.lua" then
        local text = files.read(path):lower()
        for _, name in ipairs(names) do
          if text:find(name, 1, true) then offenders[#offenders + 1] = path .. ": " .. name end
        end
      end
    end
    assert.same({}, offenders)
  end)

  it("has no Lua file over 500 lines", function()
    local long = {}
    for _, path in ipairs(module_files("*.lua")) do
      local _, n = files.read(path):gsub("\n", "")
      if n > 500 then long[#long + 1] = ("%s: %d lines"):format(path, n) end
    end
    assert.same({}, long)
  end)

  it("gives every shipped provider a folder with its description and command verbs", function()
    local providers = require "audience.providers"
    for _, name in ipairs(providers.names()) do
      local desc = providers.get(name)
      assert.equal(name, desc.name)
      assert.is_function(desc.errors, name)
      assert.is_table(require(desc.command).resources, name)
    end
  end)
end)
